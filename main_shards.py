"""Write a dataset as WebDataset shards, in the stream order its config streams:
python main_shards.py --out DIR [--samples-per-shard 1000] [--split train|test] --config-name NAME [++key=value ...]
then stream them with ++data.dataset=webdataset ++data.data_dir='DIR/train-{000000..000009}.tar'."""

import sys

from solo_ossl.run.shards import main_shards
from solo_ossl.utils.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str]) -> str | None:
    return main_shards(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
