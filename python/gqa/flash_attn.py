"""flash_attn's functions on gqa: replacing ``from flash_attn import ...`` is the whole migration.

:func:`flash_attn_func`, :func:`flash_attn_varlen_func` and
:func:`flash_attn_with_kvcache` take flash_attn 2's argument names, defaults, shapes (``(batch, seqlen, nheads, headdim)``,
gqa's ``bshd``) and return values, and call ``torch.ops.gqa.attention``, so
that ``torch.compile(fullgraph=True)`` traces them.  What differs:

* ``dropout_p`` must be 0 and ``alibi_slopes``, rotary embedding
  (``rotary_cos``/``rotary_sin``), ``cache_batch_idx`` and ``cache_leftpad``
  are not supported: each raises ``NotImplementedError`` when used.
* ``return_attn_probs=True`` returns ``(out, softmax_lse, None)``: the
  probabilities themselves are never materialised.
* ``deterministic`` is accepted and has no effect (gqa's kernels are
  deterministic).  ``max_seqlen_q`` sizes the GPU kernels' grid, as in
  flash_attn (rows of a longer sequence are not computed), and with packed
  K/V ``max_seqlen_k`` their split-KV partition (understating it is still
  exact, only less balanced); CPU tensors find the longest sequences themselves.
* ``flash_attn_varlen_func`` also takes vLLM's ``seqused_k`` (the valid keys
  of each sequence, with ``block_table`` or within each ``cu_seqlens_k``
  segment), and K/V as a cache ``(batch, seqlen_k, nheads_k, headdim)`` read
  through ``seqused_k``.
* Extra keyword arguments: ``sinks`` (float32 ``[nheads]`` attention-sink
  logits, GPT-OSS) and ``out`` (written in place).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch

from . import torch_ops  # registers torch.ops.gqa.*


def _unsupported(**options: Any) -> None:
    for name, value in options.items():
        if value is not None and value is not False:
            raise NotImplementedError(f"gqa's flash_attn functions do not support {name}")


def _no_dropout_or_alibi(dropout_p: float, alibi_slopes: Optional[torch.Tensor]) -> None:
    if dropout_p:
        raise NotImplementedError("gqa's flash_attn functions do not support dropout (dropout_p must be 0)")
    _unsupported(alibi_slopes=alibi_slopes)


def _window(causal: bool, window_size: Sequence[int]) -> tuple[int, int]:
    left, right = (int(x) for x in window_size)
    if causal:  # flash_attn: causal is window (left, 0)
        right = 0
    return left, right


def _call(q, k, v, *, kv_lens=None, block_table=None, sinks=None, softmax_scale=None, causal=False,
          window_size=(-1, -1), softcap=0.0, return_lse=False, out=None, cu_seqlens_q=None, cu_seqlens_k=None,
          max_seqlen_q=None, max_seqlen_k=None):
    left, right = _window(causal, window_size)
    cap = float(softcap) if softcap else None
    options = dict(kv_lens=kv_lens, block_table=block_table, sinks=sinks, causal=False, window_left=left,
                   window_right=right, softcap=cap, scale=softmax_scale, layout="bshd", cu_seqlens_q=cu_seqlens_q,
                   cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k)
    if out is not None:
        lse = q.new_empty(torch_ops.lse_shape(q, "bshd", True), dtype=torch.float32) if return_lse else None
        torch.ops.gqa.attention_out(q, k, v, out, lse, **options)
        return out, lse
    return torch.ops.gqa.attention(q, k, v, return_lse=return_lse, **options)


def flash_attn_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Sequence[int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
    *,
    sinks: Optional[torch.Tensor] = None,
    out: Optional[torch.Tensor] = None,
) -> Union[torch.Tensor, tuple]:
    """flash_attn's ``flash_attn_func``: q ``(batch, seqlen_q, nheads, headdim)``, k/v ``(batch, seqlen_k,
    nheads_k, headdim)``; nheads a multiple of nheads_k (GQA/MQA).  Causal and windows align bottom-right.

    Returns ``out`` ``(batch, seqlen_q, nheads, headdim_v)``, or with ``return_attn_probs``
    ``(out, softmax_lse, None)``, softmax_lse float32 ``(batch, nheads, seqlen_q)``.
    """
    _no_dropout_or_alibi(dropout_p, alibi_slopes)
    o, lse = _call(q, k, v, sinks=sinks, softmax_scale=softmax_scale, causal=causal, window_size=window_size,
                   softcap=softcap, return_lse=return_attn_probs, out=out)
    return (o, lse, None) if return_attn_probs else o


def flash_attn_varlen_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: Optional[torch.Tensor],
    max_seqlen_q: int,
    max_seqlen_k: int,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Sequence[int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
    block_table: Optional[torch.Tensor] = None,
    *,
    seqused_k: Optional[torch.Tensor] = None,
    sinks: Optional[torch.Tensor] = None,
    out: Optional[torch.Tensor] = None,
) -> Union[torch.Tensor, tuple]:
    """flash_attn's ``flash_attn_varlen_func``: a ragged batch of packed tokens.

    q is ``(total_q, nheads, headdim)``, sequence b being rows ``cu_seqlens_q[b]`` to
    ``cu_seqlens_q[b+1]`` (int32, ``(batch + 1,)``), the longest ``max_seqlen_q`` rows.  k/v are
    ``(total_k, nheads_k, headdim)`` split the same way by ``cu_seqlens_k`` (the longest ``max_seqlen_k``),
    or a KV cache: with ``block_table`` ``(batch, max_blocks)``, page pools
    ``(num_blocks, page_block_size, nheads_k, headdim)``, else ``(batch, seqlen_k, nheads_k, headdim)``;
    a cache's keys per sequence are ``seqused_k`` (or the ``cu_seqlens_k`` differences).  Causal and
    windows align bottom-right per sequence, so prefill chunks and decode rows mix in one batch.

    Returns ``out`` ``(total_q, nheads, headdim_v)``, or with ``return_attn_probs``
    ``(out, softmax_lse, None)``, softmax_lse float32 ``(nheads, total_q)``.
    """
    _no_dropout_or_alibi(dropout_p, alibi_slopes)
    lens = seqused_k
    packed_k = cu_seqlens_k
    if block_table is not None or k.dim() == 4:
        packed_k = None  # a KV cache (paged or not): its lengths come from seqused_k or cu_seqlens_k
        if lens is None:
            if cu_seqlens_k is None:
                raise ValueError("a KV cache (block_table, or k of shape (batch, seqlen_k, nheads_k, headdim)) needs "
                                 "seqused_k or cu_seqlens_k for the keys of each sequence")
            lens = cu_seqlens_k[1:] - cu_seqlens_k[:-1]
    elif cu_seqlens_k is None:
        raise ValueError("packed k/v need cu_seqlens_k (or pass a KV cache: block_table, or 4-D k/v, with seqused_k)")
    o, lse = _call(q, k, v, kv_lens=None if lens is None else lens.to(torch.int32), block_table=block_table,
                   sinks=sinks, softmax_scale=softmax_scale, causal=causal, window_size=window_size,
                   softcap=softcap, return_lse=return_attn_probs, out=out, cu_seqlens_q=cu_seqlens_q,
                   cu_seqlens_k=packed_k, max_seqlen_q=max_seqlen_q,
                   max_seqlen_k=None if packed_k is None else int(max_seqlen_k))
    return (o, lse, None) if return_attn_probs else o


def _append_to_cache(k_cache: torch.Tensor, k: torch.Tensor, cache_seqlens: torch.Tensor,
                     block_table: Optional[torch.Tensor]) -> None:
    """Write the new keys (or values) ``k`` [B, s_new, Hkv, D] at positions cache_seqlens[b] + i."""
    batch, new = k.shape[0], k.shape[1]
    positions = cache_seqlens.to(torch.long)[:, None] + torch.arange(new, device=k.device)[None, :]
    if block_table is None:
        rows = torch.arange(batch, device=k.device)[:, None].expand(batch, new)
        k_cache[rows, positions] = k.to(k_cache.dtype)
    else:
        page_size = k_cache.shape[1]
        pages = torch.gather(block_table.to(torch.long), 1, positions // page_size)
        k_cache[pages, positions % page_size] = k.to(k_cache.dtype)


def flash_attn_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: Optional[torch.Tensor] = None,
    v: Optional[torch.Tensor] = None,
    rotary_cos: Optional[torch.Tensor] = None,
    rotary_sin: Optional[torch.Tensor] = None,
    cache_seqlens: Optional[Union[int, torch.Tensor]] = None,
    cache_batch_idx: Optional[torch.Tensor] = None,
    cache_leftpad: Optional[torch.Tensor] = None,
    block_table: Optional[torch.Tensor] = None,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Sequence[int] = (-1, -1),
    softcap: float = 0.0,
    rotary_interleaved: bool = True,
    alibi_slopes: Optional[torch.Tensor] = None,
    num_splits: int = 0,
    return_softmax_lse: bool = False,
    *,
    sinks: Optional[torch.Tensor] = None,
    out: Optional[torch.Tensor] = None,
) -> Union[torch.Tensor, tuple]:
    """flash_attn's ``flash_attn_with_kvcache``: decode (or chunked prefill) against a KV cache.

    k_cache/v_cache are ``(batch, seqlen_cache, nheads_k, headdim)``, or with ``block_table``
    (``(batch, max_blocks)`` int32) page pools ``(num_blocks, page_block_size, nheads_k, headdim)``.
    ``cache_seqlens`` (int or ``(batch,)`` int32) are the tokens already cached; ``k``/``v``
    ``(batch, seqlen_new, nheads_k, headdim)``, when given, are first written into the cache
    after them (in place), and attention then sees ``cache_seqlens + seqlen_new`` keys.
    ``num_splits`` is accepted (gqa chooses its own split-KV).

    Returns ``out`` ``(batch, seqlen_q, nheads, headdim_v)``, or ``(out, softmax_lse)``.
    """
    _unsupported(rotary_cos=rotary_cos, rotary_sin=rotary_sin, cache_batch_idx=cache_batch_idx,
                 cache_leftpad=cache_leftpad, alibi_slopes=alibi_slopes)
    if (k is None) != (v is None):
        raise ValueError("k and v must be given together (the new keys and values to append)")
    batch = q.shape[0]
    lens = None
    if cache_seqlens is not None:
        if isinstance(cache_seqlens, int):
            lens = torch.full((batch,), cache_seqlens, dtype=torch.int32, device=q.device)
        else:
            lens = cache_seqlens.to(torch.int32)
    if k is not None:
        if lens is None:
            lens = torch.zeros((batch,), dtype=torch.int32, device=q.device)
        _append_to_cache(k_cache, k, lens, block_table)
        _append_to_cache(v_cache, v, lens, block_table)
        lens = lens + k.shape[1]
    o, lse = _call(q, k_cache, v_cache, kv_lens=lens, block_table=block_table, sinks=sinks,
                   softmax_scale=softmax_scale, causal=causal, window_size=window_size, softcap=softcap,
                   return_lse=return_softmax_lse, out=out)
    return (o, lse) if return_softmax_lse else o
