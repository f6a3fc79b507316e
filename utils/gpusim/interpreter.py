"""Executes the ``gpu.func`` kernels of the GPU-stage IR on a :class:`~gpusim.backend.CTA`.

Each op the kernels use has a handler (:data:`HANDLERS`); an op without one,
or an op with attributes outside what its handler models, raises
:class:`~gpusim.backend.UnsupportedIR` naming it, so the simulator never skips
what it does not understand.  Control flow follows SIMT semantics: an
``scf.if`` whose condition differs between lanes runs both regions under
lane masks and merges the results per lane; an ``scf.for`` whose bounds
differ runs until its last lane is done, masking finished lanes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .backend import (CTA, ELEM_BYTES, GlobalBuffer, GlobalView, Numerics, SharedRoot, SharedView, SimError,
                      UnsupportedIR, Violation)
from .ir import Block, MemRefType, Op, ScalarType, StructType, VectorType, parse_dict, parse_type, split_top_level

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
DYNAMIC = -9223372036854775808  # how MLIR prints a dynamic size in static_sizes


@dataclass(frozen=True)
class Packed:
    """An i32 register holding two 16-bit floats (a ``vector.bitcast`` of ``vector<2xbf16|f16>``).

    ``halves`` has shape (threads, 2), element 0 in the low half, or
    (threads, 1, 2) for the ``vector<1xi32>`` the bitcast returns.
    """

    halves: np.ndarray
    elem: str


Handler = Callable[["Interpreter", Op, list], list]
HANDLERS: dict[str, Handler] = {}


def handles(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for ops ``names``."""
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn
    return register


def located(error: SimError, op: Op) -> SimError:
    """Attach the op an error happened in (the innermost one)."""
    if getattr(error, "op", None) is None:
        error.op = op  # type: ignore[attr-defined]
    return error


def _decoded(op: Op, key: str, decode: Callable[[], Any]) -> Any:
    """``decode()`` once per op; later executions reuse the result."""
    if key not in op.decoded:
        op.decoded[key] = decode()
    return op.decoded[key]


def _scalar(x: Any) -> Any:
    """A 0-d array as a numpy scalar; anything else unchanged."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


class Interpreter:
    """Runs ops for one CTA; ``env`` maps SSA names to values."""

    def __init__(self, cta: CTA) -> None:
        self.cta = cta
        self.env: dict[str, Any] = {}

    def run_block(self, block: Optional[Block], args: list) -> list:
        """Run ``block`` with ``args`` bound to its arguments; returns what its terminator yields."""
        if block is None:
            return []
        env = self.env
        for name, value in zip(block.arg_names, args):
            env[name] = value
        for op in block.ops:
            if op.name in ("scf.yield", "gpu.return"):
                return [env[o] for o in op.operands]
            handler = HANDLERS.get(op.name)
            if handler is None:
                raise located(UnsupportedIR(f"op '{op.name}' is not modelled by the simulator"), op)
            try:
                results = handler(self, op, [env[o] for o in op.operands])
            except SimError as error:
                raise located(error, op)
            if len(results) != len(op.results):
                raise located(UnsupportedIR(f"{op.name} gave {len(results)} results for {len(op.results)}"), op)
            for name, value in zip(op.results, results):
                env[name] = value
        return []

    # -- helpers for handlers
    def check_int(self, value: Any, ty: Any, what: str) -> None:
        """An i32 result must not have wrapped around."""
        if isinstance(ty, ScalarType) and ty.name == "i32":
            self.cta.require_range(value, I32_MIN, I32_MAX, f"{what} overflows i32")

    def require_unsigned(self, values: list, what: str) -> None:
        """Operands of an unsigned op must be non-negative (the kernels never rely on wrap-around)."""
        for v in values:
            self.cta.require_range(v, 0, 2**63 - 1, f"{what} of a negative value")

    def uniform(self, x: Any, what: str) -> int:
        value = self.cta.uniform(x)
        if value is None:
            raise UnsupportedIR(f"{what} differs between lanes")
        return value


# ----------------------------------------------------------------------------- arith: integers
_INT_BINARY = {
    "arith.addi": operator.add, "arith.subi": operator.sub, "arith.muli": operator.mul,
    "arith.xori": operator.xor, "arith.andi": operator.and_, "arith.ori": operator.or_,
    "arith.minsi": np.minimum, "arith.maxsi": np.maximum,
}
_BOOL_BINARY = {"arith.andi": np.logical_and, "arith.ori": np.logical_or, "arith.xori": np.logical_xor}
_CMPI = {
    0: operator.eq, 1: operator.ne, 2: operator.lt, 3: operator.le, 4: operator.gt, 5: operator.ge,
    6: operator.lt, 7: operator.le, 8: operator.gt, 9: operator.ge,
}
_UNSIGNED_CMPI = {6, 7, 8, 9}


def _ints(x: Any) -> Any:
    return np.asarray(x, dtype=np.int64) if isinstance(x, np.ndarray) else x


@handles(*_INT_BINARY)
def _int_binary(it: Interpreter, op: Op, args: list) -> list:
    ty = op.result_type
    if ty == ScalarType("i1"):
        fn = _BOOL_BINARY.get(op.name)
        if fn is None:
            raise UnsupportedIR(f"{op.name} on i1")
        return [_scalar(fn(args[0], args[1]))]
    result = _scalar(_INT_BINARY[op.name](_ints(args[0]), _ints(args[1])))
    it.check_int(result, ty, op.name)
    return [result]


@handles("arith.divui", "arith.remui", "arith.ceildivui")
def _unsigned_division(it: Interpreter, op: Op, args: list) -> list:
    a, b = _ints(args[0]), _ints(args[1])
    it.require_unsigned([a, b], op.name)
    it.cta.require_range(b, 1, 2**63 - 1, f"{op.name} by zero")
    safe = np.where(np.asarray(b) == 0, 1, b)  # inactive lanes may hold 0
    if op.name == "arith.divui":
        return [_scalar(a // safe)]
    if op.name == "arith.remui":
        return [_scalar(a % safe)]
    return [_scalar(-(-a // safe))]


@handles("arith.minui", "arith.maxui")
def _unsigned_min_max(it: Interpreter, op: Op, args: list) -> list:
    # Both operands are non-negative (arith-unsigned-when-equivalent proved it): signed order.
    a, b = _ints(args[0]), _ints(args[1])
    it.require_unsigned([a, b], op.name)
    return [_scalar((np.minimum if op.name == "arith.minui" else np.maximum)(a, b))]


@handles("arith.cmpi")
def _cmpi(it: Interpreter, op: Op, args: list) -> list:
    predicate = _decoded(op, "predicate", lambda: op.int_attr("predicate"))
    if predicate in _UNSIGNED_CMPI:
        it.require_unsigned(args, "unsigned arith.cmpi")
    return [_scalar(_CMPI[predicate](_ints(args[0]), _ints(args[1])))]


@handles("arith.index_cast", "arith.index_castui")
def _index_cast(it: Interpreter, op: Op, args: list) -> list:
    if op.name == "arith.index_castui":
        it.require_unsigned(args, op.name)
    it.check_int(args[0], op.result_type, op.name)
    return [args[0]]


@handles("arith.select")
def _select(it: Interpreter, op: Op, args: list) -> list:
    cond, a, b = args
    if isinstance(a, Packed) or isinstance(b, Packed):
        raise UnsupportedIR("arith.select of packed 16-bit pairs")
    cond = np.asarray(cond)
    extra = max(np.ndim(a), np.ndim(b)) - cond.ndim
    if cond.ndim and extra > 0:
        cond = cond.reshape(cond.shape + (1,) * extra)
    return [_scalar(np.where(cond, a, b))]


@handles("arith.constant")
def _constant(it: Interpreter, op: Op, args: list) -> list:
    numerics = it.cta.numerics
    return [_decoded(op, ("value", numerics.exact), lambda: _constant_value(op, numerics))]


_FLOAT_BITS = {"f16": (np.uint16, np.float16), "f32": (np.uint32, np.float32), "f64": (np.uint64, np.float64)}


def _constant_value(op: Op, numerics: Numerics) -> Any:
    """``value = 56 : index``, ``true``, ``-2.0e+00 : f32`` or ``0xFF800000 : f32`` as a value."""
    ty = op.result_type
    if not isinstance(ty, ScalarType):
        raise UnsupportedIR(f"arith.constant of type {op.result_types[0]}")
    raw = op.attr("value")
    text = raw.rpartition(" : ")[0] or raw
    if ty.name == "i1":
        return text == "true"
    if not ty.is_float:
        return int(text)
    if text.startswith("0x"):
        if ty.name not in _FLOAT_BITS:
            raise UnsupportedIR(f"hexadecimal {ty.name} constant")
        storage, value_type = _FLOAT_BITS[ty.name]
        value = np.array(int(text, 16), dtype=storage).view(value_type)
    else:
        value = np.float32(text) if ty.name == "f32" else np.float64(text)
    return numerics.floats(value)[()]


# ----------------------------------------------------------------------------- arith / llvm / nvvm: floats
_FLOAT_BINARY = {
    "arith.addf": np.add, "arith.subf": np.subtract, "arith.mulf": np.multiply,
    "arith.divf": np.divide, "arith.maxnumf": np.fmax,
}


@handles(*_FLOAT_BINARY)
def _float_binary(it: Interpreter, op: Op, args: list) -> list:
    f = it.cta.numerics.floats
    with np.errstate(all="ignore"):
        return [_scalar(f(_FLOAT_BINARY[op.name](f(args[0]), f(args[1]))))]


def _cmpf_table() -> dict[int, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    ordered = {1: np.equal, 2: np.greater, 3: np.greater_equal, 4: np.less, 5: np.less_equal, 6: np.not_equal}
    table: dict[int, Callable] = {
        0: lambda a, b: np.zeros(np.broadcast(a, b).shape, bool),
        7: lambda a, b: ~(np.isnan(a) | np.isnan(b)),
        14: lambda a, b: np.isnan(a) | np.isnan(b),
        15: lambda a, b: np.ones(np.broadcast(a, b).shape, bool),
    }
    for pred, fn in ordered.items():
        table[pred] = lambda a, b, fn=fn: fn(a, b) & ~(np.isnan(a) | np.isnan(b))
        table[pred + 7] = lambda a, b, fn=fn: fn(a, b) | np.isnan(a) | np.isnan(b)
    return table


_CMPF = _cmpf_table()


@handles("arith.cmpf")
def _cmpf(it: Interpreter, op: Op, args: list) -> list:
    predicate = _decoded(op, "predicate", lambda: op.int_attr("predicate"))
    f = it.cta.numerics.floats
    with np.errstate(invalid="ignore"):
        return [_scalar(_CMPF[predicate](f(args[0]), f(args[1])))]


@handles("arith.truncf")
def _truncf(it: Interpreter, op: Op, args: list) -> list:
    ty = op.result_type
    elem = ty.elem.name if isinstance(ty, VectorType) else ty.name
    return [_scalar(it.cta.numerics.round_to(args[0], elem))]


@handles("arith.extf")
def _extf(it: Interpreter, op: Op, args: list) -> list:
    # The narrower value is exact in the wider type: only the simulator's float type changes.
    return [_scalar(it.cta.numerics.floats(args[0]))]


@handles("llvm.intr.fma")
def _fma(it: Interpreter, op: Op, args: list) -> list:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in args)
    with np.errstate(all="ignore"):
        return [_scalar(it.cta.numerics.floats(a * b + c))]


_INTRINSICS = {"llvm.nvvm.ex2.approx.f32": np.exp2, "llvm.nvvm.lg2.approx.f": np.log2}


@handles("llvm.call_intrinsic")
def _call_intrinsic(it: Interpreter, op: Op, args: list) -> list:
    name = op.attr("intrin").strip('"')
    fn = _INTRINSICS.get(name)
    if fn is None:
        raise UnsupportedIR(f"intrinsic {name}")
    f = it.cta.numerics.floats
    with np.errstate(all="ignore"):
        return [_scalar(f(fn(f(args[0]))))]


@handles("nvvm.rcp.approx.ftz.f")
def _reciprocal(it: Interpreter, op: Op, args: list) -> list:
    f = it.cta.numerics.floats
    with np.errstate(divide="ignore"):
        return [_scalar(f(1.0 / f(args[0])))]


# ----------------------------------------------------------------------------- gpu
def _dimension(op: Op) -> str:
    return op.attr("dimension").removeprefix("#gpu<dim ").removesuffix(">")


@handles("gpu.thread_id")
def _thread_id(it: Interpreter, op: Op, args: list) -> list:
    return [it.cta.tid if _dimension(op) == "x" else 0]


@handles("gpu.block_id")
def _block_id(it: Interpreter, op: Op, args: list) -> list:
    return [it.cta.block_id["xyz".index(_dimension(op))]]


@handles("gpu.barrier")
def _barrier(it: Interpreter, op: Op, args: list) -> list:
    if op.props or op.attrs:
        raise UnsupportedIR(f"gpu.barrier with attributes ({op.props or op.attrs}): only a full CTA barrier")
    it.cta.barrier()
    return []


@handles("gpu.shuffle")
def _shuffle(it: Interpreter, op: Op, args: list) -> list:
    mode = op.attr("mode").removeprefix("#gpu<shuffle_mode ").removesuffix(">")
    value, arg, width = args
    result, valid = it.cta.shuffle(value, arg, it.uniform(width, "gpu.shuffle width"), mode)
    is_float = op.operand_type_list[0] == ScalarType("f32")
    return [it.cta.numerics.floats(result) if is_float else result.astype(np.int64), valid]


# ----------------------------------------------------------------------------- memref
def _check_unit_strides(op: Op) -> None:
    if op.array_attr("static_offsets") != [0] or op.array_attr("static_strides") != [1]:
        raise UnsupportedIR("memref.reinterpret_cast with an offset or a stride")


@handles("memref.get_global")
def _get_global(it: Interpreter, op: Op, args: list) -> list:
    if op.attr("name") != "@gqa_smem":
        raise UnsupportedIR(f"memref.get_global {op.attr('name')} (only the dynamic shared memory @gqa_smem)")
    return [SharedRoot(it.cta.shared)]


@handles("memref.reinterpret_cast")
def _reinterpret_cast(it: Interpreter, op: Op, args: list) -> list:
    _check_unit_strides(op)
    source, ty = args[0], op.result_type
    if not isinstance(ty, MemRefType) or len(ty.shape) != 1:
        raise UnsupportedIR(f"memref.reinterpret_cast to {op.result_types[0]}")
    static = op.array_attr("static_sizes")[0]
    size = it.uniform(args[1], "view size") if static == DYNAMIC else static
    if isinstance(source, SharedRoot):
        if ty.elem.name != "i8":
            raise UnsupportedIR(f"the dynamic shared memory viewed as {ty.elem.name}, not bytes")
        if size > source.memory.nbytes:
            raise Violation("out_of_bounds", f"the kernel views {size} bytes of dynamic shared memory, "
                                             f"the launch gives {source.memory.nbytes}")
        return [SharedView(source.memory, 0, "i8", size)]
    if isinstance(source, GlobalBuffer):
        if size > source.data.size and not source.absent:
            raise Violation("out_of_bounds", f"a view of {size} elements over {source.name}, "
                                             f"which has {source.data.size}")
        return [GlobalView(source, size)]
    raise UnsupportedIR(f"memref.reinterpret_cast of {type(source).__name__}")


@handles("memref.view")
def _view(it: Interpreter, op: Op, args: list) -> list:
    source, shift = args[0], it.uniform(args[1], "memref.view offset")
    ty = op.result_type
    if len(args) != 2 or not isinstance(source, SharedView) or source.elem != "i8" or None in ty.shape:
        raise UnsupportedIR("memref.view other than a static 1-D view of the shared bytes")
    esize = ELEM_BYTES[ty.elem.name]
    if shift % esize:
        raise Violation("misaligned", f"shared view at byte {shift} for {ty.elem.name} elements")
    if shift < 0 or shift + ty.shape[0] * esize > source.count:
        raise Violation("out_of_bounds", f"shared view of bytes [{shift}, {shift + ty.shape[0] * esize}) "
                                         f"past the {source.count} bytes")
    return [SharedView(source.memory, source.offset + shift, ty.elem.name, ty.shape[0])]


def _loaded(it: Interpreter, values: np.ndarray, elem: str) -> Any:
    return values.astype(np.int64) if elem in ("i32", "i64", "index") else it.cta.numerics.floats(values)


def _alignment(op: Op, view: Any) -> int:
    """The ``alignment`` attribute in bytes, else the element size (as the LLVM lowering assumes)."""
    explicit = op.attr("alignment")
    return int(explicit.split(":")[0]) if explicit else ELEM_BYTES[view.elem]


def _read(it: Interpreter, op: Op, view: Any, idx: Any, count: int) -> np.ndarray:
    align = _alignment(op, view)
    if isinstance(view, GlobalView):
        return _loaded(it, it.cta.global_read(view, idx, count, align), view.elem)
    if isinstance(view, SharedView):
        return _loaded(it, it.cta.shared_read(view, idx, count, align, "load"), view.elem)
    raise UnsupportedIR(f"{op.name} from {type(view).__name__}")


def _write(it: Interpreter, op: Op, view: Any, idx: Any, values: Any, count: int) -> None:
    align = _alignment(op, view)
    if isinstance(view, GlobalView):
        it.cta.global_write(view, idx, values, count, align)
    elif isinstance(view, SharedView):
        it.cta.shared_write(view, idx, values, count, align)
    else:
        raise UnsupportedIR(f"{op.name} to {type(view).__name__}")


def _one_index(op: Op, args: list, first: int) -> Any:
    if len(args) != first + 1:
        raise UnsupportedIR(f"{op.name} with {len(args) - first} indices (1-D memrefs only)")
    return args[first]


@handles("memref.load")
def _memref_load(it: Interpreter, op: Op, args: list) -> list:
    return [_read(it, op, args[0], _one_index(op, args, 1), 1)[:, 0]]


@handles("memref.store")
def _memref_store(it: Interpreter, op: Op, args: list) -> list:
    _write(it, op, args[1], _one_index(op, args, 2), np.asarray(it.cta.lanes(args[0]))[:, None], 1)
    return []


@handles("vector.load")
def _vector_load(it: Interpreter, op: Op, args: list) -> list:
    ty = op.result_type
    if not isinstance(ty, VectorType) or len(ty.shape) != 1:
        raise UnsupportedIR(f"vector.load of {op.result_types[0]}")
    return [_read(it, op, args[0], _one_index(op, args, 1), ty.shape[0])]


@handles("vector.store")
def _vector_store(it: Interpreter, op: Op, args: list) -> list:
    ty = op.operand_type_list[0]
    if not isinstance(ty, VectorType) or len(ty.shape) != 1:
        raise UnsupportedIR(f"vector.store of {op.operand_types[0]}")
    _write(it, op, args[1], _one_index(op, args, 2), args[0], ty.shape[0])
    return []


# ----------------------------------------------------------------------------- vector
@handles("vector.extract")
def _vector_extract(it: Interpreter, op: Op, args: list) -> list:
    position = _decoded(op, "position", lambda: op.array_attr("static_position"))
    if len(args) != 1 or any(p < 0 for p in position):
        raise UnsupportedIR("vector.extract at a dynamic position")
    source = args[0]
    if isinstance(source, Packed):
        if source.halves.ndim != 3 or position != [0]:
            raise UnsupportedIR("vector.extract from a packed pair other than vector<1xi32>[0]")
        return [Packed(source.halves[:, 0], source.elem)]
    return [it.cta.lanes(source)[(slice(None), *position)]]


@handles("vector.bitcast")
def _vector_bitcast(it: Interpreter, op: Op, args: list) -> list:
    src, dst = op.operand_type_list[0], op.result_type
    if not (isinstance(src, VectorType) and src.shape == (2,) and src.elem.name in ("bf16", "f16")
            and dst == VectorType((1,), ScalarType("i32"))):
        raise UnsupportedIR(f"vector.bitcast {op.operand_types[0]} -> {op.result_types[0]}")
    return [Packed(it.cta.lanes(args[0]).reshape(-1, 1, 2), src.elem.name)]


@handles("vector.from_elements")
def _from_elements(it: Interpreter, op: Op, args: list) -> list:
    if any(isinstance(a, Packed) for a in args):
        raise UnsupportedIR("vector.from_elements of packed pairs")
    return [np.stack([it.cta.lanes(a) for a in args], axis=-1)]


# ----------------------------------------------------------------------------- nvgpu / nvvm
@handles("nvgpu.device_async_copy")
def _device_async_copy(it: Interpreter, op: Op, args: list) -> list:
    segments = _decoded(op, "segments", lambda: op.array_attr("operandSegmentSizes"))
    if segments[:4] != [1, 1, 1, 1]:
        raise UnsupportedIR("nvgpu.device_async_copy with other than one index per memref")
    dst, dst_idx, src, src_idx = args[:4]
    count = _decoded(op, "count", lambda: op.int_attr("dstElements"))
    src_count = args[4] if segments[4] else count
    if op.attr("bypassL1") and count * ELEM_BYTES[dst.elem] != 16:
        raise Violation("invalid", "cp.async.cg (bypassL1) copies 16 bytes only")
    it.cta.cp_async(dst, dst_idx, src, src_idx, count, src_count)
    return [None]


@handles("nvvm.cp.async.commit.group")
def _cp_async_commit(it: Interpreter, op: Op, args: list) -> list:
    it.cta.cp_async_commit()
    return []


@handles("nvvm.cp.async.wait.group")
def _cp_async_wait(it: Interpreter, op: Op, args: list) -> list:
    it.cta.cp_async_wait(op.int_attr("n"))
    return []


@handles("nvgpu.ldmatrix")
def _ldmatrix(it: Interpreter, op: Op, args: list) -> list:
    tiles, transpose = _decoded(op, "form", lambda: (op.int_attr("numTiles"), op.attr("transpose") == "true"))
    if tiles != 4:
        raise UnsupportedIR(f"nvgpu.ldmatrix with numTiles = {tiles} (4 only)")
    return [it.cta.ldmatrix_x4(args[0], _one_index(op, args, 1), transpose)]


_MMA_FORM = {
    "layoutA": "#nvvm.mma_layout<row>", "layoutB": "#nvvm.mma_layout<col>",
    "operandSegmentSizes": "array<i32: 4, 2, 4>", "shape": "#nvvm.shape<m = 16, n = 8, k = 16>",
}


def _mma_element(op: Op) -> str:
    for key, expected in _MMA_FORM.items():
        if op.attr(key) != expected:
            raise UnsupportedIR(f"nvvm.mma.sync with {key} = {op.attr(key)} (modelled: {expected})")
    a_type, b_type = op.attr("multiplicandAPtxType"), op.attr("multiplicandBPtxType")
    if a_type != b_type or a_type not in ("#nvvm.mma_type<bf16>", "#nvvm.mma_type<f16>"):
        raise UnsupportedIR(f"nvvm.mma.sync with operand types {a_type}, {b_type}")
    if op.result_type != StructType((ScalarType("f32"),) * 4):
        raise UnsupportedIR(f"nvvm.mma.sync returning {op.result_types[0]}")
    return a_type.removeprefix("#nvvm.mma_type<").removesuffix(">")


def _fragment(it: Interpreter, value: Any, elem: str) -> np.ndarray:
    """One A/B register: the two 16-bit values, low half first."""
    if isinstance(value, Packed):
        if value.elem != elem:
            raise Violation("invalid", f"mma.sync on {elem} operands fed a register of packed {value.elem}")
        return value.halves
    pair = np.asarray(value)
    if pair.ndim != 2 or pair.shape[1] != 2:
        raise UnsupportedIR("mma.sync operand that is neither a packed i32 nor a vector<2x16-bit>")
    return pair


@handles("nvvm.mma.sync")
def _mma(it: Interpreter, op: Op, args: list) -> list:
    elem = _decoded(op, "elem", lambda: _mma_element(op))
    a = [_fragment(it, x, elem) for x in args[0:4]]
    b = [_fragment(it, x, elem) for x in args[4:6]]
    return [it.cta.mma_m16n8k16(a, b, args[6:10])]


@handles("llvm.extractvalue")
def _extractvalue(it: Interpreter, op: Op, args: list) -> list:
    position = _decoded(op, "position", lambda: op.array_attr("position"))
    if len(position) != 1:
        raise UnsupportedIR("llvm.extractvalue of a nested position")
    return [args[0][position[0]]]


# ----------------------------------------------------------------------------- scf
@handles("scf.for")
def _for(it: Interpreter, op: Op, args: list) -> list:
    low, high, step, values = args[0], args[1], args[2], list(args[3:])
    step = it.uniform(step, "scf.for step")
    if step <= 0:
        raise UnsupportedIR(f"scf.for with step {step}")
    cta = it.cta
    lo, hi = cta.uniform(low), cta.uniform(high)
    body = op.regions[0]
    if lo is not None and hi is not None:
        for i in range(lo, hi, step):
            values = it.run_block(body, [i] + values)
        return values
    if values:
        raise UnsupportedIR("scf.for with iter_args and bounds that differ between lanes")
    low, high = cta.lanes(_ints(low)), cta.lanes(_ints(high))
    trips = np.maximum(0, -(-(high - low) // step))
    for i in range(int(cta.active(trips).max())):
        cta.push_mask(trips > i)
        it.run_block(body, [low + i * step])
        cta.pop_mask()
    return []


@handles("scf.if")
def _if(it: Interpreter, op: Op, args: list) -> list:
    cta = it.cta
    then_block, else_block = op.regions[0], op.regions[1] if len(op.regions) > 1 else None
    taken = cta.uniform(args[0])
    if taken is not None:
        return it.run_block(then_block if taken else else_block, [])
    cond = cta.lanes(np.asarray(args[0], dtype=bool))
    cta.push_mask(cond)
    then_values = it.run_block(then_block, [])
    cta.pop_mask()
    cta.push_mask(~cond)
    else_values = it.run_block(else_block, [])
    cta.pop_mask()
    merged = []
    for a, b in zip(then_values, else_values):
        if isinstance(a, Packed) or isinstance(b, Packed):
            raise UnsupportedIR("scf.if yielding packed pairs under a condition that differs between lanes")
        a, b = cta.lanes(a), cta.lanes(b)
        merged.append(np.where(cond.reshape(cond.shape + (1,) * (a.ndim - 1)), a, b))
    return merged


# ----------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class GridDim:
    """One grid dimension of ``gqa.grid``: ``const``, or ceil((sym * mul + add) / div)."""

    const: Optional[int]
    sym: Optional[str]
    mul: int = 1
    add: int = 0
    div: int = 1

    @classmethod
    def parse(cls, text: str) -> "GridDim":
        fields = {k: v.split(":")[0].strip().strip('"') for k, v in parse_dict(text.strip()[1:-1]).items()}
        if "const" in fields:
            return cls(int(fields["const"]), None)
        return cls(None, fields["sym"], int(fields.get("mul", 1)), int(fields.get("add", 0)),
                   int(fields.get("div", 1)))

    def size(self, sizes: dict[str, int]) -> int:
        if self.const is not None:
            return self.const
        return -(-(sizes[self.sym] * self.mul + self.add) // self.div)


def _string_list(text: str) -> list[str]:
    return [s.strip('"') for s in split_top_level(text.strip()[1:-1])]


@dataclass
class Kernel:
    """A ``gpu.func`` with what ``convert-gqa-to-gpu`` says about its launch (the ``gqa.*`` attributes)."""

    name: str
    role: str
    params: list[str]
    threads: int
    grid: tuple[GridDim, GridDim, GridDim]
    shared_bytes: int
    block_n: Optional[int]
    func: Op

    @classmethod
    def from_op(cls, func: Op) -> "Kernel":
        block = func.array_attr("known_block_size")
        if block[1:] != [1, 1]:
            raise UnsupportedIR(f"gpu.func with block {block} (1-D blocks only)")
        tile = func.attr("gqa.tile")
        block_n = int(parse_dict(tile[1:-1])["block_n"].split(":")[0]) if tile else None
        grid = tuple(GridDim.parse(d) for d in split_top_level(func.attr("gqa.grid")[1:-1]))
        return cls(func.attr("sym_name").strip('"'), func.attr("gqa.role").strip('"'),
                   _string_list(func.attr("gqa.params")), block[0], grid,  # type: ignore[arg-type]
                   func.int_attr("gqa.dynamic_shared_memory_bytes"), block_n, func)

    def grid_size(self, sizes: dict[str, int]) -> tuple[int, int, int]:
        return tuple(d.size(sizes) for d in self.grid)  # type: ignore[return-value]

    def run_cta(self, cta: CTA, arguments: dict[str, Any]) -> None:
        """Run the kernel body for one CTA; ``arguments`` maps parameter names to buffers and sizes."""
        body = self.func.regions[0]
        if body is None or len(body.arg_names) != len(self.params):
            raise UnsupportedIR(f"{self.name}: {len(self.params)} gqa.params for its block arguments")
        values = []
        for name, ty_text in zip(self.params, body.arg_types):
            value, ty = arguments[name], parse_type(ty_text)
            if isinstance(ty, MemRefType) and (not isinstance(value, GlobalBuffer) or value.elem != ty.elem.name):
                raise Violation("invalid", f"parameter {name} is {ty_text}, but the launch passes "
                                           f"{getattr(value, 'elem', type(value).__name__)}")
            values.append(value)
        Interpreter(cta).run_block(body, values)
        cta.require_async_copies_drained(self.name)
