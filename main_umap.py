"""UMAP of a frozen backbone's test features, coloured by task and by class (needs the umap extra):
python main_umap.py --config-name linear/cifar100 ++pretrained_ckpt=PATH  ->  <output_dir>/<name>/umap.png"""

import sys

from solo_ossl.args import load_linear_config
from solo_ossl.run.umap import run_umap
from solo_ossl.utils.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str]) -> None:
    out = run_umap(load_linear_config(argv))
    print(f"UMAP: {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
