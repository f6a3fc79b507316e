"""The PyTorch ops ``torch.ops.gqa.attention`` and ``torch.ops.gqa.attention_out``.

Registered with :func:`torch.library.custom_op` and a fake (meta)
implementation, so that ``torch.compile(fullgraph=True)`` traces a model that
calls them with no graph break.  CPU tensors run the compiler's CPU path in
process (:func:`gqa.host.attention_host`); CUDA tensors the compiled GPU
kernels (:func:`gqa.attention`).  Ragged batches (``cu_seqlens_q``) run on
both; on CUDA tensors they take ``max_seqlen_q`` (and ``max_seqlen_k`` with
packed K/V, ``cu_seqlens_k``), the longest sequence's tokens, which size the
kernels' grid and split-KV partition.  Importing this module registers them (``import gqa.torch_ops``);
:mod:`gqa.flash_attn` builds on them.
"""

from __future__ import annotations

from typing import Optional

import torch

from .host import attention_host
from .shapes import make_shape, normalize_layout


def _out_shape(q: torch.Tensor, v: torch.Tensor, layout: str) -> tuple[int, ...]:
    if q.dim() == 3:  # packed tokens of a ragged batch
        return (q.shape[0], q.shape[1], v.shape[-1])
    b, x, y, _ = q.shape
    heads, seq = (x, y) if layout == "bhsd" else (y, x)
    return make_shape(layout, b, heads, seq, v.shape[-1])


def lse_shape(q: torch.Tensor, layout: str, return_lse: bool) -> tuple[int, ...]:
    """The LSE of ``q``'s rows: [B, Hq, Sq], [Hq, T] for packed tokens, (0,) without ``return_lse``."""
    if not return_lse:
        return (0,)
    if q.dim() == 3:
        return (q.shape[1], q.shape[0])
    b, x, y, _ = q.shape
    return (b, x, y) if layout == "bhsd" else (b, y, x)


def _run(q, k, v, kv_lens, block_table, sinks, causal, window_left, window_right, softcap, scale, layout,
         return_lse, out, lse, cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=None, max_seqlen_k=None):
    window = None if window_left == -1 and window_right == -1 else (window_left, window_right)
    options = dict(causal=causal, window=window, kv_lens=kv_lens, softcap=softcap, scale=scale, layout=layout,
                   block_table=block_table, sinks=sinks, return_lse=return_lse, out=out,
                   lse=lse if return_lse else None, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k)
    if _runs_on_host(q):  # the CPU path reads the offsets itself: max_seqlen_q/k are not needed
        result = attention_host(q, k, v, **options)
        return result if return_lse else (result, lse)
    from .api import attention

    result = attention(q, k, v, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, **options)
    return result if return_lse else (result, lse)


def _runs_on_host(q: torch.Tensor) -> bool:
    """Whether ``q`` is a CPU tensor (the in-process CPU path); else the GPU kernels run."""
    return q.device.type == "cpu"


@torch.library.custom_op("gqa::attention", mutates_args=())
def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_lens: Optional[torch.Tensor] = None,
    block_table: Optional[torch.Tensor] = None, sinks: Optional[torch.Tensor] = None, causal: bool = False,
    window_left: int = -1, window_right: int = -1, softcap: Optional[float] = None,
    scale: Optional[float] = None, layout: str = "bhsd", return_lse: bool = False,
    cu_seqlens_q: Optional[torch.Tensor] = None, cu_seqlens_k: Optional[torch.Tensor] = None,
    max_seqlen_q: Optional[int] = None, max_seqlen_k: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grouped-query attention: ``(out, lse)``; ``lse`` is float32 [B, Hq, Sq] ([Hq, T] for a ragged batch)
    with ``return_lse``, else empty.  ``cu_seqlens_q`` (``cu_seqlens_k``) make q/out (k/v) packed tokens;
    ``max_seqlen_q`` (``max_seqlen_k``), the longest sequence's query (key) count, is required with
    ``cu_seqlens_q`` (``cu_seqlens_k``) on CUDA tensors (see :func:`gqa.attention`) and ignored on CPU tensors."""
    layout = normalize_layout(layout)
    out = q.new_empty(_out_shape(q, v, layout))
    lse = q.new_empty(lse_shape(q, layout, return_lse), dtype=torch.float32)
    return _run(q, k, v, kv_lens, block_table, sinks, causal, window_left, window_right, softcap, scale, layout,
                return_lse, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)


@attention.register_fake
def _(q, k, v, kv_lens=None, block_table=None, sinks=None, causal=False, window_left=-1, window_right=-1,
      softcap=None, scale=None, layout="bhsd", return_lse=False, cu_seqlens_q=None, cu_seqlens_k=None,
      max_seqlen_q=None, max_seqlen_k=None):
    layout = normalize_layout(layout)
    return (q.new_empty(_out_shape(q, v, layout)),
            q.new_empty(lse_shape(q, layout, return_lse), dtype=torch.float32))


@torch.library.custom_op("gqa::attention_out", mutates_args=("out", "lse"))
def attention_out(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: Optional[torch.Tensor] = None,
    kv_lens: Optional[torch.Tensor] = None, block_table: Optional[torch.Tensor] = None,
    sinks: Optional[torch.Tensor] = None, causal: bool = False, window_left: int = -1, window_right: int = -1,
    softcap: Optional[float] = None, scale: Optional[float] = None, layout: str = "bhsd",
    cu_seqlens_q: Optional[torch.Tensor] = None, cu_seqlens_k: Optional[torch.Tensor] = None,
    max_seqlen_q: Optional[int] = None, max_seqlen_k: Optional[int] = None,
) -> None:
    """:func:`attention` writing ``out`` (and ``lse`` when given) in place."""
    _run(q, k, v, kv_lens, block_table, sinks, causal, window_left, window_right, softcap, scale,
         normalize_layout(layout), lse is not None, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
         max_seqlen_k)


@attention_out.register_fake
def _(q, k, v, out, lse=None, kv_lens=None, block_table=None, sinks=None, causal=False, window_left=-1,
      window_right=-1, softcap=None, scale=None, layout="bhsd", cu_seqlens_q=None, cu_seqlens_k=None,
      max_seqlen_q=None, max_seqlen_k=None):
    return None
