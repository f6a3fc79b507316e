"""KV-cache sizes, FLOP counts and the decode memory floor (REFERENCE.md §1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .dtypes import itemsize


def _positive(name: str, value: int, *, allow_zero: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return value


def kv_cache_bytes(
    layers: int,
    batch: int,
    kv_heads: int,
    head_dim: int,
    seq_len: int,
    dtype: Any = "bf16",
) -> int:
    """Bytes of a KV cache: ``2 (K and V) * layers * batch * kv_heads * head_dim * seq_len * itemsize``."""
    for name, value in (("layers", layers), ("batch", batch), ("kv_heads", kv_heads),
                        ("head_dim", head_dim), ("seq_len", seq_len)):
        _positive(name, value)
    return 2 * layers * batch * kv_heads * head_dim * seq_len * itemsize(dtype)


@dataclass(frozen=True)
class KVCacheComparison:
    """The KV cache of a GQA model next to its MHA equivalent (one KV head per query head)."""

    gqa_bytes: int
    mha_bytes: int
    gqa_bytes_per_token: int
    mha_bytes_per_token: int

    @property
    def factor(self) -> float:
        """How many times smaller the GQA cache is (Hq / Hkv)."""
        return self.mha_bytes / self.gqa_bytes

    @property
    def saving(self) -> float:
        """Fraction of the MHA cache that GQA saves (1 - Hkv / Hq), e.g. 0.875."""
        return 1.0 - self.gqa_bytes / self.mha_bytes


def kv_cache_comparison(
    layers: int,
    batch: int,
    q_heads: int,
    kv_heads: int,
    head_dim: int,
    seq_len: int,
    dtype: Any = "bf16",
) -> KVCacheComparison:
    """Compare the KV cache of GQA (``kv_heads``) with MHA (``q_heads`` KV heads)."""
    _positive("q_heads", q_heads, allow_zero=False)
    _positive("kv_heads", kv_heads, allow_zero=False)
    if q_heads % kv_heads:
        raise ValueError(f"q_heads ({q_heads}) must be a multiple of kv_heads ({kv_heads})")
    return KVCacheComparison(
        gqa_bytes=kv_cache_bytes(layers, batch, kv_heads, head_dim, seq_len, dtype),
        mha_bytes=kv_cache_bytes(layers, batch, q_heads, head_dim, seq_len, dtype),
        gqa_bytes_per_token=kv_cache_bytes(layers, batch, kv_heads, head_dim, 1, dtype),
        mha_bytes_per_token=kv_cache_bytes(layers, batch, q_heads, head_dim, 1, dtype),
    )


def attention_flops(
    batch: int,
    q_heads: int,
    seq_q: int,
    seq_kv: int,
    head_dim: int,
    head_dim_v: Optional[int] = None,
    *,
    causal: bool = False,
) -> int:
    """Forward FLOPs in the FlashAttention convention: ``2 * B * Hq * Sq * Skv_eff * (D + Dv)``.

    ``Skv_eff = Skv``, or with ``causal`` ``(max(0, Skv - Sq) + Skv) / 2``
    (exactly half when Sq = Skv).  KV heads do not change the count.  The
    result is an exact integer (``2 * Skv_eff`` is always an integer).
    """
    dv = head_dim if head_dim_v is None else head_dim_v
    for name, value in (("batch", batch), ("q_heads", q_heads), ("seq_q", seq_q),
                        ("seq_kv", seq_kv), ("head_dim", head_dim), ("head_dim_v", dv)):
        _positive(name, value)
    twice_skv_eff = (max(0, seq_kv - seq_q) + seq_kv) if causal else 2 * seq_kv
    return batch * q_heads * seq_q * twice_skv_eff * (head_dim + dv)


def decode_min_bytes(
    batch: int,
    kv_heads: int,
    seq_kv: int,
    head_dim: int,
    head_dim_v: Optional[int] = None,
    dtype: Any = "bf16",
) -> int:
    """Bytes one decode step must read at least: every KV head of the cache once (Q, O ignored)."""
    dv = head_dim if head_dim_v is None else head_dim_v
    for name, value in (("batch", batch), ("kv_heads", kv_heads), ("seq_kv", seq_kv),
                        ("head_dim", head_dim), ("head_dim_v", dv)):
        _positive(name, value)
    return batch * kv_heads * seq_kv * (head_dim + dv) * itemsize(dtype)
