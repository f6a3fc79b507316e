"""Merge kernels through the real libgqa_compiler.so and libgqa_runtime.so, and on a GPU.

Each part skips, with the reason, when its library is not built or predates merge kernels (has no
gqa_compiler_compile_merge_states / gqa_kernel_merge_states): the compiler's metadata is valid and matches;
the runtime's parser agrees with Python's on the documented example and its broken variants, and
gqa_plan_merge accepts what Python fills; on a CUDA device the kernel matches the float64 merge.
"""

from __future__ import annotations

import copy
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

import gqa
from gqa import _runtime
from gqa.shapes import AttentionDims
from conftest import ORIGINAL_PATH, REAL_COMPILER_LIB, REAL_RUNTIME_LIB
from test_metadata import MERGE_BAD, _set


def _has_symbol(path, name):
    if path is None:
        return False
    try:
        return hasattr(ctypes.CDLL(str(path)), name)
    except OSError:
        return False


COMPILER_MERGES = _has_symbol(REAL_COMPILER_LIB, "gqa_compiler_compile_merge_states")
RUNTIME_MERGES = _has_symbol(REAL_RUNTIME_LIB, "gqa_kernel_merge_states")
needs_compiler = pytest.mark.skipif(
    not COMPILER_MERGES, reason="libgqa_compiler.so not built, or without gqa_compiler_compile_merge_states")
needs_runtime = pytest.mark.skipif(
    not RUNTIME_MERGES, reason="libgqa_runtime.so not built, or without gqa_kernel_merge_states")

CASES = [
    dict(heads=64, head_dim_v=128, dtype="bf16", layout="bshd"),
    dict(heads=8, head_dim_v=64, dtype="f16", layout="bhsd"),
    dict(heads=32, head_dim_v=128, dtype="bf16", layout="bshd", varlen=True),
    dict(heads=4, head_dim_v=256, dtype="f32", layout="bhsd", chip="sm_80"),
]


@pytest.fixture
def lib(monkeypatch):
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(REAL_RUNTIME_LIB))
    return _runtime.get_library()


# ----------------------------------------------------------------------------- compiler


@needs_compiler
@pytest.mark.tools
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_real_compile_merge_states(case, real_env, tmp_path):
    kernel = gqa.compile_merge_states(**case, cache_dir=tmp_path / "cache")
    meta = kernel.metadata
    assert meta["format"] == "gqa.merge_states" and meta["version"] == 1 and kernel.kind == "merge_states"
    assert not gqa.MergeConfig.create(**case).mismatches(kernel.config)
    [kern] = meta["kernels"]
    assert kern["role"] == "merge"
    assert {"out_a", "lse_a", "out_b", "lse_b", "out", "lse"} <= {p["name"] for p in kern["params"]}
    assert kernel.ptx_path.parent.name.startswith("merge-")
    ptxas = shutil.which("ptxas", path=ORIGINAL_PATH)
    if ptxas:
        proc = subprocess.run([ptxas, f"-arch={meta['chip']}", str(kernel.ptx_path), "-o", str(tmp_path / "m.cubin")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@needs_compiler
@pytest.mark.tools
def test_real_compile_merge_states_errors(real_env, tmp_path):
    with pytest.raises(ValueError, match="layout must be 'bshd'"):
        gqa.compile_merge_states(8, 64, layout="bhsd", varlen=True)
    # What the library itself refuses is reported as a CompileError naming the configuration.
    from gqa import _compiler_lib

    bad = gqa.MergeConfig(heads=8, head_dim_v=64, dtype="bf16", layout="bhsd", varlen=True, chip="sm_90")
    with pytest.raises(gqa.CompileError, match=r"compiling merge-h8-dv64-bf16-bhsd-varlen-sm_90-\w+ failed: "):
        _compiler_lib.compile_merge_states(bad, "kernel.ptx")


@needs_compiler
@needs_runtime
@pytest.mark.tools
def test_runtime_accepts_what_the_compiler_writes(real_env, lib, tmp_path):
    for case in CASES:
        kernel = gqa.compile_merge_states(**case, cache_dir=tmp_path)
        with lib.parse_metadata(kernel.metadata) as meta:
            assert meta.kind() == "merge_states"
            cfg = meta.merge_config()
        assert (cfg["heads"], cfg["head_dim_v"], cfg["dtype"], cfg["layout"], bool(cfg["varlen"])) == (
            case["heads"], case["head_dim_v"], case["dtype"], case["layout"], case.get("varlen", False))


# ----------------------------------------------------------------------------- runtime (no GPU)


@needs_runtime
def test_runtime_parses_the_merge_example_like_python(lib, merge_metadata):
    gqa.validate_metadata(merge_metadata)
    with lib.parse_metadata(merge_metadata) as meta:
        assert meta.kind() == "merge_states"
        cfg = meta.merge_config()
        with pytest.raises(gqa.LaunchError, match="GQA_ERROR_INVALID_ARGUMENT"):
            meta.config()  # not an attention set
    assert cfg == {"heads": 64, "head_dim_v": 128, "dtype": "bf16", "layout": "bshd", "varlen": 0,
                   "batch": 0, "seq_q": 0}


@needs_runtime
def test_runtime_kind_of_an_attention_document(lib, example_metadata):
    with lib.parse_metadata(example_metadata) as meta:
        assert meta.kind() == "attention"
        with pytest.raises(gqa.LaunchError, match="GQA_ERROR_INVALID_ARGUMENT"):
            meta.merge_config()


@needs_runtime
@pytest.mark.parametrize("path, value, match", MERGE_BAD, ids=[".".join(map(str, p)) + f"={v!r}"[:20]
                                                              for p, v, _ in MERGE_BAD])
def test_runtime_rejects_merge_metadata_python_rejects(lib, merge_metadata, path, value, match):
    meta = copy.deepcopy(merge_metadata)
    _set(meta, path, value)
    with pytest.raises(gqa.MetadataError):
        gqa.validate_metadata(meta)
    with pytest.raises(gqa.MetadataError, match="GQA_ERROR_INVALID_METADATA"):
        lib.parse_metadata(meta).close()


def _args(batch=2, seq_q=100, heads=64, head_dim_v=128, dtype="bf16", layout="bshd"):
    return _runtime.merge_args(dtype, layout, batch, seq_q, heads, head_dim_v,
                               0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000)


@needs_runtime
def test_plan_merge_accepts_python_args(lib, merge_metadata):
    plan = lib.plan_merge(merge_metadata, _args())
    # grid x = ceil(seq_q * 64 / 4) (the example's), y = 1, z = batch
    assert plan == {"name": "gqa_merge_states", "role": "merge", "grid": [1600, 1, 2], "block": [128, 1, 1],
                    "dynamic_shared_memory_bytes": 0}


@needs_runtime
@pytest.mark.parametrize("field, value", [("heads", 32), ("head_dim_v", 64), ("dtype", "f16"), ("layout", "bhsd"),
                                          ("batch", 0), ("seq_q", 0)])
def test_plan_merge_rejects_wrong_shape_facts(lib, merge_metadata, field, value):
    with pytest.raises(gqa.LaunchError, match="GQA_ERROR_INVALID_ARGUMENT"):
        lib.plan_merge(merge_metadata, _args(**{field: value}))


@needs_runtime
def test_plan_launch_refuses_a_merge_set_and_plan_merge_an_attention_set(lib, merge_metadata, example_metadata):
    with pytest.raises(gqa.LaunchError, match="GQA_ERROR_INVALID_ARGUMENT"):
        lib.plan_merge(example_metadata, _args())
    dims = AttentionDims(batch=2, q_heads=64, kv_heads=8, seq_q=100, seq_kv=100, head_dim=128, head_dim_v=128)
    args = _runtime.launch_args(dims, "bf16", "bshd", q=0x1000, k=0x2000, v=0x3000, out=0x4000)
    with pytest.raises(gqa.LaunchError, match="GQA_ERROR_INVALID_ARGUMENT"):
        lib.plan(merge_metadata, args)


# ----------------------------------------------------------------------------- GPU


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


TORCH = _torch_cuda()
GPU_CASES = [
    dict(B=2, H=8, S=37, Dv=128, dtype="bf16", layout="bshd"),
    dict(B=1, H=64, S=5, Dv=128, dtype="f16", layout="bhsd"),
    dict(B=3, H=4, S=9, Dv=64, dtype="f32", layout="bhsd"),
    dict(T=50, H=16, Dv=128, dtype="bf16", varlen=True),
]
#: Of the output, relative to its largest value: one rounding to the dtype, the weights from ex2.approx.
TOLERANCE = {"f32": 5e-5, "f16": 2e-3, "bf16": 1.6e-2}


@pytest.mark.gpu
@needs_runtime
@pytest.mark.skipif(TORCH is None, reason="no PyTorch with a CUDA device")
@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("in_place", [False, True])
def test_gpu_merge_matches_float64(case, in_place, real_env):
    torch = TORCH
    dtype = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}[case["dtype"]]
    g = torch.Generator().manual_seed(0)
    if case.get("varlen"):
        o_shape, l_shape, layout = (case["T"], case["H"], case["Dv"]), (case["H"], case["T"]), None
    else:
        b, h, s, dv = case["B"], case["H"], case["S"], case["Dv"]
        o_shape = (b, h, s, dv) if case["layout"] == "bhsd" else (b, s, h, dv)
        l_shape, layout = (b, h, s), case["layout"]
    o1, o2 = (torch.randn(o_shape, generator=g).to(dtype) for _ in range(2))
    l1, l2 = (torch.randn(l_shape, generator=g) * 4 for _ in range(2))
    l1.view(-1)[::7] = -torch.inf  # rows one part did not see
    l2.view(-1)[::11] = -torch.inf  # every 77th: neither
    want_o, want_lse = gqa.merge_attention_states(*(x.double().numpy() for x in (o1, l1, o2, l2)), layout=layout)
    c1, c2, d1, d2 = (x.cuda() for x in (o1, o2, l1, l2))
    out, lse = gqa.merge_attention_states(c1, d1, c2, d2, layout=layout, out=c1 if in_place else None)
    torch.cuda.synchronize()
    assert out.dtype == dtype and lse.dtype == torch.float32 and tuple(lse.shape) == l_shape
    if in_place:
        assert out is c1
    got = out.double().cpu().numpy()
    scale = max(1.0, float(np.max(np.abs(want_o))))
    assert float(np.max(np.abs(got - want_o))) <= TOLERANCE[case["dtype"]] * scale
    got_lse = lse.double().cpu().numpy()
    np.testing.assert_array_equal(np.isneginf(got_lse), np.isneginf(want_lse))
    finite = np.isfinite(want_lse)
    np.testing.assert_allclose(got_lse[finite], want_lse[finite], atol=1e-4, rtol=1e-5)
    # a row neither part saw is exactly 0: the LSE's -inf rows, in the outputs' order
    unseen = np.isneginf(want_lse)
    unseen = unseen.T if case.get("varlen") else unseen if case["layout"] == "bhsd" else unseen.transpose(0, 2, 1)
    assert unseen.any() and np.all(got[unseen] == 0)
