"""Tests of bench/ for the merge kernel (gqa.merge_states), without a GPU: the merge matrix (merges.py), its
place in the task list, the plan, the kernel list and the table, the "two halves equal the whole" split
against the float64 reference, and the worker's correctness check and timing with CUDA simulated on the
CPU (conftest.py's ``cpu_merge``: "ours" is gqa's host merge), where planted bugs must fail.

    python3 -m pytest bench -q
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import pytest

import configs  # (conftest.py put bench/ on sys.path)
import device_check
import harness
import merges
from configs import Shape
from merges import MergeAttrs, MergeBench, MergeCase


def _case(name: str) -> MergeCase:
    return next(c for c in merges.MERGE_CASES if c.name == name)


def _kinds(shape: Shape) -> set[str]:
    """Which kinds of row a size's split gives (torch-free): a first part without keys, a second part
    without keys, neither with keys."""
    queries = shape.q_lens if shape.q_lens is not None else (shape.seq_q,) * shape.batch
    kinds = set()
    for q, kv, c in zip(queries, shape.kv_lens, merges.prefix_lens(shape)):
        if not q:
            continue
        if c == 0 and kv > 0 and q <= kv:
            kinds.add("first empty")
        if kv > 0 and c == kv - q + 1:  # the first query (the only one of a decode row) sees only the prefix
            kinds.add("second empty")
        if kv == 0 or q > kv:
            kinds.add("neither")
    return kinds


# ------------------------------------------------------------------------------------ the matrix

def test_merge_matrix_is_well_formed():
    assert merges.validate() == []
    bad = MergeCase("bad", configs.Attrs(8, 2, 64, kv_lens=True), (Shape(1, 1, 5, (5,)),))
    assert merges.validate([bad], []) and "causal through kv_lens" in merges.validate([bad], [])[0]
    row = MergeBench("merge bshd B0 S1", MergeAttrs(8, 64), Shape(0, 1, 0))
    assert merges.validate([], [row]) == [f"{row.name}: a merge row times a padded batch of batch x seq_q >= 1 rows"]


def test_merge_attrs_and_keys():
    a = MergeAttrs(64, 128)
    assert a.label() == "merge h64 dv128 bf16 bshd" and a.key().startswith("merge-h64-dv128-bf16-bshd-sm_90-")
    assert MergeAttrs(64, 128, varlen=True).key() != a.key() and "-varlen-" in MergeAttrs(64, 128, varlen=True).key()
    assert merges.merge_attrs(configs.Attrs(14, 2, 64, dtype="f16", layout="bhsd", causal=True, kv_lens=True)) == \
        MergeAttrs(14, 64, "f16", "bhsd")
    with pytest.raises(ValueError, match="layout must be 'bshd'"):
        MergeAttrs(8, 64, layout="bhsd", varlen=True).kernel_config()


def test_merge_cases_cover_the_brief():
    cases = {c.name: c for c in merges.MERGE_CASES}
    assert sorted(cases) == ["merge-f16-h14-d64-bhsd", "merge-l70b-bshd", "merge-l70b-bshd-inplace",
                             "merge-l70b-varlen"]
    l70b = cases["merge-l70b-bshd"]
    assert l70b.attrs == MergeAttrs(64, 128, "bf16", "bshd") and not l70b.in_place
    assert any(s.batch % 2 and s.seq_q % 2 == 1 and s.seq_q > 1 for s in l70b.shapes)  # odd batch and lengths
    assert cases["merge-f16-h14-d64-bhsd"].attrs == MergeAttrs(14, 64, "f16", "bhsd")
    assert cases["merge-l70b-varlen"].attrs == MergeAttrs(64, 128, "bf16", "bshd", varlen=True)
    assert cases["merge-l70b-bshd-inplace"].in_place and cases["merge-l70b-bshd-inplace"].attrs == l70b.attrs
    assert all(c.tolerance == configs.TOLERANCE[c.source.dtype] and not c.optional for c in cases.values())
    for c in cases.values():  # every case has rows of each kind
        assert set().union(*map(_kinds, c.shapes)) == {"first empty", "second empty", "neither"}, c.name
    # the f16 kernel's 8 rows per CTA: 14 heads x odd lengths leave a partial last CTA
    assert any(14 * s.seq_q % 8 for s in cases["merge-f16-h14-d64-bhsd"].shapes)


def test_prefix_lens_keep_the_prefix_visible_to_every_query():
    assert merges.prefix_lens(Shape(7, 1, 1000, (1000, 0, 517, 999, 3, 1000, 1))) == (1000, 0, 258, 1, 3, 0, 0)
    assert merges.prefix_lens(Shape(3, 17, 1000, (1000, 5, 300))) == (984, 0, 142)
    assert merges.describe_split(Shape(3, 17, 1000, (1000, 5, 300))) == "prefix[984, 0, 142]"
    for c in merges.MERGE_CASES:
        for s in c.shapes:
            queries = s.q_lens if s.q_lens is not None else (s.seq_q,) * s.batch
            for q, kv, p in zip(queries, s.kv_lens, merges.prefix_lens(s)):
                assert 0 <= p <= kv and (p <= max(0, kv - q + 1) or not q), (c.name, s)


def test_merge_kernels():
    kernels = merges.distinct_kernels()
    assert len(kernels) == 3 and all(not u.optional for u in kernels.values())
    assert len(merges.all_kernels()) == len(configs.distinct_kernels()) + 3 == 51
    bench_key = merges.MERGE_BENCHMARK[0].attrs.key()
    assert kernels[bench_key].users[:2] == ["correctness:merge-l70b-bshd", "correctness:merge-l70b-bshd-inplace"]
    assert {b.attrs.key() for b in merges.MERGE_BENCHMARK} == {bench_key}
    # the bench rows' kernel is checked at the rows' sizes too
    sizes = {(s.batch, s.seq_q) for s in _case("merge-l70b-bshd").shapes}
    assert {(b.shape.batch, b.shape.seq_q) for b in merges.MERGE_BENCHMARK} <= sizes


def test_merge_rows_and_their_floor():
    rows = {b.name: b for b in merges.MERGE_BENCHMARK}
    assert sorted(rows) == ["merge bshd B1 S4K", "merge bshd B64 S1"]
    decode, prefill = rows["merge bshd B64 S1"], rows["merge bshd B1 S4K"]
    # 2 outputs + 2 LSEs read, 1 + 1 written: 3 x (B S H Dv x 2 bytes) + 3 x (B H S x 4 bytes)
    assert decode.min_bytes == 3 * 64 * 64 * 128 * 2 + 3 * 64 * 64 * 4 == 3_194_880
    assert prefill.min_bytes == 3 * 4096 * 64 * 128 * 2 + 3 * 4096 * 64 * 4 == 204_472_320
    assert merges.merge_bytes(MergeAttrs(8, 64, "f32"), 2, 3) == 3 * 48 * 64 * 4 + 3 * 48 * 4
    assert decode.io_bytes == decode.min_bytes and decode.flops == 0 and decode.phase == "merge"
    row = harness.bench_row(decode, 64)
    row["impls"] = {"ours": {"ms": 0.002}, "torch": {"ms": 0.02}}
    assert harness.throughput(row, "ours") == pytest.approx(3_194_880 / 2e-6 / 1e9)  # GB/s of the floor
    assert harness.throughput_unit("merge") == "GB/s" and harness.ratio(row) == pytest.approx(0.1)
    assert harness.best_peer(row) == ("torch", 0.02)
    assert harness.floor_ms(row, {"copy_gbps": 4300.0, "matmul_tflops": 790.0}) == pytest.approx(
        3_194_880 / 4300e9 * 1e3)
    [cells] = harness.bench_table_rows([row], {"copy_gbps": 4300.0, "matmul_tflops": 790.0})
    assert cells[0] == "merge bshd B64 S1" and cells[harness.BENCH_HEADERS.index("torch ms")] == "0.0200"
    assert cells[harness.BENCH_HEADERS.index("ours thr")] == "1597.4 GB/s" and cells[-1] == "0.10"


def test_row_impls():
    assert harness.BENCH_IMPLS == ("ours", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "torch")
    assert harness.row_impls("merge", harness.BENCH_IMPLS) == ["ours", "torch"]
    assert harness.row_impls("decode", harness.BENCH_IMPLS) == ["ours", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient"]
    assert harness.row_impls("prefill", ["flex"]) == ["flex"] and harness.row_impls("merge", ["flex"]) == []


# ------------------------------------------------------------------------- tasks, plan, report

def test_merge_tasks_and_plan(capsys):
    tasks = device_check.task_list(device_check.PHASES)
    bench = [t for t in tasks if device_check.task_kind(t) == "bench"]
    first_prefill = next(i for i, t in enumerate(bench) if t.startswith("bench:prefill"))
    assert bench[first_prefill - 2:first_prefill] == [f"bench:{b.name}" for b in merges.MERGE_BENCHMARK]
    correctness = [t for t in tasks if device_check.task_kind(t) == "correctness"]
    assert correctness[-4:] == [f"correctness:{c.name}" for c in merges.MERGE_CASES]
    assert device_check.task_list(["refcheck", "correctness", "bench"], only="^merge") == (
        ["env"] + [f"{k}:{c.name}" for k in ("refcheck", "correctness") for c in merges.MERGE_CASES]
        + [f"bench:{b.name}" for b in merges.MERGE_BENCHMARK])
    assert device_check.main(["--plan", "--only", "^merge"]) == 0
    out = capsys.readouterr().out
    assert "tasks: 12 {'refcheck': 4, 'correctness': 4, 'bench': 2, 'flex': 0}" in out


def test_estimate_of_the_whole_check_is_within_the_device_budget():
    flex = [b for b in configs.BENCHMARK if b.name in configs.FLEX_ROWS]
    cases, rows = device_check.correctness_cases(), device_check.bench_rows()
    est = harness.estimate_seconds(cases, rows, flex, flex_budget_s=90)
    without = harness.estimate_seconds(configs.CORRECTNESS, configs.BENCHMARK, flex, flex_budget_s=90)
    added = est["total"] - without["total"]
    assert 5 < added < 20  # 3 kernels, 4 cases, 2 rows x 2 implementations
    assert est["total"] < 360  # inside the 6-minute hard limit (timeout 420 s) even before the guard trims
    merge_only = harness.estimate_seconds([], list(merges.MERGE_BENCHMARK), [], 0)
    assert 0 < merge_only["benchmark timing"] < 4  # two measurements per row (ours, torch)


def test_report_files_merge_failures():
    r = device_check.Report()
    case = _case("merge-l70b-varlen")
    r.add_failure(f"correctness:{case.name}", "worker died")
    assert [x["kernel"] for x in r.correctness] == ["merge h64 dv128 bf16 bshd varlen"] * len(case.shapes)
    r.add_failure(f"bench:{merges.MERGE_BENCHMARK[0].name}", "timed out")
    assert r.benchmark[0]["phase"] == "merge" and r.benchmark[0]["min_bytes"] == 3_194_880
    assert r.failed()


# --------------------------------------------------------------- the split (CPU torch, float64)

@pytest.mark.parametrize("name", [c.name for c in merges.MERGE_CASES])
def test_two_float64_halves_equal_the_whole(name):
    pytest.importorskip("torch")
    import merge_measure
    records = merge_measure.reference_checks(_case(name), base_seed=2, device="cpu")
    assert len(records) == 2 and all(r["status"] == "pass" and r["rel_diff"] < 1e-12 and r["lse_mismatched"] == 0
                                     for r in records), records


def test_reference_checks_catch_a_misplaced_suffix(monkeypatch):
    """The suffix read from the cache's start (not rolled past the prefix) overlaps the prefix: the halves no
    longer add up to the whole."""
    pytest.importorskip("torch")
    import merge_measure
    monkeypatch.setattr(merge_measure, "roll_keys", lambda x, shift, layout: x)
    records = merge_measure.reference_checks(_case("merge-l70b-bshd"), base_seed=2, device="cpu")
    assert records[0]["status"] == "fail", records


def test_partials_give_minus_inf_rows():
    torch = pytest.importorskip("torch")
    import merge_measure
    case = _case("merge-f16-h14-d64-bhsd")
    shape = Shape(4, 3, 20, (20, 2, 9, 0))  # prefix [18, 0, 3, 0]: a 3-row chunk's first row sees only its prefix
    parts = merge_measure.partials(case, shape, torch.Generator().manual_seed(0), device="cpu")
    (o1, l1), (o2, l2), (o, l) = parts["first"], parts["second"], parts["whole"]
    assert o.shape == o1.shape == (4, 14, 3, 64) and l.shape == l1.shape == (4, 14, 3)  # bhsd
    assert torch.isneginf(l2[0, :, 0]).all() and torch.isfinite(l2[0, :, 1:]).all()
    assert torch.isneginf(l1[1]).all() and torch.isfinite(l2[1, :, 2]).all()  # kv 2 < q 3: rows 0 sees nothing
    assert torch.isneginf(l[1, :, 0]).all() and torch.isneginf(l[3]).all() and torch.count_nonzero(o[3]) == 0
    assert torch.equal(merge_measure.unseen_rows(l, case.attrs), torch.isneginf(l))


# ------------------------------------------- the worker's correctness check and timing, on the CPU

#: Small sizes: decode rows (no key; 1 key), chunks (one longer than its keys), each kind of split.
SMALL = (Shape(5, 1, 40, (40, 0, 17, 2, 30)), Shape(3, 6, 40, (40, 3, 25)))
SMALL_VARLEN = (Shape(4, 9, 40, (40, 3, 0, 17), q_lens=(0, 1, 1, 9)), Shape(3, 6, 40, (40, 25, 3), q_lens=(1, 6, 5)))


def _small(name: str) -> MergeCase:
    case = _case(name)
    return replace(case, shapes=SMALL_VARLEN if case.source.varlen else SMALL)


@pytest.mark.parametrize("name", [c.name for c in merges.MERGE_CASES])
def test_check_merge_case_on_cpu(cpu_merge, monkeypatch, name):
    seen = []
    honest = cpu_merge.run_merge

    def recording(o1, lse1, o2, lse2, out, out_lse, attrs, kernel):
        seen.append((tuple(o1.shape), tuple(lse1.shape), out is o1, bool(out_lse.isnan().all())))
        return honest(o1, lse1, o2, lse2, out, out_lse, attrs, kernel)

    monkeypatch.setattr(cpu_merge, "run_merge", recording)
    case = _small(name)
    records = cpu_merge.check_merge_case(case, "unused", base_seed=0)
    assert [r["status"] for r in records] == ["pass", "pass"], records
    for r in records:
        assert r["rel_l2"] < case.tolerance and r["nonfinite"] == 0 and r["message"] == ""
        assert r["lse_max_abs"] < 1e-5 and r["lse_mismatched"] == 0 and r["unseen_nonzero"] == 0
    assert sum(r["rows_first_empty"] for r in records) and sum(r["rows_second_empty"] for r in records)
    assert sum(r["rows_neither"] for r in records)
    a = case.attrs
    rows = [s.tokens for s in case.shapes]
    want = [((t, a.heads, a.dv), (a.heads, t)) if a.varlen else
            (((s.batch, a.heads, s.seq_q, a.dv) if a.layout == "bhsd" else (s.batch, s.seq_q, a.heads, a.dv)),
             (s.batch, a.heads, s.seq_q)) for s, t in zip(case.shapes, rows)]
    assert seen == [(o, l, case.in_place, True) for o, l in want]  # out is o1 iff in place; the LSE poisoned


def _plant(merge_measure, monkeypatch, bug) -> None:
    """Make "ours" run ``bug(o1, lse1, o2, lse2, out, out_lse, merge)`` instead (``merge(...)``: the honest
    merge of those six; ``merge.attrs``: the kernel's attributes)."""
    honest = merge_measure.run_merge

    def buggy(o1, lse1, o2, lse2, out, out_lse, attrs, kernel):
        def merge(*x):
            return honest(*x, attrs, kernel)
        merge.attrs = attrs
        return bug(o1, lse1, o2, lse2, out, out_lse, merge)

    monkeypatch.setattr(merge_measure, "run_merge", buggy)


def _swapped_lses(o1, lse1, o2, lse2, out, out_lse, merge):  # each part weighed by the other's LSE
    return merge(o1, lse2, o2, lse1, out, out_lse)


def _one_row_unwritten(o1, lse1, o2, lse2, out, out_lse, merge):
    merge(o1, lse1, o2, lse2, out, out_lse)
    out.view(-1, out.shape[-1])[5] = math.nan


def _unseen_rows_not_zero(o1, lse1, o2, lse2, out, out_lse, merge):  # the weights of -inf parts not 0
    merge(o1, lse1, o2, lse2, out, out_lse)
    import merge_measure
    out[merge_measure.unseen_rows(out_lse, merge.attrs)] = 1e-4


def _minus_inf_lse_zero(o1, lse1, o2, lse2, out, out_lse, merge):  # log(0) written as 0
    merge(o1, lse1, o2, lse2, out, out_lse)
    out_lse[out_lse.isneginf()] = 0.0


def _writes_o2(o1, lse1, o2, lse2, out, out_lse, merge):  # the output also stored into o2
    merge(o1, lse1, o2, lse2, out, out_lse)
    o2.copy_(out)


@pytest.mark.parametrize("bug, why", [(_swapped_lses, "rel"), (_one_row_unwritten, "128 elements not finite"),
                                      (_unseen_rows_not_zero, "rows that neither part saw are not 0"),
                                      (_minus_inf_lse_zero, "LSE rows NaN"), (_writes_o2, "inputs written: o2")])
@pytest.mark.parametrize("name", ["merge-l70b-bshd", "merge-l70b-varlen"])
def test_check_merge_case_catches_planted_bugs(cpu_merge, monkeypatch, bug, why, name):
    _plant(cpu_merge, monkeypatch, bug)
    records = cpu_merge.check_merge_case(_small(name), "unused", base_seed=0)
    assert [r["status"] for r in records] == ["fail", "fail"], records
    if why == "rel":  # the output far off; the LSE of a merge is symmetric in the parts, so it still passes
        assert all(r["rel_l2"] > 0.1 and r["lse_mismatched"] == 0 for r in records), records
    else:
        assert all(why in r["message"] for r in records), records


def test_check_merge_case_catches_an_ignored_out_in_place(cpu_merge, monkeypatch):
    _plant(cpu_merge, monkeypatch, lambda o1, lse1, o2, lse2, out, out_lse, merge:
           merge(o1, lse1, o2, lse2, o1.clone(), out_lse))  # merged into memory of its own: o1 unchanged
    records = cpu_merge.check_merge_case(_small("merge-l70b-bshd-inplace"), "unused", base_seed=0)
    assert [r["status"] for r in records] == ["fail", "fail"] and all(r["rel_l2"] > 0.1 for r in records)


def test_check_merge_case_missing_kernel(cpu_merge, monkeypatch):
    import gqa

    def missing(attrs, cache_dir):
        raise gqa.CompilerNotFoundError("no compiler of merge kernels found. more")

    monkeypatch.setattr(cpu_merge, "load_merge_kernel", missing)
    records = cpu_merge.check_merge_case(_small("merge-l70b-bshd"), "x", 0, missing="ptxas rejected it")
    assert {r["status"] for r in records} == {"error"} and "ptxas rejected it" in records[0]["message"]


@pytest.mark.parametrize("layout, varlen", [("bshd", False), ("bhsd", False), ("bshd", True)])
def test_torch_peer_is_the_merge(layout, varlen):
    torch = pytest.importorskip("torch")
    import gqa
    import merge_measure
    g = torch.Generator().manual_seed(0)
    o_shape, l_shape = (((10, 6, 32), (6, 10)) if varlen else
                        (((2, 6, 5, 32) if layout == "bhsd" else (2, 5, 6, 32)), (2, 6, 5)))
    o1, o2 = (torch.randn(o_shape, generator=g).to(torch.bfloat16) for _ in range(2))
    l1, l2 = (torch.randn(l_shape, generator=g) * 3 + 5 for _ in range(2))
    out, out_lse = torch.empty_like(o1), torch.empty_like(l1)
    merge_measure.torch_merge(o1, l1, o2, l2, out, out_lse, MergeAttrs(6, 32, layout=layout, varlen=varlen))
    want, want_lse = gqa.merge_attention_states(o1, l1, o2, l2, layout=None if varlen else layout)
    assert torch.allclose(out.float(), want.float(), atol=1e-2) and torch.allclose(out_lse, want_lse, atol=1e-5)


def test_bench_merge_on_cpu(cpu_merge, monkeypatch):
    row = MergeBench("merge bshd B3 S5", MergeAttrs(8, 64), Shape(3, 5, 0))
    seen = []
    honest = cpu_merge.run_merge

    def recording(o1, lse1, o2, lse2, out, out_lse, attrs, kernel):
        seen.append((tuple(o1.shape), tuple(lse1.shape), bool(o1.isfinite().all() and lse1.isfinite().all())))
        return honest(o1, lse1, o2, lse2, out, out_lse, attrs, kernel)

    monkeypatch.setattr(cpu_merge, "run_merge", recording)
    record = cpu_merge.bench_merge(row, "unused", cpu_merge.measure.Timer(), 0, ("ours", "torch"), 1 << 20, total_ms=5)
    ours, peer = record["impls"]["ours"], record["impls"]["torch"]
    assert ours["ms"] > 0 and peer["ms"] > 0 and "nonfinite" not in ours and "lse_nonfinite" not in ours
    assert peer["rel_err_vs_ours"] < 1e-2
    assert set(seen) == {((3, 5, 8, 64), (3, 8, 5), True)} and len(seen) >= ours["calls"]
    assert record["min_bytes"] == 3 * 120 * 64 * 2 + 3 * 120 * 4 and record["phase"] == "merge"
    assert record["input_sets"] == harness.input_sets(row.io_bytes, 1 << 20)
    assert record["peer_layout"] == "the same tensors as ours" and record["shape"] == {"batch": 3, "seq_q": 5,
                                                                                        "seq_kv": 0}
    _plant(cpu_merge, monkeypatch, _one_row_unwritten)
    record = cpu_merge.bench_merge(row, "unused", cpu_merge.measure.Timer(), 0, ("ours",), None, total_ms=5)
    assert record["impls"]["ours"]["nonfinite"] == 64


def test_worker_main_runs_merge_tasks_on_cpu(cpu_merge, monkeypatch, tmp_path):
    """The worker dispatches merge cases and rows to merge_measure (the attention peers left out of them)."""
    import types
    torch = pytest.importorskip("torch")
    props = types.SimpleNamespace(name="Fake GPU", multi_processor_count=1, L2_cache_size=1 << 20,
                                  total_memory=1 << 30, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "init", lambda: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=0: props)
    monkeypatch.setitem(device_check.CASES, "merge-l70b-varlen", _small("merge-l70b-varlen"))
    small_row = MergeBench("merge bshd B64 S1", MergeAttrs(64, 128), Shape(4, 1, 0))
    monkeypatch.setitem(device_check.BENCH, "merge bshd B64 S1", small_row)
    tasks = ["env", "refcheck:merge-l70b-varlen", "correctness:merge-l70b-varlen", "bench:merge bshd B64 S1"]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    (tmp_path / "manifest.json").write_text("{}")
    args = device_check.parse_args([
        "--worker", "--tasks-file", str(tmp_path / "tasks.json"), "--events", str(tmp_path / "ev.jsonl"),
        "--start", "1", "--deadline", repr(time.time() + 300), "--flex-budget", "0", "--manifest",
        str(tmp_path / "manifest.json")])
    assert device_check.worker_main(args) == 0
    _, events = device_check._read_events(tmp_path / "ev.jsonl", 0)
    done = {e["task"]: e["result"] for e in events if e["event"] == "done"}
    assert list(done) == tasks[1:]
    assert {r["status"] for r in done["refcheck:merge-l70b-varlen"]} == {"pass"}
    assert {r["status"] for r in done["correctness:merge-l70b-varlen"]} == {"pass"}
    row = done["bench:merge bshd B64 S1"]
    assert set(row["impls"]) == {"ours", "torch"} and row["impls"]["ours"]["ms"] > 0
