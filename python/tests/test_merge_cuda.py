"""merge_attention_states on CUDA tensors without a GPU: input checks, the kernel's config, argument marshalling.

FakeTensor mimics torch CUDA tensors (no memory behind them), the stub runtime (stub_runtime.c) records the
gqa_merge_args it is given and the stub compiler (stub_compiler.c) writes merge_states kernels.  Both are
compiled against the headers, so their structs are the ABI's.
"""

from __future__ import annotations

import copy
import ctypes

import pytest

import gqa
from gqa import _runtime
from conftest import FakeCudaArray, FakeTensor, build_shared_lib, last_merge_args


def parts(layout="bhsd", B=2, H=8, S=5, Dv=64, dtype="bfloat16", device="cuda:0", varlen=False):
    """o1, lse1, o2, lse2 as fake CUDA tensors: (B, H, S, Dv) in layout with (B, H, S), or (T, H, Dv) with (H, T)."""
    if varlen:
        o_shape, l_shape = (S, H, Dv), (H, S)
    else:
        o_shape, l_shape = ((B, H, S, Dv) if layout == "bhsd" else (B, S, H, Dv)), (B, H, S)
    return (FakeTensor(o_shape, dtype, device), FakeTensor(l_shape, "float32", device),
            FakeTensor(o_shape, dtype, device), FakeTensor(l_shape, "float32", device))


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_merge_passes_pointers_shapes_and_stream(stub_compiler, stub_runtime, layout):
    o1, l1, o2, l2 = parts(layout, B=3, H=8, S=5, Dv=64)
    out, lse = gqa.merge_attention_states(o1, l1, o2, l2, layout=layout, stream=0xABC)
    assert isinstance(out, FakeTensor) and out.shape == o1.shape and out.dtype == "torch.bfloat16"
    assert lse.shape == (3, 8, 5) and lse.dtype == "torch.float32"
    args = last_merge_args(stub_runtime)
    assert [args[n] for n in ("out_a", "lse_a", "out_b", "lse_b", "out", "lse")] == [
        o1.data_ptr(), l1.data_ptr(), o2.data_ptr(), l2.data_ptr(), out.data_ptr(), lse.data_ptr()]
    assert (args["batch"], args["seq_q"], args["heads"], args["head_dim_v"]) == (3, 5, 8, 64)
    assert (args["dtype"], args["layout"], args["stream"]) == (_runtime.DTYPE["bf16"], _runtime.LAYOUT[layout], 0xABC)
    compiled = stub_compiler
    assert compiled.stub_compiler_calls() == 1 and compiled.stub_compiler_last_chip() == b"sm_90"
    # The kernel is compiled and loaded once; the device runtime is created once.
    gqa.merge_attention_states(o1, l1, o2, l2, layout=layout)
    assert stub_runtime.stub_merges() == 2 and stub_runtime.stub_loads() == 1 and stub_runtime.stub_creates() == 1
    assert compiled.stub_compiler_calls() == 1 and last_merge_args(stub_runtime)["stream"] is None


def test_merge_varlen_shapes(stub_compiler, stub_runtime):
    """flash_attn's varlen shapes: o (T, H, Dv), lse (H, T): launched as batch 1 of T rows, bshd, a varlen kernel."""
    o1, l1, o2, l2 = parts(S=11, H=4, Dv=128, dtype="float16", varlen=True)
    out, lse = gqa.merge_attention_states(o1, l1, o2, l2)
    assert out.shape == (11, 4, 128) and lse.shape == (4, 11)
    args = last_merge_args(stub_runtime)
    assert (args["batch"], args["seq_q"], args["heads"], args["head_dim_v"]) == (1, 11, 4, 128)
    assert (args["dtype"], args["layout"]) == (_runtime.DTYPE["f16"], _runtime.LAYOUT["bshd"])
    last = gqa._compiler_lib._MergeStates()
    stub_compiler.stub_compiler_last(ctypes.byref(last))
    assert (last.heads, last.head_dim_v, last.varlen, last.layout) == (4, 128, 1, b"bshd")
    with pytest.raises(ValueError, match="layout must be 'bshd', got 'bhsd'"):
        gqa.merge_attention_states(o1, l1, o2, l2, layout="bhsd")


def test_merge_in_place_and_given_outputs(stub_compiler, stub_runtime):
    o1, l1, o2, l2 = parts()
    out_lse = FakeTensor(l1.shape, "float32")
    out, lse = gqa.merge_attention_states(o1, l1, o2, l2, out=o1, out_lse=out_lse)
    assert out is o1 and lse is out_lse
    args = last_merge_args(stub_runtime)
    assert args["out"] == args["out_a"] == o1.data_ptr() and args["lse"] == out_lse.data_ptr()
    with pytest.raises(ValueError, match="out_lse must be neither lse1 nor lse2 \\(it is lse2\\)"):
        gqa.merge_attention_states(o1, l1, o2, l2, out=o1, out_lse=l2)
    assert stub_runtime.stub_merges() == 1


def test_merge_outputs_must_not_overlap_inputs(stub_compiler, stub_runtime):
    """As gqa_kernel_merge_states checks: out_lse memory of its own, out o1/o2 itself or memory of its own."""
    o1, l1, o2, l2 = parts()
    shifted_lse, shifted_out = FakeTensor(l1.shape, "float32"), FakeTensor(o1.shape, "bfloat16")
    shifted_lse._ptr, shifted_out._ptr = l1.data_ptr() + 4, o2.data_ptr() + 16
    with pytest.raises(ValueError, match="out_lse overlaps lse1: the merged log-sum-exps need memory of their own"):
        gqa.merge_attention_states(o1, l1, o2, l2, out_lse=shifted_lse)
    with pytest.raises(ValueError, match="out overlaps o2 without being it"):
        gqa.merge_attention_states(o1, l1, o2, l2, out=shifted_out)
    assert stub_runtime.stub_merges() == 0
    gqa.merge_attention_states(o1, l1, o2, l2, out=o2)
    assert stub_runtime.stub_merges() == 1


def test_merge_cuda_array_interface_needs_outputs(stub_compiler, stub_runtime):
    o = [FakeCudaArray((1, 2, 3, 16), "<f4", ptr=0x1000 * (i + 1)) for i in range(3)]
    lse = [FakeCudaArray((1, 2, 3), "<f4", ptr=0x10000 * (i + 1)) for i in range(3)]
    with pytest.raises(TypeError, match="out= is required when o1 is not a torch tensor"):
        gqa.merge_attention_states(o[0], lse[0], o[1], lse[1])
    with pytest.raises(TypeError, match="out_lse= is required"):
        gqa.merge_attention_states(o[0], lse[0], o[1], lse[1], out=o[2])
    assert gqa.merge_attention_states(o[0], lse[0], o[1], lse[1], out=o[2], out_lse=lse[2]) == (o[2], lse[2])
    args = last_merge_args(stub_runtime)
    assert [args[n] for n in ("out_a", "lse_a", "out_b", "lse_b", "out", "lse")] == [
        0x1000, 0x10000, 0x2000, 0x20000, 0x3000, 0x30000]
    assert args["dtype"] == _runtime.DTYPE["f32"] and stub_runtime.stub_last_ordinal() == 0
    readonly = FakeCudaArray((1, 2, 3, 16), "<f4", ptr=0x4000, readonly=True)
    with pytest.raises(ValueError, match="out is read-only"):
        gqa.merge_attention_states(o[0], lse[0], o[1], lse[1], out=readonly, out_lse=lse[2])


def test_merge_on_the_tensors_device(stub_compiler, stub_runtime):
    gqa.merge_attention_states(*parts(device="cuda:2"))
    assert stub_runtime.stub_last_ordinal() == 2


def _edit(indices, **kw):
    """parts() with the inputs at ``indices`` (an int or a tuple) replaced by FakeTensors made from ``kw``."""
    def make():
        ins = list(parts())
        for index in (indices,) if isinstance(indices, int) else indices:
            old = ins[index]
            ins[index] = FakeTensor(kw.get("shape", old.shape), kw.get("dtype", old.dtype[len("torch."):]),
                                    kw.get("device", "cuda:0"), strides=kw.get("strides"))
        return ins
    return make


@pytest.mark.parametrize("make, kwargs, error, match", [
    (_edit(2, dtype="float16"), {}, TypeError, r"o2 must be bfloat16 \(o1's dtype"),
    (_edit(0, dtype="float64"), {}, TypeError, "o1 has unsupported dtype float64"),
    (_edit(1, dtype="float16"), {}, TypeError, r"lse1 must be float32 \(\(B, H, S\) whatever the layout\), "
                                               r"got float16"),
    (_edit(3, shape=(2, 8, 4)), {}, ValueError, r"lse1 and lse2 must have one shape"),
    (_edit(2, shape=(2, 8, 5, 32)), {}, ValueError, r"o1 and o2 must have one shape"),
    (_edit((1, 3), shape=(2, 5, 8)), {}, ValueError, r"lse1 must have shape \(2, 8, 5\) \(B, H, S\)"),
    (parts, dict(layout="bshd"), ValueError, r"lse1 must have shape \(2, 5, 8\) \(B, H, S\), got \(2, 8, 5\)"),
    (_edit(0, strides=(2560, 64, 512, 1)), {}, ValueError, r"o1 must be contiguous"),
    (_edit(3, strides=(1, 2, 16)), {}, ValueError, r"lse2 must be contiguous"),
    (_edit(2, device="cuda:1"), {}, ValueError, r"o2 is on cuda:1 but o1 is on cuda:0"),
    (_edit(2, device="cpu"), {}, ValueError, r"o2 is on cpu, but o1, lse1, o2, lse2 include CUDA tensors"),
    (parts, dict(out=FakeTensor((2, 8, 5, 64), "float16")), TypeError, r"out must be bfloat16"),
    (parts, dict(out=FakeTensor((2, 5, 8, 64), "bfloat16")), ValueError, r"out has shape \(2, 5, 8, 64\), "
                                                                         r"expected \(2, 8, 5, 64\)"),
    (parts, dict(out_lse=FakeTensor((2, 8, 5), "bfloat16")), TypeError, r"out_lse must be float32"),
    (parts, dict(out_lse=FakeTensor((2, 8, 5), "float32", "cuda:1")), ValueError, r"out_lse is on cuda:1"),
    (parts, dict(layout="sbhd"), ValueError, r"layout"),
    (parts, dict(chip="hopper"), ValueError, r"chip must look like"),
])
def test_merge_input_checks(stub_compiler, stub_runtime, make, kwargs, error, match):
    with pytest.raises(error, match=match):
        gqa.merge_attention_states(*make(), **kwargs)
    assert stub_runtime.stub_merges() == 0


def test_merge_numpy_beside_cuda_tensors_is_refused():
    import numpy as np

    o1, l1, o2, _ = parts()
    with pytest.raises(ValueError, match="lse2 is on cpu, but .* include CUDA tensors"):
        gqa.merge_attention_states(o1, l1, o2, np.zeros((2, 8, 5), np.float32))


def test_merge_of_nothing_launches_nothing(stub_compiler, stub_runtime):
    out, lse = gqa.merge_attention_states(*parts(S=0))
    assert out.shape == (2, 8, 0, 64) and lse.shape == (2, 8, 0)
    gqa.merge_attention_states(*parts(varlen=True, S=0))
    assert stub_runtime.stub_merges() == 0 and stub_compiler.stub_compiler_calls() == 0


def test_merge_launch_error_carries_runtime_message(stub_compiler, stub_runtime):
    with pytest.raises(gqa.LaunchError, match=r"merging attention states failed \(GQA_ERROR_INVALID_ARGUMENT\): "
                                              r"stub: batch 13 is unlucky"):
        gqa.merge_attention_states(*parts(B=13))


def test_merge_kernel_argument(stub_compiler, stub_runtime, fake_compiler):
    merge = gqa.compile_merge_states(8, 64, layout="bshd")
    o1, l1, o2, l2 = parts("bshd")
    gqa.merge_attention_states(o1, l1, o2, l2, layout="bshd", kernel=merge)
    with pytest.raises(gqa.ConfigMismatchError, match="kernel= does not match this merge: layout: requested 'bhsd'"):
        gqa.merge_attention_states(*parts(), kernel=merge)
    attention = gqa.compile(8, 2, 64, dtype="bf16")
    with pytest.raises(gqa.ConfigMismatchError, match="kind: requested a merge_states kernel, got KernelConfig"):
        gqa.merge_attention_states(*parts(), kernel=attention)
    q, k = FakeTensor((2, 8, 5, 64), "bfloat16"), FakeTensor((2, 2, 9, 64), "bfloat16")
    with pytest.raises(gqa.ConfigMismatchError, match="kind: requested an attention kernel, got MergeConfig"):
        gqa.attention(q, k, k, kernel=merge)


def test_merge_kernel_of_fixed_sizes(stub_compiler, stub_runtime, tmp_path):
    merge = gqa.compile_merge_states(8, 64)
    meta = copy.deepcopy(merge.metadata)
    meta["config"].update(batch=2, seq_q=5)
    path = tmp_path / "fixed.json"
    path.write_text(__import__("json").dumps(meta))
    fixed = gqa.load_kernel(merge.ptx_path, path)
    assert fixed.fixed_sizes == {"batch": 2, "seq_q": 5}
    gqa.merge_attention_states(*parts(B=2, S=5), kernel=fixed)
    with pytest.raises(ValueError, match="the merge kernel was compiled for seq_q = 5, but this call has 6"):
        gqa.merge_attention_states(*parts(B=2, S=6), kernel=fixed)


# ----------------------------------------------------------------------------- the binding (stub runtime)


def test_plan_merge_through_the_binding(stub_runtime, merge_metadata):
    """gqa_plan_merge gets the MergeArgs Python fills and returns a gqa_kernel_launch_config read back right."""
    lib = _runtime.get_library()
    args = _runtime.merge_args("bf16", "bshd", 2, 100, 64, 128, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000)
    plan = lib.plan_merge(merge_metadata, args)
    assert plan == {"name": "gqa_merge_states", "role": "merge", "grid": [1600, 1, 2], "block": [128, 1, 1],
                    "dynamic_shared_memory_bytes": 0}
    args.batch = 13
    with pytest.raises(gqa.LaunchError, match=r"planning a merge failed \(GQA_ERROR_INVALID_ARGUMENT\): stub: "
                                              r"batch 13 is unlucky"):
        lib.plan_merge(merge_metadata, args)
    with lib.parse_metadata(merge_metadata) as meta:
        assert meta.kind() == "merge_states"
        assert meta.merge_config() == {"heads": 64, "head_dim_v": 128, "dtype": "bf16", "layout": "bshd",
                                       "varlen": 1, "batch": 1, "seq_q": 7}


def test_merge_args_zero_pointers_are_null():
    args = _runtime.merge_args("f32", "bhsd", 1, 2, 3, 4, 0, 0, 0, 0, 0, 0)
    assert all(getattr(args, n) is None for n in ("out_a", "lse_a", "out_b", "lse_b", "out", "lse", "stream"))
    assert (args.dtype, args.layout) == (_runtime.DTYPE["f32"], _runtime.LAYOUT["bhsd"])
    assert _runtime.ROLE[4] == "merge" and _runtime.KIND == {1: "attention", 2: "merge_states"}


def test_runtime_of_abi_3_is_named(tmp_path, monkeypatch):
    """A runtime built before merge kernels (ABI 3, without their entry points) is reported by its version."""
    src = tmp_path / "abi3.c"
    src.write_text('#include <stdint.h>\nconst char *gqa_status_name(int s) { (void)s; return "x"; }\n'
                   'const char *gqa_last_error_message(void) { return ""; }\n'
                   "int32_t gqa_runtime_abi_version(void) { return 3; }\n")
    lib = build_shared_lib(src, tmp_path / "libgqa_runtime.so")
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(lib))
    with pytest.raises(gqa.RuntimeLibraryNotFoundError, match="has runtime ABI version 3, but .* version 4: rebuild"):
        _runtime.get_library()
