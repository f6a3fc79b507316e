"""``gqa-gpu-sim``: simulate the GPU kernels of one attention configuration and check them.

Takes gqa-run's shape flags, compiles the configuration with the
repository's ``gqa-opt`` (``--gqa-opt``, else ``$GQA_OPT``, ``PATH`` or
``<repo>/build*/bin``), runs the kernels lane by lane and prints one JSON line.
Exit status: 0 when the kernels pass every check and the output is within
the tolerance, 1 when not (or when gqa-opt fails, or the IR holds something
the simulator does not model), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from gqa._tools import find_executable
from gqa.config import KernelConfig
from gqa.errors import ToolNotFoundError

from .backend import SimError
from .ir import ParseError
from .merge import check_merge, merge_module, merge_problem
from .runner import PRECISIONS, CompileError, CompileOptions, LaunchError, Sizes, check, lower_module, lower_to_gpu

PROG = "gqa-gpu-sim"


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit status 2, as gqa-run does."""

    def error(self, message: str) -> NoReturn:
        _fail(message, 2)


def _fail(message: str, status: int) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(status)


def _int_pair(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError("window must be LEFT,RIGHT")
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"window must be two integers LEFT,RIGHT, got '{text}'") from None


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers L0,L1,..., got '{text}'") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--gqa-opt", type=Path, help="the gqa-opt to test (default: $GQA_OPT, PATH, <repo>/build*/bin)")
    shape = p.add_argument_group("configuration (as gqa-run)")
    shape.add_argument("--q-heads", type=int, required=True, help="query heads Hq")
    shape.add_argument("--kv-heads", type=int, required=True, help="key/value heads Hkv")
    shape.add_argument("--head-dim", type=int, required=True, help="head dim D of query and key")
    shape.add_argument("--head-dim-v", type=int, help="head dim Dv of value and output (default: D)")
    shape.add_argument("--dtype", default="bf16", help="f16, bf16 or f32 (default bf16)")
    shape.add_argument("--layout", default="bhsd", help="bhsd or bshd (default bhsd)")
    shape.add_argument("--batch", type=int, default=1, help="batch size B")
    shape.add_argument("--seq-q", type=int, help="query length Sq (required without --q-lens)")
    shape.add_argument("--seq-kv", type=int, required=True, help="key/value length Skv")
    shape.add_argument("--causal", action="store_true", help="causal mask, aligned bottom-right")
    shape.add_argument("--window", type=_int_pair, help="sliding window LEFT,RIGHT (-1 = unbounded side)")
    shape.add_argument("--softcap", type=float, help="softcap C: s = C * tanh(s / C)")
    shape.add_argument("--scale", type=float, help="score scale (default 1/sqrt(D))")
    shape.add_argument("--kv-lens", type=_int_list, help="per-sequence KV lengths L0,L1,... (int32)")
    shape.add_argument("--page-size", type=int, default=0,
                       help="paged KV cache: tokens per page (K/V scattered into page pools through a shuffled "
                            "block table; lengths default to Skv each)")
    shape.add_argument("--q-lens", type=_int_list,
                       help="ragged queries (varlen): each sequence's query count L0,L1,... (the batch): q and out "
                            "are packed bshd tokens split by cu_seqlens_q; seq-q (max_seqlen_q) defaults to the "
                            "longest, a smaller one understates it (only the rows below it are compared)")
    shape.add_argument("--packed-kv", action="store_true",
                       help="with --q-lens: k and v are packed tokens split by cu_seqlens_k, sequence b holding "
                            "kv-lens[b] keys (default seq-kv each); seq-kv is max_seqlen_k (less than the "
                            "longest: an understated one)")
    shape.add_argument("--sinks", action="store_true",
                       help="attention sinks: one seeded random logit per query head joins each row's softmax")
    shape.add_argument("--sink-value", type=float,
                       help="with --sinks: every sink this logit instead of a random one (-inf: never weighs)")
    shape.add_argument("--return-lse", action="store_true",
                       help="the kernels also write each row's log-sum-exp (checked against the reference)")
    shape.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    merge = p.add_argument_group("the merge kernel (gqa.merge_states)")
    merge.add_argument("--merge-states", action="store_true",
                       help="check the merge kernel of Hq heads and Dv instead: this attention's keys are split "
                            "per sequence into a prefix and the rest, the float64 reference gives each part's "
                            "output and LSE, the kernel merges them, and the merge is compared with the whole")
    merge.add_argument("--prefix-lens", type=_int_list,
                       help="with --merge-states: each sequence's prefix length L0,L1,... (every query must see "
                            "the whole prefix; default by sequence: the largest, none, half of it, one key)")
    merge.add_argument("--in-place", action="store_true",
                       help="with --merge-states: merge into the first part's output (out = out_a)")
    gpu = p.add_argument_group("GPU kernels")
    gpu.add_argument("--max-splits", type=int, default=0, help="split-KV with at most N splits (0: off)")
    gpu.add_argument("--num-splits", type=int, default=1, help="splits of this launch (1..max-splits)")
    gpu.add_argument("--block-m", type=int, default=0, help="packed query rows per CTA (0: by head dim)")
    gpu.add_argument("--block-n", type=int, default=0, help="keys per KV tile (0: by head dim)")
    gpu.add_argument("--allow-bank-conflicts", action="store_true",
                     help="report shared-memory bank conflicts without failing")
    gpu.add_argument("--precision", choices=PRECISIONS, default="device",
                     help="device: f32 arithmetic and bf16/f16 rounding, the dtype's tolerance; "
                          "exact: float64 throughout, tolerance 1e-6")
    return p


def _gqa_opt(explicit: Optional[Path]) -> Path:
    if explicit is not None:
        if not explicit.is_file():
            _fail(f"--gqa-opt {explicit} is not a file", 2)
        return explicit
    try:
        found = find_executable("gqa-opt", "GQA_OPT")
    except ToolNotFoundError as error:
        _fail(str(error), 2)
    if found is None:
        _fail("cannot find gqa-opt: pass --gqa-opt or set GQA_OPT", 2)
    return found


def _config(args: argparse.Namespace) -> KernelConfig:
    try:
        return KernelConfig.create(args.q_heads, args.kv_heads, args.head_dim, head_dim_v=args.head_dim_v,
                                   dtype=args.dtype, layout=args.layout, causal=args.causal, window=args.window,
                                   softcap=args.softcap, scale=args.scale,
                                   kv_lens=(args.kv_lens is not None or args.page_size > 0) and not args.packed_kv,
                                   page_size=args.page_size, sinks=args.sinks or args.sink_value is not None, lse=args.return_lse,
                                   varlen=args.q_lens is not None, packed_kv=args.packed_kv)
    except (TypeError, ValueError) as error:
        _fail(str(error), 2)


def _describe(config: KernelConfig, sizes: Sizes, options: CompileOptions, args: argparse.Namespace) -> dict:
    """The configuration and sizes, with gqa-run's key names."""
    out = {"target": "gpusim", "batch": sizes.batch, "q_heads": config.q_heads, "kv_heads": config.kv_heads,
           "group_size": config.group_size, "seq_q": sizes.seq_q, "seq_kv": sizes.seq_kv,
           "head_dim": config.head_dim, "head_dim_v": config.head_dim_v, "dtype": config.dtype,
           "layout": config.layout, "causal": args.causal, "window": list(config.window), "scale": config.scale,
           "softcap": config.softcap or None, "seed": args.seed, "max_splits": options.max_splits,
           "num_splits": sizes.num_splits, "precision": args.precision}
    if sizes.kv_lens is not None:
        out["kv_lens"] = list(sizes.kv_lens)
    if sizes.page_size:
        out["page_size"] = sizes.page_size
    if sizes.q_lens is not None:
        out["q_lens"] = list(sizes.q_lens)
    if sizes.packed_kv:
        out["packed_kv"] = True
    if config.sinks:
        out["sinks"] = True
    if config.lse:
        out["return_lse"] = True
    return out


def _attach_window_value(argv: Sequence[str]) -> list[str]:
    """``--window -1,4`` as ``--window=-1,4``: argparse would take ``-1,4`` for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--window":
            out[-1] = f"--window={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(_attach_window_value(sys.argv[1:] if argv is None else argv))
    config = _config(args)
    options = CompileOptions(args.max_splits, args.block_m, args.block_n)
    kv_lens = args.kv_lens
    if args.page_size > 0 and kv_lens is None:
        # Whole pages hold ceil(Skv / P) * P keys: the lengths say Skv.
        kv_lens = (args.seq_kv,) * args.batch
    batch, seq_q = args.batch, args.seq_q
    if args.q_lens is not None:
        # seq-q below the longest: a launch that understates max_seqlen_q.
        batch, seq_q = len(args.q_lens), args.seq_q or max(*args.q_lens, 1)
    elif seq_q is None:
        _fail("--seq-q is required (or --q-lens for a ragged batch)", 2)
    if args.packed_kv and kv_lens is None:
        kv_lens = (args.seq_kv,) * batch
    sizes = Sizes(batch, seq_q, args.seq_kv, kv_lens, args.num_splits, args.page_size, args.q_lens, args.packed_kv)
    if min(options.max_splits, options.block_m, options.block_n) < 0:
        _fail("max-splits, block-m and block-n must be >= 0", 2)
    try:
        sizes.validate(options)
    except LaunchError as error:
        _fail(str(error), 2)
    if (args.prefix_lens is not None or args.in_place) and not args.merge_states:
        _fail("--prefix-lens and --in-place need --merge-states", 2)
    if args.merge_states and (options != CompileOptions() or sizes.num_splits != 1):
        _fail("--merge-states compiles the merge kernel alone: no --max-splits, --num-splits, --block-m, --block-n", 2)
    try:
        problem = merge_problem(config, sizes, args.prefix_lens, args.in_place) if args.merge_states else None
    except LaunchError as error:
        _fail(str(error), 2)
    gqa_opt = _gqa_opt(args.gqa_opt)
    try:
        if problem is not None:
            report = check_merge(lower_module(merge_module(config, args.in_place), gqa_opt), problem,
                                 args.precision, args.seed)
        else:
            ir_text = lower_to_gpu(config, options, gqa_opt)
            report = check(ir_text, config, sizes, args.precision, args.seed, args.allow_bank_conflicts,
                           args.sink_value)
    except CompileError as error:
        _fail(f"gqa-opt failed: {error}", 1)
    except LaunchError as error:
        _fail(str(error), 2)
    except ParseError as error:
        _fail(f"cannot parse the GPU-stage IR: {error}", 1)
    except SimError as error:
        op = getattr(error, "op", None)
        where = f" (line {op.line} of the GPU-stage IR)" if op else ""
        _fail(f"the simulator cannot run this IR: {error}{where}", 1)
    described = _describe(config, sizes, options, args)
    if problem is not None:
        described.update(merge_states=True, prefix_lens=list(problem.prefix_lens), in_place=problem.in_place)
    print(json.dumps({**described, **report}, separators=(",", ":")))
    return 0 if report["ok"] else 1
