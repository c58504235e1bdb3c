from solo_ossl.data.augment import EvalTransform, LinearTrainAugment, MultiViewAugment, Normalize
from solo_ossl.data.datasets import ArrayDataset, ImageFolderDataset, Splits, build_datasets
from solo_ossl.data.tasks import class_order, split_tasks, task_sample_indices

__all__ = [
    "ArrayDataset",
    "EvalTransform",
    "ImageFolderDataset",
    "LinearTrainAugment",
    "MultiViewAugment",
    "Normalize",
    "Splits",
    "build_datasets",
    "class_order",
    "split_tasks",
    "task_sample_indices",
]
