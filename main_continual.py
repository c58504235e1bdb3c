"""A continual sequence task by task (tasks 2..T from a task-1 checkpoint, one offline run per task), CaSSLe by
default: python main_continual.py --config-name pretrain/cifar100/barlow ++pretrained_ckpt=<task-1 ckpt> ...
(``++regime=offline`` fine-tunes task by task without distillation)."""

import sys

from lightning.pytorch.utilities import rank_zero_only

from solo_ossl.args import load_config
from solo_ossl.run.continual import run_continual
from solo_ossl.utils.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str]) -> None:
    cfg = load_config(argv)
    if cfg.regime == "offline" and not any(arg.lstrip("+").startswith("regime=") for arg in argv):
        cfg.regime = "cassle"  # a pretrain/ config trains offline; this entry point is CaSSLe's unless told
    finals = run_continual(cfg)
    if rank_zero_only.rank == 0:
        print(f"checkpoint: {finals[-1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
