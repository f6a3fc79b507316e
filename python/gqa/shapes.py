"""Tensor layouts and the shape checks shared by the reference and the launcher.

All four tensors of an attention call (q, k, v, out) use one layout:

* ``"bhsd"``: (batch, heads, seq, head_dim), PyTorch SDPA's layout;
* ``"bshd"``: (batch, seq, heads, head_dim), FlashAttention's layout.

With a paged KV cache, k and v are page pools ``[num_pages, page_size,
kv_heads, head_dim]`` whatever the layout (:func:`paged_attention_dims`).

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
    _check_heads_and_dims((("q", hq, _dim_label(layout, "h")), ("k", hk, _dim_label(layout, "h")),
                           ("q", d, _dim_label(layout, "d")), ("v", dv, _dim_label(layout, "d"))), hq, hk)
    return AttentionDims(bq, hq, hk, sq, sk, d, dv)


def _check_heads_and_dims(sizes: Sequence[tuple[str, int, str]], q_heads: int, kv_heads: int) -> None:
    """Each (tensor, size, where) is positive, and the query heads split into equal groups."""
    for name, value, label in sizes:
        if value <= 0:
            raise ValueError(f"{name} has {value} at {label}; it must be positive")
    if q_heads % kv_heads != 0:
        raise ValueError(
            f"q heads ({q_heads}) must be a multiple of k/v heads ({kv_heads}) for grouped-query attention"
        )


# --------------------------------------------------------------------------- paged KV cache

#: The dimensions of a K or V page pool, whatever the layout (vLLM / FlashAttention's paged KV cache).
POOL_DIMS: tuple[str, ...] = ("num_pages", "page_size", "kv_heads", "head_dim")


class PagedKV(NamedTuple):
    """The sizes of a paged KV cache: the pages in each pool, tokens per page, block table columns."""

    num_pages: int
    page_size: int
    max_pages: int


def _pool_label(i: int) -> str:
    return f"dim {i} ({POOL_DIMS[i]})"


def paged_attention_dims(
    q_shape: Sequence[int],
    k_shape: Sequence[int],
    v_shape: Sequence[int],
    block_table_shape: Sequence[int],
    layout: str,
) -> tuple[AttentionDims, PagedKV]:
    """Check q (in ``layout``), the k/v page pools and the block table; return the call's sizes.

    k is a pool ``[num_pages, page_size, Hkv, D]`` and v ``[num_pages,
    page_size, Hkv, Dv]`` whatever ``layout`` (which orders q and the
    output only); the block table is ``[B, max_pages]``.  Key j of sequence b
    is row ``j % page_size`` of page ``block_table[b, j // page_size]``, so
    ``seq_kv`` is ``max_pages * page_size``.  Raises ``ValueError`` naming the
    tensor, the dimension and both values.
    """
    layout = normalize_layout(layout)
    if len(q_shape) != 4:
        raise ValueError(
            f"q must be 4-D ({layout}: {', '.join(_DIM_NAMES[c] for c in layout)}), "
            f"got {len(q_shape)}-D shape {tuple(q_shape)}"
        )
    for name, shape in (("k", k_shape), ("v", v_shape)):
        if len(shape) != 4:
            raise ValueError(
                f"{name} must be a 4-D page pool ({', '.join(POOL_DIMS)}) when block_table is given, "
                f"got {len(shape)}-D shape {tuple(shape)}"
            )
    if len(block_table_shape) != 2:
        raise ValueError(
            f"block_table must be 2-D (batch, max_pages), got {len(block_table_shape)}-D shape "
            f"{tuple(block_table_shape)}"
        )
    bq, hq, sq, d = split_shape(q_shape, layout)
    nk, pk, hk, dk = (int(x) for x in k_shape)
    nv, pv, hv, dv = (int(x) for x in v_shape)
    bt, max_pages = (int(x) for x in block_table_shape)

    if bt != bq:
        raise ValueError(f"batch mismatch: block_table has {bt} rows at dim 0 (batch), q has batch {bq}")
    if nv != nk:
        raise ValueError(f"page pool mismatch: v has {nv} pages at {_pool_label(0)}, k has {nk}")
    if pv != pk:
        raise ValueError(f"page size mismatch: v has page size {pv} at {_pool_label(1)}, k has {pk}")
    if hv != hk:
        raise ValueError(f"KV head mismatch: v has {hv} heads at {_pool_label(2)}, k has {hk}")
    if dk != d:
        raise ValueError(f"head_dim mismatch: k has head_dim {dk} at {_pool_label(3)}, q has {d}")
    if pk <= 0:
        raise ValueError(f"k has page size {pk} at {_pool_label(1)}; it must be positive")
    _check_heads_and_dims((("q", hq, _dim_label(layout, "h")), ("k", hk, _pool_label(2)),
                           ("q", d, _dim_label(layout, "d")), ("v", dv, _pool_label(3))), hq, hk)
    if nk <= 0 and bq * max_pages > 0:
        raise ValueError(
            f"k has {nk} pages at {_pool_label(0)}, but block_table ({bt}, {max_pages}) indexes pages of it"
        )
    return AttentionDims(bq, hq, hk, sq, max_pages * pk, d, dv), PagedKV(nk, pk, max_pages)
