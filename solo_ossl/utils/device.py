"""The training device and what follows from it: the accelerator, numeric precision, random-number state and GPU
defaults.

Precision ``auto`` takes bf16 autocast only where the hardware runs it natively: on an avx2-only CPU it was measured
15x slower than fp32, and pre-Ampere GPUs only emulate it. A CUDA GPU without native bf16 gets fp16 autocast with
Lightning's GradScaler.
"""

import os
import random
from pathlib import Path

import numpy as np
import torch

from solo_ossl.utils.errors import SoloOsslError

PRECISIONS = ("auto", "32", "32-true", "bf16-mixed", "16-mixed")


def resolve_accelerator(accelerator: str) -> str:
    """``cpu`` or ``gpu`` for the ``accelerator`` key (auto | cpu | gpu | cuda)."""
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise SoloOsslError(f"accelerator={accelerator} but CUDA is not available: use ++accelerator=cpu (or auto)")
        return "gpu"
    return "cpu"


def training_device(accelerator: str) -> torch.device:
    """The device a single-process run trains on (the current CUDA device for ``gpu``)."""
    if resolve_accelerator(accelerator) == "gpu":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), ``?`` where the system does not say."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "?"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity where the system has one (Linux), else all of them
    (macOS and Windows have no ``os.sched_getaffinity``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_name() -> str:
    """What a run's numbers were measured on: the GPU where CUDA is present, else the CPU, with the core count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (host {cpu_name()})"
    return f"{cpu_name()}, {os.cpu_count()} cores"


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def cuda_has_native_bf16() -> bool:
    # is_bf16_supported() alone also counts emulation (pre-Ampere GPUs), which is slower than fp16.
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def choose_precision(precision: str, device_type: str, native_bf16: bool) -> str:
    """Lightning's precision for ``precision`` (``PRECISIONS``) on a ``cpu`` or ``cuda`` device whose native bf16
    support is ``native_bf16``."""
    if precision != "auto":
        return "32-true" if precision == "32" else precision
    if native_bf16:
        return "bf16-mixed"
    return "16-mixed" if device_type == "cuda" else "32-true"


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """``choose_precision`` for the device that ``accelerator`` trains on, with this machine's capabilities."""
    if resolve_accelerator(accelerator) == "gpu":
        return choose_precision(precision, "cuda", cuda_has_native_bf16())
    return choose_precision(precision, "cpu", cpu_has_native_bf16())


def default_image_loader() -> str:
    """``dali`` where it pays (CUDA and NVIDIA DALI present), else ``torch``: what the ImageNet-100 scripts pass
    (``bash_files/loader.sh``; this module imports neither the data package nor DALI, so the check costs little)."""
    from lightning_utilities.core.imports import module_available

    return "dali" if torch.cuda.is_available() and module_available("nvidia.dali") else "torch"


def describe_run_device(precision: str, accelerator: str) -> str:
    """One line saying where a run computes and at which precision, and why (what ``auto`` chose)."""
    device, resolved = resolve_accelerator(accelerator), resolve_precision(precision, accelerator)
    where = torch.cuda.get_device_name() if device == "gpu" else f"{cpu_name()}, {usable_cores()} cores"
    if precision != "auto":
        why = f"precision={precision} as configured"
    elif resolved == "bf16-mixed":
        why = "auto: the device runs bf16 natively"
    elif device == "gpu":
        why = "auto: this GPU has no native bf16, so fp16 with a GradScaler"
    else:
        why = "auto: this CPU has no native bf16 (avx512_bf16 or AMX), and emulated bf16 was 15x slower than fp32"
    return f"device: {device} ({where}); precision: {resolved} ({why})"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a Lightning precision string (``None`` for full precision)."""
    if str(precision).startswith("bf16"):
        return torch.bfloat16
    if str(precision).startswith("16"):
        return torch.float16
    return None


def configure_device_defaults(device: torch.device, deterministic: bool = False) -> None:
    """Per-process GPU defaults: cuDNN picks the fastest convolution for the (fixed) input shapes, and fp32
    matrix products may use TF32. ``deterministic`` trades the autotuning for kernels that give the same result in
    every process (cuDNN's benchmark mode may pick another kernel in a rerun or after a resume, and RALS's top-k
    turns a last-bit difference into other selected samples)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.set_float32_matmul_precision("high")
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True, warn_only=True)


def capture_rng_states(device: torch.device) -> dict:
    """The random states a resumed run must continue from: CPU, NumPy, Python, and the training device's (only
    that one: a checkpoint must not depend on how many GPUs the saving machine had)."""
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(states: dict, device: torch.device) -> None:
    """Restore ``capture_rng_states``'s output on ``device``.

    Across machines: a CUDA state resumes on any CUDA device (it is the generator state of the device that trained).
    Resuming a CPU checkpoint on a GPU, or a GPU checkpoint on the CPU, restores the CPU, NumPy and Python states;
    the GPU's generator (which CPU runs never used) is then seeded from the restored CPU generator, so the run is
    deterministic, but its device-side random draws differ from the uninterrupted run's. A warning says so. (Few
    draws use the device generator: augmentation parameters are drawn on the CPU, ``solo_ossl.data.augment``.)
    """
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    saved = states.get("cuda")
    if isinstance(saved, (list, tuple)):  # older checkpoints held every visible GPU's state (get_rng_state_all)
        saved = saved[device.index or 0] if device.type == "cuda" and len(saved) > (device.index or 0) else None
    if device.type == "cuda":
        if saved is not None:
            torch.cuda.set_rng_state(saved, device)
            return
        seed = int(torch.randint(2**62, (1,)).item())
        torch.cuda.default_generators[device.index or 0].manual_seed(seed)
        print(
            "warning: the checkpoint has no CUDA random state (saved on the CPU): the GPU generator is seeded from "
            "the restored CPU state, so the run is deterministic but differs from an uninterrupted one"
        )
    elif saved is not None:
        print(
            "warning: the checkpoint was saved on a GPU and resumes on the CPU: its CUDA random state is unused, so "
            "the run differs from an uninterrupted one"
        )


def trainer_precision(precision: str, accelerator: str) -> dict:
    """The ``L.Trainer`` arguments for a resolved precision. fp16 on the CPU is real fp16 autocast with a GradScaler
    (Lightning would silently switch it to bf16): slow, but it runs the GPU's fp16 path where a test can reach it."""
    if precision == "16-mixed" and resolve_accelerator(accelerator) == "cpu":
        from lightning.pytorch.plugins import MixedPrecision

        return {"plugins": [MixedPrecision("16-mixed", "cpu")]}
    return {"precision": precision}
