"""Attention sinks and the log-sum-exp: the float64 reference, merge_attention_states, and the CPU path."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import gqa
from gqa import reference
from conftest import REAL_GQA_RUN

needs_gqa_run = pytest.mark.skipif(REAL_GQA_RUN is None, reason="gqa-run is not built")


def _inputs(rng, b=2, hq=4, hkv=2, sq=5, skv=9, d=8, dv=None, layout="bhsd"):
    dv = dv or d
    def shape(h, s, w):
        return (b, h, s, w) if layout == "bhsd" else (b, s, h, w)
    return (rng.standard_normal(shape(hq, sq, d)), rng.standard_normal(shape(hkv, skv, d)),
            rng.standard_normal(shape(hkv, skv, dv)))


def _naive_row(q, k, v, sink):
    """One row by hand: the sink joins the denominator with no value."""
    scores = [float(q @ kj) / math.sqrt(len(q)) for kj in k]
    terms = scores + ([sink] if sink is not None else [])
    m = max(terms)
    denom = sum(math.exp(s - m) for s in terms)
    out = sum(math.exp(s - m) * vj for s, vj in zip(scores, v)) / denom
    return out, m + math.log(denom)


def test_sink_row_by_hand():
    rng = np.random.default_rng(0)
    q, k, v = _inputs(rng)
    sinks = rng.standard_normal(4) * 2
    out, lse = reference.attention(q, k, v, sinks=sinks, return_lse=True)
    for b, h, i in [(0, 0, 0), (1, 3, 4), (0, 2, 1)]:
        row, row_lse = _naive_row(q[b, h, i], k[b, h // 2], v[b, h // 2], sinks[h])
        np.testing.assert_allclose(out[b, h, i], row, rtol=1e-12)
        assert lse[b, h, i] == pytest.approx(row_lse, rel=1e-12)


def test_lse_without_sinks_is_logsumexp():
    rng = np.random.default_rng(1)
    q, k, v = _inputs(rng, layout="bshd")
    out, lse = reference.attention(q, k, v, layout="bshd", return_lse=True)
    assert lse.shape == (2, 4, 5)  # [B, Hq, Sq] whatever the layout
    np.testing.assert_array_equal(out, reference.attention(q, k, v, layout="bshd"))
    # bshd: query head 3 (KV head 1) at position 2.
    _, row_lse = _naive_row(q[1, 2, 3], k[1, :, 1], v[1, :, 1], None)
    assert lse[1, 3, 2] == pytest.approx(row_lse, rel=1e-12)


def test_rows_without_keys():
    rng = np.random.default_rng(2)
    q, k, v = _inputs(rng)
    sinks = np.array([0.5, -1.0, 2.0, 3.0])
    out, lse = reference.attention(q, k, v, kv_lens=[0, 9], sinks=sinks, return_lse=True)
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(lse[0], np.broadcast_to(sinks[:, None], (4, 5)))
    _, lse = reference.attention(q, k, v, kv_lens=[0, 9], return_lse=True)
    assert np.all(lse[0] == -np.inf) and np.all(np.isfinite(lse[1]))


def test_sinks_shrink_the_output_and_minus_infinity_is_none():
    rng = np.random.default_rng(3)
    q, k, v = _inputs(rng)
    plain = reference.attention(q, k, v)
    np.testing.assert_allclose(reference.attention(q, k, v, sinks=np.full(4, -np.inf)), plain, rtol=1e-12)
    huge = reference.attention(q, k, v, sinks=np.full(4, 50.0))
    assert np.max(np.abs(huge)) < 1e-15
    # A sink scales each row by l / (l + exp(sink)): the LSE says by how much.
    sinks = np.array([0.0, 1.0, -1.0, 2.0])
    out, lse = reference.attention(q, k, v, sinks=sinks, return_lse=True)
    _, plain_lse = reference.attention(q, k, v, return_lse=True)
    np.testing.assert_allclose(out, plain * np.exp(plain_lse - lse)[..., None], rtol=1e-12)


def test_sinks_shape_error():
    rng = np.random.default_rng(4)
    q, k, v = _inputs(rng)
    with pytest.raises(ValueError, match=r"sinks must have shape \(4,\)"):
        reference.attention(q, k, v, sinks=np.zeros(2))


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_merge_two_halves_is_the_whole(layout):
    rng = np.random.default_rng(5)
    q, k, v = _inputs(rng, skv=20, layout=layout, dv=6)
    seq = 2 if layout == "bhsd" else 1
    sinks = rng.standard_normal(4)
    whole, whole_lse = reference.attention(q, k, v, layout=layout, sinks=sinks, return_lse=True)
    first = np.take(k, range(0, 7), axis=seq), np.take(v, range(0, 7), axis=seq)
    rest = np.take(k, range(7, 20), axis=seq), np.take(v, range(7, 20), axis=seq)
    o1, l1 = reference.attention(q, *first, layout=layout, sinks=sinks, return_lse=True)  # the sink once
    o2, l2 = reference.attention(q, *rest, layout=layout, return_lse=True)
    o, lse = gqa.merge_attention_states(o1, l1, o2, l2, layout=layout)
    np.testing.assert_allclose(o, whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lse, whole_lse, rtol=1e-12)


def test_merge_with_an_empty_part():
    rng = np.random.default_rng(6)
    o1 = rng.standard_normal((1, 2, 3, 4))
    l1 = rng.standard_normal((1, 2, 3))
    empty_o, empty_l = np.zeros_like(o1), np.full_like(l1, -np.inf)
    o, lse = gqa.merge_attention_states(o1, l1, empty_o, empty_l)
    np.testing.assert_allclose(o, o1)
    np.testing.assert_allclose(lse, l1)
    o, lse = gqa.merge_attention_states(empty_o, empty_l, empty_o, empty_l)
    np.testing.assert_array_equal(o, 0.0)
    assert np.all(lse == -np.inf)


def test_merge_shape_errors():
    o = np.zeros((1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"lse1 must have shape \(1, 3, 2\)"):
        gqa.merge_attention_states(o, np.zeros((1, 2, 3)), o, np.zeros((1, 2, 3)), layout="bshd")
    with pytest.raises(ValueError, match="o1 and o2 must have one shape"):
        gqa.merge_attention_states(o, np.zeros((1, 2, 3)), o[..., :2], np.zeros((1, 2, 3)))


def test_merge_torch_tensors():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    o1, o2 = rng.standard_normal((2, 1, 2, 3, 4))
    l1, l2 = rng.standard_normal((2, 1, 2, 3))
    want_o, want_l = gqa.merge_attention_states(o1, l1, o2, l2)
    o, lse = gqa.merge_attention_states(*(torch.tensor(x, dtype=torch.float32) for x in (o1, l1, o2, l2)))
    assert o.dtype == torch.float32 and lse.dtype == torch.float32
    np.testing.assert_allclose(o.numpy(), want_o, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lse.numpy(), want_l, rtol=1e-5)


# The compiler's CPU path: output and LSE against the reference on the inputs and sinks gqa-run drew.
REAL_CASES = [
    dict(q_heads=8, kv_heads=2, head_dim=40, batch=2, seq_q=9, seq_kv=70, dtype="f32", window=(10, 0),
         kv_lens=[70, 0], sinks=True, return_lse=True),
    dict(q_heads=4, kv_heads=1, head_dim=64, batch=1, seq_q=33, seq_kv=20, dtype="bf16", layout="bshd",
         causal=True, sinks=True, return_lse=True),
    dict(q_heads=8, kv_heads=2, head_dim=64, batch=2, seq_q=1, seq_kv=700, dtype="f32", sinks=True,
         return_lse=True, schedule="sm_80"),
    dict(q_heads=8, kv_heads=4, head_dim=32, batch=1, seq_q=5, seq_kv=50, dtype="f16", return_lse=True),
]


@needs_gqa_run
@pytest.mark.tools
@pytest.mark.parametrize("case", REAL_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_real_gqa_run_sinks_and_lse(case, real_env, tmp_path):
    run = gqa.run_cpu(**case, seed=3, save_dir=str(tmp_path / "run"))
    assert (run.sinks is not None) == case.get("sinks", False)
    assert run.lse.shape == (case["batch"], case["q_heads"], case["seq_q"])
    out_tol = {"f32": 1e-4, "f16": 4e-3, "bf16": 3e-2}[case["dtype"]]
    assert run.max_abs_error() <= out_tol, json.dumps(run.result)
    want = run.reference_lse()
    np.testing.assert_array_equal(np.isinf(run.lse), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(run.lse[finite], want[finite], atol=1e-3 if case["dtype"] != "f32" else 1e-4)
