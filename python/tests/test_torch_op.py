"""torch.ops.gqa.attention and the flash_attn-named functions on CPU tensors (skipped without torch)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import gqa
from gqa import reference
from conftest import REAL_COMPILER_LIB

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.skipif(REAL_COMPILER_LIB is None, reason="libgqa_compiler.so is not built"),
              pytest.mark.usefixtures("real_env")]

import gqa.torch_ops  # noqa: E402,F401 - registers the ops
from gqa.flash_attn import flash_attn_func, flash_attn_with_kvcache  # noqa: E402


def _ref(q, k, v, **kw):
    args = [x.float().numpy() for x in (q, k, v)]
    if kw.get("sinks") is not None:
        kw["sinks"] = kw["sinks"].numpy()
    if kw.get("kv_lens") is not None:
        kw["kv_lens"] = kw["kv_lens"].numpy()
    if kw.get("block_table") is not None:
        kw["block_table"] = kw["block_table"].numpy()
    return reference.attention(*args, **kw)


def test_op_matches_reference_with_sinks_and_lse():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 8, 7, 32), torch.randn(2, 2, 40, 32), torch.randn(2, 2, 40, 24)
    sinks, lens = torch.randn(8), torch.tensor([40, 5], dtype=torch.int32)
    out, lse = torch.ops.gqa.attention(q, k, v, kv_lens=lens, sinks=sinks, causal=True, return_lse=True)
    want, want_lse = _ref(q, k, v, kv_lens=lens, sinks=sinks, causal=True, return_lse=True)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    np.testing.assert_allclose(lse.numpy(), want_lse, atol=1e-5)
    out, lse = torch.ops.gqa.attention(q, k, v)
    assert lse.numel() == 0
    np.testing.assert_allclose(out.numpy(), _ref(q, k, v), atol=1e-5)


def test_out_variant_writes_in_place():
    torch.manual_seed(1)
    q, k = torch.randn(1, 5, 4, 16), torch.randn(1, 3, 2, 16)  # bshd
    out, lse = torch.full((1, 5, 4, 16), float("nan")), torch.empty(1, 4, 5)
    torch.ops.gqa.attention_out(q, k, k, out, lse, layout="bshd", window_left=1, window_right=0)
    want, want_lse = _ref(q, k, k, layout="bshd", window=(1, 0), return_lse=True)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    np.testing.assert_allclose(lse.numpy(), want_lse, atol=1e-5)


class LlamaAttention(torch.nn.Module):
    """A small Llama-style attention block: q/k/v projections, GQA, causal, output projection."""

    def __init__(self, hidden=64, heads=8, kv_heads=2, use_gqa=True):
        super().__init__()
        self.heads, self.kv_heads, self.dim = heads, kv_heads, hidden // heads
        self.q = torch.nn.Linear(hidden, heads * self.dim, bias=False)
        self.kv = torch.nn.Linear(hidden, 2 * kv_heads * self.dim, bias=False)
        self.o = torch.nn.Linear(heads * self.dim, hidden, bias=False)
        self.use_gqa = use_gqa

    def forward(self, x):
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.heads, self.dim)
        k, v = self.kv(x).view(b, s, 2, self.kv_heads, self.dim).unbind(2)
        if self.use_gqa:
            o = gqa.flash_attn_func(q, k, v, causal=True)
        else:  # eager PyTorch: repeat the KV heads, SDPA in (b, h, s, d)
            g = self.heads // self.kv_heads
            o = torch.nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.repeat_interleave(g, 2).transpose(1, 2),
                v.repeat_interleave(g, 2).transpose(1, 2), is_causal=True).transpose(1, 2)
        return self.o(o.reshape(b, s, -1))


def test_torch_compile_fullgraph_matches_eager_sdpa():
    torch.manual_seed(2)
    model = LlamaAttention()
    eager = LlamaAttention(use_gqa=False)
    eager.load_state_dict(model.state_dict())
    x = torch.randn(2, 37, 64)
    compiled = torch.compile(model, fullgraph=True)  # a graph break would raise
    with torch.no_grad():
        got, want = compiled(x), eager(x)
        again = compiled(torch.randn(2, 37, 64))
    assert again.shape == (2, 37, 64)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0


def test_torch_compile_traces_a_ragged_batch_with_max_seqlen_q():
    """The ops with cu_seqlens_q and max_seqlen_q (ignored on the CPU) trace whole, max_seqlen_q a dynamic int too."""
    torch.manual_seed(6)
    lengths, keys = [5, 1, 0, 12], [9, 30, 2, 12]  # chunked prefill, decode, an empty sequence
    cu = torch.tensor([0, 5, 6, 6, 18], dtype=torch.int32)
    q, k, v = torch.randn(18, 8, 32), torch.randn(4, 30, 2, 32), torch.randn(4, 30, 2, 16)  # a KV cache
    lens = torch.tensor(keys, dtype=torch.int32)

    def step(q, k, v, out, max_seqlen_q):
        o, lse = torch.ops.gqa.attention(q, k, v, kv_lens=lens, causal=True, layout="bshd", return_lse=True,
                                         cu_seqlens_q=cu, max_seqlen_q=max_seqlen_q)
        torch.ops.gqa.attention_out(q, k, v, out, kv_lens=lens, window_left=4, window_right=0, layout="bshd",
                                    cu_seqlens_q=cu, max_seqlen_q=max_seqlen_q)
        return o, lse

    want, want_lse = reference.attention_varlen(q.numpy(), k.numpy(), v.numpy(), cu.numpy(), kv_lens=keys,
                                                causal=True, return_lse=True)
    windowed = reference.attention_varlen(q.numpy(), k.numpy(), v.numpy(), cu.numpy(), kv_lens=keys, window=(4, 0))
    finite = np.isfinite(want_lse)
    for dynamic in (False, True):
        compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)  # a graph break would raise
        for max_seqlen_q in (12, 13):
            out = torch.full((18, 8, 16), float("nan"))
            o, lse = compiled(q, k, v, out, max_seqlen_q)
            assert o.shape == (18, 8, 16) and lse.shape == (8, 18)
            np.testing.assert_allclose(o.numpy(), want, atol=1e-5)
            np.testing.assert_allclose(lse.numpy()[finite], want_lse[finite], atol=1e-5)
            np.testing.assert_allclose(out.numpy(), windowed, atol=1e-5)
    assert torch._dynamo.explain(step)(q, k, v, torch.empty(18, 8, 16), 12).graph_break_count == 0


def test_flash_attn_func_signature_and_defaults():
    params = inspect.signature(flash_attn_func).parameters
    assert list(params)[:11] == ["q", "k", "v", "dropout_p", "softmax_scale", "causal", "window_size", "softcap",
                                 "alibi_slopes", "deterministic", "return_attn_probs"]
    assert params["window_size"].default == (-1, -1) and params["softcap"].default == 0.0
    assert params["causal"].default is False and params["softmax_scale"].default is None


def test_flash_attn_func_conventions():
    torch.manual_seed(3)
    # (batch, seqlen, nheads, headdim); seqlen_q < seqlen_k: causal aligns bottom-right.
    q, k, v = torch.randn(2, 5, 8, 32), torch.randn(2, 12, 2, 32), torch.randn(2, 12, 2, 32)
    out = flash_attn_func(q, k, v, causal=True)
    np.testing.assert_allclose(out.numpy(), _ref(q, k, v, layout="bshd", causal=True), atol=1e-5)
    out = flash_attn_func(q, k, v, softmax_scale=0.3, window_size=(3, 2), softcap=4.0)
    np.testing.assert_allclose(out.numpy(), _ref(q, k, v, layout="bshd", scale=0.3, window=(3, 2), softcap=4.0),
                               atol=1e-5)
    # causal with a window: flash_attn clamps the right side to 0.
    out = flash_attn_func(q, k, v, causal=True, window_size=(3, 5))
    np.testing.assert_allclose(out.numpy(), _ref(q, k, v, layout="bshd", window=(3, 0)), atol=1e-5)
    out, lse, probs = flash_attn_func(q, k, v, return_attn_probs=True)
    assert probs is None and lse.shape == (2, 8, 5) and lse.dtype == torch.float32
    np.testing.assert_allclose(lse.numpy(), _ref(q, k, v, layout="bshd", return_lse=True)[1], atol=1e-5)
    half = flash_attn_func(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal=True)
    assert half.dtype == torch.bfloat16
    np.testing.assert_allclose(half.float().numpy(), _ref(q.bfloat16(), k.bfloat16(), v.bfloat16(), layout="bshd",
                                                          causal=True), atol=3e-2)
    with pytest.raises(NotImplementedError, match="dropout"):
        flash_attn_func(q, k, v, dropout_p=0.1)
    with pytest.raises(NotImplementedError, match="alibi_slopes"):
        flash_attn_func(q, k, v, alibi_slopes=torch.zeros(8))


def test_flash_attn_with_kvcache_appends_and_attends():
    torch.manual_seed(4)
    b, cache_len, hkv, hq, d = 2, 32, 2, 8, 16
    k_cache, v_cache = torch.randn(b, cache_len, hkv, d), torch.randn(b, cache_len, hkv, d)
    q, k_new, v_new = torch.randn(b, 3, hq, d), torch.randn(b, 3, hkv, d), torch.randn(b, 3, hkv, d)
    seqlens = torch.tensor([10, 0], dtype=torch.int32)
    want_k, want_v = k_cache.clone(), v_cache.clone()
    for i, n in enumerate(seqlens.tolist()):
        want_k[i, n:n + 3], want_v[i, n:n + 3] = k_new[i], v_new[i]
    out, lse = flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=seqlens, causal=True,
                                       return_softmax_lse=True)
    torch.testing.assert_close(k_cache, want_k)
    torch.testing.assert_close(v_cache, want_v)
    want, want_lse = _ref(q, want_k, want_v, layout="bshd", causal=True, kv_lens=seqlens + 3, return_lse=True)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    np.testing.assert_allclose(lse.numpy(), want_lse, atol=1e-5)
    # An int cache_seqlens, no new tokens.
    out = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=7)
    np.testing.assert_allclose(out.numpy(), _ref(q, k_cache, v_cache, layout="bshd",
                                                 kv_lens=torch.tensor([7, 7])), atol=1e-5)


def test_flash_attn_with_kvcache_paged_and_sinks():
    torch.manual_seed(5)
    pools = torch.randn(2, 9, 4, 2, 16)  # (num_blocks, page_block_size, nheads_k, headdim) for K and V
    k_cache, v_cache = pools[0].clone(), pools[1].clone()
    table = torch.tensor([[4, 1, 7], [0, 8, 2]], dtype=torch.int32)
    q, k_new, v_new = torch.randn(2, 1, 8, 16), torch.randn(2, 1, 2, 16), torch.randn(2, 1, 2, 16)
    seqlens = torch.tensor([5, 11], dtype=torch.int32)
    sinks = torch.randn(8)
    out = flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=seqlens, block_table=table,
                                  sinks=sinks)
    # Token 5 of sequence 0 is slot 1 of its second page (1); token 11 of sequence 1 slot 3 of page 2.
    torch.testing.assert_close(k_cache[1, 1], k_new[0, 0])
    torch.testing.assert_close(v_cache[2, 3], v_new[1, 0])
    want = _ref(q, k_cache, v_cache, layout="bshd", block_table=table, kv_lens=seqlens + 1, sinks=sinks)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    with pytest.raises(NotImplementedError, match="rotary_cos"):
        flash_attn_with_kvcache(q, k_cache, v_cache, rotary_cos=torch.zeros(1))


def test_flash_attn_functions_are_on_the_package():
    assert gqa.flash_attn_func is flash_attn_func
    assert gqa.flash_attn_with_kvcache is flash_attn_with_kvcache
