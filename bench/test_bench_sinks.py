"""Tests of bench/ for attention sinks and the log-sum-exp (LSE), without a GPU: the matrix's sinks/LSE
cases and rows, the float64 torch reference's sinks and LSE against gqa.reference, the LSE
comparison, and the worker's correctness check and timing with CUDA simulated on the CPU
(conftest.py's ``cpu_measure``: "ours" is the reference), where planted bugs must fail.

    python3 -m pytest bench -q
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

import configs  # (conftest.py put bench/ on sys.path)
import harness
from configs import Attrs, BenchCase, CorrectnessCase, Shape


def _case(name: str) -> CorrectnessCase:
    return next(c for c in configs.CORRECTNESS if c.name == name)


# ------------------------------------------------------------------------------------ the matrix

def test_sinks_and_lse_attributes():
    a = Attrs(64, 8, 128, kv_lens=True, sinks=True, lse=True)
    assert a.compile_kwargs()["sinks"] is True and a.compile_kwargs()["lse"] is True
    assert a.kernel_config().sinks and a.kernel_config().lse
    assert a.label() == "hq64/hkv8 d128 bf16 bshd none kv_lens sinks lse"
    assert len({a.key(), replace(a, sinks=False).key(), replace(a, lse=False).key()}) == 3
    assert not {"sinks", "lse", "return_lse"} & set(a.attention_kwargs())  # tensors, passed by the caller


def test_sinks_and_lse_coverage():
    cases = configs.CORRECTNESS
    both = [c for c in cases if c.attrs.sinks and c.attrs.lse]
    assert any(c.attrs.sinks and not c.attrs.lse for c in cases)  # sinks alone
    assert any(c.attrs.lse and not c.attrs.sinks and c.attrs.page_size for c in cases)  # the LSE alone, paged
    assert any(c.attrs.softcap for c in both)  # sinks compared with the softcapped scores
    assert {c.attrs.layout for c in cases if c.attrs.sinks} == {"bshd", "bhsd"}
    assert {c.attrs.dtype for c in both if not c.optional} == {"bf16", "f16"}
    assert [c.attrs.dtype for c in cases if c.optional and c.attrs.sinks] == ["f32"]
    shapes = [(c, s) for c in both for s in c.shapes]
    assert any(s.kv_lens and 0 in s.kv_lens for _, s in shapes)  # O = 0, LSE = the sink
    assert any(c.attrs.is_causal and s.seq_q > s.seq_kv for c, s in shapes)  # causal rows with no key
    assert any(s.seq_q == 1 and s.seq_kv >= 4096 for _, s in shapes)  # split-KV decode: the combine kernel
    assert any(s.seq_q > 1000 for _, s in shapes)  # a long prefill


def test_sinks_lse_rows_pair_with_plain_rows():
    rows = {b.name: b for b in configs.BENCHMARK}
    with_sinks = [b for b in configs.BENCHMARK if b.attrs.sinks or b.attrs.lse]
    assert [b.name for b in with_sinks] == [n + configs.SINKS_LSE_SUFFIX for n in configs.SINKS_LSE_ROWS]
    for b in with_sinks:
        plain = rows[b.name.removesuffix(configs.SINKS_LSE_SUFFIX)]
        assert b.attrs == replace(plain.attrs, sinks=True, lse=True)
        assert (b.phase, b.shape, b.flops, b.min_bytes) == (plain.phase, plain.shape, plain.flops, plain.min_bytes)
        assert b.name not in configs.FLEX_ROWS  # the peers have no sinks
        assert b.attrs.key() in {c.attrs.key() for c in configs.CORRECTNESS}
    assert {b.phase for b in with_sinks} == {"decode", "prefill"}
    assert configs.sinks_lse_cases(configs.decode_cases(memory_cap=0)) == []  # no plain row, no sinks row


def test_validate_wants_a_plain_row_for_each_sinks_row(monkeypatch):
    lonely = BenchCase("decode bshd B3 Skv5K sinks+lse", "decode", replace(configs.l70b(), sinks=True, lse=True),
                       Shape(3, 1, 5000))
    monkeypatch.setattr(configs, "BENCHMARK", configs.BENCHMARK + (lonely,))
    assert configs.validate() == [f"{lonely.name}: no plain row to compare with (the peers have no sinks or LSE)"]


def test_lse_columns_of_the_records():
    case = _case("l70b-sinks-lse-kvlens")
    records = [harness.correctness_run(case, "s", status="pass", rel_l2=1e-3, lse_max_abs=2e-5, lse_mismatched=0),
               harness.correctness_run(configs.CORRECTNESS[0], "t", status="pass", rel_l2=1e-3)]
    column = harness.CORRECTNESS_HEADERS.index("LSE max abs")
    assert [r[column] for r in harness.correctness_table_rows(records)] == ["2.00e-05", "-"]
    assert records[1]["lse_max_abs"] is None and records[1]["lse_mismatched"] is None


# --------------------------------------------------------------- the torch reference (CPU torch)

def test_torch_reference_sinks_and_lse():
    torch = pytest.importorskip("torch")
    import measure
    attrs = Attrs(8, 2, 32, head_dim_v=16, layout="bhsd", causal=True, kv_lens=True, softcap=5.0, sinks=True, lse=True)
    shape = Shape(3, 40, 30, (30, 0, 7))
    gen = torch.Generator().manual_seed(0)
    q, k, v, lens = measure.make_inputs(attrs, shape, gen, device="cpu")
    sinks = measure.make_sinks(attrs, gen, device="cpu")
    assert sinks.shape == (8,) and sinks.dtype == torch.float32
    assert measure.make_sinks(replace(attrs, sinks=False), gen, device="cpu") is None
    out, lse = measure.reference(q, k, v, attrs, lens, sinks=sinks, return_lse=True)
    chunked, chunked_lse = measure.reference(q, k, v, attrs, lens, sinks=sinks, return_lse=True, max_chunk_bytes=1)
    assert torch.allclose(out, chunked, rtol=1e-12, atol=1e-14) and torch.equal(lse, chunked_lse)
    assert out.shape == (3, 8, 40, 16) and lse.shape == (3, 8, 40) and lse.dtype == torch.float64
    sink_rows = sinks.double()[:, None].expand(8, 40)
    assert torch.count_nonzero(out[1]) == 0 and torch.equal(lse[1], sink_rows)  # kv_len 0: O = 0, LSE = the sink
    assert torch.count_nonzero(out[2, :, :33]) == 0 and torch.equal(lse[2, :, :33], sink_rows[:, :33])
    np_out, np_lse = measure.numpy_reference(q, k, v, attrs, lens, sinks=sinks, return_lse=True)
    assert measure.rel_l2(out, np_out)[0] < 1e-12
    lse_diff, mismatched = measure.compare_lse(lse, np_lse)
    assert lse_diff < 1e-12 and mismatched == 0
    # Without sinks: rows with no key have LSE -inf; a sink scales each row by exp(plain LSE - LSE).
    plain, plain_lse = measure.reference(q, k, v, attrs, lens, return_lse=True)
    assert torch.isneginf(plain_lse[1]).all() and torch.isneginf(plain_lse[0, :, :10]).all()  # Sq 40 > len 30
    assert torch.isfinite(plain_lse[0, :, 10:]).all()
    seen = torch.isfinite(plain_lse)
    scale = torch.where(seen, torch.exp(plain_lse - lse), torch.zeros_like(lse))
    assert torch.allclose(out, plain * scale[..., None], rtol=1e-10, atol=1e-14)
    assert (sinks.double()[None, :, None] > plain_lse)[seen].any()  # some sinks outweigh the keys
    assert torch.equal(measure.reference(q, k, v, attrs, lens), plain)  # return_lse only adds the LSE


def test_compare_lse():
    torch = pytest.importorskip("torch")
    import measure
    inf, nan = math.inf, math.nan
    want = torch.tensor([1.0, -inf, 2.0, 3.0], dtype=torch.float64)
    assert measure.compare_lse(want.float(), want) == (0.0, 0)
    assert measure.compare_lse(torch.tensor([1.5, -inf, 2.0, 3.0]), want) == (0.5, 0)
    for got in ([1.0, -inf, nan, 3.0], [1.0, 0.0, 2.0, 3.0], [-inf, -inf, 2.0, 3.0], [1.0, -inf, inf, 3.0]):
        assert measure.compare_lse(torch.tensor(got), want) == (0.0, 1), got  # unwritten, or wrong kind of row
    assert measure.compare_lse(torch.full((2, 3), nan), torch.zeros(2, 3)) == (0.0, 6)


def test_reference_checks_compare_sinks_and_lse(monkeypatch):
    pytest.importorskip("torch")
    import measure
    case = configs.with_shapes(_case("l70b-sinks-lse-kvlens"), ())  # the reference checks have their own sizes
    records = measure.reference_checks(case, base_seed=3, device="cpu")
    assert records and all(r["status"] == "pass" and r["lse_diff"] < 1e-12 and r["lse_mismatched"] == 0
                           for r in records), records
    honest = measure.numpy_reference

    def without_sinks(q, k, v, attrs, kv_lens, *, sinks=None, **options):
        return honest(q, k, v, attrs, kv_lens, **options)

    def lse_shifted(*args, **kwargs):
        out, lse = honest(*args, **kwargs)
        return out, lse + 1e-8

    for planted in (without_sinks, lse_shifted):
        monkeypatch.setattr(measure, "numpy_reference", planted)
        assert {r["status"] for r in measure.reference_checks(case, base_seed=3, device="cpu")} == {"fail"}


# ------------------------------------------- the worker's correctness check and timing, on the CPU

#: Small sizes of the sinks/LSE cases: kv_len 0 and short rows (where the sinks weigh most), Sq > Skv.
SMALL = {
    "l70b-sinks-lse-kvlens": (Shape(2, 5, 90, (90, 0)), Shape(3, 1, 300, (300, 3, 0))),
    "d64-sinks-causal-bhsd": (Shape(2, 17, 17), Shape(1, 20, 9)),
    "f16-softcap30-sinks-lse-causal": (Shape(1, 9, 40), Shape(1, 12, 5)),
}
#: The LSE alone, with rows that see no key (LSE -inf).
LSE_ONLY = CorrectnessCase("lse-kvlens", Attrs(8, 2, 64, kv_lens=True, lse=True), (Shape(2, 3, 20, (20, 0)),))


def _small(name: str) -> CorrectnessCase:
    return configs.with_shapes(_case(name), SMALL[name])


def _plant(measure, monkeypatch, bug) -> None:
    """Make "ours" run honestly, then ``bug(out, lse, lens)`` (it edits what the kernel wrote)."""
    honest = measure.run_ours

    def buggy(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None):
        result = honest(q, k, v, lens, out, attrs, kernel, block_table, sinks, lse)
        bug(out, lse, lens)
        return result

    monkeypatch.setattr(measure, "run_ours", buggy)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_check_case_with_sinks_and_lse_on_cpu(cpu_measure, name):
    case = _small(name)
    records = cpu_measure.check_case(case, "unused", base_seed=0)
    assert [r["status"] for r in records] == ["pass"] * len(case.shapes), records
    for r in records:
        assert r["rel_l2"] < 1e-2 and r["nonfinite"] == 0 and r["message"] == ""
        if case.attrs.lse:
            assert r["lse_max_abs"] < 1e-5 and r["lse_mismatched"] == 0  # float32 rounding only
        else:
            assert r["lse_max_abs"] is None and r["lse_mismatched"] is None


def test_check_case_catches_an_lse_off_by_a_hundredth(cpu_measure, monkeypatch):
    _plant(cpu_measure, monkeypatch, lambda out, lse, lens: lse.add_(0.01))
    records = cpu_measure.check_case(_small("l70b-sinks-lse-kvlens"), "unused", base_seed=0)
    assert [r["status"] for r in records] == ["fail", "fail"]
    assert all(r["rel_l2"] < 1e-2 and r["lse_max_abs"] == pytest.approx(0.01, rel=1e-3) for r in records)
    assert "LSE max abs error 1.00e-02 > 0.001" in records[0]["message"]


def _one_row_unwritten(out, lse, lens):
    lse.view(-1)[3] = math.nan


def _minus_inf_without_keys(out, lse, lens):  # the sink forgotten where a sequence has no key
    lse[lens == 0] = -math.inf


def _zero_without_keys(out, lse, lens):  # a finite LSE where there is neither key nor sink
    lse[lens == 0] = 0.0


def _nothing_written(out, lse, lens):
    lse.fill_(math.nan)


@pytest.mark.parametrize("bug, rows", [(_one_row_unwritten, [1, 1]), (_minus_inf_without_keys, [64 * 5, 64]),
                                       (_nothing_written, [2 * 64 * 5, 3 * 64])])
def test_check_case_catches_unwritten_or_wrongly_infinite_lse_rows(cpu_measure, monkeypatch, bug, rows):
    _plant(cpu_measure, monkeypatch, bug)
    records = cpu_measure.check_case(_small("l70b-sinks-lse-kvlens"), "unused", base_seed=0)
    assert [r["status"] for r in records] == ["fail", "fail"], records
    assert [r["lse_mismatched"] for r in records] == rows
    assert all("LSE rows NaN (unwritten)" in r["message"] and r["rel_l2"] < 1e-2 for r in records)


def test_check_case_catches_a_finite_lse_on_a_row_without_keys(cpu_measure, monkeypatch):
    assert [r["status"] for r in cpu_measure.check_case(LSE_ONLY, "unused", 0)] == ["pass"]
    _plant(cpu_measure, monkeypatch, _zero_without_keys)
    (record,) = cpu_measure.check_case(LSE_ONLY, "unused", 0)
    assert record["status"] == "fail" and record["lse_mismatched"] == 8 * 3 and record["rel_l2"] < 1e-2


def test_check_case_catches_ignored_sinks(cpu_measure, monkeypatch):
    honest = cpu_measure.run_ours

    def ignores_sinks(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None):
        return honest(q, k, v, lens, out, attrs, kernel, block_table, None, lse)

    monkeypatch.setattr(cpu_measure, "run_ours", ignores_sinks)
    for name in ("l70b-sinks-lse-kvlens", "d64-sinks-causal-bhsd"):
        records = cpu_measure.check_case(_small(name), "unused", base_seed=0)
        assert {r["status"] for r in records} == {"fail"} and all(r["rel_l2"] > 1e-2 for r in records), records


def test_bench_case_with_sinks_and_lse_on_cpu(cpu_measure, monkeypatch):
    measure = cpu_measure
    case = BenchCase("decode tiny sinks+lse", "decode", replace(configs.l70b(), sinks=True, lse=True), Shape(2, 1, 100))
    seen = []
    honest = measure.run_ours

    def recording(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None):
        seen.append((tuple(sinks.shape), tuple(lse.shape)))
        return honest(q, k, v, lens, out, attrs, kernel, block_table, sinks, lse)

    monkeypatch.setattr(measure, "run_ours", recording)
    row = measure.bench_case(case, "unused", measure.Timer(), None, 0, ("ours", "sdpa-flash"), None, total_ms=5)
    ours = row["impls"]["ours"]
    assert ours["ms"] > 0 and "nonfinite" not in ours and "lse_nonfinite" not in ours
    assert set(seen) == {((64,), (2, 64, 1))} and len(seen) >= ours["calls"]
    assert "compare with the plain row" in row["impls"]["sdpa-flash"]["skipped"]
    _plant(measure, monkeypatch, _one_row_unwritten)
    row = measure.bench_case(case, "unused", measure.Timer(), None, 0, ("ours",), None, total_ms=5)
    assert row["impls"]["ours"]["lse_nonfinite"] == 1  # bench rows have no row without keys: all finite
