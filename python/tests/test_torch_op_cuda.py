"""torch.ops.gqa.attention and flash_attn_varlen_func on their CUDA branch, without a GPU (skipped without torch).

The ``cuda_branch`` fixture makes the op take its CUDA branch for CPU tensors and stands in for
:func:`gqa.attention` there: it records the keywords of each call (the list it returns; tensors as the
FakeTensors the launch saw, q, k and v among them) and calls the real gqa.attention with a
:class:`~conftest.FakeTensor` for each torch tensor (same shape and dtype, on "cuda:0"), so that the
launch reaches the stub runtime (``last_args``) through the fake gqa-compile, as test_api.py's
test_launch_varlen does; the op then gets its own torch tensors back.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import FakeTensor, last_args

torch = pytest.importorskip("torch")

import gqa.torch_ops  # noqa: E402 - registers the ops
from gqa import api, torch_ops  # noqa: E402
from gqa.flash_attn import flash_attn_varlen_func  # noqa: E402


@pytest.fixture
def cuda_branch(monkeypatch, fake_compiler, stub_runtime) -> list[dict[str, Any]]:
    calls = []
    launch = api.attention

    def on_fake_cuda_tensors(q, k, v, **options):
        torch_of = {}

        def fake(x):
            if not isinstance(x, torch.Tensor):
                return x
            stand_in = FakeTensor(tuple(x.shape), str(x.dtype).removeprefix("torch."))
            torch_of[id(stand_in)] = x
            return stand_in

        options = {name: fake(x) for name, x in dict(options, q=q, k=k, v=v).items()}
        calls.append(options)
        result = launch(**options)
        return tuple(torch_of[id(r)] for r in result) if isinstance(result, tuple) else torch_of[id(result)]

    monkeypatch.setattr(torch_ops, "_runs_on_host", lambda q: False)
    monkeypatch.setattr(api, "attention", on_fake_cuda_tensors)
    return calls


def _ragged_batch():
    """23 packed bf16 tokens of 3 sequences (5, 1 and 17 queries), a KV cache of 100 keys, int32 offsets and lengths."""
    q = torch.randn(23, 8, 64).bfloat16()
    cache = torch.randn(3, 100, 2, 64).bfloat16()
    cu = torch.tensor([0, 5, 6, 23], dtype=torch.int32)
    lens = torch.tensor([40, 7, 100], dtype=torch.int32)
    return q, cache, cu, lens


def test_op_passes_the_ragged_batch_to_the_gpu_kernel(cuda_branch, fake_compiler, stub_runtime):
    q, cache, cu, lens = _ragged_batch()
    out, lse = torch.ops.gqa.attention(q, cache, cache, kv_lens=lens, causal=True, layout="bshd", return_lse=True,
                                       cu_seqlens_q=cu, max_seqlen_q=17)
    assert out.shape == (23, 8, 64) and lse.shape == (8, 23) and lse.dtype == torch.float32
    [call] = cuda_branch
    assert call["max_seqlen_q"] == 17 and call["cu_seqlens_q"].shape == (4,) and call["return_lse"]
    args = last_args(stub_runtime)
    assert (args["cu_seqlens_q"], args["total_q"], args["kv_lens"]) == (
        call["cu_seqlens_q"].data_ptr(), 23, call["kv_lens"].data_ptr())
    assert (args["batch"], args["seq_q"], args["seq_kv"]) == (3, 17, 100)  # seq_q: max_seqlen_q sizes the grid
    assert (args["out"], args["lse"]) == (call["out"].data_ptr(), call["lse"].data_ptr())
    assert args["cu_seqlens_k"] is None and args["total_kv"] == 0 and "--varlen" in fake_compiler.calls[-1]


def test_out_variant_passes_the_ragged_batch(cuda_branch, stub_runtime):
    q, cache, cu, lens = _ragged_batch()
    out = torch.empty(23, 8, 64, dtype=torch.bfloat16)
    torch.ops.gqa.attention_out(q, cache, cache, out, kv_lens=lens, layout="bshd", cu_seqlens_q=cu, max_seqlen_q=17)
    [call] = cuda_branch
    assert call["max_seqlen_q"] == 17 and call["out"].shape == (23, 8, 64) and call["lse"] is None
    assert (last_args(stub_runtime)["seq_q"], last_args(stub_runtime)["out"]) == (17, call["out"].data_ptr())


def test_max_seqlen_q_and_k_are_required_on_cuda(cuda_branch, fake_compiler):
    q, cache, cu, lens = _ragged_batch()
    with pytest.raises(ValueError, match="max_seqlen_q is required"):
        torch.ops.gqa.attention(q, cache, cache, kv_lens=lens, layout="bshd", cu_seqlens_q=cu)
    packed, cu_k = torch.randn(147, 2, 64).bfloat16(), torch.tensor([0, 40, 47, 147], dtype=torch.int32)
    with pytest.raises(ValueError, match="max_seqlen_k is required"):
        torch.ops.gqa.attention(q, packed, packed, layout="bshd", cu_seqlens_q=cu, cu_seqlens_k=cu_k,
                                max_seqlen_q=17)
    assert len(cuda_branch) == 2 and not fake_compiler.calls  # refused before any compile


def test_op_passes_packed_kv_to_the_gpu_kernel(cuda_branch, fake_compiler, stub_runtime):
    """Packed K/V on CUDA: the key offsets and the packed key count reach the kernel, seq_kv is
    max_seqlen_k, and the kernel is compiled with --packed-kv."""
    q, _, cu, _ = _ragged_batch()
    packed, cu_k = torch.randn(147, 2, 64).bfloat16(), torch.tensor([0, 40, 47, 147], dtype=torch.int32)
    out, _ = torch.ops.gqa.attention(q, packed, packed, causal=True, layout="bshd", cu_seqlens_q=cu,
                                     cu_seqlens_k=cu_k, max_seqlen_q=17, max_seqlen_k=100)
    assert out.shape == (23, 8, 64)
    [call] = cuda_branch
    assert (call["max_seqlen_q"], call["max_seqlen_k"]) == (17, 100)
    args = last_args(stub_runtime)
    assert (args["cu_seqlens_k"], args["total_kv"]) == (call["cu_seqlens_k"].data_ptr(), 147)
    assert (args["batch"], args["seq_q"], args["seq_kv"], args["kv_lens"]) == (3, 17, 100, None)
    assert "--varlen" in fake_compiler.calls[-1] and "--packed-kv" in fake_compiler.calls[-1]


def test_flash_attn_varlen_func_runs_the_gpu_kernel_on_a_paged_cache(cuda_branch, fake_compiler, stub_runtime):
    """vLLM's call: page pools, block_table, seqused_k, no cu_seqlens_k; its max_seqlen_q reaches the kernel."""
    q, _, cu, used = _ragged_batch()
    pools = torch.randn(2, 30, 16, 2, 64).bfloat16()  # K and V: 30 pages of 16 tokens
    table = torch.arange(21, dtype=torch.int32).reshape(3, 7)
    out, lse, probs = flash_attn_varlen_func(q, pools[0], pools[1], cu, None, 17, 100, causal=True,
                                             block_table=table, seqused_k=used, return_attn_probs=True)
    assert out.shape == (23, 8, 64) and lse.shape == (8, 23) and probs is None
    [call] = cuda_branch
    assert call["max_seqlen_q"] == 17 and call["window"] == (-1, 0) and call["layout"] == "bshd"
    assert call["cu_seqlens_k"] is None and call["kv_lens"].dtype == "torch.int32"
    args = last_args(stub_runtime)
    assert (args["block_table"], args["num_pages"], args["kv_lens"]) == (
        call["block_table"].data_ptr(), 30, call["kv_lens"].data_ptr())
    assert (args["cu_seqlens_q"], args["total_q"], args["seq_q"], args["seq_kv"]) == (
        call["cu_seqlens_q"].data_ptr(), 23, 17, 7 * 16)
    assert "--varlen" in fake_compiler.calls[-1] and "--page-size" in fake_compiler.calls[-1]


def test_flash_attn_varlen_func_on_a_contiguous_cache_and_packed_kv(cuda_branch, stub_runtime):
    q, cache, cu, used = _ragged_batch()
    flash_attn_varlen_func(q, cache, cache, cu, None, 17, 100, seqused_k=used)
    assert cuda_branch[-1]["max_seqlen_q"] == 17 and cuda_branch[-1]["block_table"] is None
    assert (last_args(stub_runtime)["seq_q"], last_args(stub_runtime)["seq_kv"]) == (17, 100)
    # Without seqused_k, the cu_seqlens_k differences are each cached sequence's keys.
    flash_attn_varlen_func(q, cache, cache, cu, torch.tensor([0, 40, 47, 147], dtype=torch.int32), 17, 100)
    assert cuda_branch[-1]["cu_seqlens_k"] is None and cuda_branch[-1]["kv_lens"].shape == (3,)
    # Packed K/V: max_seqlen_k reaches the kernel as seq_kv.
    packed = torch.randn(147, 2, 64).bfloat16()
    flash_attn_varlen_func(q, packed, packed, cu, torch.tensor([0, 40, 47, 147], dtype=torch.int32), 17, 100)
    assert cuda_branch[-1]["max_seqlen_k"] == 100 and cuda_branch[-1]["cu_seqlens_k"].shape == (4,)
    assert (last_args(stub_runtime)["seq_kv"], last_args(stub_runtime)["total_kv"]) == (100, 147)
    with pytest.raises(ValueError, match="needs seqused_k or cu_seqlens_k"):
        flash_attn_varlen_func(q, cache, cache, cu, None, 17, 100)
