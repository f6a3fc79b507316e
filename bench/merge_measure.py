"""The PyTorch half of the merge kernel's check (merges.py): partial results, the judged merge, the timing.

"Two halves equal the whole": :func:`partials` runs measure.reference (float64) three times on one
input set of a case's source attention, over all keys (read through kv_lens), over each sequence's
prefix (non-causal, kv_lens = the prefix length) and over its suffix (the cache rolled left by the
prefix, causal, kv_lens = the rest), and :func:`check_merge_case` merges the two parts (rounded to the
dtype and float32) on the GPU and compares the merge with the whole.  Imported by device_check.py's
worker (and by the tests, with CUDA simulated on the CPU: measure.DEVICE is read at call time).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

import gqa

import measure
from configs import CHIP, REFERENCE_CHECK_TOLERANCE, Shape
from harness import DEFAULT_L2_BYTES, bench_row, correctness_run, input_sets, judge
from merges import MergeAttrs, MergeBench, MergeCase, describe_split, prefix_lens
from varlen import make_cu_seqlens

#: The bench rows' random LSEs are N(LSE_MEAN, LSE_STD²) (a row over a few thousand keys: log n + ~0.5).
LSE_MEAN, LSE_STD = 8.0, 2.0


# ----------------------------------------------------------------------------------- partials

def roll_keys(x: torch.Tensor, shift: torch.Tensor, layout: str) -> torch.Tensor:
    """The cache ``x`` (bshd [B, Skv, H, D] or bhsd [B, H, Skv, D]) with each sequence b's keys moved left by
    ``shift[b]`` (its suffix first; the prefix wraps round to the end, beyond the suffix's kv_len)."""
    axis = 0 if layout == "bshd" else 1  # the key axis of one sequence
    return torch.stack([torch.roll(x[b], -int(c), dims=axis) for b, c in enumerate(shift.tolist())])


def partials(case: MergeCase, shape: Shape, gen: torch.Generator, device: Optional[str] = None) -> dict[str, Any]:
    """One input set of ``case``'s source attention at ``shape`` and the float64 reference's output and LSE
    over all its keys (``whole``), over each sequence's prefix of :func:`merges.prefix_lens` keys (``first``)
    and over the rest (``second``), each a pair ``(out, lse)`` in the merge's shapes (o in the layout, or
    packed [T, H, Dv]; the LSE [B, H, S], or [H, T])."""
    src = case.source
    q, k, v, lens = measure.make_inputs(src, shape, gen, device=device, q_std=case.q_std)
    cu_q, _ = make_cu_seqlens(src, shape, q.device)
    prefix = torch.tensor(prefix_lens(shape), dtype=torch.int32, device=q.device)
    options = dict(return_lse=True, cu_seqlens_q=cu_q)
    whole = measure.reference(q, k, v, src, lens, **options)
    first = measure.reference(q, k, v, replace(src, causal=False), prefix, **options)  # every query sees it all
    k2, v2 = (roll_keys(x, prefix, src.layout) for x in (k, v))
    second = measure.reference(q, k2, v2, src, lens - prefix, **options)  # causal, aligned as the whole
    return {"whole": whole, "first": first, "second": second}


def as_written(part: tuple[torch.Tensor, torch.Tensor], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """A float64 part as an attention kernel writes it: the output rounded to ``dtype``, the LSE float32,
    both contiguous (what the merge kernel takes)."""
    return part[0].to(dtype).contiguous(), part[1].to(torch.float32).contiguous()


def unseen_rows(lse: torch.Tensor, attrs: MergeAttrs) -> torch.Tensor:
    """Where the LSE is -inf, as a mask over the output's rows (o's dims but the last)."""
    minus_inf = torch.isneginf(lse)
    if attrs.varlen:
        return minus_inf.t()  # [H, T] -> [T, H]
    return minus_inf if attrs.layout == "bhsd" else minus_inf.transpose(1, 2)  # [B, H, S] -> [B, S, H]


# ------------------------------------------------------------------------------------- ours

def load_merge_kernel(attrs: MergeAttrs, cache_dir: str) -> gqa.Kernel:
    """The merge kernel from the carried cache (never compiles: the device has no compiler library)."""
    return gqa.compile_merge_states(attrs.heads, attrs.head_dim_v, chip=CHIP, cache_dir=cache_dir,
                                    **attrs.compile_kwargs())


def run_merge(o1: torch.Tensor, lse1: torch.Tensor, o2: torch.Tensor, lse2: torch.Tensor, out: torch.Tensor,
              out_lse: torch.Tensor, attrs: MergeAttrs, kernel: gqa.Kernel) -> Any:
    """One launch of our merge kernel (already loaded) on the current stream, writing ``out`` (which may be
    o1 or o2) and ``out_lse``."""
    return gqa.merge_attention_states(o1, lse1, o2, lse2, layout=attrs.layout, out=out, out_lse=out_lse,
                                      kernel=kernel, chip=CHIP)


def torch_merge(o1: torch.Tensor, lse1: torch.Tensor, o2: torch.Tensor, lse2: torch.Tensor, out: torch.Tensor,
                out_lse: torch.Tensor, attrs: MergeAttrs) -> torch.Tensor:
    """The peer: vLLM's ``merge_attn_states_torch`` ops (max, exp of the differences, the weights, a float32
    weighted sum) on the same tensors, copied into ``out`` (o1's dtype) and ``out_lse``.  Like vLLM's, it
    gives NaN for a row that neither part saw (the bench rows have none)."""
    m = torch.maximum(lse1, lse2)
    e1, e2 = torch.exp(lse1 - m), torch.exp(lse2 - m)
    total = e1 + e2
    out_lse.copy_(torch.log(total) + m)
    s1, s2 = e1 / total, e2 / total
    if attrs.varlen:
        s1, s2 = s1.t(), s2.t()  # [H, T] -> [T, H]
    elif attrs.layout == "bshd":
        s1, s2 = s1.transpose(1, 2), s2.transpose(1, 2)  # [B, H, S] -> [B, S, H]
    out.copy_(o1 * s1.unsqueeze(-1) + o2 * s2.unsqueeze(-1))
    return out


# ------------------------------------------------------------------------------- correctness

def _nan_like(x: torch.Tensor) -> torch.Tensor:
    return torch.full_like(x, float("nan"))


def check_merge_case(case: MergeCase, cache_dir: str, base_seed: int, missing: str = "") -> list[dict[str, Any]]:
    """Merge the two parts of each size on the GPU (into a NaN-poisoned output, or into o1 with
    ``in_place``; the LSE into NaN-poisoned memory of its own) and judge the merge against the whole:
    the output by its relative L2 error (rows neither part saw must be exactly 0), the LSE as the LSE
    cases' (measure.check_lse), and the inputs the kernel must not write (o2, the LSEs, o1 unless in place)
    must be unchanged."""
    kernel, refused = measure.load_case_kernel(case, lambda: load_merge_kernel(case.attrs, cache_dir), missing)
    if kernel is None:
        return refused
    dtype = measure.TORCH_DTYPES[case.source.dtype]
    records = []
    for shape in case.shapes:
        t0 = time.perf_counter()
        parts = o1 = lse1 = o2 = lse2 = out = out_lse = kept = None
        try:
            parts = partials(case, shape, measure._generator(base_seed, "merge", case.name, shape))
            (o1, lse1), (o2, lse2) = as_written(parts["first"], dtype), as_written(parts["second"], dtype)
            ref, ref_lse = parts["whole"]
            kept = {"o2": o2.clone(), "lse1": lse1.clone(), "lse2": lse2.clone()}
            if not case.in_place:
                kept["o1"] = o1.clone()
            out = o1 if case.in_place else _nan_like(o1)
            out_lse = _nan_like(lse1)
            run_merge(o1, lse1, o2, lse2, out, out_lse, case.attrs, kernel)
            torch.cuda.synchronize()
            nonfinite = int((~torch.isfinite(out)).sum())
            err, max_abs = measure.rel_l2(out, ref)
            status = judge(err, nonfinite, case.tolerance)
            problems = [f"{nonfinite} elements not finite (unwritten or NaN)"] if nonfinite else []
            neither = unseen_rows(ref_lse, case.attrs)
            unseen_nonzero = int((out[neither] != 0).any(dim=-1).sum())
            if unseen_nonzero:
                status = "fail"
                problems.append(f"{unseen_nonzero} rows that neither part saw are not 0")
            lse_fields, lse_problem = measure.check_lse(out_lse, ref_lse)
            if lse_problem:
                status = "fail"
                problems.append(lse_problem)
            current = {"o1": o1, "o2": o2, "lse1": lse1, "lse2": lse2}
            changed = [name for name, before in kept.items() if not torch.equal(current[name], before)]
            if changed:
                status = "fail"
                problems.append(f"inputs written: {', '.join(changed)}")
            records.append(correctness_run(
                case, shape.label(), status=status, rel_l2=err, max_abs=max_abs, nonfinite=nonfinite,
                message="; ".join(problems), seconds=time.perf_counter() - t0, split=describe_split(shape),
                rows_first_empty=int(torch.isneginf(lse1).sum()), rows_second_empty=int(torch.isneginf(lse2).sum()),
                rows_neither=int(torch.isneginf(ref_lse).sum()), unseen_nonzero=unseen_nonzero, **lse_fields))
        except Exception as e:  # noqa: BLE001
            records.append(correctness_run(case, shape.label(), message=f"{type(e).__name__}: {e}",
                                           seconds=time.perf_counter() - t0))
            if not measure.cuda_healthy():
                break
        finally:
            parts = o1 = lse1 = o2 = lse2 = out = out_lse = kept = None  # noqa: F841 - free first
    return records


def reference_checks(case: MergeCase, base_seed: int, device: Optional[str] = None) -> list[dict[str, Any]]:
    """The split itself, at small sizes: the float64 parts merged in float64 (gqa.merge_attention_states on
    numpy) against the float64 whole, output and LSE (no kernel needed)."""
    records = []
    for shape in case.reference_check_shapes():
        record = {"case": case.name, "shape": shape.label(), "status": "error", "rel_diff": None, "message": ""}
        try:
            parts = partials(case, shape, measure._generator(base_seed, "merge-ref", case.name, shape, device=device),
                             device=device)
            (o1, lse1), (o2, lse2) = (tuple(t.cpu().numpy() for t in parts[p]) for p in ("first", "second"))
            out, lse = gqa.merge_attention_states(o1, lse1, o2, lse2, layout=case.attrs.layout if o1.ndim == 4 else None)
            ref, ref_lse = (t.cpu() for t in parts["whole"])
            diff, _ = measure.rel_l2(torch.from_numpy(np.ascontiguousarray(out)), ref)
            lse_diff, mismatched = measure.compare_lse(torch.from_numpy(lse), ref_lse)
            agree = diff <= REFERENCE_CHECK_TOLERANCE and not mismatched and lse_diff <= REFERENCE_CHECK_TOLERANCE
            record.update(rel_diff=diff, lse_diff=lse_diff, lse_mismatched=mismatched,
                          status="pass" if agree else "fail", split=describe_split(shape))
        except Exception as e:  # noqa: BLE001 - recorded, the run goes on
            record["message"] = f"{type(e).__name__}: {e}"
        records.append(record)
    return records


# ------------------------------------------------------------------------------------ timing

def bench_inputs(row: MergeBench, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random partial results of a merge row (outputs N(0, 1) in the dtype, LSEs N(LSE_MEAN, LSE_STD²), all
    finite) and its NaN-poisoned outputs."""
    a, s = row.attrs, row.shape
    device = measure.DEVICE
    dims = ((s.batch, a.heads, s.seq_q, a.head_dim_v) if a.layout == "bhsd"
            else (s.batch, s.seq_q, a.heads, a.head_dim_v))
    o = [measure.randn_into(torch.empty(dims, dtype=measure.TORCH_DTYPES[a.dtype], device=device), gen)
         for _ in range(2)]
    lse = [torch.randn((s.batch, a.heads, s.seq_q), generator=gen, device=device).mul_(LSE_STD).add_(LSE_MEAN)
           for _ in range(2)]
    return {"o1": o[0], "lse1": lse[0], "o2": o[1], "lse2": lse[1], "out": _nan_like(o[0]),
            "out_lse": _nan_like(lse[0])}


def bench_merge(row: MergeBench, cache_dir: str, timer: measure.Timer, base_seed: int, impls: Sequence[str],
                l2_bytes: Optional[int], total_ms: float = 300.0) -> dict[str, Any]:
    """Time ``ours`` and ``torch`` (of ``impls``) on one merge row; a failure of one never stops the other.
    The peer's output on the first set is compared with ours (``rel_err_vs_ours``)."""
    n = input_sets(row.io_bytes, l2_bytes or DEFAULT_L2_BYTES)
    record = bench_row(row, n)
    record["peer_layout"] = "the same tensors as ours"
    kernel, load_error = None, ""
    try:
        kernel = load_merge_kernel(row.attrs, cache_dir)
    except Exception as e:  # noqa: BLE001
        load_error = f"loading the kernel: {type(e).__name__}: {e}"
    sets: list[dict[str, torch.Tensor]] = []
    ours_out = None
    try:
        for i in range(n):
            sets.append(bench_inputs(row, measure._generator(base_seed, "bench", row.name, i)))
        calls: dict[str, Callable[[int], Any]] = {
            "ours": lambda i: run_merge(*(sets[i][x] for x in ("o1", "lse1", "o2", "lse2", "out", "out_lse")),
                                        row.attrs, kernel),
            "torch": lambda i: torch_merge(*(sets[i][x] for x in ("o1", "lse1", "o2", "lse2", "out", "out_lse")),
                                           row.attrs),
        }
        for impl in impls:
            if impl == "ours" and kernel is None:
                record["impls"]["ours"] = {"error": load_error}
                continue
            try:
                t0 = time.perf_counter()
                calls[impl](0)
                torch.cuda.synchronize()
                first_s = time.perf_counter() - t0
                out = sets[0]["out"].clone()
                entry = timer.time(calls[impl], n, total_ms=total_ms, warm=True)
                entry["first_call_s"] = first_s
                bad, bad_lse = int((~torch.isfinite(out)).sum()), int((~torch.isfinite(sets[0]["out_lse"])).sum())
                if bad:
                    entry["nonfinite"] = bad
                if bad_lse:  # every row of a bench row is finite
                    entry["lse_nonfinite"] = bad_lse
                if impl == "ours":
                    ours_out = out
                elif ours_out is not None:
                    entry["rel_err_vs_ours"], _ = measure.rel_l2(out, ours_out)
                record["impls"][impl] = entry
            except Exception as e:  # noqa: BLE001
                record["impls"][impl] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
                if not measure.cuda_healthy():
                    break
    except Exception as e:  # noqa: BLE001 - e.g. out of memory while making the inputs
        record["error"] = f"{type(e).__name__}: {e}"
    finally:
        sets.clear()
        ours_out = None
        torch.cuda.empty_cache()
    return record


__all__ = ["bench_merge", "check_merge_case", "partials", "reference_checks", "run_merge", "torch_merge"]
