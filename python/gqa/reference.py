"""A float64 numpy reference of grouped-query attention (REFERENCE.md §1).

Written for clarity, not speed: it broadcasts the KV heads explicitly, builds
the full score matrix and a boolean mask per batch, and applies a plain
softmax.  Use it to check kernels on small shapes.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .options import normalize_softcap, normalize_window, resolve_scale
from .shapes import POOL_DIMS, attention_dims, from_bhsd_axes, normalize_layout, paged_attention_dims, to_bhsd_axes


def _as_float64(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        hint = " (bf16 bit patterns: decode them with gqa.dtypes.bf16_to_f32 first)" if a.dtype == np.uint16 else ""
        raise TypeError(f"{name} must be a floating-point array, got dtype {a.dtype}{hint}")
    return a.astype(np.float64)


def _kv_lengths(kv_lens: Any, batch: int, seq_kv: int) -> np.ndarray:
    """Per-batch KV lengths as int64 (``seq_kv`` everywhere when ``kv_lens`` is None)."""
    if kv_lens is None:
        return np.full(batch, seq_kv, dtype=np.int64)
    lens = np.asarray(kv_lens)
    if not np.issubdtype(lens.dtype, np.integer):
        raise TypeError(f"kv_lens must hold integers, got dtype {lens.dtype}")
    if lens.shape != (batch,):
        raise ValueError(f"kv_lens must have shape ({batch},) (one length per batch), got {lens.shape}")
    if lens.size and (lens.min() < 0 or lens.max() > seq_kv):
        raise ValueError(f"kv_lens must lie in [0, {seq_kv}] (the K/V sequence length), got {lens.tolist()}")
    return lens.astype(np.int64)


def _block_table(block_table: Any) -> np.ndarray:
    table = np.asarray(block_table)
    if not np.issubdtype(table.dtype, np.integer):
        raise TypeError(f"block_table must hold integers (page indices), got dtype {table.dtype}")
    if table.ndim != 2:
        raise ValueError(f"block_table must be 2-D (batch, max_pages), got {table.ndim}-D shape {table.shape}")
    return table


def _check_pages(table: np.ndarray, num_pages: int) -> None:
    bad = np.argwhere((table < 0) | (table >= num_pages))
    if bad.size:
        where = tuple(int(x) for x in bad[0])
        raise ValueError(
            f"block_table entries must lie in [0, {num_pages}) (the pages of the k/v pools), got "
            f"{int(table[where])} at {list(where)} ({len(bad)} entr{'y' if len(bad) == 1 else 'ies'} out of range)"
        )


def gather_pages(cache: Any, block_table: Any, layout: str = "bhsd", *, name: str = "cache") -> np.ndarray:
    """A paged KV cache made contiguous: the K (or V) of each sequence, in ``layout``.

    Args:
        cache: a page pool ``[num_pages, page_size, Hkv, D]`` (vLLM /
            FlashAttention's paged layout, whatever ``layout``); any dtype.
        block_table: integers ``[B, max_pages]``: the pages of sequence b in
            order, each in ``[0, num_pages)``.  Key j of sequence b is row
            ``j % page_size`` of page ``block_table[b, j // page_size]``.
        layout: ``"bhsd"`` or ``"bshd"``: the layout of the result.
        name: the tensor's name in error messages.

    Returns:
        ``(B, Hkv, max_pages * page_size, D)`` in ``layout``, of ``cache``'s dtype.
    """
    layout = normalize_layout(layout)
    pool = np.asarray(cache)
    if pool.ndim != 4:
        raise ValueError(f"{name} must be a 4-D page pool ({', '.join(POOL_DIMS)}), got {pool.ndim}-D shape "
                         f"{pool.shape}")
    table = _block_table(block_table)
    num_pages, page_size, heads, dim = pool.shape
    _check_pages(table, num_pages)
    batch, max_pages = table.shape
    bshd = pool[table].reshape(batch, max_pages * page_size, heads, dim)  # (B, S, H, D)
    return np.ascontiguousarray(bshd if layout == "bshd" else bshd.transpose(0, 2, 1, 3))


def visible(
    seq_q: int,
    seq_kv: int,
    *,
    causal: bool = False,
    window: Optional[Sequence[int]] = None,
    kv_len: Optional[int] = None,
) -> np.ndarray:
    """Boolean [seq_q, seq_kv] matrix: may query row i attend to key j?

    Bottom-right alignment: ``off = L - seq_q`` with ``L = kv_len`` (or
    ``seq_kv``); keys ``j >= L`` are never visible; causal keeps ``j <= i + off``;
    a window ``(left, right)`` keeps ``i + off - left <= j <= i + off + right``
    (-1 = unbounded on that side).
    """
    length = seq_kv if kv_len is None else int(kv_len)
    win = normalize_window(window)
    off = length - seq_q
    i = np.arange(seq_q)[:, None]
    j = np.arange(seq_kv)[None, :]
    ok = j < length
    if causal:
        ok = ok & (j <= i + off)
    if win is not None:
        left, right = win
        if left != -1:
            ok = ok & (j >= i + off - left)
        if right != -1:
            ok = ok & (j <= i + off + right)
    return np.broadcast_to(ok, (seq_q, seq_kv))


def attention(
    q: Any,
    k: Any,
    v: Any,
    *,
    layout: str = "bhsd",
    causal: bool = False,
    window: Optional[Sequence[int]] = None,
    kv_lens: Any = None,
    softcap: Optional[float] = None,
    scale: Optional[float] = None,
    block_table: Any = None,
    sinks: Any = None,
    return_lse: bool = False,
) -> Any:
    """Grouped-query attention in float64.

    Args:
        q: (B, Hq, Sq, D) in ``layout`` (any float dtype, incl. float16).
        k: (B, Hkv, Skv, D); Hq must be a multiple of Hkv.
        v: (B, Hkv, Skv, Dv).
        layout: ``"bhsd"`` or ``"bshd"`` for all tensors, the output included.
        causal: bottom-right aligned causal mask.
        window: ``(left, right)`` sliding window, -1 = unbounded; combined
            with ``causal`` the two masks intersect.
        kv_lens: optional per-batch KV lengths (B integers in [0, Skv]); the
            queries are then aligned against ``kv_lens[b]``.
        softcap: optional c > 0: scores become ``c * tanh(s / c)``.
        scale: softmax scale, default ``1 / sqrt(D)``.
        block_table: optional integers ``[B, max_pages]`` for a paged KV
            cache: k and v are then page pools ``[num_pages, page_size, Hkv,
            D]`` and ``[num_pages, page_size, Hkv, Dv]`` (whatever
            ``layout``), key j of sequence b is row ``j % page_size`` of page
            ``block_table[b, j // page_size]`` (see :func:`gather_pages`), and
            ``Skv = max_pages * page_size``.  Entries must lie in
            ``[0, num_pages)``.
        sinks: optional ``[Hq]`` attention-sink logits (GPT-OSS): the sink of
            head h joins every row's softmax denominator as one more logit
            with no value, compared with the scaled (and softcapped) scores
            and not scaled itself.
        return_lse: also return each row's natural-log ``logsumexp`` of its
            visible scaled scores (sink included), ``[B, Hq, Sq]`` whatever
            ``layout``; ``-inf`` for a row with no visible key and no sink.

    Returns:
        float64 array (B, Hq, Sq, Dv) in ``layout``, or ``(out, lse)`` with
        ``return_lse``; rows with no visible key are 0.  Keys no query sees
        (e.g. past ``kv_lens[b]``) are never read, so they may hold anything,
        NaN included.
    """
    layout = normalize_layout(layout)
    qa, ka, va = (_as_float64(n, x) for n, x in (("q", q), ("k", k), ("v", v)))
    if block_table is not None:
        table = _block_table(block_table)
        paged_attention_dims(qa.shape, ka.shape, va.shape, table.shape, layout)  # shape errors name the pools
        ka, va = (gather_pages(a, table, layout, name=n) for n, a in (("k", ka), ("v", va)))
    dims = attention_dims(qa.shape, ka.shape, va.shape, layout)
    scale_ = resolve_scale(scale, dims.head_dim)
    cap = normalize_softcap(softcap)
    lens = _kv_lengths(kv_lens, dims.batch, dims.seq_kv)

    perm = to_bhsd_axes(layout)
    qb, kb, vb = (a.transpose(perm) for a in (qa, ka, va))
    kv_head = np.arange(dims.q_heads) // dims.group_size  # query head h reads KV head h // g
    k_full = kb[:, kv_head]  # (B, Hq, Skv, D)
    v_full = vb[:, kv_head]  # (B, Hq, Skv, Dv)

    scores = scale_ * np.einsum("bhid,bhjd->bhij", qb, k_full)
    if cap > 0:
        scores = cap * np.tanh(scores / cap)

    mask = np.zeros((dims.batch, 1, dims.seq_q, dims.seq_kv), dtype=bool)
    for b, length in enumerate(lens):
        mask[b, 0] = visible(dims.seq_q, dims.seq_kv, causal=causal, window=window, kv_len=length)
    # A key no row sees is not read: zero its value so that a NaN there (a paged cache's unused
    # slots, a padded sequence's tail) does not turn 0 * NaN into NaN below.
    v_full = np.where(mask.any(axis=2)[..., None], v_full, 0.0)
    scores = np.where(mask, scores, -np.inf)
    row_max = scores.max(axis=-1, keepdims=True, initial=-np.inf)
    sink = None
    if sinks is not None:
        sink = _as_float64("sinks", sinks)
        if sink.shape != (dims.q_heads,):
            raise ValueError(f"sinks must have shape ({dims.q_heads},) (one logit per query head), got {sink.shape}")
        sink = sink[None, :, None, None]
        row_max = np.maximum(row_max, sink)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)  # fully masked rows
    p = np.where(mask, np.exp(scores - row_max), 0.0)
    denom = p.sum(axis=-1, keepdims=True)
    if sink is not None:
        denom = denom + np.exp(sink - row_max)
    weights = np.divide(p, denom, out=np.zeros_like(p), where=denom > 0)
    out = np.einsum("bhij,bhjd->bhid", weights, v_full)
    out = np.ascontiguousarray(out.transpose(from_bhsd_axes(layout)))
    if not return_lse:
        return out
    with np.errstate(divide="ignore"):
        lse = np.where(denom > 0, row_max + np.log(denom), -np.inf)[..., 0]
    return out, lse


def attention_varlen(
    q: Any,
    k: Any,
    v: Any,
    cu_seqlens_q: Any,
    *,
    cu_seqlens_k: Any = None,
    kv_lens: Any = None,
    block_table: Any = None,
    causal: bool = False,
    window: Optional[Sequence[int]] = None,
    softcap: Optional[float] = None,
    scale: Optional[float] = None,
    sinks: Any = None,
    return_lse: bool = False,
) -> Any:
    """A ragged batch (flash_attn's varlen) in float64, one sequence at a time.

    q is packed tokens ``[T, Hq, D]``: sequence b is rows ``cu_seqlens_q[b]``
    to ``cu_seqlens_q[b+1]``.  K/V are packed ``[Tk, Hkv, D]`` split by
    ``cu_seqlens_k``, or a cache ``[B, Skv, Hkv, D]`` (page pools with
    ``block_table``) with ``kv_lens`` (flash_attn's ``seqused_k``; with
    ``cu_seqlens_k`` they cut each segment shorter).  Each sequence is
    :func:`attention` in bshd with its own bottom-right alignment.

    Returns the output ``[T, Hq, Dv]``, or ``(out, lse)`` with the LSE
    ``[Hq, T]``.
    """
    qa, ka, va = (_as_float64(n, x) for n, x in (("q", q), ("k", k), ("v", v)))
    cu_q = np.asarray(cu_seqlens_q, dtype=np.int64)
    if block_table is not None:
        table = _block_table(block_table)
        ka, va = (gather_pages(a, table, "bshd", name=n) for n, a in (("k", ka), ("v", va)))
    cu_k = None if cu_seqlens_k is None else np.asarray(cu_seqlens_k, dtype=np.int64)
    lens = None if kv_lens is None else np.asarray(kv_lens, dtype=np.int64)
    out = np.zeros(qa.shape[:2] + va.shape[-1:])
    lse = np.full((qa.shape[1], qa.shape[0]), -np.inf)
    for b in range(cu_q.size - 1):
        rows = slice(cu_q[b], cu_q[b + 1])
        if cu_k is not None:
            keys = slice(cu_k[b], cu_k[b + 1])
            kb, vb = ka[keys][None], va[keys][None]
        else:
            kb, vb = ka[b:b + 1], va[b:b + 1]
        length = None if lens is None else [min(int(lens[b]), kb.shape[1])]
        if rows.stop == rows.start:
            continue
        o, l = attention(qa[rows][None], kb, vb, layout="bshd", causal=causal, window=window, kv_lens=length,
                         softcap=softcap, scale=scale, sinks=sinks, return_lse=True)
        out[rows], lse[:, rows] = o[0], l[0]
    return (out, lse) if return_lse else out
