"""Reading solo_ossl checkpoints: Lightning files with ``state_dict`` keys ``backbone.*``/``projector.*`` and a
``solo_ossl`` entry naming the method and backbone, or bare backbone state dicts."""

import hashlib
import os
from pathlib import Path

import torch

from solo_ossl.utils.errors import SoloOsslError


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SoloOsslError(f"checkpoint {path} does not exist")
    try:
        # Lightning checkpoints hold more than tensors (loop and callback state); these are files the user made.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for truncated/foreign files
        raise SoloOsslError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); is it complete?") from e


def submodule_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix`` (e.g. ``"projector."``), with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def backbone_state(checkpoint: dict, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The backbone weights of a solo_ossl/solo-learn checkpoint, or of a bare backbone state dict."""
    state = checkpoint.get("state_dict", checkpoint)
    if any(k.startswith("backbone.") for k in state):
        return submodule_state(state, "backbone.")
    if any(k.startswith("conv1.") for k in state):
        return {k: v for k, v in state.items() if not k.startswith("fc.")}
    raise SoloOsslError(f"{path} holds neither backbone.* keys nor a bare ResNet state dict")


def weights_fingerprint(path: str | os.PathLike, prefixes: tuple[str, ...] = ("backbone.", "projector.")) -> str:
    """The first 16 hex digits of a sha256 over the checkpoint's weights under ``prefixes`` (names and bytes, in name
    order): equal for bitwise-equal weights, whatever else the file holds (optimizer, loop state, time stamps)."""
    state = read_checkpoint(path).get("state_dict", {})
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


def atomic_save(trainer, path: str | os.PathLike) -> None:
    """``trainer.save_checkpoint`` to a temporary file renamed into place: a kill mid-write leaves the old file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    trainer.save_checkpoint(tmp, weights_only=False)  # explicit: Lightning logs a notice per save otherwise
    if trainer.is_global_zero:
        os.replace(tmp, path)
