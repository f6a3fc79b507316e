"""Ragged batches (varlen): the float64 reference, the CPU path in process, flash_attn_varlen_func."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gqa
from gqa import reference
from conftest import REAL_COMPILER_LIB


def _offsets(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)


def _packed(rng, lengths, heads, dim):
    return rng.standard_normal((int(sum(lengths)), heads, dim))


def test_reference_varlen_by_hand():
    """Each sequence is its own bottom-right aligned causal attention: checked row by row."""
    rng = np.random.default_rng(0)
    ql, kl = [2, 0, 3], [4, 1, 2]
    q, k, v = _packed(rng, ql, 4, 8), _packed(rng, kl, 2, 8), _packed(rng, kl, 2, 8)
    cq, ck = _offsets(ql), _offsets(kl)
    out, lse = reference.attention_varlen(q, k, v, cq, cu_seqlens_k=ck, causal=True, return_lse=True)
    assert out.shape == (5, 4, 8) and lse.shape == (4, 5)
    for b in range(3):
        for i in range(ql[b]):
            t, last = cq[b] + i, i + kl[b] - ql[b]  # the last key row i sees
            for h in range(4):
                keys = range(ck[b], ck[b] + max(0, min(kl[b], last + 1)))
                scores = [float(q[t, h] @ k[j, h // 2]) / math.sqrt(8) for j in keys]
                if not scores:
                    assert np.all(out[t, h] == 0) and lse[h, t] == -np.inf
                    continue
                m = max(scores)
                w = [math.exp(s - m) for s in scores]
                want = sum(wi * v[j, h // 2] for wi, j in zip(w, keys)) / sum(w)
                np.testing.assert_allclose(out[t, h], want, rtol=1e-12)
                assert lse[h, t] == pytest.approx(m + math.log(sum(w)))


def test_reference_varlen_cache_equals_packed():
    rng = np.random.default_rng(1)
    ql, kl = [3, 1], [5, 9]
    q, cache = _packed(rng, ql, 4, 8), rng.standard_normal((2, 9, 2, 8))
    packed = np.concatenate([cache[0, :5], cache[1, :9]])
    a = reference.attention_varlen(q, cache, cache, _offsets(ql), kv_lens=kl, causal=True)
    b = reference.attention_varlen(q, packed, packed, _offsets(ql), cu_seqlens_k=_offsets(kl), causal=True)
    np.testing.assert_allclose(a, b, rtol=1e-12)


needs_compiler = pytest.mark.skipif(REAL_COMPILER_LIB is None, reason="libgqa_compiler.so is not built")

CASES = [
    dict(ql=[5, 1, 0, 17], kl=[40, 7, 3, 20], packed=True, causal=True),
    dict(ql=[1, 1, 1, 9], kl=[300, 0, 77, 9], packed=True, window=(30, 0), softcap=5.0, sinks=True),
    dict(ql=[3, 1, 9], kl=[100, 50, 9], packed=False, causal=True),
    dict(ql=[3, 1, 9], kl=[100, 50, 9], packed=False, paged=16, window=(8, 0), sinks=True),
    dict(ql=[1, 1, 40], kl=[1000, 3, 40], packed=True, causal=True, schedule="sm_80"),
]


@needs_compiler
@pytest.mark.usefixtures("real_env")
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_host_varlen_matches_reference(case):
    rng = np.random.default_rng(2)
    ql, kl = case["ql"], case["kl"]
    hq, hkv, d = 8, 2, 64
    q = _packed(rng, ql, hq, d).astype(np.float32)
    kw = dict(causal=case.get("causal", False), window=case.get("window"), softcap=case.get("softcap"))
    if case.get("sinks"):
        kw["sinks"] = (rng.standard_normal(hq) * 2).astype(np.float32)
    if case["packed"]:
        k, v = (_packed(rng, kl, hkv, d).astype(np.float32) for _ in range(2))
        ref_kw = dict(cu_seqlens_k=_offsets(kl))
        call_kw = dict(cu_seqlens_k=_offsets(kl))
    else:
        skv = max(kl)
        k, v = (rng.standard_normal((len(ql), skv, hkv, d)).astype(np.float32) for _ in range(2))
        ref_kw = call_kw = dict(kv_lens=np.array(kl, dtype=np.int32))
        if case.get("paged"):
            page = case["paged"]
            pages = -(-skv // page)
            order = rng.permutation(len(ql) * pages + 2).astype(np.int32)
            table = order[:len(ql) * pages].reshape(len(ql), pages)
            pool_k = np.full((len(order), page, hkv, d), np.nan, np.float32)
            pool_v = pool_k.copy()
            for b in range(len(ql)):
                for j in range(skv):
                    pool_k[table[b, j // page], j % page] = k[b, j]
                    pool_v[table[b, j // page], j % page] = v[b, j]
            k, v = pool_k, pool_v
            ref_kw = call_kw = dict(kv_lens=np.array(kl, dtype=np.int32), block_table=table)
    want, want_lse = reference.attention_varlen(q, k, v, _offsets(ql), return_lse=True, **ref_kw, **kw)
    got, lse = gqa.host.attention_host(q, k, v, layout="bshd", cu_seqlens_q=_offsets(ql), return_lse=True,
                                       schedule=case.get("schedule", "cpu"), **call_kw, **kw)
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_array_equal(np.isfinite(lse), np.isfinite(want_lse))
    finite = np.isfinite(want_lse)
    np.testing.assert_allclose(lse[finite], want_lse[finite], atol=1e-4)


@needs_compiler
@pytest.mark.usefixtures("real_env")
def test_host_varlen_errors():
    q = np.zeros((4, 4, 8), np.float32)
    k = np.zeros((6, 2, 8), np.float32)
    with pytest.raises(ValueError, match=r"cu_seqlens_q\[-1\] = 3 must be the 4 tokens of q"):
        gqa.attention(q, k, k, layout="bshd", cu_seqlens_q=[0, 1, 3], cu_seqlens_k=[0, 3, 6])
    with pytest.raises(ValueError, match="cu_seqlens_q must start at 0 and not decrease"):
        gqa.attention(q, k, k, layout="bshd", cu_seqlens_q=[0, 3, 2, 4], cu_seqlens_k=[0, 3, 3, 6])
    with pytest.raises(ValueError, match="layout must be bshd"):
        gqa.attention(q, k, k, cu_seqlens_q=[0, 4], cu_seqlens_k=[0, 6])
    with pytest.raises(ValueError, match="cu_seqlens_k needs cu_seqlens_q"):
        gqa.attention(q[None], k[None], k[None], layout="bshd", cu_seqlens_k=[0, 6])


@needs_compiler
@pytest.mark.usefixtures("real_env")
def test_flash_attn_varlen_func():
    torch = pytest.importorskip("torch")
    from gqa.flash_attn import flash_attn_varlen_func

    torch.manual_seed(3)
    ql, kl = [5, 1, 0, 12], [9, 30, 2, 12]  # chunked prefill, decode, an empty sequence
    cq, ck = torch.tensor(_offsets(ql)), torch.tensor(_offsets(kl))
    q, k, v = torch.randn(sum(ql), 8, 32), torch.randn(sum(kl), 2, 32), torch.randn(sum(kl), 2, 32)
    out, lse, probs = flash_attn_varlen_func(q, k, v, cq, ck, max(ql), max(kl), causal=True,
                                             return_attn_probs=True)
    want, want_lse = reference.attention_varlen(q.numpy(), k.numpy(), v.numpy(), cq.numpy(), cu_seqlens_k=ck.numpy(),
                                                causal=True, return_lse=True)
    assert probs is None and out.shape == (18, 8, 32) and lse.shape == (8, 18)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    finite = np.isfinite(want_lse)
    np.testing.assert_allclose(lse.numpy()[finite], want_lse[finite], atol=1e-5)

    # vLLM's call: a paged cache, seqused_k, no cu_seqlens_k.
    pools = torch.randn(2, 12, 4, 2, 32)
    table = torch.tensor([[3, 0, 7], [1, 5, 9], [2, 4, 6], [8, 10, 11]], dtype=torch.int32)
    used = torch.tensor([9, 12, 2, 12], dtype=torch.int32)  # at most the table's 3 pages of 4
    out = flash_attn_varlen_func(q, pools[0], pools[1], cq, None, max(ql), 12, causal=True, block_table=table,
                                 seqused_k=used)
    want = reference.attention_varlen(q.numpy(), pools[0].numpy(), pools[1].numpy(), cq.numpy(), kv_lens=used.numpy(),
                                      block_table=table.numpy(), causal=True)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)

    # A contiguous KV cache (batch, seqlen_k, nheads_k, headdim) read through seqused_k.
    caches, cached = torch.randn(2, 4, 30, 2, 32), torch.tensor([9, 30, 2, 12], dtype=torch.int32)
    out = flash_attn_varlen_func(q, caches[0], caches[1], cq, None, max(ql), 30, causal=True, seqused_k=cached)
    want = reference.attention_varlen(q.numpy(), caches[0].numpy(), caches[1].numpy(), cq.numpy(),
                                      kv_lens=cached.numpy(), causal=True)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)

    # torch.compile traces it whole.
    compiled = torch.compile(lambda q, k, v: flash_attn_varlen_func(q, k, v, cq, ck, 12, 30, causal=True),
                             fullgraph=True)
    np.testing.assert_allclose(compiled(q, k, v).numpy(), reference.attention_varlen(
        q.numpy(), k.numpy(), v.numpy(), cq.numpy(), cu_seqlens_k=ck.numpy(), causal=True), atol=1e-5)
