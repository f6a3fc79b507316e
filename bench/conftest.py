"""Fixtures shared by bench/'s tests (test_bench.py, test_bench_sinks.py): bench/ on sys.path, a
fresh kernel memo per test, and ``cpu_measure``, measure.py with CUDA simulated on the CPU."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import configs  # noqa: E402,F401  (puts python/ on sys.path)
from gqa import compiler as gqa_compiler  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_kernel_memo():
    gqa_compiler.clear_memory_cache()
    yield
    gqa_compiler.clear_memory_cache()


class _CpuEvent:
    """torch.cuda.Event on the host clock."""

    def __init__(self, enable_timing: bool = False) -> None:
        self.t = 0.0

    def record(self, stream=None) -> None:
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, other: "_CpuEvent") -> float:
        return (other.t - self.t) * 1e3


@pytest.fixture
def cpu_measure(monkeypatch):
    """measure.py with CUDA replaced by the CPU, and "ours" = the reference rounded to the dtype (the
    output, and the LSE in float32 when the kernel writes one; contiguous K/V only, not page pools)."""
    torch = pytest.importorskip("torch")
    import measure
    monkeypatch.setattr(measure, "DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "Event", _CpuEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(measure, "cuda_healthy", lambda: True)

    def ours(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None):
        ref = measure.reference(q, k, v, attrs, lens, sinks=sinks, return_lse=lse is not None)
        if lse is None:
            return out.copy_(ref.to(out.dtype))
        out.copy_(ref[0].to(out.dtype))
        return out, lse.copy_(ref[1].to(lse.dtype))

    monkeypatch.setattr(measure, "run_ours", ours)
    monkeypatch.setattr(measure, "load_kernel", lambda attrs, cache_dir: object())
    return measure
