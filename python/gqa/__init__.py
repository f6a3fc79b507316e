"""gqa: grouped-query attention kernels compiled with MLIR, from Python.

* :func:`attention` runs a compiled kernel on CUDA tensors through ``libgqa_runtime.so``.
* :func:`compile` / :func:`load_kernel` get kernels (``gqa-compile`` + an on-disk cache).
* :func:`reference.attention` is a float64 numpy reference of the semantics.
* Both take a paged KV cache (``block_table=``: k and v are page pools
  ``[num_pages, page_size, Hkv, D]``); :func:`reference.gather_pages` makes one contiguous.
* :func:`run_cpu` runs the compiler's CPU path (``gqa-run --target cpu``); both it and
  the reference take attention sinks and return the log-sum-exp.
* :func:`merge_attention_states` merges two partial results over disjoint keys by their LSE.
* :func:`kv_cache_bytes`, :func:`kv_cache_comparison`, :func:`attention_flops`: sizing formulas.

Importing the package needs only numpy; PyTorch is imported lazily when a
torch tensor is passed to :func:`attention`.
"""

from . import dtypes, reference
from .api import attention
from .compiler import Kernel, compile, compile_config, find_compiler, load_kernel, resolve_cache_dir
from .config import KernelConfig
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

__all__ = [
    "CompileError", "CompilerNotFoundError", "ConfigMismatchError", "CpuRun", "GQAError",
    "KVCacheComparison", "Kernel", "KernelConfig", "LAYOUTS", "LaunchError", "MetadataError",
    "RuntimeLibraryNotFoundError", "ToolError", "ToolNotFoundError", "attention", "attention_flops",
    "compile", "compile_config", "decode_min_bytes", "dtypes", "find_compiler", "find_gqa_run",
    "kv_cache_bytes", "kv_cache_comparison", "load_kernel", "load_metadata", "merge_attention_states",
    "reference",
    "resolve_cache_dir", "run_cpu", "validate_metadata",
]
