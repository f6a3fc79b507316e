"""Ragged batches (flash_attn's varlen) for measure.py: the offsets, the launch keywords, and the float64
reference one sequence at a time.

Sequence b is rows ``cu_seqlens_q[b]`` to ``cu_seqlens_q[b+1]`` of the packed q/out [T, Hq, D]; its keys
are row b of a KV cache [B, Skv, Hkv, D] (read through kv_lens, or pages gathered back by the caller),
or, with packed K/V, rows ``cu_seqlens_k[b]`` to ``cu_seqlens_k[b+1]`` of k/v [Tk, Hkv, D] (the shape's
``kv_lens`` are then the segments, and ``seq_kv``, the longest, is max_seqlen_k).

Imported by measure.py (torch only where it runs); devices and the padded reference are passed in, so
that the tests' CPU stand-ins of measure.py apply here too.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

import torch

from configs import Attrs, Shape


def offsets(lens: Sequence[int], device: Any) -> torch.Tensor:
    """The int32 offsets [B+1] of packed segments of ``lens`` tokens (segment b: rows cu[b] to cu[b+1])."""
    return torch.tensor([0, *itertools.accumulate(lens)], dtype=torch.int32, device=device)


def make_cu_seqlens(attrs: Attrs, shape: Shape, device: Any) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """(cu_seqlens_q, cu_seqlens_k): a ragged batch's query offsets (None for a padded batch) and, with
    packed K/V, its key offsets from the segments ``shape.kv_lens`` (else None)."""
    cu_q = None if shape.q_lens is None else offsets(shape.q_lens, device)
    cu_k = offsets(shape.kv_lens, device) if attrs.packed_kv else None
    return cu_q, cu_k


def launch_options(shape: Shape, cu_seqlens_q: Optional[torch.Tensor],
                   cu_seqlens_k: Optional[torch.Tensor] = None) -> dict[str, Any]:
    """The ragged-batch keywords of measure.run_ours (and gqa.attention): the offsets and max_seqlen_q, with
    packed K/V also cu_seqlens_k and max_seqlen_k (``seq_kv``, the longest segment); none for a padded batch."""
    options: dict[str, Any] = {}
    if cu_seqlens_q is not None:
        options.update(cu_seqlens_q=cu_seqlens_q, max_seqlen_q=shape.seq_q)
    if cu_seqlens_k is not None:
        options.update(cu_seqlens_k=cu_seqlens_k, max_seqlen_k=shape.seq_kv)
    return options


def reference_varlen(padded: Callable[..., Any], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attrs: Attrs,
                     cu_seqlens_q: Optional[torch.Tensor], kv_lens: Optional[torch.Tensor] = None, *,
                     cu_seqlens_k: Optional[torch.Tensor] = None, sinks: Optional[torch.Tensor] = None,
                     return_lse: bool = False, max_chunk_bytes: int = 1 << 30) -> Any:
    """A ragged batch, one sequence at a time through ``padded`` (measure.reference; as
    gqa.reference.attention_varlen): sequence b's rows of q (packed [T, Hq, D]) against row b of the bshd
    cache k/v, or its segment of packed k/v with ``cu_seqlens_k`` (``kv_lens[b]`` cutting either shorter),
    each bottom-right aligned on its own.  Returns the float64 output [T, Hq, Dv], or ``(out, lse)`` with
    the LSE [Hq, T]."""
    if cu_seqlens_q is None:
        raise ValueError("a varlen kernel's reference needs cu_seqlens_q (the offsets of the packed sequences)")
    if attrs.packed_kv and cu_seqlens_k is None:
        raise ValueError("a packed-K/V kernel's reference needs cu_seqlens_k (the offsets of the packed keys)")
    per_sequence = replace(attrs, varlen=False, packed_kv=False)
    rows = [int(x) for x in cu_seqlens_q.tolist()]
    keys = None if cu_seqlens_k is None else [int(x) for x in cu_seqlens_k.tolist()]
    tokens, q_heads = q.shape[0], q.shape[1]
    out = torch.empty(tokens, q_heads, v.shape[-1], dtype=torch.float64, device=q.device)
    lse = torch.empty(q_heads, tokens, dtype=torch.float64, device=q.device) if return_lse else None
    for b, (start, stop) in enumerate(zip(rows, rows[1:])):
        if stop == start:
            continue  # an empty sequence: no row
        segment = slice(b, b + 1) if keys is None else slice(keys[b], keys[b + 1])
        kb, vb = (k[segment], v[segment]) if keys is None else (k[None, segment], v[None, segment])
        lens = None if kv_lens is None else kv_lens[b:b + 1].clamp(max=kb.shape[1])
        ref = padded(q[None, start:stop], kb, vb, per_sequence, lens, sinks=sinks, return_lse=return_lse,
                     max_chunk_bytes=max_chunk_bytes)
        if lse is not None:
            ref, ref_lse = ref
            lse[:, start:stop] = ref_lse[0]
        out[start:stop] = ref[0]
    return out if lse is None else (out, lse)


__all__ = ["launch_options", "make_cu_seqlens", "offsets", "reference_varlen"]
