"""merge_attention_states on the host (4-D and flash_attn's varlen 3-D form), and merge kernels' config and cache.

The host tests check the merge against a float64 per-row loop written here, and that two halves of the keys
merged equal attention over all of them (through gqa.reference and, when libgqa_compiler.so is built, gqa's
CPU path).  The compile/cache tests use a stub libgqa_compiler.so (stub_compiler.c) that writes merge_states
metadata for whatever configuration it is given.
"""

from __future__ import annotations

import ctypes
import math
import os
import time

import numpy as np
import pytest

import gqa
from gqa import _compiler_lib, reference
from gqa.compiler import clear_memory_cache
from gqa.config import KernelConfig, MergeConfig
from conftest import REAL_COMPILER_LIB, build_shared_lib

HERE = os.path.dirname(os.path.abspath(__file__))


def _reference_merge(o1, l1, o2, l2):
    """The merge of two varlen results (T, H, Dv) / (H, T), one row at a time in float64."""
    o = np.zeros(o1.shape)
    lse = np.full(l1.shape, -np.inf)
    for t in range(o1.shape[0]):
        for h in range(o1.shape[1]):
            a, b = float(l1[h, t]), float(l2[h, t])
            if a == -math.inf and b == -math.inf:
                continue
            m = max(a, b)
            wa, wb = math.exp(a - m), math.exp(b - m)
            o[t, h] = (wa * o1[t, h].astype(np.float64) + wb * o2[t, h].astype(np.float64)) / (wa + wb)
            lse[h, t] = m + math.log(wa + wb)
    return o, lse


def _varlen_parts(rng, tokens=7, heads=3, dv=5, empty=True):
    o1, o2 = rng.standard_normal((2, tokens, heads, dv))
    l1, l2 = rng.standard_normal((2, heads, tokens)) * 3
    if empty:
        l1[0, 1] = -np.inf  # one part saw no key
        l2[2, 4] = -np.inf
        l1[1, 5] = l2[1, 5] = -np.inf  # neither did
    return o1, l1, o2, l2


# ----------------------------------------------------------------------------- host: the 3-D varlen form


def test_varlen_merge_matches_the_row_loop():
    o1, l1, o2, l2 = _varlen_parts(np.random.default_rng(0))
    o, lse = gqa.merge_attention_states(o1, l1, o2, l2)
    want_o, want_lse = _reference_merge(o1, l1, o2, l2)
    assert o.shape == (7, 3, 5) and lse.shape == (3, 7) and o.dtype == lse.dtype == np.float64
    np.testing.assert_allclose(o, want_o, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(want_lse))
    np.testing.assert_allclose(lse, want_lse, rtol=1e-12)
    np.testing.assert_array_equal(o[5, 1], 0.0)  # neither part saw a key
    np.testing.assert_allclose(o[1, 0], o2[1, 0], rtol=1e-12)  # only the second did


def test_varlen_form_is_one_bshd_sequence():
    o1, l1, o2, l2 = _varlen_parts(np.random.default_rng(1))
    o, lse = gqa.merge_attention_states(o1, l1, o2, l2, layout="bshd")
    o4, lse4 = gqa.merge_attention_states(o1[None], l1[None], o2[None], l2[None], layout="bshd")
    np.testing.assert_array_equal(o, o4[0])
    np.testing.assert_array_equal(lse, lse4[0])


def test_varlen_form_errors():
    o = np.zeros((4, 2, 8))
    with pytest.raises(ValueError, match=r"3-D outputs \(T, H, Dv\) are packed tokens .* layout must be 'bshd', "
                                         r"got 'bhsd'"):
        gqa.merge_attention_states(o, np.zeros((2, 4)), o, np.zeros((2, 4)), layout="bhsd")
    with pytest.raises(ValueError, match=r"lse1 must have shape \(2, 4\) \(H, T\) for packed tokens"):
        gqa.merge_attention_states(o, np.zeros((4, 2)), o, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"o1 must be 4-D \(B, H, S, Dv\) .* or 3-D \(T, H, Dv\)"):
        gqa.merge_attention_states(o[0], np.zeros(2), o[0], np.zeros(2))


def test_varlen_torch_cpu_tensors():
    torch = pytest.importorskip("torch")
    o1, l1, o2, l2 = _varlen_parts(np.random.default_rng(2))
    want_o, want_lse = _reference_merge(o1, l1, o2, l2)
    o, lse = gqa.merge_attention_states(torch.tensor(o1, dtype=torch.bfloat16), torch.tensor(l1, dtype=torch.float32),
                                        torch.tensor(o2, dtype=torch.bfloat16), torch.tensor(l2, dtype=torch.float32))
    assert o.dtype == torch.bfloat16 and o.shape == (7, 3, 5) and lse.dtype == torch.float32
    want_bf16 = _reference_merge(torch.tensor(o1, dtype=torch.bfloat16).double().numpy(), l1,
                                 torch.tensor(o2, dtype=torch.bfloat16).double().numpy(), l2)[0]
    np.testing.assert_allclose(o.double().numpy(), want_bf16, atol=2e-2)
    finite = np.isfinite(want_lse)
    np.testing.assert_allclose(lse.numpy()[finite], want_lse[finite], rtol=1e-5)
    assert np.all(np.isneginf(lse.numpy()[~finite]))


def test_host_out_arguments():
    o1, l1, o2, l2 = _varlen_parts(np.random.default_rng(3))
    out, out_lse = np.empty((7, 3, 5), np.float32), np.empty((3, 7), np.float32)
    o, lse = gqa.merge_attention_states(o1, l1, o2, l2, out=out, out_lse=out_lse)
    assert o is out and lse is out_lse
    want_o, want_lse = _reference_merge(o1, l1, o2, l2)
    np.testing.assert_allclose(out, want_o, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"out_lse has shape \(7, 3\), expected \(3, 7\)"):
        gqa.merge_attention_states(o1, l1, o2, l2, out_lse=np.empty((7, 3)))


def _split_packed_kv(k, v, cu_k, first):
    """Packed K/V [Tk, H, D] split per sequence: its first ``first[b]`` keys, and the rest (new offsets too)."""
    parts = ([], [], [0]), ([], [], [0])
    for b in range(len(cu_k) - 1):
        start, end = cu_k[b], cu_k[b + 1]
        for (ks, vs, cu), rows in zip(parts, (slice(start, start + first[b]), slice(start + first[b], end))):
            ks.append(k[rows])
            vs.append(v[rows])
            cu.append(cu[-1] + (rows.stop - rows.start))
    return [(np.concatenate(ks), np.concatenate(vs), np.array(cu, np.int32)) for ks, vs, cu in parts]


VARLEN_SPLITS = [
    dict(q_lens=[3, 1, 4], k_lens=[9, 5, 12], first=[4, 0, 12], hq=4, hkv=2, d=16),  # an empty half in each part
    dict(q_lens=[1, 1], k_lens=[200, 31], first=[100, 30], hq=8, hkv=1, d=32, sinks=True),
]


def _halves_case(case, rng):
    cu_q = np.concatenate([[0], np.cumsum(case["q_lens"])]).astype(np.int32)
    cu_k = np.concatenate([[0], np.cumsum(case["k_lens"])]).astype(np.int32)
    q = rng.standard_normal((cu_q[-1], case["hq"], case["d"])).astype(np.float32)
    k, v = (rng.standard_normal((cu_k[-1], case["hkv"], case["d"])).astype(np.float32) for _ in range(2))
    sinks = rng.standard_normal(case["hq"]).astype(np.float32) if case.get("sinks") else None
    return q, k, v, cu_q, cu_k, sinks


@pytest.mark.parametrize("case", VARLEN_SPLITS, ids=["empty-halves", "decode-sinks"])
def test_two_halves_of_the_keys_merge_to_the_whole_reference(case):
    """gqa.reference.attention_varlen over each half of every sequence's keys, merged (3-D form), is the whole."""
    q, k, v, cu_q, cu_k, sinks = _halves_case(case, np.random.default_rng(4))
    (k1, v1, cu1), (k2, v2, cu2) = _split_packed_kv(k, v, cu_k, case["first"])
    whole, whole_lse = reference.attention_varlen(q, k, v, cu_q, cu_seqlens_k=cu_k, sinks=sinks, return_lse=True)
    o1, l1 = reference.attention_varlen(q, k1, v1, cu_q, cu_seqlens_k=cu1, sinks=sinks, return_lse=True)  # sink once
    o2, l2 = reference.attention_varlen(q, k2, v2, cu_q, cu_seqlens_k=cu2, return_lse=True)
    o, lse = gqa.merge_attention_states(o1, l1, o2, l2)
    np.testing.assert_allclose(o, whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lse, whole_lse, rtol=1e-12)
    np.testing.assert_allclose(o, _reference_merge(o1, l1, o2, l2)[0], rtol=1e-12, atol=1e-15)


@pytest.mark.skipif(REAL_COMPILER_LIB is None, reason="libgqa_compiler.so is not built")
@pytest.mark.parametrize("case", VARLEN_SPLITS, ids=["empty-halves", "decode-sinks"])
def test_two_halves_through_gqa_cpu_attention(case, real_env):
    """gqa's CPU attention (in process, f32) with return_lse over the two halves, merged, is its whole."""
    q, k, v, cu_q, cu_k, sinks = _halves_case(case, np.random.default_rng(5))
    (k1, v1, cu1), (k2, v2, cu2) = _split_packed_kv(k, v, cu_k, case["first"])
    whole, whole_lse = gqa.attention(q, k, v, layout="bshd", cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, sinks=sinks,
                                     return_lse=True)
    o1, l1 = gqa.attention(q, k1, v1, layout="bshd", cu_seqlens_q=cu_q, cu_seqlens_k=cu1, sinks=sinks,
                           return_lse=True)
    o2, l2 = gqa.attention(q, k2, v2, layout="bshd", cu_seqlens_q=cu_q, cu_seqlens_k=cu2, return_lse=True)
    assert o1.shape == whole.shape and l1.shape == (case["hq"], cu_q[-1])
    o, lse = gqa.merge_attention_states(o1, l1, o2, l2)
    np.testing.assert_allclose(o, whole, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(lse, whole_lse, rtol=1e-5, atol=1e-5)
    # and against the float64 reference of the whole
    ref, ref_lse = reference.attention_varlen(q, k, v, cu_q, cu_seqlens_k=cu_k, sinks=sinks, return_lse=True)
    np.testing.assert_allclose(o, ref, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- MergeConfig


def test_merge_config_key_and_normalisation():
    cfg = MergeConfig.create(64, 128, dtype="bfloat16", layout="BSHD")
    assert (cfg.heads, cfg.head_dim_v, cfg.dtype, cfg.layout, cfg.varlen, cfg.chip) == (
        64, 128, "bf16", "bshd", False, "sm_90")
    assert cfg.key().startswith("merge-h64-dv128-bf16-bshd-sm_90-")
    assert MergeConfig.create(64, 128, dtype="bf16", layout="bshd", varlen=True).key().startswith(
        "merge-h64-dv128-bf16-bshd-varlen-sm_90-")
    others = [MergeConfig.create(*a, **kw) for a, kw in [
        ((32, 128), dict(dtype="bf16", layout="bshd")), ((64, 64), dict(dtype="bf16", layout="bshd")),
        ((64, 128), dict(dtype="f16", layout="bshd")), ((64, 128), dict(dtype="bf16", layout="bhsd")),
        ((64, 128), dict(dtype="bf16", layout="bshd", varlen=True)),
        ((64, 128), dict(dtype="bf16", layout="bshd", chip="sm_80"))]]
    assert len({c.key() for c in others} | {cfg.key()}) == len(others) + 1
    # never an attention kernel's key
    assert not cfg.key().startswith("hq")


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((0, 128), {}, ValueError, "heads must be an int >= 1"),
    ((8, True), {}, ValueError, "head_dim_v must be an int >= 1"),
    ((8, 128), dict(layout="sbhd"), ValueError, "layout"),
    ((8, 128), dict(varlen=True), ValueError, r"varlen merges packed bshd tokens; layout must be 'bshd'"),
    ((8, 128), dict(chip="hopper"), ValueError, "chip must look like"),
    ((8, 128), dict(dtype="f64"), TypeError, "unsupported dtype"),
])
def test_merge_config_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        gqa.compile_merge_states(*args, **kwargs)


def test_merge_and_attention_configs_do_not_match_each_other():
    merge = MergeConfig.create(8, 64)
    attention = KernelConfig.create(8, 2, 64)
    assert merge.mismatches(attention)[0].startswith("kind: requested a merge_states kernel, got KernelConfig")
    assert attention.mismatches(merge)[0].startswith("kind: requested an attention kernel, got MergeConfig")
    assert merge.mismatches(MergeConfig.create(8, 64, chip="sm_90a")) == []
    assert merge.mismatches(MergeConfig.create(4, 64, dtype="f16")) == [
        "heads: requested 8, kernel has 4", "dtype: requested 'bf16', kernel has 'f16'"]


# ----------------------------------------------------------------------------- compile and cache (stub library)


def test_merge_states_struct_matches_the_header(stub_compiler):
    offset = stub_compiler.stub_merge_states_offset
    offset.restype, offset.argtypes = ctypes.c_long, [ctypes.c_char_p]
    assert offset(None) == ctypes.sizeof(_compiler_lib._MergeStates)
    for name, _ in _compiler_lib._MergeStates._fields_:
        assert offset(name.encode()) == getattr(_compiler_lib._MergeStates, name).offset, name


def _last_compiled(stub) -> dict:
    last = _compiler_lib._MergeStates()
    stub.stub_compiler_last(ctypes.byref(last))
    return {"heads": last.heads, "head_dim_v": last.head_dim_v, "dtype": last.dtype.decode(),
            "layout": last.layout.decode(), "varlen": last.varlen, "chip": stub.stub_compiler_last_chip().decode(),
            "ptx_file": stub.stub_compiler_last_ptx_file().decode()}


def test_compile_merge_states_in_process_and_cached(stub_compiler, isolated_env):
    kern = gqa.compile_merge_states(16, 64, dtype="f16", layout="bshd", varlen=True, chip="sm_80")
    assert _last_compiled(stub_compiler) == {"heads": 16, "head_dim_v": 64, "dtype": "f16", "layout": "bshd",
                                             "varlen": 1, "chip": "sm_80", "ptx_file": "kernel.ptx"}
    assert kern.kind == "merge_states" and kern.config == MergeConfig.create(16, 64, dtype="f16", layout="bshd",
                                                                              varlen=True, chip="sm_80")
    assert kern.ptx.startswith("// stub merge PTX") and kern.metadata["format"] == "gqa.merge_states"
    assert kern.fixed_sizes == {"batch": None, "seq_q": None}
    assert kern.ptx_path == isolated_env / kern.config.key() / "kernel.ptx"
    assert [p.name for p in isolated_env.iterdir()] == [kern.config.key()]  # no temp dirs left
    assert gqa.compile_merge_states(16, 64, dtype="f16", layout="bshd", varlen=True, chip="sm_80") is kern
    clear_memory_cache()
    again = gqa.compile_merge_states(16, 64, dtype="f16", layout="bshd", varlen=True, chip="sm_80")
    assert again is not kern and again.ptx == kern.ptx and stub_compiler.stub_compiler_calls() == 1
    # a loaded pair is a merge kernel too
    assert gqa.load_kernel(kern.ptx_path).config == kern.config
    gqa.compile_merge_states(16, 64, dtype="f16", layout="bshd", chip="sm_80")
    assert stub_compiler.stub_compiler_calls() == 2 and _last_compiled(stub_compiler)["varlen"] == 0


def test_precompile_takes_merge_configs(stub_compiler):
    kernels = gqa.precompile([dict(heads=8, head_dim_v=128, layout="bshd"), MergeConfig.create(4, 64)])
    assert [k.kind for k in kernels] == ["merge_states", "merge_states"]
    assert [k.config.heads for k in kernels] == [8, 4] and stub_compiler.stub_compiler_calls() == 2
    start = time.perf_counter()
    assert gqa.compile_merge_states(8, 128, layout="bshd") is kernels[0]
    assert time.perf_counter() - start < 0.1


def test_merge_compile_errors(stub_compiler, isolated_env):
    with pytest.raises(gqa.CompileError, match=r"compiling merge-h8-dv7-bf16-bhsd-sm_90-\w+ failed: stub: "
                                               r"head_dim_v 7 is not supported"):
        gqa.compile_merge_states(8, 7)
    stub_compiler.stub_compiler_set_mode(1)
    with pytest.raises(gqa.MetadataError, match=r"metadata version 99 is not supported: key 'version' must be 1 for format gqa.merge_states"):
        gqa.compile_merge_states(8, 64)
    stub_compiler.stub_compiler_set_mode(2)
    with pytest.raises(gqa.ConfigMismatchError, match="heads: requested 8, kernel has 9"):
        gqa.compile_merge_states(8, 64)
    assert not list(isolated_env.iterdir())  # nothing half-written was installed


def test_merge_kernels_without_a_compiler(isolated_env, tmp_path, monkeypatch):
    with pytest.raises(gqa.CompilerNotFoundError, match=r"no compiler of merge kernels found: libgqa_compiler.so "
                                                        r"with gqa_compiler_compile_merge_states .* no cached kernel"):
        gqa.compile_merge_states(8, 64)


def test_carried_merge_kernel_needs_no_compiler(stub_compiler, monkeypatch):
    built = gqa.compile_merge_states(8, 64, layout="bshd")
    monkeypatch.delenv("GQA_COMPILER_LIB")
    monkeypatch.setattr(_compiler_lib, "_library", None)
    clear_memory_cache()
    assert gqa.compile_merge_states(8, 64, layout="bshd").ptx == built.ptx
    with pytest.raises(gqa.CompilerNotFoundError, match="recompile=True was asked"):
        gqa.compile_merge_states(8, 64, layout="bshd", recompile=True)


def test_compiler_library_without_merge_states(tmp_path, monkeypatch):
    """A libgqa_compiler.so built before merge kernels: attention still compiles there, merges are refused."""
    src = tmp_path / "old_compiler.c"
    text = open(os.path.join(HERE, "stub_compiler.c")).read()
    src.write_text(text.replace("int gqa_compiler_compile_merge_states(", "int old_compile_merge_states("))
    lib = build_shared_lib(src, tmp_path / "old" / "libgqa_compiler.so")
    monkeypatch.setenv("GQA_COMPILER_LIB", str(lib))
    monkeypatch.setattr(_compiler_lib, "_library", None)
    assert not _compiler_lib.has_merge_states()
    with pytest.raises(gqa.CompilerNotFoundError, match="no compiler of merge kernels found"):
        gqa.compile_merge_states(8, 64)
    with pytest.raises(gqa.CompilerNotFoundError, match="has no gqa_compiler_compile_merge_states: it predates"):
        _compiler_lib.compile_merge_states(MergeConfig.create(8, 64), "kernel.ptx")
