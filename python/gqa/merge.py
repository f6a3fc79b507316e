"""``merge_attention_states``: combine two partial attention results by their LSE.

Attention over a set of keys split in two disjoint parts (a cached prefix and
a new suffix in cascade attention, two devices' shards in context
parallelism, two splits of split-KV) is recovered exactly from each part's
normalised output ``O_i`` and natural-log log-sum-exp ``lse_i``::

    M   = max(lse_1, lse_2)
    w_i = exp(lse_i - M)
    O   = (w_1 O_1 + w_2 O_2) / (w_1 + w_2)
    lse = M + log(w_1 + w_2)

A part that saw no key (``lse = -inf``) weighs 0; a row that neither saw is
0 with ``lse = -inf``.  Attention sinks belong to exactly one part (compute
the other without them).
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from .shapes import normalize_layout


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def merge_attention_states(o1: Any, lse1: Any, o2: Any, lse2: Any, *, layout: str = "bhsd") -> Tuple[Any, Any]:
    """Merge two partial attention results over disjoint keys.

    Args:
        o1, o2: outputs ``(B, H, S, Dv)`` in ``layout`` (numpy arrays or torch
            tensors, both the same kind).
        lse1, lse2: their log-sum-exps ``(B, H, S)`` (gqa's and flash_attn's
            ``softmax_lse`` shape, whatever ``layout``).
        layout: ``"bhsd"`` or ``"bshd"``.

    Returns:
        ``(o, lse)``: for torch tensors the output in ``o1``'s dtype and the
        LSE in float32 (computed in float32); for numpy arrays both float64.
    """
    layout = normalize_layout(layout)
    if o1.shape != o2.shape:
        raise ValueError(f"o1 and o2 must have one shape, got {tuple(o1.shape)} and {tuple(o2.shape)}")
    if lse1.shape != lse2.shape:
        raise ValueError(f"lse1 and lse2 must have one shape, got {tuple(lse1.shape)} and {tuple(lse2.shape)}")
    if len(o1.shape) != 4:
        raise ValueError(f"o1 must be 4-D (B, H, S, Dv) in layout {layout}, got shape {tuple(o1.shape)}")
    b, x, y, _ = o1.shape
    rows = (b, x, y) if layout == "bhsd" else (b, y, x)
    if tuple(lse1.shape) != rows:
        raise ValueError(f"lse1 must have shape {rows} (B, H, S), got {tuple(lse1.shape)}")
    if _is_torch(o1):
        import torch

        l1, l2 = lse1.float(), lse2.float()
        m = torch.maximum(l1, l2)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        w1, w2 = torch.exp(l1 - m), torch.exp(l2 - m)
        total = w1 + w2
        lse = torch.where(total > 0, m + torch.log(total), torch.full_like(m, -torch.inf))
        inv = torch.where(total > 0, 1.0 / torch.where(total > 0, total, 1.0), 0.0)
        a1, a2 = w1 * inv, w2 * inv
        if layout == "bshd":
            a1, a2 = a1.transpose(1, 2), a2.transpose(1, 2)
        o = a1[..., None] * o1.float() + a2[..., None] * o2.float()
        return o.to(o1.dtype), lse
    l1, l2 = np.asarray(lse1, np.float64), np.asarray(lse2, np.float64)
    m = np.maximum(l1, l2)
    m = np.where(np.isfinite(m), m, 0.0)
    w1, w2 = np.exp(l1 - m), np.exp(l2 - m)
    total = w1 + w2
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = np.where(total > 0, m + np.log(total), -np.inf)
        a1 = np.where(total > 0, w1 / total, 0.0)
        a2 = np.where(total > 0, w2 / total, 0.0)
    if layout == "bshd":
        a1, a2 = a1.transpose(0, 2, 1), a2.transpose(0, 2, 1)
    o = a1[..., None] * np.asarray(o1, np.float64) + a2[..., None] * np.asarray(o2, np.float64)
    return o, lse
