"""Fixtures shared by bench/'s tests (test_bench*.py): bench/ on sys.path, a
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


def _unpaged(measure, pool, table, lens, layout):
    """The contiguous cache, in ``layout``, that measure.page_cache scattered into ``pool``: each sequence's
    pages in table order, up to its longest kv_len where given (beyond lie a last page's NaN slots)."""
    from gqa.shapes import from_bhsd_axes
    batch, pages = table.shape
    cache = pool[table.long()].reshape(batch, pages * pool.shape[1], *pool.shape[2:])  # bshd
    if lens is not None:
        cache = cache[:, :max(1, int(lens.max()))]
    return measure.as_bhsd(cache, "bshd").permute(*from_bhsd_axes(layout))


@pytest.fixture
def cpu_measure(monkeypatch):
    """measure.py with CUDA replaced by the CPU, and "ours" = the reference rounded to the dtype (the
    output, and the LSE in float32 when the kernel writes one; page pools are read back into a cache;
    packed K/V go to the reference with their offsets)."""
    torch = pytest.importorskip("torch")
    import measure
    monkeypatch.setattr(measure, "DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "Event", _CpuEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(measure, "cuda_healthy", lambda: True)

    def ours(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None, cu_seqlens_q=None,
             max_seqlen_q=None, cu_seqlens_k=None, max_seqlen_k=None):
        if block_table is not None:
            k, v = (_unpaged(measure, pool, block_table, lens, attrs.layout) for pool in (k, v))
        ref = measure.reference(q, k, v, attrs, lens, sinks=sinks, return_lse=lse is not None,
                                cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k)
        if lse is None:
            return out.copy_(ref.to(out.dtype))
        out.copy_(ref[0].to(out.dtype))
        return out, lse.copy_(ref[1].to(lse.dtype))

    monkeypatch.setattr(measure, "run_ours", ours)
    monkeypatch.setattr(measure, "load_kernel", lambda attrs, cache_dir: object())
    return measure


@pytest.fixture
def cpu_merge(cpu_measure, monkeypatch):
    """merge_measure.py with CUDA replaced by the CPU (``cpu_measure``), and "ours" = gqa.merge_attention_states
    on the host (torch, float32), writing ``out`` (o1 itself when in place) and ``out_lse``."""
    import gqa
    import merge_measure

    def ours(o1, lse1, o2, lse2, out, out_lse, attrs, kernel):
        return gqa.merge_attention_states(o1, lse1, o2, lse2, layout=None if o1.dim() == 3 else attrs.layout,
                                          out=out, out_lse=out_lse)

    monkeypatch.setattr(merge_measure, "run_merge", ours)
    monkeypatch.setattr(merge_measure, "load_merge_kernel", lambda attrs, cache_dir: object())
    return merge_measure
