"""Several processes (devices, nodes) through Lightning's DDP strategy: the device check, the strategy of a run, and
the few collectives the online mode needs.

Offline pretraining, CaSSLe tasks and augmented linear evaluation use Lightning's ``DDPStrategy`` as it is. The
online mode uses ``OnlineDDPStrategy``: the same launcher, process group and checkpoint IO, but the module is not
wrapped in ``DistributedDataParallel``. DDP's reducer syncs gradients in the first backward after each forward of
the wrapped module, and one Lightning training step of the online mode is one stream batch with N backward passes;
the online step averages its gradients itself after every backward (``average_gradients``), one all-reduce per
local step.

Batch-coupled losses see the global batch: ``gather_with_grad`` concatenates every process's rows, and sends the
gradient of each gathered row back to the process that owns it, summed over the processes (solo-learn's
``GatherLayer``). Every process then computes the same loss over the global batch, and the gradient average of DDP
(or of ``average_gradients``) gives exactly one process's gradient over that batch.
"""

from datetime import timedelta

import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy

from solo_ossl.utils.device import resolve_accelerator, usable_cores
from solo_ossl.utils.errors import SoloOsslError


def available_devices(accelerator: str) -> int:
    """GPUs of this machine for ``gpu``; CPU cores for ``cpu`` (one process per device)."""
    if resolve_accelerator(accelerator) == "gpu":
        return torch.cuda.device_count()
    return usable_cores()


def check_devices(cfg) -> int:
    """Check ``devices`` and ``sync_batchnorm`` against this machine; the world size (processes over all nodes)."""
    if cfg.sync_batchnorm is True and resolve_accelerator(cfg.accelerator) == "cpu":
        raise SoloOsslError(
            "sync_batchnorm needs GPUs (torch's SyncBatchNorm runs on CUDA): set ++sync_batchnorm=false"
        )
    have = available_devices(cfg.accelerator)
    if cfg.devices > have:
        kind = "GPUs" if resolve_accelerator(cfg.accelerator) == "gpu" else "CPU cores"
        raise SoloOsslError(
            f"devices={cfg.devices} but this machine has {have} {kind}: use ++devices={max(1, have)} or fewer"
        )
    return cfg.devices * cfg.num_nodes


class OnlineDDPStrategy(DDPStrategy):
    """Lightning's DDP without the ``DistributedDataParallel`` wrapper (see the module docstring): the ranks start
    from rank 0's weights and buffers, and the online step averages gradients after each of its backward passes."""

    def configure_ddp(self) -> None:
        _sync_module_states(self.model)


def trainer_distribution(cfg, online: bool = False) -> dict:
    """``L.Trainer`` arguments for the devices, nodes, strategy and synchronized BatchNorm of ``cfg``."""
    world = check_devices(cfg)
    strategy: str | DDPStrategy = "auto"
    if world > 1:
        timeout = timedelta(seconds=cfg.dist_timeout_s)  # a crashed rank stops the others instead of hanging them
        strategy = OnlineDDPStrategy(timeout=timeout) if online else DDPStrategy(timeout=timeout)
    return dict(
        devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=strategy, sync_batchnorm=sync_batchnorm(cfg, world)
    )


def sync_batchnorm(cfg, world: int) -> bool:
    """Whether a run of ``world`` processes converts BatchNorm to SyncBatchNorm: ``cfg.sync_batchnorm``, or by default
    wherever SyncBatchNorm runs (GPUs)."""
    if world == 1:
        return False
    if cfg.sync_batchnorm is None:
        return resolve_accelerator(cfg.accelerator) == "gpu"
    return bool(cfg.sync_batchnorm)


def set_ranks(trainer) -> tuple[int, int]:
    """This process's (rank, world size), known before ``fit`` (Lightning sets them again when it starts)."""
    strategy = trainer.strategy
    if hasattr(strategy, "set_world_ranks"):
        strategy.set_world_ranks()
    return trainer.global_rank, trainer.world_size


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(parameters) -> None:
    """Replace every gradient by its mean over the ranks, in one all-reduce of a flat buffer."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads or not is_distributed():
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def world_rank() -> tuple[int, int]:
    """(world size, rank) of the process group, (1, 0) without one."""
    return (dist.get_world_size(), dist.get_rank()) if is_distributed() else (1, 0)


def gather_sizes(rows: int, device: torch.device) -> list[int]:
    """Every process's row count, in rank order (one small all-gather and a host read: for batches whose sizes
    differ between processes, e.g. RALS's global selection)."""
    if not is_distributed():
        return [rows]
    count = torch.tensor([rows], device=device)
    counts = [torch.empty_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    return [int(c) for c in torch.cat(counts).tolist()]


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        largest = max(sizes)
        padded = x.contiguous()
        if x.size(0) < largest:  # all_gather takes equal shapes: pad, then cut each part back to its size
            padded = torch.cat([padded, padded.new_zeros((largest - x.size(0), *x.shape[1:]))])
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every process's gradient of its loss, summed, for every gathered row
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def gather_with_grad(x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """Every process's rows of ``x``, in rank order, with gradient to the owner (``x`` itself in one process).
    ``sizes``: every process's row count where they differ (``gather_sizes``); equal to ``x``'s otherwise."""
    if not is_distributed():
        return x
    sizes = tuple(sizes) if sizes is not None else (x.size(0),) * dist.get_world_size()
    return _GatherWithGrad.apply(x, sizes)


def gather_outputs(outputs: dict[str, torch.Tensor], sizes: list[int] | None = None) -> dict[str, torch.Tensor]:
    """A view's outputs (``feats``, ``z``, ``p``, ``momentum_z`` ...) over the global batch (``gather_with_grad``)."""
    if not is_distributed():
        return outputs
    return {name: gather_with_grad(value, sizes) for name, value in outputs.items()}


def own_rows(global_rows: torch.Tensor) -> torch.Tensor:
    """This process's part of a tensor computed over the global batch of equal per-process parts."""
    world, rank = world_rank()
    if world == 1:
        return global_rows
    per_rank = global_rows.size(0) // world
    return global_rows[rank * per_rank : (rank + 1) * per_rank]


def all_reduce_(tensor: torch.Tensor, mean: bool = False) -> torch.Tensor:
    """Sum (or mean) of ``tensor`` over the ranks, in place; unchanged in a single process."""
    if is_distributed():
        dist.all_reduce(tensor)
        if mean:
            tensor /= dist.get_world_size()
    return tensor


def gather_to_all(obj) -> list:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def weights_checksum(module: torch.nn.Module) -> tuple[float, float]:
    """Sum and sum of squares of every parameter, in float64: equal for equal weights, and moved by any change."""
    total, squares = 0.0, 0.0
    with torch.no_grad():
        for p in module.parameters():
            value = p.detach().double()
            total += value.sum().item()
            squares += value.square().sum().item()
    return total, squares


def check_replicas(module: torch.nn.Module, where: str) -> None:
    """Stop when the processes' weights differ (they must stay identical under data-parallel training)."""
    sums = gather_to_all(weights_checksum(module))
    if any(s != sums[0] for s in sums):
        raise SoloOsslError(
            f"the processes' weights differ after {where} (checksums {sums}): a bug, please report it with the config"
        )
