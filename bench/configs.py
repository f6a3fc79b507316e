"""The shape matrix of the GPU checks: one source of truth for prepare_kernels.py and device_check.py.

Two lists:

* :data:`CORRECTNESS`: :class:`CorrectnessCase` s, each one kernel (an :class:`Attrs`, the
  compile-time attributes) run at several runtime sizes (:class:`Shape`), compared with a float64
  reference.  They cover MHA / GQA / MQA (g = 1, 2, 4, 8, 64), decode, prefill, Sq < Skv and
  Sq > Skv, every mask kind, kv_lens, softcap, explicit scale, both layouts, head dims 64/128/256,
  Dv != D, paged KV caches, attention sinks and the log-sum-exp (LSE, checked row by row), ragged
  batches (varlen: prefill chunks, decode rows and empty sequences packed together, against a KV
  cache, pages, or packed K/V split by cu_seqlens_k), bf16 and f16
  (f32 is ``optional``: kept only where it compiles) and lengths that are no tile multiple.
* :data:`BENCHMARK`: :class:`BenchCase` s, the Llama-3-70B attention layer (64 Q / 8 KV heads,
  D 128, bf16) timed against PyTorch's attention backends (paged, sinks+LSE and varlen rows, paged or
  packed: ours only, next to the plain row of the same size).

Batch and sequence lengths are runtime values, so one kernel serves every size of a case, and the
benchmark kernels are among the correctness kernels (:func:`distinct_kernels` counts them).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))

import gqa  # noqa: E402
from gqa.config import KernelConfig  # noqa: E402
from gqa.dtypes import itemsize  # noqa: E402

CHIP = "sm_90"
#: Decode rows whose KV cache would exceed this many bytes are left out of the benchmark.
DECODE_MEMORY_CAP = 40_000_000_000
#: Relative L2 error allowed per dtype (‖out − ref‖ / ‖ref‖ against the float64 reference).
TOLERANCE = {"bf16": 1e-2, "f16": 2e-3, "f32": 1e-3}
#: Largest absolute error allowed in a row's LSE (natural log, float32 out of ex2/lg2.approx on the
#: GPU), over the rows whose reference LSE is finite; whatever the dtype (the reference reads the
#: same rounded inputs).
LSE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Attrs:
    """Compile-time attributes: one distinct set is one kernel (same arguments as :func:`gqa.compile`)."""

    q_heads: int
    kv_heads: int
    head_dim: int
    head_dim_v: Optional[int] = None
    dtype: str = "bf16"
    layout: str = "bshd"
    causal: bool = False
    window: Optional[tuple[int, int]] = None
    softcap: Optional[float] = None
    scale: Optional[float] = None
    kv_lens: bool = False
    #: Tokens per page of a paged KV cache (0: contiguous K/V); paged cases always pass kv_lens.
    page_size: int = 0
    #: One attention-sink logit per query head (float32 [Hq], drawn per input set).
    sinks: bool = False
    #: The kernel also writes each row's log-sum-exp (float32 [B, Hq, Sq]), checked row by row.
    lse: bool = False
    #: A ragged batch (flash_attn's varlen, bshd only): q and out are packed tokens [T, Hq, D] split by
    #: cu_seqlens_q (the shapes give ``q_lens``), K/V a cache [B, Skv, Hkv, D] (or page pools); the LSE is
    #: [Hq, T].
    varlen: bool = False
    #: With varlen: K/V are packed tokens [Tk, Hkv, D] too, sequence b's keys rows cu_seqlens_k[b] to
    #: cu_seqlens_k[b+1] (flash_attn_varlen_func); the shapes' ``kv_lens`` give each sequence's key count
    #: (the segments: Tk = their sum, ``seq_kv`` = max_seqlen_k the longest).  No kv_lens (seqused_k) and
    #: no pages with it.
    packed_kv: bool = False

    @property
    def dv(self) -> int:
        """The value head dim Dv."""
        return self.head_dim if self.head_dim_v is None else self.head_dim_v

    @property
    def group_size(self) -> int:
        """g = Hq / Hkv."""
        return self.q_heads // self.kv_heads

    def compile_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`gqa.compile` (and, less the head counts, of :func:`gqa.attention`)."""
        return dict(
            head_dim_v=self.head_dim_v, dtype=self.dtype, layout=self.layout, causal=self.causal,
            window=self.window, softcap=self.softcap, scale=self.scale, kv_lens=self.kv_lens,
            page_size=self.page_size, sinks=self.sinks, lse=self.lse, varlen=self.varlen, packed_kv=self.packed_kv,
        )

    def attention_kwargs(self) -> dict[str, Any]:
        """The mask/scale options of :func:`gqa.attention` and :func:`gqa.reference.attention` (the sinks,
        the LSE and a ragged batch's offsets are tensors, passed by the caller)."""
        return dict(layout=self.layout, causal=self.causal, window=self.window,
                    softcap=self.softcap, scale=self.scale)

    def kernel_config(self, chip: str = CHIP) -> KernelConfig:
        """The normalised configuration (validates the attributes)."""
        return KernelConfig.create(self.q_heads, self.kv_heads, self.head_dim, chip=chip,
                                   **self.compile_kwargs())

    def key(self, chip: str = CHIP) -> str:
        """The kernel cache key: equal keys mean one kernel."""
        return self.kernel_config(chip).key()

    @property
    def is_causal(self) -> bool:
        """Whether the effective mask is exactly causal (the FLOP convention halves only that one)."""
        return self.kernel_config().mask == "causal"

    def label(self) -> str:
        """A short human-readable description, e.g. ``hq64/hkv8 d128 bf16 bshd causal sinks lse``."""
        cfg = self.kernel_config()
        parts = [f"hq{self.q_heads}/hkv{self.kv_heads}", f"d{self.head_dim}"]
        if self.dv != self.head_dim:
            parts[-1] += f"/dv{self.dv}"
        parts += [self.dtype, self.layout, cfg.mask if cfg.mask != "window" else f"win{cfg.window}"]
        if cfg.softcap:
            parts.append(f"cap{cfg.softcap:g}")
        if not cfg.default_scale:
            parts.append(f"scale{cfg.scale:g}")
        if self.kv_lens:
            parts.append("kv_lens")
        if self.page_size:
            parts.append(f"paged{self.page_size}")
        if self.sinks:
            parts.append("sinks")
        if self.lse:
            parts.append("lse")
        if self.varlen:
            parts.append("varlen")
        if self.packed_kv:
            parts.append("packedkv")
        return " ".join(parts)


@dataclass(frozen=True)
class Shape:
    """Runtime sizes of one launch; ``kv_lens`` (one length per batch) iff the kernel takes them.

    ``q_lens`` (one query count per sequence, 0 for an empty one) iff the kernel is varlen: a ragged
    batch of ``sum(q_lens)`` packed tokens whose longest sequence is ``seq_q`` (max_seqlen_q), against
    a KV cache of ``seq_kv`` keys per sequence, or, with packed K/V, against ``sum(kv_lens)`` packed
    keys, ``kv_lens`` each sequence's segment and ``seq_kv`` the longest (max_seqlen_k).
    """

    batch: int
    seq_q: int
    seq_kv: int
    kv_lens: Optional[tuple[int, ...]] = None
    q_lens: Optional[tuple[int, ...]] = None

    @property
    def tokens(self) -> int:
        """Query rows in all: the packed tokens of a ragged batch, else batch x seq_q."""
        return sum(self.q_lens) if self.q_lens is not None else self.batch * self.seq_q

    def sequences(self) -> list[tuple[int, int]]:
        """(queries, keys) of each sequence: ``q_lens`` and ``kv_lens`` where given, else seq_q and seq_kv."""
        queries = self.q_lens if self.q_lens is not None else (self.seq_q,) * self.batch
        keys = self.kv_lens if self.kv_lens is not None else (self.seq_kv,) * self.batch
        return list(zip(queries, keys))

    def label(self) -> str:
        """E.g. ``B2 Sq17 Skv1000`` (plus the q_lens and the kv_lens, runs of 3 or more written ``1*31``)."""
        text = f"B{self.batch} Sq{self.seq_q} Skv{self.seq_kv}"
        text += f" q_lens{_runs(self.q_lens)}" if self.q_lens is not None else ""
        return text + (f" lens{_runs(self.kv_lens)}" if self.kv_lens is not None else "")


def _runs(values: tuple[int, ...]) -> str:
    """``[512, 1*31]`` for (512, 1, ..., 1): a run of 3 or more equal values as value*count."""
    parts = []
    for value, run in itertools.groupby(values):
        count = len(list(run))
        parts += [f"{value}*{count}"] if count >= 3 else [str(value)] * count
    return "[" + ", ".join(parts) + "]"


def kv_tokens(attrs: Attrs, shape: Shape) -> int:
    """Rows of K (and of V): packed K/V's ``sum(kv_lens)``, else the whole cache, batch x seq_kv."""
    return sum(shape.kv_lens) if attrs.packed_kv else shape.batch * shape.seq_kv


def tensor_bytes(attrs: Attrs, shape: Shape) -> int:
    """Bytes of q, k, v and out together (one input set plus its output; K/V: the whole cache, or the
    packed keys)."""
    q = shape.tokens * attrs.q_heads * attrs.head_dim
    k = kv_tokens(attrs, shape) * attrs.kv_heads * attrs.head_dim
    v = kv_tokens(attrs, shape) * attrs.kv_heads * attrs.dv
    out = shape.tokens * attrs.q_heads * attrs.dv
    return (q + k + v + out) * itemsize(attrs.dtype)


@dataclass(frozen=True)
class CorrectnessCase:
    """One kernel checked at several sizes.  ``optional``: dropped (not failed) where it does not compile."""

    name: str
    attrs: Attrs
    shapes: tuple[Shape, ...]
    #: Standard deviation of q's random entries (larger makes a softcap bite).
    q_std: float = 1.0
    optional: bool = False

    @property
    def tolerance(self) -> float:
        """The relative L2 error this dtype may have."""
        return TOLERANCE[self.attrs.dtype]


@dataclass(frozen=True)
class BenchCase:
    """One timed row: ``phase`` is ``prefill`` (compute-bound, TFLOP/s) or ``decode`` (memory, GB/s)."""

    name: str
    phase: str
    attrs: Attrs
    shape: Shape

    @property
    def flops(self) -> int:
        """REFERENCE §1 FLOPs (causal counted per the formula), via :func:`gqa.attention_flops`, summed
        over the sequences (a ragged batch's each have their own query and key counts)."""
        a = self.attrs
        return sum(gqa.attention_flops(1, a.q_heads, queries, keys, a.head_dim, a.dv, causal=a.is_causal)
                   for queries, keys in self.shape.sequences() if queries and keys)

    @property
    def min_bytes(self) -> int:
        """The decode floor: every KV head of each sequence with queries read once
        (:func:`gqa.decode_min_bytes`)."""
        a = self.attrs
        return sum(gqa.decode_min_bytes(1, a.kv_heads, keys, a.head_dim, a.dv, a.dtype)
                   for queries, keys in self.shape.sequences() if queries and keys)

    @property
    def io_bytes(self) -> int:
        """q, k, v and out: the memory one input set takes."""
        return tensor_bytes(self.attrs, self.shape)


# ------------------------------------------------------------------------------------ correctness

#: (Hq, Hkv): MHA g=1, GQA g=2, 4, 8 (Llama-3-70B), MQA g=64.
HEAD_GROUPS: tuple[tuple[int, int], ...] = ((8, 8), (8, 4), (8, 2), (64, 8), (64, 1))

DECODE = (Shape(3, 1, 1000), Shape(2, 1, 4097))
PREFILL = (Shape(2, 129, 129), Shape(1, 1000, 1000))
CHUNKED = (Shape(2, 17, 1000), Shape(1, 129, 4097))  # Sq < Skv: bottom-right alignment
EDGES = (Shape(1, 1, 1), Shape(1, 17, 17), Shape(1, 129, 17))  # Sq > Skv: causal rows fully masked
ALL_SIZES = DECODE + PREFILL + CHUNKED + EDGES
#: A shorter set for the cases that test one feature.
FEATURE_SIZES = (Shape(3, 1, 1000), Shape(2, 129, 129), Shape(2, 17, 1000), Shape(1, 1000, 1000))
#: Window cases need keys well beyond the window.
WINDOW_SIZES = (Shape(3, 1, 1000), Shape(1, 1000, 1000), Shape(1, 129, 4097), Shape(2, 17, 1000))
#: kv_lens: 0 (every row masked), 1, shorter than Sq (causal rows masked), full.
KV_LENS_SIZES = (
    Shape(4, 1, 1000, (1000, 0, 1, 517)),
    Shape(4, 17, 1000, (1000, 5, 17, 900)),
    Shape(3, 129, 4097, (4097, 129, 2000)),
    Shape(2, 1000, 1000, (1000, 333)),
)
#: The Llama-3-70B kernels also run one long prefill (the benchmark's kernels).
L70B_EXTRA = (Shape(1, 4097, 4097),)
#: Ragged batches (varlen) against a KV cache: a prefill chunk against a long cache, decode rows
#: (q_len 1), an empty sequence (q_len 0) whose cache holds keys, a decode row with no key (O = 0, LSE
#: the sink or -inf), a whole prefill, a chunk longer than its keys (causal rows with no key), an empty
#: first sequence, and decodes against 4K keys (split-KV).
VARLEN_SIZES = (
    Shape(5, 129, 1000, (1000, 517, 300, 129, 0), q_lens=(17, 1, 0, 129, 1)),
    Shape(4, 64, 4097, (4097, 2000, 4097, 3), q_lens=(1, 64, 0, 1)),
    Shape(3, 40, 50, (50, 17, 3), q_lens=(0, 40, 3)),
)
#: Ragged batches with packed K/V (cu_seqlens_k; the kv_lens are the segments): the sizes above, and a
#: first sequence's decode row with no key (an empty first segment), an empty sequence with no key
#: either, a split-KV decode, a chunk and a decode of one key.
VARLEN_PACKED_SIZES = VARLEN_SIZES + (Shape(5, 33, 4097, (0, 4097, 0, 65, 1), q_lens=(1, 1, 0, 33, 1)),)
#: The varlen benchmark rows' step, (sequences, keys cached each, queries of the prefill chunk): see
#: :func:`varlen_mix`; its kernel is checked at this size too.
VARLEN_MIX = (32, 8192, 512)


def varlen_mix(batch: int, seq_kv: int, chunk: int) -> Shape:
    """A vLLM-like step as one ragged batch: a prefill chunk of ``chunk`` queries and ``batch - 1`` decode
    rows, every sequence with ``seq_kv`` keys cached (its new tokens among them)."""
    return Shape(batch, chunk, seq_kv, (seq_kv,) * batch, q_lens=(chunk,) + (1,) * (batch - 1))


def l70b(layout: str = "bshd", causal: bool = False) -> Attrs:
    """The Llama-3-70B attention layer: 64 Q heads, 8 KV heads, D 128, bf16."""
    return Attrs(64, 8, 128, dtype="bf16", layout=layout, causal=causal)


def _head_group_cases() -> list[CorrectnessCase]:
    cases = []
    for hq, hkv in HEAD_GROUPS:
        for causal in (False, True):
            attrs = Attrs(hq, hkv, 128, causal=causal)
            sizes = ALL_SIZES + (L70B_EXTRA if (hq, hkv) == (64, 8) else ())
            cases.append(CorrectnessCase(f"g{hq // hkv}-{'causal' if causal else 'none'}", attrs, sizes))
    return cases


def _feature_cases() -> list[CorrectnessCase]:
    f = FEATURE_SIZES
    return [
        CorrectnessCase("l70b-bhsd-none", l70b("bhsd"), ALL_SIZES + L70B_EXTRA),
        CorrectnessCase("l70b-bhsd-causal", l70b("bhsd", True), ALL_SIZES + L70B_EXTRA),
        CorrectnessCase("f16-d64-bhsd-causal", Attrs(8, 2, 64, dtype="f16", layout="bhsd", causal=True), f),
        CorrectnessCase("f16-l70b-none", Attrs(64, 8, 128, dtype="f16"), f),
        CorrectnessCase("f16-d256-mha-bhsd", Attrs(8, 8, 256, dtype="f16", layout="bhsd"), f),
        CorrectnessCase("d64-causal", Attrs(8, 2, 64, causal=True), f),
        CorrectnessCase("d256-causal", Attrs(16, 2, 256, causal=True), f),
        CorrectnessCase("dv64-bhsd", Attrs(8, 2, 128, head_dim_v=64, layout="bhsd"), f),
        CorrectnessCase("f16-d64-dv128-mqa-causal", Attrs(8, 1, 64, head_dim_v=128, dtype="f16", causal=True), f),
        CorrectnessCase("window-sliding-128-0", Attrs(8, 2, 128, causal=True, window=(128, -1)), WINDOW_SIZES),
        CorrectnessCase("f16-window-32-16-bhsd", Attrs(8, 4, 64, dtype="f16", layout="bhsd", window=(32, 16)),
                        WINDOW_SIZES),
        CorrectnessCase("l70b-window-left-unbounded-right-8", Attrs(64, 8, 128, window=(-1, 8)), WINDOW_SIZES),
        CorrectnessCase("l70b-kvlens-causal", Attrs(64, 8, 128, causal=True, kv_lens=True), KV_LENS_SIZES),
        CorrectnessCase("f16-d64-kvlens-bhsd", Attrs(8, 2, 64, dtype="f16", layout="bhsd", kv_lens=True),
                        KV_LENS_SIZES),
        CorrectnessCase("kvlens-sliding-64-0", Attrs(8, 2, 128, window=(64, 0), kv_lens=True), KV_LENS_SIZES),
        CorrectnessCase("softcap30-causal", Attrs(8, 2, 128, causal=True, softcap=30.0), f, q_std=8.0),
        CorrectnessCase("softcap20-scale-d256-bhsd", Attrs(16, 2, 256, layout="bhsd", softcap=20.0, scale=0.1),
                        f, q_std=4.0),
        CorrectnessCase("scale0.3", Attrs(8, 2, 128, scale=0.3), f),
        # Paged KV caches (shuffled pages, spare pages NaN): vLLM's 16-token pages for the Llama
        # layer, one-token pages, and pages larger than a KV tile, prefill and decode.
        CorrectnessCase("l70b-paged16-kvlens", Attrs(64, 8, 128, kv_lens=True, page_size=16), KV_LENS_SIZES),
        # The kernel of the paged benchmark rows (whole pages, no kv_lens).
        CorrectnessCase("l70b-paged16", Attrs(64, 8, 128, page_size=16),
                        (Shape(3, 1, 1024), Shape(2, 1, 8192), Shape(2, 17, 4096), Shape(1, 129, 1024))),
        CorrectnessCase("f16-d64-paged1-causal-bhsd",
                        Attrs(8, 2, 64, dtype="f16", layout="bhsd", causal=True, kv_lens=True, page_size=1),
                        KV_LENS_SIZES[:2]),
        CorrectnessCase("d256-paged256-window", Attrs(16, 2, 256, window=(300, 0), kv_lens=True, page_size=256),
                        KV_LENS_SIZES),
        # Attention sinks (random per head, some outweighing the keys) and the LSE, checked row by row:
        # kv_len 0 and Sq > Skv give rows with no key (O = 0, LSE = the sink, or -inf without sinks);
        # long decodes go through split-KV, whose combine kernel joins the sink and merges the LSE.
        CorrectnessCase("l70b-sinks-lse-kvlens", Attrs(64, 8, 128, kv_lens=True, sinks=True, lse=True),
                        KV_LENS_SIZES),
        # The kernels of the sinks+LSE benchmark rows, at their sizes too.
        CorrectnessCase("l70b-sinks-lse", Attrs(64, 8, 128, sinks=True, lse=True),
                        DECODE + CHUNKED[:1] + (Shape(8, 1, 32768),)),
        CorrectnessCase("l70b-sinks-lse-causal", Attrs(64, 8, 128, causal=True, sinks=True, lse=True),
                        PREFILL + CHUNKED + EDGES[2:] + L70B_EXTRA),
        CorrectnessCase("d64-sinks-causal-bhsd", Attrs(8, 2, 64, layout="bhsd", causal=True, sinks=True), f),
        CorrectnessCase("l70b-paged16-lse", Attrs(64, 8, 128, kv_lens=True, page_size=16, lse=True),
                        KV_LENS_SIZES[:2]),
        CorrectnessCase("f16-softcap30-sinks-lse-causal",
                        Attrs(8, 2, 128, dtype="f16", causal=True, softcap=30.0, sinks=True, lse=True), f, q_std=8.0),
        # Ragged batches (varlen: prefill chunks, decode rows and empty sequences in one launch) against
        # a KV cache read through kv_lens and against vLLM's 16-token pages, for the Llama layer and a
        # small f16 one, each once with sinks+LSE (LSE [Hq, T]). The paged Llama kernel is the varlen
        # benchmark row's, checked at its size too.
        CorrectnessCase("l70b-varlen-kvlens-sinks-lse-causal",
                        Attrs(64, 8, 128, causal=True, kv_lens=True, sinks=True, lse=True, varlen=True), VARLEN_SIZES),
        CorrectnessCase("l70b-varlen-paged16-causal", Attrs(64, 8, 128, causal=True, kv_lens=True, page_size=16,
                                                             varlen=True),
                        VARLEN_SIZES + (varlen_mix(8, 2048, 512), varlen_mix(*VARLEN_MIX))),
        CorrectnessCase("f16-d64-varlen-kvlens-causal",
                        Attrs(8, 2, 64, dtype="f16", causal=True, kv_lens=True, varlen=True), VARLEN_SIZES),
        CorrectnessCase("f16-d64-varlen-paged16-sinks-lse-causal",
                        Attrs(8, 2, 64, dtype="f16", causal=True, kv_lens=True, page_size=16, sinks=True, lse=True,
                              varlen=True), VARLEN_SIZES),
        # Ragged batches with packed K/V (flash_attn_varlen_func's cu_seqlens_k, no kv_lens): the Llama layer
        # with sinks+LSE and without (the packed varlen benchmark row's kernel, checked at its size too),
        # and a small f16 one with the LSE alone (-inf for a row with no key).
        CorrectnessCase("l70b-varlen-packedkv-sinks-lse-causal",
                        Attrs(64, 8, 128, causal=True, sinks=True, lse=True, varlen=True, packed_kv=True),
                        VARLEN_PACKED_SIZES),
        CorrectnessCase("l70b-varlen-packedkv-causal", Attrs(64, 8, 128, causal=True, varlen=True, packed_kv=True),
                        VARLEN_PACKED_SIZES + (varlen_mix(8, 2048, 512), varlen_mix(*VARLEN_MIX))),
        CorrectnessCase("f16-d64-varlen-packedkv-lse-causal",
                        Attrs(8, 2, 64, dtype="f16", causal=True, lse=True, varlen=True, packed_kv=True),
                        VARLEN_PACKED_SIZES),
        CorrectnessCase("f32-d64-bhsd-causal", Attrs(8, 2, 64, dtype="f32", layout="bhsd", causal=True), f,
                        optional=True),
        CorrectnessCase("f32-mha", Attrs(8, 8, 128, dtype="f32"), f, optional=True),
        CorrectnessCase("f32-d64-sinks-lse-kvlens", Attrs(8, 2, 64, dtype="f32", kv_lens=True, sinks=True, lse=True),
                        KV_LENS_SIZES[:2], optional=True),
    ]


CORRECTNESS: tuple[CorrectnessCase, ...] = tuple(_head_group_cases() + _feature_cases())

#: Sizes at which the GPU float64 reference (torch) is cross-checked against gqa.reference (numpy,
#: CPU) for every case's attributes, on random inputs: it proves the reference itself, so it needs no
#: compiled kernel.  Small on purpose; Skv = 200 exceeds every window in the matrix, Sq > Skv masks
#: whole causal rows, and the kv_lens include 0 and lengths below Sq.
REFERENCE_CHECK_SIZES = (Shape(2, 17, 200), Shape(1, 40, 17))
REFERENCE_CHECK_SIZES_KV_LENS = (Shape(4, 17, 200, (200, 0, 5, 150)), Shape(1, 40, 17, (9,)))
#: Ragged batches (against gqa.reference.attention_varlen): an empty sequence, decode rows (one with
#: no key), a chunk longer than its keys (without kv_lens each sequence sees the whole cache).
REFERENCE_CHECK_SIZES_VARLEN = (Shape(5, 17, 200, (200, 0, 5, 150, 30), q_lens=(17, 1, 0, 3, 1)),
                                Shape(2, 40, 17, (9, 17), q_lens=(40, 0)))
#: The largest relative L2 difference allowed between the two float64 references.
REFERENCE_CHECK_TOLERANCE = 1e-10


def reference_check_shapes(attrs: Attrs) -> tuple[Shape, ...]:
    """The sizes at which the torch reference is compared with the numpy one for ``attrs``."""
    if attrs.varlen:  # packed K/V: the kv_lens are the segments (each the longest, seq_kv, at most)
        keep = attrs.kv_lens or attrs.packed_kv
        return tuple(s if keep else replace(s, kv_lens=None) for s in REFERENCE_CHECK_SIZES_VARLEN)
    return REFERENCE_CHECK_SIZES_KV_LENS if attrs.kv_lens else REFERENCE_CHECK_SIZES


# -------------------------------------------------------------------------------------- benchmark

PREFILL_BATCHES = (1, 2, 4)
PREFILL_SEQS = (1024, 2048, 4096, 8192, 16384)
DECODE_BATCHES = (1, 8, 32, 64)
DECODE_SEQS = (1024, 8192, 32768, 131072)
#: bhsd rows (SDPA's own layout; the peers get contiguous bhsd there): a few, to see whether layout matters.
BHSD_PREFILL = ((2, 4096), (2, 16384))
BHSD_DECODE = ((32, 32768),)
#: Decode against a paged cache (vLLM's 16-token pages, shuffled): compared with the contiguous
#: rows of the same size (the peers read contiguous K/V only).
PAGED_DECODE = ((1, 131072), (8, 32768), (64, 8192))
PAGE_SIZE = 16
#: Plain rows timed again with attention sinks and the LSE (GPT-OSS-style), named with
#: :data:`SINKS_LSE_SUFFIX`: compared with the plain row (the peers have neither).
SINKS_LSE_ROWS = ("decode bshd B8 Skv32K", "prefill bshd B1 S4K causal")
SINKS_LSE_SUFFIX = " sinks+lse"
#: The varlen rows (:data:`VARLEN_MIX`: one prefill chunk of 512 and 31 decode rows, 8K keys each, causal),
#: on vLLM's 16-token pages or with K/V packed by sequence (cu_seqlens_k), are named after the plain
#: decode row of the same batch and cache with these suffixes: compared with it (the peers take no
#: ragged batches).
VARLEN_MIX_SUFFIX = " varlen mix"
VARLEN_PACKED_SUFFIX = " varlen mix packedkv"


def _kilo(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def _decode_name(layout: str, batch: int, seq_kv: int) -> str:
    return f"decode {layout} B{batch} Skv{_kilo(seq_kv)}"


def plain_row_name(name: str) -> str:
    """The plain row a sinks+LSE or varlen row is named after (``name`` itself for any other row)."""
    for suffix in (SINKS_LSE_SUFFIX, VARLEN_MIX_SUFFIX, VARLEN_PACKED_SUFFIX):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def prefill_cases(layout: str = "bshd", sizes: Optional[Iterable[tuple[int, int]]] = None) -> list[BenchCase]:
    """Prefill (Sq = Skv) rows, causal and not."""
    pairs = list(sizes) if sizes is not None else [(b, s) for b in PREFILL_BATCHES for s in PREFILL_SEQS]
    out = []
    for b, s in pairs:
        for causal in (True, False):
            name = f"prefill {layout} B{b} S{_kilo(s)} {'causal' if causal else 'full'}"
            out.append(BenchCase(name, "prefill", l70b(layout, causal), Shape(b, s, s)))
    return out


def decode_cases(layout: str = "bshd", sizes: Optional[Iterable[tuple[int, int]]] = None,
                 memory_cap: int = DECODE_MEMORY_CAP) -> list[BenchCase]:
    """Decode (Sq = 1) rows whose KV cache fits under ``memory_cap`` bytes.

    Non-causal: with Sq = 1 the bottom-right causal mask hides nothing, and PyTorch's ``is_causal``
    is aligned top-left (it would leave the query one key), so every implementation runs unmasked.
    """
    pairs = list(sizes) if sizes is not None else [(b, s) for b in DECODE_BATCHES for s in DECODE_SEQS]
    out = []
    for b, s in pairs:
        case = BenchCase(_decode_name(layout, b, s), "decode", l70b(layout), Shape(b, 1, s))
        if case.min_bytes <= memory_cap:
            out.append(case)
    return out


def paged_decode_cases(sizes: Iterable[tuple[int, int]] = PAGED_DECODE) -> list[BenchCase]:
    """Decode rows against a paged KV cache (Skv a whole number of pages, so no kv_lens)."""
    attrs = replace(l70b(), page_size=PAGE_SIZE)
    return [BenchCase(f"decode paged{PAGE_SIZE} bshd B{b} Skv{_kilo(s)}", "decode", attrs, Shape(b, 1, s))
            for b, s in sizes]


def sinks_lse_cases(plain: Iterable[BenchCase], names: Iterable[str] = SINKS_LSE_ROWS) -> list[BenchCase]:
    """The rows ``names`` of ``plain`` with attention sinks and the LSE (those the memory cap kept)."""
    by_name = {b.name: b for b in plain}
    return [replace(by_name[n], name=n + SINKS_LSE_SUFFIX, attrs=replace(by_name[n].attrs, sinks=True, lse=True))
            for n in names if n in by_name]


def varlen_mix_cases(plain: Iterable[BenchCase], mixes: Iterable[tuple[int, int, int]] = (VARLEN_MIX,),
                     packed_kv: bool = False) -> list[BenchCase]:
    """vLLM-like steps (:func:`varlen_mix`) as one ragged batch each, causal, on vLLM's 16-token pages read
    through kv_lens, or with ``packed_kv`` K/V packed by sequence (cu_seqlens_k): timed as decode (GB/s of
    the KV floor; the chunk's FLOPs count in the floor), named after the plain decode row of ``plain``
    with the same batch and cache (those the memory cap kept) and :data:`VARLEN_MIX_SUFFIX` or
    :data:`VARLEN_PACKED_SUFFIX`."""
    by_name = {b.name: b for b in plain}
    kv = dict(packed_kv=True) if packed_kv else dict(kv_lens=True, page_size=PAGE_SIZE)
    suffix = VARLEN_PACKED_SUFFIX if packed_kv else VARLEN_MIX_SUFFIX
    out = []
    for batch, seq_kv, chunk in mixes:
        name = _decode_name("bshd", batch, seq_kv)
        if name in by_name:
            attrs = replace(by_name[name].attrs, causal=True, varlen=True, **kv)
            out.append(BenchCase(name + suffix, "decode", attrs, varlen_mix(batch, seq_kv, chunk)))
    return out


def benchmark_cases(memory_cap: int = DECODE_MEMORY_CAP) -> list[BenchCase]:
    """The whole benchmark, in the order it runs: decode (cheap) first, paged, sinks+LSE and varlen (paged,
    packed) next (cheap rows), then prefill, then bhsd."""
    decode, prefill = decode_cases(memory_cap=memory_cap), prefill_cases()
    varlen = varlen_mix_cases(decode) + varlen_mix_cases(decode, packed_kv=True)
    return (decode + paged_decode_cases() + sinks_lse_cases(decode + prefill) + varlen + prefill
            + decode_cases("bhsd", BHSD_DECODE, memory_cap) + prefill_cases("bhsd", BHSD_PREFILL))


BENCHMARK: tuple[BenchCase, ...] = tuple(benchmark_cases())

#: Rows on which FlexAttention is timed too, in a last phase: each new shape costs a torch.compile
#: (tens of seconds), so only a few, and after everything else, where the time guard trims first.
FLEX_ROWS: tuple[str, ...] = (
    "prefill bshd B1 S16K causal", "prefill bshd B1 S16K full", "prefill bshd B4 S4K causal",
    "decode bshd B32 Skv32K",
)


# ----------------------------------------------------------------------------------------- kernels

@dataclass
class KernelUse:
    """One distinct kernel and what needs it."""

    attrs: Attrs
    users: list[str] = field(default_factory=list)
    optional: bool = True


def distinct_kernels(
    correctness: Iterable[CorrectnessCase] = CORRECTNESS,
    benchmark: Iterable[BenchCase] = BENCHMARK,
    chip: str = CHIP,
) -> dict[str, KernelUse]:
    """The kernels both lists need, by cache key, in first-use order.

    A kernel is optional only if every case using it is (benchmark kernels are required).
    """
    kernels: dict[str, KernelUse] = {}

    def add(attrs: Attrs, user: str, optional: bool) -> None:
        use = kernels.setdefault(attrs.key(chip), KernelUse(attrs))
        use.users.append(user)
        use.optional = use.optional and optional

    for case in correctness:
        add(case.attrs, f"correctness:{case.name}", case.optional)
    for bench in benchmark:
        add(bench.attrs, f"benchmark:{bench.name}", False)
    return kernels


def with_shapes(case: CorrectnessCase, shapes: Iterable[Shape]) -> CorrectnessCase:
    """A copy of ``case`` at other sizes (for quick runs and tests)."""
    return replace(case, shapes=tuple(shapes))


def validate() -> list[str]:
    """Problems with the matrix (empty when well formed); the tests and both scripts call it."""
    problems = []
    names = [c.name for c in CORRECTNESS]
    if len(set(names)) != len(names):
        problems.append("duplicate correctness case names")
    bench_names = [b.name for b in BENCHMARK]
    if len(set(bench_names)) != len(bench_names):
        problems.append("duplicate benchmark names")
    for case in CORRECTNESS:
        try:
            case.attrs.kernel_config()
        except (TypeError, ValueError) as e:
            problems.append(f"{case.name}: {e}")
        for s in case.shapes:
            problems += [f"{case.name} {s.label()}: {p}" for p in _shape_problems(case.attrs, s)]
        if len(set(case.shapes)) != len(case.shapes):
            problems.append(f"{case.name}: duplicate shapes")
        for s in reference_check_shapes(case.attrs):
            problems += [f"{case.name} reference check {s.label()}: {p}" for p in _shape_problems(case.attrs, s)]
    for bench in BENCHMARK:
        problems += [f"{bench.name}: {p}" for p in _shape_problems(bench.attrs, bench.shape)]
        plain = plain_row_name(bench.name)
        if plain != bench.name and plain in bench_names:
            continue
        if bench.attrs.varlen:
            problems.append(f"{bench.name}: no plain row to compare with (the peers take no ragged batches)")
        elif bench.attrs.sinks or bench.attrs.lse:
            problems.append(f"{bench.name}: no plain row to compare with (the peers have no sinks or LSE)")
    problems += [f"FLEX_ROWS: no benchmark row {name!r}" for name in FLEX_ROWS if name not in bench_names]
    return problems


def _shape_problems(attrs: Attrs, shape: Shape) -> list[str]:
    out = []
    if min(shape.batch, shape.seq_q, shape.seq_kv) < 1:
        out.append("sizes must be >= 1")
    if (attrs.kv_lens or attrs.packed_kv) != (shape.kv_lens is not None):
        out.append("kv_lens given iff the kernel takes them (or packed K/V's segments)")
    if attrs.packed_kv:
        if attrs.kv_lens or attrs.page_size:
            out.append("packed K/V take neither kv_lens (seqused_k) nor pages")
        if shape.kv_lens is not None and max(shape.kv_lens, default=0) != shape.seq_kv:
            out.append("packed K/V: seq_kv must be the longest segment (max_seqlen_k)")
    if shape.kv_lens is not None:
        if len(shape.kv_lens) != shape.batch:
            out.append("one kv_len per batch")
        if any(not 0 <= n <= shape.seq_kv for n in shape.kv_lens):
            out.append("kv_lens must lie in [0, seq_kv]")
    if attrs.varlen != (shape.q_lens is not None):
        out.append("q_lens given iff the kernel is varlen")
    if shape.q_lens is not None:
        if len(shape.q_lens) != shape.batch:
            out.append("one q_len per sequence")
        if min(shape.q_lens, default=0) < 0 or max(shape.q_lens, default=0) != shape.seq_q:
            out.append("q_lens must lie in [0, seq_q], the longest equal to seq_q (max_seqlen_q)")
    return out
