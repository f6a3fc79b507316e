"""One attention configuration end to end: gqa-opt -> GPU-stage IR -> simulation -> comparison.

:func:`lower_to_gpu` runs the repository's ``gqa-opt`` on a one-op module
(the GPU stage of ``gqa-lower-to-ptx``: ``convert-gqa-to-gpu``, canonicalize,
cse); :func:`check` parses that IR, launches its kernels in order over their
grids (from the ``gqa.grid`` attributes, as the runtime does from the
metadata) on seeded random inputs rounded to the dtype, and compares the
output with :func:`gqa.reference.attention`.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Optional

import numpy as np

from gqa import dtypes, reference
from gqa.config import KernelConfig
from gqa.shapes import make_shape

from .backend import CTA, GlobalBuffer, Numerics, UnsupportedIR, Violation
from .interpreter import Kernel
from .ir import parse_module

#: Relative L2 error allowed in device precision, per dtype (gqa-run's relL2Tolerance).
DEVICE_TOLERANCE = {"bf16": 1e-2, "f16": 2e-3, "f32": 1e-5}
#: Relative L2 error allowed in exact precision (float64 throughout; the f32 constants remain).
EXACT_TOLERANCE = 1e-6
#: Largest absolute error of a log-sum-exp allowed, per precision (exact: the f32 constants log2(e) and
#: ln(2) remain).
LSE_TOLERANCE = {"device": 1e-4, "exact": 1e-7}
PRECISIONS = ("device", "exact")


class CompileError(RuntimeError):
    """gqa-opt rejected the module."""


class LaunchError(ValueError):
    """Sizes no launch may use (the command line's bad arguments)."""


@dataclass(frozen=True)
class CompileOptions:
    """Options of ``convert-gqa-to-gpu`` (0 = the pass chooses / split-KV off)."""

    max_splits: int = 0
    block_m: int = 0
    block_n: int = 0

    def pass_options(self) -> str:
        return f"max-splits={self.max_splits} block-m={self.block_m} block-n={self.block_n}"


@dataclass(frozen=True)
class Sizes:
    """The sizes given at launch."""

    batch: int
    seq_q: int
    seq_kv: int
    kv_lens: Optional[tuple[int, ...]] = None
    num_splits: int = 1
    #: Tokens per page of a paged KV cache (0: contiguous K/V).
    page_size: int = 0
    #: A ragged batch: each sequence's query count (``batch`` entries; ``seq_q`` is their maximum,
    #: flash_attn's ``max_seqlen_q``); q and out are then packed tokens.
    q_lens: Optional[tuple[int, ...]] = None
    #: With ``q_lens``: K/V are packed tokens split by cu_seqlens_k, sequence b holding ``kv_lens[b]``
    #: keys (``seq_kv`` is the launch's max_seqlen_k: the longest, or more, or less to understate it).
    packed_kv: bool = False

    @property
    def total_q(self) -> int:
        """The query rows of all sequences: T when ragged, else batch * seq_q."""
        return sum(self.q_lens) if self.q_lens is not None else self.batch * self.seq_q

    def computed_tokens(self) -> Any:
        """The packed tokens the kernels must write: those at a position below seq_q in their sequence
        (a launch may understate max_seqlen_q; the rows past it may stay unwritten)."""
        positions = np.concatenate([np.arange(n) for n in self.q_lens]) if self.total_q else np.zeros(0, int)
        return positions < self.seq_q

    @property
    def cu_seqlens_q(self) -> np.ndarray:
        """The B+1 offsets of the ragged queries."""
        return np.concatenate([[0], np.cumsum(self.q_lens)]).astype(np.int64)

    @property
    def cu_seqlens_k(self) -> np.ndarray:
        """The B+1 offsets of the packed keys (``packed_kv``)."""
        return np.concatenate([[0], np.cumsum(self.kv_lens)]).astype(np.int64)

    @property
    def total_kv(self) -> int:
        """The packed keys of all sequences (``packed_kv``)."""
        return int(sum(self.kv_lens))

    @property
    def pages_per_sequence(self) -> int:
        """The block table's row length, ceil(Skv / P) (paged only)."""
        return -(-self.seq_kv // self.page_size)

    @property
    def kernel_seq_kv(self) -> int:
        """The KV length the kernels take: Skv, or whole pages when paged."""
        return self.pages_per_sequence * self.page_size if self.page_size else self.seq_kv

    @property
    def num_pages(self) -> int:
        """Pages in each pool: the sequences' pages and 3 that belong to none (paged only)."""
        return self.batch * self.pages_per_sequence + 3

    def validate(self, options: CompileOptions) -> None:
        """Raise :class:`LaunchError` for sizes no launch may use."""
        for name in ("batch", "seq_q", "seq_kv", "num_splits"):
            if getattr(self, name) < 1:
                raise LaunchError(f"{name.replace('_', '-')} must be positive")
        if self.page_size < 0:
            raise LaunchError(f"page-size must be positive (or 0: not paged), got {self.page_size}")
        if self.kv_lens is not None:
            if len(self.kv_lens) != self.batch:
                raise LaunchError(f"kv-lens has {len(self.kv_lens)} entries, but batch is {self.batch}")
            for b, length in enumerate(self.kv_lens):
                # Packed segments may exceed seq-kv: an understated max_seqlen_k, still read whole.
                if length < 0 or (length > self.seq_kv and not self.packed_kv):
                    raise LaunchError(f"kv-lens[{b}] = {length} is outside [0, seq-kv = {self.seq_kv}]")
        if self.q_lens is not None:
            if len(self.q_lens) != self.batch or min(self.q_lens) < 0 or self.seq_q > max(*self.q_lens, 1):
                raise LaunchError(f"q-lens {list(self.q_lens)} must hold batch = {self.batch} lengths >= 0, "
                                  f"seq-q = {self.seq_q} (max_seqlen_q) at most the longest")
        if self.packed_kv and (self.q_lens is None or self.kv_lens is None or self.page_size):
            raise LaunchError("packed K/V needs q-lens (a ragged batch) and kv-lens (its segments), and no pages")
        if self.num_splits > max(options.max_splits, 1):
            raise LaunchError(f"num-splits = {self.num_splits} needs --max-splits >= {self.num_splits}")

    def validate_splits(self, block_n: int) -> None:
        """The launch contract (kernel-metadata.md): every split gets at least one KV tile."""
        tiles = -(-self.kernel_seq_kv // block_n)
        per_split = -(-tiles // self.num_splits)
        if (self.num_splits - 1) * per_split >= tiles:
            raise LaunchError(f"num-splits = {self.num_splits} leaves a split without a KV tile "
                             f"(seq-kv {self.kernel_seq_kv} fills {tiles} tile(s) of {block_n} keys)")

    def symbols(self) -> dict[str, int]:
        """The values of the grid symbols and size parameters."""
        symbols = {"batch": self.batch, "seq_q": self.seq_q, "seq_kv": self.kernel_seq_kv,
                   "num_splits": self.num_splits}
        if self.page_size:
            symbols["num_pages"] = self.num_pages
        if self.q_lens is not None:
            symbols["total_q"] = self.total_q
        if self.packed_kv:
            symbols["total_kv"] = self.total_kv
        return symbols


# ----------------------------------------------------------------------------- compiling
def attention_module(config: KernelConfig) -> str:
    """A module with one ``gqa.attention`` on dynamically sized memrefs for ``config``."""
    def tensor(heads: int, dim: int, packed: bool = False) -> str:
        shape = f"?x{heads}" if packed else f"?x{heads}x?" if config.layout == "bhsd" else f"?x?x{heads}"
        return f"memref<{shape}x{dim}x{config.dtype}>"

    def cache(dim: int) -> str:
        """K or V: in the layout (packed tokens with cu_seqlens_k), or a pool of pages [pages, P, Hkv, D]."""
        if not config.page_size:
            return tensor(config.kv_heads, dim, config.packed_kv)
        return f"memref<?x{config.page_size}x{config.kv_heads}x{dim}x{config.dtype}>"

    q, k = tensor(config.q_heads, config.head_dim, config.varlen), cache(config.head_dim)
    v, o = cache(config.head_dim_v), tensor(config.q_heads, config.head_dim_v, config.varlen)
    mask = {"none": "none", "causal": "causal"}.get(config.mask, f"window = [{config.window[0]}, {config.window[1]}]")
    lens_arg = ", %lens: memref<?xi32>" if config.kv_lens else ""
    sizes_arg, sizes = "", ""
    lens = " kv_lens(%lens : memref<?xi32>)" if config.kv_lens else ""
    if config.page_size:
        lens_arg += ", %pages: memref<?x?xi32>"
        lens += " block_table(%pages : memref<?x?xi32>)"
    if config.sinks:
        lens_arg += f", %sinks: memref<{config.q_heads}xf32>"
        lens += f" sinks(%sinks : memref<{config.q_heads}xf32>)"
    if config.varlen:
        lens_arg += ", %cu_q: memref<?xi32>"
        lens += " cu_seqlens_q(%cu_q : memref<?xi32>)"
        sizes_arg, sizes = ", %max_q: index", " max_seqlen_q(%max_q)"
    if config.packed_kv:
        lens_arg += ", %cu_k: memref<?xi32>"
        lens += " cu_seqlens_k(%cu_k : memref<?xi32>)"
        sizes_arg, sizes = sizes_arg + ", %max_k: index", sizes + " max_seqlen_k(%max_k)"
    lens_arg, lens = lens_arg + sizes_arg, lens + sizes
    lse_type = f"memref<{config.q_heads}x?xf32>" if config.varlen else f"memref<?x{config.q_heads}x?xf32>"
    lse_arg = f", %lse: {lse_type}" if config.lse else ""
    lse = f", %lse : {lse_type}" if config.lse else ""
    extra = "" if config.default_scale else f" scale({config.scale!r})"
    extra += f" softcap({config.softcap!r})" if config.softcap else ""
    return (f"func.func @gqa_attention(%q: {q}, %k: {k}, %v: {v}, %o: {o}{lens_arg}{lse_arg}) {{\n"
            f"  gqa.attention ins(%q, %k, %v : {q}, {k}, {v}){lens}\n"
            f"    outs(%o : {o}{lse}) heads({config.q_heads}, {config.kv_heads}) layout<{config.layout}> "
            f"mask<{mask}>{extra}\n"
            f"  return\n}}\n")


def lower_module(module: str, gqa_opt: Path, pass_options: str = "") -> str:
    """The GPU stage of the gqa ops of ``module`` (``convert-gqa-to-gpu``, canonicalize, cse), in generic form."""
    convert = f"--convert-gqa-to-gpu={pass_options}" if pass_options else "--convert-gqa-to-gpu"
    proc = subprocess.run([str(gqa_opt), "-", convert, "--canonicalize", "--cse", "--mlir-print-op-generic"],
                          input=module, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise CompileError(proc.stderr.strip() or f"{gqa_opt} exited with {proc.returncode}")
    return proc.stdout


def lower_to_gpu(config: KernelConfig, options: CompileOptions, gqa_opt: Path) -> str:
    """The GPU-stage IR of ``config`` in generic form, from ``gqa_opt``."""
    return lower_module(attention_module(config), gqa_opt, options.pass_options())


def load_kernels(ir_text: str) -> list[Kernel]:
    """The kernels of the IR in launch order (``main`` or ``split``, then ``combine``)."""
    kernels = [Kernel.from_op(op) for op in parse_module(ir_text).walk() if op.name == "gpu.func"]
    if not kernels:
        raise UnsupportedIR("the IR holds no gpu.func")
    return sorted(kernels, key=lambda k: k.role == "combine")


# ----------------------------------------------------------------------------- running
@dataclass
class Outcome:
    """What the simulation of one launch sequence produced."""

    output: np.ndarray
    #: The log-sum-exps written (``config.lse``), else None.
    lse: Optional[np.ndarray] = None
    stats: Counter = field(default_factory=Counter)
    violation: Optional[dict[str, Any]] = None


def make_inputs(config: KernelConfig, sizes: Sizes, seed: int,
                sink_value: Optional[float] = None) -> dict[str, np.ndarray]:
    """Seeded standard-normal q, k, v in ``config.layout``, rounded to the dtype, as float64.

    With ``config.sinks``, also ``sinks``: one f32 logit per query head, spread
    (N(1, 2)) so that some sinks outweigh the row's keys and some do not, or
    all ``sink_value`` when given (``-inf``: a sink that never weighs).
    """
    rng = np.random.default_rng(seed)
    shapes = {
        "q": ((sizes.total_q, config.q_heads, config.head_dim) if config.varlen else
              make_shape(config.layout, sizes.batch, config.q_heads, sizes.seq_q, config.head_dim)),
        "k": ((sizes.total_kv, config.kv_heads, config.head_dim) if config.packed_kv else
              make_shape(config.layout, sizes.batch, config.kv_heads, sizes.seq_kv, config.head_dim)),
        "v": ((sizes.total_kv, config.kv_heads, config.head_dim_v) if config.packed_kv else
              make_shape(config.layout, sizes.batch, config.kv_heads, sizes.seq_kv, config.head_dim_v)),
    }
    inputs = {name: dtypes.decode(dtypes.encode(rng.standard_normal(shape).astype(np.float32), config.dtype),
                                  config.dtype).astype(np.float64)
              for name, shape in shapes.items()}
    if config.sinks:
        inputs["sinks"] = (np.full(config.q_heads, sink_value) if sink_value is not None else
                           rng.normal(1.0, 2.0, config.q_heads).astype(np.float32).astype(np.float64))
    return inputs


def page_caches(config: KernelConfig, sizes: Sizes, inputs: dict[str, np.ndarray],
                seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """K and V (contiguous, in the layout) scattered into pools [pages, P, Hkv, D] through a shuffled block table.

    Every slot no sequence fills (3 spare pages, the tail of each last page) is
    NaN, so a kernel that reads one into its output fails the comparison.
    """
    P, per_sequence = sizes.page_size, sizes.pages_per_sequence
    order = np.random.default_rng(seed + 1).permutation(sizes.num_pages)
    table = order[: sizes.batch * per_sequence].reshape(sizes.batch, per_sequence)
    pools = {}
    for name in ("k", "v"):
        contiguous = inputs[name] if config.layout == "bshd" else inputs[name].transpose(0, 2, 1, 3)
        pool = np.full((sizes.num_pages, P, config.kv_heads, contiguous.shape[-1]), np.nan)
        for b in range(sizes.batch):
            for j in range(sizes.seq_kv):
                pool[table[b, j // P], j % P] = contiguous[b, j]
        pools[name] = pool
    return pools, table


def _buffers(config: KernelConfig, sizes: Sizes, inputs: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Kernel arguments by parameter name: outputs and workspace poisoned with NaN."""
    rows = sizes.total_q * config.q_heads
    args: dict[str, Any] = {name: GlobalBuffer(name, "f32" if name == "sinks" else config.dtype, a.ravel().copy())
                            for name, a in inputs.items()}
    if config.page_size:
        pools, table = page_caches(config, sizes, inputs, seed)
        for name, pool in pools.items():
            args[name] = GlobalBuffer(name, config.dtype, pool.ravel())
        args["block_table"] = GlobalBuffer("block_table", "i32", table.ravel().astype(np.int64))
    args["out"] = GlobalBuffer("out", config.dtype, np.full(rows * config.head_dim_v, np.nan))
    if config.lse:
        args["lse"] = GlobalBuffer("lse", "f32", np.full(rows, np.nan))
    # One split has no workspace (the split kernel writes out): the launcher passes null pointers.
    splits, absent = sizes.num_splits, sizes.num_splits == 1
    # [splits, B, Hq, Sq(, Dv)]: a ragged batch pads each sequence to the longest.
    padded = sizes.batch * config.q_heads * sizes.seq_q
    args["partial_out"] = GlobalBuffer("partial_out", "f32", np.full(splits * padded * config.head_dim_v, np.nan),
                                       absent)
    args["partial_lse"] = GlobalBuffer("partial_lse", "f32", np.full(splits * padded, np.nan), absent)
    if sizes.kv_lens is not None and config.kv_lens:
        args["kv_lens"] = GlobalBuffer("kv_lens", "i32", np.asarray(sizes.kv_lens, dtype=np.int64))
    if config.varlen:
        args["cu_seqlens_q"] = GlobalBuffer("cu_seqlens_q", "i32", sizes.cu_seqlens_q)
    if config.packed_kv:
        args["cu_seqlens_k"] = GlobalBuffer("cu_seqlens_k", "i32", sizes.cu_seqlens_k)
    args.update(sizes.symbols())
    return args


def _violation_report(error: Violation, kernel: Kernel, cta: Optional[tuple[int, int, int]]) -> dict[str, Any]:
    """The JSON form of a violation: what, where (kernel, CTA, op and its line in the IR text)."""
    op = getattr(error, "op", None)
    return {"kind": error.kind, "message": error.message, "kernel": kernel.name,
            "cta": list(cta) if cta else None, "op": op.name if op else None, "line": op.line if op else None}


def used_rows(sizes: Sizes, name: str, q_heads: int, head_dim_v: int) -> Any:
    """The entries of one split's workspace ``name`` the split kernel must write: all of them, or in a ragged
    batch those of each sequence's queries (the rest pads it to the longest)."""
    if sizes.q_lens is None:
        return slice(None)
    positions = np.arange(sizes.seq_q)[None, :] < np.asarray(sizes.q_lens)[:, None]  # [B, Sq]
    used = np.broadcast_to(positions[:, None, :], (sizes.batch, q_heads, sizes.seq_q))
    if name == "partial_out":
        used = np.broadcast_to(used[..., None], used.shape + (head_dim_v,))
    return used.ravel()


def launched(kernels: list[Kernel], num_splits: int) -> list[Kernel]:
    """The kernels a launch runs (kernel-metadata.md): with one split, the split kernel alone."""
    return [k for k in kernels if not (k.role == "combine" and num_splits == 1)]


def launch(kernel: Kernel, args: dict[str, Any], symbols: dict[str, int], numerics: Numerics,
           outcome: Outcome, grid: Optional[tuple[int, int, int]] = None) -> bool:
    """Run ``kernel`` over its grid (``symbols``: the grid's sizes; or ``grid``, a launcher's) on ``args``,
    CTA by CTA, adding to ``outcome``'s stats; False (and ``outcome.violation``) at the first violation."""
    for buffer in args.values():
        if isinstance(buffer, GlobalBuffer):
            buffer.start_launch()
    for bx, by, bz in product(*(range(n) for n in (grid or kernel.grid_size(symbols)))):
        cta = CTA(kernel.threads, (bx, by, bz), numerics, kernel.shared_bytes)
        try:
            kernel.run_cta(cta, args)
        except Violation as error:
            outcome.violation = _violation_report(error, kernel, (bx, by, bz))
            return False
        outcome.stats.update(cta.stats)
        outcome.stats["ctas"] += 1
    return True


def simulate(kernels: list[Kernel], config: KernelConfig, sizes: Sizes, inputs: dict[str, np.ndarray],
             numerics: Numerics, seed: int = 0) -> Outcome:
    """Launch ``kernels`` one after the other over their grids; stop at the first violation."""
    args = _buffers(config, sizes, inputs, seed)
    outcome = Outcome(output=args["out"].data, lse=args["lse"].data if config.lse else None)
    for kernel in launched(kernels, sizes.num_splits):
        if not launch(kernel, args, sizes.symbols(), numerics, outcome):
            return outcome
        if kernel.role == "split" and sizes.num_splits > 1:
            unwritten = 0
            for n in ("partial_out", "partial_lse"):
                per_split = args[n].data.reshape(sizes.num_splits, -1)
                used = used_rows(sizes, n, config.q_heads, config.head_dim_v)
                unwritten += int(np.isnan(per_split[:, used]).sum())
            if unwritten:
                error = Violation("uninitialized", f"the split kernel left {unwritten} workspace values unwritten")
                outcome.violation = _violation_report(error, kernel, None)
                return outcome
    return outcome


def compare(output: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
    """max_abs_err, rel_l2_err (NaN/inf excluded) and the count of non-finite outputs."""
    finite = np.isfinite(output)
    diff = np.where(finite, output - expected, 0.0)
    norm = float(np.linalg.norm(expected))
    err = float(np.linalg.norm(diff))
    return {"max_abs_err": float(np.abs(diff).max(initial=0.0)),
            "rel_l2_err": err / norm if norm else (0.0 if err == 0 else float("inf")),
            "non_finite": int((~finite).sum())}


def compare_lse(lse: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
    """lse_max_abs_err over the finite expected values, and lse_mismatched: rows whose value is NaN
    (unwritten) or whose -inf (no key, no sink) disagrees with the expected one."""
    finite = np.isfinite(expected)
    mismatched = np.isnan(lse) | (np.isneginf(lse) != np.isneginf(expected))
    both = finite & np.isfinite(lse)
    err = np.abs(np.where(both, lse, 0.0) - np.where(both, expected, 0.0))
    return {"lse_max_abs_err": float(err.max(initial=0.0)), "lse_mismatched": int(mismatched.sum())}


def check(ir_text: str, config: KernelConfig, sizes: Sizes, precision: str = "device", seed: int = 0,
          allow_bank_conflicts: bool = False, sink_value: Optional[float] = None) -> dict:
    """Simulate the kernels of ``ir_text`` on one problem; the report :mod:`gpusim.cli` prints.

    The kernels are designed free of shared-memory bank conflicts (swizzled or
    padded tiles), so a conflict fails the check unless ``allow_bank_conflicts``.

    Raises :class:`~gpusim.backend.UnsupportedIR` or :class:`~gpusim.ir.ParseError`
    when the IR is beyond what the simulator models, :class:`LaunchError` when
    ``sizes.num_splits`` breaks the launch contract of the split kernel.
    """
    start = time.perf_counter()
    kernels = load_kernels(ir_text)
    for kernel in kernels:
        if kernel.role == "split":
            sizes.validate_splits(kernel.block_n)
    inputs = make_inputs(config, sizes, seed, sink_value)
    outcome = simulate(kernels, config, sizes, inputs, Numerics(exact=precision == "exact"), seed)
    options = dict(window=config.window, kv_lens=sizes.kv_lens if config.kv_lens else None, softcap=config.softcap or None, scale=config.scale,
                   sinks=inputs.get("sinks"), return_lse=config.lse)
    if config.varlen:
        out_shape = (sizes.total_q, config.q_heads, config.head_dim_v)
        packed = dict(cu_seqlens_k=sizes.cu_seqlens_k) if config.packed_kv else {}
        expected = reference.attention_varlen(inputs["q"], inputs["k"], inputs["v"], sizes.cu_seqlens_q,
                                              **packed, **options)
    else:
        out_shape = make_shape(config.layout, sizes.batch, config.q_heads, sizes.seq_q, config.head_dim_v)
        expected = reference.attention(inputs["q"], inputs["k"], inputs["v"], layout=config.layout, **options)
    expected, expected_lse = expected if config.lse else (expected, None)
    output, lse = outcome.output.reshape(out_shape), outcome.lse
    if config.varlen:  # only the rows the launch's max_seqlen_q covers
        kept = sizes.computed_tokens()
        output, expected = output[kept], expected[kept]
        if config.lse:
            lse, expected_lse = lse.reshape(expected_lse.shape)[:, kept], expected_lse[:, kept]
    errors = compare(output, expected)
    tolerance = EXACT_TOLERANCE if precision == "exact" else DEVICE_TOLERANCE[config.dtype]
    ok = (outcome.violation is None and (allow_bank_conflicts or outcome.stats["bank_conflicts"] == 0)
          and errors["non_finite"] == 0 and errors["rel_l2_err"] <= tolerance)
    if config.lse:
        errors.update(compare_lse(lse.reshape(expected_lse.shape), expected_lse))
        ok = ok and errors["lse_mismatched"] == 0 and errors["lse_max_abs_err"] <= LSE_TOLERANCE[precision]
    return {
        **errors, "tolerance": tolerance, "ok": ok, "violation": outcome.violation,
        "kernels": [k.name for k in launched(kernels, sizes.num_splits)], "ctas": outcome.stats["ctas"],
        "bank_conflicts": outcome.stats["bank_conflicts"],
        "counts": {key: outcome.stats[key] for key in ("ldmatrix", "mma", "cp_async", "shuffles", "barriers")},
        "sim_ms": round(1000 * (time.perf_counter() - start), 1),
    }
