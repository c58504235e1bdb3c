"""Build the CIFAR-100 arrays that ``++data.dataset=npz`` reads, from the official archive (no network needed once you
have it; the benchmarks and the CPU-scale Table 1 read such a file):

    python -m solo_ossl.data.cifar_npz cifar-100-python.tar.gz cifar100_uint8.npz

The archive is the "CIFAR-100 python version" from https://www.cs.toronto.edu/~kriz/cifar.html (the file that
torchvision's ``CIFAR100(download=True)`` fetches). The npz holds ``x_train``/``x_test`` (N, 32, 32, 3) uint8 RGB,
``y_train``/``y_test`` (fine labels 0-99), ``coarse_train``/``coarse_test`` (superclasses 0-19) and
``fine_label_names``/``coarse_label_names``, in the official train/test split. Its pickles are read by an unpickler
that builds numpy arrays and plain data only."""

import argparse
import codecs
import hashlib
import io
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np

from solo_ossl.utils.errors import SoloOsslError, exit_on_user_error

# What the official pickles hold besides plain data: numpy arrays (the labels are lists, the pixels one array), and
# codecs.encode, which pickles of bytes written by Python 3 at protocol 2 call (torch's weights-only loader allows it).
ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise SoloOsslError(f"the archive's pickle asks for {module}.{name}: not the official CIFAR-100 archive")
        if module == "_codecs":
            return codecs.encode
        return getattr(np, name) if name in ("ndarray", "dtype") else np._core.multiarray._reconstruct


def read_pickle(data: bytes) -> dict:
    loaded = ArraysOnly(io.BytesIO(data), encoding="latin1").load()
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in loaded.items()}


def cifar100_arrays(archive: Path) -> dict[str, np.ndarray]:
    """The official archive's train and test splits and label names as arrays."""
    try:
        with tarfile.open(archive) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            parts = {name: read_pickle(tar.extractfile(members[name]).read()) for name in ("train", "test", "meta")}
    except (tarfile.TarError, OSError, KeyError, pickle.UnpicklingError, EOFError) as e:
        raise SoloOsslError(
            f"{archive} is not the CIFAR-100 python archive (cifar-100-python.tar.gz with train, test and meta): {e}"
        ) from e
    arrays = {}
    for split in ("train", "test"):
        part = parts[split]
        pixels = np.asarray(part["data"], dtype=np.uint8)
        arrays[f"x_{split}"] = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # rows of CHW -> NHWC
        arrays[f"y_{split}"] = np.asarray(part["fine_labels"], dtype=np.int64)
        arrays[f"coarse_{split}"] = np.asarray(part["coarse_labels"], dtype=np.int64)
    arrays["fine_label_names"] = np.asarray(parts["meta"]["fine_label_names"]).astype(str)
    arrays["coarse_label_names"] = np.asarray(parts["meta"]["coarse_label_names"]).astype(str)
    return arrays


def build(archive: Path, out: Path) -> str:
    """Write the npz and return its sha256."""
    arrays = cifar100_arrays(archive)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return hashlib.sha256(out.read_bytes()).hexdigest()


@exit_on_user_error
def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m solo_ossl.data.cifar_npz",
        description="Write CIFAR-100 as the .npz that ++data.dataset=npz ++data.data_dir=OUT reads.",
    )
    parser.add_argument("archive", type=Path, help="the official cifar-100-python.tar.gz")
    parser.add_argument("out", type=Path, help="the .npz to write")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    digest = build(args.archive, args.out)
    print(f"wrote {args.out} (sha256 {digest}); train on it with ++data.dataset=npz ++data.data_dir={args.out}")
    return digest


if __name__ == "__main__":
    main()
