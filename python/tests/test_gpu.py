"""gqa.attention on a CUDA GPU against the float64 reference (attention sinks, the LSE, ragged batches too).

Needs PyTorch with CUDA, libgqa_runtime.so, and either gqa-compile or the
kernels in the cache ($GQA_KERNEL_CACHE, e.g. carried from a machine with the
compiler).  Skipped otherwise, with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest

import gqa
from conftest import REAL_RUNTIME_LIB
from gpu_cases import CASES, GRAPH_CASE, PAGED_CASES, VARLEN_CASES, options

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(REAL_RUNTIME_LIB is None, reason="libgqa_runtime.so not found (set GQA_RUNTIME_LIB)"),
]

TORCH_DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
TOLERANCE = {"f32": 2e-3, "f16": 4e-3, "bf16": 3e-2}  # f32 inputs may run as tf32 inside
#: Largest absolute error of a row's LSE (float32 from ex2/lg2.approx), whatever the dtype.
LSE_TOLERANCE = 1e-3


def _make(case, device="cuda"):
    g = torch.Generator(device="cpu").manual_seed(0)
    Dv = case.get("Dv", case["D"])

    def t(h, s, d):
        shape = (case["B"], h, s, d) if case["layout"] == "bhsd" else (case["B"], s, h, d)
        return torch.randn(shape, generator=g).to(device=device, dtype=TORCH_DTYPES[case["dtype"]])

    return t(case["Hq"], case["Sq"], case["D"]), t(case["Hkv"], case["Skv"], case["D"]), t(case["Hkv"], case["Skv"], Dv)


def _np(x):
    return x.float().cpu().numpy()


def _sink_options(case):
    """(gqa.attention's, gqa.reference.attention's) sinks/return_lse keywords for the case: random
    float32 sinks N(1, 2²) (some outweigh the keys) with ``sinks``, ``return_lse`` with ``lse``."""
    ours, ref = {}, {}
    if case.get("sinks"):
        sinks = torch.randn(case["Hq"], generator=torch.Generator(device="cpu").manual_seed(2)) * 2 + 1
        ours["sinks"], ref["sinks"] = sinks.cuda(), sinks.numpy()
    if case.get("lse"):
        ours["return_lse"] = ref["return_lse"] = True
    return ours, ref


def _check(case, result, expected):
    """The output (and, with ``lse``, each row's LSE: finite where the reference's is, -inf where it
    is, within LSE_TOLERANCE) against gqa.reference.attention's."""
    (out, lse), (ref, ref_lse) = (result, expected) if case.get("lse") else ((result, None), (expected, None))
    err = float(np.max(np.abs(_np(out) - ref)))
    assert err <= TOLERANCE[case["dtype"]], f"max |out - reference| = {err}"
    if lse is not None:
        got = lse.cpu().numpy().astype(np.float64)
        assert lse.dtype == torch.float32 and got.shape == ref_lse.shape
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref_lse), "LSE rows NaN or wrongly +-inf")
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref_lse))
        finite = np.isfinite(ref_lse)
        lse_err = float(np.max(np.abs(got[finite] - ref_lse[finite]), initial=0.0))
        assert lse_err <= LSE_TOLERANCE, f"max |lse - reference| = {lse_err}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_matches_reference(case, real_env):
    q, k, v = _make(case)
    opts = options(case)
    sink_opts, ref_sink_opts = _sink_options(case)
    lens = case.get("kv_lens")
    lens_t = None if lens is None else torch.tensor(lens, dtype=torch.int32, device="cuda")
    result = gqa.attention(q, k, v, kv_lens=lens_t, **sink_opts, **opts)
    torch.cuda.synchronize()
    _check(case, result, gqa.reference.attention(_np(q), _np(k), _np(v), kv_lens=lens, **ref_sink_opts, **opts))


def test_runs_on_the_current_stream(real_env):
    case = CASES[1]
    q, k, v = _make(case)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = gqa.attention(q, k, v, **options(case))
        out2 = out.clone()  # ordered after the kernel on the same stream
    side.synchronize()
    ref = gqa.reference.attention(_np(q), _np(k), _np(v), **options(case))
    assert float(np.max(np.abs(_np(out2) - ref))) <= TOLERANCE[case["dtype"]]


def test_out_argument_and_non_contiguous_input(real_env):
    case = CASES[0]
    q, k, v = _make(case)
    out = torch.empty_like(q)
    assert gqa.attention(q, k, v, out=out) is out
    with pytest.raises(ValueError, match="q must be contiguous"):
        gqa.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layout="bshd")


@pytest.mark.parametrize("case", PAGED_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_paged_matches_reference(case, real_env):
    """Shuffled block table (int64: gqa converts it), spare pages and unused tails filled with NaN."""
    g = torch.Generator(device="cpu").manual_seed(1)
    B, P, max_pages, D = case["B"], case["page_size"], case["max_pages"], case["D"]
    dtype = TORCH_DTYPES[case["dtype"]]
    num_pages = B * max_pages + 3
    lens = case.get("kv_lens", [max_pages * P] * B)
    table = torch.randperm(num_pages, generator=g)[: B * max_pages].reshape(B, max_pages)
    q_shape = (B, case["Hq"], case["Sq"], D) if case["layout"] == "bhsd" else (B, case["Sq"], case["Hq"], D)
    q = torch.randn(q_shape, generator=g)
    k_pool = torch.full((num_pages, P, case["Hkv"], D), float("nan"))
    v_pool = torch.full((num_pages, P, case["Hkv"], D), float("nan"))
    for b in range(B):
        for j in range(lens[b]):
            k_pool[table[b, j // P], j % P] = torch.randn(case["Hkv"], D, generator=g)
            v_pool[table[b, j // P], j % P] = torch.randn(case["Hkv"], D, generator=g)
    q, k_pool, v_pool = (x.to(device="cuda", dtype=dtype) for x in (q, k_pool, v_pool))
    opts = options(case)
    sink_opts, ref_sink_opts = _sink_options(case)
    lens_t = torch.tensor(lens, dtype=torch.int32, device="cuda") if "kv_lens" in case else None
    result = gqa.attention(q, k_pool, v_pool, block_table=table.cuda(), kv_lens=lens_t, **sink_opts, **opts)
    torch.cuda.synchronize()
    out = result[0] if case.get("lse") else result
    assert torch.isfinite(out).all(), "a NaN slot (spare page or unused tail) was read"
    _check(case, result, gqa.reference.attention(_np(q), _np(k_pool), _np(v_pool), block_table=table.numpy(),
                                                 kv_lens=case.get("kv_lens"), **ref_sink_opts, **opts))


def _varlen_inputs(case):
    """On the GPU: packed q [T, Hq, D], the KV cache [B, Skv, Hkv, D] (with ``page_size``: page pools in a
    shuffled int32 table, spare pages and a last page's unused slots NaN), the offsets, the kv_lens, the
    table (or None)."""
    g = torch.Generator(device="cpu").manual_seed(3)
    B, Skv, Hkv, D = len(case["q_lens"]), case["Skv"], case["Hkv"], case["D"]
    q = torch.randn(sum(case["q_lens"]), case["Hq"], D, generator=g)
    k, v = (torch.randn(B, Skv, Hkv, D, generator=g) for _ in range(2))
    cu = torch.tensor(np.concatenate([[0], np.cumsum(case["q_lens"])]), dtype=torch.int32)
    table = None
    if "page_size" in case:
        P = case["page_size"]
        pages = -(-Skv // P)
        num_pages = B * pages + 3
        table = torch.randperm(num_pages, generator=g)[: B * pages].reshape(B, pages).to(torch.int32)
        slots = (table.long()[:, :, None] * P + torch.arange(P)).reshape(B, -1)[:, :Skv].reshape(-1)
        pools = [torch.full((num_pages * P, Hkv, D), float("nan")) for _ in range(2)]
        for pool, cache in zip(pools, (k, v)):
            pool[slots] = cache.reshape(B * Skv, Hkv, D)
        k, v = (pool.reshape(num_pages, P, Hkv, D) for pool in pools)
    dtype = TORCH_DTYPES[case["dtype"]]
    lens = torch.tensor(case["kv_lens"], dtype=torch.int32)
    return (*(x.to(device="cuda", dtype=dtype) for x in (q, k, v)), cu.cuda(), lens.cuda(),
            None if table is None else table.cuda())


def _varlen_reference(case, q, k, v, cu, table, ref_sink_opts):
    opts = {name: x for name, x in options(case).items() if name != "layout"}  # packed bshd tokens
    return gqa.reference.attention_varlen(_np(q), _np(k), _np(v), cu.cpu().numpy(), kv_lens=case["kv_lens"],
                                          block_table=None if table is None else table.cpu().numpy(),
                                          **ref_sink_opts, **opts)


@pytest.mark.parametrize("case", VARLEN_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_varlen_matches_reference(case, real_env):
    """A ragged batch: out [T, Hq, D] (every row written: poisoned with NaN first), the LSE [Hq, T]."""
    q, k, v, cu, lens, table = _varlen_inputs(case)
    sink_opts, ref_sink_opts = _sink_options(case)
    out = torch.full((q.shape[0], case["Hq"], case["D"]), float("nan"), dtype=q.dtype, device="cuda")
    result = gqa.attention(q, k, v, kv_lens=lens, block_table=table, cu_seqlens_q=cu, out=out,
                           max_seqlen_q=max(case["q_lens"]), **sink_opts, **options(case))
    torch.cuda.synchronize()
    assert (result[0] if case.get("lse") else result) is out and torch.isfinite(out).all()
    _check(case, result, _varlen_reference(case, q, k, v, cu, table, ref_sink_opts))


def test_flash_attn_varlen_func_on_the_gpu(real_env):
    """vLLM's call (paged cache, seqused_k, max_seqlen_q) through torch.ops.gqa.attention on CUDA tensors, eager
    and under torch.compile(fullgraph=True): the kernel of the paged varlen case."""
    from gqa.flash_attn import flash_attn_varlen_func

    case = VARLEN_CASES[1]
    q, k, v, cu, lens, table = _varlen_inputs(case)
    sink_opts, ref_sink_opts = _sink_options(case)

    def call(q, k, v):
        out, lse, _ = flash_attn_varlen_func(q, k, v, cu, None, max(case["q_lens"]), case["Skv"], causal=True,
                                             block_table=table, seqused_k=lens, return_attn_probs=True,
                                             sinks=sink_opts["sinks"])
        return out, lse

    expected = _varlen_reference(case, q, k, v, cu, table, ref_sink_opts)
    for fn in (call, torch.compile(call, fullgraph=True)):
        result = fn(q, k, v)
        torch.cuda.synchronize()
        _check(case, result, expected)


def test_split_kv_decode_captures_in_a_cuda_graph(real_env):
    """Decode through split-KV inside a CUDA graph: the workspace comes from PyTorch's allocator (the
    graph's pool), so capture needs no cuMemAlloc; replays see new inputs written in place."""
    case = GRAPH_CASE
    q, k, v = _make(case)
    out = torch.empty_like(q)
    gqa.attention(q, k, v, out=out, layout="bshd")  # load the kernel outside the capture
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        gqa.attention(q, k, v, out=out, layout="bshd")
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        gqa.attention(q, k, v, out=out, layout="bshd")
    for _ in range(2):
        q.copy_(torch.randn_like(q, dtype=torch.float32).to(q.dtype))
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        ref = gqa.reference.attention(_np(q), _np(k), _np(v), layout="bshd")
        assert float(np.max(np.abs(_np(out) - ref))) <= TOLERANCE["bf16"]
