"""Grouped-query attention on host (CPU) arrays, in process.

:func:`attention_host` runs the compiler's CPU path (``libgqa_compiler.so``,
``include/gqa-c/CPU.h``) on numpy arrays or PyTorch CPU tensors: each
configuration is JIT-compiled once per process, then a call costs the
kernel's run and a few checks.  :func:`gqa.attention` calls it for host
inputs; the PyTorch op ``torch.ops.gqa.attention`` calls it for CPU tensors.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._compiler_lib import CpuKernelKey, cpu_kernel
from .config import KernelConfig
from .shapes import attention_dims, normalize_layout, paged_attention_dims

_TORCH_DTYPES = {"torch.float16": "f16", "torch.bfloat16": "bf16", "torch.float32": "f32"}
_NUMPY_DTYPES = {np.dtype(np.float16): "f16", np.dtype(np.float32): "f32"}


def is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def is_host_array(x: Any) -> bool:
    """Whether ``x`` is a numpy array or a PyTorch CPU tensor (what :func:`attention_host` takes)."""
    if isinstance(x, np.ndarray):
        return True
    return is_torch_tensor(x) and getattr(x, "device", None) is not None and x.device.type == "cpu"


class _Arrays:
    """Adapts numpy arrays or torch CPU tensors: contiguous copies, allocation, data pointers."""

    def __init__(self, torch_inputs: bool) -> None:
        self.torch = None
        if torch_inputs:
            import torch

            self.torch = torch
        self.keep: list[Any] = []  # what the call's pointers point into

    def dtype_name(self, name: str, x: Any, bf16_bits: bool) -> str:
        if self.torch is not None:
            if not is_torch_tensor(x):
                raise TypeError(f"{name} must be a torch tensor like q, got {type(x).__name__}")
            if x.device.type != "cpu":
                raise ValueError(f"{name} is on {x.device}, but q is on the CPU")
            found = _TORCH_DTYPES.get(str(x.dtype))
        else:
            if not isinstance(x, np.ndarray):
                raise TypeError(f"{name} must be a numpy array like q, got {type(x).__name__}")
            found = "bf16" if bf16_bits and x.dtype == np.uint16 else _NUMPY_DTYPES.get(x.dtype)
        if found is None:
            hint = " (bf16 as numpy uint16 bit patterns needs dtype='bf16')" if self.torch is None else ""
            raise TypeError(f"{name} must be float16, bfloat16 or float32, got {x.dtype}{hint}")
        return found

    def contiguous(self, x: Any) -> Any:
        x = x.contiguous() if self.torch is not None else np.ascontiguousarray(x)
        self.keep.append(x)
        return x

    def cast(self, name: str, x: Any, kind: str, shape: Optional[tuple[int, ...]] = None) -> Any:
        """``x`` as a contiguous int32 (``kind="i32"``) or float32 array of the same kind as q."""
        if self.torch is not None:
            if not is_torch_tensor(x):
                x = self.torch.as_tensor(np.asarray(x))
            x = x.to(device="cpu", dtype=self.torch.int32 if kind == "i32" else self.torch.float32)
        else:
            a = np.asarray(x)
            if kind == "i32" and not np.issubdtype(a.dtype, np.integer):
                raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
            x = a.astype(np.int32 if kind == "i32" else np.float32)
        if shape is not None and tuple(x.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
        return self.contiguous(x)

    def numpy(self, x: Any) -> np.ndarray:
        return x.numpy() if self.torch is not None else x

    def empty(self, like: Any, shape: tuple[int, ...], f32: bool = False) -> Any:
        if self.torch is not None:
            return self.torch.empty(shape, dtype=self.torch.float32 if f32 else like.dtype)
        return np.empty(shape, dtype=np.float32 if f32 else like.dtype)

    def check_out(self, name: str, x: Any, like: Any, shape: tuple[int, ...], f32: bool = False) -> Any:
        want = (self.torch.float32 if self.torch is not None else np.float32) if f32 else like.dtype
        contiguous = x.is_contiguous() if self.torch is not None else x.flags.c_contiguous
        if tuple(x.shape) != shape or x.dtype != want or not contiguous:
            raise ValueError(f"{name} must be a contiguous {want} array of shape {shape}, got "
                             f"{x.dtype} {tuple(x.shape)}{'' if contiguous else ' (not contiguous)'}")
        if self.torch is not None and x.device.type != "cpu":
            raise ValueError(f"{name} is on {x.device}, but q is on the CPU")
        return x

    def pointer(self, x: Any) -> int:
        if x is None:
            return 0
        return x.data_ptr() if self.torch is not None else x.ctypes.data


def attention_host(
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
    block_table: Any = None,
    sinks: Any = None,
    return_lse: bool = False,
    out: Any = None,
    lse: Any = None,
    cu_seqlens_q: Any = None,
    cu_seqlens_k: Any = None,
    dtype: Optional[str] = None,
    schedule: str = "cpu",
    threads: int = 0,
    max_splits: int = -1,
) -> Any:
    """Attention on host arrays through the compiler's CPU path (semantics of :func:`gqa.reference.attention`).

    Args:
        q, k, v: numpy arrays or PyTorch CPU tensors (all the same kind) in
            ``layout``, float16, bfloat16 (torch; numpy uint16 bit patterns
            with ``dtype="bf16"``) or float32; with ``block_table`` k and v
            are page pools ``[num_pages, page_size, Hkv, D]``.
        causal, window, kv_lens, softcap, scale, block_table, sinks: as in
            :func:`gqa.reference.attention`; kv_lens and the block table are
            checked against Skv and the pool.
        return_lse: also return the rows' log-sum-exps, float32 ``[B, Hq, Sq]``
            (``[Hq, T]`` for a ragged batch).
        cu_seqlens_q: a ragged batch (flash_attn's varlen): ``B+1`` int32
            offsets (from 0, non-decreasing) of each sequence's tokens in q
            and out, which are packed ``[T, Hq, D]`` (the layout is bshd).
            K/V are then a cache ``[B, Skv, Hkv, D]`` (or pools with
            ``block_table``) whose lengths are ``kv_lens``, or, with
            ``cu_seqlens_k``, packed ``[Tk, Hkv, D]`` the same way.
        out, lse: optional outputs to write (contiguous, the right shape and
            dtype); allocated when omitted.
        schedule: ``"cpu"``, or ``"sm_80"``/``"sm_90"`` to run a GPU's tiled form.
        threads: tasks the blocks run as (0: one per core).
        max_splits: split-KV limit (-1: the schedule's choice, 0: off).

    Returns:
        ``out``, or ``(out, lse)`` with ``return_lse``.
    """
    layout = normalize_layout(layout)
    if schedule not in ("cpu", "sm_80", "sm_90"):
        raise ValueError(f"schedule must be cpu, sm_80 or sm_90, got {schedule!r}")
    arrays = _Arrays(is_torch_tensor(q))
    names = [arrays.dtype_name(n, x, dtype == "bf16") for n, x in (("q", q), ("k", k), ("v", v))]
    if len(set(names)) != 1:
        raise TypeError(f"q, k and v must share one dtype, got {', '.join(names)}")
    element = names[0]
    q, k, v = (arrays.contiguous(x) for x in (q, k, v))
    table = None
    if block_table is not None:
        table = arrays.cast("block_table", block_table, "i32")
    cu_q = cu_k = None
    if cu_seqlens_q is not None:
        if layout != "bshd":
            raise ValueError(f"a ragged batch (cu_seqlens_q) packs bshd tokens [T, Hq, D]; layout must be bshd, "
                             f"got {layout}")
        cu_q = _offsets(arrays, "cu_seqlens_q", cu_seqlens_q, "q", q.shape)
        if cu_seqlens_k is not None:
            if table is not None:
                raise ValueError("cu_seqlens_k packs K/V by sequence; it cannot be combined with a block_table")
            cu_k = _offsets(arrays, "cu_seqlens_k", cu_seqlens_k, "k", k.shape)
        dims, paged = _varlen_dims(q.shape, k.shape, v.shape, table, arrays, cu_q, cu_k)
    elif cu_seqlens_k is not None:
        raise ValueError("cu_seqlens_k needs cu_seqlens_q: packed keys come with packed queries")
    elif table is not None:
        dims, paged = paged_attention_dims(q.shape, k.shape, v.shape, table.shape, layout)
    else:
        dims, paged = attention_dims(q.shape, k.shape, v.shape, layout), None
    if table is not None:
        entries = arrays.numpy(table)
        bad = entries[(entries < 0) | (entries >= paged.num_pages)]
        if bad.size:
            raise ValueError(f"block_table entries must lie in [0, {paged.num_pages}) (the pages of the k/v "
                             f"pools), got {int(bad[0])}")
    lens = None
    if kv_lens is not None:
        lens = arrays.cast("kv_lens", kv_lens, "i32", (dims.batch,))
        values = arrays.numpy(lens)
        if values.size and (values.min() < 0 or values.max() > dims.seq_kv) and cu_k is None:
            raise ValueError(f"kv_lens must lie in [0, {dims.seq_kv}] (the K/V sequence length), got "
                             f"{values.tolist()}")
    sink = None if sinks is None else arrays.cast("sinks", sinks, "f32", (dims.q_heads,))
    if cu_q is not None:
        tokens = int(q.shape[0])
        out_shape, lse_shape = (tokens, dims.q_heads, dims.head_dim_v), (dims.q_heads, tokens)
    else:
        out_shape, lse_shape = dims.out_shape(layout), (dims.batch, dims.q_heads, dims.seq_q)
    out = arrays.empty(q, out_shape) if out is None else arrays.check_out("out", out, q, out_shape)
    if return_lse:
        lse = arrays.empty(q, lse_shape, f32=True) if lse is None else arrays.check_out(
            "lse", lse, q, lse_shape, f32=True)
    if dims.batch and dims.seq_q:
        if dims.seq_kv or cu_k is not None:
            config = KernelConfig.create(
                dims.q_heads, dims.kv_heads, dims.head_dim, head_dim_v=dims.head_dim_v, dtype=element,
                layout=layout, causal=causal, window=window, softcap=softcap, scale=scale,
                kv_lens=lens is not None, page_size=paged.page_size if paged else 0)
            kernel = cpu_kernel(CpuKernelKey(config, sink is not None, bool(return_lse), schedule, int(threads),
                                             int(max_splits), cu_q is not None, cu_k is not None))
            kernel.run(batch=dims.batch, seq_q=dims.seq_q, seq_kv=dims.seq_kv, query=arrays.pointer(q),
                       key=arrays.pointer(k), value=arrays.pointer(v), kv_lens=arrays.pointer(lens),
                       block_table=arrays.pointer(table), pages_per_sequence=paged.max_pages if paged else 0,
                       num_pages=paged.num_pages if paged else 0, sinks=arrays.pointer(sink),
                       cu_seqlens_q=arrays.pointer(cu_q), cu_seqlens_k=arrays.pointer(cu_k),
                       output=arrays.pointer(out), lse=arrays.pointer(lse) if return_lse else 0)
        else:  # no key at all: zeros, and the sink (or -inf) as the LSE
            out[...] = 0
            if return_lse:
                rows = arrays.numpy(lse)
                heads = (slice(None), None) if cu_q is not None else (None, slice(None), None)
                rows[...] = -np.inf if sink is None else arrays.numpy(sink)[heads]
    return (out, lse) if return_lse else out


def _offsets(arrays: _Arrays, name: str, offsets: Any, packed: str, shape: tuple[int, ...]) -> Any:
    """``offsets`` as contiguous int32, checked: from 0, non-decreasing, ending at the tokens of ``packed``."""
    cu = arrays.cast(name, offsets, "i32")
    values = arrays.numpy(cu)
    if values.ndim != 1 or values.size < 1:
        raise ValueError(f"{name} must be 1-D with B+1 >= 1 offsets, got shape {tuple(values.shape)}")
    if values[0] != 0 or np.any(np.diff(values) < 0):
        raise ValueError(f"{name} must start at 0 and not decrease, got {values.tolist()}")
    if len(shape) != 3:
        raise ValueError(f"{packed} must be packed tokens [T, H, D] with {name}, got {len(shape)}-D shape {shape}")
    if int(values[-1]) != shape[0]:
        raise ValueError(f"{name}[-1] = {int(values[-1])} must be the {shape[0]} tokens of {packed}")
    return cu


def _varlen_dims(q_shape, k_shape, v_shape, table, arrays, cu_q, cu_k):
    """The sizes of a ragged batch (seq_q / seq_kv: the longest), and the paged cache's."""
    from .shapes import AttentionDims, PagedKV

    lengths = np.diff(arrays.numpy(cu_q))
    batch = int(lengths.size)
    _, q_heads, head_dim = (int(x) for x in q_shape)
    paged = None
    if cu_k is not None:
        if len(v_shape) != 3:
            raise ValueError(f"v must be packed tokens [T, H, D] with cu_seqlens_k, got shape {tuple(v_shape)}")
        kv_heads, seq_kv = int(k_shape[1]), int(np.diff(arrays.numpy(cu_k)).max(initial=0))
        if tuple(v_shape[:2]) != tuple(k_shape[:2]):
            raise ValueError(f"v {tuple(v_shape)} and k {tuple(k_shape)} must hold the same tokens and heads")
    else:
        if len(k_shape) != 4 or len(v_shape) != 4:
            raise ValueError(f"k and v must be a cache [B, Skv, Hkv, D] (or page pools with block_table) for "
                             f"packed queries, got shapes {tuple(k_shape)} and {tuple(v_shape)}")
        kv_heads = int(k_shape[2])
        if table is not None:
            if tuple(table.shape[:1]) != (batch,):
                raise ValueError(f"block_table must have {batch} rows (one per sequence), got {tuple(table.shape)}")
            paged = PagedKV(int(k_shape[0]), int(k_shape[1]), int(table.shape[1]))
            seq_kv = paged.max_pages * paged.page_size
        else:
            if int(k_shape[0]) != batch:
                raise ValueError(f"k has batch {int(k_shape[0])}, but cu_seqlens_q gives {batch} sequences")
            seq_kv = int(k_shape[1])
        if tuple(v_shape[:3]) != tuple(k_shape[:3]):
            raise ValueError(f"v {tuple(v_shape)} and k {tuple(k_shape)} must agree but for the head dim")
    if int(k_shape[-1]) != head_dim:
        raise ValueError(f"head_dim mismatch: k has {int(k_shape[-1])}, q has {head_dim}")
    if kv_heads <= 0 or q_heads % kv_heads:
        raise ValueError(f"q heads ({q_heads}) must be a multiple of k/v heads ({kv_heads})")
    seq_q = int(lengths.max(initial=0))
    return AttentionDims(batch, q_heads, kv_heads, seq_q, seq_kv, head_dim, int(v_shape[-1])), paged
