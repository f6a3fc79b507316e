"""Tests of bench/ that need no GPU: the matrix, the accounting and writers, the supervisor (with a
fake worker), prepare_kernels.py (with a fake gqa-compile), and, where PyTorch is installed, the
float64 torch reference against gqa.reference on the CPU (sinks and the LSE: test_bench_sinks.py;
ragged batches: test_bench_varlen.py; shared fixtures: conftest.py).

    python3 -m pytest bench -q
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

import configs  # noqa: E402  (conftest.py put bench/ on sys.path)
import device_check  # noqa: E402
import harness  # noqa: E402
import merges  # noqa: E402
import prepare_kernels  # noqa: E402
from configs import Attrs, BenchCase, CorrectnessCase, Shape  # noqa: E402

import gqa  # noqa: E402  (configs put python/ on sys.path)
from gqa import compiler as gqa_compiler  # noqa: E402


# ------------------------------------------------------------------------------------ the matrix

def test_configs_are_well_formed():
    assert configs.validate() == []


def test_distinct_kernel_count():
    kernels = configs.distinct_kernels()
    assert len(kernels) == 48
    assert len({c.attrs.key() for c in configs.CORRECTNESS}) == len(configs.CORRECTNESS) == 48
    optional = [u for u in kernels.values() if u.optional]
    assert sorted(u.attrs.dtype for u in optional) == ["f32", "f32", "f32"]
    bench_keys = {b.attrs.key() for b in configs.BENCHMARK}
    assert len(bench_keys) == 9  # bshd/bhsd x causal/none, paged, sinks+lse x causal/none, varlen paged/packed: all
    # correctness kernels
    assert bench_keys <= {c.attrs.key() for c in configs.CORRECTNESS}
    for key in bench_keys:
        assert not kernels[key].optional
        assert any(u.startswith("correctness:") for u in kernels[key].users)


def test_equivalent_attributes_share_a_kernel():
    a = CorrectnessCase("a", Attrs(8, 2, 128, causal=True), (Shape(1, 1, 1),), optional=True)
    b = CorrectnessCase("b", Attrs(8, 2, 128, window=(-1, 0)), (Shape(1, 1, 1),))
    c = CorrectnessCase("c", Attrs(8, 2, 128, causal=True, window=(64, 5)), (Shape(1, 1, 1),))
    d = CorrectnessCase("d", Attrs(8, 2, 128, window=(64, 0), scale=128 ** -0.5, head_dim_v=128), (Shape(1, 1, 1),))
    e = CorrectnessCase("e", Attrs(8, 2, 128, causal=True, layout="bhsd"), (Shape(1, 1, 1),))
    kernels = configs.distinct_kernels([a, b, c, d, e], [])
    assert len(kernels) == 3
    first = kernels[a.attrs.key()]
    assert first.users == ["correctness:a", "correctness:b"] and not first.optional  # b is required
    assert kernels[c.attrs.key()].users == ["correctness:c", "correctness:d"]


def test_benchmark_kernels_are_required_even_if_a_case_is_optional():
    opt = CorrectnessCase("opt", configs.l70b(), (Shape(1, 1, 1),), optional=True)
    kernels = configs.distinct_kernels([opt], [configs.BENCHMARK[0]])
    assert len(kernels) == 1 and not next(iter(kernels.values())).optional


def test_correctness_coverage():
    cases = configs.CORRECTNESS
    groups = {c.attrs.group_size for c in cases}
    assert {1, 2, 4, 8, 64} <= groups
    assert any(c.attrs.kv_heads == 1 for c in cases)  # MQA
    masks = {c.attrs.kernel_config().mask for c in cases}
    assert masks == {"none", "causal", "window"}
    windows = {c.attrs.kernel_config().window for c in cases}
    assert any(left > 0 and right == 0 for left, right in windows)  # causal sliding window (L, 0)
    assert any(left > 0 and right > 0 for left, right in windows)
    assert any(c.attrs.kv_lens for c in cases) and any(c.attrs.softcap for c in cases)
    assert any(not c.attrs.kernel_config().default_scale for c in cases)
    assert {c.attrs.layout for c in cases} == {"bshd", "bhsd"}
    assert {c.attrs.head_dim for c in cases} == {64, 128, 256}
    assert any(c.attrs.dv != c.attrs.head_dim for c in cases)
    assert {c.attrs.dtype for c in cases if not c.optional} == {"bf16", "f16"}
    assert all(c.attrs.dtype == "f32" for c in cases if c.optional)
    shapes = [s for c in cases for s in c.shapes]
    assert any(s.seq_q == 1 for s in shapes)  # decode
    assert any(s.seq_q == s.seq_kv > 1 for s in shapes)  # prefill
    assert any(1 < s.seq_q < s.seq_kv for s in shapes)  # chunked prefill
    assert any(s.seq_q > s.seq_kv for s in shapes)
    lengths = {s.seq_q for s in shapes} | {s.seq_kv for s in shapes}
    assert {1, 17, 129, 1000, 4097} <= lengths
    lens = {n for s in shapes if s.kv_lens for n in s.kv_lens}
    assert 0 in lens and 1 in lens
    for c in cases:  # every window case has keys beyond the window
        left, right = c.attrs.kernel_config().window
        if c.attrs.kernel_config().mask == "window":
            assert max(s.seq_kv for s in c.shapes) > max(left, right) + 1


def test_tolerances():
    assert configs.TOLERANCE["bf16"] == 1e-2 and configs.TOLERANCE["f16"] == 2e-3
    assert all(c.tolerance == configs.TOLERANCE[c.attrs.dtype] for c in configs.CORRECTNESS)


def test_benchmark_matrix():
    rows = configs.BENCHMARK
    plain = [b for b in rows if not b.attrs.sinks and not b.attrs.varlen]
    prefill = [b for b in plain if b.phase == "prefill" and b.attrs.layout == "bshd"]
    decode = [b for b in plain if b.phase == "decode" and b.attrs.layout == "bshd" and not b.attrs.page_size]
    paged = [b for b in plain if b.attrs.page_size]
    assert len(prefill) == 3 * 5 * 2 and len(decode) == 4 * 4 and len(paged) == 3
    # Each paged row has a contiguous row of the same size to compare with.
    assert {(b.shape.batch, b.shape.seq_kv) for b in paged} <= {(b.shape.batch, b.shape.seq_kv) for b in decode}
    assert all(b.attrs.page_size == 16 and b.shape.seq_kv % 16 == 0 and not b.attrs.kv_lens for b in paged)
    assert {(b.shape.batch, b.shape.seq_q) for b in prefill} == {
        (bb, s) for bb in (1, 2, 4) for s in (1024, 2048, 4096, 8192, 16384)}
    assert all(b.shape.seq_q == b.shape.seq_kv for b in prefill)
    assert all(b.shape.seq_q == 1 and not b.attrs.is_causal for b in decode)
    assert all(b.min_bytes <= configs.DECODE_MEMORY_CAP for b in decode)
    for b in rows:
        a = b.attrs
        assert (a.q_heads, a.kv_heads, a.head_dim, a.dtype) == (64, 8, 128, "bf16")
    assert {b.attrs.layout for b in rows} == {"bshd", "bhsd"}
    assert len({b.name for b in rows}) == len(rows)


def test_decode_memory_cap_trims():
    kept = configs.decode_cases(memory_cap=10 * 2 ** 30)
    assert all(b.min_bytes <= 10 * 2 ** 30 for b in kept)
    assert len(kept) < 16
    assert ("decode bshd B64 Skv128K" in {b.name for b in configs.decode_cases()})


def test_flops_and_bytes_use_the_reference_formulas():
    causal = BenchCase("x", "prefill", configs.l70b(causal=True), Shape(2, 4096, 4096))
    full = BenchCase("y", "prefill", configs.l70b(), Shape(2, 4096, 4096))
    assert full.flops == 4 * 2 * 64 * 4096 * 4096 * 128  # FA2: 4 * B * S^2 * H * D
    assert causal.flops * 2 == full.flops
    assert causal.flops == gqa.attention_flops(2, 64, 4096, 4096, 128, causal=True)
    dec = BenchCase("z", "decode", configs.l70b(), Shape(64, 1, 131072))
    assert dec.min_bytes == 2 * 64 * 8 * 131072 * 128 * 2 == 34_359_738_368
    assert dec.io_bytes == dec.min_bytes + 2 * 64 * 64 * 128 * 2


def test_reference_check_shapes_cover_masked_rows():
    kv = configs.reference_check_shapes(Attrs(8, 2, 64, kv_lens=True))
    assert all(s.kv_lens is not None for s in kv) and any(0 in s.kv_lens for s in kv)
    plain = configs.reference_check_shapes(Attrs(8, 2, 64))
    assert any(s.seq_q > s.seq_kv for s in plain) and all(s.kv_lens is None for s in plain)


def test_labels():
    assert configs.l70b(causal=True).label() == "hq64/hkv8 d128 bf16 bshd causal"
    assert Attrs(16, 2, 256, layout="bhsd", softcap=20.0, scale=0.1).label() == \
        "hq16/hkv2 d256 bf16 bhsd none cap20 scale0.1"
    assert "win(64, 0) kv_lens" in Attrs(8, 2, 128, window=(64, 0), kv_lens=True).label()
    assert Shape(2, 1, 5, (5, 0)).label() == "B2 Sq1 Skv5 lens[5, 0]"


# ----------------------------------------------------------------------------------- the harness

class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_budget():
    clock = FakeClock()
    b = harness.Budget(60, clock=clock)
    assert not b.expired() and b.remaining() == 60
    clock.t += 59.5
    assert not b.expired() and b.elapsed() == pytest.approx(59.5)
    clock.t += 1
    assert b.expired() and b.remaining() < 0


@pytest.mark.parametrize("est_ms", [0.002, 0.05, 1.0, 7.0, 59.0, 3000.0])
def test_plan_timing(est_ms):
    plan = harness.plan_timing(est_ms)
    assert 1 <= plan.per_group <= 100 and 3 <= plan.groups <= 15 and 1 <= plan.warmup <= 50
    if est_ms >= 2.0:
        assert plan.per_group == 1
    if est_ms < 0.01:
        assert plan.per_group == 100
    # as many groups as fit in about 300 ms, between 3 and 15
    assert plan.groups == max(3, min(15, int(300 / (plan.per_group * est_ms))))
    if est_ms >= 100:
        assert plan.groups == 3 and plan.warmup == 1
    assert plan.calls == plan.warmup + plan.per_group * plan.groups


def test_input_sets_rotate_only_small_inputs():
    l2 = 50 * 2 ** 20
    assert harness.input_sets(10 * 2 ** 30, l2) == 1
    assert harness.input_sets(4 * l2, l2) == 1
    assert harness.input_sets(2 * 2 ** 20, l2) == 64  # capped
    assert harness.input_sets(20 * 2 ** 20, l2) == 10


def test_median():
    assert harness.median([3.0, 1.0, 2.0]) == 2.0
    assert harness.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    with pytest.raises(ValueError):
        harness.median([])


def _row(case: BenchCase, times: dict) -> dict:
    row = harness.bench_row(case, 1)
    for impl, value in times.items():
        row["impls"][impl] = value if isinstance(value, dict) else {"ms": value}
    return row


PREFILL = BenchCase("prefill bshd B1 S4K causal", "prefill", configs.l70b(causal=True), Shape(1, 4096, 4096))
DECODE = BenchCase("decode bshd B8 Skv8K", "decode", configs.l70b(), Shape(8, 1, 8192))
CEILINGS = {"copy_gbps": 4300.0, "matmul_tflops": 790.0}


def test_accounting_prefill():
    row = _row(PREFILL, {"ours": 0.5, "sdpa-flash": 0.4, "sdpa-cudnn": 0.25, "sdpa-efficient": {"skipped": "no"},
                         "flex": {"error": "boom"}})
    assert harness.throughput(row, "ours") == pytest.approx(PREFILL.flops / 0.5e-3 / 1e12)
    assert harness.best_peer(row) == ("sdpa-cudnn", 0.25)
    assert harness.ratio(row) == pytest.approx(2.0)
    assert harness.floor_ms(row, CEILINGS) == pytest.approx(PREFILL.flops / 790e12 * 1e3)
    assert harness.ceiling_fraction(row, "ours", CEILINGS) == pytest.approx(
        harness.throughput(row, "ours") / 790.0)
    assert harness.throughput(row, "sdpa-efficient") is None


def test_accounting_decode():
    row = _row(DECODE, {"ours": 0.02, "sdpa-flash": 0.04})
    assert harness.throughput_unit("decode") == "GB/s"
    assert harness.throughput(row, "ours") == pytest.approx(DECODE.min_bytes / 0.02e-3 / 1e9)
    assert harness.ratio(row) == pytest.approx(0.5)
    assert harness.floor_ms(row, CEILINGS) == pytest.approx(DECODE.min_bytes / 4300e9 * 1e3)
    assert harness.floor_ms(row, {}) is None


def test_accounting_without_peers_or_ours():
    row = _row(DECODE, {"ours": {"error": "x"}, "sdpa-flash": float("nan")})
    assert harness.best_peer(row) is None and harness.ratio(row) is None and harness.impl_ms(row, "ours") is None


def test_judge():
    assert harness.judge(1e-3, 0, 1e-2) == "pass"
    assert harness.judge(2e-2, 0, 1e-2) == "fail"
    assert harness.judge(1e-3, 5, 1e-2) == "fail"
    assert harness.judge(float("nan"), 0, 1e-2) == "fail"
    assert harness.judge(None, 0, 1e-2) == "fail"


def test_render_text_and_markdown():
    text = harness.render(("a", "bb"), [["x", "1"], ["yyy", "22"]])
    lines = text.splitlines()
    assert lines[0].startswith("a    bb") and lines[1].startswith("---  --") and lines[3].startswith("yyy  22")
    md = harness.render(("a", "b"), [["x|y", "1"]], markdown=True)
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]


def _report() -> dict:
    case = configs.CORRECTNESS[0]
    return {
        "environment": {"gpu": "NVIDIA H200", "driver": "580.1", "commit": "abc123", "dirty": True,
                        "date": "2026-11-28 10:00 UTC", "torch": "2.11.0"},
        "ceilings": CEILINGS,
        "correctness": [
            harness.correctness_run(case, "B1 Sq1 Skv1", status="pass", rel_l2=1e-3, max_abs=1e-2, nonfinite=0),
            harness.correctness_run(case, "B1 Sq17 Skv17", status="fail", rel_l2=float("nan"), nonfinite=3,
                                    message="3 elements not finite (unwritten or NaN)"),
        ],
        "reference_checks": [{"case": case.name, "shape": "B2 Sq17 Skv200", "status": "pass", "rel_diff": 1e-16,
                              "message": ""}],
        "benchmark": [_row(PREFILL, {"ours": 0.5, "sdpa-flash": 0.4, "sdpa-cudnn": {"skipped": "needs | bar"}}),
                      _row(DECODE, {"ours": 0.02, "sdpa-flash": 0.04})],
        "notes": ["a note"], "skipped_for_time": ["bench:x"], "errors": ["e1"], "max_minutes": 6,
        "wall_seconds": 12.0,
    }


def test_writers(tmp_path):
    report = _report()
    js, md = harness.write_results(tmp_path, report)
    data = json.loads(js.read_text())  # strict JSON: the NaN became a string
    assert data["correctness"][1]["rel_l2"] == "nan"
    assert data["summary"]["correctness"] == {"pass": 1, "fail": 1, "error": 0, "skipped": 0}
    assert data["summary"]["failed"] is True
    text = md.read_text()
    assert "abc123" in text and "uncommitted" in text and "NVIDIA H200" in text
    assert "| prefill bshd B1 S4K causal |" in text and "needs \\| bar" not in text
    assert "sdpa-cudnn: needs | bar" in text
    assert "B1 Sq17 Skv17" in text and "bench:x" in text and "e1" in text
    assert not list(tmp_path.glob("*.tmp"))


def test_final_tables_lists_failures_then_the_table():
    text = harness.final_tables(_report())
    assert "FAILED" in text and "B1 Sq17 Skv17" in text
    assert text.index("FAILED") < text.index("ours ms")
    last = text.splitlines()[-1]
    assert last.startswith("decode bshd B8 Skv8K") and "0.50" in last  # ours/best = 0.02 / 0.04


def test_summary_passes_with_only_optional_skips():
    case = configs.CORRECTNESS[-1]
    report = {"correctness": [harness.correctness_run(case, "s", status="skipped"),
                              harness.correctness_run(case, "t", status="pass", rel_l2=0.0, nonfinite=0)]}
    assert harness.summary(report)["failed"] is False
    report["gtests"] = {"status": "fail"}
    assert harness.summary(report)["failed"] is True


def test_estimate_is_within_the_device_budget():
    flex = [b for b in configs.BENCHMARK if b.name in configs.FLEX_ROWS]
    est = harness.estimate_seconds(configs.CORRECTNESS, configs.BENCHMARK, flex, flex_budget_s=90)
    assert est["total"] == pytest.approx(sum(v for k, v in est.items() if k != "total"))
    assert est["total"] < 8 * 60  # one call well under the 10-minute limit


# -------------------------------------------------------------------------------- device_check

def test_task_list():
    tasks = device_check.task_list(device_check.PHASES)
    assert tasks[:2] == ["env", "ceilings"]
    cases = len(configs.CORRECTNESS) + len(merges.MERGE_CASES)  # the merge kernel's: test_bench_merge.py
    assert len(tasks) == 2 + 2 * cases + len(configs.BENCHMARK) + len(merges.MERGE_BENCHMARK) + len(configs.FLEX_ROWS)
    assert tasks[-1] == f"flex:{configs.FLEX_ROWS[-1]}"
    only = device_check.task_list(["correctness"], only="^g8-")
    assert only == ["env", "correctness:g8-none", "correctness:g8-causal"]
    assert device_check.task_kind("bench:decode bshd B1 Skv1K") == "bench"
    assert device_check.task_subject("bench:decode bshd B1 Skv1K") == "decode bshd B1 Skv1K"


def test_report_files_failures_where_they_belong():
    r = device_check.Report()
    case = configs.CORRECTNESS[3]
    r.add_failure(f"correctness:{case.name}", "worker died")
    assert len(r.correctness) == len(case.shapes) and all(x["status"] == "error" for x in r.correctness)
    r.add_failure(f"bench:{configs.BENCHMARK[0].name}", "timed out")
    assert r.benchmark[0]["error"] == "timed out" and r.benchmark[0]["impls"] == {}
    r.add_failure(f"refcheck:{case.name}", "x")
    assert r.reference_checks[0]["status"] == "error"
    assert r.failed() and len(r.errors) == 3


def test_nvidia_smi_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert device_check.nvidia_smi() == {}


def test_plan_mode_needs_no_gpu(capsys):
    assert device_check.main(["--plan"]) == 0
    out = capsys.readouterr().out
    assert "distinct kernels 51 (3 merge)" in out and "total" in out


FAKE_WORKER = textwrap.dedent('''
    """A stand-in worker: behaviour per task from $FAKE_BEHAVIOUR (JSON: task -> ok|crash|hang|fail|exit3)."""
    import json, os, sys, time
    args = sys.argv[1:]
    tasks = json.load(open(args[args.index("--tasks-file") + 1]))
    events = open(args[args.index("--events") + 1], "a", buffering=1)
    start = int(args[args.index("--start") + 1])
    behaviour = json.loads(os.environ["FAKE_BEHAVIOUR"])
    with open(os.environ["FAKE_STARTS"], "a") as f:
        f.write(f"{start} {args[args.index('--flex') + 1]}\\n")
    for task in tasks[start:]:
        kind = task.split(":")[0]
        what = behaviour.get(task, "ok")
        if what == "stop":
            sys.exit(0)
        events.write(json.dumps({"event": "start", "task": task}) + "\\n")
        if what == "crash":
            os._exit(139)
        if what == "hang":
            time.sleep(60)
        if what == "fail":
            events.write(json.dumps({"event": "failed", "task": task, "message": "bug"}) + "\\n")
            continue
        result = {"env": {"gpu": "fake"}, "ceilings": {"copy_gbps": 1.0}}.get(kind)
        if kind in ("refcheck", "correctness"):
            result = [{"case": task, "shape": "s", "status": "pass", "rel_l2": 0.0, "rel_diff": 0.0}]
        if kind == "bench":
            result = {"name": task, "phase": "decode", "impls": {}, "flops": 1, "min_bytes": 1,
                      "flex_compile_s": 5.0}
        events.write(json.dumps({"event": "done", "task": task, "result": result}) + "\\n")
        if what == "exit3":
            sys.exit(3)
''')


def _supervise(tmp_path, behaviour: dict, tasks: list, seconds: float = 60, task_timeout: float = 5.0,
               startup: float = 30.0):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps(tasks))
    starts = tmp_path / "starts.txt"
    os.environ["FAKE_BEHAVIOUR"] = json.dumps(behaviour)
    os.environ["FAKE_STARTS"] = str(starts)
    events = tmp_path / "events.jsonl"
    seen = []

    def cmd(start: int, flex_left: float) -> list:
        return [sys.executable, str(script), "--tasks-file", str(tasks_file), "--events", str(events),
                "--start", str(start), "--flex", repr(flex_left)]

    report = device_check.Report()
    sup = device_check.Supervisor(tasks, events, cmd, harness.Budget(seconds), report,
                                  on_task=lambda t, r: seen.append((t, r is not None)), flex_budget_s=90.0,
                                  task_timeout=lambda t: task_timeout, startup_timeout_s=startup, poll_s=0.02)
    sup.run()
    restarts = [line.split() for line in starts.read_text().splitlines()]
    return report, seen, restarts


C = [f"correctness:{c.name}" for c in configs.CORRECTNESS[:4]]
B = [f"bench:{b.name}" for b in configs.BENCHMARK[:3]]


def test_supervisor_runs_everything(tmp_path):
    report, seen, restarts = _supervise(tmp_path, {}, ["env", "ceilings"] + C + B)
    assert [t for t, ok in seen] == ["env", "ceilings"] + C + B and all(ok for _, ok in seen)
    assert restarts == [["0", "90.0"]]
    assert report.environment == {"gpu": "fake"} and len(report.correctness) == 4 and len(report.benchmark) == 3
    assert report.errors == [] and report.skipped_for_time == []


def test_supervisor_restarts_after_a_crash_a_hang_and_a_lost_context(tmp_path):
    tasks = ["env"] + C + B
    behaviour = {C[1]: "crash", C[3]: "exit3", B[1]: "hang", C[2]: "fail"}
    t0 = time.time()
    report, seen, restarts = _supervise(tmp_path, behaviour, tasks, task_timeout=1.0)
    assert time.time() - t0 < 20
    assert [t for t, _ in seen] == tasks  # every task accounted for, in order
    assert dict(seen) == {**{t: True for t in tasks}, C[1]: False, C[2]: False, B[1]: False}
    # restarts after the crash (at C[2]), after exit 3 (at B[0]) and after the hang (at B[2]);
    # flex budget passed on: 90 s minus what the bench rows reported spending
    assert [int(s) for s, _ in restarts] == [0, tasks.index(C[2]), tasks.index(B[0]), tasks.index(B[2])]
    assert float(restarts[-1][1]) == 85.0  # B[0] reported 5 s of flex compiles; B[1] hung
    assert any("died" in e for e in report.errors) and any("timed out" in e for e in report.errors)
    assert any("bug" in e for e in report.errors)
    crashed = [r for r in report.correctness if r["case"] == configs.CORRECTNESS[1].name]
    assert crashed and all(r["status"] == "error" for r in crashed)
    assert report.failed()


def test_supervisor_time_guard(tmp_path):
    tasks = ["env"] + C
    report, seen, _ = _supervise(tmp_path, {C[1]: "stop"}, tasks)  # the worker stops itself at its deadline
    assert [t for t, _ in seen] == ["env", C[0]]
    assert report.skipped_for_time == C[1:]
    report, seen, _ = _supervise(tmp_path, {}, tasks, seconds=0)  # expired before the start
    assert seen == [] and report.skipped_for_time == tasks


def test_supervisor_gives_up_when_the_worker_cannot_start(tmp_path):
    script_fail = tmp_path / "fail.py"
    script_fail.write_text("import sys; sys.exit(7)\n")
    report = device_check.Report()
    sup = device_check.Supervisor(["env"] + C, tmp_path / "ev.jsonl", lambda s, f: [sys.executable, str(script_fail)],
                                  harness.Budget(60), report, poll_s=0.02)
    sup.run()
    assert any("before its first task" in e for e in report.errors) and sup.aborted
    assert report.skipped_for_time == ["env"] + C


def _have_cmake_and_cxx() -> bool:
    return device_check.find_cmake() is not None and (shutil.which("c++") or shutil.which("g++")) is not None


@pytest.mark.skipif(not _have_cmake_and_cxx(), reason="needs cmake and a C++ compiler")
def test_build_runtime(tmp_path):
    lib = device_check.build_runtime(tmp_path / "rt", jobs=os.cpu_count() or 2, log=lambda line: None)
    assert lib.name == "libgqa_runtime.so" and lib.stat().st_size > 0


# ------------------------------------------------------------------------------ prepare_kernels

def _python_tests_conftest():
    path = configs.REPO / "python" / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("gqa_python_tests_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_compiler(tmp_path, monkeypatch):
    """The python/tests fake gqa-compile behind a wrapper that fails for $FAKE_FAIL_ARG (e.g. f32), and, for
    the merge kernels (compiled by libgqa_compiler.so alone), python/tests' stub compiler library."""
    from gqa import _compiler_lib
    stub = _python_tests_conftest().build_shared_lib(
        configs.REPO / "python" / "tests" / "stub_compiler.c", tmp_path / "stub" / "libgqa_compiler.so")
    monkeypatch.setenv("GQA_COMPILER_LIB", str(stub))
    monkeypatch.setattr(_compiler_lib, "_library", None)  # not the real library another test loaded
    fake = tmp_path / "bin" / "fake-gqa-compile"
    fake.parent.mkdir()
    fake.write_text(_python_tests_conftest().FAKE_COMPILER.replace("{python}", sys.executable))
    wrapper = tmp_path / "bin" / "gqa-compile"
    wrapper.write_text(textwrap.dedent(f'''\
        #!{sys.executable}
        import os, sys
        bad = os.environ.get("FAKE_FAIL_ARG")
        if bad and bad in sys.argv:
            sys.stderr.write(f"error: gqa-compile: {{bad}} is not supported\\n")
            sys.exit(3)
        args = sys.argv[1:]
        if "--window" in args:  # argparse (the fake) reads "-1,8" as an option; LLVM's cl takes it
            i = args.index("--window")
            args[i:i + 2] = ["--window=" + args[i + 1]]
        os.execv({sys.executable!r}, [{sys.executable!r}, {str(fake)!r}] + args)
        '''))
    for p in (fake, wrapper):
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "compiler.log"
    monkeypatch.setenv("GQA_COMPILE", str(wrapper))
    monkeypatch.setenv("FAKE_GQA_LOG", str(log))
    monkeypatch.setenv("FAKE_GQA_MODE", "ok")
    monkeypatch.setenv("FAKE_FAIL_ARG", "f32")
    return log


def _prepare(tmp_path, *extra: str) -> int:
    return prepare_kernels.main(["--carry-dir", str(tmp_path / "carry"), "--no-ptxas", "--no-runtime",
                                 "--googletest", "", "--jobs", "4", "--no-python-tests", *extra])


def test_prepare_kernels_carries_the_python_gpu_tests(tmp_path, fake_compiler, capsys):
    """The kernels of python/tests/test_gpu.py go into the cache too (the fake compiler refuses f32)."""
    assert prepare_kernels.prepare_python_gpu_tests(tmp_path / "cache", "sm_90").startswith(
        "python/tests/test_gpu.py kernels: 16 of 17 in the cache\n  failed: hq4-hkv4-d64-dv32-f32")
    assert len(list((tmp_path / "cache").glob("*/kernel.json"))) == 16


def test_prepare_kernels_with_a_fake_compiler(tmp_path, fake_compiler, capsys, monkeypatch):
    assert _prepare(tmp_path) == 0
    out = capsys.readouterr().out
    assert "kernels: 51 distinct, 48 ok (48 compiled now, 0 from the cache), 0 failed, 3 optional left out" in out
    assert "f32 is not supported" in out
    manifest = json.loads((tmp_path / "carry" / "manifest.json").read_text())
    assert len(manifest["kernels"]) == 51 and manifest["commit"]
    failed = [k for k, v in manifest["kernels"].items() if v["status"] != "ok"]
    assert len(failed) == 3 and all("-f32-" in k for k in failed)
    cache = tmp_path / "carry" / "kernels"
    assert sorted(p.name for p in cache.iterdir()) == sorted(k for k, v in manifest["kernels"].items()
                                                             if v["status"] == "ok")
    calls = fake_compiler.read_text().splitlines()
    assert len(calls) == 45  # the failing f32 calls stop in the wrapper, before the fake's log; merges: the stub
    merged = {k: v for k, v in manifest["kernels"].items() if v["kind"] == "merge_states"}
    assert sorted(merged) == sorted(merges.distinct_kernels()) and all(v["status"] == "ok" for v in merged.values())
    assert all(k.startswith("merge-") and (cache / k / "kernel.json").is_file() for k in merged)
    assert sum("--sinks" in c for c in calls) == 8 and sum("--return-lse" in c for c in calls) == 9
    assert sum("--varlen" in c for c in calls) == 7 and sum("--packed-kv" in c for c in calls) == 3
    # every kernel the matrix needs is found in the cache without a compiler (as on the device: no
    # gqa-compile, no libgqa_compiler.so, which would also stay loaded for later tests)
    os.environ.pop("GQA_COMPILE")
    monkeypatch.delenv("GQA_COMPILER_LIB", raising=False)
    monkeypatch.setattr(gqa._tools, "repo_root", lambda: None)
    from gqa import _compiler_lib
    monkeypatch.setattr(_compiler_lib, "_library", None)
    gqa_compiler.clear_memory_cache()
    for key, use in merges.all_kernels().items():
        if manifest["kernels"][key]["status"] == "ok":
            a = use.attrs
            k = (gqa.compile_merge_states(a.heads, a.head_dim_v, cache_dir=cache, **a.compile_kwargs())
                 if isinstance(a, merges.MergeAttrs) else
                 gqa.compile(a.q_heads, a.kv_heads, a.head_dim, cache_dir=cache, **a.compile_kwargs()))
            assert k.config.key() == key


def test_prepare_kernels_reuses_the_cache(tmp_path, fake_compiler, capsys):
    assert _prepare(tmp_path) == 0
    capsys.readouterr()
    assert _prepare(tmp_path) == 0
    assert "48 ok (0 compiled now, 48 from the cache)" in capsys.readouterr().out
    assert len(fake_compiler.read_text().splitlines()) == 45


def test_prepare_kernels_fails_loudly(tmp_path, fake_compiler, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_FAIL_ARG", "256")  # head dim 256 is required
    assert _prepare(tmp_path) == 1
    out = capsys.readouterr().out
    assert "FAILED: hq16/hkv2 d256" in out and "256 is not supported" in out


def test_prepare_kernels_without_a_compiler(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("GQA_COMPILE", raising=False)
    monkeypatch.setattr(gqa._tools, "repo_root", lambda: None)
    assert _prepare(tmp_path) == 1
    assert "gqa-compile not found" in capsys.readouterr().err


PTXAS_SAMPLE = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'gqa_attention_fwd' for 'sm_90a'
ptxas info    : Function properties for gqa_attention_fwd
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 168 registers, used 1 barriers, 49152 bytes smem, 400 bytes cmem[0]
"""


def test_parse_ptxas():
    assert prepare_kernels.parse_ptxas(PTXAS_SAMPLE) == {"gqa_attention_fwd": {
        "stack_bytes": 8, "spill_stores": 4, "spill_loads": 4, "registers": 168, "smem_bytes": 49152}}


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="no ptxas")
def test_ptxas_check_on_a_real_ptx(tmp_path):
    entry = tmp_path / "key"
    entry.mkdir()
    shutil.copy(configs.REPO / "unittests" / "Runtime" / "Inputs" / "probe.ptx", entry / "kernel.ptx")
    (entry / "kernel.json").write_text(json.dumps({"chip": "sm_75"}))
    result = prepare_kernels.Compiled("key", configs.KernelUse(Attrs(4, 2, 8)), status="ok")
    prepare_kernels.ptxas_check(result, tmp_path, shutil.which("ptxas"))
    assert result.status == "ok" and {"gqa_probe_split", "gqa_probe_combine"} <= set(result.ptxas)
    (entry / "kernel.ptx").write_text(".version 8.0\n.target sm_75\nthis is not ptx\n")
    prepare_kernels.ptxas_check(result, tmp_path, shutil.which("ptxas"))
    assert result.status == "failed" and "ptxas rejected" in result.error


# ----------------------------------------------------------------- the torch reference (CPU torch)

def test_torch_reference_matches_numpy_reference():
    pytest.importorskip("torch")
    import measure
    for case in configs.CORRECTNESS:
        for record in measure.reference_checks(case, base_seed=1, device="cpu"):
            assert record["status"] == "pass", record


def test_torch_reference_chunking_and_fully_masked_rows():
    torch = pytest.importorskip("torch")
    import measure
    attrs = Attrs(8, 2, 32, head_dim_v=16, layout="bhsd", causal=True, kv_lens=True)
    shape = Shape(3, 40, 30, (30, 0, 7))
    q, k, v, lens = measure.make_inputs(attrs, shape, torch.Generator().manual_seed(0), device="cpu")
    whole = measure.reference(q, k, v, attrs, lens)
    chunked = measure.reference(q, k, v, attrs, lens, max_chunk_bytes=1)
    assert torch.allclose(whole, chunked, rtol=1e-12, atol=1e-14) and whole.shape == (3, 8, 40, 16)
    assert torch.count_nonzero(whole[1]) == 0  # kv_len 0: every row is 0
    assert torch.count_nonzero(whole[2, :, :33]) == 0  # rows i < Sq - len (= 33) see no key
    assert torch.isfinite(whole).all()
    err, _ = measure.rel_l2(whole, measure.numpy_reference(q, k, v, attrs, lens))
    assert err < 1e-12
    assert torch.count_nonzero(q) == q.numel()  # random, never zeros


def test_sdpa_peer_on_bshd_views_matches_the_reference():
    torch = pytest.importorskip("torch")
    import measure
    attrs = configs.l70b("bshd", causal=True)
    shape = Shape(2, 33, 33)
    q, k, v, _ = measure.make_inputs(attrs, shape, torch.Generator().manual_seed(0), device="cpu")
    views = [measure.as_bhsd(t, attrs.layout) for t in (q, k, v)]
    fn, ctx = measure.peer_callable("sdpa-flash", attrs, [views[0]], [views[1]], [views[2]], None)
    with ctx:
        out = fn(0)
    err, _ = measure.rel_l2(out, measure.as_bhsd(measure.reference(q, k, v, attrs), attrs.layout))
    assert err < 1e-2
    with pytest.raises(measure.Refused):
        measure.peer_callable("sdpa-flash", Attrs(8, 2, 64, softcap=5.0), views[:1], views[1:2], views[2:], None)
    with pytest.raises(measure.Refused, match="budget"):
        measure.peer_callable("flex", attrs, views[:1], views[1:2], views[2:], measure.Flex(budget_s=0))


# ---------------------- the worker's glue, simulated on the CPU (torch; cpu_measure: conftest.py)

def test_check_case_on_cpu(cpu_measure, monkeypatch):
    measure = cpu_measure
    case = configs.with_shapes(next(c for c in configs.CORRECTNESS if c.name == "kvlens-sliding-64-0"),
                               [Shape(2, 5, 90, (90, 0)), Shape(1, 1, 3, (2,))])
    records = measure.check_case(case, "unused", base_seed=0)
    assert [r["status"] for r in records] == ["pass", "pass"], records
    assert all(r["rel_l2"] < 1e-2 and r["nonfinite"] == 0 for r in records)

    def leaves_a_hole(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None):  # 1 unwritten
        out.view(-1)[1:] = 0.5
        return out

    monkeypatch.setattr(measure, "run_ours", leaves_a_hole)
    bad = measure.check_case(case, "unused", base_seed=0)
    assert [r["status"] for r in bad] == ["fail", "fail"] and "1 elements not finite" in bad[0]["message"]


def test_check_case_missing_kernel(cpu_measure, monkeypatch):
    measure = cpu_measure

    def missing(attrs, cache_dir):
        raise gqa.CompilerNotFoundError("gqa-compile not found. more")

    monkeypatch.setattr(measure, "load_kernel", missing)
    optional = next(c for c in configs.CORRECTNESS if c.optional)
    assert {r["status"] for r in measure.check_case(optional, "x", 0, missing="f32 unsupported")} == {"skipped"}
    assert "f32 unsupported" in measure.check_case(optional, "x", 0, missing="f32 unsupported")[0]["message"]
    required = configs.CORRECTNESS[0]
    assert {r["status"] for r in measure.check_case(required, "x", 0)} == {"error"}


def test_bench_case_on_cpu(cpu_measure):
    measure = cpu_measure
    case = BenchCase("prefill tiny", "prefill", configs.l70b(causal=True), Shape(1, 64, 64))
    row = measure.bench_case(case, "unused", measure.Timer(), None, 0, ("ours", "sdpa-flash", "sdpa-cudnn"),
                             l2_bytes=1 << 20, total_ms=5)
    assert row["input_sets"] == harness.input_sets(case.io_bytes, 1 << 20) == 2 and row["flops"] == case.flops
    ours, flash, cudnn = (row["impls"][i] for i in ("ours", "sdpa-flash", "sdpa-cudnn"))
    assert ours["ms"] > 0 and ours["calls"] >= 4 and "nonfinite" not in ours
    assert flash["ms"] > 0 and flash["rel_err_vs_ours"] < 1e-2
    assert "skipped" in cudnn
    text = harness.final_tables({"benchmark": [row]})
    assert "prefill tiny" in text and "skip" in text


def test_bench_case_records_a_failing_impl(cpu_measure, monkeypatch):
    measure = cpu_measure

    def broken(*args):
        raise RuntimeError("CUDA_ERROR_LAUNCH_FAILED")

    monkeypatch.setattr(measure, "run_ours", broken)
    case = BenchCase("decode tiny", "decode", configs.l70b(), Shape(2, 1, 100))
    row = measure.bench_case(case, "unused", measure.Timer(), None, 0, ("ours", "sdpa-flash"), None, total_ms=5)
    assert "LAUNCH_FAILED" in row["impls"]["ours"]["error"]
    assert row["impls"]["sdpa-flash"]["ms"] > 0 and "rel_err_vs_ours" not in row["impls"]["sdpa-flash"]


def test_ceilings_on_cpu(cpu_measure):
    result = cpu_measure.measure_ceilings(cpu_measure.Timer(), copy_bytes=1 << 20, n=64)
    assert result["copy_gbps"] > 0 and result["matmul_tflops"] > 0 and result["matmul"]["n"] == 64


def test_worker_main_on_cpu(cpu_measure, monkeypatch, tmp_path):
    """The worker's task loop and event stream, with CUDA simulated on the CPU."""
    import types
    torch = pytest.importorskip("torch")
    props = types.SimpleNamespace(name="Fake GPU", multi_processor_count=1, L2_cache_size=1 << 20,
                                  total_memory=1 << 30, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "init", lambda: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=0: props)
    tasks = ["env", "refcheck:g1-causal", "correctness:g1-causal", "bench:decode bshd B1 Skv1K"]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    (tmp_path / "manifest.json").write_text("{}")
    args = device_check.parse_args([
        "--worker", "--tasks-file", str(tmp_path / "tasks.json"), "--events", str(tmp_path / "ev.jsonl"),
        "--start", "1", "--deadline", repr(time.time() + 300), "--flex-budget", "0", "--manifest",
        str(tmp_path / "manifest.json"), "--impls", "ours,sdpa-flash,flex"])
    assert device_check.worker_main(args) == 0
    _, events = device_check._read_events(tmp_path / "ev.jsonl", 0)
    assert [(e["event"], e["task"]) for e in events] == [(k, t) for t in tasks[1:] for k in ("start", "done")]
    done = {e["task"]: e["result"] for e in events if e["event"] == "done"}
    assert {r["status"] for r in done["refcheck:g1-causal"]} == {"pass"}
    assert {r["status"] for r in done["correctness:g1-causal"]} == {"pass"}
    row = done["bench:decode bshd B1 Skv1K"]
    assert row["impls"]["ours"]["ms"] > 0 and "budget" in row["impls"]["flex"]["skipped"]
    report = device_check.Report()
    for task, result in done.items():
        report.add(task, result)
    assert not report.failed() and len(report.correctness) == len(configs.CORRECTNESS[1].shapes)


def test_flex_results_merge_into_their_row():
    r = device_check.Report()
    name = configs.FLEX_ROWS[0]
    r.add(f"bench:{name}", {"name": name, "impls": {"ours": {"ms": 1.0}}})
    r.add(f"flex:{name}", {"name": name, "impls": {"flex": {"ms": 2.0}}, "flex_compile_s": 30.0})
    assert r.benchmark == [{"name": name, "impls": {"ours": {"ms": 1.0}, "flex": {"ms": 2.0}}, "flex_compile_s": 30.0}]
    r.add_failure(f"flex:{name}", "timed out")
    assert r.benchmark[0]["impls"]["flex"] == {"error": "timed out"}
    other = configs.FLEX_ROWS[1]
    r.add(f"flex:{other}", {"name": other, "impls": {"flex": {"ms": 3.0}}})  # its bench row never ran
    assert r.benchmark[-1]["name"] == other


def test_peer_alone_is_still_compared_with_ours(cpu_measure):
    case = BenchCase("prefill tiny", "prefill", configs.l70b(), Shape(1, 40, 40))
    row = cpu_measure.bench_case(case, "unused", cpu_measure.Timer(), None, 0, ("sdpa-flash",), None, total_ms=5)
    assert list(row["impls"]) == ["sdpa-flash"] and row["impls"]["sdpa-flash"]["rel_err_vs_ours"] < 1e-2


def test_worker_command_round_trips():
    args = device_check.parse_args(["--seed", "7", "--impls", "ours,sdpa-flash", "--cache-dir", "/x/k"])
    cmd = device_check.worker_command(args, Path("/t/tasks.json"), Path("/t/ev.jsonl"), 5, 1234.5, 42.0)
    assert cmd[0] == sys.executable and cmd[1].endswith("device_check.py")
    w = device_check.parse_args(cmd[2:])
    assert w.worker and w.tasks_file == "/t/tasks.json" and w.events == "/t/ev.jsonl" and w.start == 5
    assert w.deadline == 1234.5 and w.flex_budget == 42.0 and w.seed == 7 and w.impls == "ours,sdpa-flash"
    assert w.cache_dir == "/x/k" and w.manifest == args.manifest
    assert device_check.parse_args([]).impls.split(",") == list(harness.BENCH_IMPLS)
