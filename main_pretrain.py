"""Self-supervised pretraining, offline or online: python main_pretrain.py --config-name NAME ++key=value ..."""

import sys

from lightning.pytorch.utilities import rank_zero_only

from solo_ossl.args import load_config
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str]) -> None:
    final = run_pretrain(load_config(argv))
    if rank_zero_only.rank == 0:
        print(f"checkpoint: {final}")


if __name__ == "__main__":
    main(sys.argv[1:])
