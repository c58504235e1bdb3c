"""Export a checkpoint's backbone alone, with torchvision's names, in safetensors (no pickle to load):

    python -m solo_ossl.export CKPT OUT.safetensors

The file's metadata holds the method, the backbone's width and stem, a fingerprint of the weights and the run's
config; every entry point (``++pretrained_ckpt``, ``main_linear.py``, ``main_knn.py``) reads such a file. Any layout
``solo_ossl.utils.checkpoint`` reads can be exported (solo_ossl, CaSSLe, solo-learn, a bare torchvision state dict)."""

import json
import sys
from pathlib import Path

from solo_ossl.utils.checkpoint import backbone_state, read_checkpoint, state_fingerprint
from solo_ossl.utils.errors import SoloOsslError, exit_on_user_error


def export(checkpoint_path: str, out: str) -> dict:
    from safetensors.torch import save_file

    checkpoint = read_checkpoint(checkpoint_path)
    weights = {k: v.detach().cpu().contiguous() for k, v in backbone_state(checkpoint, checkpoint_path).items()}
    info = checkpoint.get("solo_ossl", {})
    config = info.get("config", {})
    backbone = config.get("backbone", {})
    cifar = backbone.get("cifar")
    if cifar is None:  # the CIFAR stem is a 3x3 first convolution, the ImageNet stem 7x7
        cifar = weights["conv1.weight"].shape[-1] == 3
    metadata = {
        "format": "solo_ossl backbone",
        "method": str(info.get("method") or "unknown"),
        "width": str(backbone.get("width", weights["conv1.weight"].shape[0] / 64)),
        "stem": "cifar" if cifar else "imagenet",
        "fingerprint": state_fingerprint({f"backbone.{k}": v for k, v in weights.items()}, ("backbone.",)),
        "source": Path(checkpoint_path).name,
        "config": json.dumps(config),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, out, metadata=metadata)
    return metadata


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not argv[1].endswith(".safetensors"):
        raise SoloOsslError("usage: python -m solo_ossl.export CKPT OUT.safetensors")
    metadata = export(*argv)
    print(
        f"exported the {metadata['method']} backbone of {argv[0]} to {argv[1]} (fingerprint {metadata['fingerprint']})"
    )
    return metadata


if __name__ == "__main__":
    main()
