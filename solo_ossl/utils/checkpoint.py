"""Reading checkpoints: solo_ossl's Lightning files (``state_dict`` keys ``backbone.*``/``projector.*`` and a
``solo_ossl`` entry naming the method and backbone), exported backbones (``.safetensors``, ``solo_ossl.export``), and
the layouts of peer code:
- CaSSLe and solo-learn <= 1.0.2: the online backbone under ``encoder.*`` (beside ``frozen_encoder.*``,
  ``momentum_encoder.*``, ``frozen_projector.*``, ``distill_predictor.*``: cassle/methods/base.py,
  cassle/distillers/base.py);
- solo-learn >= 1.0.3: ``backbone.*`` (beside ``momentum_backbone.*``: solo/methods/base.py);
- a bare torchvision ResNet state dict (``conv1.*`` ..., its ``fc.*`` dropped).
The online backbone is taken, never a frozen or momentum copy; the projector too where its names and shapes fit.

Every ``.ckpt`` is read with ``torch.load(weights_only=True)``: unpickling may build tensors, containers, numbers and
strings, and, beyond torch's own allowlist, only the numpy array of ``np.random.get_state()`` that our checkpoints
store (``TRUSTED_GLOBALS``). A checkpoint that needs anything else (an argparse ``Namespace``, a class of other code,
or code planted to run at load time) is refused before any of it runs."""

import contextlib
import hashlib
import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import torch

from solo_ossl.utils.errors import SoloOsslError

# The weights file of an exported Hub-style folder (python -m solo_ossl.export), huggingface_hub's name for it.
EXPORTED_WEIGHTS = "model.safetensors"
# Where each layout keeps the online backbone, in the order they are tried.
BACKBONE_PREFIXES = ("backbone.", "encoder.", "module.backbone.", "module.encoder.")


def trusted_globals() -> list:
    """What our checkpoints hold beyond torch's weights-only allowlist: numpy's RNG state (``np.random.get_state()``,
    a uint32 array) in the online state and in the offline loop's ``ResumableRandomness`` callback."""
    import numpy as np

    return [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


@contextlib.contextmanager
def checkpoint_globals() -> Iterator[None]:
    """``torch.load(weights_only=True)`` inside this block (ours, or Lightning's on resume) accepts our checkpoints."""
    with torch.serialization.safe_globals(trusted_globals()):
        yield


def unsafe_globals(path: Path) -> list[str]:
    """The Python objects (beyond tensors, containers and ``trusted_globals``) that unpickling ``path`` would call."""
    trusted = {f"{g.__module__}.{g.__name__}" for g in trusted_globals()}
    try:
        return [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in trusted]
    except Exception:  # an unreadable file: the caller's message says so
        return []


def load_weights_only(path: str | os.PathLike) -> dict:
    """``torch.load`` of a ``.ckpt`` that runs no code from it: a file needing anything but tensors and plain data is
    refused with one line that names what it holds and how to convert a trusted one."""
    path = Path(path)
    try:
        with checkpoint_globals():
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        held = unsafe_globals(path)
        if not held:
            raise SoloOsslError(f"cannot read checkpoint {path} ({e}); is it complete?") from e
        raise SoloOsslError(
            f"checkpoint {path} holds Python objects that loading would have to run ({', '.join(held)}), and solo_ossl "
            "loads only tensors and plain data; if you trust its source, convert it once with python -m "
            f"solo_ossl.export --trust-pickle {path} OUT_DIR and load OUT_DIR"
        ) from None
    except Exception as e:  # torch raises several types for truncated/foreign files
        raise SoloOsslError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); is it complete?") from e


def read_checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> dict:
    """A checkpoint as a dict with ``state_dict`` (an exported backbone, a Hub-style folder or a ``.safetensors``
    file, becomes ``backbone.*`` keys and its metadata the ``solo_ossl`` entry). ``trust_pickle`` (the export
    tool's ``--trust-pickle`` only) unpickles a ``.ckpt`` in full, running whatever code it holds."""
    path = Path(path)
    if path.is_dir() and (path / EXPORTED_WEIGHTS).is_file():
        return read_exported(path / EXPORTED_WEIGHTS)
    if not path.is_file():
        raise SoloOsslError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return read_exported(path)
    if not trust_pickle:
        return load_weights_only(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise SoloOsslError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); is it complete?") from e


def read_exported(path: Path) -> dict:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            weights = {f"backbone.{k}": f.get_tensor(k) for k in f.keys()}
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise SoloOsslError(f"cannot read {path} as safetensors ({e}); is it complete?") from e
    info = {"method": metadata.get("method"), "config": json.loads(metadata.get("config", "{}"))}
    if "width" in metadata:
        info["config"].setdefault("backbone", {}).update(
            width=float(metadata["width"]), cifar=metadata["stem"] == "cifar"
        )
    return {"state_dict": weights, "solo_ossl": info, "exported": metadata}


def submodule_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix`` (e.g. ``"projector."``), with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def backbone_state(checkpoint: dict, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The online backbone's weights, with torchvision's names, from any layout the module docstring lists."""
    state = checkpoint.get("state_dict", checkpoint)
    for prefix in BACKBONE_PREFIXES:
        if any(k.startswith(prefix) for k in state):
            return {k: v for k, v in submodule_state(state, prefix).items() if not k.startswith("fc.")}
    if any(k.startswith("conv1.") for k in state):
        return {k: v for k, v in state.items() if not k.startswith("fc.")}
    raise SoloOsslError(
        f"{path} holds no backbone: neither backbone.* (solo_ossl, solo-learn >= 1.0.3) nor encoder.* (CaSSLe, "
        "solo-learn <= 1.0.2) keys, nor a bare ResNet state dict"
    )


def is_peer_checkpoint(checkpoint: dict) -> bool:
    """A checkpoint that solo_ossl did not write (no ``solo_ossl`` entry)."""
    return "solo_ossl" not in checkpoint


def weights_fingerprint(path: str | os.PathLike, prefixes: tuple[str, ...] = ("backbone.", "projector.")) -> str:
    """The first 16 hex digits of a sha256 over the checkpoint's weights under ``prefixes`` (names and bytes, in name
    order): equal for bitwise-equal weights, whatever else the file holds (optimizer, loop state, time stamps)."""
    return state_fingerprint(read_checkpoint(path).get("state_dict", {}), prefixes)


def state_fingerprint(state: dict[str, torch.Tensor], prefixes: tuple[str, ...] = ("backbone.", "projector.")) -> str:
    digest = hashlib.sha256()
    for name in sorted(k for k in state if k.startswith(prefixes)):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def checkpoint_backbone_config(checkpoint: dict) -> dict | None:
    return checkpoint.get("solo_ossl", {}).get("config", {}).get("backbone")


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise SoloOsslError(f"{what} of {path} does not fit this model ({detail}); check backbone.width/cifar") from e


def fits(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` has exactly ``module``'s names and shapes."""
    own = module.state_dict()
    return own.keys() == state.keys() and all(own[k].shape == v.shape for k, v in state.items())


def atomic_save(trainer, path: str | os.PathLike) -> None:
    """``trainer.save_checkpoint`` to a temporary file renamed into place: a kill mid-write leaves the old file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    trainer.save_checkpoint(tmp, weights_only=False)  # explicit: Lightning logs a notice per save otherwise
    if trainer.is_global_zero:
        os.replace(tmp, path)
