# gqa-gpu-sim fails loudly: bad arguments get a one-line error and exit
# status 2; IR the simulator does not model (an unknown op, or a known op in a
# form it does not execute) is an error naming the op, never skipped.
#
# RUN: %python %s %gqa_src_root gqa-opt

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(sys.argv[1]) / "utils"))

from gpusim.backend import UnsupportedIR  # noqa: E402
from gpusim.ir import ParseError  # noqa: E402
from gpusim.runner import CompileOptions, Sizes, check, lower_to_gpu  # noqa: E402
from gqa.config import KernelConfig  # noqa: E402

BASE = ["--q-heads", "8", "--kv-heads", "2", "--head-dim", "64", "--seq-q", "4", "--seq-kv", "9"]

BAD_ARGUMENTS = [
    ("heads that do not divide", ["--q-heads", "6", "--kv-heads", "4", "--head-dim", "64",
                                  "--seq-q", "4", "--seq-kv", "9"], "must be a multiple of kv_heads"),
    ("missing head dim", ["--q-heads", "8", "--kv-heads", "2", "--seq-q", "4", "--seq-kv", "9"],
     "the following arguments are required: --head-dim"),
    ("zero batch", BASE + ["--batch", "0"], "batch must be positive"),
    ("too few KV lengths", BASE + ["--batch", "3", "--kv-lens", "9,9"], "kv-lens has 2 entries, but batch is 3"),
    ("a KV length beyond Skv", BASE + ["--batch", "2", "--kv-lens", "9,10"],
     "kv-lens[1] = 10 is outside [0, seq-kv = 9]"),
    ("KV lengths that are not numbers", BASE + ["--kv-lens", "9,x"], "argument --kv-lens: must be integers"),
    ("a prefix that not every query sees", BASE + ["--causal", "--merge-states", "--prefix-lens", "7"],
     "prefix-lens[0] = 7 is outside [0, 6]: every query of sequence 0 must see the whole prefix"),
    ("too few prefix lengths", BASE + ["--batch", "2", "--merge-states", "--prefix-lens", "1"],
     "prefix-lens has 1 entries, but batch is 2"),
    ("a window split by --merge-states", BASE + ["--window", "3,0", "--merge-states"], "a sliding window hides"),
    ("pages with --merge-states", BASE + ["--page-size", "4", "--merge-states"], "no --page-size or --packed-kv"),
    ("split-KV with --merge-states", BASE + ["--merge-states", "--max-splits", "4"],
     "compiles the merge kernel alone"),
    ("--in-place without --merge-states", BASE + ["--in-place"], "--prefix-lens and --in-place need --merge-states"),
    ("unknown dtype", BASE + ["--dtype", "f64"], "unsupported dtype 'f64'"),
    ("unknown layout", BASE + ["--layout", "sbhd"], "layout must be one of"),
    ("malformed window", BASE + ["--window", "3"], "window must be LEFT,RIGHT"),
    ("negative scale", BASE + ["--scale", "-0.5"], "scale must be a finite number > 0"),
    ("splits without split-KV", BASE + ["--num-splits", "2"], "num-splits = 2 needs --max-splits >= 2"),
    ("a split without a KV tile", BASE + ["--max-splits", "4", "--num-splits", "2"],
     "num-splits = 2 leaves a split without a KV tile"),
    ("unknown precision", BASE + ["--precision", "half"], "invalid choice: 'half'"),
    ("unknown flag", BASE + ["--frobnicate", "3"], "unrecognized arguments: --frobnicate 3"),
]


def bad_arguments(gpusim: list[str]) -> int:
    failures = 0
    for name, args, expected in BAD_ARGUMENTS:
        proc = subprocess.run(gpusim + args, capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        if proc.returncode == 2 and len(lines) == 1 and expected in lines[0] and proc.stdout == "":
            print(f"ok: {name}: {lines[0]}")
        else:
            failures += 1
            print(f"FAIL: {name}: exit {proc.returncode}, stderr {proc.stderr!r}, stdout {proc.stdout!r}; "
                  f"expected exit 2 and one line with {expected!r}")
    return failures


def unsupported_ir(gqa_opt: Path) -> int:
    """Each edit of a real kernel's IR must stop the simulation with an error that names the op."""
    config = KernelConfig.create(8, 2, 64, layout="bshd", causal=True)
    sizes = Sizes(batch=1, seq_q=17, seq_kv=129)
    text = lower_to_gpu(config, CompileOptions(), gqa_opt)
    edits = [
        ("an op it does not know", ('"arith.xori"', '"arith.frobnicate"'), UnsupportedIR, "'arith.frobnicate'"),
        ("ldmatrix of two tiles", ("numTiles = 4", "numTiles = 2"), UnsupportedIR, "numTiles = 2"),
        ("a shuffle mode it does not model", ("shuffle_mode xor", "shuffle_mode down"), UnsupportedIR,
         "mode down"),
        ("an mma shape it does not model", ("m = 16, n = 8, k = 16", "m = 16, n = 8, k = 8"), UnsupportedIR,
         "k = 8"),
        ("text that is not generic MLIR", ('"gpu.barrier"() : () -> ()', "gpu.barrier"), ParseError,
         "not a generic-form op"),
    ]
    failures = 0
    for name, (old, new), error_type, expected in edits:
        mutant = text.replace(old, new, 1)
        assert mutant != text, name
        try:
            report = check(mutant, config, sizes)
            outcome = f"no error, ok={report['ok']}"
        except error_type as error:
            op = getattr(error, "op", None)
            outcome = f"{type(error).__name__}: {error}" + (f" (line {op.line})" if op else "")
            if expected in str(error):
                print(f"ok: {name}: {outcome}")
                continue
        failures += 1
        print(f"FAIL: {name}: {outcome}; expected {error_type.__name__} mentioning {expected!r}")
    return failures


def main() -> int:
    src_root, gqa_opt = Path(sys.argv[1]), sys.argv[2]
    gpusim = [sys.executable, str(src_root / "utils" / "gpusim"), "--gqa-opt", gqa_opt]
    return 1 if bad_arguments(gpusim) + unsupported_ir(Path(gqa_opt)) else 0


if __name__ == "__main__":
    sys.exit(main())
