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

echo "== The layer compiled for the GPU (sm_90): PTX + metadata in $GQA_BUILD/l70b/"
mkdir -p "$GQA_BUILD/l70b"
"$BIN/gqa-compile" "$EXAMPLES/llama3-70b-layer.mlir" --chip sm_90 --max-splits 0 \
  -o "$GQA_BUILD/l70b/prefill.ptx"
"$BIN/gqa-compile" "$EXAMPLES/llama3-70b-layer.mlir" --chip sm_90 \
  -o "$GQA_BUILD/l70b/decode.ptx"
# Decode against a paged KV cache (16-token pages, per-sequence lengths).
"$BIN/gqa-compile" --q-heads 64 --kv-heads 8 --head-dim 128 --dtype bf16 --layout bshd \
  --causal --kv-lens --page-size 16 --chip sm_90 -o "$GQA_BUILD/l70b/paged-decode.ptx"
python3 - "$GQA_BUILD/l70b" <<'PY'
import json, pathlib, sys
for name in ("prefill", "decode", "paged-decode"):
    meta = json.loads((pathlib.Path(sys.argv[1]) / f"{name}.json").read_text())
    kernels = ", ".join(f"{k['name']} ({k['block'][0]} threads, "
                        f"{k['dynamic_shared_memory_bytes'] // 1024} KiB smem)"
                        for k in meta["kernels"])
    print(f"   {name}: {kernels}")
PY
if command -v ptxas >/dev/null; then
  for name in prefill decode paged-decode; do
    echo "   ptxas -arch=sm_90 -v $name.ptx:"
    ptxas -arch=sm_90 -v "$GQA_BUILD/l70b/$name.ptx" -o "$GQA_BUILD/l70b/$name.cubin" 2>&1 |
      grep -E "Compiling entry|registers|spill" | sed "s/^ */     /"
  done
fi
if [ -e /dev/nvidiactl ] || command -v nvidia-smi >/dev/null; then
  echo "   (a GPU is present: bench/run_on_device.md runs and times these kernels)"
else
  echo "   (no GPU here: the kernels are validated by ptxas; the CPU run below checks the numerics)"
fi

echo "== The layer compiled for the CPU, run and checked against a float64 reference"
echo "   (prefill: 256 tokens, causal)"
"$BIN/gqa-run" --target cpu --q-heads 64 --kv-heads 8 --head-dim 128 --dtype bf16 \
  --layout bshd --causal --batch 1 --seq-q 256 --seq-kv 256
echo "   (decode: one token against 4096 cached, batch 2, lengths 4096 and 1000)"
"$BIN/gqa-run" --target cpu --q-heads 64 --kv-heads 8 --head-dim 128 --dtype bf16 \
  --layout bshd --causal --batch 2 --seq-q 1 --seq-kv 4096 --kv-lens 4096,1000
echo "   (decode against a paged cache, vLLM's 16-token pages in shuffled order, lengths 4096 and 1000)"
"$BIN/gqa-run" --target cpu --q-heads 64 --kv-heads 8 --head-dim 128 --dtype bf16 \
  --layout bshd --causal --batch 2 --seq-q 1 --seq-kv 4096 --kv-lens 4096,1000 --page-size 16
