"""``merge_attention_states``: combine two partial attention results by their LSE.

Attention over a set of keys split in two disjoint parts (a cached prefix and
a new suffix in cascade attention, two devices' shards in context
parallelism, two splits of split-KV) is recovered exactly from each part's
normalised output ``O_i`` and natural-log log-sum-exp ``lse_i``::

    M   = max(lse_1, lse_2)
    w_i = exp(lse_i - M)
    O   = (w_1 O_1 + w_2 O_2) / (w_1 + w_2)
    lse = M + log(w_1 + w_2)

A part that saw no key (``lse = -inf``) weighs 0; a row that neither saw is
0 with ``lse = -inf``.  Attention sinks belong to exactly one part (compute
the other without them).

Host arrays (numpy, PyTorch CPU tensors) are merged here with numpy/torch;
CUDA tensors by gqa's merge kernel (docs/kernel-metadata.md,
"gqa.merge_states"), compiled and cached as attention kernels are
(:func:`gqa.compiler.compile_merge_states`) and launched through
``libgqa_runtime.so`` (``gqa_kernel_merge_states``).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .shapes import normalize_layout


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _on_gpu(x: Any) -> bool:
    """Whether ``x`` is a CUDA tensor (torch-like on a CUDA device, or with ``__cuda_array_interface__``)."""
    from .api import _is_torch_like

    if isinstance(x, np.ndarray) or x is None:
        return False
    if _is_torch_like(x):
        dev = x.device
        return getattr(dev, "type", str(dev).split(":")[0]) == "cuda"
    try:
        return getattr(x, "__cuda_array_interface__", None) is not None
    except Exception:  # noqa: BLE001 - a property that refuses (e.g. a host tensor) means "not CUDA"
        return False


def _resolve_layout(layout: Optional[str], rank: int) -> str:
    """The layout of 4-D outputs (default bhsd); 3-D outputs are packed tokens, bshd."""
    if rank == 3:
        if layout is not None and normalize_layout(layout) != "bshd":
            raise ValueError(f"3-D outputs (T, H, Dv) are packed tokens (flash_attn's varlen); layout must be "
                             f"'bshd', got {layout!r}")
        return "bshd"
    return "bhsd" if layout is None else normalize_layout(layout)


def _shapes(o1_shape: tuple, o2_shape: tuple, lse1_shape: tuple, lse2_shape: tuple,
            layout: Optional[str]) -> tuple[str, bool, int, int, int, int, tuple]:
    """Check the shapes; return (layout, varlen, B, H, S, Dv, the LSE shape).

    4-D outputs are (B, H, S, Dv) in ``layout`` with LSEs (B, H, S); 3-D ones
    packed tokens (T, H, Dv) with LSEs (H, T), taken as B = 1, S = T.
    """
    if len(o1_shape) not in (3, 4):
        raise ValueError(f"o1 must be 4-D (B, H, S, Dv) in layout {layout or 'bhsd'}, or 3-D (T, H, Dv) packed "
                         f"tokens, got shape {o1_shape}")
    layout = _resolve_layout(layout, len(o1_shape))
    if o1_shape != o2_shape:
        raise ValueError(f"o1 and o2 must have one shape, got {o1_shape} and {o2_shape}")
    if lse1_shape != lse2_shape:
        raise ValueError(f"lse1 and lse2 must have one shape, got {lse1_shape} and {lse2_shape}")
    varlen = len(o1_shape) == 3
    if varlen:
        tokens, heads, dv = o1_shape
        b, h, s, rows, what = 1, heads, tokens, (heads, tokens), "(H, T) for packed tokens (T, H, Dv)"
    else:
        b, x, y, dv = o1_shape
        h, s = (x, y) if layout == "bhsd" else (y, x)
        rows, what = (b, h, s), "(B, H, S)"
    if lse1_shape != rows:
        raise ValueError(f"lse1 must have shape {rows} {what}, got {lse1_shape}")
    return layout, varlen, b, h, s, dv, rows


def merge_attention_states(
    o1: Any,
    lse1: Any,
    o2: Any,
    lse2: Any,
    *,
    layout: Optional[str] = None,
    out: Any = None,
    out_lse: Any = None,
    stream: Any = None,
    chip: Optional[str] = None,
    cache_dir: Any = None,
    kernel: Any = None,
) -> Tuple[Any, Any]:
    """Merge two partial attention results over disjoint keys.

    Args:
        o1, o2: outputs ``(B, H, S, Dv)`` in ``layout``, or flash_attn's
            varlen packed tokens ``(T, H, Dv)`` (3-D means varlen; layout
            ``bshd``).  numpy arrays, torch tensors (CPU or CUDA) or objects
            with ``__cuda_array_interface__``; all four inputs of one kind.
        lse1, lse2: their natural-log log-sum-exps ``(B, H, S)`` (gqa's and
            flash_attn's ``softmax_lse`` shape, whatever ``layout``), or
            ``(H, T)`` for packed tokens.
        layout: ``"bhsd"`` (default for 4-D outputs) or ``"bshd"``.
        out, out_lse: optional outputs (shapes of ``o1`` and ``lse1``);
            allocated when omitted (required for ``__cuda_array_interface__``
            inputs).  On the GPU, ``out`` must have ``o1``'s dtype and may be
            ``o1`` or ``o2`` itself (merge in place); ``out_lse`` must be
            float32 and be neither ``lse1`` nor ``lse2``.  On the host they
            receive the result (cast to their dtype).
        stream, chip, cache_dir, kernel: CUDA tensors only, as for
            :func:`gqa.attention`: the stream (default: PyTorch's current
            stream of o1's device), the chip (default: from the device), the
            kernel cache, and a merge kernel set of
            :func:`gqa.compiler.compile_merge_states` or
            :func:`gqa.load_kernel` to use (it must match the call).

    On CUDA tensors, gqa's merge kernel runs on ``stream``: the inputs must
    be contiguous, on one device, ``o1``/``o2`` float16, bfloat16 or float32
    (one dtype) and the LSEs float32; the checks raise ``ValueError`` (shape,
    device, contiguity, aliasing) or ``TypeError`` (dtypes, kinds) naming the
    tensor.  The kernel is compiled once per configuration (heads, Dv,
    dtype, layout, varlen, chip) through ``libgqa_compiler.so`` and cached
    as attention kernels are.

    Returns:
        ``(o, lse)``: on CUDA, ``out`` and ``out_lse`` (the output in ``o1``'s
        dtype, the LSE float32); for torch CPU tensors the output in ``o1``'s
        dtype and the LSE in float32 (computed in float32); for numpy arrays
        both float64 (or ``out``/``out_lse`` when given).
    """
    if any(_on_gpu(x) for x in (o1, lse1, o2, lse2)):
        return _merge_cuda(o1, lse1, o2, lse2, layout, out, out_lse, stream, chip, cache_dir, kernel)
    return _merge_host(o1, lse1, o2, lse2, layout, out, out_lse)


# --------------------------------------------------------------------------- host


def _merge_host(o1: Any, lse1: Any, o2: Any, lse2: Any, layout: Optional[str], out: Any,
                out_lse: Any) -> Tuple[Any, Any]:
    layout, varlen, _, _, _, _, _ = _shapes(*(tuple(x.shape) for x in (o1, o2, lse1, lse2)), layout)
    if varlen:  # packed tokens are one bshd sequence: (1, T, H, Dv) with LSEs (1, H, T)
        o1, o2, lse1, lse2 = o1[None], o2[None], lse1[None], lse2[None]
    o, lse = (_merge_torch if _is_torch(o1) else _merge_numpy)(o1, lse1, o2, lse2, layout)
    if varlen:
        o, lse = o[0], lse[0]
    return _store(out, o, "out"), _store(out_lse, lse, "out_lse")


def _store(dst: Any, value: Any, name: str) -> Any:
    """``value``, or ``dst`` (same shape) with ``value`` written into it."""
    if dst is None:
        return value
    if tuple(dst.shape) != tuple(value.shape):
        raise ValueError(f"{name} has shape {tuple(dst.shape)}, expected {tuple(value.shape)}")
    if isinstance(dst, np.ndarray):
        np.copyto(dst, np.asarray(value), casting="same_kind")
    else:
        dst.copy_(value)
    return dst


def _merge_torch(o1: Any, lse1: Any, o2: Any, lse2: Any, layout: str) -> Tuple[Any, Any]:
    import torch

    l1, l2 = lse1.float(), lse2.float()
    m = torch.maximum(l1, l2)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    w1, w2 = torch.exp(l1 - m), torch.exp(l2 - m)
    total = w1 + w2
    lse = torch.where(total > 0, m + torch.log(total), torch.full_like(m, -torch.inf))
    inv = torch.where(total > 0, 1.0 / torch.where(total > 0, total, 1.0), 0.0)
    a1, a2 = w1 * inv, w2 * inv
    if layout == "bshd":
        a1, a2 = a1.transpose(1, 2), a2.transpose(1, 2)
    o = a1[..., None] * o1.float() + a2[..., None] * o2.float()
    return o.to(o1.dtype), lse


def _merge_numpy(o1: Any, lse1: Any, o2: Any, lse2: Any, layout: str) -> Tuple[Any, Any]:
    l1, l2 = np.asarray(lse1, np.float64), np.asarray(lse2, np.float64)
    m = np.maximum(l1, l2)
    m = np.where(np.isfinite(m), m, 0.0)
    w1, w2 = np.exp(l1 - m), np.exp(l2 - m)
    total = w1 + w2
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = np.where(total > 0, m + np.log(total), -np.inf)
        a1 = np.where(total > 0, w1 / total, 0.0)
        a2 = np.where(total > 0, w2 / total, 0.0)
    if layout == "bshd":
        a1, a2 = a1.transpose(0, 2, 1), a2.transpose(0, 2, 1)
    o = a1[..., None] * np.asarray(o1, np.float64) + a2[..., None] * np.asarray(o2, np.float64)
    return o, lse


# --------------------------------------------------------------------------- CUDA


def _wrap_cuda(name: str, x: Any) -> Any:
    """``x`` described by gqa.api (a CUDA tensor), or an error saying that all inputs must be on the GPU."""
    from . import api

    if not _on_gpu(x) and (isinstance(x, np.ndarray) or api._is_torch_like(x)):
        where = getattr(x, "device", "the host")
        raise ValueError(f"{name} is on {where}, but o1, lse1, o2, lse2 include CUDA tensors: gqa merges "
                         "all of them on one CUDA device, or all on the host")
    return api._wrap(name, x)


def _check_tensor(t: Any, shape: tuple, dtype: str, what: str) -> None:
    if t.dtype != dtype:
        raise TypeError(f"{t.name} must be {dtype} ({what}), got {t.dtype}")
    if t.shape != shape:
        raise ValueError(f"{t.name} has shape {t.shape}, expected {shape} ({what})")
    if not t.is_contiguous():
        raise ValueError(f"{t.name} must be contiguous (row-major, no padding); got shape {t.shape} with strides "
                         f"{t.strides} (in elements); call .contiguous() first")


def _output(name: str, given: Any, like: Any, shape: tuple, dtype: str, what: str) -> Any:
    """A checked writable output, or a new one allocated beside ``like`` (torch only)."""
    from . import api

    if given is None:
        if not like.torch_like or not hasattr(like.obj, "new_empty"):
            raise TypeError(f"{name}= is required when o1 is not a torch tensor (gqa cannot allocate it)")
        kw = {"dtype": api._torch_module().float32} if dtype == "float32" else {}
        t = api._wrap(name, like.obj.new_empty(shape, **kw))
    else:
        t = _wrap_cuda(name, given)
    _check_tensor(t, shape, dtype, what)
    if t.readonly:
        raise ValueError(f"{name} is read-only")
    return t


_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4}


def _nbytes(t: Any) -> int:
    count = 1
    for size in t.shape:
        count *= size
    return count * _ITEMSIZE[t.dtype]


def _overlap(a: Any, b: Any) -> bool:
    """Whether the bytes of two contiguous tensors overlap (both non-empty)."""
    return bool(a.ptr and b.ptr) and a.ptr < b.ptr + _nbytes(b) and b.ptr < a.ptr + _nbytes(a)


def _check_aliasing(ta: Any, la: Any, tb: Any, lb: Any, ot: Any, lt: Any) -> None:
    """What the kernel allows (as gqa_kernel_merge_states checks): ``out`` is o1, o2 or memory of its own;
    ``out_lse`` memory of its own (each row's log-sum-exps are read by all of its threads, written by one)."""
    for t in (la, lb):
        if lt.ptr == t.ptr and t.ptr:
            raise ValueError(f"out_lse must be neither lse1 nor lse2 (it is {t.name}): each row's log-sum-exps "
                             "are read by all of its threads and written by one; out may be o1 or o2")
        if _overlap(lt, t):
            raise ValueError(f"out_lse overlaps {t.name}: the merged log-sum-exps need memory of their own")
    for t in (ta, tb):
        if ot.ptr != t.ptr and _overlap(ot, t):
            raise ValueError(f"out overlaps {t.name} without being it: out may be o1 or o2 itself, or memory of "
                             "its own")


def _merge_cuda(o1: Any, lse1: Any, o2: Any, lse2: Any, layout: Optional[str], out: Any, out_lse: Any,
                stream: Any, chip: Optional[str], cache_dir: Any, kernel: Any) -> Tuple[Any, Any]:
    from . import _runtime, api
    from .compiler import compile_config
    from .config import MergeConfig
    from .errors import ConfigMismatchError

    ta, la, tb, lb = (_wrap_cuda(n, x) for n, x in (("o1", o1), ("lse1", lse1), ("o2", o2), ("lse2", lse2)))
    api._check_same_device([ta, la, tb, lb])
    layout, varlen, b, h, s, dv, rows = _shapes(ta.shape, tb.shape, la.shape, lb.shape, layout)
    dtype = ta.float_dtype()
    o_what = "(T, H, Dv) packed tokens" if varlen else f"(B, H, S, Dv) in layout {layout}"
    lse_what = "(H, T) for packed tokens" if varlen else "(B, H, S) whatever the layout"
    _check_tensor(ta, ta.shape, ta.dtype, o_what)
    _check_tensor(tb, ta.shape, ta.dtype, f"o1's dtype, {o_what}")
    for t in (la, lb):
        _check_tensor(t, rows, "float32", lse_what)
    ot = _output("out", out, ta, ta.shape, ta.dtype, f"o1's dtype and shape, {o_what}")
    lt = _output("out_lse", out_lse, ta, rows, "float32", lse_what)
    api._check_same_device([ta, ot, lt])
    _check_aliasing(ta, la, tb, lb, ot, lt)
    if b == 0 or s == 0 or h == 0 or dv == 0:
        return ot.obj, lt.obj  # nothing to merge

    config = MergeConfig.create(h, dv, dtype=dtype, layout=layout, varlen=varlen, chip=chip or api._detect_chip(ta))
    if kernel is not None:
        problems = config.mismatches(kernel.config)
        if problems:
            raise ConfigMismatchError("kernel= does not match this merge: " + "; ".join(problems))
        kern = kernel
    else:
        kern = compile_config(config, cache_dir=cache_dir)
    for key, size in (("batch", b), ("seq_q", s)):
        fixed = kern.fixed_sizes.get(key)
        if fixed is not None and fixed != size:
            raise ValueError(f"the merge kernel was compiled for {key} = {fixed}, but this call has {size}")

    lib = _runtime.get_library()
    args = _runtime.merge_args(dtype, layout, b, s, h, dv, ta.ptr, la.ptr, tb.ptr, lb.ptr, ot.ptr, lt.ptr,
                               api._current_stream(ta, stream))
    with api._on_device(ta):
        device = lib.device(ta.device_index or 0)
        device.merge_states(api._loaded_on(device, kern), args)
    return ot.obj, lt.obj
