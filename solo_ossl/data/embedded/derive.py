"""Derive the embedded default dataset from the full CIFAR-100 arrays (see README.md beside this file).

python -m solo_ossl.data.embedded.derive CIFAR100.npz   (e.g. one written by python -m solo_ossl.data.cifar_npz)
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np

TRAIN_PER_CLASS, TEST_PER_CLASS = 100, 20
OUT = Path(__file__).resolve().parent / "cifar100_subset.npz"


def derive(source: Path, out: Path = OUT) -> str:
    with np.load(source) as f:
        data = {k: f[k] for k in f.files}
    # One fine class per superclass (the lowest fine label in it): 20 diverse classes.
    classes = [int(np.min(data["y_train"][data["coarse_train"] == c])) for c in range(20)]
    relabel = np.full(100, -1)
    relabel[classes] = np.arange(len(classes))
    arrays = {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        labels = data[f"y_{split}"]
        keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes])
        arrays[f"x_{split}"] = data[f"x_{split}"][keep]
        arrays[f"y_{split}"] = relabel[labels[keep]]
    arrays["label_names"] = np.asarray(data["fine_label_names"][classes]).astype(str)
    arrays["cifar100_labels"] = np.array(classes)
    np.savez_compressed(out, **arrays)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m solo_ossl.data.embedded.derive",
        description="Derive the embedded dataset (20 classes, one per superclass; 100 train and 20 test images each) "
        "from the CIFAR-100 arrays, and print its sha256.",
    )
    parser.add_argument(
        "source", type=Path, help="a CIFAR-100 .npz with coarse labels (python -m solo_ossl.data.cifar_npz)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where to write it (default: the package's own file)")
    args = parser.parse_args(argv)
    digest = derive(args.source, args.out)
    print(digest)
    return digest


if __name__ == "__main__":
    main()
