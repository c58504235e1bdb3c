"""A continual sequence task by task (tasks 2..T from a task-1 checkpoint, one offline run per task), CaSSLe by
default: python main_continual.py --config-name pretrain/cifar100/barlow ++pretrained_ckpt=<task-1 ckpt> ...
(``++regime=offline`` fine-tunes task by task without distillation; Hydra's flags too: solo_ossl/args/cli.py)."""

import sys

from lightning.pytorch.utilities import rank_zero_only

from solo_ossl.args import PretrainConfig
from solo_ossl.args.cli import run_entry_point
from solo_ossl.run.continual import run_continual
from solo_ossl.utils.errors import exit_on_user_error


def continual(cfg, overrides: list[str]) -> list[str]:
    if cfg.regime == "offline" and not any(arg.lstrip("+").startswith("regime=") for arg in overrides):
        cfg.regime = "cassle"  # a pretrain/ config trains offline; this entry point is CaSSLe's unless told
    finals = run_continual(cfg)
    if rank_zero_only.rank == 0:
        print(f"checkpoint: {finals[-1]}")
    return finals


@exit_on_user_error
def main(argv: list[str]) -> list[str] | None:
    return run_entry_point(argv, PretrainConfig, continual, "main_continual")


if __name__ == "__main__":
    main(sys.argv[1:])
