# The runtime and the kernels tested together, end to end, without a GPU
# (issue 13): gqa.attention (the Python API) on device memory of the fake CUDA
# driver, the real libgqa_runtime.so loading the fake as libcuda, and every
# accepted cuLaunchKernel run by gpusim on the launch's real parameter values
# and grid (utils/gpusim/fake_gpu.py). The output is compared with the float64
# reference: prefill, split-KV decode + combine (the runtime's split plan and
# workspace, a sequence without keys), paged decode, f32, a ragged batch with
# sinks and the LSE, and the in-place merge of two partial results. Two planted
# ABI bugs in the metadata the runtime obeys (a grid of half the CTAs, two size
# parameters swapped) pass the fake driver's signature checks but must fail here.
#
# REQUIRES: fake-cuda, gqa-runtime
# RUN: %python %s %gqa_src_root %gqa_fake_cuda %gqa_runtime_lib gqa-opt gqa-compile %t | FileCheck %s
#
# CHECK: prefill, one kernel: ok {{.*}}'gqa_attention_fwd[
# CHECK: prefill: ok
# CHECK: split decode: ok {{.*}}gqa_attention_fwd_split{{.*}}gqa_attention_combine
# CHECK: paged decode: ok
# CHECK: f32: ok
# CHECK: varlen sinks+lse: ok
# CHECK: merge in place: ok {{.*}}gqa_merge_states
# CHECK: planted half grid: caught
# CHECK: planted swapped sizes: caught
# CHECK: all ok

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT, FAKE, RUNTIME, GQA_OPT, GQA_COMPILE, WORK = sys.argv[1:7]
sys.path.insert(0, str(Path(ROOT) / "utils"))
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
os.environ.update(GQA_CUDA_DRIVER_LIBRARY=FAKE, GQA_RUNTIME_LIB=RUNTIME, GQA_COMPILE=GQA_COMPILE,
                  GQA_KERNEL_CACHE=str(Path(WORK) / "cache"))

import numpy as np  # noqa: E402

import gpusim  # noqa: E402,F401  (puts python/ on sys.path)
import gqa  # noqa: E402
from gqa import reference  # noqa: E402
from gqa.config import KernelConfig  # noqa: E402
from gpusim.fake_gpu import FakeGPU  # noqa: E402
from gpusim.runner import (DEVICE_TOLERANCE, LSE_TOLERANCE, CompileOptions, Sizes, compare, compare_lse,  # noqa: E402
                           lower_to_gpu, make_inputs, page_caches)

GPU = FakeGPU(Path(FAKE))


def ir_of(config: KernelConfig, meta: dict) -> str:
    """The GPU-stage IR of the kernels gqa-compile made (its split and tile choices, from the metadata)."""
    tile = meta["tile"]
    options = CompileOptions(meta["split_kv"]["max_splits"], tile["block_m"], tile["block_n"])
    return lower_to_gpu(config, options, Path(GQA_OPT))


def compiled(args: list, folder: str):
    """The kernel set this build's gqa-compile makes for ``args`` (no compiler library is looked for)."""
    ptx = Path(WORK) / folder / "kernel.ptx"
    ptx.parent.mkdir()
    subprocess.run([GQA_COMPILE, *args, "-o", str(ptx)], check=True)
    return gqa.load_kernel(ptx)


def attention_case(config: KernelConfig, sizes: Sizes, kernel=None, seed: int = 0) -> dict:
    """gqa.attention through the runtime and the fake driver, against the reference."""
    kernel = kernel or compiled(config.compiler_args(), config.key())
    GPU.use(ir_of(config, kernel.metadata))
    inputs = make_inputs(config, sizes, seed)
    dev = {name: GPU.upload(inputs[name], config.dtype) for name in ("q", "k", "v")}
    extra, lens = {}, sizes.kv_lens
    if config.page_size:
        pools, table = page_caches(config, sizes, inputs, seed)
        dev["k"], dev["v"] = (GPU.upload(pools[n], config.dtype) for n in ("k", "v"))
        extra["block_table"] = GPU.upload(table, "i32")
    if config.kv_lens and lens is not None:
        extra["kv_lens"] = GPU.upload(np.asarray(lens), "i32")
    if config.sinks:
        extra["sinks"] = GPU.upload(inputs["sinks"], "f32")
    out_shape = ((sizes.total_q, config.q_heads, config.head_dim_v) if config.varlen else
                 gqa.shapes.make_shape(config.layout, sizes.batch, config.q_heads, sizes.seq_q, config.head_dim_v))
    if config.varlen:
        extra.update(cu_seqlens_q=GPU.upload(sizes.cu_seqlens_q, "i32"), max_seqlen_q=sizes.seq_q)
    if config.lse:
        lse_shape = (config.q_heads, sizes.total_q) if config.varlen else (sizes.batch, config.q_heads, sizes.seq_q)
        extra.update(lse=GPU.full(lse_shape, "f32"), return_lse=True)
    out = GPU.full(out_shape, config.dtype)
    error = None
    try:
        gqa.attention(dev["q"], dev["k"], dev["v"], out=out, kernel=kernel, layout=config.layout,
                      causal=config.mask == "causal", softcap=config.softcap or None, **extra)
    except gqa.GQAError as e:
        error = str(e)
    options = dict(causal=config.mask == "causal", kv_lens=lens if config.kv_lens else None,
                   sinks=inputs.get("sinks"), return_lse=config.lse, softcap=config.softcap or None)
    if config.varlen:
        expected = reference.attention_varlen(inputs["q"], inputs["k"], inputs["v"], sizes.cu_seqlens_q, **options)
    else:
        expected = reference.attention(inputs["q"], inputs["k"], inputs["v"], layout=config.layout, **options)
    expected, expected_lse = expected if config.lse else (expected, None)
    report = {**compare(out.numpy(), expected), "error": GPU.error or error}
    ok = report["error"] is None and report["non_finite"] == 0 and report["rel_l2_err"] <= DEVICE_TOLERANCE[config.dtype]
    if config.lse:
        report.update(compare_lse(extra["lse"].numpy(), expected_lse))
        ok = ok and report["lse_mismatched"] == 0 and report["lse_max_abs_err"] <= LSE_TOLERANCE["device"]
    return finish(report, ok)


def finish(report: dict, ok: bool) -> dict:
    report["launches"] = [f"{r.kernel}{list(r.grid)}" + (f" violation {r.violation}" if r.violation else "")
                          for r in GPU.launches]
    report["ok"] = ok and not any(r.violation for r in GPU.launches)
    return report


def merge_case(seed: int = 1) -> dict:
    """gqa.merge_attention_states in place (out = o1), through the runtime: two halves equal the whole."""
    from gpusim.merge import merge_module, merge_problem, partials, as_written  # noqa: PLC0415
    from gpusim.runner import lower_module  # noqa: PLC0415
    from gpusim.backend import Numerics  # noqa: PLC0415

    config = KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", causal=True, kv_lens=True, lse=True)
    sizes = Sizes(batch=4, seq_q=3, seq_kv=50, kv_lens=(50, 0, 17, 30))
    problem = merge_problem(config, sizes, None, in_place=True)
    kernel = compiled(["--merge-states", "--q-heads", "8", "--head-dim", "64", "--layout", "bshd"], "merge")
    GPU.use(lower_module(merge_module(config), Path(GQA_OPT)))  # the kernel set compile_merge_states makes
    parts = partials(problem, seed)
    (o1, lse1), (o2, lse2) = (as_written(parts[p], "bf16", Numerics(False)) for p in ("first", "second"))
    d_o1, d_o2 = GPU.upload(o1, "bf16"), GPU.upload(o2, "bf16")
    d_l1, d_l2, d_lse = GPU.upload(lse1, "f32"), GPU.upload(lse2, "f32"), GPU.full(lse1.shape, "f32")
    error = None
    try:
        gqa.merge_attention_states(d_o1, d_l1, d_o2, d_l2, layout="bshd", out=d_o1, out_lse=d_lse, kernel=kernel)
    except gqa.GQAError as e:
        error = str(e)
    expected, expected_lse = parts["whole"]
    report = {**compare(d_o1.numpy(), expected), **compare_lse(d_lse.numpy(), expected_lse),
              "error": GPU.error or error}
    ok = (report["error"] is None and report["non_finite"] == 0 and report["rel_l2_err"] <= DEVICE_TOLERANCE["bf16"]
          and report["lse_mismatched"] == 0 and report["lse_max_abs_err"] <= LSE_TOLERANCE["device"])
    return finish(report, ok)


def planted(config: KernelConfig, sizes: Sizes, edit) -> dict:
    """The case with its kernel's metadata edited (the runtime obeys it; the PTX is the real one)."""
    kernel = compiled(config.compiler_args(), f"planted-source-{edit.__name__}")
    meta = copy.deepcopy(kernel.metadata)
    edit(meta)
    folder = Path(WORK) / f"planted-{len(list(Path(WORK).glob('planted-*')))}"
    folder.mkdir()
    (folder / "kernel.ptx").write_text(kernel.ptx)
    (folder / "kernel.json").write_text(json.dumps(meta))
    return attention_case(config, sizes, gqa.load_kernel(folder / "kernel.ptx"))


def half_grid(meta: dict) -> None:
    meta["kernels"][0]["grid"][0]["div"] *= 2


def swapped_sizes(meta: dict) -> None:
    params = meta["kernels"][0]["params"]
    names = [p["name"] for p in params]
    a, b = names.index("seq_q"), names.index("seq_kv")
    params[a]["name"], params[b]["name"] = "seq_kv", "seq_q"


PREFILL = (KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", causal=True),
           Sizes(batch=2, seq_q=17, seq_kv=70))
CASES = [
    ("prefill", *PREFILL),
    ("split decode", KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", kv_lens=True),
     Sizes(batch=3, seq_q=1, seq_kv=600, kv_lens=(600, 0, 77))),
    ("paged decode", KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", kv_lens=True, page_size=16),
     Sizes(batch=2, seq_q=1, seq_kv=70, kv_lens=(70, 33), page_size=16)),
    ("f32", KernelConfig.create(4, 2, 40, dtype="f32", layout="bhsd", causal=True), Sizes(batch=1, seq_q=5, seq_kv=70)),
    ("varlen sinks+lse", KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", causal=True, kv_lens=True,
                                             sinks=True, lse=True, varlen=True),
     Sizes(batch=4, seq_q=5, seq_kv=40, kv_lens=(10, 40, 0, 30), q_lens=(0, 5, 1, 3))),
]

failures = 0
report = attention_case(*PREFILL, compiled(PREFILL[0].compiler_args() + ["--max-splits", "0"], "one-kernel"))
failures += not report["ok"]
print(f"prefill, one kernel: {'ok' if report['ok'] else 'FAIL'} {report}")
for name, config, sizes in CASES:
    report = attention_case(config, sizes)
    failures += not report["ok"]
    print(f"{name}: {'ok' if report['ok'] else 'FAIL'} {report}")
report = merge_case()
failures += not report["ok"]
print(f"merge in place: {'ok' if report['ok'] else 'FAIL'} {report}")
for name, edit in (("half grid", half_grid), ("swapped sizes", swapped_sizes)):
    report = planted(*PREFILL, edit)
    hook_failed = GPU.error is not None  # the simulator itself broke: that catches nothing
    failures += report["ok"] or hook_failed
    print(f"planted {name}: {'MISSED' if report['ok'] or hook_failed else 'caught'} {report}")
GPU.close()
print("all ok" if not failures else f"{failures} FAILED")
sys.exit(1 if failures else 0)
