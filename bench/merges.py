"""The merge kernel (``gqa.merge_states``) in the device check: its correctness cases and timed rows.

The kernel merges two partial attention results over disjoint keys by their log-sum-exps
(docs/kernel-metadata.md, "Merge kernel sets"; :func:`gqa.merge_attention_states`), as cascade
attention, context parallelism and vLLM's ``merge_attn_states`` do.  It is judged "two halves equal
the whole": each :class:`MergeCase` names an attention (its ``source``: causal, read through kv_lens,
perhaps a ragged batch) whose keys are split per sequence into a prefix that every query sees whole
(:func:`prefix_lens`) and a causal suffix; the float64 reference (bench/measure.py) gives each part's
output and LSE (rounded to the dtype and float32, as an attention kernel writes them), the GPU merges
them, and the merge is compared with the reference over all keys (merge_measure.py).  Rows where one
part has no key (LSE -inf) and rows where neither has (output 0, LSE -inf) come from the splits and
the sizes.

Each :class:`MergeBench` row times the kernel on random partial results against PyTorch's
elementwise merge of the same tensors (vLLM's ``merge_attn_states_torch`` ops), in GB/s of the bytes
read and written (:func:`merge_bytes`: two outputs and two LSEs in, one of each out).

Torch-free (the supervisor and prepare_kernels.py import it); configs.py holds the attention matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

import configs  # (puts python/ on sys.path)
from configs import CHIP, TOLERANCE, Attrs, KernelUse, Shape

import gqa  # noqa: E402
from gqa.dtypes import itemsize  # noqa: E402

#: The phase of a merge row (harness: GB/s of :func:`merge_bytes`, like a decode row's KV floor).
PHASE = "merge"


@dataclass(frozen=True)
class MergeAttrs:
    """A merge kernel's compile-time attributes (same arguments as :func:`gqa.compile_merge_states`)."""

    heads: int
    head_dim_v: int
    dtype: str = "bf16"
    layout: str = "bshd"
    #: flash_attn's packed shapes: outputs [T, H, Dv], LSEs [H, T] (bshd).
    varlen: bool = False

    @property
    def dv(self) -> int:
        return self.head_dim_v

    def compile_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`gqa.compile_merge_states` beside the heads and Dv."""
        return dict(dtype=self.dtype, layout=self.layout, varlen=self.varlen)

    def kernel_config(self, chip: str = CHIP) -> gqa.MergeConfig:
        """The normalised configuration (validates the attributes)."""
        return gqa.MergeConfig.create(self.heads, self.head_dim_v, chip=chip, **self.compile_kwargs())

    def key(self, chip: str = CHIP) -> str:
        """The kernel cache key (``merge-h64-dv128-bf16-bshd-sm_90-<hash>``)."""
        return self.kernel_config(chip).key()

    def label(self) -> str:
        """E.g. ``merge h64 dv128 bf16 bshd`` (``varlen`` appended for packed tokens)."""
        return f"merge h{self.heads} dv{self.head_dim_v} {self.dtype} {self.layout}" + (" varlen" if self.varlen else "")


def merge_attrs(source: Attrs) -> MergeAttrs:
    """The merge kernel of ``source``'s partial results: its query heads, Dv, dtype, layout and varlen."""
    return MergeAttrs(source.q_heads, source.dv, source.dtype, source.layout, source.varlen)


def prefix_lens(shape: Shape) -> tuple[int, ...]:
    """Each sequence's prefix length c (its keys ``[0, c)`` are the first part, ``[c, kv_len)`` the second).

    Every query of a causal sequence sees the whole prefix when ``c <= kv_len - q_len + 1`` (cascade
    attention's shared prefix); the suffix is causal on its own, bottom-right aligned as the whole.
    Sequence b takes, by ``b % 4``: that largest prefix (a decode row's suffix is then empty, and a
    chunk's first row sees only the prefix), none (the first part has no key), half of it, or one key.
    A sequence whose queries outnumber its keys gets none (its first rows see no key at all)."""
    queries = shape.q_lens if shape.q_lens is not None else (shape.seq_q,) * shape.batch
    out = []
    for b, (q, kv) in enumerate(zip(queries, shape.kv_lens)):
        most = max(0, kv - q + 1) if q else kv
        out.append((most, 0, most // 2, min(1, most))[b % 4])
    return tuple(out)


@dataclass(frozen=True)
class MergeCase:
    """One merge kernel checked at several sizes of its ``source`` attention (see the module docstring).

    ``in_place``: the merge writes into o1 (``out=o1``, as vLLM merges into the prefix output); else
    into a NaN-poisoned output of its own.  The LSE output is always NaN-poisoned memory of its own.
    """

    name: str
    source: Attrs
    shapes: tuple[Shape, ...]
    in_place: bool = False
    q_std: float = 1.0
    optional: bool = False

    @property
    def attrs(self) -> MergeAttrs:
        """The merge kernel (what its records' ``kernel`` column names)."""
        return merge_attrs(self.source)

    @property
    def tolerance(self) -> float:
        """The relative L2 error this dtype may have (as the attention cases)."""
        return TOLERANCE[self.source.dtype]

    def reference_check_shapes(self) -> tuple[Shape, ...]:
        """The small sizes at which the float64 halves, merged in float64, are checked against the whole."""
        return configs.reference_check_shapes(self.source)


def merge_bytes(attrs: MergeAttrs, batch: int, seq: int) -> int:
    """The floor: o1, o2, lse1, lse2 read once, out and out_lse written once (``seq`` rows per batch, or
    the packed tokens with batch 1)."""
    rows = batch * seq * attrs.heads
    return 3 * rows * attrs.head_dim_v * itemsize(attrs.dtype) + 3 * rows * 4


@dataclass(frozen=True)
class MergeBench:
    """One timed merge: ``shape.batch`` x ``shape.seq_q`` rows of every head (``seq_kv`` unused: 0)."""

    name: str
    attrs: MergeAttrs
    shape: Shape
    phase: str = PHASE

    @property
    def flops(self) -> int:
        """None counted: the merge is memory-bound (a few FLOPs per value)."""
        return 0

    @property
    def min_bytes(self) -> int:
        """:func:`merge_bytes`."""
        return merge_bytes(self.attrs, self.shape.batch, self.shape.seq_q)

    @property
    def io_bytes(self) -> int:
        """The memory one input set and its outputs take (the floor's bytes)."""
        return self.min_bytes


# ------------------------------------------------------------------------------------ the matrix

#: Odd batches and lengths: decode rows (kv_len 0: neither part has a key; 1 and 3 keys), chunks (one
#: shorter than its queries: rows with no key at all), a prefill whose prefix is one key, and a chunk
#: against 4K keys; by :func:`prefix_lens`, every kind of split appears in each.
MERGE_SIZES = (
    Shape(7, 1, 1000, (1000, 0, 517, 999, 3, 1000, 1)),
    Shape(3, 17, 1000, (1000, 5, 300)),
    Shape(2, 1000, 1000, (1000, 999)),
    Shape(1, 129, 4097, (4097,)),
)
#: The benchmark rows' sizes, as source attentions: 64 decode rows of 2K keys or fewer, and a 4K chunk
#: against a 2K prefix (the merge of the B64 S1 and B1 S4K rows).
MERGE_BENCH_SOURCES = (
    Shape(64, 1, 2048, tuple(2048 - 31 * b for b in range(64))),
    Shape(1, 4096, 6144, (6144,)),
)


def _l70b() -> Attrs:
    """The Llama-3-70B layer (64 Q heads, 8 KV heads, D 128, bf16, bshd), causal, through kv_lens."""
    return Attrs(64, 8, 128, causal=True, kv_lens=True)


MERGE_CASES: tuple[MergeCase, ...] = (
    MergeCase("merge-l70b-bshd", _l70b(), MERGE_SIZES + MERGE_BENCH_SOURCES),
    # Qwen2.5-0.5B-like: 14 heads of Dv 64 (8 rows per CTA: odd lengths leave a partial last CTA), f16, bhsd.
    MergeCase("merge-f16-h14-d64-bhsd", Attrs(14, 2, 64, dtype="f16", layout="bhsd", causal=True, kv_lens=True),
              MERGE_SIZES, q_std=2.0),
    # flash_attn's packed shapes (o [T, H, Dv], lse [H, T]): empty sequences, decode rows (one with no key),
    # chunks, a chunk longer than its keys, an empty first sequence.
    MergeCase("merge-l70b-varlen", replace(_l70b(), varlen=True), configs.VARLEN_SIZES),
    MergeCase("merge-l70b-bshd-inplace", _l70b(), MERGE_SIZES[:2] + MERGE_BENCH_SOURCES[:1], in_place=True),
)


def _kilo(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def merge_bench_cases(attrs: MergeAttrs = merge_attrs(_l70b()),
                      sizes: Iterable[tuple[int, int]] = ((64, 1), (1, 4096))) -> list[MergeBench]:
    """Merge rows ``merge bshd B<batch> S<seq>``: a decode step's (B64 S1: 3 MiB) and a 4K prefill chunk's
    (B1 S4K: 195 MiB)."""
    return [MergeBench(f"merge {attrs.layout} B{b} S{_kilo(s)}", attrs, Shape(b, s, 0)) for b, s in sizes]


MERGE_BENCHMARK: tuple[MergeBench, ...] = tuple(merge_bench_cases())


def distinct_kernels(cases: Iterable[MergeCase] = MERGE_CASES, benchmark: Iterable[MergeBench] = MERGE_BENCHMARK,
                     chip: str = CHIP) -> dict[str, KernelUse]:
    """The merge kernels, by cache key, in first-use order (benchmark kernels are required)."""
    kernels: dict[str, KernelUse] = {}
    for user, attrs, optional in ([(f"correctness:{c.name}", c.attrs, c.optional) for c in cases]
                                  + [(f"benchmark:{b.name}", b.attrs, False) for b in benchmark]):
        use = kernels.setdefault(attrs.key(chip), KernelUse(attrs))
        use.users.append(user)
        use.optional = use.optional and optional
    return kernels


def all_kernels(chip: str = CHIP) -> dict[str, KernelUse]:
    """Every kernel the device check needs: configs.py's attention kernels, then the merge kernels."""
    return {**configs.distinct_kernels(chip=chip), **distinct_kernels(chip=chip)}


def validate(cases: Iterable[MergeCase] = MERGE_CASES, benchmark: Iterable[MergeBench] = MERGE_BENCHMARK) -> list[str]:
    """Problems with the merge matrix (empty when well formed)."""
    cases, benchmark = list(cases), list(benchmark)
    problems = []
    names = [c.name for c in cases] + [b.name for b in benchmark]
    if len(set(names)) != len(names) or set(names) & {c.name for c in configs.CORRECTNESS}:
        problems.append("duplicate merge case or row names")
    for case in cases:
        a = case.source
        if not (a.is_causal and a.kv_lens) or a.window or a.page_size or a.packed_kv or a.sinks or a.lse:
            problems.append(f"{case.name}: the source attention must be causal through kv_lens (no window: every "
                            "query sees the whole prefix; no pages, packed K/V, sinks or LSE option: the reference "
                            "gives each part's LSE)")
        try:
            a.kernel_config()
            case.attrs.kernel_config()
        except (TypeError, ValueError) as e:
            problems.append(f"{case.name}: {e}")
        for s in case.shapes + case.reference_check_shapes():
            problems += [f"{case.name} {s.label()}: {p}" for p in configs._shape_problems(a, s)]
        if len(set(case.shapes)) != len(case.shapes):
            problems.append(f"{case.name}: duplicate shapes")
    for row in benchmark:
        if row.phase != PHASE or min(row.shape.batch, row.shape.seq_q) < 1 or row.attrs.varlen:
            problems.append(f"{row.name}: a merge row times a padded batch of batch x seq_q >= 1 rows")
    return problems


def describe_split(shape: Shape) -> str:
    """The prefix lengths of a size, e.g. ``prefix[984, 0, 0]`` (runs of 3 or more as value*count)."""
    return "prefix" + configs._runs(prefix_lens(shape))


__all__ = ["MERGE_BENCHMARK", "MERGE_CASES", "MergeAttrs", "MergeBench", "MergeCase", "all_kernels",
           "distinct_kernels", "merge_attrs", "merge_bytes", "prefix_lens", "validate"]
