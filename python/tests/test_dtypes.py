"""gqa.dtypes: names, sizes and the bf16 conversion (round to nearest, ties to even)."""

from __future__ import annotations

import numpy as np
import pytest

from gqa import dtypes


@pytest.mark.parametrize(
    "name, canon",
    [("f16", "f16"), ("float16", "f16"), ("half", "f16"), ("torch.float16", "f16"),
     ("bf16", "bf16"), ("bfloat16", "bf16"), ("torch.bfloat16", "bf16"),
     ("f32", "f32"), ("float32", "f32"), ("FP32", "f32"),
     (np.float16, "f16"), (np.dtype("float32"), "f32")],
)
def test_normalize_dtype(name, canon):
    assert dtypes.normalize_dtype(name) == canon


@pytest.mark.parametrize("bad", ["float64", "int8", np.float64, np.int32, "torch.float64", 3])
def test_normalize_dtype_rejects(bad):
    with pytest.raises(TypeError, match="unsupported dtype"):
        dtypes.normalize_dtype(bad)


def test_itemsize():
    assert [dtypes.itemsize(d) for d in ("f16", "bf16", "f32")] == [2, 2, 4]


def test_bf16_decode_known_patterns():
    bits = np.array([0x0000, 0x8000, 0x3F80, 0xBF80, 0x4049, 0x7F80, 0xFF80, 0x0001], dtype=np.uint16)
    got = dtypes.bf16_to_f32(bits)
    assert got.dtype == np.float32
    assert got[0] == 0.0 and np.signbit(got[1])
    assert got[2] == 1.0 and got[3] == -1.0
    assert got[4] == np.float32(3.140625)
    assert got[5] == np.inf and got[6] == -np.inf
    assert got[7] == np.float32(2.0**-133)  # smallest bf16 subnormal
    assert np.isnan(dtypes.bf16_to_f32(np.array([0x7FC0], dtype=np.uint16)))[0]


def test_bf16_rejects_float_input():
    with pytest.raises(TypeError, match="uint16"):
        dtypes.bf16_to_f32(np.ones(3, dtype=np.float32))


def _f32(bits: int) -> np.float32:
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


@pytest.mark.parametrize(
    "f32_bits, bf16_bits",
    [
        (0x3F800000, 0x3F80),  # exact
        (0x3F807FFF, 0x3F80),  # just below half: down
        (0x3F808000, 0x3F80),  # tie, even mantissa stays
        (0x3F818000, 0x3F82),  # tie, odd mantissa rounds up to even
        (0x3F808001, 0x3F81),  # just above half: up
        (0xBF808001, 0xBF81),  # negative, magnitude rounds up
        (0x7F7FFFFF, 0x7F80),  # float32 max overflows to +inf
        (0x7F800000, 0x7F80),  # +inf
        (0x00000001, 0x0000),  # tiny subnormal rounds to 0
    ],
)
def test_f32_to_bf16_rounding(f32_bits, bf16_bits):
    assert int(dtypes.f32_to_bf16(np.array([_f32(f32_bits)]))[0]) == bf16_bits


def test_f32_to_bf16_nan_stays_nan():
    nans = np.array([_f32(0x7F800001), _f32(0xFFC00000), np.nan], dtype=np.float32)
    back = dtypes.bf16_to_f32(dtypes.f32_to_bf16(nans))
    assert np.isnan(back).all()
    assert np.signbit(back[1])


def test_f32_to_bf16_is_nearest_with_ties_to_even():
    """Check every result against the two bf16 neighbours, computed independently in float64."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 0x7F7F0000, size=20000, dtype=np.uint32)
    bits[:100] = (bits[:100] & 0xFFFF0000) | 0x8000  # force exact ties
    x = bits.view(np.float32)
    got = dtypes.bf16_to_f32(dtypes.f32_to_bf16(x)).astype(np.float64)
    lo = (bits & 0xFFFF0000).view(np.float32).astype(np.float64)
    hi = ((bits & 0xFFFF0000) + 0x10000).view(np.float32).astype(np.float64)
    xd = x.astype(np.float64)
    d_lo, d_hi = xd - lo, hi - xd
    lo_even = ((bits >> 16) & 1) == 0
    expect = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo_even, lo, hi)))
    np.testing.assert_array_equal(got, expect)


def test_round_trip_of_bf16_values_is_exact():
    all_finite = np.arange(0x0000, 0x7F80, dtype=np.uint16)
    for sign in (0, 0x8000):
        bits = all_finite | np.uint16(sign)
        np.testing.assert_array_equal(dtypes.f32_to_bf16(dtypes.bf16_to_f32(bits)), bits)


def test_encode_decode():
    x = np.array([1.0, -2.5, 0.1], dtype=np.float32)
    assert dtypes.encode(x, "bf16").dtype == np.uint16
    assert dtypes.encode(x, "f16").dtype == np.float16
    np.testing.assert_array_equal(dtypes.decode(dtypes.encode(x, "f32"), "f32"), x)
    np.testing.assert_allclose(dtypes.decode(dtypes.encode(x, "bf16"), "bf16"), x, rtol=2**-8)
    np.testing.assert_allclose(dtypes.decode(dtypes.encode(x, "f16"), "f16"), x, rtol=2**-11)
