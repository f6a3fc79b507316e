"""Checks with real PyTorch tensors that need no GPU (skipped when torch is not installed)."""

from __future__ import annotations

import pytest

import gqa
from conftest import REAL_COMPILER_LIB

torch = pytest.importorskip("torch")


@pytest.mark.skipif(REAL_COMPILER_LIB is None, reason="libgqa_compiler.so is not built")
def test_cpu_tensors_run_on_the_cpu(real_env):
    q = torch.randn(1, 4, 8, 16, dtype=torch.float16)
    k = torch.randn(1, 2, 8, 16, dtype=torch.float16)
    out = gqa.attention(q, k, k)
    assert out.dtype == torch.float16 and out.shape == q.shape
    ref = gqa.reference.attention(q.float().numpy(), k.float().numpy(), k.float().numpy())
    assert float(abs(out.float().numpy() - ref).max()) < 4e-3


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
