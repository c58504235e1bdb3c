from solo_ossl.eval.continual import continual_metrics, per_task_accuracy
from solo_ossl.eval.features import extract_features
from solo_ossl.eval.knn import knn_accuracy, knn_predictions

__all__ = ["continual_metrics", "extract_features", "knn_accuracy", "knn_predictions", "per_task_accuracy"]
