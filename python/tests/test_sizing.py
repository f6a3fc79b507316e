"""KV-cache bytes, the MHA comparison, FLOP counts (REFERENCE.md §1 numbers)."""

from __future__ import annotations

import pytest

import gqa

LLAMA3_70B = dict(layers=80, batch=1, head_dim=128, seq_len=131072, dtype="bf16")


def test_llama3_70b_kv_cache():
    assert gqa.kv_cache_bytes(kv_heads=8, **LLAMA3_70B) == 42_949_672_960  # 40 GiB
    assert gqa.kv_cache_bytes(kv_heads=64, **LLAMA3_70B) == 343_597_383_680  # 320 GiB
    assert gqa.kv_cache_bytes(80, 1, 8, 128, 131072) == 40 * 2**30  # bf16 is the default


def test_llama3_70b_comparison():
    c = gqa.kv_cache_comparison(q_heads=64, kv_heads=8, **LLAMA3_70B)
    assert c.gqa_bytes == 42_949_672_960
    assert c.mha_bytes == 343_597_383_680
    assert c.gqa_bytes_per_token == 327_680
    assert c.mha_bytes_per_token == 8 * 327_680
    assert c.factor == 8.0
    assert c.saving == 0.875


def test_kv_cache_dtypes_and_scaling():
    base = gqa.kv_cache_bytes(2, 3, 4, 64, 100, "f16")
    assert base == 2 * 2 * 3 * 4 * 64 * 100 * 2
    assert gqa.kv_cache_bytes(2, 3, 4, 64, 100, "f32") == 2 * base
    assert gqa.kv_cache_bytes(2, 3, 4, 64, 200, "bf16") == 2 * base
    assert gqa.kv_cache_bytes(2, 3, 4, 64, 0) == 0


@pytest.mark.parametrize("bad", [dict(layers=-1), dict(seq_len=1.5), dict(kv_heads=True)])
def test_kv_cache_rejects_bad_sizes(bad):
    args = dict(layers=1, batch=1, kv_heads=1, head_dim=1, seq_len=1) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        gqa.kv_cache_bytes(**args)


def test_kv_cache_rejects_bad_dtype():
    with pytest.raises(TypeError):
        gqa.kv_cache_bytes(1, 1, 1, 1, 1, dtype="int8")


def test_comparison_needs_divisible_heads():
    with pytest.raises(ValueError, match="multiple"):
        gqa.kv_cache_comparison(1, 1, 6, 4, 64, 10)


def test_flops_non_causal():
    # 4 * B * S * S * H * D for D = Dv, Sq = Skv
    assert gqa.attention_flops(2, 16, 1024, 1024, 128) == 4 * 2 * 1024 * 1024 * 16 * 128
    assert gqa.attention_flops(1, 1, 3, 5, 4, 6) == 2 * 3 * 5 * (4 + 6)


def test_flops_causal_square_is_half():
    full = gqa.attention_flops(2, 16, 1024, 1024, 128)
    assert gqa.attention_flops(2, 16, 1024, 1024, 128, causal=True) * 2 == full


def test_flops_causal_rectangular():
    # Skv_eff = (max(0, Skv - Sq) + Skv) / 2
    assert gqa.attention_flops(1, 1, 1, 8, 4, causal=True) == 2 * 1 * (7 + 8) / 2 * 8  # decode: ~Skv
    assert gqa.attention_flops(1, 1, 4, 8, 4, causal=True) == 2 * 4 * (4 + 8) / 2 * 8
    assert gqa.attention_flops(1, 1, 8, 4, 4, causal=True) == 2 * 8 * (0 + 4) / 2 * 8
    assert isinstance(gqa.attention_flops(1, 1, 2, 3, 4, causal=True), int)


def test_flops_ignore_kv_heads():
    # no kv_heads argument at all: the convention counts query heads only
    assert gqa.attention_flops(1, 64, 1, 4096, 128) == 2 * 64 * 4096 * 256


def test_decode_min_bytes():
    assert gqa.decode_min_bytes(1, 8, 131072, 128) == 2 * 8 * 131072 * 128 * 2
    assert gqa.decode_min_bytes(2, 1, 10, 64, 32, "f32") == 2 * 10 * (64 + 32) * 4
