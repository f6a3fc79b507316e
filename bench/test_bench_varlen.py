"""Tests of bench/ for ragged batches (varlen), without a GPU: the matrix's varlen cases and timed rows (K/V
a cache, pages, or packed by cu_seqlens_k), the float64 torch reference's varlen form against
gqa.reference.attention_varlen, and the worker's correctness check and timing with CUDA simulated on the
CPU (conftest.py's ``cpu_measure``: "ours" is the reference), where planted bugs must fail.

    python3 -m pytest bench -q
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

import configs  # (conftest.py put bench/ on sys.path)
import harness
import varlen
from configs import Attrs, BenchCase, CorrectnessCase, Shape


def _case(name: str) -> CorrectnessCase:
    return next(c for c in configs.CORRECTNESS if c.name == name)


VARLEN_ROW = "decode bshd B32 Skv8K" + configs.VARLEN_MIX_SUFFIX
PACKED_ROW = "decode bshd B32 Skv8K" + configs.VARLEN_PACKED_SUFFIX


# ------------------------------------------------------------------------------------ the matrix

def test_varlen_attributes_and_shapes():
    a = Attrs(64, 8, 128, causal=True, kv_lens=True, page_size=16, varlen=True)
    assert a.compile_kwargs()["varlen"] is True and a.kernel_config().varlen
    assert a.label() == "hq64/hkv8 d128 bf16 bshd causal kv_lens paged16 varlen"
    assert a.key() != replace(a, varlen=False).key()
    s = Shape(3, 40, 50, (50, 17, 3), q_lens=(0, 40, 3))
    assert s.tokens == 43 and s.sequences() == [(0, 50), (40, 17), (3, 3)]
    assert s.label() == "B3 Sq40 Skv50 q_lens[0, 40, 3] lens[50, 17, 3]"
    assert configs.varlen_mix(32, 8192, 512).label() == "B32 Sq512 Skv8192 q_lens[512, 1*31] lens[8192*32]"
    assert Shape(2, 5, 9).tokens == 10 and Shape(2, 5, 9).sequences() == [(5, 9), (5, 9)]
    assert configs.tensor_bytes(Attrs(8, 2, 64, dtype="f16", varlen=True), s) == (
        43 * 8 * 64 * 2 + 3 * 2 * 50 * 64 * 2) * 2  # q and out: the packed tokens; K/V: the whole cache


def test_packed_kv_attributes_and_sizes():
    a = Attrs(64, 8, 128, causal=True, sinks=True, lse=True, varlen=True, packed_kv=True)
    assert a.compile_kwargs()["packed_kv"] is True and a.kernel_config().packed_kv
    assert "--packed-kv" in a.kernel_config().compiler_args()
    assert a.label() == "hq64/hkv8 d128 bf16 bshd causal sinks lse varlen packedkv"
    assert a.key() != replace(a, packed_kv=False).key() and "-packedkv-" in a.key()
    s = Shape(3, 40, 50, (50, 17, 0), q_lens=(0, 40, 3))  # the kv_lens: each sequence's key segment
    assert s.sequences() == [(0, 50), (40, 17), (3, 0)] and configs.kv_tokens(a, s) == 67
    assert configs.kv_tokens(replace(a, packed_kv=False), s) == 150
    f16 = Attrs(8, 2, 64, head_dim_v=32, dtype="f16", varlen=True, packed_kv=True)
    assert configs.tensor_bytes(f16, s) == (43 * 8 * 64 + 67 * 2 * (64 + 32) + 43 * 8 * 32) * 2  # K/V: 67 keys
    with pytest.raises(ValueError, match="needs varlen"):
        Attrs(8, 2, 64, packed_kv=True).kernel_config()


def _assert_ragged_mix(c: CorrectnessCase) -> None:
    """Every varlen case packs empty sequences, decode rows (one with no key), chunks, chunks longer than
    their keys, split-KV decodes, an empty first sequence, and prefill, decode and empty in one batch."""
    seqs = [seq for s in c.shapes for seq in s.sequences()]
    assert any(q == 0 for q, _ in seqs) and any(q == 1 for q, _ in seqs)  # empty sequences, decode rows
    assert any(1 < q < kv for q, kv in seqs) and any(q > kv for q, kv in seqs)  # chunks; rows with no key
    assert any(q == 1 and kv == 0 for q, kv in seqs)  # a decode row with no key: O = 0, LSE the sink or -inf
    assert any(q == 1 and kv >= 4096 for q, kv in seqs)  # split-KV decodes
    assert any(s.q_lens[0] == 0 for s in c.shapes)  # an empty first sequence
    assert any(len({q for q, _ in s.sequences()}) >= 3 for s in c.shapes)  # prefill, decode, empty in one batch
    assert all(s.seq_q == max(s.q_lens) for s in c.shapes)
    assert any(s.seq_q % 16 and s.seq_kv % 16 for s in c.shapes)  # sizes no tile multiple


def test_varlen_coverage():
    cases = [c for c in configs.CORRECTNESS if c.attrs.varlen and not c.attrs.packed_kv]
    assert all(c.attrs.layout == "bshd" and c.attrs.kv_lens and c.attrs.is_causal and not c.optional for c in cases)
    kinds = {((c.attrs.q_heads, c.attrs.kv_heads, c.attrs.head_dim, c.attrs.dtype), c.attrs.page_size) for c in cases}
    assert kinds == {(l, p) for l in ((64, 8, 128, "bf16"), (8, 2, 64, "f16")) for p in (0, 16)}
    with_lse = [c for c in cases if c.attrs.sinks and c.attrs.lse]
    assert {c.attrs.dtype for c in with_lse} == {"bf16", "f16"} and {c.attrs.page_size for c in with_lse} == {0, 16}
    for c in cases:
        _assert_ragged_mix(c)
    # The paged Llama kernel is the varlen row's, checked at the row's size too.
    rows = {b.name: b for b in configs.BENCHMARK}
    row, paged = rows[VARLEN_ROW], _case("l70b-varlen-paged16-causal")
    assert row.attrs == paged.attrs and row.shape in paged.shapes


def test_packed_kv_coverage():
    cases = [c for c in configs.CORRECTNESS if c.attrs.packed_kv]
    assert sorted(c.name for c in cases) == ["f16-d64-varlen-packedkv-lse-causal", "l70b-varlen-packedkv-causal",
                                             "l70b-varlen-packedkv-sinks-lse-causal"]
    for c in cases:  # packed K/V on the GPU: no kv_lens (seqused_k), no pages
        a = c.attrs
        assert a.varlen and a.layout == "bshd" and a.is_causal and not (a.kv_lens or a.page_size or c.optional)
        _assert_ragged_mix(c)
        assert all(s.kv_lens is not None and max(s.kv_lens) == s.seq_kv for s in c.shapes)  # max_seqlen_k
        seqs = [seq for s in c.shapes for seq in s.sequences()]
        assert any(s.kv_lens[0] == 0 and s.q_lens[0] > 0 for s in c.shapes)  # a first segment with no key
        assert (0, 0) in seqs  # an empty sequence with no key either
    kinds = {(c.attrs.q_heads, c.attrs.kv_heads, c.attrs.head_dim, c.attrs.dtype, c.attrs.sinks, c.attrs.lse)
             for c in cases}
    assert kinds == {(64, 8, 128, "bf16", True, True), (64, 8, 128, "bf16", False, False),
                     (8, 2, 64, "f16", False, True)}  # sinks+LSE, neither, the LSE alone (-inf with no key)
    rows = {b.name: b for b in configs.BENCHMARK}
    row, kernel = rows[PACKED_ROW], _case("l70b-varlen-packedkv-causal")
    assert row.attrs == kernel.attrs and row.shape in kernel.shapes  # the packed row's kernel, at its size too


def test_varlen_row_pairs_with_the_plain_decode_row():
    rows = {b.name: b for b in configs.BENCHMARK}
    assert [b.name for b in configs.BENCHMARK if b.attrs.varlen] == [VARLEN_ROW, PACKED_ROW]
    varlen = rows[VARLEN_ROW]
    assert configs.plain_row_name(varlen.name) == "decode bshd B32 Skv8K"
    plain = rows["decode bshd B32 Skv8K"]
    assert varlen.attrs == replace(plain.attrs, causal=True, kv_lens=True, page_size=16, varlen=True)
    s = varlen.shape
    assert s.q_lens == (512,) + (1,) * 31 and s.kv_lens == (8192,) * 32
    assert (s.batch, s.seq_q, s.seq_kv) == (32, 512, 8192)
    assert varlen.phase == "decode" and varlen.min_bytes == plain.min_bytes  # every sequence's 8K keys read once
    # Per sequence, causal per the formula (2 Skv_eff = (Skv - Sq) + Skv): the chunk, then 31 decode rows.
    assert varlen.flops == 64 * 256 * (512 * (7680 + 8192) + 31 * (8191 + 8192))
    assert varlen.name not in configs.FLEX_ROWS
    assert configs.varlen_mix_cases(configs.decode_cases(memory_cap=0)) == []  # no plain row, no varlen row
    row = harness.bench_row(varlen, 1)
    assert row["shape"]["q_lens"] == list(s.q_lens) and row["shape"]["kv_lens"] == list(s.kv_lens)
    assert "q_lens" not in harness.bench_row(plain, 1)["shape"]


def test_packed_row_pairs_with_the_plain_decode_row():
    rows = {b.name: b for b in configs.BENCHMARK}
    packed, plain, paged = rows[PACKED_ROW], rows["decode bshd B32 Skv8K"], rows[VARLEN_ROW]
    assert configs.plain_row_name(packed.name) == plain.name
    assert packed.attrs == replace(plain.attrs, causal=True, varlen=True, packed_kv=True)
    assert packed.shape == paged.shape and packed.phase == "decode"  # the same step as the paged mix row
    assert (packed.min_bytes, packed.flops) == (plain.min_bytes, paged.flops)
    # K/V: 32 segments of 8K keys, as the plain row's cache (no pages, no spare slots)
    assert packed.io_bytes == configs.tensor_bytes(plain.attrs, plain.shape) + (512 + 31 - 32) * 64 * 128 * 2 * 2
    assert packed.name not in configs.FLEX_ROWS
    assert configs.varlen_mix_cases(configs.decode_cases(memory_cap=0), packed_kv=True) == []


def test_validate_checks_varlen_rows_and_shapes(monkeypatch):
    attrs = replace(configs.l70b(causal=True), kv_lens=True, varlen=True)
    lonely = BenchCase("decode bshd B3 Skv5K varlen mix", "decode", attrs, configs.varlen_mix(3, 5000, 7))
    monkeypatch.setattr(configs, "BENCHMARK", configs.BENCHMARK + (lonely,))
    assert configs.validate() == [f"{lonely.name}: no plain row to compare with (the peers take no ragged batches)"]
    attrs = Attrs(8, 2, 64, kv_lens=True, varlen=True)
    assert configs._shape_problems(attrs, Shape(2, 5, 9, (9, 9))) == ["q_lens given iff the kernel is varlen"]
    assert configs._shape_problems(attrs, Shape(2, 5, 9, (9, 9), q_lens=(4, 1))) == [
        "q_lens must lie in [0, seq_q], the longest equal to seq_q (max_seqlen_q)"]
    assert configs._shape_problems(attrs, Shape(2, 5, 9, (9, 9), q_lens=(5,))) == ["one q_len per sequence"]
    assert configs._shape_problems(Attrs(8, 2, 64), Shape(1, 5, 9, q_lens=(5,))) == [
        "q_lens given iff the kernel is varlen"]
    packed = Attrs(8, 2, 64, varlen=True, packed_kv=True)
    assert configs._shape_problems(packed, Shape(2, 5, 9, (9, 0), q_lens=(5, 1))) == []
    assert configs._shape_problems(packed, Shape(2, 5, 9, q_lens=(5, 1))) == [
        "kv_lens given iff the kernel takes them (or packed K/V's segments)"]
    assert configs._shape_problems(packed, Shape(2, 5, 9, (8, 0), q_lens=(5, 1))) == [
        "packed K/V: seq_kv must be the longest segment (max_seqlen_k)"]
    assert configs._shape_problems(replace(packed, page_size=16), Shape(2, 5, 9, (9, 0), q_lens=(5, 1))) == [
        "packed K/V take neither kv_lens (seqused_k) nor pages"]


def test_reference_check_shapes_of_varlen_kernels():
    with_lens = configs.reference_check_shapes(Attrs(8, 2, 64, kv_lens=True, varlen=True))
    assert with_lens == configs.REFERENCE_CHECK_SIZES_VARLEN
    seqs = [seq for s in with_lens for seq in s.sequences()]
    assert (0, 5) in seqs and (1, 0) in seqs and any(q > kv for q, kv in seqs)
    without = configs.reference_check_shapes(Attrs(8, 2, 64, varlen=True))
    assert [s.kv_lens for s in without] == [None, None] and [s.q_lens for s in without] == [s.q_lens for s in with_lens]
    # Packed K/V: the kv_lens are the segments (one empty: a decode row with no key), the longest seq_kv.
    packed = configs.reference_check_shapes(Attrs(8, 2, 64, varlen=True, packed_kv=True))
    assert packed == with_lens and all(max(s.kv_lens) == s.seq_kv for s in packed)


# --------------------------------------------------------------- the torch reference (CPU torch)

def test_torch_reference_varlen_is_the_padded_reference_per_sequence():
    torch = pytest.importorskip("torch")
    import measure
    attrs = Attrs(8, 2, 32, head_dim_v=16, causal=True, kv_lens=True, softcap=5.0, sinks=True, lse=True, varlen=True)
    shape = Shape(4, 9, 30, (30, 7, 0, 4), q_lens=(9, 0, 1, 6))
    gen = torch.Generator().manual_seed(0)
    q, k, v, lens = measure.make_inputs(attrs, shape, gen, device="cpu")
    sinks, (cu, no_cu_k) = measure.make_sinks(attrs, gen, device="cpu"), varlen.make_cu_seqlens(attrs, shape, "cpu")
    assert no_cu_k is None
    assert q.shape == (16, 8, 32) and k.shape == (4, 30, 2, 32) and v.shape == (4, 30, 2, 16)
    assert cu.tolist() == [0, 9, 9, 10, 16] and cu.dtype == torch.int32
    assert measure.out_like(attrs, shape, device="cpu").shape == (16, 8, 16)
    assert measure.lse_like(attrs, shape, device="cpu").shape == (8, 16)
    out, lse = measure.reference(q, k, v, attrs, lens, sinks=sinks, return_lse=True, cu_seqlens_q=cu)
    assert out.shape == (16, 8, 16) and lse.shape == (8, 16) and out.dtype == lse.dtype == torch.float64
    padded = replace(attrs, varlen=False)
    for b, (start, stop) in enumerate(zip(cu.tolist(), cu.tolist()[1:])):
        if stop > start:
            o, l = measure.reference(q[None, start:stop], k[b:b + 1], v[b:b + 1], padded, lens[b:b + 1], sinks=sinks,
                                     return_lse=True)
            assert torch.equal(out[start:stop], o[0]) and torch.equal(lse[:, start:stop], l[0])
    assert torch.count_nonzero(out[9]) == 0 and torch.equal(lse[:, 9], sinks.double())  # kv_len 0: O = 0, the sink
    np_out, np_lse = measure.numpy_reference(q, k, v, attrs, lens, sinks=sinks, return_lse=True, cu_seqlens_q=cu)
    assert measure.rel_l2(out, np_out)[0] < 1e-12
    assert measure.compare_lse(lse, np_lse) == (pytest.approx(0, abs=1e-12), 0)
    chunked = measure.reference(q, k, v, attrs, lens, sinks=sinks, return_lse=True, cu_seqlens_q=cu, max_chunk_bytes=1)
    assert torch.allclose(chunked[0], out, rtol=1e-12, atol=1e-14) and torch.equal(chunked[1], lse)
    with pytest.raises(ValueError, match="needs cu_seqlens_q"):
        measure.reference(q, k, v, attrs, lens)


def test_torch_reference_packed_kv_reads_each_sequence_segment():
    torch = pytest.importorskip("torch")
    import measure
    attrs = Attrs(8, 2, 32, head_dim_v=16, causal=True, softcap=5.0, sinks=True, lse=True, varlen=True, packed_kv=True)
    shape = Shape(5, 9, 30, (0, 30, 7, 0, 4), q_lens=(1, 9, 0, 0, 6))  # no key first; an empty sequence with none
    gen = torch.Generator().manual_seed(1)
    q, k, v, lens = measure.make_inputs(attrs, shape, gen, device="cpu")
    sinks, (cu, cu_k) = measure.make_sinks(attrs, gen, device="cpu"), varlen.make_cu_seqlens(attrs, shape, "cpu")
    assert lens is None and q.shape == (16, 8, 32) and k.shape == (41, 2, 32) and v.shape == (41, 2, 16)
    assert cu.tolist() == [0, 1, 10, 10, 10, 16] and cu_k.tolist() == [0, 0, 30, 37, 37, 41]
    assert cu_k.dtype == torch.int32 and bool(torch.isfinite(k).all()) and int((k == 0).sum()) == 0
    assert varlen.launch_options(shape, cu, cu_k) == dict(cu_seqlens_q=cu, max_seqlen_q=9, cu_seqlens_k=cu_k,
                                                         max_seqlen_k=30)
    out, lse = measure.reference(q, k, v, attrs, None, sinks=sinks, return_lse=True, cu_seqlens_q=cu, cu_seqlens_k=cu_k)
    assert out.shape == (16, 8, 16) and lse.shape == (8, 16)
    padded = replace(attrs, varlen=False, packed_kv=False)
    rows, keys = cu.tolist(), cu_k.tolist()
    for b in range(shape.batch):
        if rows[b + 1] > rows[b] and keys[b + 1] > keys[b]:
            o, l = measure.reference(q[None, rows[b]:rows[b + 1]], k[None, keys[b]:keys[b + 1]],
                                     v[None, keys[b]:keys[b + 1]], padded, sinks=sinks, return_lse=True)
            assert torch.equal(out[rows[b]:rows[b + 1]], o[0]) and torch.equal(lse[:, rows[b]:rows[b + 1]], l[0])
    assert torch.count_nonzero(out[0]) == 0 and torch.equal(lse[:, 0], sinks.double())  # no key: O = 0, the sink
    np_out, np_lse = measure.numpy_reference(q, k, v, attrs, None, sinks=sinks, return_lse=True, cu_seqlens_q=cu,
                                             cu_seqlens_k=cu_k)
    assert measure.rel_l2(out, np_out)[0] < 1e-12
    assert measure.compare_lse(lse, np_lse) == (pytest.approx(0, abs=1e-12), 0)
    no_sinks = replace(attrs, sinks=False)
    _, lse_alone = measure.reference(q, k, v, no_sinks, None, return_lse=True, cu_seqlens_q=cu, cu_seqlens_k=cu_k)
    assert bool(torch.isneginf(lse_alone[:, [0, 10, 11]]).all())  # no key; 6 causal rows against 4 keys: 2 with none
    assert bool(torch.isfinite(lse_alone[:, 1:10]).all()) and bool(torch.isfinite(lse_alone[:, 12:]).all())
    with pytest.raises(ValueError, match="needs cu_seqlens_k"):
        measure.reference(q, k, v, attrs, None, sinks=sinks, cu_seqlens_q=cu)
    assert configs.tensor_bytes(attrs, shape) == (16 * 8 * 32 + 41 * 2 * (32 + 16) + 16 * 8 * 16) * 2


def test_reference_checks_cross_check_the_varlen_form(monkeypatch):
    pytest.importorskip("torch")
    import measure
    for name in ("l70b-varlen-kvlens-sinks-lse-causal", "f16-d64-varlen-kvlens-causal"):
        records = measure.reference_checks(_case(name), base_seed=4, device="cpu")
        assert len(records) == 2 and all(r["status"] == "pass" for r in records), records
    honest = measure.numpy_reference

    def boundary_one_row_early(q, k, v, attrs, kv_lens, *, cu_seqlens_q, **kwargs):
        moved = cu_seqlens_q.clone()
        moved[1] -= 1  # the first sequence's last row read as the second's first
        return honest(q, k, v, attrs, kv_lens, cu_seqlens_q=moved, **kwargs)

    monkeypatch.setattr(measure, "numpy_reference", boundary_one_row_early)
    assert {r["status"] for r in measure.reference_checks(_case("f16-d64-varlen-kvlens-causal"), 4, "cpu")} == {"fail"}


PACKED_CASES = sorted(c.name for c in configs.CORRECTNESS if c.attrs.packed_kv)


@pytest.mark.parametrize("name", PACKED_CASES)
def test_reference_checks_cross_check_packed_kv(name):
    pytest.importorskip("torch")
    import measure
    records = measure.reference_checks(_case(name), base_seed=4, device="cpu")
    assert len(records) == 2 and all(r["status"] == "pass" for r in records), records


def test_reference_checks_catch_misread_key_segments(monkeypatch):
    """The torch reference and the numpy one must agree on which keys each sequence reads: a segment one key
    late on one side fails the self-check."""
    pytest.importorskip("torch")
    import measure
    honest = measure.numpy_reference

    def segment_one_key_late(q, k, v, attrs, kv_lens, *, cu_seqlens_k, **kwargs):
        moved = cu_seqlens_k.clone()
        moved[1:-1] += 1  # each sequence from the second on starts one key late (and takes the next one's first)
        return honest(q, k, v, attrs, kv_lens, cu_seqlens_k=moved, **kwargs)

    monkeypatch.setattr(measure, "numpy_reference", segment_one_key_late)
    records = measure.reference_checks(_case("l70b-varlen-packedkv-sinks-lse-causal"), 4, "cpu")
    assert [r["status"] for r in records] == ["fail", "fail"], records


# ------------------------------------------- the worker's correctness check and timing, on the CPU

#: Small sizes of the varlen cases: an empty (first) sequence, decode rows (one with no key), a chunk,
#: a chunk longer than its keys; Skv 40 is two and a half 16-token pages (a last page's NaN slots).
SMALL = (Shape(4, 9, 40, (40, 3, 0, 17), q_lens=(0, 1, 1, 9)), Shape(3, 6, 40, (40, 25, 3), q_lens=(1, 6, 5)))
VARLEN_CASES = sorted(c.name for c in configs.CORRECTNESS if c.attrs.varlen)


def _small(name: str) -> CorrectnessCase:
    return configs.with_shapes(_case(name), SMALL)


def _plant(measure, monkeypatch, bug) -> None:
    """Make "ours" run honestly, then ``bug(out, lse, cu)`` (it edits what the kernel wrote)."""
    honest = measure.run_ours

    def buggy(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None, **varlen):
        result = honest(q, k, v, lens, out, attrs, kernel, block_table, sinks, lse, **varlen)
        bug(out, lse, varlen["cu_seqlens_q"])
        return result

    monkeypatch.setattr(measure, "run_ours", buggy)


@pytest.mark.parametrize("name", VARLEN_CASES)
def test_check_case_varlen_on_cpu(cpu_measure, monkeypatch, name):
    seen = []
    honest = cpu_measure.run_ours

    def recording(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None, **varlen):
        cu_k = varlen.get("cu_seqlens_k")
        seen.append((tuple(q.shape), tuple(out.shape), None if lse is None else tuple(lse.shape),
                     varlen["max_seqlen_q"], varlen["cu_seqlens_q"].tolist(), None if lens is None else lens.tolist(),
                     block_table is not None, tuple(k.shape), None if cu_k is None else cu_k.tolist(),
                     varlen.get("max_seqlen_k")))
        return honest(q, k, v, lens, out, attrs, kernel, block_table, sinks, lse, **varlen)

    monkeypatch.setattr(cpu_measure, "run_ours", recording)
    case = _small(name)
    records = cpu_measure.check_case(case, "unused", base_seed=0)
    assert [r["status"] for r in records] == ["pass", "pass"], records
    a = case.attrs
    paged, lse, packed, dv = bool(a.page_size), a.lse, a.packed_kv, a.dv
    # K/V: page pools (16-token pages, 3 spare), the cache [B, 40, Hkv, D], or the packed segments
    k_shape = {(True, False): lambda b, tk: ((b * 3 + 3), 16, a.kv_heads, a.head_dim),
               (False, False): lambda b, tk: (b, 40, a.kv_heads, a.head_dim),
               (False, True): lambda b, tk: (tk, a.kv_heads, a.head_dim)}[(paged, packed)]
    assert seen == [((11, a.q_heads, a.head_dim), (11, a.q_heads, dv), (a.q_heads, 11) if lse else None, 9,
                     [0, 0, 1, 2, 11], None if packed else [40, 3, 0, 17], paged, k_shape(4, 60),
                     [0, 40, 43, 43, 60] if packed else None, 40 if packed else None),
                    ((12, a.q_heads, a.head_dim), (12, a.q_heads, dv), (a.q_heads, 12) if lse else None, 6,
                     [0, 1, 7, 12], None if packed else [40, 25, 3], paged, k_shape(3, 68),
                     [0, 40, 65, 68] if packed else None, 40 if packed else None)]
    for r in records:
        assert r["rel_l2"] < case.tolerance and r["nonfinite"] == 0
        assert (r["lse_max_abs"] < 1e-5 and r["lse_mismatched"] == 0) if lse else r["lse_max_abs"] is None


def _last_sequence_unwritten(out, lse, cu):  # rows past a too-small max_seqlen_q, or a sequence skipped
    out[int(cu[-2]):].fill_(math.nan)


def _sequences_swapped(out, lse, cu):  # offsets misread: the first two non-empty sequences' rows exchanged
    a, b = [i for i in range(len(cu) - 1) if cu[i + 1] > cu[i]][:2]
    first, second = out[int(cu[a]):int(cu[a + 1])].clone(), out[int(cu[b]):int(cu[b + 1])].clone()
    out[int(cu[a]):int(cu[a]) + len(second)], out[int(cu[a]) + len(second):int(cu[b + 1])] = second, first


def _lse_by_sequence_row(out, lse, cu):  # the LSE written [T, Hq]-major into the [Hq, T] buffer
    lse.copy_(lse.t().contiguous().view(lse.shape))


@pytest.mark.parametrize("bug", [_last_sequence_unwritten, _sequences_swapped])
def test_check_case_catches_varlen_output_bugs(cpu_measure, monkeypatch, bug):
    _plant(cpu_measure, monkeypatch, bug)
    records = cpu_measure.check_case(_small("l70b-varlen-paged16-causal"), "unused", base_seed=0)
    assert [r["status"] for r in records] == ["fail", "fail"], records


def test_check_case_catches_a_transposed_varlen_lse(cpu_measure, monkeypatch):
    _plant(cpu_measure, monkeypatch, _lse_by_sequence_row)
    records = cpu_measure.check_case(_small("f16-d64-varlen-paged16-sinks-lse-causal"), "unused", base_seed=0)
    assert [r["status"] for r in records] == ["fail", "fail"] and all(r["rel_l2"] < 2e-3 for r in records), records


def test_check_case_catches_ignored_kv_lens(cpu_measure, monkeypatch):
    import torch
    honest = cpu_measure.run_ours

    def whole_cache(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None, **varlen):
        return honest(q, k, v, torch.full_like(lens, 40), out, attrs, kernel, block_table, sinks, lse, **varlen)

    monkeypatch.setattr(cpu_measure, "run_ours", whole_cache)
    records = cpu_measure.check_case(_small("f16-d64-varlen-kvlens-causal"), "unused", base_seed=0)
    assert {r["status"] for r in records} == {"fail"}, records


def _keys_from_query_offsets(honest):  # cu_seqlens_q read for cu_seqlens_k
    return lambda *args, **varlen: honest(*args, **{**varlen, "cu_seqlens_k": varlen["cu_seqlens_q"]})


def _segments_one_key_late(honest):  # each sequence after the first starts one key late
    def buggy(*args, **varlen):
        moved = varlen["cu_seqlens_k"].clone()
        moved[1:-1] += 1
        return honest(*args, **{**varlen, "cu_seqlens_k": moved})
    return buggy


@pytest.mark.parametrize("bug", [_keys_from_query_offsets, _segments_one_key_late])
@pytest.mark.parametrize("name", PACKED_CASES)
def test_check_case_catches_misread_key_segments(cpu_measure, monkeypatch, bug, name):
    monkeypatch.setattr(cpu_measure, "run_ours", bug(cpu_measure.run_ours))
    records = cpu_measure.check_case(_small(name), "unused", base_seed=0)
    assert [r["status"] for r in records] == ["fail", "fail"], records


def test_bench_case_varlen_on_cpu(cpu_measure, monkeypatch):
    """A small varlen row: ours gets the kv_lens, the table, the offsets and max_seqlen_q on every set; the
    peers refuse it by name (before any bhsd view of the packed q)."""
    measure = cpu_measure
    attrs = replace(configs.l70b(causal=True), kv_lens=True, page_size=16, varlen=True)
    case = BenchCase("decode bshd B4 Skv100 varlen mix", "decode", attrs, configs.varlen_mix(4, 100, 9))
    seen = []
    honest = measure.run_ours

    def recording(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None, **varlen):
        seen.append((tuple(q.shape), tuple(lens.tolist()), tuple(block_table.shape),
                     tuple(varlen["cu_seqlens_q"].tolist()), varlen["max_seqlen_q"]))
        return honest(q, k, v, lens, out, attrs, kernel, block_table, sinks, lse, **varlen)

    monkeypatch.setattr(measure, "run_ours", recording)
    row = measure.bench_case(case, "unused", measure.Timer(), None, 0, ("ours", "sdpa-flash", "flex"), None, total_ms=5)
    ours = row["impls"]["ours"]
    assert ours["ms"] > 0 and "nonfinite" not in ours and len(seen) >= ours["calls"]
    assert set(seen) == {((12, 64, 128), (100,) * 4, (4, 7), (0, 9, 10, 11, 12), 9)}
    for peer in ("sdpa-flash", "flex"):
        assert "no ragged batches" in row["impls"][peer]["skipped"]
    assert row["shape"]["q_lens"] == [9, 1, 1, 1]


def test_bench_case_packed_kv_on_cpu(cpu_measure, monkeypatch):
    """A small packed varlen row: ours gets packed K/V with their offsets and max_seqlen_k on every set, no
    kv_lens and no table; the peers refuse it by name."""
    measure = cpu_measure
    attrs = replace(configs.l70b(causal=True), varlen=True, packed_kv=True)
    case = BenchCase("decode bshd B4 Skv100 varlen mix packedkv", "decode", attrs, configs.varlen_mix(4, 100, 9))
    seen = []
    honest = measure.run_ours

    def recording(q, k, v, lens, out, attrs, kernel, block_table=None, sinks=None, lse=None, **varlen):
        seen.append((tuple(q.shape), tuple(k.shape), tuple(v.shape), lens, block_table,
                     tuple(varlen["cu_seqlens_q"].tolist()), varlen["max_seqlen_q"],
                     tuple(varlen["cu_seqlens_k"].tolist()), varlen["max_seqlen_k"]))
        return honest(q, k, v, lens, out, attrs, kernel, block_table, sinks, lse, **varlen)

    monkeypatch.setattr(measure, "run_ours", recording)
    row = measure.bench_case(case, "unused", measure.Timer(), None, 0, ("ours", "sdpa-flash"), None, total_ms=5)
    ours = row["impls"]["ours"]
    assert ours["ms"] > 0 and "nonfinite" not in ours and len(seen) >= ours["calls"]
    assert set(seen) == {((12, 64, 128), (400, 8, 128), (400, 8, 128), None, None, (0, 9, 10, 11, 12), 9,
                          (0, 100, 200, 300, 400), 100)}
    assert "no ragged batches" in row["impls"]["sdpa-flash"]["skipped"]
    assert row["io_bytes"] == (12 * 64 * 128 * 2 + 400 * 8 * 128 * 2) * 2
