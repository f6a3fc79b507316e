"""``gqa.attention``: grouped-query attention on CUDA tensors through the runtime.

Inputs are PyTorch CUDA tensors or any object exposing
``__cuda_array_interface__``.  PyTorch is optional: it is imported only when a
torch tensor is passed.  Every check raises ``TypeError``/``ValueError`` naming
the tensor, the dimension and both values.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from . import _runtime
from .compiler import Kernel, PathLike, compile_config
from .config import KernelConfig
from .dtypes import normalize_dtype
from .errors import ConfigMismatchError
from .host import attention_host, is_host_array
from .shapes import POOL_DIMS, AttentionDims, attention_dims, normalize_layout, paged_attention_dims

_INT_TYPES = {"int32": "i32", "int64": "i64"}


def _torch_module() -> Any:
    """The torch module if it is already imported or importable, else None."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    try:
        import torch  # noqa: PLC0415 - optional dependency, imported lazily
    except ImportError:
        return None
    return torch


def _is_real_torch(obj: Any) -> bool:
    if not type(obj).__module__.startswith("torch"):
        return False  # avoids importing torch for other objects
    torch = _torch_module()
    return torch is not None and isinstance(obj, torch.Tensor)


def _is_torch_like(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("data_ptr", "device", "stride", "shape", "dtype"))


@dataclass
class _Tensor:
    """What the launcher needs to know about one tensor argument."""

    name: str
    obj: Any
    shape: tuple[int, ...]
    strides: Optional[tuple[int, ...]]  # in elements; None = C-contiguous
    dtype: str  # numpy-style name: float16, bfloat16, float32, int32, ...
    device: Optional[str]  # "cuda:0"; None when unknown (__cuda_array_interface__)
    device_index: Optional[int]
    ptr: int
    readonly: bool = False
    torch_like: bool = False

    def float_dtype(self) -> str:
        """The canonical float dtype (f16, bf16, f32), or ``TypeError``."""
        try:
            return normalize_dtype(self.dtype)
        except TypeError:
            raise TypeError(
                f"{self.name} has unsupported dtype {self.dtype}; gqa supports "
                "float16, bfloat16 and float32"
            ) from None

    def is_contiguous(self) -> bool:
        """Row-major with no padding (strides of size-1 dimensions are ignored, as in PyTorch)."""
        if self.strides is None:
            return True
        expected = 1
        for size, stride in zip(reversed(self.shape), reversed(self.strides)):
            if size != 1 and stride != expected:
                return False
            expected *= size
        return True


def _cai_dtype_name(typestr: str) -> str:
    try:
        return np.dtype(typestr).name
    except TypeError:
        return typestr


def _wrap(name: str, obj: Any) -> _Tensor:
    """Describe ``obj`` (torch-like tensor or ``__cuda_array_interface__`` object)."""
    if _is_torch_like(obj):
        dev = obj.device
        dev_type = getattr(dev, "type", str(dev).split(":")[0])
        if dev_type != "cuda":
            raise ValueError(
                f"{name} is on device {dev}; gqa.attention needs CUDA tensors "
                "(use gqa.reference.attention for CPU arrays)"
            )
        index = getattr(dev, "index", None)
        dtype = str(obj.dtype)
        return _Tensor(
            name=name, obj=obj, shape=tuple(int(s) for s in obj.shape),
            strides=tuple(int(s) for s in obj.stride()),
            dtype=dtype[len("torch."):] if dtype.startswith("torch.") else dtype,
            device=f"cuda:{index if index is not None else 0}", device_index=index,
            ptr=int(obj.data_ptr()), torch_like=True,
        )
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is None:
        raise TypeError(
            f"{name} must be a CUDA tensor (a torch.Tensor on a CUDA device, or an object with "
            f"__cuda_array_interface__), got {type(obj).__module__}.{type(obj).__qualname__}"
            + ("; for numpy arrays use gqa.reference.attention" if isinstance(obj, np.ndarray) else "")
        )
    if cai.get("mask") is not None:
        raise ValueError(f"{name}: masked arrays (__cuda_array_interface__ 'mask') are not supported")
    dtype = _cai_dtype_name(cai["typestr"])
    shape = tuple(int(s) for s in cai["shape"])
    strides = None
    if cai.get("strides") is not None:
        size = np.dtype(cai["typestr"]).itemsize
        byte_strides = tuple(int(s) for s in cai["strides"])
        # A stride that is not a whole number of elements can never be contiguous: mark it with -1.
        strides = tuple(s // size if s % size == 0 else -1 for s in byte_strides)
    ptr, readonly = cai["data"]
    return _Tensor(name=name, obj=obj, shape=shape, strides=strides, dtype=dtype,
                   device=None, device_index=None, ptr=int(ptr or 0), readonly=bool(readonly))


def _check_same_device(tensors: Sequence[_Tensor]) -> None:
    known = [t for t in tensors if t.device is not None]
    for t in known[1:]:
        if t.device != known[0].device:
            raise ValueError(f"{t.name} is on {t.device} but {known[0].name} is on {known[0].device}")


def _check_contiguous(t: _Tensor, layout: str, what: Optional[str] = None) -> None:
    if not t.is_contiguous():
        raise ValueError(
            f"{t.name} must be contiguous ({what or f'row-major in layout {layout}'}, no padding); "
            f"got shape {t.shape} with strides {t.strides} (in elements); call .contiguous() first"
        )


def _check_kv_lens(kv_lens: Any, q: _Tensor, batch: int) -> _Tensor:
    t = _wrap("kv_lens", kv_lens)
    if len(t.shape) != 1 or t.shape[0] != batch:
        raise ValueError(f"kv_lens must have shape ({batch},) (one length per batch), got {t.shape}")
    if t.dtype not in _INT_TYPES:
        raise TypeError(f"kv_lens must be int32 or int64, got {t.dtype}")
    _check_same_device([q, t])
    _check_contiguous(t, "1-D")
    return t


def _wrap_block_table(block_table: Any, q: _Tensor) -> _Tensor:
    """The block table: a CUDA int32 tensor on q's device (or a torch int64 one, converted at launch)."""
    t = _wrap("block_table", block_table)
    _check_same_device([q, t])
    if t.dtype != "int32" and not (t.dtype == "int64" and _is_real_torch(t.obj)):
        hint = "; convert it with .to(torch.int32)" if t.dtype == "int64" else ""
        raise TypeError(f"block_table must be int32 (page indices, as the kernels read them), got {t.dtype}{hint}")
    return t


def _block_table_int32(t: _Tensor) -> _Tensor:
    """``t`` as int32 (a torch int64 table is converted; :func:`_wrap_block_table` let nothing else through)."""
    if t.dtype == "int32":
        return t
    return _wrap("block_table", t.obj.to(_torch_module().int32))


def _check_offsets(name: str, offsets: Any, longest_name: str, longest: Any, packed: _Tensor,
                   batch: Optional[int] = None) -> _Tensor:
    """Offsets of packed tokens on the GPU: int32 [B+1] on ``packed``'s device, ``packed`` being (T, H, D)
    tokens, with the longest segment ``longest`` given (reading the offsets would synchronise the device)."""
    if len(packed.shape) != 3:
        raise ValueError(f"with {name}, {packed.name} must be packed tokens (T, H, D), got shape {packed.shape}")
    t = _wrap(name, offsets)
    _check_same_device([packed, t])
    if t.dtype != "int32" or len(t.shape) != 1 or t.shape[0] < 2:
        raise TypeError(f"{name} must be int32 of shape (B+1,) with B >= 1, got {t.dtype} {t.shape}")
    if batch is not None and t.shape[0] != batch + 1:
        raise ValueError(f"{name} has {t.shape[0]} offsets, but cu_seqlens_q has {batch + 1} (B+1 each)")
    _check_contiguous(t, "", "1-D")
    least = 1 if packed.shape[0] else 0  # no tokens at all: nothing to compute (returns early)
    if isinstance(longest, bool) or not isinstance(longest, int) or longest < least:
        raise ValueError(f"with {name} on the GPU, {longest_name} is required: the longest sequence's token "
                         f"count, an int >= {least} (reading the offsets would synchronise the device); "
                         f"got {longest!r}")
    return t


def _check_varlen(cu_seqlens_q: Any, max_seqlen_q: Any, q: _Tensor, layout: str) -> _Tensor:
    """The offsets of a ragged batch on the GPU: int32 [B+1] on q's device, with q packed bshd tokens."""
    if layout != "bshd":
        raise ValueError(f"a ragged batch (cu_seqlens_q) has packed bshd tokens; layout must be 'bshd', got {layout!r}")
    return _check_offsets("cu_seqlens_q", cu_seqlens_q, "max_seqlen_q", max_seqlen_q, q)


def _check_packed_kv(cu_seqlens_k: Any, max_seqlen_k: Any, k: _Tensor, v: _Tensor, cu_q: Optional[_Tensor],
                     block_table: Any) -> _Tensor:
    """The offsets of packed K/V on the GPU: int32 [B+1] beside cu_seqlens_q, k and v (Tk, Hkv, D) tokens."""
    if cu_q is None:
        raise ValueError("cu_seqlens_k needs cu_seqlens_q: packed keys come with packed queries")
    if block_table is not None:
        raise ValueError("cu_seqlens_k packs K/V by sequence; it cannot be combined with a block_table")
    cu_k = _check_offsets("cu_seqlens_k", cu_seqlens_k, "max_seqlen_k", max_seqlen_k, k, cu_q.shape[0] - 1)
    if len(v.shape) != 3 or v.shape[0] != k.shape[0]:
        raise ValueError(f"with cu_seqlens_k, v must be packed tokens (Tk, Hkv, Dv) beside k {k.shape}, "
                         f"got shape {v.shape}")
    return cu_k


def _check_out(out: Any, q: _Tensor, want: tuple[int, ...], layout: str) -> _Tensor:
    t = _wrap("out", out)
    _check_same_device([q, t])
    if t.dtype != q.dtype:
        raise TypeError(f"dtype mismatch: out is {t.dtype} but q is {q.dtype}")
    if t.shape != want:
        raise ValueError(f"out has shape {t.shape}, expected {want} ((B, Hq, Sq, Dv) in layout {layout}, "
                         "or (T, Hq, Dv) for a ragged batch)")
    _check_contiguous(t, layout)
    if t.readonly:
        raise ValueError("out is read-only")
    return t


def _check_f32(name: str, x: Any, q: _Tensor, shape: tuple[int, ...], what: str) -> _Tensor:
    """A contiguous float32 CUDA tensor of ``shape`` on q's device (the sinks, an lse= output)."""
    t = _wrap(name, x)
    _check_same_device([q, t])
    if t.dtype != "float32":
        raise TypeError(f"{name} must be float32, got {t.dtype}")
    if t.shape != shape:
        raise ValueError(f"{name} has shape {t.shape}, expected {shape} ({what})")
    _check_contiguous(t, "", "row-major")
    return t


def _new_lse(q: _Tensor, shape: tuple[int, ...], lse: Any) -> _Tensor:
    """The LSE output: ``lse`` checked, or a new float32 tensor beside q (torch only)."""
    if lse is not None:
        t = _check_f32("lse", lse, q, shape, "(B, Hq, Sq) whatever the layout")
        if t.readonly:
            raise ValueError("lse is read-only")
        return t
    if not q.torch_like or not hasattr(q.obj, "new_empty"):
        raise TypeError("lse= is required with return_lse when q is not a torch tensor (gqa cannot allocate it)")
    return _wrap("lse", q.obj.new_empty(shape, dtype=_torch_module().float32))


def _new_out(q: _Tensor, shape: tuple[int, ...]) -> _Tensor:
    if not q.torch_like or not hasattr(q.obj, "new_empty"):
        raise TypeError("out= is required when q is not a torch tensor (gqa cannot allocate it)")
    return _wrap("out", q.obj.new_empty(shape))


def _detect_chip(q: _Tensor) -> str:
    """sm_90 for compute capability 9.x, sm_80 for 8.x (PTX for sm_80 also runs on 8.6/8.9)."""
    if not _is_real_torch(q.obj):
        return "sm_90"
    major, _minor = _torch_module().cuda.get_device_capability(q.device_index or 0)
    if major >= 9:
        return "sm_90"
    if major == 8:
        return "sm_80"
    raise ValueError(f"{q.device} has compute capability {major}.x; gqa kernels need sm_80 or newer")


def _current_stream(q: _Tensor, stream: Any) -> int:
    if stream is not None:
        return int(getattr(stream, "cuda_stream", stream))
    if _is_real_torch(q.obj):
        return int(_torch_module().cuda.current_stream(q.device_index).cuda_stream)
    return 0


@contextlib.contextmanager
def _on_device(q: _Tensor) -> Iterator[None]:
    """Make q's device (and so its primary context) current while loading and launching."""
    if _is_real_torch(q.obj):
        with _torch_module().cuda.device(q.device_index):
            yield
    else:
        yield


def _allocates_workspace(q: _Tensor, stream: Any) -> bool:
    """Whether PyTorch provides the split-KV workspace: for torch tensors on its current stream.

    Its caching allocator orders the memory on that stream and serves CUDA
    graph capture from the graph's pool; the runtime's own workspace needs
    cuMemAlloc and an event, which capture forbids. On another stream (or
    without torch) the runtime's own workspace is used.
    """
    return stream is None and _is_real_torch(q.obj)


def _workspace_tensor(q: _Tensor, nbytes: int) -> Any:
    """``nbytes`` of device memory from PyTorch on q's device (its blocks are 512-byte aligned)."""
    torch = _torch_module()
    return torch.empty(nbytes, dtype=torch.uint8, device=q.obj.device)


def _loaded_on(device: "_runtime.Device", kern: Kernel) -> int:
    """The runtime's handle of ``kern`` on ``device``, loaded once per kernel, library and device."""
    module_key = (device.lib, device.ordinal)
    handle = kern._modules.get(module_key)
    if handle is None:
        handle = kern._modules[module_key] = device.load(kern.ptx, kern.metadata, str(kern.ptx_path))
    return handle


def _matching_kernel(kernel: Kernel, config: KernelConfig) -> Kernel:
    problems = config.mismatches(kernel.config)
    if problems:
        raise ConfigMismatchError("kernel= does not match this call: " + "; ".join(problems))
    return kernel


def _check_fixed_sizes(kernel: Kernel, dims: AttentionDims) -> None:
    actual = {"batch": dims.batch, "seq_q": dims.seq_q, "seq_kv": dims.seq_kv}
    for key, fixed in kernel.fixed_sizes.items():
        if fixed is not None and fixed != actual[key]:
            raise ValueError(f"the kernel was compiled for {key} = {fixed}, but this call has {actual[key]}")


def _kv_lens_for_kernel(t: _Tensor, kernel: Kernel) -> _Tensor:
    want = kernel.kv_lens_type
    if _INT_TYPES[t.dtype] == want:
        return t
    if _is_real_torch(t.obj):
        torch = _torch_module()
        converted = t.obj.to({"i32": torch.int32, "i64": torch.int64}[want])
        return _wrap("kv_lens", converted)
    raise TypeError(f"the kernel takes kv_lens as {want}, got {t.dtype}")


def attention(
    q: Any,
    k: Any,
    v: Any,
    *,
    causal: bool = False,
    window: Optional[Sequence[int]] = None,
    kv_lens: Any = None,
    softcap: Optional[float] = None,
    scale: Optional[float] = None,
    layout: str = "bhsd",
    out: Any = None,
    kernel: Optional[Kernel] = None,
    stream: Any = None,
    chip: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    block_table: Any = None,
    sinks: Any = None,
    return_lse: bool = False,
    cu_seqlens_q: Any = None,
    cu_seqlens_k: Any = None,
    lse: Any = None,
    max_seqlen_q: Optional[int] = None,
    max_seqlen_k: Optional[int] = None,
) -> Any:
    """Grouped-query attention on CUDA tensors (semantics of :func:`gqa.reference.attention`).

    Host inputs (numpy arrays, PyTorch CPU tensors) run the compiler's CPU
    path in process instead (:func:`gqa.host.attention_host`, which also
    takes ``sinks`` and ``return_lse``; ``kernel``, ``stream``, ``chip`` and
    ``cache_dir`` do not apply there).

    Args:
        q, k, v: contiguous CUDA tensors in ``layout``: q (B, Hq, Sq, D),
            k (B, Hkv, Skv, D), v (B, Hkv, Skv, Dv); float16, bfloat16 or
            float32, all the same dtype and device.  With ``block_table``,
            k and v are page pools instead (see below).
        causal, window, softcap, scale: as in :func:`gqa.reference.attention`.
        kv_lens: optional int32/int64 CUDA tensor of B lengths in [0, Skv]
            (values are not checked: that would synchronise the device).
        block_table: optional int32 CUDA tensor (B, max_pages) for a paged
            KV cache (vLLM / FlashAttention ``flash_attn_with_kvcache``
            layout): k and v are then contiguous page pools
            (num_pages, page_size, Hkv, D) and (num_pages, page_size, Hkv, Dv)
            whatever ``layout`` (which orders q and out only); key j of
            sequence b is row ``j % page_size`` of page
            ``block_table[b, j // page_size]``, and Skv = max_pages * page_size.
            A torch int64 table is converted to int32.  Entries are not
            checked (that would synchronise the device); the kernel clamps an
            entry outside [0, num_pages) into the pool.
        layout: ``"bhsd"`` or ``"bshd"``.
        out: optional output (B, Hq, Sq, Dv); allocated with ``q.new_empty``
            when omitted (torch tensors only).
        kernel: a kernel from :func:`gqa.load_kernel`/:func:`gqa.compile` to
            use instead of looking one up; it must match this call.
        stream: CUDA stream handle (int or object with ``cuda_stream``);
            default: PyTorch's current stream for q's device (0 for non-torch inputs).
            On PyTorch's current stream the split-KV workspace comes from
            PyTorch's allocator, so the call can be captured in a CUDA graph.
        chip: ``sm_80``/``sm_90``; default from q's device (``sm_90`` without torch).
        cache_dir: kernel cache directory (see :func:`gqa.compile`).
        sinks: optional float32 ``[Hq]`` attention-sink logits (GPT-OSS), a
            contiguous tensor on q's device: the sink of head h joins each of
            its rows' softmax denominator as a logit without a value.
        return_lse: also return the float32 ``[B, Hq, Sq]`` natural-log
            log-sum-exps of the rows (the sink included; ``-inf`` for a row
            with no key and no sink).
        lse: optional float32 ``[B, Hq, Sq]`` output for the log-sum-exps
            (with ``return_lse``); allocated beside q when omitted.
        cu_seqlens_q, cu_seqlens_k: a ragged batch of packed tokens (see
            :func:`gqa.host.attention_host`). On CUDA tensors: ``cu_seqlens_q``
            (int32 ``[B+1]`` on q's device) with q/out packed ``[T, Hq, D]``
            (bshd), and K/V a cache ``[B, Skv, Hkv, D]`` or paged pools read
            through ``kv_lens`` (flash_attn's ``seqused_k``), or packed
            ``[Tk, Hkv, D]`` tokens split by ``cu_seqlens_k`` (int32
            ``[B+1]``, with ``max_seqlen_k``).
        max_seqlen_q: with ``cu_seqlens_q`` on CUDA tensors, the longest
            sequence's query count (flash_attn's ``max_seqlen_q``): it sizes
            the grid (reading the offsets would synchronise the device); rows
            past it are not computed.
        max_seqlen_k: with ``cu_seqlens_k`` on CUDA tensors, the longest
            sequence's key count (flash_attn's ``max_seqlen_k``): it sizes the
            split-KV partition (the keys per split). A smaller value than some
            sequence's keys is still exact (the last split reads the rest),
            only less balanced; a larger one (a bucketed maximum) is fine.

    Returns:
        ``out``, or ``(out, lse)`` with ``return_lse``.
    """
    if is_host_array(q):
        return attention_host(q, k, v, causal=causal, window=window, kv_lens=kv_lens, softcap=softcap,
                              scale=scale, layout=layout, out=out, block_table=block_table, sinks=sinks,
                              return_lse=return_lse, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k,
                              lse=lse)
    if lse is not None and not return_lse:
        raise ValueError("lse= is an output of return_lse=True; pass both or neither")
    layout = normalize_layout(layout)
    qt, kt, vt = _wrap("q", q), _wrap("k", k), _wrap("v", v)
    _check_same_device([qt, kt, vt])
    varlen = cu_seqlens_q is not None
    cu = _check_varlen(cu_seqlens_q, max_seqlen_q, qt, layout) if varlen else None
    if not varlen and max_seqlen_q is not None:
        raise ValueError("max_seqlen_q= describes a ragged batch: pass it with cu_seqlens_q")
    packed_kv = cu_seqlens_k is not None
    cu_k = _check_packed_kv(cu_seqlens_k, max_seqlen_k, kt, vt, cu, block_table) if packed_kv else None
    if not packed_kv and max_seqlen_k is not None:
        raise ValueError("max_seqlen_k= describes packed K/V: pass it with cu_seqlens_k")
    # Shapes are checked as a batch padded to the longest sequence.
    q_shape = (cu.shape[0] - 1, max_seqlen_q) + qt.shape[1:] if varlen else qt.shape
    k_shape, v_shape = ((cu_k.shape[0] - 1, max_seqlen_k) + t.shape[1:] for t in (kt, vt)) if packed_kv else (
        kt.shape, vt.shape)
    dtype = qt.float_dtype()
    for t in (kt, vt):
        if t.dtype != qt.dtype:
            raise TypeError(f"dtype mismatch: {t.name} is {t.dtype} but q is {qt.dtype}")
    table = None if block_table is None else _wrap_block_table(block_table, qt)
    page_size = 0
    if table is None:
        dims = attention_dims(q_shape, k_shape, v_shape, layout)
        for t in (qt, kt, vt):
            _check_contiguous(t, layout)
    else:
        dims, paged = paged_attention_dims(q_shape, kt.shape, vt.shape, table.shape, layout)
        page_size = paged.page_size
        _check_contiguous(qt, layout)
        for t in (kt, vt):
            _check_contiguous(t, layout, f"a row-major page pool ({', '.join(POOL_DIMS)})")
        _check_contiguous(table, layout, "row-major (batch, max_pages)")
    lens = None if kv_lens is None else _check_kv_lens(kv_lens, qt, dims.batch)
    tokens = qt.shape[0] if varlen else 0
    out_shape = (tokens, dims.q_heads, dims.head_dim_v) if varlen else dims.out_shape(layout)
    ot = _new_out(qt, out_shape) if out is None else _check_out(out, qt, out_shape, layout)
    sink = None if sinks is None else _check_f32("sinks", sinks, qt, (dims.q_heads,), "one logit per query head")
    lse_shape = (dims.q_heads, tokens) if varlen else (dims.batch, dims.q_heads, dims.seq_q)
    lt = _new_lse(qt, lse_shape, lse) if return_lse else None
    result = ot.obj if lt is None else (ot.obj, lt.obj)

    config = KernelConfig.create(
        dims.q_heads, dims.kv_heads, dims.head_dim, head_dim_v=dims.head_dim_v, dtype=dtype,
        layout=layout, causal=causal, window=window, softcap=softcap, scale=scale,
        kv_lens=lens is not None, chip=chip or _detect_chip(qt), page_size=page_size,
        sinks=sink is not None, lse=lt is not None, varlen=varlen, packed_kv=packed_kv,
    )
    if dims.batch == 0 or dims.seq_q == 0 or (varlen and tokens == 0):
        return result  # nothing to compute
    if (kt.shape[0] == 0) if packed_kv else dims.seq_kv == 0:  # every row fully masked: the output is 0 (REFERENCE.md §1), the LSE the sink or -inf
        if not all(hasattr(t.obj, "zero_") for t in (ot, lt) if t is not None):
            raise ValueError("seq_kv is 0: the output is all zeros, but gqa cannot zero a non-torch out= or lse=")
        ot.obj.zero_()
        if lt is not None:
            per_head = sink.obj[:, None] if varlen else sink.obj[None, :, None]
            lt.obj.copy_(per_head.expand_as(lt.obj) if sink is not None else
                         lt.obj.new_full(lt.obj.shape, float("-inf")))
        return result
    kern = _matching_kernel(kernel, config) if kernel is not None else compile_config(config, cache_dir=cache_dir)
    _check_fixed_sizes(kern, dims)
    if lens is not None:
        lens = _kv_lens_for_kernel(lens, kern)
    if table is not None:
        table = _block_table_int32(table)

    lib = _runtime.get_library()
    args = _runtime.launch_args(
        dims, config.dtype, layout, qt.ptr, kt.ptr, vt.ptr, ot.ptr,
        lens.ptr if lens is not None else None, _current_stream(qt, stream),
        block_table=table.ptr if table is not None else None,
        num_pages=kt.shape[0] if table is not None else 0,
        sinks=sink.ptr if sink is not None else None, lse=lt.ptr if lt is not None else None,
        cu_seqlens_q=cu.ptr if cu is not None else None, total_q=tokens,
        cu_seqlens_k=cu_k.ptr if cu_k is not None else None, total_kv=kt.shape[0] if packed_kv else 0,
    )
    with _on_device(qt):
        device = lib.device(qt.device_index or 0)
        handle = _loaded_on(device, kern)
        workspace = None  # kept alive until the launch is queued
        if _allocates_workspace(qt, stream):
            nbytes = device.workspace_bytes(handle, args)
            if nbytes:
                workspace = _workspace_tensor(qt, nbytes)
                args.workspace, args.workspace_bytes = workspace.data_ptr(), nbytes
        device.launch(handle, args)
    return result
