"""The configuration a kernel is compiled for, its cache key and its compiler flags."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from numbers import Integral
from typing import Any, Optional, Sequence

from .dtypes import normalize_dtype
from .metadata import effective_window as _metadata_window
from .options import effective_window, mask_kind, normalize_softcap, resolve_scale
from .shapes import normalize_layout

#: Bump when the meaning of a cache key changes, so old cache entries are not reused.
CACHE_KEY_VERSION = 3

_CHIP = re.compile(r"^sm_\d+a?$")
#: Relative tolerance when comparing float options with a kernel's metadata.
_FLOAT_RTOL = 1e-6


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _page_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"page_size must be an int >= 0 (0 = contiguous K/V), got {value!r}")
    return int(value)


def _is_default_scale(scale: float, head_dim: int) -> bool:
    # A few ulps of slack: 1/sqrt(D) and D**-0.5 differ in the last bit for some D.
    return math.isclose(scale, 1.0 / math.sqrt(head_dim), rel_tol=1e-12, abs_tol=0.0)


def _canonical_scale(scale: float, head_dim: int) -> float:
    """Snap a scale within a few ulps of 1/sqrt(D) to 1/sqrt(D), so both share a cache key."""
    return 1.0 / math.sqrt(head_dim) if _is_default_scale(scale, head_dim) else scale


@dataclass(frozen=True)
class KernelConfig:
    """What a kernel computes; everything the cache key and the compiler flags depend on.

    Build one with :meth:`create` (validates and normalises) or
    :meth:`from_metadata`.  ``window`` is the effective window (see
    :mod:`gqa.options`), ``scale`` is resolved, ``softcap`` is 0 for none.
    ``page_size`` is 0 for contiguous K/V, else the tokens per page of a paged
    KV cache (k and v are page pools read through a block table).
    """

    q_heads: int
    kv_heads: int
    head_dim: int
    head_dim_v: int
    dtype: str
    layout: str
    window: tuple[int, int]
    softcap: float
    scale: float
    kv_lens: bool
    chip: str
    page_size: int = 0
    #: Whether the kernel takes one attention-sink logit per query head.
    sinks: bool = False
    #: Whether the kernel also writes each row's log-sum-exp.
    lse: bool = False
    #: A ragged batch: q and out are packed tokens [T, Hq, D] split by cu_seqlens_q (layout bshd).
    varlen: bool = False
    #: With varlen: k and v are packed tokens [Tk, Hkv, D] split by cu_seqlens_k.
    packed_kv: bool = False

    @classmethod
    def create(
        cls,
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
    ) -> "KernelConfig":
        """Validate and normalise the options of a kernel (``ValueError``/``TypeError`` on bad input)."""
        q_heads = _positive_int("q_heads", q_heads)
        kv_heads = _positive_int("kv_heads", kv_heads)
        if q_heads % kv_heads:
            raise ValueError(f"q_heads ({q_heads}) must be a multiple of kv_heads ({kv_heads})")
        head_dim = _positive_int("head_dim", head_dim)
        head_dim_v = head_dim if head_dim_v is None else _positive_int("head_dim_v", head_dim_v)
        if packed_kv and not varlen:
            raise ValueError("packed_kv (cu_seqlens_k) needs varlen (cu_seqlens_q)")
        if varlen and normalize_layout(layout) != "bshd":
            raise ValueError(f"a ragged batch (varlen) has packed bshd tokens; layout must be 'bshd', got {layout!r}")
        if not isinstance(chip, str) or not _CHIP.match(chip):
            raise ValueError(f"chip must look like 'sm_90' or 'sm_80', got {chip!r}")
        return cls(
            q_heads=q_heads,
            kv_heads=kv_heads,
            head_dim=head_dim,
            head_dim_v=head_dim_v,
            dtype=normalize_dtype(dtype),
            layout=normalize_layout(layout),
            window=effective_window(bool(causal), window),
            softcap=normalize_softcap(softcap),
            scale=_canonical_scale(resolve_scale(scale, head_dim), head_dim),
            kv_lens=bool(kv_lens),
            chip=chip,
            page_size=_page_size(page_size),
            sinks=bool(sinks),
            lse=bool(lse),
            varlen=bool(varlen),
            packed_kv=bool(packed_kv),
        )

    @classmethod
    def from_metadata(cls, meta: dict) -> "KernelConfig":
        """The configuration a validated metadata dict describes."""
        cfg = meta["config"]
        return cls(
            q_heads=cfg["q_heads"],
            kv_heads=cfg["kv_heads"],
            head_dim=cfg["head_dim"],
            head_dim_v=cfg["head_dim_v"],
            dtype=cfg["dtype"],
            layout=cfg["layout"],
            window=_metadata_window(cfg),
            softcap=float(cfg["softcap"]),
            scale=float(cfg["scale"]),
            kv_lens=cfg["kv_lens"] != "none",
            chip=meta["chip"],
            page_size=cfg["page_size"],
            sinks=cfg["sinks"],
            lse=cfg["lse"],
            varlen=cfg["varlen"],
            packed_kv=cfg["packed_kv"],
        )

    @property
    def group_size(self) -> int:
        """g = Hq / Hkv."""
        return self.q_heads // self.kv_heads

    @property
    def mask(self) -> str:
        """``"none"``, ``"causal"`` or ``"window"``."""
        return mask_kind(self.window)

    @property
    def default_scale(self) -> bool:
        """Whether ``scale`` is the default ``1 / sqrt(head_dim)``."""
        return _is_default_scale(self.scale, self.head_dim)

    def key(self) -> str:
        """A readable, filesystem-safe cache key: a summary plus a hash of every field."""
        payload = json.dumps({"v": CACHE_KEY_VERSION, **asdict(self)}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        paged = f"-p{self.page_size}" if self.page_size else ""
        paged += "-sinks" if self.sinks else ""
        paged += "-lse" if self.lse else ""
        paged += "-varlen" if self.varlen else ""
        paged += "-packedkv" if self.packed_kv else ""
        return (
            f"hq{self.q_heads}-hkv{self.kv_heads}-d{self.head_dim}-dv{self.head_dim_v}-"
            f"{self.dtype}-{self.layout}-{self.mask}{paged}-{self.chip}-{digest}"
        )

    def compiler_args(self) -> list[str]:
        """The gqa-compile flags for this configuration (without ``-o``)."""
        args = [
            "--q-heads", str(self.q_heads),
            "--kv-heads", str(self.kv_heads),
            "--head-dim", str(self.head_dim),
        ]
        if self.head_dim_v != self.head_dim:
            args += ["--head-dim-v", str(self.head_dim_v)]
        args += ["--dtype", self.dtype, "--layout", self.layout]
        if self.mask == "causal":
            args.append("--causal")
        elif self.mask == "window":
            args += ["--window", f"{self.window[0]},{self.window[1]}"]
        if self.softcap:
            args += ["--softcap", repr(self.softcap)]
        if not self.default_scale:
            args += ["--scale", repr(self.scale)]
        if self.kv_lens:
            args.append("--kv-lens")
        if self.page_size:
            args += ["--page-size", str(self.page_size)]
        if self.sinks:
            args.append("--sinks")
        if self.lse:
            args.append("--return-lse")
        if self.varlen:
            args.append("--varlen")
        if self.packed_kv:
            args.append("--packed-kv")
        args += ["--chip", self.chip]
        return args

    def mismatches(self, other: Any) -> list[str]:
        """Human-readable differences between this (requested) config and ``other`` (a kernel's).

        Floats compare with a relative tolerance of 1e-6; a kernel for
        ``sm_90a`` serves a request for ``sm_90``.
        """
        if not isinstance(other, KernelConfig):
            return [f"kind: requested an attention kernel, got {type(other).__name__} {other.key()!r}"]
        out = []
        for field in ("q_heads", "kv_heads", "head_dim", "head_dim_v", "dtype", "layout", "window", "kv_lens",
                      "page_size", "sinks", "lse", "varlen",
                      "packed_kv"):
            want, got = getattr(self, field), getattr(other, field)
            if want != got:
                out.append(f"{field}: requested {want!r}, kernel has {got!r}")
        for field in ("scale", "softcap"):
            want, got = getattr(self, field), getattr(other, field)
            if not math.isclose(want, got, rel_tol=_FLOAT_RTOL, abs_tol=0.0):
                out.append(f"{field}: requested {want!r}, kernel has {got!r}")
        return out + _chip_mismatch(self.chip, other.chip)


def _chip_mismatch(want: str, got: str) -> list[str]:
    """A kernel for ``sm_90a`` serves a request for ``sm_90``."""
    return [] if got in (want, want + "a") else [f"chip: requested {want!r}, kernel has {got!r}"]


#: Bump when the meaning of a merge_states cache key changes.
MERGE_CACHE_KEY_VERSION = 1


@dataclass(frozen=True)
class MergeConfig:
    """What a merge_states kernel computes (docs/kernel-metadata.md, "gqa.merge_states").

    The merge of two partial attention results over disjoint keys by their
    log-sum-exps: outputs ``[B, heads, S, head_dim_v]`` in ``layout`` (or,
    with ``varlen``, packed tokens ``[T, heads, head_dim_v]`` with
    log-sum-exps ``[heads, T]``, layout ``bshd``) of element type ``dtype``;
    the log-sum-exps are float32.  Build one with :meth:`create`.
    """

    heads: int
    head_dim_v: int
    dtype: str
    layout: str
    varlen: bool
    chip: str

    @classmethod
    def create(cls, heads: int, head_dim_v: int, *, dtype: Any = "bf16", layout: str = "bhsd",
               varlen: bool = False, chip: str = "sm_90") -> "MergeConfig":
        """Validate and normalise (``ValueError``/``TypeError`` on bad input)."""
        heads = _positive_int("heads", heads)
        head_dim_v = _positive_int("head_dim_v", head_dim_v)
        layout = normalize_layout(layout)
        if varlen and layout != "bshd":
            raise ValueError(f"varlen merges packed bshd tokens; layout must be 'bshd', got {layout!r}")
        if not isinstance(chip, str) or not _CHIP.match(chip):
            raise ValueError(f"chip must look like 'sm_90' or 'sm_80', got {chip!r}")
        return cls(heads=heads, head_dim_v=head_dim_v, dtype=normalize_dtype(dtype), layout=layout,
                   varlen=bool(varlen), chip=chip)

    @classmethod
    def from_metadata(cls, meta: dict) -> "MergeConfig":
        """The configuration a validated merge_states metadata dict describes."""
        cfg = meta["config"]
        return cls(heads=cfg["heads"], head_dim_v=cfg["head_dim_v"], dtype=cfg["dtype"], layout=cfg["layout"],
                   varlen=cfg["varlen"], chip=meta["chip"])

    def key(self) -> str:
        """A readable, filesystem-safe cache key: a summary plus a hash of every field."""
        payload = json.dumps({"v": MERGE_CACHE_KEY_VERSION, "kind": "merge_states", **asdict(self)}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        varlen = "-varlen" if self.varlen else ""
        return f"merge-h{self.heads}-dv{self.head_dim_v}-{self.dtype}-{self.layout}{varlen}-{self.chip}-{digest}"

    def mismatches(self, other: Any) -> list[str]:
        """Human-readable differences between this (requested) config and ``other`` (a kernel's)."""
        if not isinstance(other, MergeConfig):
            return [f"kind: requested a merge_states kernel, got {type(other).__name__} {other.key()!r}"]
        out = [f"{f}: requested {getattr(self, f)!r}, kernel has {getattr(other, f)!r}"
               for f in ("heads", "head_dim_v", "dtype", "layout", "varlen") if getattr(self, f) != getattr(other, f)]
        return out + _chip_mismatch(self.chip, other.chip)
