"""The PyTorch half of the device check: inputs, the float64 reference, the timer, the peers.

Imported only by the worker process of device_check.py (and by tests that have torch); nothing
else in bench/ imports torch but varlen.py (the ragged-batch helpers, imported from here).  Every
function that can fail on one configuration raises, and the task functions at the bottom turn that
into a record, so one bad configuration never stops a run.
"""

from __future__ import annotations

import hashlib
import time
import traceback
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Optional, Sequence

import numpy as np
import torch

import gqa
from gqa.shapes import from_bhsd_axes, make_shape, to_bhsd_axes

import configs
from configs import (CHIP, LSE_TOLERANCE, REFERENCE_CHECK_TOLERANCE, Attrs, BenchCase, CorrectnessCase, Shape,
                     reference_check_shapes)
from harness import DEFAULT_L2_BYTES, bench_row, correctness_run, input_sets, judge, median, plan_timing
from varlen import launch_options, make_cu_seqlens, reference_varlen

#: Where inputs live (the tests set "cpu" to run the glue code without a GPU).
DEVICE = "cuda"
TORCH_DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
#: The random sink logits are N(SINK_MEAN, SINK_STD²): against scores of about N(0, 1), some sinks
#: outweigh every key of a short row, most only shrink a long one a little.
SINK_MEAN, SINK_STD = 1.0, 2.0


class Refused(Exception):
    """A peer that does not support this configuration (recorded as ``skipped``, not an error)."""


# ------------------------------------------------------------------------------------------ inputs

def make_inputs(attrs: Attrs, shape: Shape, gen: torch.Generator, device: Optional[str] = None,
                q_std: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Fresh random q, k, v (normal, never zeros) in the kernel's layout, and the kv_lens tensor (None for
    packed K/V, whose ``shape.kv_lens`` are the segments); q is packed tokens [T, Hq, D] for a ragged batch
    (``shape.q_lens``), k and v its cache [B, Skv, Hkv, D], or packed [Tk, Hkv, D] (``attrs.packed_kv``)."""
    dtype = TORCH_DTYPES[attrs.dtype]
    device = device or DEVICE

    def randn(tokens: Optional[int], heads: int, seq: int, dim: int, std: float = 1.0) -> torch.Tensor:
        """Packed [tokens, heads, dim] where ``tokens`` is given, else (B, heads, seq, dim) in the layout."""
        dims = (tokens, heads, dim) if tokens is not None else make_shape(attrs.layout, shape.batch, heads, seq, dim)
        return randn_into(torch.empty(dims, device=device, dtype=dtype), gen, std)

    q_tokens = shape.tokens if shape.q_lens is not None else None
    kv_tokens = configs.kv_tokens(attrs, shape) if attrs.packed_kv else None
    q = randn(q_tokens, attrs.q_heads, shape.seq_q, attrs.head_dim, q_std)
    k = randn(kv_tokens, attrs.kv_heads, shape.seq_kv, attrs.head_dim)
    v = randn(kv_tokens, attrs.kv_heads, shape.seq_kv, attrs.dv)
    lens = None if shape.kv_lens is None or attrs.packed_kv else torch.tensor(shape.kv_lens, dtype=torch.int32,
                                                                                device=device)
    return q, k, v, lens


def randn_into(t: torch.Tensor, gen: torch.Generator, std: float = 1.0, chunk_elems: int = 1 << 28) -> torch.Tensor:
    """Fill ``t`` with N(0, std²) drawn in float32, then rounded to ``t``'s dtype, one batch slice at a
    time (no float32 copy of a whole 17 GB cache).  Drawing in bf16/f16 directly gives exact zeros
    (about 0.6% of the values on the CPU), which the checks must never see."""
    per_batch = max(1, t.numel() // max(1, t.shape[0]))
    step = max(1, chunk_elems // per_batch)
    for b0 in range(0, t.shape[0], step):
        part = t[b0:b0 + step]
        draw = torch.randn(part.shape, generator=gen, device=t.device, dtype=torch.float32)
        part.copy_(draw.mul_(std) if std != 1.0 else draw)
    return t


def make_sinks(attrs: Attrs, gen: torch.Generator, device: Optional[str] = None) -> Optional[torch.Tensor]:
    """Random float32 sink logits [Hq] (N(SINK_MEAN, SINK_STD²)) if the kernel takes sinks, else None."""
    if not attrs.sinks:
        return None
    sinks = torch.randn(attrs.q_heads, generator=gen, device=device or DEVICE, dtype=torch.float32)
    return sinks.mul_(SINK_STD).add_(SINK_MEAN)


def out_like(attrs: Attrs, shape: Shape, device: Optional[str] = None) -> torch.Tensor:
    """An output tensor (B, Hq, Sq, Dv) in the layout ([T, Hq, Dv] for a ragged batch), poisoned with NaN."""
    dims = ((shape.tokens, attrs.q_heads, attrs.dv) if shape.q_lens is not None
            else make_shape(attrs.layout, shape.batch, attrs.q_heads, shape.seq_q, attrs.dv))
    out = torch.empty(dims, dtype=TORCH_DTYPES[attrs.dtype], device=device or DEVICE)
    return out.fill_(float("nan"))


def lse_like(attrs: Attrs, shape: Shape, device: Optional[str] = None) -> Optional[torch.Tensor]:
    """The float32 LSE output [B, Hq, Sq] ([Hq, T] for a ragged batch) poisoned with NaN (an unwritten
    row shows) if the kernel writes one, else None."""
    if not attrs.lse:
        return None
    dims = (attrs.q_heads, shape.tokens) if shape.q_lens is not None else (shape.batch, attrs.q_heads, shape.seq_q)
    return torch.full(dims, float("nan"), dtype=torch.float32, device=device or DEVICE)


def as_bhsd(x: torch.Tensor, layout: str) -> torch.Tensor:
    """A (B, H, S, D) view of a tensor in ``layout`` (no copy)."""
    return x.permute(*to_bhsd_axes(layout))


# --------------------------------------------------------------------------------------- reference

def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attrs: Attrs,
              kv_lens: Optional[torch.Tensor] = None, *, sinks: Optional[torch.Tensor] = None,
              return_lse: bool = False, max_chunk_bytes: int = 1 << 30,
              cu_seqlens_q: Optional[torch.Tensor] = None, cu_seqlens_k: Optional[torch.Tensor] = None) -> Any:
    """REFERENCE §1 in float64 with PyTorch, on the inputs' device, in the inputs' layout.

    Query head h reads KV head h // g (q is viewed as (B, Hkv, g, Sq, D): no repeat of K/V);
    masks are bottom-right aligned against Skv, or against ``kv_lens[b]`` with keys j >= len
    masked; the window (from the effective window, so causal = (-1, 0)) keeps
    i + off - left <= j <= i + off + right; softcap after scaling; rows with no visible key are 0.
    ``sinks`` ([Hq]): head h's sink joins its rows' maximum and denominator as a logit without a
    value (compared with the scaled, softcapped scores).  ``return_lse``: returns ``(out, lse)``,
    lse [B, Hq, Sq] the natural-log logsumexp of each row's visible scores and its sink (-inf for a
    row with neither), as gqa.reference.attention; Skv may be 0 (every row with no key).
    Query rows are processed in chunks so that the scores stay under ``max_chunk_bytes``.
    A varlen kernel's ragged batch (q packed [T, Hq, D], ``cu_seqlens_q`` its offsets, k/v a cache
    [B, Skv, Hkv, D], or packed [Tk, Hkv, D] split by ``cu_seqlens_k``) is varlen.reference_varlen,
    sequence by sequence through this function.
    """
    if attrs.varlen:
        return reference_varlen(reference, q, k, v, attrs, cu_seqlens_q, kv_lens, cu_seqlens_k=cu_seqlens_k,
                                sinks=sinks, return_lse=return_lse, max_chunk_bytes=max_chunk_bytes)
    cfg = attrs.kernel_config()
    left, right = cfg.window
    qb, kb, vb = (as_bhsd(x, attrs.layout).to(torch.float64) for x in (q, k, v))
    batch, q_heads, seq_q, _ = qb.shape
    kv_heads, seq_kv, dv = kb.shape[1], kb.shape[2], vb.shape[3]
    g = q_heads // kv_heads
    qg = qb.reshape(batch, kv_heads, g, seq_q, qb.shape[3])
    kt = kb.unsqueeze(2).transpose(-1, -2)  # (B, Hkv, 1, D, Skv)
    vg = vb.unsqueeze(2)  # (B, Hkv, 1, Skv, Dv)
    device = qb.device
    lens = (torch.full((batch,), seq_kv, dtype=torch.int64, device=device) if kv_lens is None
            else kv_lens.to(device=device, dtype=torch.int64))
    off = (lens - seq_q).view(batch, 1, 1)
    j = torch.arange(seq_kv, device=device).view(1, 1, seq_kv)
    out = torch.empty(batch, kv_heads, g, seq_q, dv, dtype=torch.float64, device=device)
    lse = torch.empty(batch, kv_heads, g, seq_q, dtype=torch.float64, device=device) if return_lse else None
    sink = None if sinks is None else sinks.to(device=device, dtype=torch.float64).view(1, kv_heads, g, 1, 1)
    chunk = max(1, max_chunk_bytes // max(1, batch * q_heads * seq_kv * 8))
    for i0 in range(0, seq_q, chunk):
        i1 = min(seq_q, i0 + chunk)
        i = torch.arange(i0, i1, device=device).view(1, -1, 1)
        ok = (j < lens.view(batch, 1, 1)).expand(batch, i1 - i0, seq_kv)
        if left != -1:
            ok = ok & (j >= i + off - left)
        if right != -1:
            ok = ok & (j <= i + off + right)
        scores = torch.matmul(qg[:, :, :, i0:i1], kt) * cfg.scale
        if cfg.softcap:
            scores = cfg.softcap * torch.tanh(scores / cfg.softcap)
        visible = ok.view(batch, 1, 1, i1 - i0, seq_kv)
        scores = scores.masked_fill(~visible, float("-inf"))
        row_max = (scores.amax(dim=-1, keepdim=True) if seq_kv  # no key at all: amax has nothing to reduce
                   else scores.new_full(scores.shape[:-1] + (1,), float("-inf")))
        if sink is not None:
            row_max = torch.maximum(row_max, sink)
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
        p = torch.exp(scores - row_max)  # exp(-inf) = 0 on masked keys
        denom = p.sum(dim=-1, keepdim=True)
        if sink is not None:
            denom = denom + torch.exp(sink - row_max)
        weights = torch.where(denom > 0, p / denom.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(p))
        out[:, :, :, i0:i1] = torch.matmul(weights, vg)
        if lse is not None:
            lse[:, :, :, i0:i1] = torch.where(denom > 0, row_max + torch.log(denom), float("-inf"))[..., 0]
    out = out.reshape(batch, q_heads, seq_q, dv).permute(*from_bhsd_axes(attrs.layout))
    return out if lse is None else (out, lse.reshape(batch, q_heads, seq_q))


def rel_l2(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(‖out − ref‖₂ / ‖ref‖₂, max |out − ref|) in float64; the absolute norm when ref is all zero."""
    diff = out.to(torch.float64) - ref.to(torch.float64)
    num, den = float(torch.linalg.vector_norm(diff)), float(torch.linalg.vector_norm(ref.to(torch.float64)))
    max_abs = float(diff.abs().max()) if diff.numel() else 0.0
    return (num / den if den > 0 else num), max_abs


def numpy_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attrs: Attrs,
                    kv_lens: Optional[torch.Tensor], *, sinks: Optional[torch.Tensor] = None,
                    return_lse: bool = False, cu_seqlens_q: Optional[torch.Tensor] = None,
                    cu_seqlens_k: Optional[torch.Tensor] = None) -> Any:
    """gqa.reference.attention (numpy, float64, CPU) on the same inputs, as CPU tensors: the output,
    or ``(out, lse)`` with ``return_lse``; for a varlen kernel gqa.reference.attention_varlen with the
    offsets ``cu_seqlens_q`` (and packed K/V's ``cu_seqlens_k``)."""
    to_np = lambda t: None if t is None else t.detach().to(torch.float64).cpu().numpy()  # noqa: E731
    lens = None if kv_lens is None else kv_lens.cpu().numpy()
    if attrs.varlen:
        options = {name: x for name, x in attrs.attention_kwargs().items() if name != "layout"}  # packed bshd
        cu_k = None if cu_seqlens_k is None else cu_seqlens_k.cpu().numpy()
        ref = gqa.reference.attention_varlen(to_np(q), to_np(k), to_np(v), cu_seqlens_q.cpu().numpy(),
                                             cu_seqlens_k=cu_k, kv_lens=lens, sinks=to_np(sinks),
                                             return_lse=return_lse, **options)
    else:
        ref = gqa.reference.attention(to_np(q), to_np(k), to_np(v), kv_lens=lens, sinks=to_np(sinks),
                                      return_lse=return_lse, **attrs.attention_kwargs())
    as_tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in (ref if return_lse else (ref,))]
    return tuple(as_tensors) if return_lse else as_tensors[0]


def compare_lse(lse: torch.Tensor, expected: torch.Tensor) -> tuple[float, int]:
    """(max |lse − expected| over the rows where both are finite, rows that disagree in kind), the
    second counting a NaN (an unwritten row of the NaN-poisoned output), +inf, or a finite value where
    the reference has -inf or the reverse (a row with no key: -inf without a sink); as gpusim's
    compare_lse."""
    got = lse.detach().to(torch.float64)
    want = expected.detach().to(device=got.device, dtype=torch.float64)
    both_finite = torch.isfinite(got) & torch.isfinite(want)
    both_minus_inf = torch.isneginf(got) & torch.isneginf(want)
    mismatched = int((~(both_finite | both_minus_inf)).sum())
    diff = (got - want)[both_finite].abs()
    return (float(diff.max()) if diff.numel() else 0.0), mismatched


# ------------------------------------------------------------------------------------------- timer

@dataclass
class Timer:
    """CUDA-event timing of back-to-back calls queued behind a GPU sleep (see harness.TimingPlan).

    The sleep (``torch.cuda._sleep``) keeps the GPU busy while the host enqueues a group, so the
    events measure device time only, host overhead (Python, argument checks) excluded.
    """

    cycles_per_ms: float = 0.0

    def calibrate(self) -> None:
        """Measure the GPU's sleep cycles per millisecond once."""
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        cycles = 20_000_000
        torch.cuda._sleep(cycles // 10)  # wake the clocks
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
        end.synchronize()
        self.cycles_per_ms = cycles / max(start.elapsed_time(end), 1e-3)

    def sleep(self, ms: float) -> None:
        """Queue a GPU spin of about ``ms`` milliseconds."""
        if not self.cycles_per_ms:
            self.calibrate()
        torch.cuda._sleep(max(1000, int(ms * self.cycles_per_ms)))

    def _probe(self, fn: Callable[[int], Any], sets: int, calls: int = 5) -> tuple[float, float]:
        """(device ms per call, host ms per call) from ``calls`` calls queued behind a 20 ms sleep."""
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self.sleep(20.0)
        start.record()
        t0 = time.perf_counter()
        for i in range(calls):
            fn(i % sets)
        host = (time.perf_counter() - t0) * 1e3 / calls
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / calls, host

    def time(self, fn: Callable[[int], Any], sets: int = 1, *, total_ms: float = 300.0,
             warm: bool = False) -> dict[str, Any]:
        """Median device time per call of ``fn(i)`` (``i`` picks the input set, rotated).

        ``warm``: ``fn`` already ran once (loads and compiles are behind us).
        """
        if not warm:
            fn(0)
        torch.cuda.synchronize()
        est, host = self._probe(fn, sets, calls=1)
        if est < 2.0:  # cheap: a better estimate of both from more calls
            est, host = self._probe(fn, sets, calls=10)
        plan = plan_timing(est, total_ms=total_ms)
        for i in range(plan.warmup):
            fn(i % sets)
        events = []
        call = 0
        for _ in range(plan.groups):
            self.sleep(host * plan.per_group * 1.25 + 0.05)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(plan.per_group):
                fn(call % sets)
                call += 1
            end.record()
            events.append((start, end))
        torch.cuda.synchronize()
        per_call = [s.elapsed_time(e) / plan.per_group for s, e in events]
        return {"ms": median(per_call), "min_ms": min(per_call), "max_ms": max(per_call),
                "calls": plan.calls, "groups": plan.groups, "per_group": plan.per_group,
                "host_us": host * 1e3, "probe_ms": est}


# ---------------------------------------------------------------------------------------- ceilings

def copy_bandwidth(timer: Timer, nbytes: int = 2 << 30) -> dict[str, Any]:
    """Device-to-device copy of ``nbytes`` random bytes: GB/s counting bytes read plus written."""
    src = torch.randint(0, 255, (nbytes,), dtype=torch.uint8, device=DEVICE)
    dst = torch.empty_like(src)
    stats = timer.time(lambda i: dst.copy_(src), total_ms=200)
    return {"copy_gbps": 2 * nbytes / (stats["ms"] * 1e-3) / 1e9, "copy": {"bytes": nbytes, **stats}}


def matmul_rate(timer: Timer, n: int = 8192) -> dict[str, Any]:
    """An n x n x n bf16 matrix product on random data: TFLOP/s."""
    a = torch.randn(n, n, device=DEVICE).to(torch.bfloat16)
    b = torch.randn(n, n, device=DEVICE).to(torch.bfloat16)
    c = torch.empty(n, n, device=DEVICE, dtype=torch.bfloat16)
    stats = timer.time(lambda i: torch.mm(a, b, out=c), total_ms=300)
    return {"matmul_tflops": 2 * n ** 3 / (stats["ms"] * 1e-3) / 1e12, "matmul": {"n": n, **stats}}


def measure_ceilings(timer: Timer, copy_bytes: int = 2 << 30, n: int = 8192) -> dict[str, Any]:
    """The two ceilings (METHOD.md): copy bandwidth and bf16 matmul rate, measured once per run."""
    result = {**copy_bandwidth(timer, copy_bytes), **matmul_rate(timer, n)}
    torch.cuda.empty_cache()
    return result


def environment() -> dict[str, Any]:
    """What PyTorch says about the device and its libraries."""
    props = torch.cuda.get_device_properties(0)
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {"gpu": props.name, "sm_count": props.multi_processor_count,
            "l2_bytes": getattr(props, "L2_cache_size", None), "memory_bytes": props.total_memory,
            "capability": f"{props.major}.{props.minor}", "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "triton": triton_version}


def cuda_healthy() -> bool:
    """False after a sticky CUDA error (illegal address, ...): the worker must then be restarted."""
    try:
        torch.cuda.synchronize()
        torch.ones(1, device="cuda").add_(1).item()
        return True
    except Exception:  # noqa: BLE001 - any failure here means the context is gone
        return False


# ------------------------------------------------------------------------------------ correctness

def seed_of(*parts: Any) -> int:
    """A reproducible 62-bit seed from labels (stable across processes, unlike hash())."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 2


def _generator(base_seed: int, *parts: Any, device: Optional[str] = None) -> torch.Generator:
    return torch.Generator(device=device or DEVICE).manual_seed(seed_of(base_seed, *parts))


def reference_checks(case: CorrectnessCase, base_seed: int, device: Optional[str] = None) -> list[dict[str, Any]]:
    """Compare :func:`reference` (GPU) with gqa.reference (numpy) at the case's small sizes."""
    records = []
    attrs = case.attrs
    for shape in reference_check_shapes(attrs):
        record = {"case": case.name, "shape": shape.label(), "status": "error", "rel_diff": None, "message": ""}
        try:
            gen = _generator(base_seed, "ref", case.name, shape, device=device)
            q, k, v, lens = make_inputs(attrs, shape, gen, device=device, q_std=case.q_std)
            sinks = make_sinks(attrs, gen, device=device)
            cu_q, cu_k = make_cu_seqlens(attrs, shape, q.device)
            offsets = dict(cu_seqlens_q=cu_q, cu_seqlens_k=cu_k)
            ours = reference(q, k, v, attrs, lens, sinks=sinks, return_lse=attrs.lse, **offsets)
            theirs = numpy_reference(q, k, v, attrs, lens, sinks=sinks, return_lse=attrs.lse, **offsets)
            (ours, ours_lse), (theirs, theirs_lse) = (ours, theirs) if attrs.lse else ((ours, None), (theirs, None))
            diff, _ = rel_l2(ours.cpu(), theirs)
            agree = diff <= REFERENCE_CHECK_TOLERANCE
            if attrs.lse:
                lse_diff, mismatched = compare_lse(ours_lse.cpu(), theirs_lse)
                record.update(lse_diff=lse_diff, lse_mismatched=mismatched)
                agree = agree and not mismatched and lse_diff <= REFERENCE_CHECK_TOLERANCE
            record.update(rel_diff=diff, status="pass" if agree else "fail")
        except Exception as e:  # noqa: BLE001 - recorded, the run goes on
            record["message"] = f"{type(e).__name__}: {e}"
        records.append(record)
    return records


def load_kernel(attrs: Attrs, cache_dir: str) -> gqa.Kernel:
    """The compiled kernel from the carried cache (never compiles: the device has no compiler)."""
    return gqa.compile(attrs.q_heads, attrs.kv_heads, attrs.head_dim, chip=CHIP, cache_dir=cache_dir,
                       **attrs.compile_kwargs())


def page_cache(attrs: Attrs, k: torch.Tensor, v: torch.Tensor, gen: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k and v (contiguous, in the layout) scattered into page pools [pages, P, Hkv, D] in a shuffled
    order, with 3 spare pages and every unfilled slot NaN (a read of a wrong page shows), and the
    int32 block table [B, ceil(Skv / P)]."""
    P = attrs.page_size
    kb, vb = as_bhsd(k, attrs.layout), as_bhsd(v, attrs.layout)
    batch, heads, seq_kv = kb.shape[0], kb.shape[1], kb.shape[2]
    per_sequence = -(-seq_kv // P)
    num_pages = batch * per_sequence + 3
    order = torch.randperm(num_pages, generator=gen, device=gen.device).to(k.device)
    table = order[: batch * per_sequence].reshape(batch, per_sequence).to(torch.int32)
    pools = []
    for src in (kb, vb):
        pool = torch.full((num_pages * P, heads, src.shape[3]), float("nan"), dtype=src.dtype, device=src.device)
        slots = (table.long()[:, :, None] * P + torch.arange(P, device=src.device)).reshape(batch, -1)[:, :seq_kv]
        pool[slots.reshape(-1)] = src.permute(0, 2, 1, 3).reshape(batch * seq_kv, heads, src.shape[3])
        pools.append(pool.reshape(num_pages, P, heads, src.shape[3]))
    return pools[0], pools[1], table


def run_ours(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lens: Optional[torch.Tensor], out: torch.Tensor,
             attrs: Attrs, kernel: gqa.Kernel, block_table: Optional[torch.Tensor] = None,
             sinks: Optional[torch.Tensor] = None, lse: Optional[torch.Tensor] = None,
             cu_seqlens_q: Optional[torch.Tensor] = None, max_seqlen_q: Optional[int] = None,
             cu_seqlens_k: Optional[torch.Tensor] = None, max_seqlen_k: Optional[int] = None) -> Any:
    """One launch of our kernel (already loaded) on the current stream (k, v: pools when paged; q and
    out packed tokens of a ragged batch with ``cu_seqlens_q`` and ``max_seqlen_q``; k and v packed
    tokens too with ``cu_seqlens_k`` and ``max_seqlen_k``); it writes ``out`` (and ``lse`` when given)
    and returns what gqa.attention returns."""
    extra: dict[str, Any] = {} if block_table is None else {"block_table": block_table}
    if lse is not None:
        extra.update(return_lse=True, lse=lse)
    return gqa.attention(q, k, v, kv_lens=lens, out=out, kernel=kernel, chip=CHIP, sinks=sinks,
                         cu_seqlens_q=cu_seqlens_q, max_seqlen_q=max_seqlen_q, cu_seqlens_k=cu_seqlens_k,
                         max_seqlen_k=max_seqlen_k, **extra, **attrs.attention_kwargs())


def run_ours_on_set(sets: dict[str, list[torch.Tensor]], i: int, case: BenchCase, kernel: gqa.Kernel) -> torch.Tensor:
    """:func:`run_ours` on input set ``i`` of a benchmark row (with its kv_lens, page table, sinks, LSE
    output and ragged batch's offsets where the row has them); returns the set's output."""
    extra = {name: sets[name][i] for name in ("block_table", "sinks", "lse") if name in sets}
    lens = sets["kv_lens"][i] if "kv_lens" in sets else None
    cu_q, cu_k = (sets[name][i] if name in sets else None for name in ("cu_seqlens_q", "cu_seqlens_k"))
    run_ours(sets["q"][i], sets["k"][i], sets["v"][i], lens, sets["out"][i], case.attrs, kernel, **extra,
             **launch_options(case.shape, cu_q, cu_k))
    return sets["out"][i]


def check_lse(lse: torch.Tensor, expected: torch.Tensor) -> tuple[dict[str, Any], str]:
    """The ``lse_`` fields of a correctness record, and what is wrong with the LSE (empty if nothing)."""
    max_abs, mismatched = compare_lse(lse, expected)
    fields = {"lse_max_abs": max_abs, "lse_mismatched": mismatched}
    if mismatched:
        return fields, (f"{mismatched} LSE rows NaN (unwritten), +inf, or finite where the reference is -inf "
                        "or the reverse")
    if judge(max_abs, 0, LSE_TOLERANCE) != "pass":
        return fields, f"LSE max abs error {max_abs:.2e} > {LSE_TOLERANCE:g}"
    return fields, ""


def load_case_kernel(case: Any, load: Callable[[], Any], missing: str = "") -> tuple[Any, list[dict[str, Any]]]:
    """``load()``'s kernel for a correctness case, or None and one record per size saying why not
    (``skipped`` for an optional kernel not in the cache, else ``error``)."""
    try:
        return load(), []
    except gqa.CompilerNotFoundError as e:
        status = "skipped" if case.optional else "error"
        why = missing or str(e).split(". ")[0]
        return None, [correctness_run(case, s.label(), status=status, message=f"kernel not in the cache: {why}")
                      for s in case.shapes]
    except Exception as e:  # noqa: BLE001
        return None, [correctness_run(case, s.label(), message=f"loading the kernel: {type(e).__name__}: {e}")
                      for s in case.shapes]


def check_case(case: CorrectnessCase, cache_dir: str, base_seed: int, missing: str = "") -> list[dict[str, Any]]:
    """Run every size of a case with fresh inputs (and sinks, and a ragged batch's offsets) and a
    NaN-poisoned output (and LSE); compare with :func:`reference`: the output by its relative L2 error,
    the LSE row by row (:func:`check_lse`)."""
    kernel, refused = load_case_kernel(case, lambda: load_kernel(case.attrs, cache_dir), missing)
    if kernel is None:
        return refused
    records = []
    for shape in case.shapes:
        t0 = time.perf_counter()
        try:
            gen = _generator(base_seed, case.name, shape)
            q, k, v, lens = make_inputs(case.attrs, shape, gen, q_std=case.q_std)
            sinks, (cu_q, cu_k) = make_sinks(case.attrs, gen), make_cu_seqlens(case.attrs, shape, q.device)
            out, lse = out_like(case.attrs, shape), lse_like(case.attrs, shape)
            if case.attrs.page_size:
                k_pool, v_pool, table = page_cache(case.attrs, k, v, gen)
                run_ours(q, k_pool, v_pool, lens, out, case.attrs, kernel, table, sinks, lse,
                         **launch_options(shape, cu_q, cu_k))
                k_pool = v_pool = table = None  # noqa: F841 - the reference reads the contiguous k, v
            else:
                run_ours(q, k, v, lens, out, case.attrs, kernel, sinks=sinks, lse=lse,
                         **launch_options(shape, cu_q, cu_k))
            torch.cuda.synchronize()
            nonfinite = int((~torch.isfinite(out)).sum())
            ref = reference(q, k, v, case.attrs, lens, sinks=sinks, return_lse=lse is not None, cu_seqlens_q=cu_q,
                            cu_seqlens_k=cu_k)
            ref, ref_lse = ref if lse is not None else (ref, None)
            err, max_abs = rel_l2(out, ref)
            status = judge(err, nonfinite, case.tolerance)
            problems = [f"{nonfinite} elements not finite (unwritten or NaN)"] if nonfinite else []
            lse_fields: dict[str, Any] = {}
            if lse is not None:
                lse_fields, lse_problem = check_lse(lse, ref_lse)
                if lse_problem:
                    status = "fail"
                    problems.append(lse_problem)
            records.append(correctness_run(case, shape.label(), status=status, rel_l2=err, max_abs=max_abs,
                                           nonfinite=nonfinite, message="; ".join(problems), **lse_fields,
                                           seconds=time.perf_counter() - t0))
        except Exception as e:  # noqa: BLE001
            records.append(correctness_run(case, shape.label(), message=f"{type(e).__name__}: {e}",
                                           seconds=time.perf_counter() - t0))
            if not cuda_healthy():
                break
        finally:
            q = k = v = lens = cu_q = cu_k = out = sinks = lse = ref = ref_lse = None  # noqa: F841 - free first
    return records


# ------------------------------------------------------------------------------------------- peers

def sdpa_backend(name: str) -> Any:
    """The SDPBackend for ``sdpa-flash``, ``sdpa-cudnn``, ``sdpa-efficient``."""
    from torch.nn.attention import SDPBackend
    return {"sdpa-flash": SDPBackend.FLASH_ATTENTION, "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION,
            "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION}[name]


@dataclass
class Flex:
    """FlexAttention through torch.compile, with a budget for compile time across rows."""

    budget_s: float
    spent_s: float = 0.0
    #: No compile starts after this wall-clock time (the run's time guard, less a margin).
    deadline: float = float("inf")
    _compiled: Any = None
    _masks: dict = field(default_factory=dict)

    def fn(self) -> Any:
        """The compiled flex_attention (compiled lazily, recompiled per shape)."""
        if self._compiled is None:
            from torch.nn.attention.flex_attention import flex_attention
            import torch._dynamo
            for name in ("cache_size_limit", "recompile_limit"):
                if hasattr(torch._dynamo.config, name):
                    setattr(torch._dynamo.config, name, 256)
            self._compiled = torch.compile(flex_attention, dynamic=False)
        return self._compiled

    def block_mask(self, attrs: Attrs, seq_q: int, seq_kv: int) -> Any:
        """None without a mask; else a bottom-right aligned causal BlockMask (cached per size)."""
        if not attrs.is_causal:
            return None
        key = (seq_q, seq_kv)
        if key not in self._masks:
            from torch.nn.attention.flex_attention import create_block_mask
            off = seq_kv - seq_q
            self._masks[key] = create_block_mask(lambda b, h, qi, kj: kj <= qi + off, None, None, seq_q, seq_kv,
                                                 device=DEVICE)
        return self._masks[key]


def refuse_for_peers(attrs: Attrs) -> None:
    """Raise :class:`Refused` for what no peer runs: ragged batches, paged K/V, sinks or the LSE, other masks."""
    cfg = attrs.kernel_config()
    if attrs.varlen:
        raise Refused("the peers take no ragged batches (varlen): compare with the plain row this one is named after")
    if attrs.page_size:
        raise Refused("the peers read contiguous K/V: compare with the contiguous row of this size")
    if attrs.sinks or attrs.lse:
        raise Refused("the peers take no attention sinks and return no LSE: compare with the plain row of this size")
    if cfg.mask not in ("none", "causal") or cfg.softcap or attrs.kv_lens:
        raise Refused("the peers are set up for none/causal masks only")


def peer_callable(impl: str, attrs: Attrs, qs: Sequence[torch.Tensor], ks: Sequence[torch.Tensor],
                  vs: Sequence[torch.Tensor], flex: Optional[Flex]) -> tuple[Callable[[int], Any], ContextManager]:
    """``fn(i)`` running a peer on input set ``i`` (bhsd views), and the context to run it in."""
    refuse_for_peers(attrs)
    cfg = attrs.kernel_config()
    causal = cfg.mask == "causal"
    if impl == "flex":
        if flex is None or flex.spent_s >= flex.budget_s:
            raise Refused(f"flex compile budget ({flex.budget_s if flex else 0:.0f} s) spent")
        if time.time() > flex.deadline:
            raise Refused("too close to the time guard to compile FlexAttention")
        f, mask = flex.fn(), flex.block_mask(attrs, qs[0].shape[2], ks[0].shape[2])
        return (lambda i: f(qs[i], ks[i], vs[i], block_mask=mask, scale=cfg.scale, enable_gqa=True)), nullcontext()
    from torch.nn.attention import sdpa_kernel
    import torch.nn.functional as F
    if causal and qs[0].shape[2] != ks[0].shape[2]:
        raise Refused("PyTorch's is_causal is top-left aligned: only used with Sq = Skv")
    return (lambda i: F.scaled_dot_product_attention(qs[i], ks[i], vs[i], is_causal=causal, scale=cfg.scale,
                                                     enable_gqa=True)), sdpa_kernel([sdpa_backend(impl)])


#: How PyTorch says that the forced SDPA backend cannot run a configuration.
_REFUSALS = ("No available kernel", "No viable backend")


def _first_call(fn: Callable[[int], Any]) -> tuple[Any, list[str]]:
    """Run ``fn(0)`` once, synchronised, collecting warnings (SDPA explains refusals in warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = fn(0)
            torch.cuda.synchronize()
        except RuntimeError as e:
            reasons = [str(w.message).strip() for w in caught]
            if any(text in str(e) for text in _REFUSALS):
                raise Refused("; ".join(reasons) or str(e)) from e
            raise
    return out, [str(w.message).strip() for w in caught]


def time_impl(impl: str, case: BenchCase, timer: Timer, sets: dict[str, list[torch.Tensor]],
              kernel: Optional[gqa.Kernel], flex: Optional[Flex], ours_out: Optional[torch.Tensor],
              total_ms: float) -> tuple[dict[str, Any], Optional[torch.Tensor]]:
    """Time one implementation on the row's input sets; returns its record and its output on set 0."""
    attrs = case.attrs
    n = len(sets["q"])
    if impl == "ours":
        if kernel is None:
            raise Refused("no kernel")
        fn = lambda i: run_ours_on_set(sets, i, case, kernel)  # noqa: E731
        ctx: ContextManager = nullcontext()
    else:
        refuse_for_peers(attrs)  # before the bhsd views (a ragged batch's packed q has none)
        views = {x: [as_bhsd(t, attrs.layout) for t in sets[x]] for x in ("q", "k", "v")}
        fn, ctx = peer_callable(impl, attrs, views["q"], views["k"], views["v"], flex)
    with ctx:
        t0 = time.perf_counter()
        out, notes = _first_call(fn)
        first_s = time.perf_counter() - t0
        if impl == "flex" and flex is not None:
            flex.spent_s += first_s
        out = out.clone() if impl != "ours" else sets["out"][0].clone()
        record = timer.time(fn, n, total_ms=total_ms, warm=True)
    record["first_call_s"] = first_s
    if notes:
        record["warnings"] = notes[:3]
    if impl != "ours" and ours_out is not None:
        record["rel_err_vs_ours"], _ = rel_l2(out, as_bhsd(ours_out, attrs.layout))
    return record, (out if impl == "ours" else None)


def bench_case(case: BenchCase, cache_dir: str, timer: Timer, flex: Optional[Flex], base_seed: int,
               impls: Sequence[str], l2_bytes: Optional[int], total_ms: float = 300.0) -> dict[str, Any]:
    """Time each of ``impls`` on one row; a refusal or failure of one never stops the others.

    Peers are compared with our output (``rel_err_vs_ours``); when ``ours`` is not among ``impls``
    (the flex phase) our kernel still runs once, untimed, for that comparison.
    """
    n = input_sets(case.io_bytes, l2_bytes or DEFAULT_L2_BYTES)
    row = bench_row(case, n)
    flex_before = flex.spent_s if flex is not None else 0.0
    kernel, load_error = None, ""
    try:
        kernel = load_kernel(case.attrs, cache_dir)
    except Exception as e:  # noqa: BLE001
        load_error = f"loading the kernel: {type(e).__name__}: {e}"
    sets: dict[str, list[torch.Tensor]] = {"q": [], "k": [], "v": [], "out": []}
    ours_out = None
    try:
        for i in range(n):
            gen = _generator(base_seed, "bench", case.name, i)
            q, k, v, lens = make_inputs(case.attrs, case.shape, gen)
            sinks, table = make_sinks(case.attrs, gen), None
            cu_q, cu_k = make_cu_seqlens(case.attrs, case.shape, q.device)
            if case.attrs.page_size:
                k, v, table = page_cache(case.attrs, k, v, gen)
            for name, t in (("q", q), ("k", k), ("v", v), ("out", out_like(case.attrs, case.shape)),
                            ("kv_lens", lens), ("cu_seqlens_q", cu_q), ("cu_seqlens_k", cu_k), ("block_table", table),
                            ("sinks", sinks), ("lse", lse_like(case.attrs, case.shape))):
                if t is not None:  # from kv_lens on: only rows that have them
                    sets.setdefault(name, []).append(t)
            q = k = v = lens = cu_q = cu_k = sinks = table = None  # noqa: F841 - a paged row's contiguous K/V freed
        if "ours" not in impls and kernel is not None:
            try:
                ours_out = run_ours_on_set(sets, 0, case, kernel)
                torch.cuda.synchronize()
            except Exception:  # noqa: BLE001 - only a comparison is lost
                ours_out = None
        for impl in impls:
            if impl == "ours" and kernel is None:
                row["impls"]["ours"] = {"error": load_error}
                continue
            try:
                record, out = time_impl(impl, case, timer, sets, kernel, flex, ours_out, total_ms)
                if impl == "ours":
                    ours_out = out
                    bad = int((~torch.isfinite(out)).sum())
                    if bad:
                        record["nonfinite"] = bad
                    bad_lse = int((~torch.isfinite(sets["lse"][0])).sum()) if "lse" in sets else 0
                    if bad_lse:  # every row of a benchmark row sees keys: its LSE is finite
                        record["lse_nonfinite"] = bad_lse
                row["impls"][impl] = record
            except Refused as e:
                row["impls"][impl] = {"skipped": str(e)[:400]}
            except Exception as e:  # noqa: BLE001
                row["impls"][impl] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
                if isinstance(e, torch.cuda.OutOfMemoryError):
                    torch.cuda.empty_cache()
                if not cuda_healthy():
                    break
    except Exception as e:  # noqa: BLE001 - e.g. out of memory while making the inputs
        row["error"] = f"{type(e).__name__}: {e}"
    finally:
        sets.clear()
        ours_out = None
        torch.cuda.empty_cache()
    if flex is not None:
        row["flex_compile_s"] = flex.spent_s - flex_before
    return row


def describe_exception(e: BaseException) -> str:
    """One line plus the innermost frames, for the worker's records."""
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    return f"{type(e).__name__}: {e} | " + "".join(tb[-3:]).replace("\n", " ")[-600:]


__all__ = ["Flex", "Refused", "Timer", "bench_case", "check_case", "compare_lse", "cuda_healthy", "environment",
           "lse_like", "make_inputs", "make_sinks", "measure_ceilings", "reference", "reference_checks", "rel_l2"]
