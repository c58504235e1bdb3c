"""Data parallelism changes nothing but the speed: optimizer steps on 2 processes (gloo, CPU) equal the steps of 1
process over the same global batch, for an online local step (``optimize_step`` with the online mode's own
``average_gradients``) and for an offline step (the gradient average of ``DistributedDataParallel``, which Lightning's
DDP strategy applies). The model has no BatchNorm and its loss is a mean of per-sample terms, so that the two halves'
mean gradients average to the global batch's gradient; plain SGD, so that a wrong scale of the gradient shows in the
weights."""

import functools
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from solo_ossl.methods import BaseMethod
from solo_ossl.modules import simclr_projector
from solo_ossl.online.algorithm import optimize_step
from solo_ossl.utils.distributed import average_gradients

from .conftest import TINY


class PerSampleMethod(BaseMethod):
    """A BatchNorm-free backbone and the mean over samples of ||z1 - z2||^2."""

    name = "per_sample"

    def __init__(self, cfg, num_classes, mean, std) -> None:
        super().__init__(cfg, num_classes, mean, std)
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, self.features_dim)
        )

    def build_projector(self, features_dim, method_cfg):
        return simclr_projector(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    def ssl_loss(self, out1, out2):
        return (out1["z"] - out2["z"]).pow(2).sum(1).mean()


def build(seed: int = 0):
    from solo_ossl.args import load_config

    cfg = load_config(
        ["--config-name", "pretrain/embedded/simclr", *TINY, "++optimizer.name=sgd", "++channels_last=false"]
    )
    torch.manual_seed(seed)
    method = PerSampleMethod(cfg, 10, (0.5,) * 3, (0.25,) * 3)
    return method, method.build_optimizer()


def global_batch(size: int = 16):
    generator = torch.Generator().manual_seed(1)
    v1, v2 = torch.randn(size, 3, 16, 16, generator=generator), torch.randn(size, 3, 16, 16, generator=generator)
    return v1, v2, torch.randint(10, (size,), generator=generator)


def steps(method, optimizer, v1, v2, targets, mode: str, count: int = 2) -> None:
    """``count`` optimizer steps on the batch: the online mode's ``optimize_step`` (one gradient sync list for all of
    them, as a stream batch's local steps share one), or an offline step through ``DistributedDataParallel``."""
    if mode == "online":
        sync = functools.partial(average_gradients, list(method.parameters())) if dist.is_initialized() else None
        for _ in range(count):
            optimize_step(method, optimizer, v1, v2, targets, sync_gradients=sync)
        return
    model = nn.parallel.DistributedDataParallel(method) if dist.is_initialized() else method
    for _ in range(count):
        out1, out2 = model(v1), model(v2)
        class_loss, _ = method.classifier_loss([out1["feats"], out2["feats"]], targets)
        optimizer.zero_grad()
        (method.ssl_loss(out1, out2) + class_loss).backward()
        optimizer.step()


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for mode in MODES:
            method, optimizer = build()
            v1, v2, targets = (t.chunk(world)[rank] for t in global_batch())
            steps(method, optimizer, v1, v2, targets, mode)
            if rank == 0:
                torch.save(method.state_dict(), f"{out}/{mode}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MODES = ("online", "offline")


def test_two_processes_take_the_steps_of_one_process_over_the_same_global_batch(tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    for mode in MODES:
        method, optimizer = build()
        before = {k: v.clone() for k, v in method.state_dict().items()}
        steps(method, optimizer, *global_batch(), mode)
        two = torch.load(tmp_path / f"{mode}.pt")
        assert any(not torch.equal(before[k], v) for k, v in method.state_dict().items())  # the steps moved it
        for key, value in method.state_dict().items():
            torch.testing.assert_close(two[key], value, rtol=1e-5, atol=1e-6, msg=f"{mode}: {key}")
