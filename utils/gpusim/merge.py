"""The merge kernel (``gqa.merge_states``) end to end: "two halves equal the whole".

An attention configuration (the command line's shape flags) is split per
sequence at a prefix of its keys: the float64 reference gives the output and
log-sum-exp over the prefix (every query sees all of it: a cascade's shared
prefix) and over the rest (causal, aligned as the whole), written as an
attention kernel writes them (the output rounded to the dtype, the LSE to
float32); the merge kernel that ``convert-gqa-to-gpu`` emits for one
``gqa.merge_states`` merges them, lane by lane, into a NaN-poisoned output (or
into the first part's, in place), and the merge is compared with the reference
over all keys.  The default prefixes (:func:`default_prefix_lens`) give rows
where one part has no key (its LSE -inf) and, with a KV length of 0, rows that
neither part saw (output 0, LSE -inf, or the sink).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from gqa import dtypes, reference
from gqa.config import KernelConfig

from .backend import GlobalBuffer, Numerics
from .runner import (DEVICE_TOLERANCE, EXACT_TOLERANCE, LSE_TOLERANCE, LaunchError, Outcome, Sizes, compare,
                     compare_lse, launch, load_kernels, make_inputs)


@dataclass(frozen=True)
class MergeProblem:
    """One merge check: the ``source`` attention at ``sizes``, split at ``prefix_lens`` keys per sequence."""

    source: KernelConfig
    sizes: Sizes
    prefix_lens: tuple[int, ...]
    #: The merge writes into the first part's output (``out=out_a``, as vLLM merges into the prefix's).
    in_place: bool = False

    @property
    def query_lens(self) -> tuple[int, ...]:
        return self.sizes.q_lens if self.sizes.q_lens is not None else (self.sizes.seq_q,) * self.sizes.batch

    @property
    def kv_lens(self) -> tuple[int, ...]:
        return self.sizes.kv_lens if self.sizes.kv_lens is not None else (self.sizes.seq_kv,) * self.sizes.batch

    def symbols(self) -> dict[str, int]:
        """The merge kernel's sizes: ``batch`` and ``seq_q``, or one batch of T packed tokens."""
        if self.source.varlen:
            return {"batch": 1, "seq_q": self.sizes.total_q}
        return {"batch": self.sizes.batch, "seq_q": self.sizes.seq_q}


def largest_prefixes(config: KernelConfig, sizes: Sizes) -> tuple[int, ...]:
    """Per sequence, the longest prefix every query sees whole: all keys, or under the causal mask the
    first query's (``kv_len - q_len + 1``, none when the queries outnumber the keys)."""
    queries = sizes.q_lens if sizes.q_lens is not None else (sizes.seq_q,) * sizes.batch
    keys = sizes.kv_lens if sizes.kv_lens is not None else (sizes.seq_kv,) * sizes.batch
    causal = config.mask == "causal"
    return tuple(max(0, kv - q + 1) if causal and q else kv for q, kv in zip(queries, keys))


def default_prefix_lens(config: KernelConfig, sizes: Sizes) -> tuple[int, ...]:
    """Sequence b's prefix by ``b % 4``: the largest (a decode row's second part is then empty), none
    (the first part has no key), half of it, or one key."""
    return tuple((most, 0, most // 2, min(1, most))[b % 4]
                 for b, most in enumerate(largest_prefixes(config, sizes)))


def validate(config: KernelConfig, sizes: Sizes, prefix_lens: tuple[int, ...]) -> None:
    """Raise :class:`LaunchError` for a split the check cannot judge."""
    if config.mask == "window":
        raise LaunchError("--merge-states splits a causal or unmasked attention: a sliding window hides "
                          "part of the prefix from some queries")
    if config.page_size or config.packed_kv:
        raise LaunchError("--merge-states reads its source from a contiguous cache: no --page-size or --packed-kv")
    if len(prefix_lens) != sizes.batch:
        raise LaunchError(f"prefix-lens has {len(prefix_lens)} entries, but batch is {sizes.batch}")
    for b, (c, most) in enumerate(zip(prefix_lens, largest_prefixes(config, sizes))):
        if not 0 <= c <= most:
            raise LaunchError(f"prefix-lens[{b}] = {c} is outside [0, {most}]: every query of sequence {b} "
                              f"must see the whole prefix")


# ----------------------------------------------------------------------------- compiling
def _output_type(config: KernelConfig) -> str:
    h, dv, t = config.q_heads, config.head_dim_v, config.dtype
    if config.varlen:
        return f"memref<?x{h}x{dv}x{t}>"
    return f"memref<?x?x{h}x{dv}x{t}>" if config.layout == "bshd" else f"memref<?x{h}x?x{dv}x{t}>"


def _lse_type(config: KernelConfig) -> str:
    return f"memref<{config.q_heads}x?xf32>" if config.varlen else f"memref<?x{config.q_heads}x?xf32>"


def merge_module(config: KernelConfig, in_place: bool = False) -> str:
    """A module with one ``gqa.merge_states`` of ``config``'s outputs and LSEs (packed when varlen)."""
    o, lse = _output_type(config), _lse_type(config)
    out_arg = "" if in_place else f", %o: {o}"
    out = "%oa" if in_place else "%o"
    layout = "bshd" if config.varlen else config.layout
    return (f"func.func @gqa_merge(%oa: {o}, %la: {lse}, %ob: {o}, %lb: {lse}{out_arg}, %l: {lse}) {{\n"
            f"  gqa.merge_states ins(%oa, %la, %ob, %lb : {o}, {lse}, {o}, {lse})\n"
            f"    outs({out} : {o}, %l : {lse}) layout<{layout}>\n"
            f"  return\n}}\n")


# ----------------------------------------------------------------------------- the parts
def _roll_keys(cache: np.ndarray, shift: tuple[int, ...], layout: str) -> np.ndarray:
    """Each sequence's keys moved left by its prefix (the rest first; the prefix wraps past its kv_len)."""
    axis = 0 if layout == "bshd" else 1
    return np.stack([np.roll(cache[b], -c, axis=axis) for b, c in enumerate(shift)])


def partials(problem: MergeProblem, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The float64 reference's (output, LSE) over all keys (``whole``), over each sequence's prefix
    (``first``: unmasked, the sinks' part) and over the rest (``second``: the source's mask)."""
    config, sizes = problem.source, problem.sizes
    inputs = make_inputs(config, sizes, seed)
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    causal = config.mask == "causal"
    kv, prefix = np.asarray(problem.kv_lens), np.asarray(problem.prefix_lens)
    common = dict(softcap=config.softcap or None, scale=config.scale, return_lse=True)
    if config.varlen:
        layout, cu = "bshd", sizes.cu_seqlens_q

        def attend(keys: Any, values: Any, **options: Any) -> tuple[np.ndarray, np.ndarray]:
            return reference.attention_varlen(q, keys, values, cu, **common, **options)
    else:
        layout = config.layout

        def attend(keys: Any, values: Any, **options: Any) -> tuple[np.ndarray, np.ndarray]:
            return reference.attention(q, keys, values, layout=layout, **common, **options)
    sinks = inputs.get("sinks")
    rolled = (_roll_keys(k, problem.prefix_lens, layout), _roll_keys(v, problem.prefix_lens, layout))
    return {"whole": attend(k, v, causal=causal, kv_lens=kv, sinks=sinks),
            "first": attend(k, v, causal=False, kv_lens=prefix, sinks=sinks),
            "second": attend(*rolled, causal=causal, kv_lens=kv - prefix)}


def as_written(part: tuple[np.ndarray, np.ndarray], dtype: str, numerics: Numerics) -> tuple[np.ndarray, np.ndarray]:
    """A part as an attention kernel writes it: the output in ``dtype``, the LSE in f32 (exact: unrounded)."""
    if numerics.exact:
        return part
    out = dtypes.decode(dtypes.encode(part[0].astype(np.float32), dtype), dtype).astype(np.float64)
    return out, part[1].astype(np.float32).astype(np.float64)


def _row_mask(lse_mask: np.ndarray, config: KernelConfig) -> np.ndarray:
    """A mask over LSE rows ([B, H, S] or [H, T]) as one over the output's rows (its dims but the last)."""
    if config.varlen:
        return lse_mask.T
    return lse_mask if config.layout == "bhsd" else lse_mask.transpose(0, 2, 1)


# ----------------------------------------------------------------------------- the check
def check_merge(ir_text: str, problem: MergeProblem, precision: str = "device", seed: int = 0) -> dict:
    """Simulate the merge kernel of ``ir_text`` on ``problem``'s parts; the report :mod:`gpusim.cli` prints.

    Judged: no violation, every output finite and within the tolerance of the whole (device: the dtype's,
    exact: 1e-6), rows that neither part saw exactly 0, the LSE as the attention checks judge it, and the
    inputs the kernel must not write (the second part, both LSEs, the first part unless in place) unchanged.
    """
    start = time.perf_counter()
    config, numerics = problem.source, Numerics(exact=precision == "exact")
    kernels = load_kernels(ir_text)
    parts = partials(problem, seed)
    (o1, lse1), (o2, lse2) = (as_written(parts[p], config.dtype, numerics) for p in ("first", "second"))
    expected, expected_lse = parts["whole"]
    args: dict[str, Any] = {
        "out_a": GlobalBuffer("out_a", config.dtype, o1.ravel().copy()),
        "lse_a": GlobalBuffer("lse_a", "f32", lse1.ravel().copy()),
        "out_b": GlobalBuffer("out_b", config.dtype, o2.ravel().copy()),
        "lse_b": GlobalBuffer("lse_b", "f32", lse2.ravel().copy()),
        "lse": GlobalBuffer("lse", "f32", np.full(lse1.size, np.nan)),
        **problem.symbols()}
    args["out"] = args["out_a"] if problem.in_place else GlobalBuffer("out", config.dtype, np.full(o1.size, np.nan))
    untouched = {"out_b": o2, "lse_a": lse1, "lse_b": lse2, **({} if problem.in_place else {"out_a": o1})}
    outcome = Outcome(output=args["out"].data, lse=args["lse"].data)
    for kernel in kernels:
        if not launch(kernel, args, problem.symbols(), numerics, outcome):
            break
    output, lse = outcome.output.reshape(expected.shape), outcome.lse.reshape(expected_lse.shape)
    errors = {**compare(output, expected), **compare_lse(lse, expected_lse)}
    neither = _row_mask(np.isneginf(expected_lse), config)
    unseen_nonzero = int(np.any(np.nan_to_num(output[neither], nan=1.0) != 0, axis=-1).sum())
    written = [name for name, before in untouched.items()
               if not np.array_equal(args[name].data, before.ravel(), equal_nan=True)]
    tolerance = EXACT_TOLERANCE if numerics.exact else DEVICE_TOLERANCE[config.dtype]
    ok = (outcome.violation is None and errors["non_finite"] == 0 and errors["rel_l2_err"] <= tolerance
          and errors["lse_mismatched"] == 0 and errors["lse_max_abs_err"] <= LSE_TOLERANCE[precision]
          and unseen_nonzero == 0 and not written)
    return {
        **errors, "unseen_nonzero": unseen_nonzero, "inputs_written": written, "tolerance": tolerance, "ok": ok,
        "violation": outcome.violation, "kernels": [k.name for k in kernels], "ctas": outcome.stats["ctas"],
        "rows_first_empty": int(np.isneginf(lse1).sum()), "rows_second_empty": int(np.isneginf(lse2).sum()),
        "rows_neither": int(neither.sum()), "sim_ms": round(1000 * (time.perf_counter() - start), 1),
    }


def merge_problem(config: KernelConfig, sizes: Sizes, prefix_lens: Optional[tuple[int, ...]],
                  in_place: bool) -> MergeProblem:
    """The problem of the command line (the default prefixes unless given), validated."""
    prefixes = default_prefix_lens(config, sizes) if prefix_lens is None else prefix_lens
    validate(config, sizes, prefixes)
    return MergeProblem(config, sizes, prefixes, in_place)


__all__ = ["MergeProblem", "check_merge", "default_prefix_lens", "merge_module", "merge_problem", "partials"]
