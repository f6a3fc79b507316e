"""ctypes binding to ``libgqa_compiler.so`` (``include/gqa-c/Compiler.h`` and ``include/gqa-c/CPU.h``).

GPU kernels: :func:`compile_attention` and :func:`compile_merge_states`
return the PTX and metadata JSON of one configuration, compiled in process.
CPU: a configuration is compiled (the gqa-lower-to-cpu pipeline, JIT) once
per process and kept; a call then runs in process on the caller's host
arrays, with no subprocess and no file.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any, Optional

from ._tools import COMPILER_LIB_NAME, ENV_COMPILER_LIB, find_compiler_library
from .config import KernelConfig, MergeConfig
from .errors import CompileError, CompilerNotFoundError, LaunchError

_i32, _i64, _ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p


class _Attention(ctypes.Structure):
    _fields_ = [
        ("q_heads", _i64), ("kv_heads", _i64), ("head_dim", _i64), ("head_dim_v", _i64),
        ("dtype", ctypes.c_char_p), ("layout", ctypes.c_char_p), ("causal", _i32),
        ("window_left", _i64), ("window_right", _i64), ("scale", ctypes.c_double),
        ("softcap", ctypes.c_double), ("kv_lens", _i32), ("page_size", _i64),
        ("sinks", _i32), ("return_lse", _i32), ("varlen", _i32), ("packed_kv", _i32),
    ]


class _MergeStates(ctypes.Structure):
    _fields_ = [("heads", _i64), ("head_dim_v", _i64), ("dtype", ctypes.c_char_p), ("layout", ctypes.c_char_p),
                ("varlen", _i32)]


class _Target(ctypes.Structure):
    _fields_ = [("chip", ctypes.c_char_p), ("max_splits", _i64)]


class _CompiledKernel(ctypes.Structure):
    _fields_ = [("ptx", ctypes.POINTER(ctypes.c_char)), ("metadata_json", ctypes.POINTER(ctypes.c_char))]


class _Options(ctypes.Structure):
    _fields_ = [("schedule", ctypes.c_char_p), ("threads", _i64), ("max_splits", _i64)]


class _Arguments(ctypes.Structure):
    _fields_ = [
        ("batch", _i64), ("seq_q", _i64), ("seq_kv", _i64),
        ("query", _ptr), ("key", _ptr), ("value", _ptr), ("kv_lens", _ptr),
        ("block_table", _ptr), ("pages_per_sequence", _i64), ("num_pages", _i64),
        ("sinks", _ptr), ("cu_seqlens_q", _ptr), ("cu_seqlens_k", _ptr), ("output", _ptr), ("lse", _ptr),
    ]


_library: Optional[ctypes.CDLL] = None
_lock = threading.Lock()
#: The entry point that compiles merge_states kernels (gqa-c/Compiler.h).
MERGE_SYMBOL = "gqa_compiler_compile_merge_states"


def load() -> ctypes.CDLL:
    """The loaded library (raises CompilerNotFoundError when absent, OSError when not loadable)."""
    global _library
    with _lock:
        if _library is not None:
            return _library
        path = find_compiler_library()
        if path is None:
            raise CompilerNotFoundError(
                f"{COMPILER_LIB_NAME} not found: set ${ENV_COMPILER_LIB} or build it into <repo>/build*/")
        lib = ctypes.CDLL(str(path))
        err = ctypes.POINTER(ctypes.c_char)
        lib.gqa_cpu_kernel_create.argtypes = [ctypes.POINTER(_Attention), ctypes.POINTER(_Options),
                                              ctypes.POINTER(_ptr), ctypes.POINTER(err)]
        lib.gqa_cpu_kernel_run.argtypes = [_ptr, ctypes.POINTER(_Arguments), ctypes.POINTER(err)]
        lib.gqa_cpu_kernel_destroy.argtypes = [_ptr]
        lib.gqa_compiler_free.argtypes = [err]
        lib.gqa_compiler_compile_attention.argtypes = [ctypes.POINTER(_Attention), ctypes.POINTER(_Target),
                                                       ctypes.c_char_p, ctypes.POINTER(_CompiledKernel),
                                                       ctypes.POINTER(err)]
        lib.gqa_compiler_compile_attention.restype = ctypes.c_int
        merge = getattr(lib, MERGE_SYMBOL, None)  # absent from libraries built before merge_states
        if merge is not None:
            merge.argtypes = [ctypes.POINTER(_MergeStates), ctypes.POINTER(_Target), ctypes.c_char_p,
                              ctypes.POINTER(_CompiledKernel), ctypes.POINTER(err)]
            merge.restype = ctypes.c_int
        for fn in (lib.gqa_cpu_kernel_create, lib.gqa_cpu_kernel_run):
            fn.restype = ctypes.c_int
        lib.gqa_cpu_kernel_destroy.restype = None
        lib.gqa_compiler_free.restype = None
        _library = lib
        return lib


def _message(lib: ctypes.CDLL, error: "ctypes._Pointer") -> str:
    if not error:
        return "unknown error"
    text = ctypes.cast(error, ctypes.c_char_p).value.decode(errors="replace")
    lib.gqa_compiler_free(error)
    return text


def _attention(cfg: KernelConfig, sinks: bool = False, return_lse: bool = False, varlen: bool = False,
               packed_kv: bool = False) -> _Attention:
    """The C configuration struct of ``cfg`` (gqa-c/Compiler.h)."""
    return _Attention(
        cfg.q_heads, cfg.kv_heads, cfg.head_dim, cfg.head_dim_v, cfg.dtype.encode(), cfg.layout.encode(),
        0, cfg.window[0], cfg.window[1], 0.0 if cfg.default_scale else cfg.scale, cfg.softcap,
        int(cfg.kv_lens), cfg.page_size, int(sinks), int(return_lse), int(varlen), int(packed_kv))


def compile_attention(cfg: KernelConfig, ptx_file_name: str) -> tuple[str, str]:
    """PTX and metadata JSON of ``cfg`` for ``cfg.chip``, compiled in process (gqa-compile's defaults)."""
    lib = load()
    attention = _attention(cfg, sinks=cfg.sinks, return_lse=cfg.lse, varlen=cfg.varlen, packed_kv=cfg.packed_kv)
    return _compile(lib, lib.gqa_compiler_compile_attention, attention, cfg.chip, cfg.key(), ptx_file_name)


def has_merge_states() -> bool:
    """Whether the library loads and has :data:`MERGE_SYMBOL` (libraries built before it do not)."""
    try:
        return getattr(load(), MERGE_SYMBOL, None) is not None
    except (CompilerNotFoundError, OSError):
        return False


def compile_merge_states(cfg: MergeConfig, ptx_file_name: str) -> tuple[str, str]:
    """PTX and metadata JSON (format ``gqa.merge_states``) of the merge kernel of ``cfg``, compiled in process."""
    lib = load()
    fn = getattr(lib, MERGE_SYMBOL, None)
    if fn is None:
        raise CompilerNotFoundError(f"the loaded {COMPILER_LIB_NAME} has no {MERGE_SYMBOL}: it predates merge "
                                    "kernels; rebuild it")
    merge = _MergeStates(cfg.heads, cfg.head_dim_v, cfg.dtype.encode(), cfg.layout.encode(), int(cfg.varlen))
    return _compile(lib, fn, merge, cfg.chip, cfg.key(), ptx_file_name)


def _compile(lib: ctypes.CDLL, fn: Any, what: ctypes.Structure, chip: str, key: str,
             ptx_file_name: str) -> tuple[str, str]:
    """Call a ``gqa_compiler_compile_*`` entry point; return (PTX, metadata JSON), the library's strings freed."""
    kernel, error = _CompiledKernel(), ctypes.POINTER(ctypes.c_char)()
    target = _Target(chip.encode(), -1)
    if fn(ctypes.byref(what), ctypes.byref(target), ptx_file_name.encode(), ctypes.byref(kernel),
          ctypes.byref(error)):
        raise CompileError(f"compiling {key} failed: {_message(lib, error)}")
    try:
        return (ctypes.cast(kernel.ptx, ctypes.c_char_p).value.decode(),
                ctypes.cast(kernel.metadata_json, ctypes.c_char_p).value.decode())
    finally:
        lib.gqa_compiler_free(kernel.ptx)
        lib.gqa_compiler_free(kernel.metadata_json)


@dataclass(frozen=True)
class CpuKernelKey:
    """Everything a compiled CPU kernel is specialised for."""

    config: KernelConfig
    sinks: bool
    return_lse: bool
    schedule: str
    threads: int
    max_splits: int
    #: A ragged batch (cu_seqlens_q), with packed K/V (cu_seqlens_k).
    varlen: bool = False
    packed_kv: bool = False


class CpuKernel:
    """One configuration compiled for the host; :meth:`run` calls it on raw pointers."""

    def __init__(self, key: CpuKernelKey) -> None:
        self.key = key
        self._lib = load()
        cfg = key.config
        attention = _attention(cfg, key.sinks, key.return_lse, key.varlen, key.packed_kv)
        options = _Options(key.schedule.encode(), key.threads, key.max_splits)
        handle, error = _ptr(), ctypes.POINTER(ctypes.c_char)()
        if self._lib.gqa_cpu_kernel_create(ctypes.byref(attention), ctypes.byref(options), ctypes.byref(handle),
                                           ctypes.byref(error)):
            raise CompileError(f"compiling {cfg.key()} for the CPU failed: {_message(self._lib, error)}")
        self._handle = handle

    def run(self, **fields: int) -> None:
        """Run on an ``gqa_cpu_arguments`` given as keyword fields (pointers as ints, 0 for none)."""
        arguments = _Arguments(**fields)
        error = ctypes.POINTER(ctypes.c_char)()
        if self._lib.gqa_cpu_kernel_run(self._handle, ctypes.byref(arguments), ctypes.byref(error)):
            raise LaunchError(f"the CPU kernel refused its arguments: {_message(self._lib, error)}")

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle:
            self._lib.gqa_cpu_kernel_destroy(handle)


_kernels: dict[CpuKernelKey, CpuKernel] = {}
_kernels_lock = threading.Lock()


def cpu_kernel(key: CpuKernelKey) -> CpuKernel:
    """The kernel of ``key``, compiled on first use and kept for the process."""
    with _kernels_lock:
        kernel = _kernels.get(key)
        if kernel is None:
            kernel = _kernels[key] = CpuKernel(key)
        return kernel
