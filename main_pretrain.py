"""Self-supervised pretraining, offline or online: python main_pretrain.py --config-name NAME ++key=value ...
(Hydra's flags too: -m sweeps, --cfg job, --help; solo_ossl/args/cli.py)."""

import sys

from lightning.pytorch.utilities import rank_zero_only

from solo_ossl.args import PretrainConfig
from solo_ossl.args.cli import run_entry_point
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.errors import exit_on_user_error


def pretrain(cfg, overrides: list[str]) -> str:
    final = run_pretrain(cfg)
    if rank_zero_only.rank == 0:
        print(f"checkpoint: {final}")
    return final


@exit_on_user_error
def main(argv: list[str]) -> str | None:
    return run_entry_point(argv, PretrainConfig, pretrain, "main_pretrain")


if __name__ == "__main__":
    main(sys.argv[1:])
