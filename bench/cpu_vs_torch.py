#!/usr/bin/env python3
"""The CPU path beside PyTorch's CPU SDPA, measured in the same run.

Runs the Llama-3-70B attention shapes (64 query heads, 8 KV heads, head dim
128, f32, bshd) through `gqa-run --target cpu` (its `time_ms` is the median of
`--repeat` runs of the JIT-compiled kernel, inputs already in memory) and
times `torch.nn.functional.scaled_dot_product_attention(..., enable_gqa=True)`
on the same sizes with the same number of threads, and prints one line per
shape with both medians and their ratio (> 1: gqa is faster).

    python3 bench/cpu_vs_torch.py [--gqa-run build/bin/gqa-run] [--threads N]

Needs torch (not installed by the project's set-up; any CPU build will do).
Not a test: nothing here asserts a speed.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import time

SHAPES = [
    # name, batch, seq_q, seq_kv, causal
    ("prefill 512, causal", 1, 512, 512, True),
    ("decode B4 8K", 4, 1, 8192, False),
]
HEADS_Q, HEADS_KV, HEAD_DIM = 64, 8, 128


def time_gqa(gqa_run, batch, seq_q, seq_kv, causal, threads, repeat):
    command = [gqa_run, "--target", "cpu", "--q-heads", str(HEADS_Q),
               "--kv-heads", str(HEADS_KV), "--head-dim", str(HEAD_DIM),
               "--dtype", "f32", "--layout", "bshd", "--batch", str(batch),
               "--seq-q", str(seq_q), "--seq-kv", str(seq_kv),
               "--repeat", str(repeat), "--cpu-threads", str(threads)]
    if causal:
        command.append("--causal")
    result = json.loads(subprocess.run(command, check=True, capture_output=True,
                                       text=True).stdout)
    assert result["ok"], result
    return result["time_ms"]


def time_torch(batch, seq_q, seq_kv, causal, threads, repeat):
    import torch
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(batch, HEADS_Q, seq_q, HEAD_DIM, generator=generator)
    k = torch.randn(batch, HEADS_KV, seq_kv, HEAD_DIM, generator=generator)
    v = torch.randn(batch, HEADS_KV, seq_kv, HEAD_DIM, generator=generator)
    # SDPA's is_causal is top-left aligned; the shapes here have Sq = Skv
    # when causal, where both alignments agree.
    attention = torch.nn.functional.scaled_dot_product_attention
    attention(q, k, v, is_causal=causal, enable_gqa=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        attention(q, k, v, is_causal=causal, enable_gqa=True)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    root = pathlib.Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gqa-run", default=str(root / "build/bin/gqa-run"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"threads {args.threads}, Hq {HEADS_Q}, Hkv {HEADS_KV}, D {HEAD_DIM}, "
          "f32")
    for name, batch, seq_q, seq_kv, causal in SHAPES:
        ours = time_gqa(args.gqa_run, batch, seq_q, seq_kv, causal,
                        args.threads, args.repeat)
        theirs = time_torch(batch, seq_q, seq_kv, causal, args.threads,
                            args.repeat)
        print(f"{name:22s} gqa {ours:8.1f} ms  torch SDPA {theirs:8.1f} ms  "
              f"ratio {theirs / ours:5.2f}x")


if __name__ == "__main__":
    main()
