"""ctypes binding to ``libgqa_runtime.so``, written against ``include/gqa/Runtime/Runtime.h``.

This is the only module that knows the runtime's C ABI (ABI version
:data:`ABI_VERSION`).  The structures below mirror the header's field by
field; :class:`RuntimeLibrary` checks ``gqa_runtime_abi_version()`` before any
other call.

* No GPU needed: :meth:`RuntimeLibrary.parse_metadata`,
  :meth:`RuntimeLibrary.plan` and :meth:`RuntimeLibrary.plan_merge`
  (``gqa_metadata_parse``, ``gqa_plan_launch``, ``gqa_plan_merge``).
* GPU: :meth:`RuntimeLibrary.device` (``gqa_runtime_create``), then
  :meth:`Device.load` (``gqa_kernel_load``) and :meth:`Device.launch`
  (``gqa_kernel_launch``) or, for a merge_states kernel set,
  :meth:`Device.merge_states` (``gqa_kernel_merge_states``).

Loaded kernels are kept for the life of the process (the launcher caches
them per kernel and device), so nothing here calls ``gqa_kernel_destroy``
while launches may still be queued.
"""

from __future__ import annotations

import ctypes
import json
import threading
from ctypes import POINTER, Structure, c_char_p, c_double, c_int, c_int32, c_int64, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any, Optional

from ._tools import ENV_RUNTIME_LIB, RUNTIME_LIB_NAME, find_runtime_library
from .errors import LaunchError, MetadataError, RuntimeLibraryNotFoundError
from .shapes import AttentionDims

#: GQA_RUNTIME_ABI_VERSION this binding is written for.
ABI_VERSION = 4

GQA_SUCCESS = 0
GQA_ERROR_INVALID_METADATA = 2

# Enumerations of the header (C enums are ints).
DTYPE = {"f16": 1, "bf16": 2, "f32": 3}
LAYOUT = {"bhsd": 1, "bshd": 2}
MASK = {0: "none", 1: "causal", 2: "window"}
KV_LENS = {0: "none", 1: "i32", 2: "i64"}
ROLE = {1: "main", 2: "split", 3: "combine", 4: "merge"}
#: gqa_kernel_set_kind: what the metadata's "format" describes.
KIND = {1: "attention", 2: "merge_states"}

MAX_LAUNCH_KERNELS = 2


class KernelConfigStruct(Structure):
    """``gqa_kernel_config``."""

    _fields_ = [
        ("q_heads", c_int64), ("kv_heads", c_int64), ("group_size", c_int64),
        ("head_dim", c_int64), ("head_dim_v", c_int64),
        ("dtype", c_int), ("layout", c_int), ("mask", c_int),
        ("window_left", c_int64), ("window_right", c_int64),
        ("scale", c_double), ("softcap", c_double),
        ("kv_lens", c_int),
        ("page_size", c_int64),
        ("sinks", c_int32), ("lse", c_int32), ("varlen", c_int32), ("packed_kv", c_int32),
        ("batch", c_int64), ("seq_q", c_int64), ("seq_kv", c_int64),
    ]


class MergeConfigStruct(Structure):
    """``gqa_merge_config``."""

    _fields_ = [
        ("heads", c_int64), ("head_dim_v", c_int64),
        ("dtype", c_int), ("layout", c_int),
        ("varlen", c_int32),
        ("batch", c_int64), ("seq_q", c_int64),
    ]


class LaunchArgs(Structure):
    """``gqa_launch_args``."""

    _fields_ = [
        ("q", c_void_p), ("k", c_void_p), ("v", c_void_p), ("out", c_void_p), ("kv_lens", c_void_p),
        ("block_table", c_void_p), ("num_pages", c_int64),
        ("batch", c_int64), ("seq_q", c_int64), ("seq_kv", c_int64),
        ("q_heads", c_int64), ("kv_heads", c_int64), ("head_dim", c_int64), ("head_dim_v", c_int64),
        ("dtype", c_int), ("layout", c_int),
        ("stream", c_void_p),
        ("workspace", c_void_p), ("workspace_bytes", c_uint64),
        ("sinks", c_void_p), ("lse", c_void_p),
        ("cu_seqlens_q", c_void_p), ("total_q", c_int64), ("cu_seqlens_k", c_void_p), ("total_kv", c_int64),
    ]


class KernelLaunchConfig(Structure):
    """``gqa_kernel_launch_config``."""

    _fields_ = [
        ("name", c_char_p), ("role", c_int),
        ("grid", c_uint32 * 3), ("block", c_uint32 * 3),
        ("dynamic_shared_memory_bytes", c_uint32),
    ]


class LaunchPlan(Structure):
    """``gqa_launch_plan``."""

    _fields_ = [
        ("num_kernels", c_int32),
        ("kernels", KernelLaunchConfig * MAX_LAUNCH_KERNELS),
        ("num_splits", c_int64),
        ("workspace_bytes", c_uint64),
        ("partial_lse_offset", c_uint64),
    ]


class MergeArgs(Structure):
    """``gqa_merge_args``."""

    _fields_ = [
        ("out_a", c_void_p), ("lse_a", c_void_p), ("out_b", c_void_p), ("lse_b", c_void_p),
        ("out", c_void_p), ("lse", c_void_p),
        ("batch", c_int64), ("seq_q", c_int64), ("heads", c_int64), ("head_dim_v", c_int64),
        ("dtype", c_int), ("layout", c_int),
        ("stream", c_void_p),
    ]


class DeviceInfo(Structure):
    """``gqa_device_info``."""

    _fields_ = [("ordinal", c_int32), ("sm_count", c_int32),
                ("compute_capability_major", c_int32), ("compute_capability_minor", c_int32)]


_P = POINTER
# name -> (restype, argtypes), in the header's order.
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "gqa_status_name": (c_char_p, [c_int]),
    "gqa_last_error_message": (c_char_p, []),
    "gqa_runtime_abi_version": (c_int32, []),
    "gqa_metadata_parse": (c_int, [c_char_p, ctypes.c_size_t, _P(c_void_p)]),
    "gqa_metadata_destroy": (None, [c_void_p]),
    "gqa_metadata_get_config": (c_int, [c_void_p, _P(KernelConfigStruct)]),
    "gqa_metadata_get_kind": (c_int, [c_void_p, _P(c_int)]),
    "gqa_metadata_get_merge_config": (c_int, [c_void_p, _P(MergeConfigStruct)]),
    "gqa_plan_launch": (c_int, [c_void_p, _P(LaunchArgs), c_int32, _P(LaunchPlan)]),
    "gqa_plan_merge": (c_int, [c_void_p, _P(MergeArgs), _P(KernelLaunchConfig)]),
    "gqa_runtime_create": (c_int, [c_int32, _P(c_void_p)]),
    "gqa_runtime_destroy": (None, [c_void_p]),
    "gqa_runtime_get_device_info": (c_int, [c_void_p, _P(DeviceInfo)]),
    "gqa_kernel_load": (c_int, [c_void_p, c_char_p, ctypes.c_size_t, c_char_p, ctypes.c_size_t, _P(c_void_p)]),
    "gqa_kernel_destroy": (None, [c_void_p]),
    "gqa_kernel_workspace_bytes": (c_int, [c_void_p, _P(LaunchArgs), _P(c_uint64)]),
    "gqa_kernel_launch": (c_int, [c_void_p, _P(LaunchArgs)]),
    "gqa_kernel_merge_states": (c_int, [c_void_p, _P(MergeArgs)]),
}


def launch_args(
    dims: AttentionDims,
    dtype: str,
    layout: str,
    q: int,
    k: int,
    v: int,
    out: int,
    kv_lens: Optional[int] = None,
    stream: int = 0,
    block_table: Optional[int] = None,
    num_pages: int = 0,
    sinks: Optional[int] = None,
    lse: Optional[int] = None,
    cu_seqlens_q: Optional[int] = None,
    total_q: int = 0,
    cu_seqlens_k: Optional[int] = None,
    total_kv: int = 0,
) -> LaunchArgs:
    """Fill a ``gqa_launch_args`` (no split-KV workspace: the runtime provides its own).

    ``block_table`` and ``num_pages`` are for paged kernels only (the int32
    block table's device address and the pages in each of the k/v pools);
    ``dims.seq_kv`` is then ``max_pages * page_size``.  ``sinks`` and
    ``lse`` are the f32 sink logits and LSE output of kernels compiled with
    them.  ``cu_seqlens_q`` and ``total_q`` describe a ragged batch
    (``dims.seq_q`` is then the longest sequence's query count);
    ``cu_seqlens_k`` and ``total_kv`` packed K/V (``dims.seq_kv`` the longest
    sequence's key count).
    """
    return LaunchArgs(
        q=q, k=k, v=v, out=out, kv_lens=kv_lens or None, block_table=block_table or None, num_pages=num_pages,
        batch=dims.batch, seq_q=dims.seq_q, seq_kv=dims.seq_kv,
        q_heads=dims.q_heads, kv_heads=dims.kv_heads, head_dim=dims.head_dim, head_dim_v=dims.head_dim_v,
        dtype=DTYPE[dtype], layout=LAYOUT[layout], stream=stream or None, workspace=None, workspace_bytes=0,
        sinks=sinks or None, lse=lse or None, cu_seqlens_q=cu_seqlens_q or None, total_q=total_q,
        cu_seqlens_k=cu_seqlens_k or None, total_kv=total_kv,
    )


def merge_args(
    dtype: str,
    layout: str,
    batch: int,
    seq_q: int,
    heads: int,
    head_dim_v: int,
    out_a: int,
    lse_a: int,
    out_b: int,
    lse_b: int,
    out: int,
    lse: int,
    stream: int = 0,
) -> MergeArgs:
    """Fill a ``gqa_merge_args``: the two partial results, the merged one and their shape.

    Outputs are ``[batch, heads, seq_q, head_dim_v]`` in ``layout``, the
    log-sum-exps f32 ``[batch, heads, seq_q]``; for a merge_states kernel set
    compiled with ``varlen``, ``batch`` is 1 and ``seq_q`` the packed tokens
    (outputs ``[seq_q, heads, head_dim_v]``, log-sum-exps ``[heads, seq_q]``).
    """
    return MergeArgs(
        out_a=out_a or None, lse_a=lse_a or None, out_b=out_b or None, lse_b=lse_b or None,
        out=out or None, lse=lse or None, batch=batch, seq_q=seq_q, heads=heads, head_dim_v=head_dim_v,
        dtype=DTYPE[dtype], layout=LAYOUT[layout], stream=stream or None,
    )


def launch_config_to_dict(k: KernelLaunchConfig) -> dict:
    """A ``gqa_kernel_launch_config`` as plain Python data."""
    return {
        "name": k.name.decode() if k.name else "",
        "role": ROLE.get(k.role, str(k.role)),
        "grid": list(k.grid),
        "block": list(k.block),
        "dynamic_shared_memory_bytes": k.dynamic_shared_memory_bytes,
    }


def plan_to_dict(plan: LaunchPlan) -> dict:
    """A ``gqa_launch_plan`` as plain Python data."""
    return {
        "kernels": [launch_config_to_dict(k) for k in plan.kernels[: plan.num_kernels]],
        "num_splits": plan.num_splits,
        "workspace_bytes": plan.workspace_bytes,
        "partial_lse_offset": plan.partial_lse_offset,
    }


class RuntimeLibrary:
    """A loaded ``libgqa_runtime.so`` whose ABI version matches this binding."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._lib = ctypes.CDLL(str(self.path))
        except OSError as e:
            raise RuntimeLibraryNotFoundError(f"cannot load the gqa runtime {self.path}: {e}") from e
        self._fn = {}
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                fn = getattr(self._lib, name)
            except AttributeError as e:
                self._check_version()  # an older runtime lacks the newer entry points: say which it is
                raise RuntimeLibraryNotFoundError(
                    f"{self.path} has no symbol {name}: it is not a gqa runtime of ABI version {ABI_VERSION}"
                ) from e
            fn.restype, fn.argtypes = restype, argtypes
            self._fn[name] = fn
        self._check_version()
        self._devices: dict[int, Device] = {}
        self._lock = threading.Lock()

    def _check_version(self) -> None:
        """Raise when the library reports an ABI version other than :data:`ABI_VERSION`."""
        try:
            fn = self._lib.gqa_runtime_abi_version
        except AttributeError:
            return
        fn.restype, fn.argtypes = c_int32, []
        version = fn()
        if version != ABI_VERSION:
            raise RuntimeLibraryNotFoundError(
                f"{self.path} has runtime ABI version {version}, but python/gqa/_runtime.py is written "
                f"for version {ABI_VERSION}: rebuild the runtime or update the binding"
            )

    def last_error(self) -> str:
        """The calling thread's last error message."""
        msg = self._fn["gqa_last_error_message"]()
        return msg.decode(errors="replace") if msg else ""

    def check(self, status: int, what: str) -> None:
        """Raise for a failed call: MetadataError for invalid metadata, LaunchError otherwise."""
        if status == GQA_SUCCESS:
            return
        name = self._fn["gqa_status_name"](status)
        name = name.decode() if name else f"status {status}"
        message = f"gqa runtime: {what} failed ({name}): {self.last_error() or 'no message'}"
        raise (MetadataError if status == GQA_ERROR_INVALID_METADATA else LaunchError)(message)

    # -- no GPU needed ---------------------------------------------------------------

    def parse_metadata(self, metadata: Any) -> "Metadata":
        """Parse metadata (a dict or JSON text) with the runtime's own parser."""
        text = metadata if isinstance(metadata, (str, bytes)) else json.dumps(metadata)
        data = text.encode() if isinstance(text, str) else text
        handle = c_void_p()
        self.check(self._fn["gqa_metadata_parse"](data, len(data), ctypes.byref(handle)), "parsing metadata")
        return Metadata(self, handle.value)

    def metadata_problem(self, text: bytes) -> Optional[str]:
        """What ``gqa_metadata_parse`` finds wrong with metadata ``text``: its message, or None if it parses."""
        handle = c_void_p()
        status = self._fn["gqa_metadata_parse"](text, len(text), ctypes.byref(handle))
        if status == GQA_SUCCESS:
            self._fn["gqa_metadata_destroy"](handle)
            return None
        if status != GQA_ERROR_INVALID_METADATA:
            self.check(status, "parsing metadata")
        return self.last_error() or "invalid metadata (no message)"

    def plan(self, metadata: Any, args: LaunchArgs, sm_count: int = 132) -> dict:
        """``gqa_plan_launch``: check ``args`` against the metadata and plan the launch (no GPU)."""
        with self.parse_metadata(metadata) as meta:
            plan = LaunchPlan()
            self.check(self._fn["gqa_plan_launch"](meta.handle, ctypes.byref(args), sm_count, ctypes.byref(plan)),
                       "planning a launch")
            return plan_to_dict(plan)

    def plan_merge(self, metadata: Any, args: MergeArgs) -> dict:
        """``gqa_plan_merge``: check ``args`` against a merge_states kernel set and plan its kernel (no GPU)."""
        with self.parse_metadata(metadata) as meta:
            launch = KernelLaunchConfig()
            self.check(self._fn["gqa_plan_merge"](meta.handle, ctypes.byref(args), ctypes.byref(launch)),
                       "planning a merge")
            return launch_config_to_dict(launch)

    # -- GPU -------------------------------------------------------------------------

    def device(self, ordinal: int) -> "Device":
        """The runtime of CUDA device ``ordinal`` (created once, on first use).

        It uses the context current on the calling thread if that belongs to
        the device, else the device's primary context (the one PyTorch uses).
        """
        with self._lock:
            dev = self._devices.get(ordinal)
            if dev is None:
                handle = c_void_p()
                self.check(self._fn["gqa_runtime_create"](ordinal, ctypes.byref(handle)),
                           f"opening CUDA device {ordinal}")
                dev = self._devices[ordinal] = Device(self, ordinal, handle.value)
            return dev


def _name_of(names: dict, value: int) -> Any:
    """The key of ``names`` whose value is ``value`` (the enumerator's name), else ``value``."""
    return {v: k for k, v in names.items()}.get(value, value)


class Metadata:
    """Metadata parsed by the runtime (a context manager that frees it)."""

    def __init__(self, lib: RuntimeLibrary, handle: int) -> None:
        self.lib, self.handle = lib, handle

    def config(self) -> dict:
        """``gqa_metadata_get_config`` (an attention kernel set)."""
        cfg = KernelConfigStruct()
        self.lib.check(self.lib._fn["gqa_metadata_get_config"](self.handle, ctypes.byref(cfg)), "reading config")
        out = {name: getattr(cfg, name) for name, _ in KernelConfigStruct._fields_}
        out["dtype"] = _name_of(DTYPE, cfg.dtype)
        out["layout"] = _name_of(LAYOUT, cfg.layout)
        out["mask"] = MASK.get(cfg.mask, cfg.mask)
        out["kv_lens"] = KV_LENS.get(cfg.kv_lens, cfg.kv_lens)
        return out

    def kind(self) -> str:
        """``gqa_metadata_get_kind``: ``"attention"`` or ``"merge_states"``."""
        kind = c_int()
        self.lib.check(self.lib._fn["gqa_metadata_get_kind"](self.handle, ctypes.byref(kind)), "reading the kind")
        return KIND.get(kind.value, str(kind.value))

    def merge_config(self) -> dict:
        """``gqa_metadata_get_merge_config`` (a merge_states kernel set)."""
        cfg = MergeConfigStruct()
        self.lib.check(self.lib._fn["gqa_metadata_get_merge_config"](self.handle, ctypes.byref(cfg)),
                       "reading the merge config")
        out = {name: getattr(cfg, name) for name, _ in MergeConfigStruct._fields_}
        out["dtype"] = _name_of(DTYPE, cfg.dtype)
        out["layout"] = _name_of(LAYOUT, cfg.layout)
        return out

    def close(self) -> None:
        if self.handle:
            self.lib._fn["gqa_metadata_destroy"](self.handle)
            self.handle = 0

    def __enter__(self) -> "Metadata":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Device:
    """A ``gqa_runtime`` handle: one CUDA device, its context and its loaded modules."""

    def __init__(self, lib: RuntimeLibrary, ordinal: int, handle: int) -> None:
        self.lib, self.ordinal, self.handle = lib, ordinal, handle

    def info(self) -> dict:
        info = DeviceInfo()
        self.lib.check(self.lib._fn["gqa_runtime_get_device_info"](self.handle, ctypes.byref(info)),
                       "reading device info")
        return {name: getattr(info, name) for name, _ in DeviceInfo._fields_}

    def load(self, ptx: str, metadata: dict, what: str = "kernel") -> int:
        """``gqa_kernel_load`` from PTX text and metadata; returns the kernel handle."""
        ptx_bytes = ptx.encode()
        meta_bytes = json.dumps(metadata).encode()
        handle = c_void_p()
        self.lib.check(
            self.lib._fn["gqa_kernel_load"](self.handle, ptx_bytes, len(ptx_bytes), meta_bytes, len(meta_bytes),
                                            ctypes.byref(handle)),
            f"loading {what} on device {self.ordinal}",
        )
        return handle.value

    def workspace_bytes(self, kernel: int, args: LaunchArgs) -> int:
        """``gqa_kernel_workspace_bytes``: the split-KV workspace this launch needs (0: none)."""
        size = c_uint64()
        self.lib.check(self.lib._fn["gqa_kernel_workspace_bytes"](kernel, ctypes.byref(args), ctypes.byref(size)),
                       "sizing the split-KV workspace")
        return size.value

    def launch(self, kernel: int, args: LaunchArgs) -> None:
        """``gqa_kernel_launch``: validate ``args`` and queue the kernel(s) on ``args.stream``."""
        self.lib.check(self.lib._fn["gqa_kernel_launch"](kernel, ctypes.byref(args)), "launching attention")

    def merge_states(self, kernel: int, args: MergeArgs) -> None:
        """``gqa_kernel_merge_states``: validate ``args`` and queue the merge kernel on ``args.stream``."""
        self.lib.check(self.lib._fn["gqa_kernel_merge_states"](kernel, ctypes.byref(args)),
                       "merging attention states")


_lock = threading.Lock()
_library: Optional[RuntimeLibrary] = None


def get_library() -> RuntimeLibrary:
    """The process-wide :class:`RuntimeLibrary`, loaded on first use."""
    global _library
    with _lock:
        if _library is None:
            path = find_runtime_library()
            if path is None:
                raise RuntimeLibraryNotFoundError(
                    f"{RUNTIME_LIB_NAME} not found: set ${ENV_RUNTIME_LIB}, build it into <repo>/build*/ "
                    "(cmake -S lib/Runtime -B build-rt), or place it next to the gqa package"
                )
            _library = RuntimeLibrary(path)
        return _library


def reset_runtime() -> None:
    """Forget the loaded library (tests use this to switch libraries)."""
    global _library
    with _lock:
        _library = None
