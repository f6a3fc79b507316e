#!/usr/bin/env bash
# Installs what gqa needs on a fresh Debian 12 machine (only what is missing)
# and builds it into build/. Sourced by scripts/main.sh and scripts/test.sh;
# safe to run again.
set -euo pipefail

GQA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GQA_BUILD="${GQA_BUILD:-$GQA_ROOT/build}"
LLVM_PREFIX=/usr/lib/llvm-22

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages=()
for package in llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools \
               cmake ninja-build g++ libgtest-dev nlohmann-json3-dev \
               clang-22 libclang-rt-22-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing_packages+=("$package")
done
if [ ${#missing_packages[@]} -gt 0 ]; then
  echo "setup: installing ${missing_packages[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing_packages[@]}"
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import numpy, pytest" 2>/dev/null; then
  echo "setup: installing numpy and pytest for $PYTHON"
  "$PYTHON" -m pip install -q numpy pytest
fi
# PyTorch (the registry's wheel; it runs on the CPU) for the torch op, the
# flash_attn-named functions and their torch.compile tests. GQA_NO_TORCH=1
# skips it (those tests are then skipped).
if [ -z "${GQA_NO_TORCH:-}" ] && ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "setup: installing torch for $PYTHON (a few GB with its CUDA libraries)"
  "$PYTHON" -m pip install -q torch
fi

cmake -S "$GQA_ROOT" -B "$GQA_BUILD" -G Ninja \
  -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
  -DPython3_EXECUTABLE="$(command -v "$PYTHON")" >/dev/null
cmake --build "$GQA_BUILD" -j "$(nproc)"
