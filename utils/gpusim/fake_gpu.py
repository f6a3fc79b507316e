"""The runtime and the kernels together, without a GPU: the fake CUDA driver hands each launch to gpusim.

The runtime (``libgqa_runtime.so``) loads the fake CUDA driver
(``libgqa-fake-cuda.so``, unittests/Runtime/FakeDriver) as libcuda; the
driver checks each ``cuLaunchKernel`` against the PTX's ``.entry`` signature
and then calls the hook :class:`FakeGPU` installs, with the launch's real
parameter values and grid.  The hook runs the kernel of that name from the
GPU-stage IR of the same configuration (:func:`gpusim.runner.lower_to_gpu`)
over *the runtime's* grid, binding parameter ``i`` of the entry to argument
``i`` of the ``gpu.func`` (its name from ``gqa.params``): pointers become
views of the fake driver's allocations (host memory), read in the element
type the kernel declares, and what the kernel writes is stored back.  So the
runtime's parameter binding, sizes, split plan, workspace carving and launch
order meet the kernel's own reading of them, and a mistake in either shows
as a violation or as a wrong output.

:class:`DeviceArray` is device memory that ``gqa.attention`` takes as a
CUDA tensor (it is torch-like: ``data_ptr``, ``shape``, ``stride``,
``dtype``, ``device``).
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, Structure, c_char_p, c_int, c_uint, c_uint64, c_void_p
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from gqa import dtypes

from .backend import ELEM_BYTES, GlobalBuffer, Numerics
from .interpreter import Kernel
from .ir import MemRefType, parse_type
from .runner import Outcome, launch, load_kernels

#: numpy storage of each element type a kernel parameter may point to.
_STORAGE = {"bf16": np.uint16, "f16": np.float16, "f32": np.float32, "i32": np.int32, "i64": np.int64}
_TORCH_NAMES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32", "i32": "int32", "i64": "int64"}


class _Launch(Structure):
    """``gqa_fake_launch`` (FakeCudaDriver.h)."""

    _fields_ = [("kernel", c_char_p), ("grid", c_uint * 3), ("block", c_uint * 3),
                ("dynamic_shared_memory_bytes", c_uint), ("stream", c_void_p), ("num_params", c_int),
                ("params", c_uint64 * 32), ("param_bytes", c_int * 32)]


_HOOK = ctypes.CFUNCTYPE(c_int, POINTER(_Launch), c_void_p)


class _Device:
    """torch.device's ``type`` and ``index``."""

    type, index = "cuda", 0

    def __str__(self) -> str:
        return "cuda:0"


@dataclass
class DeviceArray:
    """A contiguous array in the fake driver's memory, as gqa.attention takes a CUDA tensor."""

    gpu: "FakeGPU"
    address: int
    shape: tuple[int, ...]
    elem: str

    @property
    def dtype(self) -> str:
        return f"torch.{_TORCH_NAMES[self.elem]}"

    @property
    def device(self) -> _Device:
        return _Device()

    def data_ptr(self) -> int:
        return self.address

    def stride(self) -> tuple[int, ...]:
        strides, acc = [], 1
        for size in reversed(self.shape):
            strides.append(acc)
            acc *= size
        return tuple(reversed(strides))

    def numpy(self) -> np.ndarray:
        """The values (float64, or int64 for integers)."""
        return self.gpu.read(self.address, self.elem, int(np.prod(self.shape))).reshape(self.shape)


@dataclass
class LaunchRecord:
    """What one launch did in the simulator."""

    kernel: str
    grid: tuple[int, int, int]
    params: dict[str, Any]
    ctas: int = 0
    violation: Optional[dict] = None


@dataclass
class FakeGPU:
    """The fake driver with gpusim behind its launches (see the module docstring)."""

    library: Path
    precision: str = "device"
    launches: list[LaunchRecord] = field(default_factory=list)
    #: The first exception the hook met (the launch then failed).
    error: Optional[str] = None

    def __post_init__(self) -> None:
        # The same path as $GQA_CUDA_DRIVER_LIBRARY: dlopen gives the runtime and us one instance.
        self.lib = ctypes.CDLL(str(self.library))
        self.lib.gqa_fake_cuda_alloc.restype, self.lib.gqa_fake_cuda_alloc.argtypes = c_uint64, [c_uint64]
        self.lib.gqa_fake_cuda_bytes_from.restype = c_uint64
        self.lib.gqa_fake_cuda_bytes_from.argtypes = [c_uint64]
        self.lib.gqa_fake_cuda_set_launch_hook.restype = None
        self.lib.gqa_fake_cuda_set_launch_hook.argtypes = [_HOOK, c_void_p]
        self.kernels: dict[str, Kernel] = {}
        self._hook = _HOOK(self._on_launch)  # kept alive as long as the driver may call it
        self.lib.gqa_fake_cuda_set_launch_hook(self._hook, None)

    def close(self) -> None:
        """Uninstall the hook."""
        self.lib.gqa_fake_cuda_set_launch_hook(_HOOK(), None)

    def use(self, ir_text: str) -> None:
        """Launches run the kernels of this GPU-stage IR (by name) from now on."""
        self.kernels = {k.name: k for k in load_kernels(ir_text)}
        self.launches.clear()
        self.error = None

    # -- memory ---------------------------------------------------------------------
    def upload(self, values: np.ndarray, elem: str) -> DeviceArray:
        """``values`` rounded to ``elem`` into a fresh allocation."""
        raw = np.ascontiguousarray(self._encode(np.asarray(values), elem))
        address = self._alloc(max(raw.nbytes, 1))
        ctypes.memmove(address, raw.ctypes.data, raw.nbytes)
        return DeviceArray(self, address, tuple(np.shape(values)), elem)

    def full(self, shape: tuple[int, ...], elem: str, value: float = float("nan")) -> DeviceArray:
        """An allocation of ``shape`` filled with ``value`` (NaN: an element never written shows)."""
        return self.upload(np.full(shape, value), elem)

    def read(self, address: int, elem: str, count: int) -> np.ndarray:
        raw = np.frombuffer((ctypes.c_char * (count * ELEM_BYTES[elem])).from_address(address), _STORAGE[elem])
        return self._decode(raw.copy(), elem)

    def _alloc(self, nbytes: int) -> int:
        address = self.lib.gqa_fake_cuda_alloc(nbytes)
        if not address:
            raise MemoryError(f"the fake driver could not allocate {nbytes} bytes")
        return address

    @staticmethod
    def _encode(values: np.ndarray, elem: str) -> np.ndarray:
        if elem in ("i32", "i64"):
            return values.astype(_STORAGE[elem])
        return dtypes.encode(values.astype(np.float32), elem)

    @staticmethod
    def _decode(raw: np.ndarray, elem: str) -> np.ndarray:
        if elem in ("i32", "i64"):
            return raw.astype(np.int64)
        with np.errstate(invalid="ignore"):  # memory past a tensor may hold any bits (signalling NaNs)
            return dtypes.decode(raw, elem).astype(np.float64)

    # -- launches -------------------------------------------------------------------
    def _on_launch(self, record: Any, user: Any) -> int:
        try:
            return self._run(record.contents)
        except Exception as e:  # noqa: BLE001 - nothing may escape a ctypes callback: reported, the launch fails
            self.error = self.error or f"{type(e).__name__}: {e}"
            return 1

    def _run(self, record: _Launch) -> int:
        name = record.kernel.decode()
        kernel = self.kernels.get(name)
        if kernel is None:
            raise KeyError(f"the runtime launched {name!r}, which the IR does not hold ({sorted(self.kernels)})")
        grid = tuple(record.grid)
        entry = LaunchRecord(name, grid, {})  # type: ignore[arg-type]
        self.launches.append(entry)
        types = kernel.func.regions[0].arg_types
        if record.num_params != len(kernel.params):
            raise ValueError(f"{name}: the launch passes {record.num_params} parameters, the kernel takes "
                             f"{len(kernel.params)}")
        if tuple(record.block) != (kernel.threads, 1, 1) or record.dynamic_shared_memory_bytes != kernel.shared_bytes:
            raise ValueError(f"{name}: launched with block {tuple(record.block)} and "
                             f"{record.dynamic_shared_memory_bytes} bytes of dynamic shared memory; the kernel "
                             f"has {kernel.threads} threads and {kernel.shared_bytes} bytes")
        args: dict[str, Any] = {}
        views: dict[tuple[int, str], tuple[GlobalBuffer, int]] = {}
        for i, (param, type_text) in enumerate(zip(kernel.params, types)):
            value, ty = int(record.params[i]), parse_type(type_text)
            entry.params[param] = value
            if not isinstance(ty, MemRefType):  # the driver zero-extends a 4-byte value: sign-extend it
                bits = 8 * record.param_bytes[i]
                args[param] = value - (1 << bits) if value >= 1 << (bits - 1) else value
                continue
            elem = ty.elem.name
            if value == 0:  # a null pointer: views may be made, every access is out of bounds
                args[param] = GlobalBuffer(param, elem, np.zeros(0), absent=True)
                continue
            if (value, elem) not in views:  # one buffer per address (an in-place output aliases its input)
                count = int(self.lib.gqa_fake_cuda_bytes_from(value)) // ELEM_BYTES[elem]
                views[(value, elem)] = (GlobalBuffer(param, elem, self.read(value, elem, count)), count)
            args[param] = views[(value, elem)][0]
        outcome = Outcome(output=np.zeros(0))
        ok = launch(kernel, args, {}, Numerics(exact=self.precision == "exact"), outcome, grid)  # type: ignore[arg-type]
        entry.ctas, entry.violation = outcome.stats["ctas"], outcome.violation
        for (address, elem), (buffer, count) in views.items():
            written = buffer.writes > 0
            if written.any():
                memory = np.frombuffer((ctypes.c_char * (count * ELEM_BYTES[elem])).from_address(address),
                                       _STORAGE[elem])
                memory[written] = self._encode(buffer.data[written], elem)
        return 0 if ok else 1


__all__ = ["DeviceArray", "FakeGPU", "LaunchRecord"]
