"""gqa.attention on host arrays: the compiler's CPU path in process (libgqa_compiler.so), no subprocess."""

from __future__ import annotations

import time

import numpy as np
import pytest

import gqa
from gqa import reference
from gqa.dtypes import bf16_to_f32, f32_to_bf16
from conftest import REAL_COMPILER_LIB

pytestmark = [pytest.mark.skipif(REAL_COMPILER_LIB is None, reason="libgqa_compiler.so is not built"),
              pytest.mark.usefixtures("real_env")]


def _qkv(rng, b, hq, hkv, sq, skv, d, dv=None, layout="bhsd", dtype=np.float32):
    dv = dv or d
    def shape(h, s, w):
        return (b, h, s, w) if layout == "bhsd" else (b, s, h, w)
    return tuple(rng.standard_normal(shape(h, s, w)).astype(dtype)
                 for h, s, w in ((hq, sq, d), (hkv, skv, d), (hkv, skv, dv)))


CASES = [
    dict(b=2, hq=8, hkv=2, sq=9, skv=70, d=64, causal=True, kv_lens=[70, 0]),
    dict(b=1, hq=4, hkv=4, sq=33, skv=20, d=40, dv=24, layout="bshd", causal=True),
    dict(b=3, hq=8, hkv=1, sq=1, skv=300, d=32, window=(50, 0), softcap=5.0, kv_lens=[300, 1, 77]),
    dict(b=1, hq=6, hkv=3, sq=17, skv=17, d=16, scale=0.3, sinks=True, return_lse=True),
    dict(b=2, hq=8, hkv=2, sq=1, skv=500, d=64, sinks=True, return_lse=True, schedule="sm_80"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_matches_reference(case):
    rng = np.random.default_rng(0)
    case = dict(case)
    shape = {n: case.pop(n) for n in ("b", "hq", "hkv", "sq", "skv", "d")}
    dv, layout = case.pop("dv", None), case.get("layout", "bhsd")
    q, k, v = _qkv(rng, *shape.values(), dv=dv, layout=layout)
    if case.pop("sinks", False):
        case["sinks"] = rng.standard_normal(shape["hq"]).astype(np.float32) * 2
    schedule = case.pop("schedule", "cpu")
    want = reference.attention(q, k, v, **case)
    if schedule == "cpu":
        got = gqa.attention(q, k, v, **case)
    else:
        got = gqa.host.attention_host(q, k, v, schedule=schedule, **case)
    if case.get("return_lse"):
        (got, lse), (want, want_lse) = got, want
        finite = np.isfinite(want_lse)
        np.testing.assert_array_equal(np.isfinite(lse), finite)
        np.testing.assert_allclose(lse[finite], want_lse[finite], atol=1e-4)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_f16_and_bf16():
    rng = np.random.default_rng(1)
    q, k, v = _qkv(rng, 2, 4, 2, 5, 40, 32)
    want = reference.attention(q, k, v, causal=True)
    half = gqa.attention(*(x.astype(np.float16) for x in (q, k, v)), causal=True)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), want, atol=4e-3)
    bits = [f32_to_bf16(x) for x in (q, k, v)]
    out = gqa.host.attention_host(*bits, causal=True, dtype="bf16")
    assert out.dtype == np.uint16
    np.testing.assert_allclose(bf16_to_f32(out), reference.attention(*(bf16_to_f32(x) for x in bits), causal=True),
                               atol=3e-2)


def test_paged():
    rng = np.random.default_rng(2)
    q, k, v = _qkv(rng, 2, 8, 2, 1, 64, 32, layout="bshd")
    pool_k = rng.standard_normal((10, 16, 2, 32)).astype(np.float32)
    pool_v = rng.standard_normal((10, 16, 2, 32)).astype(np.float32)
    table = np.array([[3, 0, 7, 1], [9, 2, 5, 4]], dtype=np.int32)
    kw = dict(layout="bshd", block_table=table, kv_lens=[64, 20])
    np.testing.assert_allclose(gqa.attention(q, pool_k, pool_v, **kw), reference.attention(q, pool_k, pool_v, **kw),
                               atol=1e-4)
    with pytest.raises(ValueError, match=r"block_table entries must lie in \[0, 10\)"):
        gqa.attention(q, pool_k, pool_v, layout="bshd", block_table=table + 1)


def test_out_and_empty_sizes():
    rng = np.random.default_rng(3)
    q, k, v = _qkv(rng, 1, 4, 2, 3, 10, 8)
    out = np.full_like(q, np.nan)
    assert gqa.attention(q, k, v, out=out) is out
    np.testing.assert_allclose(out, reference.attention(q, k, v), atol=1e-5)
    empty_kv = np.zeros((1, 2, 0, 8), np.float32)
    sinks = np.arange(4, dtype=np.float32)
    o, lse = gqa.attention(q, empty_kv, empty_kv, sinks=sinks, return_lse=True)
    np.testing.assert_array_equal(o, 0.0)
    np.testing.assert_array_equal(lse, np.broadcast_to(sinks[:, None], (1, 4, 3)))
    assert gqa.attention(q[:0], k[:0], v[:0]).shape == (0, 4, 3, 8)


def test_errors_name_the_argument():
    rng = np.random.default_rng(4)
    q, k, v = _qkv(rng, 1, 4, 2, 3, 10, 8)
    with pytest.raises(ValueError, match=r"kv_lens must lie in \[0, 10\]"):
        gqa.attention(q, k, v, kv_lens=[11])
    with pytest.raises(ValueError, match=r"sinks must have shape \(4,\)"):
        gqa.attention(q, k, v, sinks=np.zeros(3))
    with pytest.raises(TypeError, match="q, k and v must share one dtype"):
        gqa.attention(q, k.astype(np.float16), v)
    with pytest.raises(ValueError, match="out must be a contiguous float32 array of shape"):
        gqa.attention(q, k, v, out=np.zeros((1, 4, 3, 7), np.float32))
    with pytest.raises(TypeError, match="must be float16, bfloat16 or float32"):
        gqa.attention(q.astype(np.float64), k, v)
    with pytest.raises(ValueError, match="schedule must be cpu, sm_80 or sm_90"):
        gqa.host.attention_host(q, k, v, schedule="sm_70")


def test_a_cached_call_costs_microseconds():
    """The first call compiles (the JIT); later ones reuse the kernel: report both."""
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng, 1, 2, 1, 1, 4, 8)
    start = time.perf_counter()
    gqa.attention(q, k, v, scale=0.123)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(100):
        gqa.attention(q, k, v, scale=0.123)
    cached = (time.perf_counter() - start) / 100
    print(f"first call (compile + run) {first * 1e3:.1f} ms, cached call {cached * 1e6:.0f} us")
    assert cached < first
