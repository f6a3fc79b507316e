"""gqa.reference with a paged KV cache: gather_pages and attention(block_table=...).

A paged call must give exactly what the contiguous call on the gathered K/V
gives.  The pools are built from contiguous K/V through a shuffled block table,
and every slot no sequence uses (spare pages, the tail past kv_lens) is NaN, so
reading a wrong page shows in the output.
"""

from __future__ import annotations

import numpy as np
import pytest

from gqa import reference
from test_reference import naive_attention


def to_pools(k, v, page_size, layout, rng, spare_pages=3, kv_lens=None):
    """Scatter contiguous k/v (in layout) into NaN-filled pools through a shuffled block table.

    Returns (k_pool, v_pool, block_table) with max_pages = ceil(Skv / page_size);
    slots past the end of each sequence (Skv, or kv_lens[b]) stay NaN.
    """
    if layout == "bhsd":
        k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)  # now (B, S, H, D)
    B, S, H, D = k.shape
    Dv = v.shape[3]
    max_pages = -(-S // page_size)
    num_pages = B * max_pages + spare_pages
    table = rng.permutation(num_pages)[: B * max_pages].reshape(B, max_pages).astype(np.int32)
    k_pool = np.full((num_pages, page_size, H, D), np.nan)
    v_pool = np.full((num_pages, page_size, H, Dv), np.nan)
    for b in range(B):
        length = S if kv_lens is None else int(kv_lens[b])
        for j in range(length):
            k_pool[table[b, j // page_size], j % page_size] = k[b, j]
            v_pool[table[b, j // page_size], j % page_size] = v[b, j]
    return k_pool, v_pool, table


def make_qkv(rng, layout, B=2, Hq=4, Hkv=2, Sq=5, Skv=32, D=8, Dv=None):
    Dv = D if Dv is None else Dv

    def shape(h, s, d):
        return (B, h, s, d) if layout == "bhsd" else (B, s, h, d)

    return (rng.standard_normal(shape(Hq, Sq, D)), rng.standard_normal(shape(Hkv, Skv, D)),
            rng.standard_normal(shape(Hkv, Skv, Dv)))


# ----------------------------------------------------------------------------- gather_pages


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_gather_pages_by_hand(layout):
    pool = np.arange(4 * 2 * 1 * 1, dtype=np.float32).reshape(4, 2, 1, 1)  # page p holds 2p, 2p + 1
    table = np.array([[2, 0], [3, 3]])
    got = reference.gather_pages(pool, table, layout)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    want = np.array([[4, 5, 0, 1], [6, 7, 6, 7]], dtype=np.float32)
    assert got.shape == ((2, 1, 4, 1) if layout == "bhsd" else (2, 4, 1, 1))
    np.testing.assert_array_equal(got.reshape(2, 4), want)


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("page_size", [1, 16, 5])
def test_gather_pages_round_trip(layout, page_size):
    rng = np.random.default_rng(page_size)
    _, k, v = make_qkv(rng, layout, Skv=30, Dv=3)
    k_pool, v_pool, table = to_pools(k, v, page_size, layout, rng)
    seq = table.shape[1] * page_size
    for contiguous, pool in ((k, k_pool), (v, v_pool)):
        got = reference.gather_pages(pool, table, layout)
        axis = 2 if layout == "bhsd" else 1
        assert got.shape[axis] == seq >= 30
        np.testing.assert_array_equal(np.take(got, np.arange(30), axis=axis), contiguous)
        # past the 30 keys: the NaN tail of the last page (none with page size 1, 2 slots with 16, none with 5)
        assert np.isnan(np.take(got, np.arange(30, seq), axis=axis)).all()


def test_gather_pages_keeps_integer_dtype():
    pool = np.arange(12, dtype=np.uint16).reshape(3, 2, 1, 2)  # e.g. bf16 bit patterns
    got = reference.gather_pages(pool, [[1, 2]], "bshd")
    assert got.dtype == np.uint16 and got.shape == (1, 4, 1, 2)
    np.testing.assert_array_equal(got.ravel(), np.arange(4, 12))


@pytest.mark.parametrize(
    "pool_shape, table, exc, match",
    [
        ((4, 2, 1), [[0]], ValueError, r"cache must be a 4-D page pool \(num_pages, page_size, kv_heads, head_dim\), "
                                       r"got 3-D shape \(4, 2, 1\)"),
        ((4, 2, 1, 8), [0, 1], ValueError, r"block_table must be 2-D \(batch, max_pages\), got 1-D shape \(2,\)"),
        ((4, 2, 1, 8), [[0.0, 1.0]], TypeError, r"block_table must hold integers \(page indices\), got dtype float64"),
        ((4, 2, 1, 8), [[0, 4]], ValueError, r"block_table entries must lie in \[0, 4\) .* got 4 at \[0, 1\] "
                                             r"\(1 entry out of range\)"),
        ((4, 2, 1, 8), [[0, 1], [-1, 9]], ValueError, r"got -1 at \[1, 0\] \(2 entries out of range\)"),
    ],
)
def test_gather_pages_errors(pool_shape, table, exc, match):
    with pytest.raises(exc, match=match):
        reference.gather_pages(np.zeros(pool_shape), table, "bhsd")


# ----------------------------------------------------------------------------- attention(block_table=)


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("page_size", [1, 16, 7])
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(causal=True),
        dict(window=(6, 2)),
        dict(causal=True, window=(9, -1), softcap=5.0, scale=0.3),
        dict(kv_lens=[32, 11], causal=True),
        dict(kv_lens=[0, 20], window=(4, 4)),
    ],
    ids=["none", "causal", "window", "causal-window-softcap", "kv_lens-causal", "kv_lens-window"],
)
def test_paged_equals_contiguous(layout, page_size, options):
    rng = np.random.default_rng(1000 * page_size + len(options))
    seq = -(-32 // page_size) * page_size  # 32 with page sizes 1 and 16, 35 with 7 (which does not divide 32)
    q, k, v = make_qkv(rng, layout, Skv=seq, Dv=6)
    # Slots past kv_lens[b] (the last page's tail, whole pages) stay NaN in the pools.
    k_pool, v_pool, table = to_pools(k, v, page_size, layout, rng, kv_lens=options.get("kv_lens"))
    assert table.shape == (2, seq // page_size)
    got = reference.attention(q, k_pool, v_pool, layout=layout, block_table=table, **options)
    assert got.shape == ((2, 4, 5, 6) if layout == "bhsd" else (2, 5, 4, 6))
    assert np.isfinite(got).all(), "a NaN slot (spare page or unused tail) was read"
    np.testing.assert_array_equal(got, reference.attention(q, k, v, layout=layout, **options))


def test_paged_against_naive_loop():
    rng = np.random.default_rng(7)
    q, k, v = make_qkv(rng, "bshd", B=2, Hq=6, Hkv=3, Sq=4, Skv=12, D=4)
    k_pool, v_pool, table = to_pools(k, v, 4, "bshd", rng)
    got = reference.attention(q, k_pool, v_pool, layout="bshd", block_table=table, causal=True)
    np.testing.assert_allclose(got, naive_attention(q, k, v, layout="bshd", causal=True), rtol=1e-12, atol=1e-12)


def test_paged_block_table_may_repeat_pages():
    """Two sequences sharing a prefix page (prefix caching) read the same page."""
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 2, 1, 4))
    k_pool, v_pool = rng.standard_normal((3, 2, 1, 4)), rng.standard_normal((3, 2, 1, 4))
    table = np.array([[0, 1], [0, 2]])
    got = reference.attention(q, k_pool, v_pool, layout="bhsd", block_table=table)
    k = reference.gather_pages(k_pool, table, "bhsd")
    v = reference.gather_pages(v_pool, table, "bhsd")
    np.testing.assert_array_equal(got, reference.attention(q, k, v, layout="bhsd"))
    np.testing.assert_array_equal(k[0, :, :2], k[1, :, :2])


def test_paged_float16_pools():
    rng = np.random.default_rng(5)
    q, k, v = make_qkv(rng, "bhsd", Skv=16)
    k_pool, v_pool, table = to_pools(k, v, 4, "bhsd", rng, spare_pages=0)
    got = reference.attention(q.astype(np.float16), k_pool.astype(np.float16), v_pool.astype(np.float16),
                              block_table=table)
    want = reference.attention(q.astype(np.float16), k.astype(np.float16), v.astype(np.float16))
    np.testing.assert_array_equal(got, want)


def test_nan_past_kv_lens_is_never_read_contiguous():
    """The reference does not read keys no query sees, contiguous K/V included."""
    rng = np.random.default_rng(11)
    q, k, v = make_qkv(rng, "bhsd", Skv=8)
    lens = np.array([5, 8])
    k2, v2 = k.copy(), v.copy()
    k2[0, :, 5:] = np.nan
    v2[0, :, 5:] = np.nan
    got = reference.attention(q, k2, v2, kv_lens=lens)
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got, reference.attention(q, k, v, kv_lens=lens))


def test_paged_empty_block_table():
    q = np.ones((2, 2, 3, 4))
    pool = np.zeros((1, 4, 1, 4))
    out = reference.attention(q, pool, pool, block_table=np.zeros((2, 0), dtype=np.int32))
    assert out.shape == (2, 2, 3, 4) and not out.any()  # no key: rows are 0


PAGED_ERRORS = [
    # (q shape, k pool shape, v pool shape, table shape, exception, match), layout bhsd
    ((2, 4, 3, 8), (6, 4, 2, 8), (6, 4, 2, 8, 1), (2, 3), ValueError,
     r"v must be a 4-D page pool \(num_pages, page_size, kv_heads, head_dim\) when block_table is given, "
     r"got 5-D shape"),
    ((2, 4, 3, 8), (6, 4, 2, 8), (6, 4, 2, 8), (3, 3), ValueError,
     r"batch mismatch: block_table has 3 rows at dim 0 \(batch\), q has batch 2"),
    ((2, 4, 3, 8), (6, 4, 2, 8), (5, 4, 2, 8), (2, 3), ValueError,
     r"page pool mismatch: v has 5 pages at dim 0 \(num_pages\), k has 6"),
    ((2, 4, 3, 8), (6, 4, 2, 8), (6, 8, 2, 8), (2, 3), ValueError,
     r"page size mismatch: v has page size 8 at dim 1 \(page_size\), k has 4"),
    ((2, 4, 3, 8), (6, 4, 2, 8), (6, 4, 1, 8), (2, 3), ValueError,
     r"KV head mismatch: v has 1 heads at dim 2 \(kv_heads\), k has 2"),
    ((2, 4, 3, 8), (6, 4, 2, 16), (6, 4, 2, 8), (2, 3), ValueError,
     r"head_dim mismatch: k has head_dim 16 at dim 3 \(head_dim\), q has 8"),
    ((2, 4, 3, 8), (6, 4, 3, 8), (6, 4, 3, 8), (2, 3), ValueError,
     r"q heads \(4\) must be a multiple of k/v heads \(3\)"),
    ((2, 4, 3, 8), (6, 0, 2, 8), (6, 0, 2, 8), (2, 3), ValueError,
     r"k has page size 0 at dim 1 \(page_size\); it must be positive"),
    ((2, 4, 3, 8), (0, 4, 2, 8), (0, 4, 2, 8), (2, 3), ValueError,
     r"k has 0 pages at dim 0 \(num_pages\), but block_table \(2, 3\) indexes pages of it"),
    ((2, 4, 3, 8), (6, 4, 2, 8), (6, 4, 2, 8), (2, 3, 1), ValueError,
     r"block_table must be 2-D \(batch, max_pages\), got 3-D shape \(2, 3, 1\)"),
]


@pytest.mark.parametrize("q_shape, k_shape, v_shape, table_shape, exc, match", PAGED_ERRORS)
def test_paged_attention_shape_errors(q_shape, k_shape, v_shape, table_shape, exc, match):
    with pytest.raises(exc, match=match):
        reference.attention(np.zeros(q_shape), np.zeros(k_shape), np.zeros(v_shape),
                            block_table=np.zeros(table_shape, dtype=np.int32))


def test_paged_attention_value_errors():
    q, pool = np.zeros((2, 4, 3, 8)), np.zeros((6, 4, 2, 8))
    with pytest.raises(ValueError, match=r"block_table entries must lie in \[0, 6\) .* got 6 at \[1, 2\]"):
        reference.attention(q, pool, pool, block_table=[[0, 1, 2], [3, 4, 6]])
    with pytest.raises(ValueError, match=r"block_table entries must lie in \[0, 6\) .* got -1 at \[0, 0\]"):
        reference.attention(q, pool, pool, block_table=[[-1, 1, 2], [3, 4, 5]])
    with pytest.raises(TypeError, match="block_table must hold integers"):
        reference.attention(q, pool, pool, block_table=[[0.5, 1, 2], [3, 4, 5]])
    # kv_lens are checked against seq_kv = max_pages * page_size = 12
    with pytest.raises(ValueError, match=r"kv_lens must lie in \[0, 12\]"):
        reference.attention(q, pool, pool, block_table=[[0, 1, 2], [3, 4, 5]], kv_lens=[12, 13])
    # bshd: the pools keep their layout, q is read in bshd
    qb = np.zeros((2, 3, 4, 8))
    out = reference.attention(qb, pool, pool, layout="bshd", block_table=[[0, 1, 2], [3, 4, 5]])
    assert out.shape == (2, 3, 4, 8)
