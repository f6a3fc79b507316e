"""Compiling kernels (in process through libgqa_compiler.so, else with ``gqa-compile``) and caching them on disk.

Cache layout (``$GQA_KERNEL_CACHE``, default ``~/.cache/gqa``)::

    <cache>/<key>/kernel.ptx
    <cache>/<key>/kernel.json      metadata (docs/kernel-metadata.md)

``<key>`` depends only on the :class:`~gqa.config.KernelConfig` (or, for
the merge kernels of :func:`compile_merge_states`, the
:class:`~gqa.config.MergeConfig`: ``merge-h64-dv128-...``), so a cache
directory filled on a machine with the compiler can be copied to one without
it (e.g. the GPU machine) and :func:`compile` finds the kernels there.  When
the compiler *is* present and newer than a cached entry, the entry is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from ._tools import ENV_COMPILE, find_compiler_library, find_executable, searched_locations
from .config import KernelConfig, MergeConfig
from .errors import CompileError, CompilerNotFoundError, ConfigMismatchError
from .metadata import is_merge_states, load_metadata

ENV_CACHE = "GQA_KERNEL_CACHE"
PTX_NAME = "kernel.ptx"
JSON_NAME = "kernel.json"

PathLike = Union[str, "os.PathLike[str]"]
#: What a kernel set is compiled for: attention, or the merge of two partial results.
AnyConfig = Union[KernelConfig, MergeConfig]


@dataclass(eq=False)
class Kernel:
    """A compiled kernel set: its PTX text, validated metadata and configuration.

    ``config`` is a :class:`~gqa.config.KernelConfig` for attention, a
    :class:`~gqa.config.MergeConfig` for a merge_states kernel set
    (:attr:`kind`).
    """

    ptx: str
    metadata: dict
    config: AnyConfig
    ptx_path: Path
    json_path: Path
    #: Runtime module handles, one per CUDA device (filled by the launcher).
    _modules: dict = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        """``"attention"`` or ``"merge_states"`` (the metadata's format)."""
        return "merge_states" if is_merge_states(self.metadata) else "attention"

    @property
    def fixed_sizes(self) -> dict[str, Optional[int]]:
        """``batch``, ``seq_q``, ``seq_kv`` (not for a merge) the kernel was compiled for (``None`` = any)."""
        cfg = self.metadata["config"]
        return {k: cfg[k] for k in ("batch", "seq_q", "seq_kv") if k in cfg}

    @property
    def page_size(self) -> int:
        """Tokens per page of the paged KV cache the kernel reads; 0 for contiguous K/V."""
        return self.metadata["config"]["page_size"]

    @property
    def kv_lens_type(self) -> str:
        """``"none"``, ``"i32"`` or ``"i64"``."""
        return self.metadata["config"]["kv_lens"]

    def __repr__(self) -> str:
        return f"Kernel({self.config.key()!r}, ptx_path={str(self.ptx_path)!r})"


def resolve_cache_dir(path: Optional[PathLike] = None) -> Path:
    """The kernel cache directory: ``path``, else ``$GQA_KERNEL_CACHE``, else ``~/.cache/gqa``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gqa"


def find_compiler() -> Optional[Path]:
    """The ``gqa-compile`` executable (``$GQA_COMPILE``, PATH, ``<repo>/build*/bin``), or None."""
    return find_executable("gqa-compile", ENV_COMPILE, CompilerNotFoundError)


def load_kernel(ptx_path: PathLike, json_path: Optional[PathLike] = None) -> Kernel:
    """Load a precompiled PTX + metadata pair (``json_path`` defaults to the PTX path with ``.json``).

    The metadata is validated against docs/kernel-metadata.md by the runtime's reader (so
    ``libgqa_runtime.so`` must be found, as for launching); it may describe attention or a
    merge_states kernel set.
    """
    ptx_path = Path(ptx_path)
    json_path = ptx_path.with_suffix(".json") if json_path is None else Path(json_path)
    meta = load_metadata(json_path)
    try:
        ptx = ptx_path.read_text()
    except OSError as e:
        raise FileNotFoundError(f"cannot read PTX {ptx_path}: {e.strerror or e}") from e
    config = MergeConfig.from_metadata(meta) if is_merge_states(meta) else KernelConfig.from_metadata(meta)
    return Kernel(ptx=ptx, metadata=meta, config=config, ptx_path=ptx_path, json_path=json_path)


def _check_matches(kernel: Kernel, config: AnyConfig) -> Kernel:
    problems = config.mismatches(kernel.config)
    if problems:
        raise ConfigMismatchError(
            f"kernel {kernel.json_path} does not match the requested configuration: "
            + "; ".join(problems)
        )
    return kernel


def _run_compiler(compiler: Path, config: KernelConfig, out_dir: Path) -> None:
    cmd = [str(compiler), *config.compiler_args(), "-o", str(out_dir / PTX_NAME)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise CompileError(f"cannot run {compiler}: {e}") from e
    if proc.returncode != 0:
        raise CompileError(
            f"gqa-compile failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}"
        )
    for name in (PTX_NAME, JSON_NAME):
        if not (out_dir / name).is_file():
            raise CompileError(f"gqa-compile succeeded but did not write {name}: {' '.join(cmd)}")


def _install(tmp: Path, entry: Path, replace: bool) -> None:
    """Move a freshly compiled ``tmp`` dir to ``entry`` (atomic rename; a concurrent winner is kept)."""
    if replace and entry.exists():
        shutil.rmtree(entry, ignore_errors=True)
    try:
        os.rename(tmp, entry)
    except OSError:
        if not entry.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process installed it first


def compile(  # noqa: A001 - the public name mirrors the CLI tool
    q_heads: int,
    kv_heads: int,
    head_dim: int,
    *,
    head_dim_v: Optional[int] = None,
    dtype: Any = "bf16",
    layout: str = "bhsd",
    causal: bool = False,
    window: Optional[Sequence[int]] = None,
    softcap: Optional[float] = None,
    scale: Optional[float] = None,
    kv_lens: bool = False,
    chip: str = "sm_90",
    page_size: int = 0,
    sinks: bool = False,
    lse: bool = False,
    varlen: bool = False,
    packed_kv: bool = False,
    cache_dir: Optional[PathLike] = None,
    recompile: bool = False,
) -> Kernel:
    """Get the kernel for a configuration, from the cache or by running ``gqa-compile``.

    A cached entry is used as is when no compiler is found (the GPU machine
    case), or when it is newer than the compiler.  ``recompile=True`` forces a
    fresh compile.  Raises :class:`~gqa.errors.CompilerNotFoundError` when
    neither a cached kernel nor the compiler is available,
    :class:`~gqa.errors.CompileError` when the compiler fails,
    :class:`~gqa.errors.MetadataError` for invalid metadata (checked by the runtime's reader:
    :class:`~gqa.errors.RuntimeLibraryNotFoundError` when ``libgqa_runtime.so`` is not found) and
    :class:`~gqa.errors.ConfigMismatchError` when the kernel's metadata
    describes another configuration.

    ``page_size`` > 0 compiles a kernel for a paged KV cache (``gqa-compile
    --page-size``): k and v are page pools ``[num_pages, page_size, Hkv, D]``
    read through a block table (see :func:`gqa.attention`).  ``sinks`` compiles
    a kernel that takes one attention-sink logit per query head (``--sinks``),
    ``lse`` one that also writes the rows' log-sum-exps (``--return-lse``).
    ``varlen`` compiles one for a ragged batch (``--varlen``, layout ``bshd``):
    q and out packed tokens split by ``cu_seqlens_q``, K/V a cache or page
    pools (see :func:`gqa.attention`'s ``cu_seqlens_q``/``max_seqlen_q``);
    with ``packed_kv`` also K/V packed tokens split by ``cu_seqlens_k``
    (``--packed-kv``, see ``cu_seqlens_k``/``max_seqlen_k``).
    """
    config = KernelConfig.create(
        q_heads, kv_heads, head_dim, head_dim_v=head_dim_v, dtype=dtype, layout=layout,
        causal=causal, window=window, softcap=softcap, scale=scale, kv_lens=kv_lens, chip=chip,
        page_size=page_size, sinks=sinks, lse=lse, varlen=varlen, packed_kv=packed_kv,
    )
    return compile_config(config, cache_dir=cache_dir, recompile=recompile)


def compile_config(
    config: AnyConfig, *, cache_dir: Optional[PathLike] = None, recompile: bool = False
) -> Kernel:
    """:func:`compile` for an already built :class:`~gqa.config.KernelConfig` (or
    :func:`compile_merge_states` for a :class:`~gqa.config.MergeConfig`)."""
    root = resolve_cache_dir(cache_dir)
    entry = root / config.key()
    memo_key = (str(root), config)
    if not recompile and memo_key in _loaded:
        return _loaded[memo_key]
    kernel = _compile_or_load(config, root, entry, recompile)
    _loaded[memo_key] = kernel
    return kernel


def compile_merge_states(
    heads: int,
    head_dim_v: int,
    *,
    dtype: Any = "bf16",
    layout: str = "bhsd",
    varlen: bool = False,
    chip: str = "sm_90",
    cache_dir: Optional[PathLike] = None,
    recompile: bool = False,
) -> Kernel:
    """Get the merge_states kernel set of one configuration, from the cache or compiled.

    The kernel merges two partial attention results over disjoint keys by
    their log-sum-exps (docs/kernel-metadata.md, "gqa.merge_states"; what
    :func:`gqa.merge_attention_states` launches on CUDA tensors): outputs
    ``(B, heads, S, head_dim_v)`` in ``layout`` of element type ``dtype`` and
    float32 log-sum-exps ``(B, heads, S)``; with ``varlen``, flash_attn's
    packed shapes ``(T, heads, head_dim_v)`` and ``(heads, T)`` (layout
    ``bshd``).  It is compiled in process through ``libgqa_compiler.so``
    (``gqa_compiler_compile_merge_states``); without it, a cached entry is
    used and a missing one raises :class:`~gqa.errors.CompilerNotFoundError`.
    The cache, its keys and the errors are otherwise :func:`compile`'s.
    """
    config = MergeConfig.create(heads, head_dim_v, dtype=dtype, layout=layout, varlen=varlen, chip=chip)
    return compile_config(config, cache_dir=cache_dir, recompile=recompile)


#: Kernels already loaded in this process, by (cache dir, config): a launch must not re-read
#: (and the runtime not re-load) the kernel on every call.
_loaded: dict[tuple[str, AnyConfig], Kernel] = {}


def precompile(configs: Iterable[Union[AnyConfig, dict]], *, cache_dir: Optional[PathLike] = None,
               recompile: bool = False) -> list[Kernel]:
    """Compile (or load) every configuration now, so that serving never waits for a compiler.

    ``configs`` are :class:`~gqa.config.KernelConfig` objects or dicts of
    :func:`compile`'s keyword arguments, and for merge kernels
    :class:`~gqa.config.MergeConfig` objects or dicts of
    :func:`compile_merge_states`'s (told apart by their ``heads`` key;
    attention's is ``q_heads``).  Compiles in process through
    ``libgqa_compiler.so`` where it is found (else ``gqa-compile``, for
    attention); a later :func:`gqa.attention` or
    :func:`gqa.merge_attention_states` of the same configuration finds the
    kernel in memory.
    """
    kernels = []
    for config in configs:
        if isinstance(config, dict):
            config = MergeConfig.create(**config) if "heads" in config else KernelConfig.create(**config)
        kernels.append(compile_config(config, cache_dir=cache_dir, recompile=recompile))
    return kernels


def clear_memory_cache() -> None:
    """Forget the kernels loaded in this process (the on-disk cache is untouched)."""
    _loaded.clear()


def _compile_in_process(config: AnyConfig, out_dir: Path) -> None:
    """Write the kernel of ``config`` into ``out_dir`` through ``libgqa_compiler.so`` (no process)."""
    from . import _compiler_lib

    compile_fn = (_compiler_lib.compile_merge_states if isinstance(config, MergeConfig)
                  else _compiler_lib.compile_attention)
    ptx, metadata = compile_fn(config, PTX_NAME)
    (out_dir / PTX_NAME).write_text(ptx)
    (out_dir / JSON_NAME).write_text(metadata)


def _find_merge_compiler() -> Optional[Path]:
    """``libgqa_compiler.so`` when it loads and compiles merge kernels (they have no gqa-compile path here)."""
    from . import _compiler_lib

    library = find_compiler_library()
    return library if library is not None and _compiler_lib.has_merge_states() else None


def _find_compilers(config: AnyConfig) -> tuple[Optional[Path], bool]:
    """The compiler to use and whether it is the in-process library.

    An explicitly named ``$GQA_COMPILE`` wins; otherwise ``libgqa_compiler.so``
    (no process per compile) when it is found and loads, else ``gqa-compile``.
    Merge kernels are compiled by the library alone.
    """
    from . import _compiler_lib

    if isinstance(config, MergeConfig):
        library = _find_merge_compiler()
        return library, library is not None
    if os.environ.get(ENV_COMPILE):
        return find_compiler(), False
    library = find_compiler_library()
    if library is not None:
        try:
            _compiler_lib.load()
            return library, True
        except OSError:
            pass  # present but not loadable here (its LLVM is missing): use gqa-compile
    return find_compiler(), False


def _compile_or_load(config: AnyConfig, root: Path, entry: Path, recompile: bool) -> Kernel:
    cached_json = entry / JSON_NAME
    compiler, in_process = _find_compilers(config)
    have_cached = cached_json.is_file() and (entry / PTX_NAME).is_file()
    stale = (
        have_cached
        and compiler is not None
        and compiler.stat().st_mtime > cached_json.stat().st_mtime
    )
    if have_cached and not recompile and not stale:
        return _check_matches(load_kernel(entry / PTX_NAME, cached_json), config)
    if compiler is None:
        reason = "recompile=True was asked" if have_cached else f"no cached kernel at {entry}"
        if isinstance(config, MergeConfig):
            raise CompilerNotFoundError(
                f"no compiler of merge kernels found: libgqa_compiler.so with gqa_compiler_compile_merge_states "
                f"($GQA_COMPILER_LIB, <repo>/build*/lib) is needed, and {reason}. Build it, or compile on a "
                f"machine that has it and copy its cache directory here (set ${ENV_CACHE}).")
        raise CompilerNotFoundError(
            f"no compiler found: neither libgqa_compiler.so ($GQA_COMPILER_LIB, <repo>/build*/lib) nor "
            f"gqa-compile (looked in {searched_locations('gqa-compile', ENV_COMPILE)}) "
            f"and {reason}. Build the compiler, or compile on a machine that has it and copy its "
            f"cache directory here (set ${ENV_CACHE}), or load a PTX/JSON pair with gqa.load_kernel()."
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{config.key()}.", dir=root))
    try:
        if in_process:
            _compile_in_process(config, tmp)
        else:
            _run_compiler(compiler, config, tmp)
        _check_matches(load_kernel(tmp / PTX_NAME, tmp / JSON_NAME), config)  # validate before installing
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _install(tmp, entry, replace=have_cached)
    return _check_matches(load_kernel(entry / PTX_NAME, cached_json), config)
