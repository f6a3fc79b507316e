"""gqa.attention on a CUDA GPU against the float64 reference.

Needs PyTorch with CUDA, libgqa_runtime.so, and either gqa-compile or the
kernels in the cache ($GQA_KERNEL_CACHE, e.g. carried from a machine with the
compiler).  Skipped otherwise, with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest

import gqa
from conftest import REAL_RUNTIME_LIB

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(REAL_RUNTIME_LIB is None, reason="libgqa_runtime.so not found (set GQA_RUNTIME_LIB)"),
]

TORCH_DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
TOLERANCE = {"f32": 2e-3, "f16": 4e-3, "bf16": 3e-2}  # f32 inputs may run as tf32 inside

CASES = [
    dict(B=2, Hq=8, Hkv=2, Sq=128, Skv=128, D=64, dtype="f16", layout="bhsd", causal=False),
    dict(B=2, Hq=8, Hkv=2, Sq=100, Skv=257, D=64, dtype="bf16", layout="bshd", causal=True),
    dict(B=1, Hq=64, Hkv=8, Sq=1, Skv=1000, D=128, dtype="bf16", layout="bshd", causal=True),
    dict(B=1, Hq=4, Hkv=1, Sq=77, Skv=33, D=128, dtype="f16", layout="bhsd", causal=True),
    dict(B=2, Hq=4, Hkv=4, Sq=64, Skv=64, D=64, Dv=32, dtype="f32", layout="bhsd", window=(16, 0)),
    dict(B=3, Hq=8, Hkv=2, Sq=8, Skv=200, D=64, dtype="f16", layout="bshd", causal=True, kv_lens=[0, 50, 200]),
    dict(B=1, Hq=8, Hkv=2, Sq=64, Skv=64, D=64, dtype="bf16", layout="bhsd", softcap=30.0, scale=0.3),
]


def _make(case, device="cuda"):
    g = torch.Generator(device="cpu").manual_seed(0)
    Dv = case.get("Dv", case["D"])

    def t(h, s, d):
        shape = (case["B"], h, s, d) if case["layout"] == "bhsd" else (case["B"], s, h, d)
        return torch.randn(shape, generator=g).to(device=device, dtype=TORCH_DTYPES[case["dtype"]])

    return t(case["Hq"], case["Sq"], case["D"]), t(case["Hkv"], case["Skv"], case["D"]), t(case["Hkv"], case["Skv"], Dv)


def _np(x):
    return x.float().cpu().numpy()


def _options(case):
    return {k: case[k] for k in ("layout", "causal", "window", "softcap", "scale") if k in case}


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_matches_reference(case, real_env):
    q, k, v = _make(case)
    opts = _options(case)
    lens = case.get("kv_lens")
    lens_t = None if lens is None else torch.tensor(lens, dtype=torch.int32, device="cuda")
    out = gqa.attention(q, k, v, kv_lens=lens_t, **opts)
    torch.cuda.synchronize()
    ref = gqa.reference.attention(_np(q), _np(k), _np(v), kv_lens=lens, **opts)
    err = float(np.max(np.abs(_np(out) - ref)))
    assert err <= TOLERANCE[case["dtype"]], f"max |out - reference| = {err}"


def test_runs_on_the_current_stream(real_env):
    case = CASES[1]
    q, k, v = _make(case)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = gqa.attention(q, k, v, **_options(case))
        out2 = out.clone()  # ordered after the kernel on the same stream
    side.synchronize()
    ref = gqa.reference.attention(_np(q), _np(k), _np(v), **_options(case))
    assert float(np.max(np.abs(_np(out2) - ref))) <= TOLERANCE[case["dtype"]]


def test_out_argument_and_non_contiguous_input(real_env):
    case = CASES[0]
    q, k, v = _make(case)
    out = torch.empty_like(q)
    assert gqa.attention(q, k, v, out=out) is out
    with pytest.raises(ValueError, match="q must be contiguous"):
        gqa.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layout="bshd")
