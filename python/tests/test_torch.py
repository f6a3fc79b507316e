"""Checks with real PyTorch tensors that need no GPU (skipped when torch is not installed)."""

from __future__ import annotations

import pytest

import gqa

torch = pytest.importorskip("torch")


def test_cpu_tensors_are_rejected():
    q = torch.zeros(1, 4, 8, 16, dtype=torch.float16)
    k = torch.zeros(1, 2, 8, 16, dtype=torch.float16)
    with pytest.raises(ValueError, match="q is on device cpu; gqa.attention needs CUDA tensors"):
        gqa.attention(q, k, k)


def test_torch_dtype_names():
    assert [gqa.dtypes.normalize_dtype(d) for d in (torch.float16, torch.bfloat16, torch.float32)] == [
        "f16", "bf16", "f32"]
    with pytest.raises(TypeError):
        gqa.dtypes.normalize_dtype(torch.float64)


def test_reference_accepts_cpu_tensors():
    q = torch.randn(1, 4, 3, 8)
    k = torch.randn(1, 2, 5, 8)
    ref = gqa.reference.attention(q, k, k, causal=True)
    assert ref.shape == (1, 4, 3, 8)
