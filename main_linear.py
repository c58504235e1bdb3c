"""Linear evaluation of a frozen backbone: python main_linear.py --config-name NAME ++pretrained_ckpt=PATH ...
(Hydra's flags too: solo_ossl/args/cli.py)."""

import sys

from lightning.pytorch.utilities import rank_zero_only

from solo_ossl.args import LinearConfig
from solo_ossl.args.cli import run_entry_point
from solo_ossl.run.linear import run_linear
from solo_ossl.utils.errors import exit_on_user_error


def linear(cfg, overrides: list[str]) -> dict:
    results = run_linear(cfg)
    top5 = f", top-5 {results['top5']:.2f}%" if "top5" in results else ""
    if rank_zero_only.rank == 0:  # with devices > 1, every process evaluated
        print(f"linear probe ({results['checkpoint']}): top-1 {results['top1']:.2f}%{top5}")
    return results


@exit_on_user_error
def main(argv: list[str]) -> dict | None:
    return run_entry_point(argv, LinearConfig, linear, "main_linear")


if __name__ == "__main__":
    main(sys.argv[1:])
