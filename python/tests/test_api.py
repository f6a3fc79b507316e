"""gqa.attention input checks and launch plumbing, with duck-typed fake CUDA tensors.

No GPU is needed: FakeTensor mimics a torch CUDA tensor (no memory behind it),
FakeCudaArray exposes only __cuda_array_interface__, and a stub
libgqa_runtime.so (stub_runtime.c, built with the system C compiler) records
what the launcher passes.  The stub is compiled against Runtime.h, so its structs are the header's.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gqa
from gqa import _runtime
from conftest import FakeCudaArray, FakeTensor, build_shared_lib, last_args

HERE = Path(__file__).resolve().parent


def qkv(layout="bhsd", B=2, Hq=8, Hkv=2, Sq=16, Skv=32, D=64, Dv=None, dtype="float16", device="cuda:0"):
    Dv = D if Dv is None else Dv

    def t(h, s, d):
        return FakeTensor((B, h, s, d) if layout == "bhsd" else (B, s, h, d), dtype, device)

    return t(Hq, Sq, D), t(Hkv, Skv, D), t(Hkv, Skv, Dv)


def transposed_strides(shape):
    """Strides of a (B, H, S, D) view of a contiguous (B, S, H, D) buffer."""
    B, H, S, D = shape
    return (S * H * D, D, H * D, 1)


# ----------------------------------------------------------------------------- type and device


def test_numpy_input_takes_the_cpu_path():
    """Host arrays go to the in-process CPU path (tests/test_host.py); without the library it is named."""
    a = np.zeros((1, 1, 1, 8), dtype=np.float16)
    with pytest.raises(gqa.CompilerNotFoundError, match=r"libgqa_compiler\.so not found: set \$GQA_COMPILER_LIB"):
        gqa.attention(a, a, a)


def test_arbitrary_object_is_rejected():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="v must be a CUDA tensor .* got builtins.list"):
        gqa.attention(q, k, [1, 2])


def test_cpu_tensor():
    q, k, v = qkv()
    cpu = FakeTensor(k.shape, "float16", "cpu")
    with pytest.raises(ValueError, match="k is on device cpu; gqa.attention needs CUDA tensors"):
        gqa.attention(q, cpu, v)


def test_tensors_on_different_devices():
    q, k, _ = qkv()
    _, _, v1 = qkv(device="cuda:1")
    with pytest.raises(ValueError, match="v is on cuda:1 but q is on cuda:0"):
        gqa.attention(q, k, v1)


def test_unsupported_dtype():
    q, k, v = qkv(dtype="float64")
    with pytest.raises(TypeError, match="q has unsupported dtype float64; gqa supports float16, bfloat16 and float32"):
        gqa.attention(q, k, v)


def test_dtype_mismatch():
    q, k, _ = qkv(dtype="float16")
    _, _, v = qkv(dtype="bfloat16")
    with pytest.raises(TypeError, match="dtype mismatch: v is bfloat16 but q is float16"):
        gqa.attention(q, k, v)


# ----------------------------------------------------------------------------- shapes


def test_rank():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"k must be 4-D .* got 3-D shape \(2, 2, 32\)"):
        gqa.attention(q, FakeTensor((2, 2, 32)), v)


def test_heads_not_dividing():
    q, k, v = qkv(Hq=6, Hkv=4)
    with pytest.raises(ValueError, match=r"q heads \(6\) must be a multiple of k/v heads \(4\)"):
        gqa.attention(q, k, v)


def test_head_dim_mismatch():
    q, _, v = qkv()
    k = FakeTensor((2, 2, 32, 128))
    with pytest.raises(ValueError, match=r"head_dim mismatch: k has head_dim 128 at dim 3 \(head_dim\), q has 64"):
        gqa.attention(q, k, v)


def test_batch_mismatch():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"batch mismatch: v has batch 3 at dim 0 \(batch\), q has 2"):
        gqa.attention(q, k, FakeTensor((3, 2, 32, 64)))


def test_kv_length_mismatch_bshd():
    q, k, _ = qkv("bshd")
    v = FakeTensor((2, 31, 2, 64))
    with pytest.raises(ValueError, match=r"KV length mismatch: v has seq 31 at dim 1 \(seq\), k has 32"):
        gqa.attention(q, k, v, layout="bshd")


def test_layout_argument():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="layout must be one of"):
        gqa.attention(q, k, v, layout="BSHDX")


def test_non_contiguous():
    q, k, v = qkv()
    qt = FakeTensor(q.shape, "float16", strides=transposed_strides(q.shape))
    with pytest.raises(ValueError, match=r"q must be contiguous \(row-major in layout bhsd.*strides \(8192, 64, 512, 1\)"):
        gqa.attention(qt, k, v)


def test_size_one_dims_may_have_any_stride(isolated_env):
    q, k, v = qkv(B=1, Sq=1)
    q1 = FakeTensor(q.shape, "float16", strides=(999, 64, 7, 1))
    # passes every check, then stops at the missing compiler
    with pytest.raises(gqa.CompilerNotFoundError):
        gqa.attention(q1, k, v)


def test_cuda_array_interface_strides():
    q = FakeCudaArray((1, 2, 4, 8), "<f2", strides=(128, 64, 16, 2))  # contiguous, explicit
    k = FakeCudaArray((1, 2, 4, 8), "<f2", strides=(128, 16, 32, 2))  # transposed view
    v = FakeCudaArray((1, 2, 4, 8), "<f2")
    out = FakeCudaArray((1, 2, 4, 8), "<f2")
    with pytest.raises(ValueError, match=r"k must be contiguous.*strides \(64, 8, 16, 1\)"):
        gqa.attention(q, k, v, out=out)


# ----------------------------------------------------------------------------- kv_lens and out


def test_kv_lens_checks():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"kv_lens must have shape \(2,\) .* got \(3,\)"):
        gqa.attention(q, k, v, kv_lens=FakeTensor((3,), "int32"))
    with pytest.raises(TypeError, match="kv_lens must be int32 or int64, got float32"):
        gqa.attention(q, k, v, kv_lens=FakeTensor((2,), "float32"))
    with pytest.raises(ValueError, match="kv_lens is on device cpu"):
        gqa.attention(q, k, v, kv_lens=FakeTensor((2,), "int32", "cpu"))
    with pytest.raises(ValueError, match="kv_lens is on cuda:1 but q is on cuda:0"):
        gqa.attention(q, k, v, kv_lens=FakeTensor((2,), "int32", "cuda:1"))
    with pytest.raises(ValueError, match="kv_lens must be contiguous"):
        gqa.attention(q, k, v, kv_lens=FakeTensor((2,), "int32", strides=(2,)))
    with pytest.raises(TypeError, match="kv_lens must be a CUDA tensor"):
        gqa.attention(q, k, v, kv_lens=[3, 4])


def test_out_checks():
    q, k, v = qkv(Dv=32)
    with pytest.raises(ValueError, match=r"out has shape \(2, 8, 16, 64\), expected \(2, 8, 16, 32\)"):
        gqa.attention(q, k, v, out=FakeTensor((2, 8, 16, 64)))
    with pytest.raises(TypeError, match="dtype mismatch: out is float32 but q is float16"):
        gqa.attention(q, k, v, out=FakeTensor((2, 8, 16, 32), "float32"))
    with pytest.raises(ValueError, match="out is on cuda:1 but q is on cuda:0"):
        gqa.attention(q, k, v, out=FakeTensor((2, 8, 16, 32), device="cuda:1"))
    with pytest.raises(ValueError, match="out must be contiguous"):
        gqa.attention(q, k, v, out=FakeTensor((2, 8, 16, 32), strides=transposed_strides((2, 8, 16, 32))))


def test_out_required_for_cuda_array_interface_inputs():
    q = FakeCudaArray((1, 2, 4, 8))
    with pytest.raises(TypeError, match="out= is required when q is not a torch tensor"):
        gqa.attention(q, q, q)
    with pytest.raises(ValueError, match="out is read-only"):
        gqa.attention(q, q, q, out=FakeCudaArray((1, 2, 4, 8), readonly=True))


def test_unsupported_cuda_array_dtype():
    q = FakeCudaArray((1, 2, 4, 8), "<f8")
    with pytest.raises(TypeError, match="q has unsupported dtype float64"):
        gqa.attention(q, q, q, out=q)


def test_option_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="window left must be >= -1"):
        gqa.attention(q, k, v, window=(-3, 0))
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        gqa.attention(q, k, v, scale=-1.0)
    with pytest.raises(ValueError, match="softcap"):
        gqa.attention(q, k, v, softcap=float("inf"))


# ----------------------------------------------------------------------------- kernel lookup


def test_no_compiler_no_cache():
    q, k, v = qkv()
    with pytest.raises(gqa.CompilerNotFoundError, match="no cached kernel"):
        gqa.attention(q, k, v)


def test_compiles_matching_kernel_then_needs_runtime(fake_compiler, isolated_env):
    q, k, v = qkv("bshd", dtype="bfloat16", Dv=32)
    with pytest.raises(gqa.RuntimeLibraryNotFoundError, match="libgqa_runtime.so not found"):
        gqa.attention(q, k, v, layout="bshd", causal=True, window=(64, -1), softcap=20.0)
    [call] = fake_compiler.calls
    assert call[: call.index("-o")] == [
        "--q-heads", "8", "--kv-heads", "2", "--head-dim", "64", "--head-dim-v", "32",
        "--dtype", "bf16", "--layout", "bshd", "--window", "64,0", "--softcap", "20.0", "--chip", "sm_90"]


def test_kernel_argument_must_match(fake_compiler):
    kern = gqa.compile(8, 2, 64, dtype="f16", causal=True)
    q, k, v = qkv()
    with pytest.raises(gqa.ConfigMismatchError, match=r"kernel= does not match this call: window: requested \(-1, -1\)"):
        gqa.attention(q, k, v, kernel=kern)


def test_fixed_size_kernel(fake_compiler):
    kern = gqa.compile(8, 2, 64, dtype="f16")
    kern.metadata["config"]["seq_kv"] = 128
    q, k, v = qkv()
    with pytest.raises(ValueError, match="the kernel was compiled for seq_kv = 128, but this call has 32"):
        gqa.attention(q, k, v, kernel=kern)


def test_empty_work_needs_no_kernel():
    q, k, v = qkv(B=0)
    out = gqa.attention(q, k, v)
    assert out.shape == (0, 8, 16, 64)
    q, k, v = qkv(Sq=0)
    assert gqa.attention(q, k, v).shape == (2, 8, 0, 64)


def test_empty_kv_gives_zeros():
    q, k, v = qkv(Skv=0)
    out = gqa.attention(q, k, v, causal=True)
    assert out.zeroed and out.shape == (2, 8, 16, 64)


def test_torch_is_not_imported(tmp_path):
    code = "import sys, gqa; gqa.reference; assert 'torch' not in sys.modules, 'torch imported'"
    env_path = str(HERE.parent)
    proc = subprocess.run([sys.executable, "-c", code], cwd=env_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- stub runtime


# The stub_runtime fixture and last_args() are in conftest.py (test_torch_op_cuda.py uses them too).


def test_launch_passes_pointers_shapes_stream(fake_compiler, stub_runtime):
    q, k, v = qkv("bshd", B=3, Sq=5, Skv=40, dtype="bfloat16", Dv=32)
    out = gqa.attention(q, k, v, layout="bshd", causal=True)
    assert isinstance(out, FakeTensor) and out.shape == (3, 5, 8, 32) and out.dtype == "torch.bfloat16"
    args = last_args(stub_runtime)
    assert (args["q"], args["k"], args["v"], args["out"]) == (q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr())
    assert args["kv_lens"] is None and args["stream"] is None and args["workspace"] is None
    assert (args["batch"], args["seq_q"], args["seq_kv"]) == (3, 5, 40)
    assert (args["q_heads"], args["kv_heads"], args["head_dim"], args["head_dim_v"]) == (8, 2, 64, 32)
    assert (args["dtype"], args["layout"]) == (_runtime.DTYPE["bf16"], _runtime.LAYOUT["bshd"])
    # The kernel is loaded once per kernel and device; the device runtime is created once.
    gqa.attention(q, k, v, layout="bshd", causal=True, stream=0xABC)
    assert stub_runtime.stub_loads() == 1 and stub_runtime.stub_creates() == 1
    assert last_args(stub_runtime)["stream"] == 0xABC

    class Stream:
        cuda_stream = 0xDEF

    given = FakeTensor((3, 5, 8, 32), "bfloat16")
    assert gqa.attention(q, k, v, layout="bshd", causal=True, out=given, stream=Stream()) is given
    assert last_args(stub_runtime)["out"] == given.data_ptr()
    assert last_args(stub_runtime)["stream"] == 0xDEF


def test_launch_on_the_tensors_device(fake_compiler, stub_runtime):
    q, k, v = qkv(device="cuda:3")
    gqa.attention(q, k, v)
    assert stub_runtime.stub_last_ordinal() == 3


def test_launch_with_kv_lens(fake_compiler, stub_runtime):
    q, k, v = qkv()
    lens = FakeTensor((2,), "int32")
    gqa.attention(q, k, v, kv_lens=lens, causal=True)
    assert last_args(stub_runtime)["kv_lens"] == lens.data_ptr()
    assert "--kv-lens" in fake_compiler.calls[0]
    # the fake compiler's kernels take i32 lengths; an int64 fake tensor cannot be converted
    with pytest.raises(TypeError, match="the kernel takes kv_lens as i32, got int64"):
        gqa.attention(q, k, v, kv_lens=FakeTensor((2,), "int64"), causal=True)


def test_launch_with_cuda_array_interface(fake_compiler, stub_runtime):
    q = FakeCudaArray((1, 4, 8, 16), "<f4", ptr=0x1000)
    k = FakeCudaArray((1, 2, 8, 16), "<f4", ptr=0x2000)
    out = FakeCudaArray((1, 4, 8, 16), "<f4", ptr=0x3000)
    assert gqa.attention(q, k, k, out=out) is out
    args = last_args(stub_runtime)
    assert [args[n] for n in ("q", "k", "v", "out")] == [0x1000, 0x2000, 0x2000, 0x3000]
    assert args["dtype"] == _runtime.DTYPE["f32"]
    assert stub_runtime.stub_last_ordinal() == 0


def test_launch_error_carries_runtime_message(fake_compiler, stub_runtime):
    q, k, v = qkv(B=13)
    with pytest.raises(gqa.LaunchError,
                       match=r"launching attention failed \(GQA_ERROR_INVALID_ARGUMENT\): stub: batch 13 is unlucky"):
        gqa.attention(q, k, v)


def test_load_error_carries_runtime_message(fake_compiler, stub_runtime):
    kern = gqa.compile(8, 2, 64, dtype="f16")
    kern.metadata["kernels"][0]["name"] = "fail-load"
    q, k, v = qkv()
    with pytest.raises(gqa.LaunchError, match=r"loading .*kernel.ptx on device 0 failed \(GQA_ERROR_CUDA\): stub: cuModuleLoadData"):
        gqa.attention(q, k, v, kernel=kern)


def test_runtime_missing_symbol(tmp_path, monkeypatch):
    src = tmp_path / "empty.c"
    src.write_text("int unrelated(void) { return 0; }\n")
    lib = build_shared_lib(src, tmp_path / "libgqa_runtime.so")
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(lib))
    with pytest.raises(gqa.RuntimeLibraryNotFoundError, match="has no symbol gqa_status_name"):
        _runtime.get_library()


def test_runtime_abi_version_mismatch(tmp_path, monkeypatch):
    src = tmp_path / "v2.c"
    src.write_text((HERE / "stub_runtime.c").read_text().replace(
        "return GQA_RUNTIME_ABI_VERSION;", "return GQA_RUNTIME_ABI_VERSION + 1;"))
    lib = build_shared_lib(src, tmp_path / "libgqa_runtime.so")
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(lib))
    with pytest.raises(gqa.RuntimeLibraryNotFoundError, match="has runtime ABI version 5, but .* version 4"):
        _runtime.get_library()


def test_runtime_env_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(tmp_path / "nope.so"))
    with pytest.raises(gqa.RuntimeLibraryNotFoundError, match="GQA_RUNTIME_LIB is set to"):
        _runtime.get_library()


# ----------------------------------------------------------------------------- paged KV cache


def paged_qkv(layout="bhsd", B=2, Hq=8, Hkv=2, Sq=4, D=64, Dv=None, num_pages=12, page_size=16, max_pages=3,
              dtype="float16", table_dtype="int32"):
    """q in layout, k/v page pools (num_pages, page_size, Hkv, D(v)) and a (B, max_pages) block table."""
    Dv = D if Dv is None else Dv
    q = FakeTensor((B, Hq, Sq, D) if layout == "bhsd" else (B, Sq, Hq, D), dtype)
    k = FakeTensor((num_pages, page_size, Hkv, D), dtype)
    v = FakeTensor((num_pages, page_size, Hkv, Dv), dtype)
    return q, k, v, FakeTensor((B, max_pages), table_dtype)


def test_block_table_type_and_dtype():
    q, k, v, _ = paged_qkv()
    with pytest.raises(TypeError, match="block_table must be a CUDA tensor .* got builtins.list"):
        gqa.attention(q, k, v, block_table=[[0, 1, 2], [3, 4, 5]])
    with pytest.raises(TypeError, match=r"block_table must be a CUDA tensor.*numpy\.ndarray"):
        gqa.attention(q, k, v, block_table=np.zeros((2, 3), dtype=np.int32))
    with pytest.raises(TypeError, match=r"block_table must be int32 \(page indices, as the kernels read them\), "
                                        r"got float32$"):
        gqa.attention(q, k, v, block_table=FakeTensor((2, 3), "float32"))
    # an int64 table that is not a torch tensor cannot be converted
    with pytest.raises(TypeError, match=r"block_table must be int32 .* got int64; convert it with \.to\(torch\.int32\)"):
        gqa.attention(q, k, v, block_table=FakeTensor((2, 3), "int64"))
    with pytest.raises(TypeError, match="block_table must be int32 .* got int64"):
        gqa.attention(q, k, v, block_table=FakeCudaArray((2, 3), "<i8"))


def test_block_table_device():
    q, k, v, _ = paged_qkv()
    with pytest.raises(ValueError, match="block_table is on device cpu; gqa.attention needs CUDA tensors"):
        gqa.attention(q, k, v, block_table=FakeTensor((2, 3), "int32", "cpu"))
    with pytest.raises(ValueError, match="block_table is on cuda:1 but q is on cuda:0"):
        gqa.attention(q, k, v, block_table=FakeTensor((2, 3), "int32", "cuda:1"))


def test_block_table_shape_and_layout():
    q, k, v, _ = paged_qkv()
    with pytest.raises(ValueError, match=r"block_table must be 2-D \(batch, max_pages\), got 1-D shape \(6,\)"):
        gqa.attention(q, k, v, block_table=FakeTensor((6,), "int32"))
    with pytest.raises(ValueError, match=r"batch mismatch: block_table has 3 rows at dim 0 \(batch\), q has batch 2"):
        gqa.attention(q, k, v, block_table=FakeTensor((3, 3), "int32"))
    with pytest.raises(ValueError, match=r"block_table must be contiguous \(row-major \(batch, max_pages\), no padding\); "
                                         r"got shape \(2, 3\) with strides \(1, 2\)"):
        gqa.attention(q, k, v, block_table=FakeTensor((2, 3), "int32", strides=(1, 2)))


def test_page_pool_shapes():
    q, k, v, table = paged_qkv()
    with pytest.raises(ValueError, match=r"page size mismatch: v has page size 8 at dim 1 \(page_size\), k has 16"):
        gqa.attention(q, k, FakeTensor((12, 8, 2, 64)), block_table=table)
    with pytest.raises(ValueError, match=r"page pool mismatch: v has 11 pages at dim 0 \(num_pages\), k has 12"):
        gqa.attention(q, k, FakeTensor((11, 16, 2, 64)), block_table=table)
    with pytest.raises(ValueError, match=r"KV head mismatch: v has 4 heads at dim 2 \(kv_heads\), k has 2"):
        gqa.attention(q, k, FakeTensor((12, 16, 4, 64)), block_table=table)
    with pytest.raises(ValueError, match=r"head_dim mismatch: k has head_dim 128 at dim 3 \(head_dim\), q has 64"):
        gqa.attention(q, FakeTensor((12, 16, 2, 128)), FakeTensor((12, 16, 2, 128)), block_table=table)
    with pytest.raises(ValueError, match=r"k must be a 4-D page pool \(num_pages, page_size, kv_heads, head_dim\) "
                                         r"when block_table is given, got 5-D shape"):
        gqa.attention(q, FakeTensor((2, 12, 16, 2, 64)), v, block_table=table)
    with pytest.raises(ValueError, match=r"q heads \(8\) must be a multiple of k/v heads \(3\)"):
        gqa.attention(q, FakeTensor((12, 16, 3, 64)), FakeTensor((12, 16, 3, 64)), block_table=table)
    with pytest.raises(TypeError, match="dtype mismatch: k is bfloat16 but q is float16"):
        gqa.attention(q, FakeTensor((12, 16, 2, 64), "bfloat16"), v, block_table=table)


def test_page_pools_must_be_contiguous():
    q, k, v, table = paged_qkv()
    # a (num_pages, page_size, Hkv, D) view of a (num_pages, Hkv, page_size, D) buffer
    kt = FakeTensor(k.shape, "float16", strides=(16 * 2 * 64, 64, 16 * 64, 1))
    with pytest.raises(ValueError, match=r"k must be contiguous \(a row-major page pool \(num_pages, page_size, "
                                         r"kv_heads, head_dim\), no padding\); got shape \(12, 16, 2, 64\)"):
        gqa.attention(q, kt, v, block_table=table)


def test_paged_out_shape_follows_layout():
    q, k, v, table = paged_qkv("bshd", Dv=32)
    with pytest.raises(ValueError, match=r"out has shape \(2, 8, 4, 32\), expected \(2, 4, 8, 32\)"):
        gqa.attention(q, k, v, layout="bshd", block_table=table, out=FakeTensor((2, 8, 4, 32)))


def test_paged_kv_lens_checks():
    q, k, v, table = paged_qkv()
    with pytest.raises(ValueError, match=r"kv_lens must have shape \(2,\)"):
        gqa.attention(q, k, v, block_table=table, kv_lens=FakeTensor((12,), "int32"))


def test_paged_kernel_argument_must_match(fake_compiler):
    q, k, v, table = paged_qkv()
    contiguous = gqa.compile(8, 2, 64, dtype="f16")
    with pytest.raises(gqa.ConfigMismatchError, match="kernel= does not match this call: page_size: requested 16, "
                                                      "kernel has 0"):
        gqa.attention(q, k, v, block_table=table, kernel=contiguous)
    paged = gqa.compile(8, 2, 64, dtype="f16", page_size=8)
    with pytest.raises(gqa.ConfigMismatchError, match="page_size: requested 16, kernel has 8"):
        gqa.attention(q, k, v, block_table=table, kernel=paged)
    # and a paged kernel for contiguous K/V
    q, k, v = qkv()
    with pytest.raises(gqa.ConfigMismatchError, match="page_size: requested 0, kernel has 8"):
        gqa.attention(q, k, v, kernel=paged)


def test_paged_compiles_with_page_size(fake_compiler):
    q, k, v, table = paged_qkv("bshd", dtype="bfloat16")
    with pytest.raises(gqa.RuntimeLibraryNotFoundError):
        gqa.attention(q, k, v, layout="bshd", causal=True, block_table=table)
    [call] = fake_compiler.calls
    assert call[: call.index("-o")] == [
        "--q-heads", "8", "--kv-heads", "2", "--head-dim", "64", "--dtype", "bf16", "--layout", "bshd",
        "--causal", "--page-size", "16", "--chip", "sm_90"]


def test_paged_fixed_seq_kv_kernel(fake_compiler):
    q, k, v, table = paged_qkv()
    kern = gqa.compile(8, 2, 64, dtype="f16", page_size=16)
    kern.metadata["config"]["seq_kv"] = 64
    with pytest.raises(ValueError, match="the kernel was compiled for seq_kv = 64, but this call has 48"):
        gqa.attention(q, k, v, block_table=table, kernel=kern)


def test_paged_no_pages_gives_zeros():
    q, k, v, _ = paged_qkv(num_pages=0)
    out = gqa.attention(q, k, v, block_table=FakeTensor((2, 0), "int32"))
    assert out.zeroed and out.shape == (2, 8, 4, 64)
    with pytest.raises(ValueError, match=r"k has 0 pages at dim 0 \(num_pages\), but block_table \(2, 3\) indexes"):
        gqa.attention(q, k, v, block_table=FakeTensor((2, 3), "int32"))


def test_launch_paged(fake_compiler, stub_runtime):
    q, k, v, table = paged_qkv("bshd", B=3, Sq=1, Dv=32, num_pages=40, page_size=16, max_pages=5,
                               dtype="bfloat16")
    out = gqa.attention(q, k, v, layout="bshd", causal=True, block_table=table)
    assert isinstance(out, FakeTensor) and out.shape == (3, 1, 8, 32) and out.dtype == "torch.bfloat16"
    args = last_args(stub_runtime)
    assert (args["q"], args["k"], args["v"], args["out"]) == (q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr())
    assert args["block_table"] == table.data_ptr() and args["num_pages"] == 40
    assert args["kv_lens"] is None and args["stream"] is None and args["workspace"] is None
    assert (args["batch"], args["seq_q"], args["seq_kv"]) == (3, 1, 5 * 16)
    assert (args["q_heads"], args["kv_heads"], args["head_dim"], args["head_dim_v"]) == (8, 2, 64, 32)
    assert (args["dtype"], args["layout"]) == (_runtime.DTYPE["bf16"], _runtime.LAYOUT["bshd"])
    assert "--page-size" in fake_compiler.calls[0]
    # a contiguous call through the same runtime leaves block_table and num_pages unset
    q2, k2, v2 = qkv()
    gqa.attention(q2, k2, v2)
    args = last_args(stub_runtime)
    assert args["block_table"] is None and args["num_pages"] == 0 and args["seq_kv"] == 32
    assert stub_runtime.stub_loads() == 2  # two kernels: paged and contiguous


def test_launch_paged_with_kv_lens(fake_compiler, stub_runtime):
    q, k, v, table = paged_qkv(page_size=1, num_pages=100, max_pages=37)
    lens = FakeTensor((2,), "int32")
    gqa.attention(q, k, v, block_table=table, kv_lens=lens, window=(8, 0))
    args = last_args(stub_runtime)
    assert args["kv_lens"] == lens.data_ptr() and args["block_table"] == table.data_ptr()
    assert args["num_pages"] == 100 and args["seq_kv"] == 37
    [call] = fake_compiler.calls
    assert "--kv-lens" in call and call[call.index("--page-size") + 1] == "1"


def test_launch_paged_with_cuda_array_interface(fake_compiler, stub_runtime):
    q = FakeCudaArray((1, 4, 2, 16), "<f4", ptr=0x1000)
    pool = FakeCudaArray((6, 8, 2, 16), "<f4", ptr=0x2000)
    table = FakeCudaArray((1, 2), "<i4", ptr=0x3000)
    out = FakeCudaArray((1, 4, 2, 16), "<f4", ptr=0x4000)
    assert gqa.attention(q, pool, pool, out=out, block_table=table) is out
    args = last_args(stub_runtime)
    assert [args[n] for n in ("q", "k", "v", "out", "block_table")] == [0x1000, 0x2000, 0x2000, 0x4000, 0x3000]
    assert (args["num_pages"], args["seq_kv"]) == (6, 16)


def test_launch_sinks_and_lse(fake_compiler, stub_runtime):
    """Sinks and the LSE compile a kernel with them and reach it as the sinks and lse pointers."""
    q, k, v = qkv("bshd", B=3, Sq=5, Skv=40)
    sinks = FakeTensor((8,), "float32")
    out, lse = gqa.attention(q, k, v, layout="bshd", causal=True, sinks=sinks, return_lse=True)
    assert lse.shape == (3, 8, 5) and lse.dtype == "torch.float32"  # [B, Hq, Sq] whatever the layout
    args = last_args(stub_runtime)
    assert (args["out"], args["sinks"], args["lse"]) == (out.data_ptr(), sinks.data_ptr(), lse.data_ptr())
    [call] = fake_compiler.calls
    assert "--sinks" in call and "--return-lse" in call
    # lse= is written in place; sinks alone give a kernel without the LSE.
    given = FakeTensor((3, 8, 5), "float32")
    assert gqa.attention(q, k, v, layout="bshd", causal=True, sinks=sinks, return_lse=True, lse=given)[1] is given
    gqa.attention(q, k, v, layout="bshd", causal=True, sinks=sinks)
    args = last_args(stub_runtime)
    assert args["sinks"] == sinks.data_ptr() and args["lse"] is None
    assert "--return-lse" not in fake_compiler.calls[-1]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(sinks=FakeTensor((8,), "float16")), TypeError, "sinks must be float32, got float16"),
    (dict(sinks=FakeTensor((2,), "float32")), ValueError, r"sinks has shape \(2,\), expected \(8,\)"),
    (dict(sinks=FakeTensor((8,), "float32", device="cuda:1")), ValueError, "sinks is on cuda:1 but q is on cuda:0"),
    (dict(lse=FakeTensor((2, 8, 16), "float32")), ValueError, "lse= is an output of return_lse=True"),
    (dict(return_lse=True, lse=FakeTensor((2, 16, 8), "float32")), ValueError,
     r"lse has shape \(2, 16, 8\), expected \(2, 8, 16\)"),
])
def test_sinks_and_lse_arguments_are_checked(fake_compiler, stub_runtime, kwargs, error, match):
    q, k, v = qkv()
    with pytest.raises(error, match=match):
        gqa.attention(q, k, v, **kwargs)
    assert not fake_compiler.calls


def test_launch_varlen(fake_compiler, stub_runtime):
    """A ragged batch on the GPU: packed q/out, the offsets and the token count reach the kernel, seq_q is
    max_seqlen_q, and the kernel is compiled with --varlen."""
    q, cache = FakeTensor((23, 8, 64), "bfloat16"), FakeTensor((3, 100, 2, 64), "bfloat16")
    cu, lens = FakeTensor((4,), "int32"), FakeTensor((3,), "int32")
    out, lse = gqa.attention(q, cache, cache, layout="bshd", causal=True, kv_lens=lens, cu_seqlens_q=cu,
                             max_seqlen_q=17, return_lse=True)
    assert out.shape == (23, 8, 64) and lse.shape == (8, 23)  # flash_attn's varlen shapes
    args = last_args(stub_runtime)
    assert (args["cu_seqlens_q"], args["total_q"], args["kv_lens"]) == (cu.data_ptr(), 23, lens.data_ptr())
    assert (args["batch"], args["seq_q"], args["seq_kv"]) == (3, 17, 100)
    assert args["cu_seqlens_k"] is None and args["total_kv"] == 0
    assert "--varlen" in fake_compiler.calls[-1]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(), ValueError, "max_seqlen_q is required"),
    (dict(max_seqlen_q=0), ValueError, "max_seqlen_q is required"),
    (dict(max_seqlen_q=4, layout="bhsd"), ValueError, "layout must be 'bshd'"),
    (dict(max_seqlen_q=4, cu=FakeTensor((4,), "int64")), TypeError, "cu_seqlens_q must be int32"),
    (dict(max_seqlen_q=4, cu_seqlens_k=FakeTensor((4,), "int32")), ValueError, "must be packed tokens"),
    (dict(max_seqlen_q=4, max_seqlen_k=9), ValueError, "max_seqlen_k= describes packed K/V"),
])
def test_varlen_arguments_are_checked(fake_compiler, stub_runtime, kwargs, error, match):
    q, cache = FakeTensor((23, 8, 64), "bfloat16"), FakeTensor((3, 100, 2, 64), "bfloat16")
    cu = kwargs.pop("cu", FakeTensor((4,), "int32"))
    with pytest.raises(error, match=match):
        gqa.attention(q, cache, cache, **{"layout": "bshd", **kwargs}, cu_seqlens_q=cu)
    assert not fake_compiler.calls


def test_launch_packed_kv(fake_compiler, stub_runtime):
    """Packed K/V on the GPU: the key offsets and the packed key count reach the kernel, seq_kv is
    max_seqlen_k, and the kernel is compiled with --packed-kv."""
    q, k, v = FakeTensor((23, 8, 64), "bfloat16"), FakeTensor((90, 2, 64), "bfloat16"), FakeTensor((90, 2, 32), "bfloat16")
    cu_q, cu_k = FakeTensor((4,), "int32"), FakeTensor((4,), "int32")
    out = gqa.attention(q, k, v, layout="bshd", cu_seqlens_q=cu_q, max_seqlen_q=17, cu_seqlens_k=cu_k,
                        max_seqlen_k=50)
    assert out.shape == (23, 8, 32)
    args = last_args(stub_runtime)
    assert (args["cu_seqlens_k"], args["total_kv"], args["kv_lens"]) == (cu_k.data_ptr(), 90, None)
    assert (args["batch"], args["seq_q"], args["seq_kv"], args["head_dim_v"]) == (3, 17, 50, 32)
    assert "--packed-kv" in fake_compiler.calls[-1]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(), ValueError, "max_seqlen_k is required"),
    (dict(max_seqlen_k=-1), ValueError, "max_seqlen_k is required"),
    # 90 keys: a launch that says none would skip them.
    (dict(max_seqlen_k=0), ValueError, r"max_seqlen_k is required: .* an int >= 1 .* got 0"),
    (dict(max_seqlen_k=8, cu_k=FakeTensor((3,), "int32")), ValueError, "cu_seqlens_k has 3 offsets, but cu_seqlens_q has 4"),
    (dict(max_seqlen_k=8, cu_k=FakeTensor((4,), "int64")), TypeError, "cu_seqlens_k must be int32"),
    (dict(max_seqlen_k=8, v=FakeTensor((91, 2, 64), "bfloat16")), ValueError, "v must be packed tokens"),
    (dict(max_seqlen_k=8, block_table=FakeTensor((3, 2), "int32")), ValueError, "cannot be combined with a block_table"),
])
def test_packed_kv_arguments_are_checked(fake_compiler, stub_runtime, kwargs, error, match):
    q, k = FakeTensor((23, 8, 64), "bfloat16"), FakeTensor((90, 2, 64), "bfloat16")
    v, cu_k = kwargs.pop("v", k), kwargs.pop("cu_k", FakeTensor((4,), "int32"))
    with pytest.raises(error, match=match):
        gqa.attention(q, k, v, layout="bshd", cu_seqlens_q=FakeTensor((4,), "int32"), max_seqlen_q=17,
                      cu_seqlens_k=cu_k, **kwargs)
    assert not fake_compiler.calls


def test_packed_kv_with_no_keys_or_no_queries_launches_nothing(fake_compiler, stub_runtime):
    """No packed key at all: every row sees none (O = 0, whatever max_seqlen_k says); no query token: nothing
    to compute, max_seqlen_q 0 is then accepted."""
    qt, kt = FakeTensor((5, 8, 16), "float32"), FakeTensor((0, 2, 16), "float32")
    out = FakeTensor((5, 8, 16), "float32")
    gqa.attention(qt, kt, kt, layout="bshd", cu_seqlens_q=FakeTensor((3,), "int32"), max_seqlen_q=3,
                  cu_seqlens_k=FakeTensor((3,), "int32"), max_seqlen_k=4, out=out)
    assert out.zeroed and not fake_compiler.calls
    empty = FakeTensor((0, 8, 16), "float32")
    gqa.attention(empty, kt, kt, layout="bshd", cu_seqlens_q=FakeTensor((3,), "int32"), max_seqlen_q=0,
                  cu_seqlens_k=FakeTensor((3,), "int32"), max_seqlen_k=0)
    assert not fake_compiler.calls


def test_launch_args_struct_matches_header_order():
    """gqa_launch_args: block_table and num_pages right after kv_lens; gqa_kernel_config: page_size after kv_lens."""
    names = [n for n, _ in _runtime.LaunchArgs._fields_]
    assert names[names.index("kv_lens") + 1: names.index("kv_lens") + 3] == ["block_table", "num_pages"]
    names = [n for n, _ in _runtime.KernelConfigStruct._fields_]
    assert names[names.index("kv_lens") + 1] == "page_size"
    assert _runtime.ABI_VERSION == 4
    # ABI 3 appended the sinks and lse pointers (and the config's two flags after page_size).
    assert [n for n, _ in _runtime.LaunchArgs._fields_][-6:] == [
        "sinks", "lse", "cu_seqlens_q", "total_q", "cu_seqlens_k", "total_kv"]
    assert names[names.index("page_size") + 1: names.index("page_size") + 5] == ["sinks", "lse", "varlen",
                                                                               "packed_kv"]
    args = _runtime.launch_args(gqa.shapes.AttentionDims(1, 8, 2, 1, 32, 64, 64), "f16", "bhsd", 1, 2, 3, 4)
    assert args.block_table is None and args.num_pages == 0


@pytest.mark.parametrize("struct, probe", [(_runtime.LaunchArgs, "stub_launch_args_offset"),
                                           (_runtime.KernelConfigStruct, "stub_kernel_config_offset"),
                                           (_runtime.MergeArgs, "stub_merge_args_offset"),
                                           (_runtime.MergeConfigStruct, "stub_merge_config_offset"),
                                           (_runtime.KernelLaunchConfig, "stub_kernel_launch_config_offset")])
def test_ctypes_structs_match_the_header(stub_runtime, struct, probe):
    """Every field of the ctypes mirror sits where the C compiler puts it (Runtime.h, ABI 4)."""
    offset = getattr(stub_runtime, probe)
    offset.restype, offset.argtypes = ctypes.c_long, [ctypes.c_char_p]
    assert offset(None) == ctypes.sizeof(struct)
    for name, _ in struct._fields_:
        assert offset(name.encode()) == getattr(struct, name).offset, name


def test_workspace_from_the_caller_framework(fake_compiler, stub_runtime, monkeypatch):
    """On PyTorch's current stream the split-KV workspace is PyTorch's (CUDA-graph safe), sized by the runtime."""
    from gqa import api
    stub_runtime.stub_set_workspace_bytes(ctypes.c_uint64(4096))
    given = []
    monkeypatch.setattr(api, "_allocates_workspace", lambda q, stream: stream is None)
    monkeypatch.setattr(api, "_workspace_tensor", lambda q, n: given.append(FakeTensor((n,), "uint8")) or given[-1])
    q, k, v = qkv("bshd", B=2, Sq=1, Skv=40)
    gqa.attention(q, k, v, layout="bshd")
    args = last_args(stub_runtime)
    assert len(given) == 1 and args["workspace"] == given[0].data_ptr() and args["workspace_bytes"] == 4096
    # On a stream of the caller's, or when no workspace is needed, the runtime decides.
    gqa.attention(q, k, v, layout="bshd", stream=0xABC)
    assert last_args(stub_runtime)["workspace"] is None and len(given) == 1
    stub_runtime.stub_set_workspace_bytes(ctypes.c_uint64(0))
    gqa.attention(q, k, v, layout="bshd")
    assert last_args(stub_runtime)["workspace"] is None and len(given) == 1
