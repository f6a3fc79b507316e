#!/usr/bin/env bash
# The sanitizer job: builds the compiler, tools, runtime and C API with
# AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ and runs
# the lit suites, the runtime's unit tests and the C API tests under them.
# Left out: the Python and bench suites (PyTorch under ASan is out of reach
# of CI's time) and the install-package test (its consumer is not built with
# the sanitizers). MLIR and LLVM themselves are not instrumented: their
# allocators' poisoning is off (allow_user_poisoning=0, else inlined LLVM
# allocator code in our objects and uninstrumented libMLIR disagree), and
# hosts that are not ours (python3, mlir-opt-22) load our libraries with the
# sanitizer runtimes preloaded.
set -euo pipefail
GQA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GQA_ASAN_BUILD:-$GQA_ROOT/build-asan}"
FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
cmake -S "$GQA_ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
  -DPython3_EXECUTABLE="$(command -v "${PYTHON:-python3}")" \
  "-DCMAKE_C_FLAGS=$FLAGS" "-DCMAKE_CXX_FLAGS=$FLAGS" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
  "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" \
  "-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined" > /dev/null
cmake --build "$BUILD" -j "$(nproc)"
export ASAN_OPTIONS="detect_leaks=0:allow_user_poisoning=0:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
export LD_PRELOAD
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" -E '^(python|bench|package)$'
