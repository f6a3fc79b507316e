"""The torch-free half of the device check: time guard, timing plan, accounting, table, writers.

Everything here runs without PyTorch or a GPU, so ``bench/test_bench.py`` covers it with fake
timings.  Results are plain JSON-ready dicts:

* a correctness run: ``{"case", "kernel", "shape", "dtype", "status", "rel_l2", "max_abs",
  "tolerance", "nonfinite", "lse_max_abs", "lse_mismatched", "message", "seconds"}`` with ``status``
  one of :data:`STATUSES` (the ``lse_`` fields: kernels that write the LSE, else None);
* a reference check (torch float64 vs gqa.reference): ``{"case", "shape", "status", "rel_diff", "message"}``
  (plus ``"lse_diff", "lse_mismatched"`` for LSE kernels);
* a benchmark row: ``{"name", "phase", "layout", "label", "shape", "flops", "min_bytes", "io_bytes",
  "input_sets", "peer_layout", "impls": {impl: {"ms", "min_ms", "max_ms", "calls", "groups",
  "host_us", "rel_err_vs_ours", "nonfinite", "lse_nonfinite"} | {"skipped": why} | {"error": what}}}``
  (``shape``: batch, seq_q, seq_kv, and the q_lens and kv_lens where the row has them).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from configs import BenchCase, CorrectnessCase, reference_check_shapes

#: Implementations timed per row, ours first.  Peers of the attention rows: PyTorch SDPA with one
#: backend forced each (``enable_gqa=True``), and FlexAttention compiled with torch.compile; of the merge
#: rows (phase ``merge``, bench/merges.py): PyTorch's elementwise merge (``torch``).
IMPLS: tuple[str, ...] = ("ours", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "flex", "torch")
PEERS: tuple[str, ...] = IMPLS[1:]
MERGE_PEERS: tuple[str, ...] = ("torch",)
#: What the bench phase times (FlexAttention has its own phase, on configs.FLEX_ROWS); each row takes
#: those of its kind (:func:`row_impls`).
BENCH_IMPLS: tuple[str, ...] = tuple(i for i in IMPLS if i != "flex")
STATUSES = ("pass", "fail", "error", "skipped")
#: L2 of the H200 as PyTorch reports it (60 MB; about 50 MB usable); used when the device's is unknown.
DEFAULT_L2_BYTES = 60 * 1024 * 1024


# ------------------------------------------------------------------------------------ time guard

class Budget:
    """A deadline: ``expired()`` once ``seconds`` have passed since creation (or at ``deadline``)."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.time,
                 deadline: Optional[float] = None) -> None:
        self._clock = clock
        self.start = clock()
        self.deadline = self.start + seconds if deadline is None else deadline

    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return self._clock() - self.start

    def remaining(self) -> float:
        """Seconds left (negative once expired)."""
        return self.deadline - self._clock()

    def expired(self) -> bool:
        """Whether no new work should start."""
        return self.remaining() <= 0


# ----------------------------------------------------------------------------------- timing plan

@dataclass(frozen=True)
class TimingPlan:
    """How one implementation is timed: ``warmup`` calls, then ``groups`` groups of ``per_group``
    back-to-back calls between two CUDA events (queued behind a GPU sleep, so that host overhead
    stays out); the result is the median over groups of the per-call time."""

    warmup: int
    per_group: int
    groups: int

    @property
    def calls(self) -> int:
        """Launches in all."""
        return self.warmup + self.per_group * self.groups


def plan_timing(est_ms: float, *, group_ms: float = 2.0, total_ms: float = 300.0,
                max_per_group: int = 100, min_groups: int = 3, max_groups: int = 15,
                warmup_ms: float = 25.0, max_warmup: int = 50) -> TimingPlan:
    """The plan for a call estimated to take ``est_ms``: groups of >= ``group_ms``, about
    ``total_ms`` in all, never fewer than ``min_groups`` groups."""
    est = max(est_ms, 1e-4)
    per_group = max(1, min(max_per_group, math.ceil(group_ms / est)))
    groups = max(min_groups, min(max_groups, int(total_ms / (per_group * est))))
    warmup = max(1, min(max_warmup, math.ceil(warmup_ms / est)))
    return TimingPlan(warmup, per_group, groups)


def input_sets(set_bytes: int, l2_bytes: int = DEFAULT_L2_BYTES, factor: int = 4, max_sets: int = 64) -> int:
    """How many input sets to rotate among so that together they are ``factor`` times the L2."""
    if set_bytes <= 0 or set_bytes >= factor * l2_bytes:
        return 1
    return min(max_sets, math.ceil(factor * l2_bytes / set_bytes))


def row_impls(phase: str, impls: Iterable[str]) -> list[str]:
    """Of ``impls``, those that time a row of ``phase``: ours and the merge peers for a merge row, ours and
    the attention peers otherwise."""
    peers = MERGE_PEERS if phase == "merge" else tuple(p for p in PEERS if p not in MERGE_PEERS)
    return [i for i in impls if i == "ours" or i in peers]


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    if not values:
        raise ValueError("median of no values")
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


# ------------------------------------------------------------------------------------ accounting

def tflops(flops: float, ms: float) -> float:
    """TFLOP/s of ``flops`` done in ``ms`` milliseconds."""
    return flops / (ms * 1e-3) / 1e12


def gbps(nbytes: float, ms: float) -> float:
    """GB/s (1e9 bytes) of ``nbytes`` moved in ``ms`` milliseconds."""
    return nbytes / (ms * 1e-3) / 1e9


def bench_row(case: BenchCase, sets: int) -> dict[str, Any]:
    """The static part of a benchmark row (sizes, FLOPs, bytes); ``impls`` filled by the timing."""
    s = case.shape
    shape = {"batch": s.batch, "seq_q": s.seq_q, "seq_kv": s.seq_kv}
    shape.update({name: list(lens) for name, lens in (("q_lens", s.q_lens), ("kv_lens", s.kv_lens)) if lens})
    return {
        "name": case.name, "phase": case.phase, "layout": case.attrs.layout, "label": case.attrs.label(),
        "shape": shape,
        "flops": case.flops, "min_bytes": case.min_bytes, "io_bytes": case.io_bytes, "input_sets": sets,
        "peer_layout": peer_layout(case.attrs.layout), "impls": {},
    }


def peer_layout(layout: str) -> str:
    """What the PyTorch peers are given for a row in ``layout`` (the same memory as ours)."""
    if layout == "bshd":
        return "(B,S,H,D) memory viewed as (B,H,S,D) by transpose(1, 2), no copy"
    return "contiguous (B,H,S,D)"


def impl_ms(row: Mapping[str, Any], impl: str) -> Optional[float]:
    """The median time of ``impl`` in a row, or None if it was skipped or failed."""
    entry = row.get("impls", {}).get(impl) or {}
    ms = entry.get("ms")
    return float(ms) if isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0 else None


def throughput(row: Mapping[str, Any], impl: str) -> Optional[float]:
    """TFLOP/s for a prefill row, GB/s of the KV-read floor for a decode row."""
    ms = impl_ms(row, impl)
    if ms is None:
        return None
    return tflops(row["flops"], ms) if row["phase"] == "prefill" else gbps(row["min_bytes"], ms)


def throughput_unit(phase: str) -> str:
    """``TFLOP/s`` or ``GB/s``."""
    return "TFLOP/s" if phase == "prefill" else "GB/s"


def best_peer(row: Mapping[str, Any]) -> Optional[tuple[str, float]]:
    """The fastest peer that ran, and its time."""
    times = [(impl, impl_ms(row, impl)) for impl in PEERS]
    ran = [(impl, ms) for impl, ms in times if ms is not None]
    return min(ran, key=lambda t: t[1]) if ran else None


def ratio(row: Mapping[str, Any]) -> Optional[float]:
    """Our time over the best peer's (< 1: we are faster)."""
    ours, best = impl_ms(row, "ours"), best_peer(row)
    return None if ours is None or best is None else ours / best[1]


def floor_ms(row: Mapping[str, Any], ceilings: Mapping[str, Any]) -> Optional[float]:
    """The larger of FLOPs over the matmul rate and the minimum bytes over the copy bandwidth."""
    rate, bw = ceilings.get("matmul_tflops"), ceilings.get("copy_gbps")
    if not rate or not bw:
        return None
    return max(row["flops"] / (rate * 1e12), row["min_bytes"] / (bw * 1e9)) * 1e3


def ceiling_fraction(row: Mapping[str, Any], impl: str, ceilings: Mapping[str, Any]) -> Optional[float]:
    """``impl``'s throughput over the measured ceiling of its phase (matmul or copy)."""
    value = throughput(row, impl)
    ceiling = ceilings.get("matmul_tflops" if row["phase"] == "prefill" else "copy_gbps")
    return None if value is None or not ceiling else value / ceiling


# ------------------------------------------------------------------------------------ correctness

def judge(rel_l2: Optional[float], nonfinite: int, tolerance: float) -> str:
    """``pass`` when no element is bad (``nonfinite``) and the error is finite and within tolerance: the
    output's relative L2 error (measure.check_lse judges the LSE's max abs error with it too)."""
    if nonfinite or rel_l2 is None or not math.isfinite(rel_l2):
        return "fail"
    return "pass" if rel_l2 <= tolerance else "fail"


def correctness_run(case: CorrectnessCase, shape_label: str, **fields: Any) -> dict[str, Any]:
    """A correctness record with the case's identity filled in."""
    record = {"case": case.name, "kernel": case.attrs.label(), "shape": shape_label,
              "dtype": case.attrs.dtype, "status": "error", "rel_l2": None, "max_abs": None,
              "tolerance": case.tolerance, "nonfinite": None, "lse_max_abs": None, "lse_mismatched": None,
              "message": "", "seconds": None}
    record.update(fields)
    return record


def correctness_failed(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records that make the check fail: ``fail`` and ``error`` (skips of optional kernels do not)."""
    return [r for r in records if r["status"] in ("fail", "error")]


# ----------------------------------------------------------------------------------------- tables

def _fmt(value: Optional[float], spec: str = ".3f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def impl_cell(row: Mapping[str, Any], impl: str) -> str:
    entry = row.get("impls", {}).get(impl)
    if entry is None:
        return "-"
    if "skipped" in entry:
        return "skip"
    if "error" in entry:
        return "err"
    ms = impl_ms(row, impl)
    return _fmt(ms, ".4f" if ms is not None and ms < 1 else ".3f", "err")


#: Column names of the implementations in the tables.
SHORT_NAMES = {"ours": "ours", "sdpa-flash": "flash", "sdpa-cudnn": "cudnn", "sdpa-efficient": "mem-eff",
               "flex": "flex", "torch": "torch"}
BENCH_HEADERS = ("config", *(f"{SHORT_NAMES[i]} ms" for i in IMPLS), "best peer", "ours thr", "best thr",
                 "ours % ceil", "floor ms", "ours/best")


def bench_table_rows(rows: Sequence[Mapping[str, Any]], ceilings: Mapping[str, Any]) -> list[list[str]]:
    """One list of cells per benchmark row, under :data:`BENCH_HEADERS`."""
    out = []
    for row in rows:
        best = best_peer(row)
        unit = throughput_unit(row["phase"])
        frac = ceiling_fraction(row, "ours", ceilings)
        r = ratio(row)
        out.append([
            row["name"], *(impl_cell(row, i) for i in IMPLS),
            SHORT_NAMES[best[0]] if best else "-",
            _fmt(throughput(row, "ours"), ".1f") + f" {unit}",
            (_fmt(throughput(row, best[0]), ".1f") + f" {unit}") if best else "-",
            _fmt(None if frac is None else 100 * frac, ".1f"),
            _fmt(floor_ms(row, ceilings), ".4f"),
            _fmt(r, ".2f"),
        ])
    return out


CORRECTNESS_HEADERS = ("case", "kernel", "shape", "status", "rel L2", "tol", "max abs", "LSE max abs", "message")


def correctness_table_rows(records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One list of cells per correctness record, under :data:`CORRECTNESS_HEADERS`."""
    return [[r["case"], r["kernel"], r["shape"], r["status"], _fmt(r.get("rel_l2"), ".2e"),
             _fmt(r.get("tolerance"), ".0e"), _fmt(r.get("max_abs"), ".2e"), _fmt(r.get("lse_max_abs"), ".2e"),
             (r.get("message") or "")[:160]]
            for r in records]


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """A fixed-width text table, or a Markdown one."""
    if markdown:
        esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in esc])
    widths = [max([len(h)] + [len(str(row[i])) for row in rows]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    return "\n".join(lines + [fmt.format(*map(str, row)) for row in rows])


# ---------------------------------------------------------------------------------------- writers

def json_safe(value: Any) -> Any:
    """Non-finite floats become strings (strict JSON has no NaN/inf); dataclasses become dicts."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return json_safe(asdict(value))
    return value


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of the correctness outcomes and of the timed rows."""
    records = report.get("correctness", [])
    counts = {s: sum(1 for r in records if r["status"] == s) for s in STATUSES}
    refs = report.get("reference_checks", [])
    return {
        "correctness": counts,
        "reference_checks": {s: sum(1 for r in refs if r["status"] == s) for s in STATUSES},
        "benchmark_rows": len(report.get("benchmark", [])),
        "benchmark_rows_with_ours": sum(1 for r in report.get("benchmark", []) if impl_ms(r, "ours")),
        "failed": bool(correctness_failed(records) or correctness_failed(refs)
                       or (report.get("gtests") or {}).get("status") == "fail"),
    }


def markdown_report(report: Mapping[str, Any]) -> str:
    """results.md: environment, ceilings, the benchmark table, the correctness list."""
    env = report.get("environment", {})
    ceil = report.get("ceilings", {})
    s = summary(report)
    lines = [
        f"# gqa on {env.get('gpu', '?')}: {env.get('date', '?')}", "",
        f"- commit: `{env.get('commit', '?')}`{' (working tree had uncommitted changes)' if env.get('dirty') else ''}",
        f"- GPU: {env.get('gpu', '?')}, driver {env.get('driver', '?')}, {env.get('sm_count', '?')} SMs, "
        f"L2 {env.get('l2_bytes', '?')} bytes, clocks {env.get('clocks', '?')}",
        f"- software: torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, cuDNN {env.get('cudnn', '?')}, "
        f"triton {env.get('triton', '?')}, python {env.get('python', '?')}",
        f"- ceilings (measured now): copy {_fmt(ceil.get('copy_gbps'), '.0f')} GB/s (bytes read + written), "
        f"bf16 matmul {_fmt(ceil.get('matmul_tflops'), '.0f')} TFLOP/s (8192^3, random data)",
        f"- correctness: {s['correctness']}; reference self-checks: {s['reference_checks']}",
        f"- wall time: {_fmt(report.get('wall_seconds'), '.0f')} s; time guard {report.get('max_minutes', '?')} min",
        "",
    ]
    lines += [f"- note: {n}" for n in report.get("notes", [])]
    rows = report.get("benchmark", [])
    lines += ["", "## Timing", "",
              "Median ms. thr: TFLOP/s for prefill (REFERENCE §1 FLOPs, causal per the formula), GB/s of the "
              "KV-read floor for decode, GB/s of the bytes read and written for merge rows (2 outputs + 2 LSEs in, "
              "1 + 1 out). ours % ceil: our throughput over the measured matmul rate (prefill) or "
              "copy bandwidth (decode, merge). floor ms: max(FLOPs / matmul rate, KV bytes / copy bandwidth). "
              "ours/best: our time over the best peer's (< 1: we are faster).", "",
              render(BENCH_HEADERS, bench_table_rows(rows, ceil), markdown=True), ""]
    reasons = sorted({f"{impl}: {e.get('skipped') or e.get('error')}" for r in rows
                      for impl, e in r.get("impls", {}).items() if "skipped" in e or "error" in e})
    if reasons:
        lines += ["### Skipped or failed implementations", ""] + [f"- {x}" for x in reasons] + [""]
    lines += ["## Correctness (relative L2 error against a float64 reference; LSE: max abs error of the rows)", "",
              render(CORRECTNESS_HEADERS, correctness_table_rows(report.get("correctness", [])), markdown=True), ""]
    bad_refs = [r for r in report.get("reference_checks", []) if r["status"] != "pass"]
    lines += ["## Reference self-check (torch float64 on the GPU vs gqa.reference, numpy)", "",
              f"{len(report.get('reference_checks', [])) - len(bad_refs)} agree; "
              + ("; ".join(f"{r['case']} {r['shape']}: {r['status']} {r.get('message', '')}" for r in bad_refs)
                 or "none disagree"), ""]
    if report.get("gtests"):
        g = report["gtests"]
        lines += ["## Runtime GPU unit tests", "", f"{g.get('status')}: {g.get('message', '')}", ""]
    if report.get("skipped_for_time"):
        lines += ["## Not run (time guard, or the run stopped)", ""] + [f"- {t}" for t in report["skipped_for_time"]] + [""]
    if report.get("errors"):
        lines += ["## Errors", ""] + [f"- {e}" for e in report["errors"]] + [""]
    return "\n".join(lines)


def write_results(out_dir: Path, report: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` atomically; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    full = dict(report)
    full["summary"] = summary(report)
    js, md = out_dir / "results.json", out_dir / "results.md"
    _atomic_write(js, json.dumps(json_safe(full), indent=1, allow_nan=False) + "\n")
    _atomic_write(md, markdown_report(full) + "\n")
    return js, md


def final_tables(report: Mapping[str, Any]) -> str:
    """The text printed last: failed correctness runs, then the benchmark table."""
    failed = correctness_failed(report.get("correctness", [])) + correctness_failed(report.get("reference_checks", []))
    s = summary(report)
    parts = [f"correctness: {s['correctness']}  reference self-checks: {s['reference_checks']}"]
    if failed:
        parts.append("FAILED:\n" + "\n".join(
            f"  {r['case']} {r.get('kernel', '')} {r['shape']}: {r['status']} "
            f"rel_l2={_fmt(r.get('rel_l2'), '.2e')} {r.get('message', '')[:200]}" for r in failed))
    ceil = report.get("ceilings", {})
    parts.append(f"ceilings: copy {_fmt(ceil.get('copy_gbps'), '.0f')} GB/s, "
                 f"bf16 matmul {_fmt(ceil.get('matmul_tflops'), '.0f')} TFLOP/s")
    parts.append(render(BENCH_HEADERS, bench_table_rows(report.get("benchmark", []), ceil)))
    return "\n".join(parts)


# ------------------------------------------------------------------------------- time estimation

@dataclass(frozen=True)
class Rates:
    """Assumed speeds for :func:`estimate_seconds` (pessimistic for a young compiler)."""

    ours_tflops: float = 150.0
    peer_tflops: float = 450.0
    flex_tflops: float = 300.0
    bandwidth_gbps: float = 3000.0
    host_us: float = 60.0
    kernel_load_s: float = 1.0
    correctness_run_s: float = 0.08
    reference_check_s: float = 0.15
    setup_s: float = 60.0
    worker_start_s: float = 15.0
    per_measurement_s: float = 0.25
    #: A merge case's run: three float64 references (the whole and two parts) and a merge.
    merge_run_s: float = 0.25
    #: PyTorch's elementwise merge moves about this many times the floor's bytes (float32 intermediates)
    #: in about 14 launches.
    merge_peer_traffic: float = 5.0
    merge_peer_host_us: float = 150.0


def _call_ms(case: BenchCase, tflops_rate: float, rates: Rates) -> float:
    compute = case.flops / (tflops_rate * 1e12) * 1e3
    memory = case.io_bytes / (rates.bandwidth_gbps * 1e9) * 1e3
    return max(compute, memory, 0.005)


def refcheck_shapes(case: Any) -> tuple:
    """The sizes of a case's reference self-check (a merge case names its own, from its source attention)."""
    own = getattr(case, "reference_check_shapes", None)
    return own() if callable(own) else reference_check_shapes(case.attrs)


def _measurements(case: BenchCase, rates: Rates) -> list[tuple[float, float]]:
    """(device ms, host µs) per call of each implementation timed on a row: ours and the three SDPA
    backends, or, for a merge row, ours and PyTorch's elementwise merge."""
    if case.phase == "merge":
        ms = _call_ms(case, rates.ours_tflops, rates)
        return [(ms, rates.host_us), (ms * rates.merge_peer_traffic, rates.merge_peer_host_us)]
    return [(_call_ms(case, rate, rates), rates.host_us)
            for rate in (rates.ours_tflops, rates.peer_tflops, rates.peer_tflops, rates.peer_tflops / 1.5)]


def estimate_seconds(correctness: Sequence[CorrectnessCase], benchmark: Sequence[BenchCase],
                     flex_rows: Sequence[BenchCase], flex_budget_s: float, rates: Rates = Rates(),
                     refcheck: Optional[Sequence[CorrectnessCase]] = None) -> dict[str, float]:
    """A model of the device time of one run over these cases, by phase (seconds).

    ``refcheck``: the cases whose reference is self-checked (default: ``correctness``).  Merge cases and
    rows (bench/merges.py) may be among them.
    """
    refcheck = correctness if refcheck is None else refcheck
    corr = sum(rates.kernel_load_s + len(c.shapes) * (rates.merge_run_s if hasattr(c, "source")
                                                      else rates.correctness_run_s) for c in correctness)
    refs = sum(rates.reference_check_s * len(refcheck_shapes(c)) for c in refcheck)
    bench = 0.0
    for case in benchmark:
        for ms, host_us in _measurements(case, rates):
            plan = plan_timing(ms)
            bench += max(plan.calls * ms / 1e3, plan.calls * host_us * 1e-6) + rates.per_measurement_s
    flex = 0.0
    for case in flex_rows:
        ms = _call_ms(case, rates.flex_tflops, rates)
        flex += plan_timing(ms).calls * ms / 1e3 + rates.per_measurement_s
    est = {"setup (runtime build, torch import, ceilings)": rates.setup_s + rates.worker_start_s,
           "reference self-checks": refs, "correctness": corr, "benchmark timing": bench,
           "flex timing": flex, "flex compiles (budget, worst case)": flex_budget_s if flex_rows else 0.0}
    est["total"] = sum(est.values())
    return est
