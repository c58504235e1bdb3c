"""CaSSLe over tasks 2..T from a task-1 checkpoint, one offline run per task:
python main_continual.py --config-name pretrain/cifar100/barlow ++pretrained_ckpt=<task-1 ckpt> ++key=value ..."""

import sys

from lightning.pytorch.utilities import rank_zero_only

from solo_ossl.args import load_config
from solo_ossl.continual import run_continual
from solo_ossl.utils.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str]) -> None:
    finals = run_continual(load_config(argv))
    if rank_zero_only.rank == 0:
        print(f"checkpoint: {finals[-1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
