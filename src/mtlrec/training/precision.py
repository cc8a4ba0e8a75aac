"""The training precision: ``fp32``, ``bf16`` autocast, or ``auto`` (bf16 where the hardware has it natively)."""

from __future__ import annotations

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a GPU that supports it, or a CPU with AVX512-BF16 (or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()


def resolve_precision(requested: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 where :func:`native_bf16`, else fp32.

    Raises:
        ValueError: ``requested`` is none of ``PRECISIONS``.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return requested
