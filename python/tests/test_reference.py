"""gqa.reference.attention against a naive per-element loop and hand-computed cases."""

from __future__ import annotations

import math
import numpy as np
import pytest

from gqa import reference
from gqa.dtypes import bf16_to_f32, f32_to_bf16


def naive_attention(q, k, v, *, layout="bhsd", causal=False, window=None, kv_lens=None,
                    softcap=None, scale=None) -> np.ndarray:
    """REFERENCE.md §1 written out element by element, with plain Python floats.

    Shares no code with gqa: its own layout indexing, mask predicate and softmax.
    """
    def at(x, b, h, s, d):
        return float(x[b, h, s, d] if layout == "bhsd" else x[b, s, h, d])

    if layout == "bhsd":
        B, Hq, Sq, D = q.shape
        _, Hkv, Skv, _ = k.shape
        Dv = v.shape[3]
        out = np.zeros((B, Hq, Sq, Dv))
    else:
        B, Sq, Hq, D = q.shape
        _, Skv, Hkv, _ = k.shape
        Dv = v.shape[3]
        out = np.zeros((B, Sq, Hq, Dv))
    g = Hq // Hkv
    sc = 1.0 / math.sqrt(D) if scale is None else scale
    for b in range(B):
        length = Skv if kv_lens is None else int(kv_lens[b])
        off = length - Sq
        for h in range(Hq):
            kvh = h // g
            for i in range(Sq):
                scores = {}
                for j in range(Skv):
                    ok = j < length
                    if causal and not j <= i + off:
                        ok = False
                    if window is not None:
                        left, right = window
                        if left != -1 and not i + off - left <= j:
                            ok = False
                        if right != -1 and not j <= i + off + right:
                            ok = False
                    if not ok:
                        continue
                    s = sc * sum(at(q, b, h, i, d) * at(k, b, kvh, j, d) for d in range(D))
                    if softcap:
                        s = softcap * math.tanh(s / softcap)
                    scores[j] = s
                if not scores:
                    continue  # fully masked row: 0
                m = max(scores.values())
                weights = {j: math.exp(s - m) for j, s in scores.items()}
                total = sum(weights.values())
                for d in range(Dv):
                    val = sum(w * at(v, b, kvh, j, d) for j, w in weights.items()) / total
                    if layout == "bhsd":
                        out[b, h, i, d] = val
                    else:
                        out[b, i, h, d] = val
    return out


def make(layout, B, Hq, Hkv, Sq, Skv, D, Dv=None, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    Dv = D if Dv is None else Dv

    def t(h, s, d):
        shape = (B, h, s, d) if layout == "bhsd" else (B, s, h, d)
        return rng.standard_normal(shape).astype(dtype)

    return t(Hq, Sq, D), t(Hkv, Skv, D), t(Hkv, Skv, Dv)


def _random_cases(n: int) -> list[dict]:
    rng = np.random.default_rng(1234)
    cases = []
    for _ in range(n):
        Hkv = int(rng.choice([1, 2, 3]))
        g = int(rng.choice([1, 2, 4]))
        B = int(rng.integers(1, 3))
        Sq, Skv = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        D = int(rng.choice([1, 3, 4]))
        Dv = int(rng.choice([D, 2, 5]))
        causal = bool(rng.integers(0, 2))
        window = None
        if rng.integers(0, 2):
            window = (int(rng.integers(-1, 4)), int(rng.integers(-1, 4)))
        kv_lens = None
        if rng.integers(0, 2):
            kv_lens = [int(x) for x in rng.integers(0, Skv + 1, size=B)]
        softcap = float(rng.choice([0.5, 3.0])) if rng.integers(0, 3) == 0 else None
        scale = float(rng.uniform(0.2, 2.0)) if rng.integers(0, 3) == 0 else None
        cases.append(dict(layout=str(rng.choice(["bhsd", "bshd"])), B=B, Hq=Hkv * g, Hkv=Hkv,
                          Sq=Sq, Skv=Skv, D=D, Dv=Dv, causal=causal, window=window,
                          kv_lens=kv_lens, softcap=softcap, scale=scale))
    return cases


@pytest.mark.parametrize("case", _random_cases(80), ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_matches_naive_loop(case):
    c = dict(case)
    q, k, v = make(c.pop("layout"), c.pop("B"), c.pop("Hq"), c.pop("Hkv"), c.pop("Sq"), c.pop("Skv"),
                   c.pop("D"), c.pop("Dv"), seed=7)
    layout = case["layout"]
    got = reference.attention(q, k, v, layout=layout, **c)
    want = naive_attention(q, k, v, layout=layout, **c)
    assert got.shape == want.shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("Hq,Hkv", [(4, 4), (4, 2), (4, 1), (6, 3)])  # MHA, GQA, MQA, g=2
def test_group_mappings_match_naive(layout, Hq, Hkv):
    q, k, v = make(layout, 2, Hq, Hkv, 5, 7, 4, 3, seed=3)
    for causal in (False, True):
        np.testing.assert_allclose(
            reference.attention(q, k, v, layout=layout, causal=causal),
            naive_attention(q, k, v, layout=layout, causal=causal), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- hand-computed


def uniform_case(B, Hq, Hkv, Sq, Skv, Dv, seed=0):
    """q = 0 makes every visible key equally likely: each row is the mean of its visible V rows."""
    rng = np.random.default_rng(seed)
    q = np.zeros((B, Hq, Sq, 2))
    k = rng.standard_normal((B, Hkv, Skv, 2))
    v = rng.standard_normal((B, Hkv, Skv, Dv))
    return q, k, v


def mean_rows(v_rows: np.ndarray) -> np.ndarray:
    return v_rows.mean(axis=0) if len(v_rows) else np.zeros(v_rows.shape[-1])


def test_single_key_returns_v():
    q, k, v = make("bhsd", 1, 4, 2, 1, 1, 3, 2)
    out = reference.attention(q, k, v)
    for h in range(4):
        np.testing.assert_allclose(out[0, h, 0], v[0, h // 2, 0])


def test_two_keys_hand_softmax():
    # s = [0, ln 3] -> weights [1/4, 3/4]; v = [4, 8] -> 1 + 6 = 7
    q = np.ones((1, 1, 1, 1))
    k = np.array([0.0, math.log(3.0)]).reshape(1, 1, 2, 1)
    v = np.array([4.0, 8.0]).reshape(1, 1, 2, 1)
    assert reference.attention(q, k, v, scale=1.0)[0, 0, 0, 0] == pytest.approx(7.0, rel=1e-14)
    # default scale 1/sqrt(D) with D = 4: same scores when q is 2 in every component
    q4 = np.full((1, 1, 1, 4), 2.0)
    k4 = np.zeros((1, 1, 2, 4))
    k4[0, 0, 1, 0] = math.log(3.0)
    assert reference.attention(q4, k4, v)[0, 0, 0, 0] == pytest.approx(7.0, rel=1e-14)


def test_softcap_hand_value():
    q = np.ones((1, 1, 1, 1))
    k = np.array([0.0, 100.0]).reshape(1, 1, 2, 1)
    v = np.array([0.0, 1.0]).reshape(1, 1, 2, 1)
    e = math.exp(math.tanh(100.0))
    got = reference.attention(q, k, v, scale=1.0, softcap=1.0)[0, 0, 0, 0]
    assert got == pytest.approx(e / (1 + e), rel=1e-14)
    assert reference.attention(q, k, v, scale=1.0)[0, 0, 0, 0] == pytest.approx(1.0)


def test_gqa_head_mapping():
    q, k, v = uniform_case(1, 6, 2, 1, 4, 3)
    out = reference.attention(q, k, v)
    for h in range(6):
        np.testing.assert_allclose(out[0, h, 0], v[0, h // 3].mean(axis=0))


def test_all_keys_masked_gives_zero():
    q, k, v = make("bhsd", 2, 2, 1, 3, 4, 2)
    out = reference.attention(q, k, v, kv_lens=[0, 4])
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[0], 0.0)
    assert np.abs(out[1]).sum() > 0
    out = reference.attention(q, k, v, kv_lens=np.array([0, 0], dtype=np.int32), causal=True)
    np.testing.assert_array_equal(out, 0.0)


def test_causal_square_is_lower_triangular():
    ok = reference.visible(4, 4, causal=True)
    np.testing.assert_array_equal(ok, np.tril(np.ones((4, 4), dtype=bool)))


def test_causal_more_queries_than_keys():
    # Sq = 5, Skv = 3: off = -2, row i sees j <= i - 2: rows 0 and 1 see nothing.
    q, k, v = uniform_case(1, 1, 1, 5, 3, 2)
    out = reference.attention(q, k, v, causal=True)[0, 0]
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(out[1], 0.0)
    for i in range(2, 5):
        np.testing.assert_allclose(out[i], mean_rows(v[0, 0, : i - 1]))


def test_causal_decode_sees_everything():
    q, k, v = uniform_case(1, 2, 1, 1, 6, 3)
    out = reference.attention(q, k, v, causal=True)
    np.testing.assert_allclose(out[0, 1, 0], v[0, 0].mean(axis=0))


def test_causal_aligned_against_kv_lens():
    # Skv = 6, len = 4, Sq = 2: off = 2; row 0 sees j <= 2, row 1 sees j <= 3 (< 4).
    q, k, v = uniform_case(2, 1, 1, 2, 6, 2)
    out = reference.attention(q, k, v, causal=True, kv_lens=[4, 6])
    np.testing.assert_allclose(out[0, 0, 0], mean_rows(v[0, 0, :3]))
    np.testing.assert_allclose(out[0, 0, 1], mean_rows(v[0, 0, :4]))
    np.testing.assert_allclose(out[1, 0, 0], mean_rows(v[1, 0, :5]))
    np.testing.assert_allclose(out[1, 0, 1], mean_rows(v[1, 0, :6]))


def test_kv_lens_without_mask_hides_the_tail():
    q, k, v = uniform_case(1, 1, 1, 3, 5, 2)
    out = reference.attention(q, k, v, kv_lens=[2])
    for i in range(3):
        np.testing.assert_allclose(out[0, 0, i], mean_rows(v[0, 0, :2]))


@pytest.mark.parametrize("left,right", [(0, 0), (1, 0), (2, 1), (-1, 1), (1, -1), (0, 2)])
def test_window_edges(left, right):
    S = 5
    q, k, v = uniform_case(1, 1, 1, S, S, 2)
    out = reference.attention(q, k, v, window=(left, right))[0, 0]
    for i in range(S):
        lo = 0 if left == -1 else max(0, i - left)
        hi = S if right == -1 else min(S, i + right + 1)
        np.testing.assert_allclose(out[i], mean_rows(v[0, 0, lo:hi]), err_msg=f"row {i}")


def test_window_zero_zero_is_the_diagonal():
    q, k, v = make("bhsd", 1, 2, 1, 4, 4, 3, 2)
    out = reference.attention(q, k, v, window=(0, 0))
    for h in range(2):
        np.testing.assert_allclose(out[0, h], v[0, 0])


def test_window_aligned_bottom_right():
    # Sq = 2, Skv = 6, off = 4; window (1, 0): row 0 sees j in [3, 4], row 1 sees [4, 5].
    q, k, v = uniform_case(1, 1, 1, 2, 6, 2)
    out = reference.attention(q, k, v, window=(1, 0))[0, 0]
    np.testing.assert_allclose(out[0], mean_rows(v[0, 0, 3:5]))
    np.testing.assert_allclose(out[1], mean_rows(v[0, 0, 4:6]))


def test_causal_plus_window_is_the_intersection():
    q, k, v = make("bhsd", 1, 2, 1, 6, 8, 3)
    both = reference.attention(q, k, v, causal=True, window=(2, 3))
    np.testing.assert_allclose(both, reference.attention(q, k, v, window=(2, 0)), rtol=1e-15)
    np.testing.assert_allclose(reference.attention(q, k, v, window=(-1, 0)),
                               reference.attention(q, k, v, causal=True), rtol=1e-15)


def test_layouts_agree():
    q, k, v = make("bhsd", 2, 4, 2, 3, 5, 4, 6)
    t = (0, 2, 1, 3)
    a = reference.attention(q, k, v, causal=True, kv_lens=[3, 5])
    b = reference.attention(q.transpose(t), k.transpose(t), v.transpose(t), layout="bshd",
                            causal=True, kv_lens=[3, 5])
    assert b.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(b.transpose(t), a, rtol=1e-15)


def test_head_dim_v_differs():
    q, k, v = make("bshd", 1, 2, 2, 3, 4, 8, 5)
    assert reference.attention(q, k, v, layout="bshd").shape == (1, 3, 2, 5)


def test_float16_and_bf16_inputs():
    q, k, v = make("bhsd", 1, 2, 1, 3, 4, 4, dtype=np.float16)
    out = reference.attention(q, k, v)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, naive_attention(q, k, v), rtol=1e-12, atol=1e-12)
    qb, kb, vb = (f32_to_bf16(x.astype(np.float32)) for x in (q, k, v))
    with pytest.raises(TypeError, match="bf16_to_f32"):
        reference.attention(qb, kb, vb)
    out_b = reference.attention(*(bf16_to_f32(x) for x in (qb, kb, vb)))
    np.testing.assert_allclose(out_b, out, atol=0.05)


def test_empty_batch_and_queries():
    q, k, v = make("bhsd", 0, 2, 1, 3, 4, 4)
    assert reference.attention(q, k, v).shape == (0, 2, 3, 4)
    q, k, v = make("bhsd", 1, 2, 1, 0, 4, 4)
    assert reference.attention(q, k, v, causal=True).shape == (1, 2, 0, 4)
    q, k, v = make("bhsd", 1, 2, 1, 3, 0, 4)
    np.testing.assert_array_equal(reference.attention(q, k, v), 0.0)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((1, 3, 2, 4), (1, 2, 2, 4), (1, 2, 2, 4)), r"q heads \(3\) must be a multiple of k/v heads \(2\)"),
        (((1, 2, 2, 4), (1, 2, 2, 5), (1, 2, 2, 4)), r"head_dim mismatch: k has head_dim 5 at dim 3 \(head_dim\), q has 4"),
        (((2, 2, 2, 4), (1, 2, 2, 4), (1, 2, 2, 4)), r"batch mismatch: k has batch 1 at dim 0 \(batch\), q has 2"),
        (((1, 2, 2, 4), (1, 2, 3, 4), (1, 2, 2, 4)), r"KV length mismatch: v has seq 2 at dim 2 \(seq\), k has 3"),
        (((1, 2, 2, 4), (1, 2, 2, 4), (1, 1, 2, 4)), r"KV head mismatch: v has 1 heads"),
        (((1, 2, 2), (1, 2, 2, 4), (1, 2, 2, 4)), r"q must be 4-D"),
    ],
)
def test_shape_errors(shapes, match):
    q, k, v = (np.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        reference.attention(q, k, v)


def test_shape_errors_name_bshd_dims():
    q, k, v = np.zeros((1, 2, 2, 4)), np.zeros((1, 3, 2, 4)), np.zeros((1, 2, 2, 4))
    with pytest.raises(ValueError, match=r"v has seq 2 at dim 1 \(seq\), k has 3"):
        reference.attention(q, k, v, layout="bshd")


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(kv_lens=[1]), ValueError, r"shape \(2,\)"),
        (dict(kv_lens=[1, 5]), ValueError, r"\[0, 4\]"),
        (dict(kv_lens=[-1, 2]), ValueError, r"\[0, 4\]"),
        (dict(kv_lens=[1.0, 2.0]), TypeError, "integers"),
        (dict(window=(-2, 0)), ValueError, "window left must be >= -1"),
        (dict(window=(1,)), ValueError, r"\(left, right\)"),
        (dict(window=(1.5, 0)), ValueError, "window left must be an int"),
        (dict(scale=0.0), ValueError, "scale"),
        (dict(scale=float("nan")), ValueError, "scale"),
        (dict(softcap=-1.0), ValueError, "softcap"),
        (dict(layout="bsdh"), ValueError, "layout"),
    ],
)
def test_option_errors(kwargs, exc, match):
    q, k, v = make("bhsd", 2, 2, 1, 3, 4, 4)
    with pytest.raises(exc, match=match):
        reference.attention(q, k, v, **kwargs)


def test_integer_input_rejected():
    with pytest.raises(TypeError, match="q must be a floating-point array"):
        reference.attention(np.zeros((1, 1, 1, 1), dtype=np.int32), np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)))
