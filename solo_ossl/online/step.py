"""What a local step does with the model: one optimizer step on the kept views (the method's loss over the global
batch, the online classifier, the backward, the gradients averaged over processes), and the no-grad forwards that
the bookkeeping needs (the stream batch's probe loss, a feature-keeping memory's features)."""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from solo_ossl.modules.frozen import batch_stats_without_update
from solo_ossl.online.learner import OnlineLearner
from solo_ossl.utils.distributed import gather_with_grad


def optimize_step(
    method,
    optimizer,
    v1: torch.Tensor,
    v2: torch.Tensor,
    targets: torch.Tensor,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    sync_gradients: Callable[[], None] | None = None,
    sizes: list[int] | None = None,
) -> tuple[torch.Tensor, dict, dict]:
    """One optimizer step on the kept views: the method's SSL loss over the global batch plus the online classifier
    on detached features. Returns the SSL loss (on the device) and this process's outputs of both views.
    ``backward`` is Lightning's ``manual_backward`` in a run (precision plugin), plain autograd in the bare loop;
    ``sync_gradients`` averages the gradients over processes; ``sizes``: every process's number of kept samples
    where they differ (RALS's global choice), so that the classifier's mean is over the global batch too."""
    out1, out2 = method(v1), method(v2)
    loss = method.global_ssl_loss(out1, out2, sizes)
    feats = [out1["feats"], out2["feats"]]
    if sizes is not None:  # unequal shares: a mean of the per-process means would weigh samples unequally
        feats, targets = [gather_with_grad(f.detach(), sizes) for f in feats], gather_with_grad(targets, sizes)
    class_loss, _ = method.classifier_loss(feats, targets)
    optimizer.zero_grad()
    backward(loss + class_loss)
    if sync_gradients is not None:
        sync_gradients()
    optimizer.step()
    return loss, out1, out2


@torch.no_grad()
def probe_loss(learner: OnlineLearner, method, views: list[torch.Tensor]) -> torch.Tensor:
    """SSL loss of the stream batch on fixed views, under the weights just updated."""
    with batch_stats_without_update(method):
        loss = method.global_ssl_loss(method(views[0]), method(views[1]))
    learner.images_forward += 2 * views[0].size(0)
    return loss


@torch.no_grad()
def heldout_probe_loss(learner: OnlineLearner, method, augment) -> torch.Tensor:
    """SSL loss of the held-out set (``online.probe_heldout``) on its fixed views, under the weights just updated.
    Each process computes it whole (its own loss, no gather), so the mean over processes is the same value."""
    v1, v2 = learner.heldout_views(augment, method.device)
    with batch_stats_without_update(method):
        return method.ssl_loss(method(v1), method(v2))


@torch.no_grad()
def memory_features(learner: OnlineLearner, method, x: torch.Tensor) -> torch.Tensor:
    """What a feature-keeping memory (MinRed) stores for samples ``x`` as the memory holds them: the current
    model's L2-normalized projection of the un-augmented images, BatchNorm with batch statistics and its running
    statistics untouched (no random numbers are drawn). DALI's eval transform decodes file indices itself."""
    images = x if hasattr(method.augment, "prefetch") else learner.stored_images(x, method.device)
    with batch_stats_without_update(method):
        return F.normalize(method(method.eval_transform(images), momentum=False)["z"].float(), dim=1)
