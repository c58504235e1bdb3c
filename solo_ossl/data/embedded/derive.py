"""Derive the embedded default dataset from the full CIFAR-100 arrays (see README.md beside this file).

python -m solo_ossl.data.embedded.derive ../shared/datasets/cifar100/cifar100_uint8.npz
"""

import hashlib
import sys
from pathlib import Path

import numpy as np

TRAIN_PER_CLASS, TEST_PER_CLASS = 100, 20
OUT = Path(__file__).resolve().parent / "cifar100_subset.npz"


def derive(source: Path, out: Path = OUT) -> str:
    with np.load(source) as f:
        data = {k: f[k] for k in f.files}
    # One fine class per superclass (the lowest fine label in it): 20 diverse classes.
    classes = [int(np.min(data["y_train"][data["coarse_train"] == c])) for c in range(20)]
    relabel = np.full(100, -1)
    relabel[classes] = np.arange(len(classes))
    arrays = {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        labels = data[f"y_{split}"]
        keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes])
        arrays[f"x_{split}"] = data[f"x_{split}"][keep]
        arrays[f"y_{split}"] = relabel[labels[keep]]
    arrays["label_names"] = np.asarray(data["fine_label_names"][classes]).astype(str)
    arrays["cifar100_labels"] = np.array(classes)
    np.savez_compressed(out, **arrays)
    return hashlib.sha256(out.read_bytes()).hexdigest()


if __name__ == "__main__":
    print(derive(Path(sys.argv[1])))
