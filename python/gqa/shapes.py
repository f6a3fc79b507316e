"""Tensor layouts and the shape checks shared by the reference and the launcher.

All four tensors of an attention call (q, k, v, out) use one layout:

* ``"bhsd"``: (batch, heads, seq, head_dim), PyTorch SDPA's layout;
* ``"bshd"``: (batch, seq, heads, head_dim), FlashAttention's layout.

:func:`axes` is the single place that maps a layout to axis positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

LAYOUTS: tuple[str, ...] = ("bhsd", "bshd")


class Axes(NamedTuple):
    """Positions of the batch, head, sequence and head-dim axes in a 4-D shape."""

    b: int
    h: int
    s: int
    d: int


def normalize_layout(layout: str) -> str:
    """Return ``layout`` lower-cased, or raise ``ValueError`` if it is not a known layout."""
    if not isinstance(layout, str) or layout.lower() not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return layout.lower()


def axes(layout: str) -> Axes:
    """Axis positions of (B, H, S, D) in ``layout``."""
    layout = normalize_layout(layout)
    return Axes(*(layout.index(c) for c in "bhsd"))


def split_shape(shape: Sequence[int], layout: str) -> tuple[int, int, int, int]:
    """Read (B, H, S, D) from a 4-D ``shape`` given in ``layout``."""
    a = axes(layout)
    return (int(shape[a.b]), int(shape[a.h]), int(shape[a.s]), int(shape[a.d]))


def make_shape(layout: str, b: int, h: int, s: int, d: int) -> tuple[int, int, int, int]:
    """The 4-D shape of a (B, H, S, D) tensor in ``layout``."""
    a = axes(layout)
    shape = [0, 0, 0, 0]
    shape[a.b], shape[a.h], shape[a.s], shape[a.d] = b, h, s, d
    return tuple(shape)  # type: ignore[return-value]


def to_bhsd_axes(layout: str) -> tuple[int, int, int, int]:
    """The permutation that turns a ``layout`` array into a bhsd array (for ``transpose``)."""
    return tuple(axes(layout))  # type: ignore[return-value]


def from_bhsd_axes(layout: str) -> tuple[int, int, int, int]:
    """The permutation that turns a bhsd array into a ``layout`` array."""
    perm = to_bhsd_axes(layout)
    inverse = [0, 0, 0, 0]
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)  # type: ignore[return-value]


_DIM_NAMES = {"b": "batch", "h": "heads", "s": "seq", "d": "head_dim"}


@dataclass(frozen=True)
class AttentionDims:
    """The sizes of one attention call."""

    batch: int
    q_heads: int
    kv_heads: int
    seq_q: int
    seq_kv: int
    head_dim: int
    head_dim_v: int

    @property
    def group_size(self) -> int:
        """g = Hq / Hkv."""
        return self.q_heads // self.kv_heads

    def out_shape(self, layout: str) -> tuple[int, int, int, int]:
        """Shape of the output (B, Hq, Sq, Dv) in ``layout``."""
        return make_shape(layout, self.batch, self.q_heads, self.seq_q, self.head_dim_v)


def _dim_label(layout: str, key: str) -> str:
    return f"dim {axes(layout)._asdict()[key]} ({_DIM_NAMES[key]})"


def attention_dims(
    q_shape: Sequence[int],
    k_shape: Sequence[int],
    v_shape: Sequence[int],
    layout: str,
) -> AttentionDims:
    """Check the shapes of q, k, v against each other and return the call's sizes.

    Raises ``ValueError`` naming the tensor, the dimension and both values.
    """
    layout = normalize_layout(layout)
    for name, shape in (("q", q_shape), ("k", k_shape), ("v", v_shape)):
        if len(shape) != 4:
            raise ValueError(
                f"{name} must be 4-D ({layout}: {', '.join(_DIM_NAMES[c] for c in layout)}), "
                f"got {len(shape)}-D shape {tuple(shape)}"
            )
    bq, hq, sq, d = split_shape(q_shape, layout)
    bk, hk, sk, dk = split_shape(k_shape, layout)
    bv, hv, sv, dv = split_shape(v_shape, layout)

    if bk != bq:
        raise ValueError(f"batch mismatch: k has batch {bk} at {_dim_label(layout, 'b')}, q has {bq}")
    if bv != bq:
        raise ValueError(f"batch mismatch: v has batch {bv} at {_dim_label(layout, 'b')}, q has {bq}")
    if dk != d:
        raise ValueError(f"head_dim mismatch: k has head_dim {dk} at {_dim_label(layout, 'd')}, q has {d}")
    if hv != hk:
        raise ValueError(f"KV head mismatch: v has {hv} heads at {_dim_label(layout, 'h')}, k has {hk}")
    if sv != sk:
        raise ValueError(f"KV length mismatch: v has seq {sv} at {_dim_label(layout, 's')}, k has {sk}")
    for name, value, key in (("q", hq, "h"), ("k", hk, "h"), ("q", d, "d"), ("v", dv, "d")):
        if value <= 0:
            raise ValueError(f"{name} has {value} at {_dim_label(layout, key)}; it must be positive")
    if hq % hk != 0:
        raise ValueError(
            f"q heads ({hq}) must be a multiple of k/v heads ({hk}) for grouped-query attention"
        )
    return AttentionDims(bq, hq, hk, sq, sk, d, dv)
