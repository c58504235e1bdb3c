"""Linear evaluation of a frozen backbone: python main_linear.py --config-name NAME ++pretrained_ckpt=PATH ..."""

import sys

from lightning.pytorch.utilities import rank_zero_only

from solo_ossl.args import load_linear_config
from solo_ossl.run.linear import run_linear
from solo_ossl.utils.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str]) -> dict:
    results = run_linear(load_linear_config(argv))
    top5 = f", top-5 {results['top5']:.2f}%" if "top5" in results else ""
    if rank_zero_only.rank == 0:  # with devices > 1, every process evaluated
        print(f"linear probe ({results['checkpoint']}): top-1 {results['top1']:.2f}%{top5}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
