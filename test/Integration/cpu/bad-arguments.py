# Bad arguments get a one-line error and exit status 2, never a crash.
#
# RUN: %python %s gqa-run

import subprocess
import sys

BASE = ["--q-heads", "8", "--kv-heads", "2", "--head-dim", "32",
        "--seq-q", "4", "--seq-kv", "9"]

CASES = [
    ("heads that do not divide", ["--q-heads", "6", "--kv-heads", "4", "--head-dim", "32",
                                  "--seq-q", "4", "--seq-kv", "9"], "not a multiple of kv-heads"),
    ("zero KV heads", ["--q-heads", "8", "--kv-heads", "0", "--head-dim", "32",
                       "--seq-q", "4", "--seq-kv", "9"], "kv-heads must be positive"),
    ("missing head dim", ["--q-heads", "8", "--kv-heads", "2", "--seq-q", "4", "--seq-kv", "9"],
     "head-dim must be positive"),
    ("zero query length", BASE[:6] + ["--seq-q", "0", "--seq-kv", "9"], "seq-q must be positive"),
    ("zero batch", BASE + ["--batch", "0"], "batch must be positive"),
    ("a KV length beyond Skv", BASE + ["--batch", "2", "--kv-lens", "9,10"],
     "kv-lens[1] = 10 is outside [0, seq-kv = 9]"),
    ("a negative KV length", BASE + ["--kv-lens", "-1"], "kv-lens[0] = -1 is outside"),
    ("too few KV lengths", BASE + ["--batch", "3", "--kv-lens", "9,9"],
     "kv-lens has 2 entries, but batch is 3"),
    ("KV lengths that are not numbers", BASE + ["--kv-lens", "9,x"], "kv-lens must be integers"),
    ("unknown dtype", BASE + ["--dtype", "f64"], "unknown dtype 'f64'"),
    ("unknown layout", BASE + ["--layout", "sbhd"], "unknown layout 'sbhd'"),
    ("unknown target", BASE + ["--target", "tpu"], "unknown target 'tpu'"),
    ("malformed window", BASE + ["--window", "3"], "window must be LEFT,RIGHT"),
    ("causal window looking right", BASE + ["--causal", "--window", "4,2"],
     "a causal mask admits no key after the diagonal"),
    ("window bounding nothing", BASE + ["--window", "-1,-1"], "bounds no key"),
    ("negative scale", BASE + ["--scale", "-0.5"], "scale must be positive"),
    ("zero softcap", BASE + ["--softcap", "0"], "softcap must be positive"),
    ("negative page size", BASE + ["--page-size", "-16"], "page-size must be positive (or 0: not paged), got -16"),
    ("unknown flag", BASE + ["--frobnicate", "3"], "unknown option '--frobnicate' (see --help)"),
    # llvm::cl alone would take these as -h with a glued value: help, exit 0.
    ("a flag starting with h", BASE + ["--heads", "3"], "unknown option '--heads'"),
    ("a short flag starting with h", BASE + ["-hq=8"], "unknown option '-hq=8'"),
    ("not a number", BASE + ["--batch", "two"], "'two' value invalid"),
    ("zero tile", BASE + ["--tile-kv", "0"], "tile-q, tile-kv and repeat must be positive"),
    # Sizes that cannot be allocated, or whose byte counts overflow: refused
    # before anything is compiled or allocated (they aborted once).
    ("a batch beyond memory", BASE + ["--batch", "99999999999"],
     "for the inputs, the output and their float64 copies; this machine has"),
    ("a KV length that overflows", BASE + ["--seq-kv", "9223372036854775807"],
     "has more bytes than a 64-bit count holds"),
    ("a sum that overflows", BASE + ["--batch", "4611686018427387", "--seq-kv", "1000"],
     "more bytes than a 64-bit count holds"),
    ("an unknown schedule", BASE + ["--schedule", "sm_70"], "--schedule must be cpu, sm_80 or sm_90, got 'sm_70'"),
    ("negative threads", BASE + ["--cpu-threads", "-1"], "--cpu-threads must be >= 0"),
    ("negative splits", BASE + ["--max-splits", "-2"], "--max-splits must be >= 0 (or -1: the schedule's)"),
    ("a huge key tile", BASE + ["--tile-kv", "4611686018427387904"], "must be at most 16384"),
    ("a tile-q that overflows with the group", BASE + ["--tile-q", "4611686018427387904"], "must be at most 16384"),
]


def main() -> int:
    gqa_run = sys.argv[1]
    failures = 0
    for name, args, expected in CASES:
        proc = subprocess.run([gqa_run, *args], capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        good = (proc.returncode == 2 and len(lines) == 1 and expected in lines[0]
                and proc.stdout == "")
        if not good:
            failures += 1
            print(f"FAIL: {name}: exit {proc.returncode}, stderr {proc.stderr!r}, "
                  f"stdout {proc.stdout!r}; expected exit 2 and one line with {expected!r}")
        else:
            print(f"ok: {name}: {lines[0]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
