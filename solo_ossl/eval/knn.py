"""Weighted k-nearest-neighbour accuracy of frozen features, computed as solo-learn's ``WeightedKNNClassifier``."""

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predictions(
    train_features: torch.Tensor,
    train_targets: torch.Tensor,
    test_features: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 256,
) -> torch.Tensor:
    """Classes of every test sample ranked by weighted vote, ``[num_test, num_classes]`` (best first).

    Features are L2-normalized and compared by cosine similarity; each of the k most similar training samples votes
    for its class with weight ``exp(similarity / temperature)``. Test samples are processed in chunks, so that
    50k x 10k fits in memory.
    """
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    num_classes = int(train_targets.max()) + 1
    k = min(k, len(train))
    ranked = []
    for start in range(0, len(test), chunk_size):
        similarity, neighbours = (test[start : start + chunk_size] @ train.T).topk(k, dim=1)
        weights = (similarity / temperature).exp()
        votes = torch.zeros(len(similarity), num_classes, device=similarity.device)
        votes.scatter_add_(1, train_targets[neighbours], weights)
        ranked.append(votes.argsort(dim=1, descending=True))
    return torch.cat(ranked)


def knn_accuracy(
    train_features: torch.Tensor,
    train_targets: torch.Tensor,
    test_features: torch.Tensor,
    test_targets: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
) -> tuple[float, float]:
    """(top-1, top-5) weighted kNN accuracy in percent."""
    return ranked_accuracy(knn_predictions(train_features, train_targets, test_features, k, temperature), test_targets)


def ranked_accuracy(ranked: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """(top-1, top-5) accuracy in percent of class rankings ``[N, num_classes]`` (best first)."""
    hits = ranked[:, : min(5, ranked.size(1))] == targets.unsqueeze(1)
    return 100 * hits[:, 0].float().mean().item(), 100 * hits.any(dim=1).float().mean().item()
