"""gqa: grouped-query attention kernels compiled with MLIR, from Python.

* :func:`attention` runs a compiled kernel on CUDA tensors through ``libgqa_runtime.so``, and
  the CPU path in process (``libgqa_compiler.so``) on numpy arrays and PyTorch CPU tensors.
* ``torch.ops.gqa.attention`` (:mod:`gqa.torch_ops`) and flash_attn's functions
  (:func:`flash_attn_func`, :func:`flash_attn_with_kvcache`, :mod:`gqa.flash_attn`) for PyTorch.
* :func:`compile` / :func:`load_kernel` get kernels (``gqa-compile`` + an on-disk cache).
* :func:`reference.attention` is a float64 numpy reference of the semantics.
* Both take a paged KV cache (``block_table=``: k and v are page pools
  ``[num_pages, page_size, Hkv, D]``); :func:`reference.gather_pages` makes one contiguous.
* :func:`run_cpu` runs the compiler's CPU path (``gqa-run --target cpu``); both it and
  the reference take attention sinks and return the log-sum-exp.
* :func:`merge_attention_states` merges two partial results over disjoint keys by their LSE
  (on CUDA tensors with gqa's merge kernel, :func:`compile_merge_states`).
* :func:`kv_cache_bytes`, :func:`kv_cache_comparison`, :func:`attention_flops`: sizing formulas.

Importing the package needs only numpy; PyTorch is imported lazily when a
torch tensor is passed to :func:`attention`.
"""

from . import dtypes, host, reference
from .api import attention
from .compiler import (
    Kernel,
    compile,
    compile_config,
    compile_merge_states,
    find_compiler,
    load_kernel,
    precompile,
    resolve_cache_dir,
)
from .config import KernelConfig, MergeConfig
from .cpu import CpuRun, find_gqa_run, run_cpu
from .errors import (
    CompileError,
    CompilerNotFoundError,
    ConfigMismatchError,
    GQAError,
    LaunchError,
    MetadataError,
    RuntimeLibraryNotFoundError,
    ToolError,
    ToolNotFoundError,
)
from .merge import merge_attention_states
from .metadata import load_metadata, validate_metadata
from .shapes import LAYOUTS
from .sizing import KVCacheComparison, attention_flops, decode_min_bytes, kv_cache_bytes, kv_cache_comparison

__version__ = "0.1.0"

#: flash_attn's functions (:mod:`gqa.flash_attn`), loaded with PyTorch on first use.
_FLASH_ATTN = ("flash_attn_func", "flash_attn_varlen_func", "flash_attn_with_kvcache")


def __getattr__(name: str):
    if name in _FLASH_ATTN:
        from . import flash_attn

        return getattr(flash_attn, name)
    raise AttributeError(f"module 'gqa' has no attribute {name!r}")

__all__ = [
    "CompileError", "CompilerNotFoundError", "ConfigMismatchError", "CpuRun", "GQAError",
    "KVCacheComparison", "Kernel", "KernelConfig", "LAYOUTS", "LaunchError", "MergeConfig", "MetadataError",
    "RuntimeLibraryNotFoundError", "ToolError", "ToolNotFoundError", "attention", "attention_flops",
    "compile", "compile_config", "compile_merge_states", "decode_min_bytes", "dtypes", "find_compiler", "find_gqa_run",
    "kv_cache_bytes", "kv_cache_comparison", "load_kernel", "load_metadata", "merge_attention_states", "precompile",
    "reference",
    "resolve_cache_dir", "run_cpu", "validate_metadata",
]
