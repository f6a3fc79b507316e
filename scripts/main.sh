#!/usr/bin/env bash
# Sets gqa up (scripts/setup.sh) and runs the main job on the Llama-3-70B
# attention layer (64 query heads, 8 KV heads, head dim 128, bf16).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
BIN="$GQA_BUILD/bin"
EXAMPLES="$GQA_ROOT/examples"

echo "== The layer, parsed and verified by gqa-opt"
"$BIN/gqa-opt" "$EXAMPLES/llama3-70b-layer.mlir"

echo "== KV-cache report of the 80-layer model at 128K tokens"
"$BIN/gqa-opt" "$EXAMPLES/llama3-70b-model.mlir" \
  --gqa-kv-cache-report="seq-len=131072 per-op=false" -o /dev/null

echo "== The layer compiled for the CPU, run and checked against a float64 reference"
echo "   (prefill: 256 tokens, causal)"
"$BIN/gqa-run" --target cpu --q-heads 64 --kv-heads 8 --head-dim 128 --dtype bf16 \
  --layout bshd --causal --batch 1 --seq-q 256 --seq-kv 256
echo "   (decode: one token against 4096 cached, batch 2, lengths 4096 and 1000)"
"$BIN/gqa-run" --target cpu --q-heads 64 --kv-heads 8 --head-dim 128 --dtype bf16 \
  --layout bshd --causal --batch 2 --seq-q 1 --seq-kv 4096 --kv-lens 4096,1000
