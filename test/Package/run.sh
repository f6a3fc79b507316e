#!/usr/bin/env bash
# Installs this build into a fresh prefix, configures and builds the consumer
# project against it with find_package(GQA CONFIG), and runs both consumers.
# Usage: run.sh BUILD_DIR WORK_DIR MLIR_DIR
set -euo pipefail
build="$1" work="$2" mlir="$3"
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work.install.log" 2>&1 \
  || { cat "$work.install.log"; exit 1; }
cmake -S "$(dirname "$0")/consumer" -B "$work/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" -DMLIR_DIR="$mlir" > /dev/null
cmake --build "$work/build" > "$work.build.log" 2>&1 || { cat "$work.build.log"; exit 1; }
"$work/build/consumer"
"$work/build/consumer_c"
