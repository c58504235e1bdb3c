"""Export a checkpoint's backbone alone, with torchvision's names, in safetensors (no pickle to load):

    python -m solo_ossl.export CKPT OUT_DIR             # a Hub-style folder: config.json, model.safetensors, README.md
    python -m solo_ossl.export CKPT OUT.safetensors     # the weights file alone (the zoo's format)

The folder follows huggingface_hub's conventions (``config.json`` beside ``model.safetensors`` and a model card), so
it uploads as it is (``huggingface-cli upload USER/NAME OUT_DIR``). The weights file's metadata holds the method, the
backbone's width and stem, the input normalization, a fingerprint of the weights and the run's config; every entry
point (``++pretrained_ckpt``, ``main_linear.py``, ``main_knn.py``) reads the folder or the file. Any layout
``solo_ossl.utils.checkpoint`` reads can be exported (solo_ossl, CaSSLe, solo-learn, a bare torchvision state dict).

A ``.ckpt`` that holds Python objects beyond tensors and plain data (CaSSLe's and solo-learn's keep an argparse
``Namespace``) is refused everywhere, since unpickling it could run code. ``--trust-pickle`` unpickles such a file in
full, once, here: use it only for a file whose source you trust, and load the export from then on."""

import argparse
import json
import sys
from pathlib import Path

import torch

from solo_ossl.data.datasets import normalization_stats
from solo_ossl.utils.checkpoint import EXPORTED_WEIGHTS, backbone_state, read_checkpoint, state_fingerprint
from solo_ossl.utils.errors import exit_on_user_error


def export_metadata(checkpoint: dict, weights: dict[str, torch.Tensor], source: str) -> dict[str, str]:
    """The weights file's metadata (safetensors allows strings only): what loading the backbone elsewhere needs."""
    info = checkpoint.get("solo_ossl", {})
    config = info.get("config", {})
    backbone = config.get("backbone", {})
    cifar = backbone.get("cifar")
    if cifar is None:  # the CIFAR stem is a 3x3 first convolution, the ImageNet stem 7x7
        cifar = weights["conv1.weight"].shape[-1] == 3
    mean, std = normalization_stats(config.get("data", {}).get("dataset", "cifar100"))
    exported = checkpoint.get("exported", {})  # re-exporting an export keeps what it recorded
    return {
        "format": "solo_ossl backbone",
        "method": str(info.get("method") or "unknown"),
        "width": str(backbone.get("width", weights["conv1.weight"].shape[0] / 64)),
        "stem": "cifar" if cifar else "imagenet",
        "mean": exported.get("mean", json.dumps(list(mean))),
        "std": exported.get("std", json.dumps(list(std))),
        "fingerprint": state_fingerprint({f"backbone.{k}": v for k, v in weights.items()}, ("backbone.",)),
        "source": exported.get("source", str(source)),
        "config": json.dumps(config),
    }


def hub_config(metadata: dict[str, str], weights: dict[str, torch.Tensor]) -> dict:
    """``config.json``: the architecture in words a loader needs, without reading our code."""
    cifar = metadata["stem"] == "cifar"
    return {
        "library_name": "solo_ossl",
        "architecture": "resnet18",
        "width": float(metadata["width"]),
        "num_features": int(weights["layer4.1.bn2.weight"].shape[0]),
        "stem": metadata["stem"],
        # The CIFAR stem as CaSSLe and solo-learn build it: conv 3x3, stride 1, padding 2 (34x34 maps), no max-pool.
        "conv1": {
            "out_channels": int(weights["conv1.weight"].shape[0]),
            **(
                {"kernel_size": 3, "stride": 1, "padding": 2}
                if cifar
                else {"kernel_size": 7, "stride": 2, "padding": 3}
            ),
        },
        "maxpool": not cifar,
        "input": {"scale": "0-1 RGB", "mean": json.loads(metadata["mean"]), "std": json.loads(metadata["std"])},
        "method": metadata["method"],
        "fingerprint": metadata["fingerprint"],
        "source_checkpoint": metadata["source"],
        "run_config": json.loads(metadata["config"]),
    }


CIFAR_STEM = "net.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 2, bias=False)\nnet.maxpool = torch.nn.Identity()\n"
TORCHVISION_RECIPE = """```python
import torch, torchvision
from safetensors.torch import load_file

net = torchvision.models.resnet18()
{stem}net.fc = torch.nn.Identity()
net.load_state_dict(load_file("model.safetensors"))
```"""


def model_card(config: dict) -> str:
    """``README.md``: huggingface_hub's model card, YAML front matter first."""
    conv = config["conv1"]
    elsewhere = (
        ", or into torchvision's `resnet18` (the solo_ossl README, \"Into torchvision's resnet18\"):\n\n"
        + TORCHVISION_RECIPE.format(stem=CIFAR_STEM if config["stem"] == "cifar" else "")
        if config["width"] == 1
        else f" with `solo_ossl.backbones.resnet18(cifar={config['stem'] == 'cifar'}, width={config['width']:g})`: "
        "torchvision has no ResNet18 of this width."
    )
    stem = (
        f"`conv1 = nn.Conv2d(3, {conv['out_channels']}, {conv['kernel_size']}, stride={conv['stride']}, "
        f"padding={conv['padding']}, "
        f"bias=False)`" + (", `maxpool = nn.Identity()`" if not config["maxpool"] else "")
    )
    return f"""---
library_name: solo_ossl
tags: [self-supervised-learning, online-continual-learning, resnet18, {config["method"]}]
license: mit
---
# ResNet18 backbone ({config["method"]}, width {config["width"]:g}, {config["stem"]} stem)

Exported by `python -m solo_ossl.export` from `{config["source_checkpoint"]}`; weights fingerprint
`{config["fingerprint"]}` (the first 16 hex digits of a sha256 over the `backbone.*` tensors, as solo_ossl prints it).

- Output: {config["num_features"]}-d pooled features (no `fc`).
- Input: RGB scaled to 0-1, normalized with mean {config["input"]["mean"]} and std {config["input"]["std"]}.
- Stem: {stem}.
- Names: torchvision's `resnet18` without `fc`.

Load it with solo_ossl (`++pretrained_ckpt=<this folder>`){elsewhere}

The training run's whole config is `run_config` in `config.json`.
"""


def export(checkpoint_path: str, out: str, trust_pickle: bool = False) -> dict[str, str]:
    """Write ``checkpoint_path``'s backbone to ``out``: a Hub-style folder, or a ``.safetensors`` file."""
    from safetensors.torch import save_file

    checkpoint = read_checkpoint(checkpoint_path, trust_pickle=trust_pickle)
    weights = {k: v.detach().cpu().contiguous() for k, v in backbone_state(checkpoint, checkpoint_path).items()}
    metadata = export_metadata(checkpoint, weights, checkpoint_path)
    out_path = Path(out)
    if out_path.suffix == ".safetensors":
        out_path.parent.mkdir(parents=True, exist_ok=True)
        save_file(weights, out_path, metadata=metadata)
        return metadata
    out_path.mkdir(parents=True, exist_ok=True)
    save_file(weights, out_path / EXPORTED_WEIGHTS, metadata=metadata)
    config = hub_config(metadata, weights)
    (out_path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_path / "README.md").write_text(model_card(config))
    return metadata


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m solo_ossl.export",
        description="Export a checkpoint's backbone (torchvision names, safetensors): a Hub-style folder "
        "(config.json, model.safetensors, README.md), or a single .safetensors file.",
    )
    p.add_argument("checkpoint", help="a solo_ossl, CaSSLe or solo-learn .ckpt, an export, or a torchvision state dict")
    p.add_argument("out", help="OUT_DIR for a Hub-style folder, or OUT.safetensors for the weights file alone")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="unpickle a .ckpt that holds Python objects (e.g. CaSSLe's argparse Namespace) in full; this runs any "
        "code the file holds: only for files whose source you trust",
    )
    return p


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict[str, str]:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    metadata = export(args.checkpoint, args.out, trust_pickle=args.trust_pickle)
    print(
        f"exported the {metadata['method']} backbone of {args.checkpoint} to {args.out} "
        f"(fingerprint {metadata['fingerprint']})"
    )
    return metadata


if __name__ == "__main__":
    main()
