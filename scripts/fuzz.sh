#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, Clang 22 with ASan+UBSan) of the
# runtime: runtime-metadata (a metadata document through the C API's parser
# and the reader, then planned) and runtime-launch (a launch's sizes against
# every kernel kind's metadata: plan, pointer checks, parameter binding).
# Builds into build-fuzz/ and runs each target for SECONDS (default 60) on a
# working copy of its committed corpus (fuzz/corpus/<target>, where there is
# one), then prints one line per target:
# executions, coverage (edges, features) and crashes. A crash's input is
# kept in build-fuzz/crashes/<target>/ and the script exits 1.
#   scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
GQA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GQA_FUZZ_BUILD:-$GQA_ROOT/build-fuzz}"
SECONDS_PER_TARGET="${1:-60}"
shift || true
CLANG="${GQA_FUZZ_CLANG:-clang-22}"
FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -g -O1"
cmake -S "$GQA_ROOT/lib/Runtime" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_COMPILER=$CLANG" "-DCMAKE_CXX_COMPILER=${CLANG/clang/clang++}" \
  -DGQA_RUNTIME_ENABLE_FUZZERS=ON -DGQA_RUNTIME_ENABLE_TESTS=OFF \
  "-DCMAKE_C_FLAGS=$FLAGS" "-DCMAKE_CXX_FLAGS=$FLAGS" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
  "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" > /dev/null
cmake --build "$BUILD" --target gqa-runtime-metadata-fuzzer gqa-runtime-launch-fuzzer > /dev/null
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export GQA_FUZZ_METADATA_DIR="$GQA_ROOT/fuzz/corpus/runtime-metadata"
status=0
for target in runtime-metadata runtime-launch; do
  corpus="$BUILD/corpus/$target" crashes="$BUILD/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  if [ -d "$GQA_ROOT/fuzz/corpus/$target" ]; then
    cp -n "$GQA_ROOT/fuzz/corpus/$target"/* "$corpus"/
  fi
  log="$BUILD/$target.log"
  if ! "$BUILD/gqa-$target-fuzzer" "$corpus" -max_total_time="$SECONDS_PER_TARGET" \
       -print_final_stats=1 -artifact_prefix="$crashes/" -max_len=16384 "$@" > "$log" 2>&1; then
    status=1
    tail -40 "$log"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  coverage=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  echo "fuzz $target: ${runs:-?} executions in ${SECONDS_PER_TARGET} s, ${coverage:-no coverage line}," \
       "$(ls "$crashes" | wc -l) crash(es) (log: $log)"
done
exit $status
