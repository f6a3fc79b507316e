"""gqa.compile / gqa.load_kernel with a fake gqa-compile: flags, cache, errors."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import pytest

import gqa
from conftest import REAL_COMPILER_LIB
from gqa import config as config_module
from gqa.compiler import clear_memory_cache
from gqa.config import KernelConfig

L70B = dict(q_heads=64, kv_heads=8, head_dim=128, dtype="bf16", layout="bshd", causal=True)


# ----------------------------------------------------------------------------- config and flags


def test_compiler_args_basic():
    cfg = KernelConfig.create(**L70B)
    assert cfg.compiler_args() == [
        "--q-heads", "64", "--kv-heads", "8", "--head-dim", "128",
        "--dtype", "bf16", "--layout", "bshd", "--causal", "--chip", "sm_90"]


def test_compiler_args_all_options():
    cfg = KernelConfig.create(8, 2, 64, head_dim_v=32, dtype="float16", layout="bhsd",
                              window=(128, 4), softcap=30.0, scale=0.5, kv_lens=True, chip="sm_80")
    assert cfg.compiler_args() == [
        "--q-heads", "8", "--kv-heads", "2", "--head-dim", "64", "--head-dim-v", "32",
        "--dtype", "f16", "--layout", "bhsd", "--window", "128,4", "--softcap", "30.0",
        "--scale", "0.5", "--kv-lens", "--chip", "sm_80"]


@pytest.mark.parametrize(
    "causal, window, mask, flags",
    [
        (False, None, "none", []),
        (True, None, "causal", ["--causal"]),
        (False, (-1, 0), "causal", ["--causal"]),
        (True, (256, -1), "window", ["--window", "256,0"]),
        (True, (256, 8), "window", ["--window", "256,0"]),
        (False, (256, 8), "window", ["--window", "256,8"]),
        (False, (-1, -1), "none", []),
    ],
)
def test_mask_canonical_form(causal, window, mask, flags):
    cfg = KernelConfig.create(4, 2, 16, causal=causal, window=window)
    assert cfg.mask == mask
    args = cfg.compiler_args()
    got = [a for a in args if a in ("--causal", "--window")]
    if "--window" in args:
        got.append(args[args.index("--window") + 1])
    assert got == flags


def test_cache_key_is_canonical():
    a = KernelConfig.create(8, 2, 128, causal=True)
    assert a.key() == KernelConfig.create(8, 2, 128, window=(-1, 0)).key()
    assert a.key() == KernelConfig.create(8, 2, 128, causal=True, scale=1 / math.sqrt(128)).key()
    assert a.key() == KernelConfig.create(8, 2, 128, causal=True, scale=128 ** -0.5).key()
    assert a.key() == KernelConfig.create(8, 2, 128, causal=True, softcap=0).key()
    assert a.key() == KernelConfig.create(8, 2, 128, causal=True, head_dim_v=128, dtype="bfloat16").key()
    others = [
        KernelConfig.create(8, 2, 128),
        KernelConfig.create(8, 4, 128, causal=True),
        KernelConfig.create(8, 2, 128, causal=True, dtype="f16"),
        KernelConfig.create(8, 2, 128, causal=True, layout="bshd"),
        KernelConfig.create(8, 2, 128, causal=True, scale=0.1),
        KernelConfig.create(8, 2, 128, causal=True, softcap=50.0),
        KernelConfig.create(8, 2, 128, causal=True, kv_lens=True),
        KernelConfig.create(8, 2, 128, causal=True, chip="sm_80"),
        KernelConfig.create(8, 2, 128, causal=True, head_dim_v=64),
        KernelConfig.create(8, 2, 128, window=(64, 0)),
        KernelConfig.create(8, 2, 128, causal=True, page_size=16),
        KernelConfig.create(8, 2, 128, causal=True, page_size=1),
    ]
    keys = {c.key() for c in others}
    assert len(keys) == len(others) and a.key() not in keys
    assert a.key().startswith("hq8-hkv2-d128-dv128-bf16-bhsd-causal-sm_90-")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(q_heads=6, kv_heads=4, head_dim=64), r"q_heads \(6\) must be a multiple of kv_heads \(4\)"),
        (dict(q_heads=0, kv_heads=1, head_dim=64), "q_heads must be an int >= 1"),
        (dict(q_heads=4, kv_heads=1, head_dim=64, chip="hopper"), "chip"),
        (dict(q_heads=4, kv_heads=1, head_dim=64, layout="sbhd"), "layout"),
        (dict(q_heads=4, kv_heads=1, head_dim=64, window=(3, -5)), "window right"),
        (dict(q_heads=4, kv_heads=1, head_dim=64, page_size=-1),
         r"page_size must be an int >= 0 \(0 = contiguous K/V\), got -1"),
        (dict(q_heads=4, kv_heads=1, head_dim=64, page_size=16.0), r"page_size must be an int >= 0 .* got 16\.0"),
        (dict(q_heads=4, kv_heads=1, head_dim=64, page_size=True), r"page_size must be an int >= 0 .* got True"),
        (dict(q_heads=4, kv_heads=1, head_dim=64, page_size="16"), r"page_size must be an int >= 0 .* got '16'"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gqa.compile(**kwargs)


def test_config_bad_dtype():
    with pytest.raises(TypeError, match="unsupported dtype"):
        gqa.compile(4, 1, 64, dtype="f64")


def test_page_size_config_key_and_flags():
    contiguous = KernelConfig.create(**L70B)
    assert contiguous.page_size == 0 and KernelConfig.create(**L70B, page_size=0) == contiguous
    assert "--page-size" not in contiguous.compiler_args()
    cfg = KernelConfig.create(**L70B, page_size=16)
    assert cfg.page_size == 16 and cfg != contiguous
    assert cfg.compiler_args() == [
        "--q-heads", "64", "--kv-heads", "8", "--head-dim", "128",
        "--dtype", "bf16", "--layout", "bshd", "--causal", "--page-size", "16", "--chip", "sm_90"]
    assert cfg.key() != contiguous.key() != KernelConfig.create(**L70B, page_size=32).key()
    assert cfg.key().startswith("hq64-hkv8-d128-dv128-bf16-bshd-causal-p16-sm_90-")
    assert cfg.mismatches(contiguous) == ["page_size: requested 16, kernel has 0"]
    assert contiguous.mismatches(cfg) == ["page_size: requested 0, kernel has 16"]


def test_the_fields_added_later_have_defaults():
    """KernelConfig(...) built positionally without the fields added later (older callers) still works."""
    fields = dataclasses.fields(KernelConfig)
    assert [(f.name, f.default) for f in fields[-5:]] == [("page_size", 0), ("sinks", False), ("lse", False),
                                                          ("varlen", False), ("packed_kv", False)]
    cfg = KernelConfig.create(**L70B)
    assert KernelConfig(*[getattr(cfg, f.name) for f in fields[:-5]]) == cfg


def test_cache_key_version_bumped():
    assert config_module.CACHE_KEY_VERSION == 3


# ----------------------------------------------------------------------------- compile and cache


def test_compile_writes_cache_entry(fake_compiler, isolated_env):
    k = gqa.compile(**L70B)
    assert isinstance(k, gqa.Kernel)
    assert k.ptx.startswith("// fake PTX")
    assert k.metadata["config"]["mask"] == "causal"
    assert k.config == KernelConfig.create(**L70B)
    assert k.ptx_path == isolated_env / k.config.key() / "kernel.ptx"
    assert k.json_path.is_file()
    assert len(fake_compiler.calls) == 1
    out_flag = fake_compiler.calls[0][-2:]
    assert out_flag[0] == "-o" and out_flag[1].endswith("kernel.ptx")
    assert Path(out_flag[1]).parent.parent == isolated_env  # compiled in a temp dir, then renamed
    assert [p.name for p in isolated_env.iterdir()] == [k.config.key()]  # no temp dirs left


def test_second_compile_uses_cache(fake_compiler):
    a = gqa.compile(**L70B)
    assert gqa.compile(**L70B) is a  # in-memory
    clear_memory_cache()
    b = gqa.compile(**L70B)  # from disk
    assert b is not a and a.ptx_path == b.ptx_path
    assert len(fake_compiler.calls) == 1
    gqa.compile(**dict(L70B, causal=False))
    assert len(fake_compiler.calls) == 2


def test_cached_kernel_found_without_compiler(fake_compiler):
    built = gqa.compile(**L70B)
    fake_compiler.remove()
    clear_memory_cache()
    assert gqa.find_compiler() is None
    again = gqa.compile(**L70B)
    assert again.ptx == built.ptx and again.config == built.config


def test_carried_cache_dir(fake_compiler, tmp_path, monkeypatch):
    """A cache filled on one machine and copied elsewhere is found there via $GQA_KERNEL_CACHE."""
    built = gqa.compile(**L70B, cache_dir=tmp_path / "here")
    shutil.copytree(tmp_path / "here", tmp_path / "carried")
    fake_compiler.remove()
    monkeypatch.setenv("GQA_KERNEL_CACHE", str(tmp_path / "carried"))
    assert gqa.compile(**L70B).ptx == built.ptx
    assert gqa.resolve_cache_dir() == tmp_path / "carried"


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("GQA_KERNEL_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gqa.resolve_cache_dir() == tmp_path / ".cache" / "gqa"


def test_missing_compiler_and_cache(isolated_env):
    with pytest.raises(gqa.CompilerNotFoundError) as info:
        gqa.compile(**L70B)
    msg = str(info.value)
    assert "no compiler found: neither libgqa_compiler.so ($GQA_COMPILER_LIB" in msg and "$GQA_COMPILE" in msg
    assert str(isolated_env) in msg and "gqa.load_kernel" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_gqa_compile_env_pointing_nowhere(monkeypatch, tmp_path):
    monkeypatch.setenv("GQA_COMPILE", str(tmp_path / "nope"))
    with pytest.raises(gqa.CompilerNotFoundError, match="GQA_COMPILE is set to"):
        gqa.compile(**L70B)


def test_compiler_found_on_path(fake_compiler, monkeypatch):
    fake_compiler.remove()
    monkeypatch.setenv("PATH", str(fake_compiler.path.parent))
    assert gqa.find_compiler() == fake_compiler.path
    gqa.compile(**L70B)
    assert len(fake_compiler.calls) == 1


def test_compiler_found_in_repo_build_dir(fake_compiler, monkeypatch, tmp_path):
    from gqa import _tools

    fake_compiler.remove()
    repo = tmp_path / "repo"
    (repo / "build" / "bin").mkdir(parents=True)
    shutil.copy2(fake_compiler.path, repo / "build" / "bin" / "gqa-compile")
    monkeypatch.setattr(_tools, "repo_root", lambda: repo)
    assert gqa.find_compiler() == repo / "build" / "bin" / "gqa-compile"


def test_compile_error_shows_stderr(fake_compiler, isolated_env):
    fake_compiler.set_mode("fail")
    with pytest.raises(gqa.CompileError, match=r"exit 3(.|\n)*head_dim 7 is not supported"):
        gqa.compile(**L70B)
    assert not list(isolated_env.iterdir())  # the failed attempt left nothing behind


def test_compiler_without_json(fake_compiler):
    fake_compiler.set_mode("no-json")
    with pytest.raises(gqa.CompileError, match="did not write kernel.json"):
        gqa.compile(**L70B)


def test_invalid_metadata_from_compiler(fake_compiler, isolated_env):
    fake_compiler.set_mode("bad-metadata")
    with pytest.raises(gqa.MetadataError, match="version 99 is not supported"):
        gqa.compile(**L70B)
    assert not list(isolated_env.iterdir())


def test_metadata_config_mismatch(fake_compiler):
    fake_compiler.set_mode("ignore-mask")
    with pytest.raises(gqa.ConfigMismatchError, match=r"window: requested \(-1, 0\), kernel has \(-1, -1\)"):
        gqa.compile(**L70B)


def test_compile_paged(fake_compiler, isolated_env):
    k = gqa.compile(**L70B, kv_lens=True, page_size=16)
    [call] = fake_compiler.calls
    assert call[call.index("--page-size") + 1] == "16"
    assert k.page_size == 16 and k.config.page_size == 16 and k.metadata["config"]["page_size"] == 16
    [main] = k.metadata["kernels"]
    names = [p["name"] for p in main["params"]]
    assert "block_table" in names and "num_pages" in names
    assert k.ptx_path.parent.name == KernelConfig.create(**L70B, kv_lens=True, page_size=16).key()
    # The contiguous kernel is another cache entry (and another compile).
    contiguous = gqa.compile(**L70B, kv_lens=True)
    assert contiguous.page_size == 0 and len(fake_compiler.calls) == 2
    assert "--page-size" not in fake_compiler.calls[1]
    assert sorted(p.name for p in isolated_env.iterdir()) == sorted([k.config.key(), contiguous.config.key()])
    # From the cache, without the compiler.
    clear_memory_cache()
    fake_compiler.remove()
    assert gqa.compile(**L70B, kv_lens=True, page_size=16).page_size == 16


def test_compile_varlen(fake_compiler, isolated_env):
    """A ragged batch's kernel: --varlen, the offsets and token count among its parameters, its own entry."""
    k = gqa.compile(**L70B, kv_lens=True, page_size=16, varlen=True)
    [call] = fake_compiler.calls
    assert "--varlen" in call and k.config.varlen and k.metadata["config"]["varlen"]
    [main] = k.metadata["kernels"]
    assert {"cu_seqlens_q", "total_q"} <= {p["name"] for p in main["params"]}
    assert k.ptx_path.parent.name == KernelConfig.create(**L70B, kv_lens=True, page_size=16, varlen=True).key()
    assert not gqa.compile(**L70B, kv_lens=True, page_size=16).config.varlen and len(fake_compiler.calls) == 2
    with pytest.raises(ValueError, match="layout must be 'bshd'"):
        gqa.compile(**dict(L70B, layout="bhsd"), varlen=True)


def test_paged_metadata_page_size_mismatch(fake_compiler):
    fake_compiler.set_mode("ignore-page-size")
    with pytest.raises(gqa.ConfigMismatchError, match="page_size: requested 16, kernel has 0"):
        gqa.compile(**L70B, page_size=16)


def test_recompile_and_stale_entries(fake_compiler):
    first = gqa.compile(**L70B)
    gqa.compile(**L70B, recompile=True)
    assert len(fake_compiler.calls) == 2
    # A compiler newer than the cached entry rebuilds it.
    old = time.time() - 100
    os.utime(first.json_path, (old, old))
    clear_memory_cache()
    gqa.compile(**L70B)
    assert len(fake_compiler.calls) == 3
    gqa.compile(**L70B)
    assert len(fake_compiler.calls) == 3


def test_recompile_without_compiler(fake_compiler):
    gqa.compile(**L70B)
    fake_compiler.remove()
    with pytest.raises(gqa.CompilerNotFoundError, match="recompile=True"):
        gqa.compile(**L70B, recompile=True)


def test_tampered_cache_entry_is_rejected(fake_compiler):
    k = gqa.compile(**L70B)
    fake_compiler.remove()
    meta = json.loads(k.json_path.read_text())
    meta["config"]["dtype"] = "f16"
    k.json_path.write_text(json.dumps(meta))
    clear_memory_cache()
    with pytest.raises(gqa.ConfigMismatchError, match="dtype: requested 'bf16', kernel has 'f16'"):
        gqa.compile(**L70B)


# ----------------------------------------------------------------------------- load_kernel


def test_load_kernel_pair(fake_compiler, tmp_path, example_metadata):
    ptx = tmp_path / "l70b.ptx"
    ptx.write_text(".version 8.0\n")
    (tmp_path / "l70b.json").write_text(json.dumps(example_metadata))
    k = gqa.load_kernel(ptx)
    assert k.ptx == ".version 8.0\n"
    assert k.config.q_heads == 64 and k.config.mask == "causal"
    assert k.fixed_sizes == {"batch": None, "seq_q": None, "seq_kv": None}
    assert k.kv_lens_type == "none"
    assert gqa.load_kernel(str(ptx), str(tmp_path / "l70b.json")).metadata == example_metadata
    assert "l70b.ptx" in repr(k)


def test_load_kernel_errors(tmp_path, example_metadata):
    with pytest.raises(gqa.MetadataError, match="cannot read kernel metadata"):
        gqa.load_kernel(tmp_path / "none.ptx")
    (tmp_path / "a.json").write_text(json.dumps(example_metadata))
    with pytest.raises(FileNotFoundError, match="cannot read PTX"):
        gqa.load_kernel(tmp_path / "a.ptx")
    example_metadata["format"] = "other"
    (tmp_path / "b.json").write_text(json.dumps(example_metadata))
    (tmp_path / "b.ptx").write_text("")
    with pytest.raises(gqa.MetadataError, match="b.json: key .format. must be \"gqa.kernel\" or \"gqa.merge_states\", not .other."):
        gqa.load_kernel(tmp_path / "b.ptx")


def test_sm90a_kernel_serves_sm90_request(fake_compiler):
    k = gqa.compile(**L70B)
    meta = json.loads(k.json_path.read_text())
    meta["chip"] = "sm_90a"
    k.json_path.write_text(json.dumps(meta))
    fake_compiler.remove()
    clear_memory_cache()
    assert gqa.compile(**L70B).config.chip == "sm_90a"


@pytest.mark.skipif(REAL_COMPILER_LIB is None, reason="libgqa_compiler.so is not built")
def test_compiles_in_process_with_no_subprocess(real_env, monkeypatch, tmp_path):
    """libgqa_compiler.so compiles on a miss (no process started); a hit costs microseconds."""
    import subprocess

    def no_process(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.delenv("GQA_COMPILE", raising=False)  # a named gqa-compile would win
    monkeypatch.setattr(subprocess, "run", no_process)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    start = time.perf_counter()
    kernels = gqa.precompile([L70B, dict(L70B, kv_lens=True)], cache_dir=tmp_path)
    compile_s = time.perf_counter() - start
    assert [k.config.kv_lens for k in kernels] == [False, True]
    assert kernels[0].ptx_path.read_text().lstrip().startswith("//")
    assert gqa.load_metadata(kernels[0].json_path)["kernels"]
    start = time.perf_counter()
    for _ in range(1000):
        hit = gqa.compile(**L70B, cache_dir=tmp_path)
    hit_us = (time.perf_counter() - start) / 1000 * 1e6
    assert hit is kernels[0]
    gqa.compiler.clear_memory_cache()
    start = time.perf_counter()
    from_disk = gqa.compile(**L70B, cache_dir=tmp_path)
    disk_ms = (time.perf_counter() - start) * 1e3
    assert from_disk.ptx == kernels[0].ptx
    print(f"in-process compile of 2 configs {compile_s:.2f} s; memory hit {hit_us:.1f} us; disk hit {disk_ms:.2f} ms")
