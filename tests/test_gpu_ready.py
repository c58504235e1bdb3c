"""The GPU path, tested on the CPU where it can be (fake and meta devices, given capabilities, counted host reads);
the tests marked ``gpu`` run it on CUDA and skip without one."""

import functools
import warnings

import pytest
import torch

from solo_ossl.args import load_config
from solo_ossl.data.augment import LinearTrainAugment, MultiViewAugment
from solo_ossl.data.dali import resolve_dali_device
from solo_ossl.methods import METHODS
from solo_ossl.online import end_stream_batch, run_local_steps, train_stream_batch
from solo_ossl.online.step import memory_features
from solo_ossl.run.bare import bare_online_run
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils import device as device_utils
from solo_ossl.utils.device import capture_rng_states, choose_precision, restore_rng_states
from solo_ossl.utils.errors import SoloOsslError, check_finite_steps
from solo_ossl.utils.host_reads import count_host_reads, reads_by_origin

from .test_online import ONLINE, Recorder

STATS = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def view_configs():
    return load_config(["--config-name", "online/embedded/barlow_rals"]).data.augmentations


# ---- 1. the augmentation's parameters ----------------------------------------------------------------------
def test_augmentation_draws_on_the_host_when_the_model_moves():
    views = MultiViewAugment(view_configs(), 32, *STATS)
    linear = LinearTrainAugment(32, *STATS)
    for module in (views, linear):
        module.to("meta")
        assert {module.recipe.low.device, module.recipe.prob.device} == {torch.device("cpu")}
        assert module.normalize.mean.device.type == "meta"  # the normalization constants move
    assert list(views.state_dict()) == []  # nothing to save: the random states are the run's
    # Images on a device where no value can be read back: the augmentation needs none of theirs.
    out = views(torch.zeros(6, 3, 32, 32, dtype=torch.uint8, device="meta"))
    assert [v.shape for v in out] == [(6, 3, 32, 32)] * 2 and out[0].device.type == "meta"


def test_a_method_moved_to_another_device_keeps_host_samplers(tiny_config):
    cfg = tiny_config("online/embedded/barlow_rals")
    model = METHODS[cfg.method.name](cfg, 10, *STATS).to("meta")
    assert model.backbone.conv1.weight.device.type == "meta"
    assert model.augment.recipe.low.device == torch.device("cpu")


# ---- 2. DALI's device ----------------------------------------------------------------------------------------
def test_dali_device_follows_the_accelerator_and_refuses_a_mismatch(monkeypatch):
    assert resolve_dali_device("auto", "cpu") == "cpu"
    with pytest.raises(SoloOsslError, match="dali_device=gpu but the run trains on the cpu"):
        resolve_dali_device("gpu", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_dali_device("auto", "auto") == "gpu"
    assert resolve_dali_device("auto", "cpu") == "cpu"
    with pytest.raises(SoloOsslError, match="dali_device=cpu but the run trains on the gpu"):
        resolve_dali_device("cpu", "gpu")


# ---- 3. linear evaluation's device and precision -------------------------------------------------------------
def test_frozen_backbone_goes_to_the_training_device(tiny_config, monkeypatch):
    from solo_ossl.args import load_linear_config
    from solo_ossl.run import linear

    cfg = load_linear_config(
        ["--config-name", "linear/embedded", "++random_init=true", "++data.dataset=synthetic", "++precision=32"]
    )
    monkeypatch.setattr(linear, "training_device", lambda accelerator: torch.device("meta"))
    _, _, backbone, precision = linear.frozen_setup(cfg)
    assert next(backbone.parameters()).device.type == "meta" and precision == "32-true"


@pytest.mark.parametrize(
    "device_type, native_bf16, expected",
    [("cuda", True, "bf16-mixed"), ("cuda", False, "16-mixed"), ("cpu", True, "bf16-mixed"), ("cpu", False, "32-true")],
)
def test_auto_precision_uses_native_bf16_only(device_type, native_bf16, expected):
    assert choose_precision("auto", device_type, native_bf16) == expected
    assert choose_precision("32", device_type, native_bf16) == "32-true"


def test_auto_precision_follows_the_accelerator_not_the_cuda_flag(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_utils, "cuda_has_native_bf16", lambda: False)
    monkeypatch.setattr(device_utils, "cpu_has_native_bf16", lambda: True)
    assert device_utils.resolve_precision("auto", "cpu") == "bf16-mixed"
    assert device_utils.resolve_precision("auto", "gpu") == "16-mixed"


# ---- 4. random states ----------------------------------------------------------------------------------------
class FakeCuda:
    """The CUDA RNG calls of ``solo_ossl.utils.device``, recorded, for a machine with ``count`` GPUs."""

    def __init__(self, monkeypatch, count: int) -> None:
        self.states = {i: torch.full((4,), i, dtype=torch.uint8) for i in range(count)}
        self.seeded: dict[int, int] = {}
        fake = self

        class Generator:
            def __init__(self, index):
                self.index = index

            def manual_seed(self, seed):
                fake.seeded[self.index] = seed

        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: self.states[device.index].clone())
        monkeypatch.setattr(
            torch.cuda, "set_rng_state", lambda state, device: self.states.__setitem__(device.index, state)
        )
        monkeypatch.setattr(torch.cuda, "default_generators", tuple(Generator(i) for i in range(count)), raising=False)


def test_rng_state_holds_only_the_training_devices_generator(monkeypatch):
    cuda = FakeCuda(monkeypatch, count=4)
    states = capture_rng_states(torch.device("cuda", 2))
    assert torch.equal(states["cuda"], cuda.states[2])
    assert "cuda" not in capture_rng_states(torch.device("cpu"))
    # Resumed on a one-GPU machine: its device 0 continues device 2's sequence.
    one = FakeCuda(monkeypatch, count=1)
    restore_rng_states(states, torch.device("cuda", 0))
    assert torch.equal(one.states[0], cuda.states[2])


def test_rng_restore_across_machines(monkeypatch, capsys):
    FakeCuda(monkeypatch, count=1)
    saved_on_cpu = capture_rng_states(torch.device("cpu"))
    # Older checkpoints held every GPU's state; one from an 8-GPU machine resumes on GPU 0 without an IndexError.
    legacy = dict(saved_on_cpu, cuda=[torch.full((4,), 7, dtype=torch.uint8)] * 8)
    restore_rng_states(legacy, torch.device("cuda", 0))
    cuda = FakeCuda(monkeypatch, count=1)
    restore_rng_states(saved_on_cpu, torch.device("cuda", 0))
    first_seed = cuda.seeded[0]
    restore_rng_states(saved_on_cpu, torch.device("cuda", 0))
    assert cuda.seeded[0] == first_seed  # CPU -> GPU: seeded from the restored CPU state, deterministically
    assert "no CUDA random state" in capsys.readouterr().out
    restore_rng_states(capture_rng_states(torch.device("cuda", 0)), torch.device("cpu"))
    assert "saved on a GPU and resumes on the CPU" in capsys.readouterr().out


# ---- 5. fp16 with a GradScaler -------------------------------------------------------------------------------
def test_a_non_finite_loss_names_its_step_and_finite_losses_pass():
    check_finite_steps(torch.tensor([3.0, 2.0, 1.0]), lambda step: f"step {step}")
    with pytest.raises(SoloOsslError, match="became nan at step 1"):
        check_finite_steps(torch.tensor([3.0, float("nan"), float("inf")]), lambda step: f"step {step}")


@pytest.mark.long
def test_fp16_online_run_skips_overflows_and_resumes_its_grad_scaler(tiny_config, tmp_path):
    common = [*ONLINE, "++online.checkpoint_every=2", "++method.group_size=4", "++online.k=24", "++precision=16-mixed"]
    # 2 stream batches (tasks 1-2 of 5, one stream batch each): fp16 autocast is slow on a CPU
    common += ["++data.synthetic_per_class=8", "++data.last_task=2"]
    full = torch.load(
        run_pretrain(tiny_config("online/embedded/barlow_rals", *common, "++name=full")), weights_only=False
    )
    # fp16 gradients overflowed at GradScaler's initial scale 2^16 and it halved it (skipping those steps);
    # the fp32 losses stayed finite, so the run did not stop as diverged.
    assert full["MixedPrecision"]["scale"] < 2.0**16
    # After stream batch 1 of 2, with the scale it lowered: a resume that lost it would overflow and skip steps again.
    middle = tmp_path / "full" / "checkpoints" / "task1.ckpt"
    assert torch.load(middle, weights_only=False)["MixedPrecision"]["scale"] < 2.0**16
    resumed_cfg = tiny_config("online/embedded/barlow_rals", *common, "++name=resumed", f"++resume={middle}")
    resumed = torch.load(run_pretrain(resumed_cfg), weights_only=False)
    assert resumed["MixedPrecision"] == full["MixedPrecision"]
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


# ---- the image memory on the training device -----------------------------------------------------------------
def test_image_memory_lives_and_samples_on_the_device_it_is_filled_from():
    from solo_ossl.memory import build_memory

    memory = build_memory(8, "reservoir", seed=0)
    for _ in range(3):  # slots and draws come from the host generator; no value of the images is read
        memory.add(
            torch.zeros(5, 3, 4, 4, dtype=torch.uint8, device="meta"), torch.zeros(5, dtype=torch.long, device="meta")
        )
    x, y = memory.sample(4)
    assert x.device.type == y.device.type == "meta" and x.shape == (4, 3, 4, 4) and len(memory) == 8


def test_gpu_defaults_are_set_for_cuda_only(monkeypatch):
    from solo_ossl.utils.device import configure_device_defaults

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    precision = torch.get_float32_matmul_precision()
    try:
        configure_device_defaults(torch.device("cpu"))
        assert not torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == precision
        configure_device_defaults(torch.device("cuda", 0))
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(precision)


# ---- host reads per local step -------------------------------------------------------------------------------
@pytest.mark.parametrize("selection", ["rals", "none"])
def test_the_online_step_reads_device_values_once_per_stream_batch(tiny_config, selection):
    reads = {}
    for n in (3, 6):
        overrides = [*ONLINE, "++method.group_size=4", "++online.k=24", f"++online.selection={selection}"]
        run = bare_online_run(tiny_config("online/embedded/barlow_rals", *overrides, f"++online.steps_per_batch={n}"))
        for _, batch in zip(range(5), run.batches(), strict=False):
            with count_host_reads() as counts:
                log, values = train_stream_batch(run.learner, run.model, run.optimizer, batch)
            reads.setdefault(n, []).append(reads_by_origin(counts).get("solo_ossl", 0))
    # The same reads at N = 3 and N = 6: none inside the loop of local steps.
    assert reads[3][2:] == reads[6][2:] and max(reads[6]) <= 6


# ---- on a GPU ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@needs_cuda
def test_gpu_online_step_has_no_syncs_inside_the_local_steps(tiny_config):
    overrides = [*ONLINE, "++method.group_size=4", "++online.k=24", "++accelerator=gpu"]
    run = bare_online_run(tiny_config("online/embedded/barlow_rals", *overrides))
    caught = []
    for _, batch in zip(range(4), run.batches(), strict=False):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as w, torch.autocast("cuda", dtype=torch.bfloat16):
                warnings.simplefilter("always")
                log = run_local_steps(run.learner, run.model, run.optimizer, batch)
            caught.extend(str(x.message) for x in w if "synchroniz" in str(x.message))
        finally:
            torch.cuda.set_sync_debug_mode(0)
        features = functools.partial(memory_features, run.learner, run.model)
        end_stream_batch(run.learner, batch, log, features)  # the stream batch's one read
    assert not caught, caught


@pytest.mark.gpu
@needs_cuda
def test_gpu_online_resume_with_deterministic_kernels_gives_the_uninterrupted_weights(tiny_config, tmp_path):
    # In cuDNN's benchmark mode a resumed run may pick other kernels, and RALS's top-k turns their last-bit
    # differences into other selected samples (measured on an H200: conv1 off by more than 1e-4); ++deterministic=true
    # is the mode in which a resume is exact.
    common = [*ONLINE, "++online.checkpoint_every=2", "++method.group_size=4", "++online.k=24", "++accelerator=gpu"]
    common += ["++deterministic=true"]
    full = torch.load(
        run_pretrain(tiny_config("online/embedded/barlow_rals", *common, "++name=full")), weights_only=False
    )
    run_pretrain(tiny_config("online/embedded/barlow_rals", *common, "++name=cut"), [Recorder(stop_after=7)])
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["online"]["rng"]["cuda"].dtype == torch.uint8
    resumed_cfg = tiny_config("online/embedded/barlow_rals", *common, "++name=cut", f"++resume={last}")
    resumed = torch.load(run_pretrain(resumed_cfg), weights_only=False)["state_dict"]
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed[key]), key
