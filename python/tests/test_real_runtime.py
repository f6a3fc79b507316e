"""The binding against the real libgqa_runtime.so, on what needs no GPU.

The runtime builds with only a C++ compiler (cmake -S lib/Runtime -B build-rt).
These tests check that the Python metadata validator and the runtime's parser
agree, that the gqa_launch_args Python fills are accepted by gqa_plan_launch,
and that gqa.attention reports a missing driver/GPU clearly.  Skipped when the
library is not built.
"""

from __future__ import annotations

import copy

import pytest

import gqa
from gqa import _runtime
from gqa.shapes import AttentionDims
from conftest import REAL_RUNTIME_LIB, FakeTensor
from test_metadata import BAD, PAGED_BAD, _set, paged, paged_bad_metadata, split_kernels

pytestmark = pytest.mark.skipif(
    REAL_RUNTIME_LIB is None,
    reason="libgqa_runtime.so not built (cmake -S lib/Runtime -B build-rt && cmake --build build-rt, "
    "or set GQA_RUNTIME_LIB)",
)


@pytest.fixture
def lib(monkeypatch):
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(REAL_RUNTIME_LIB))
    return _runtime.get_library()


def test_abi_version(lib):
    assert lib._fn["gqa_runtime_abi_version"]() == _runtime.ABI_VERSION


def test_runtime_parses_doc_example_like_python(lib, example_metadata):
    with lib.parse_metadata(example_metadata) as meta:
        cfg = meta.config()
    py = example_metadata["config"]
    for key in ("q_heads", "kv_heads", "group_size", "head_dim", "head_dim_v", "dtype", "layout", "mask",
                "window_left", "window_right", "scale", "softcap", "kv_lens", "page_size"):
        assert cfg[key] == py[key], key
    assert (cfg["batch"], cfg["seq_q"], cfg["seq_kv"]) == (0, 0, 0)  # null = given at launch


@pytest.mark.parametrize("path, value, match", BAD, ids=[f"{'.'.join(map(str, p))}" for p, _, _ in BAD])
def test_runtime_rejects_what_python_rejects(lib, example_metadata, path, value, match):
    meta = copy.deepcopy(example_metadata)
    _set(meta, path, value)
    with pytest.raises(gqa.MetadataError):
        gqa.validate_metadata(meta)
    with pytest.raises(gqa.MetadataError, match="GQA_ERROR_INVALID_METADATA"):
        lib.parse_metadata(meta).close()


@pytest.mark.parametrize("case_id, edit, match", PAGED_BAD, ids=[c[0] for c in PAGED_BAD])
def test_runtime_rejects_paged_metadata_python_rejects(lib, example_metadata, case_id, edit, match):
    meta = paged_bad_metadata(example_metadata, case_id, edit)
    with pytest.raises(gqa.MetadataError):
        gqa.validate_metadata(meta)
    with pytest.raises(gqa.MetadataError, match="GQA_ERROR_INVALID_METADATA"):
        lib.parse_metadata(meta).close()


@pytest.mark.parametrize("split", [False, True])
def test_runtime_parses_paged_metadata_like_python(lib, example_metadata, split):
    meta = paged(split_kernels(example_metadata) if split else example_metadata)
    meta["config"]["seq_kv"] = 4096
    gqa.validate_metadata(meta)
    with lib.parse_metadata(meta) as parsed:
        cfg = parsed.config()
    # page_size sits between kv_lens and batch in gqa_kernel_config: the fields after it read right too
    assert (cfg["kv_lens"], cfg["page_size"]) == ("none", 16)
    assert (cfg["batch"], cfg["seq_q"], cfg["seq_kv"]) == (0, 0, 4096)


def paged_args(num_pages, seq_kv=1024, **kw):
    dims = AttentionDims(batch=2, q_heads=64, kv_heads=8, seq_q=1, seq_kv=seq_kv, head_dim=128, head_dim_v=128)
    return _runtime.launch_args(dims, "bf16", "bshd", q=0x1000, k=0x2000, v=0x3000, out=0x4000,
                                block_table=0x5000, num_pages=num_pages, **kw)


def test_plan_accepts_paged_launch_args(lib, example_metadata):
    plan = lib.plan(paged(example_metadata), paged_args(num_pages=200))
    [kernel] = plan["kernels"]
    assert kernel["role"] == "main" and kernel["grid"] == [1, 8, 2]


def test_plan_reads_num_pages_where_python_puts_it(lib, example_metadata):
    # num_pages follows block_table in gqa_launch_args: the runtime sees 0 here ...
    with pytest.raises(gqa.LaunchError, match="GQA_ERROR_INVALID_ARGUMENT.*num_pages"):
        lib.plan(paged(example_metadata), paged_args(num_pages=0))
    # ... and 3 here, which a contiguous kernel refuses.
    args = paged_args(num_pages=3)
    args.block_table = None
    with pytest.raises(gqa.LaunchError, match="args.num_pages is 3"):
        lib.plan(example_metadata, args)


def test_plan_rejects_seq_kv_of_partial_pages(lib, example_metadata):
    with pytest.raises(gqa.LaunchError, match="args.seq_kv is 1000, but a paged kernel reads whole pages"):
        lib.plan(paged(example_metadata), paged_args(num_pages=200, seq_kv=1000))


def test_plan_accepts_python_launch_args(lib, example_metadata):
    dims = AttentionDims(batch=2, q_heads=64, kv_heads=8, seq_q=1000, seq_kv=1000, head_dim=128, head_dim_v=128)
    args = _runtime.launch_args(dims, "bf16", "bshd", q=0x1000, k=0x2000, v=0x3000, out=0x4000)
    plan = lib.plan(example_metadata, args)
    assert plan["num_splits"] == 1 and plan["workspace_bytes"] == 0
    [kernel] = plan["kernels"]
    assert kernel["name"] == "gqa_attention_fwd" and kernel["role"] == "main"
    assert kernel["grid"] == [-(-1000 * 8 // 64), 8, 2] and kernel["block"] == [128, 1, 1]


def test_plan_rejects_wrong_shape_facts(lib, example_metadata):
    dims = AttentionDims(batch=2, q_heads=32, kv_heads=8, seq_q=10, seq_kv=10, head_dim=128, head_dim_v=128)
    args = _runtime.launch_args(dims, "bf16", "bshd", q=0x1000, k=0x2000, v=0x3000, out=0x4000)
    with pytest.raises(gqa.LaunchError, match="GQA_ERROR_INVALID_ARGUMENT"):
        lib.plan(example_metadata, args)


def test_attention_without_gpu_reports_the_driver(fake_compiler, monkeypatch, tmp_path):
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(REAL_RUNTIME_LIB))
    monkeypatch.setenv("GQA_CUDA_DRIVER_LIBRARY", str(tmp_path / "no-libcuda.so"))
    q = FakeTensor((1, 8, 4, 64))
    k = FakeTensor((1, 2, 4, 64))
    with pytest.raises(gqa.LaunchError, match=r"opening CUDA device 0 failed \(GQA_ERROR_DRIVER_UNAVAILABLE\)"):
        gqa.attention(q, k, k)
