"""UMAP of a frozen backbone's test features, coloured by task and by class (needs the umap extra):
python main_umap.py --config-name linear/cifar100 ++pretrained_ckpt=PATH  ->  <output_dir>/<name>/umap.png
(Hydra's flags too: solo_ossl/args/cli.py)."""

import sys

from solo_ossl.args import LinearConfig
from solo_ossl.args.cli import run_entry_point
from solo_ossl.run.umap import run_umap
from solo_ossl.utils.errors import exit_on_user_error


def umap(cfg, overrides: list[str]):
    out = run_umap(cfg)
    print(f"UMAP: {out}")
    return out


@exit_on_user_error
def main(argv: list[str]):
    return run_entry_point(argv, LinearConfig, umap, "main_umap")


if __name__ == "__main__":
    main(sys.argv[1:])
