"""Shared fixtures: an isolated environment, a fake gqa-compile, fake CUDA tensors, a stub runtime."""

from __future__ import annotations

import copy
import ctypes
import json
import os
import shutil
import subprocess
import re
import stat
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

# Test the package of this checkout (python/), wherever pytest's rootdir is.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gqa  # noqa: E402
from gqa import _compiler_lib, _runtime, _tools, compiler, metadata

REPO = Path(__file__).resolve().parents[2]
ORIGINAL_PATH = os.environ.get("PATH", "")  # before isolated_env empties it
_ORIGINAL_ENV = {v: os.environ.get(v) for v in ("GQA_COMPILE", "GQA_RUN", "GQA_RUNTIME_LIB", "GQA_COMPILER_LIB",
                                            "GQA_KERNEL_CACHE")}
_ORIGINAL_REPO_ROOT = _tools.repo_root
METADATA_DOC = REPO / "docs" / "kernel-metadata.md"


def doc_example_metadata() -> dict:
    """The example JSON of docs/kernel-metadata.md (the contract), parsed."""
    if not METADATA_DOC.is_file():
        pytest.skip(f"{METADATA_DOC} not found (not a source checkout)")
    match = re.search(r"```json\n(.*?)```", METADATA_DOC.read_text(), re.S)
    assert match, "docs/kernel-metadata.md has no ```json example"
    return json.loads(match.group(1))


def doc_merge_metadata() -> dict:
    """The example JSON of docs/kernel-metadata.md's "Merge kernel sets" section, parsed."""
    if not METADATA_DOC.is_file():
        pytest.skip(f"{METADATA_DOC} not found (not a source checkout)")
    for block in re.findall(r"```json\n(.*?)```", METADATA_DOC.read_text(), re.S):
        if '"gqa.merge_states"' in block:
            return json.loads(block)
    raise AssertionError("docs/kernel-metadata.md has no ```json example of format gqa.merge_states")


@pytest.fixture
def example_metadata() -> dict:
    return copy.deepcopy(doc_example_metadata())


@pytest.fixture
def merge_metadata() -> dict:
    return copy.deepcopy(doc_merge_metadata())


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real tools or caches leak into unit tests: empty PATH lookups, a private cache dir.

    Tests that want the real tools request the ``real_env`` fixture, which undoes this.
    """
    cache = tmp_path / "kernel-cache"
    monkeypatch.setenv("GQA_KERNEL_CACHE", str(cache))
    for var in ("GQA_COMPILE", "GQA_RUN", "GQA_RUNTIME_LIB", "GQA_COMPILER_LIB"):
        monkeypatch.delenv(var, raising=False)
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.setattr(_tools, "repo_root", lambda: None)
    # The compiler library a test loaded (the real one, or a stub) is not another test's.
    monkeypatch.setattr(_compiler_lib, "_library", None)
    # Metadata is checked by the real runtime's reader, whichever runtime (none, a stub) the test launches with.
    monkeypatch.setattr(metadata, "runtime_problem", real_runtime_problem)
    _runtime.reset_runtime()
    compiler.clear_memory_cache()
    yield cache
    _runtime.reset_runtime()
    compiler.clear_memory_cache()


@pytest.fixture
def real_env(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's real environment: its PATH, $GQA_* variables, kernel cache and repo build dirs."""
    monkeypatch.setenv("PATH", ORIGINAL_PATH)
    for var, value in _ORIGINAL_ENV.items():
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    monkeypatch.setattr(_tools, "repo_root", _ORIGINAL_REPO_ROOT)


# --------------------------------------------------------------------------- fake compiler

FAKE_COMPILER = r'''#!{python}
"""A stand-in for gqa-compile: parses its flags and writes a valid PTX + metadata pair."""
import argparse, json, math, os, sys
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("--q-heads", type=int, required=True)
p.add_argument("--kv-heads", type=int, required=True)
p.add_argument("--head-dim", type=int, required=True)
p.add_argument("--head-dim-v", type=int)
p.add_argument("--dtype", required=True, choices=["f16", "bf16", "f32"])
p.add_argument("--layout", required=True, choices=["bshd", "bhsd"])
g = p.add_mutually_exclusive_group()
g.add_argument("--causal", action="store_true")
g.add_argument("--window")
p.add_argument("--softcap", type=float, default=0.0)
p.add_argument("--scale", type=float)
p.add_argument("--kv-lens", action="store_true")
p.add_argument("--page-size", type=int, default=0)
p.add_argument("--sinks", action="store_true")
p.add_argument("--return-lse", action="store_true")
p.add_argument("--varlen", action="store_true")
p.add_argument("--packed-kv", action="store_true")
p.add_argument("--chip", default="sm_90")
p.add_argument("-o", dest="out", required=True)
a = p.parse_args()

with open(os.environ["FAKE_GQA_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
mode = os.environ.get("FAKE_GQA_MODE", "ok")
if mode == "fail":
    print("error: gqa-compile: head_dim 7 is not supported", file=sys.stderr)
    sys.exit(3)

left, right = -1, -1
mask = "none"
if a.causal:
    mask, right = "causal", 0
elif a.window:
    left, right = (int(x) for x in a.window.split(","))
    mask = "window"
if mode == "ignore-mask":
    mask, left, right = "none", -1, -1
page_size = 0 if mode == "ignore-page-size" else a.page_size
dv = a.head_dim_v or a.head_dim
params = [{"name": n, "type": "ptr"} for n in ("q", "k", "v", "out")]
if a.kv_lens:
    params.append({"name": "kv_lens", "type": "ptr"})
if page_size:
    params.append({"name": "block_table", "type": "ptr"})
params += [{"name": n, "type": "ptr"} for n, on in (("cu_seqlens_q", a.varlen), ("cu_seqlens_k", a.packed_kv),
                                                    ("sinks", a.sinks), ("lse", a.return_lse)) if on]
params += [{"name": n, "type": "i64"} for n in ("batch", "seq_q", "seq_kv")]
if a.varlen:
    params.append({"name": "total_q", "type": "i64"})
if a.packed_kv:
    params.append({"name": "total_kv", "type": "i64"})
if page_size:
    params.append({"name": "num_pages", "type": "i64"})
meta = {
    "format": "gqa.kernel", "version": 3, "chip": a.chip, "ptx": Path(a.out).name,
    "config": {
        "q_heads": a.q_heads, "kv_heads": a.kv_heads, "group_size": a.q_heads // a.kv_heads,
        "head_dim": a.head_dim, "head_dim_v": dv, "dtype": a.dtype, "layout": a.layout,
        "mask": mask, "window_left": left, "window_right": right,
        "scale": a.scale if a.scale is not None else 1 / math.sqrt(a.head_dim),
        "softcap": a.softcap, "kv_lens": "i32" if a.kv_lens else "none",
        "page_size": page_size, "sinks": a.sinks, "lse": a.return_lse, "varlen": a.varlen, "packed_kv": a.packed_kv,
        "batch": None, "seq_q": None, "seq_kv": None,
    },
    "tile": {"block_m": 64, "block_n": 64, "warps": 4, "stages": 2, "pack_gqa": True},
    "split_kv": {"max_splits": 0},
    "kernels": [{
        "name": "gqa_attention_fwd", "role": "main", "block": [128, 1, 1],
        "dynamic_shared_memory_bytes": 0, "static_shared_memory_bytes": 49152,
        "grid": [{"sym": "seq_q", "mul": a.q_heads // a.kv_heads, "div": 64},
                 {"const": a.kv_heads}, {"sym": "batch"}],
        "params": params,
    }],
}
if mode == "bad-metadata":
    meta["version"] = 99
out = Path(a.out)
out.write_text("// fake PTX\n.version 8.0\n.target " + a.chip + "\n")
if mode != "no-json":
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
'''


class FakeCompiler:
    """Handle on the fake gqa-compile: its path, its invocation log, its mode."""

    def __init__(self, path: Path, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path, self.log, self._mp = path, log, monkeypatch

    @property
    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def set_mode(self, mode: str) -> None:
        self._mp.setenv("FAKE_GQA_MODE", mode)

    def remove(self) -> None:
        """Make the compiler unavailable (as on the GPU machine)."""
        self._mp.delenv("GQA_COMPILE", raising=False)


@pytest.fixture
def fake_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCompiler:
    path = tmp_path / "fake-bin" / "gqa-compile"
    path.parent.mkdir()
    path.write_text(FAKE_COMPILER.replace("{python}", sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = tmp_path / "fake-compiler.log"
    monkeypatch.setenv("FAKE_GQA_LOG", str(log))
    monkeypatch.setenv("FAKE_GQA_MODE", "ok")
    monkeypatch.setenv("GQA_COMPILE", str(path))
    return FakeCompiler(path, log, monkeypatch)


# --------------------------------------------------------------------------- fake tensors

_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8}


class FakeDevice:
    """Mimics torch.device (``type``, ``index``, ``str``)."""

    def __init__(self, spec: str) -> None:
        self.type, _, index = spec.partition(":")
        self.index: Optional[int] = int(index) if index else (0 if self.type == "cuda" else None)

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def _row_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return tuple(reversed(strides))


class FakeTensor:
    """Duck-typed stand-in for a torch.Tensor (no memory behind ``data_ptr``)."""

    _next_ptr = 0x7F0000000000

    def __init__(self, shape: tuple[int, ...], dtype: str = "float16", device: str = "cuda:0",
                 strides: Optional[tuple[int, ...]] = None) -> None:
        self.shape = tuple(shape)
        self.dtype = f"torch.{dtype}"  # str(torch.float16) == "torch.float16"
        self.device = FakeDevice(device)
        self._strides = tuple(strides) if strides is not None else _row_major(self.shape)
        self._ptr = FakeTensor._next_ptr
        FakeTensor._next_ptr += 1 << 24
        self.zeroed = False

    def data_ptr(self) -> int:
        return self._ptr

    def stride(self) -> tuple[int, ...]:
        return self._strides

    def new_empty(self, shape: tuple[int, ...], dtype: Any = None) -> "FakeTensor":
        name = str(dtype) if dtype is not None else self.dtype
        return FakeTensor(shape, name[len("torch."):], str(self.device))

    def zero_(self) -> "FakeTensor":
        self.zeroed = True
        return self


class FakeCudaArray:
    """An object exposing only ``__cuda_array_interface__`` (like a CuPy/Numba array)."""

    def __init__(self, shape: tuple[int, ...], typestr: str = "<f2", strides: Any = None,
                 ptr: int = 0x7E0000000000, readonly: bool = False) -> None:
        self.__cuda_array_interface__ = {
            "shape": tuple(shape), "typestr": typestr, "data": (ptr, readonly),
            "strides": strides, "version": 3,
        }


@pytest.fixture
def tensor():
    """Factory for FakeTensor."""
    return FakeTensor


# The real tools, looked up once at import time, before the autouse fixture hides them.
def _real_tool(name: str, env: str) -> Optional[Path]:
    try:
        return _tools.find_executable(name, env)
    except gqa.ToolNotFoundError:
        return None  # $env names a missing file: treat as not found


REAL_GQA_COMPILE = _real_tool("gqa-compile", _tools.ENV_COMPILE)
REAL_GQA_RUN = _real_tool("gqa-run", _tools.ENV_RUN)
try:
    REAL_COMPILER_LIB = _tools.find_compiler_library()
except gqa.ToolNotFoundError:
    REAL_COMPILER_LIB = None


RUNTIME_HEADER = REPO / "include" / "gqa" / "Runtime" / "Runtime.h"


def build_shared_lib(source: Path, out: Path) -> Path:
    """Compile a C file (which may include gqa/Runtime/Runtime.h) into a shared library.

    Skips the test when there is no C compiler or no runtime header; a compile
    error fails it (for the stub runtime that means the header's ABI changed).
    """
    cc = shutil.which("cc", path=ORIGINAL_PATH) or shutil.which("gcc", path=ORIGINAL_PATH)
    if cc is None:
        pytest.skip("no C compiler to build a stub libgqa_runtime.so")
    if not RUNTIME_HEADER.is_file():
        pytest.skip(f"{RUNTIME_HEADER} not found (not a source checkout)")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [cc, "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-O0", f"-I{REPO / 'include'}",
           "-o", str(out), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PATH": ORIGINAL_PATH})
    if proc.returncode != 0:
        pytest.fail(f"cannot build {source.name}: {' '.join(cmd)}\n{proc.stderr.strip()}")
    return out


@pytest.fixture
def stub_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ctypes.CDLL:
    """Build stub_runtime.c (against Runtime.h) into a fresh libgqa_runtime.so; GQA_RUNTIME_LIB points at it.

    The stub records what the launcher passes (:func:`last_args`) and launches nothing.
    """
    lib = build_shared_lib(Path(__file__).resolve().parent / "stub_runtime.c", tmp_path / "stub" / "libgqa_runtime.so")
    monkeypatch.setenv("GQA_RUNTIME_LIB", str(lib))
    return ctypes.CDLL(str(lib))


def last_args(stub: ctypes.CDLL) -> dict:
    """The launch arguments of the stub runtime's last launch, by field name."""
    args = _runtime.LaunchArgs()
    stub.stub_last_args(ctypes.byref(args))
    return {name: getattr(args, name) for name, _ in _runtime.LaunchArgs._fields_}


def _real_runtime_lib() -> Optional[Path]:
    try:
        return _tools.find_runtime_library()
    except gqa.ToolNotFoundError:
        return None


REAL_RUNTIME_LIB = _real_runtime_lib()
_REAL_RUNTIME: list = []


def real_runtime_problem(text: bytes) -> Optional[str]:
    """gqa.metadata.runtime_problem with the build's real runtime (loaded once); skips without one."""
    if REAL_RUNTIME_LIB is None:
        pytest.skip("libgqa_runtime.so is not built: it is the metadata's validator")
    if not _REAL_RUNTIME:
        _REAL_RUNTIME.append(_runtime.RuntimeLibrary(REAL_RUNTIME_LIB))
    return _REAL_RUNTIME[0].metadata_problem(text)


@pytest.fixture
def stub_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ctypes.CDLL:
    """Build stub_compiler.c (against gqa-c/CPU.h) into a fresh libgqa_compiler.so; GQA_COMPILER_LIB points at it.

    It compiles merge_states kernels only (the metadata of the configuration it is given, a fake PTX) and
    records what python/gqa passes (isolated_env has unloaded the process's compiler library for the test).
    """
    lib = build_shared_lib(Path(__file__).resolve().parent / "stub_compiler.c",
                           tmp_path / "stub-compiler" / "libgqa_compiler.so")
    monkeypatch.setenv("GQA_COMPILER_LIB", str(lib))
    stub = ctypes.CDLL(str(lib))
    stub.stub_compiler_last_chip.restype = stub.stub_compiler_last_ptx_file.restype = ctypes.c_char_p
    return stub


def last_merge_args(stub: ctypes.CDLL) -> dict:
    """The arguments of the stub runtime's last gqa_kernel_merge_states, by field name."""
    args = _runtime.MergeArgs()
    stub.stub_last_merge_args(ctypes.byref(args))
    return {name: getattr(args, name) for name, _ in _runtime.MergeArgs._fields_}
