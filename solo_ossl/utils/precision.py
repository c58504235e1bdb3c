"""Choosing numeric precision: bf16 autocast only where the hardware runs it natively (on an avx2-only CPU it
was measured 15x slower than fp32)."""

from pathlib import Path

import torch

from solo_ossl.utils.errors import SoloOsslError

CHOICES = ("auto", "32", "32-true", "bf16-mixed", "16-mixed")


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str) -> str:
    if precision not in CHOICES:
        raise SoloOsslError(f"unknown precision '{precision}' (choose {', '.join(CHOICES)})")
    if precision != "auto":
        return "32-true" if precision == "32" else precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
