"""Validation of the attention options shared by the reference, the compiler and the launcher.

A mask is described canonically by an *effective window* ``(left, right)``
(REFERENCE.md §1, bottom-right aligned, -1 = unbounded on that side):

* ``(-1, -1)``: no mask (keys past ``kv_lens[b]`` are still masked);
* ``(-1, 0)``: causal;
* anything else: a sliding window.

``causal=True`` together with ``window=(L, R)`` is the intersection of both
masks, i.e. the window ``(L, 0)``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Optional, Sequence

Window = tuple[int, int]


def normalize_window(window: Optional[Sequence[int]]) -> Optional[Window]:
    """Check a ``(left, right)`` window (ints >= -1, -1 = unbounded); ``None`` passes through."""
    if window is None:
        return None
    if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") or len(window) != 2:
        raise ValueError(f"window must be a (left, right) pair of ints, got {window!r}")
    out = []
    for side, value in zip(("left", "right"), window):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ValueError(f"window {side} must be an int, got {value!r}")
        if value < -1:
            raise ValueError(f"window {side} must be >= -1 (-1 = unbounded), got {value}")
        out.append(int(value))
    return (out[0], out[1])


def effective_window(causal: bool, window: Optional[Sequence[int]]) -> Window:
    """The single ``(left, right)`` window equivalent to ``causal`` and ``window`` together."""
    left, right = normalize_window(window) or (-1, -1)
    if causal:
        right = 0  # right >= -1; both "unbounded" and any right >= 0 meet causal at 0
    return (left, right)


def mask_kind(window: Window) -> str:
    """``"none"``, ``"causal"`` or ``"window"`` for an effective window."""
    if window == (-1, -1):
        return "none"
    if window == (-1, 0):
        return "causal"
    return "window"


def resolve_scale(scale: Optional[float], head_dim: int) -> float:
    """The softmax scale: ``scale`` if given (finite, > 0), else ``1 / sqrt(head_dim)``."""
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    if isinstance(scale, bool) or not isinstance(scale, Real) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    return float(scale)


def normalize_softcap(softcap: Any) -> float:
    """The logit softcap: 0.0 for none (``None`` or 0), else a finite number > 0."""
    if softcap is None:
        return 0.0
    if isinstance(softcap, bool) or not isinstance(softcap, Real) or not math.isfinite(softcap) or softcap < 0:
        raise ValueError(f"softcap must be None or a finite number >= 0, got {softcap!r}")
    return float(softcap)
