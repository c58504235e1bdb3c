"""Data parallelism changes nothing but the speed, with every method's real loss: 2 processes (gloo, CPU), each given
half of a global batch, take the optimizer steps that 1 process takes over the whole batch, for every method of
``METHODS``, in four steps:
- offline, through ``DistributedDataParallel`` (what Lightning's DDP strategy wraps the module in), the method's own
  ``offline_step``;
- CaSSLe's step (offline, plus the distiller's loss);
- the online local step without selection (``optimize_step`` and the online mode's ``average_gradients``);
- the online local step with RALS, chosen over every process's units (``online.selection_scope=global``): the kept set
  is the one process's kept set, the shares differ between processes, and the step still equals one process's.
SyncBatchNorm has no CPU kernel, so BatchNorm is taken out of the models here (``tests/test_gpu_ready.py`` checks
SyncBatchNorm on a GPU); plain SGD, so that a wrong scale of the gradient shows in the weights. A control run without
the gather shows that the test sees the difference."""

import functools
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from solo_ossl.args import load_config
from solo_ossl.methods import METHODS, config_stem
from solo_ossl.model import build_model
from solo_ossl.online.selection import RalsSelection, expand_groups
from solo_ossl.online.step import optimize_step
from solo_ossl.utils.distributed import average_gradients, gather_sizes, gather_with_grad

from .conftest import TINY

BATCH = 32  # the global batch: 16 samples per process
STEPS = ("offline", "cassle", "online", "rals")
# Of the largest weight change: fp32 sums in another order. Measured 2026-12-05 (Intel Xeon): at most 4.2e-5 (SimCLR's
# CaSSLe step) with the gather; at least 9.9e-3 where a coupled loss sees one process's half (the control).
TOLERANCE = 5e-4
# A step's own float-order noise: one process on 1 thread against 2 threads. Most steps move by < 1.5e-5, but VICReg's
# CaSSLe step moves by 7.0e-4 (measured 2026-12-06, Xeon): its variance hinge, relu(1 - std), switches features on
# or off at the last bit. The gather may add no more than a few times that noise.
NOISE_FACTOR = 3


def without_batchnorm(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            without_batchnorm(child)
    return module


def build(name: str, regime: str, batchnorm: bool = False):
    group = 1 if METHODS[name].default_group_size == 1 else 4  # groups stay within a process: 4 units each
    cfg = load_config(
        [
            "--config-name",
            f"pretrain/embedded/{config_stem(name)}",
            *TINY,
            "++optimizer.name=sgd",
            "++optimizer.lr=0.1",
            "++channels_last=false",
            f"++method.group_size={group}",
            f"++regime={regime}",
            "++cassle.proj_hidden_dim=32",
        ]
    )
    torch.manual_seed(0)
    method = build_model(cfg, 10, (0.5,) * 3, (0.25,) * 3)
    if not batchnorm:
        without_batchnorm(method)
    method.log_dict = lambda *args, **kwargs: None  # no Lightning trainer here
    return method, method.build_optimizer()


class LightningLike(nn.Module):
    """What Lightning's DDP strategy wraps: a module whose forward is the LightningModule's training step."""

    def __init__(self, method) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch):
        return self.method.offline_step(batch, 0)


def global_batch():
    generator = torch.Generator().manual_seed(1)
    v1, v2 = (torch.randn(BATCH, 3, 16, 16, generator=generator) for _ in range(2))
    return v1, v2, torch.randint(10, (BATCH,), generator=generator)


def train(name: str, step: str, v1, v2, targets) -> dict:
    """Two optimizer steps of kind ``step`` on this process's part of the batch; the weights, and RALS's kept units
    (as indices into the global batch)."""
    method, optimizer = build(name, "cassle" if step == "cassle" else "offline")
    world, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    kept = None
    if step in ("offline", "cassle"):
        model = LightningLike(method)
        model = nn.parallel.DistributedDataParallel(model) if world > 1 else model
        for _ in range(2):
            loss = model([torch.arange(len(targets)), [v1, v2], targets])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        sync = functools.partial(average_gradients, list(method.parameters())) if world > 1 else None
        rule = RalsSelection()
        if world > 1:
            rule.choose_globally(rank, world)
        rule.start_stream_batch(method)
        optimize_step(method, optimizer, v1, v2, targets, sync_gradients=sync)  # moves the model from the anchor
        sizes = None
        if step == "rals":
            here = len(targets)
            selected = rule.select(method, 1, v1, v2, here // method.group_size // 2)  # k: half of the units
            local = expand_groups(selected.units, method.group_size)
            v1, v2, targets = v1[local], v2[local], targets[local]
            sizes = gather_sizes(len(local), local.device) if world > 1 else None
            kept = torch.sort(gather_with_grad(local + rank * here, sizes)).values  # indices into the global batch
        optimize_step(method, optimizer, v1, v2, targets, sync_gradients=sync, sizes=sizes)
    return {"weights": {k: v.detach().clone() for k, v in method.state_dict().items()}, "kept": kept}


def worker(rank: int, world: int, port: int, out: str, runs: list[tuple[str, str]], control: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    if control:  # each process's loss over its own half: what the methods computed before the gather
        import solo_ossl.methods.base as base

        base.gather_outputs = lambda outputs, sizes=None: outputs
    try:
        results = {}
        for name, step in runs:
            v1, v2, targets = (t.chunk(world)[rank] for t in global_batch())
            results[name, step] = train(name, step, v1, v2, targets)
        if rank == 0:
            torch.save(results, f"{out}/results.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(tmp_path, runs, control: bool = False) -> dict:
    mp.spawn(worker, args=(2, free_port(), str(tmp_path), runs, control), nprocs=2, join=True)
    return torch.load(tmp_path / "results.pt")


def update_error(two: dict, one: dict, before: dict) -> float:
    """The largest difference between two runs' weights, relative to the largest change the one-process run made to
    any weight: 0 for equal steps, about 1 for unrelated ones. (Per tensor it would divide by the noise of tensors
    that the loss leaves unchanged, e.g. the last projector bias, which Barlow Twins' standardization removes.)"""
    floats = [k for k in one if one[k].is_floating_point()]
    step = max((one[k] - before[k]).abs().max().item() for k in floats)
    return max((two[k] - one[k]).abs().max().item() for k in floats) / step


def one_process(name: str, step: str, threads: int | None = None) -> tuple[dict, dict]:
    """One process's run over the whole batch (on ``threads`` torch threads), and the weights it started from."""
    before = build(name, "cassle" if step == "cassle" else "offline")[0].state_dict()
    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        return train(name, step, *global_batch()), before
    finally:
        torch.set_num_threads(default)


def float_order_noise(name: str, step: str) -> float:
    """How far one process's step moves when only its summation order changes (1 against 2 threads)."""
    (one, before), (two, _) = one_process(name, step, threads=1), one_process(name, step, threads=2)
    return update_error(two["weights"], one["weights"], before)


@pytest.mark.long
def test_two_processes_take_one_process_steps_for_every_method(tmp_path):
    runs = [(name, step) for name in sorted(METHODS) for step in STEPS]
    two = two_processes(tmp_path, runs)
    for name, step in runs:
        one, before = one_process(name, step)
        if step == "rals":  # the global top-k: the processes' kept samples together are the one process's
            assert torch.equal(two[name, step]["kept"], one["kept"]) and len(one["kept"]) == BATCH // 2, name
        error = update_error(two[name, step]["weights"], one["weights"], before)
        assert error < TOLERANCE or error < NOISE_FACTOR * float_order_noise(name, step), (name, step, error)


@pytest.mark.long
def test_the_test_sees_a_loss_that_each_process_computes_over_its_own_half(tmp_path):
    # VICReg's CaSSLe step too, whose float-order noise widens its bound: without the gather it moved 0.17 (Xeon),
    # 240 times that noise.
    runs = [
        ("simclr", "offline"),
        ("barlow_twins", "cassle"),
        ("vicreg", "online"),
        ("mocov3", "rals"),
        ("vicreg", "cassle"),
    ]
    two = two_processes(tmp_path, runs, control=True)
    for name, step in runs:
        one, before = one_process(name, step)
        error = update_error(two[name, step]["weights"], one["weights"], before)
        assert error > 10 * TOLERANCE and error > 10 * NOISE_FACTOR * float_order_noise(name, step), (name, step)


def syncbn_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=rank, world_size=world)
    torch.cuda.set_device(rank)
    try:
        torch.save(syncbn_run(rank, world, torch.device("cuda", rank)), f"{out}/syncbn{rank}.pt")
    finally:
        dist.destroy_process_group()


def syncbn_run(rank: int, world: int, device: torch.device) -> dict:
    """Barlow Twins with BatchNorm (SyncBatchNorm over several processes): two SGD steps, then a RALS-style scoring
    pass that must leave the running statistics alone."""
    from solo_ossl.modules.frozen import batch_stats_without_update

    method, _ = build("barlow_twins", "offline", batchnorm=True)
    method = method.to(device)
    if world > 1:
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    v1, v2, targets = (t.chunk(world)[rank].to(device) for t in global_batch())
    optimizer = method.build_optimizer()
    for _ in range(2):
        loss = method.global_ssl_loss(method(v1), method(v2))
        optimizer.zero_grad()
        loss.backward()
        average_gradients(list(method.parameters()))
        optimizer.step()
    buffers = {k: v.clone() for k, v in method.state_dict().items() if "running" in k}
    with torch.no_grad(), batch_stats_without_update(method):
        scores = method.global_unit_losses(method(v1), method(v2))
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in buffers.items())
    return {"weights": {k: v.cpu() for k, v in method.state_dict().items()}, "scores": scores.cpu()}


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (SyncBatchNorm over NCCL)")
def test_syncbatchnorm_gives_two_gpus_the_one_gpu_steps_and_scores(tmp_path):
    """With BatchNorm kept, as SyncBatchNorm: 2 GPUs with half the batch each equal 1 GPU over the whole batch, and
    the scoring pass (batch statistics over both processes, running statistics untouched) scores alike."""
    mp.spawn(syncbn_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    one = syncbn_run(0, 1, torch.device("cuda", 0))
    parts = [torch.load(tmp_path / f"syncbn{r}.pt") for r in range(2)]
    for key, value in one["weights"].items():
        if value.is_floating_point():
            torch.testing.assert_close(parts[0]["weights"][key], value, rtol=1e-3, atol=1e-5, msg=key)
    torch.testing.assert_close(torch.cat([p["scores"] for p in parts]), one["scores"], rtol=1e-3, atol=1e-5)
