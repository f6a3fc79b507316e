#!/usr/bin/env bash
# Sets gqa up (scripts/setup.sh) and runs every test: the lit/FileCheck
# suites, the runtime's unit tests and the Python package's tests, then the
# sanitizer job (scripts/test-sanitizers.sh; GQA_SKIP_SANITIZERS=1 skips it)
# and a short run of each fuzzer on its corpus (scripts/fuzz.sh;
# GQA_SKIP_FUZZ=1 skips it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ctest --test-dir "$GQA_BUILD" --output-on-failure -j "$(nproc)"
if [ -z "${GQA_SKIP_SANITIZERS:-}" ]; then
  "$(dirname "${BASH_SOURCE[0]}")/test-sanitizers.sh"
fi
if [ -z "${GQA_SKIP_FUZZ:-}" ]; then
  "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" "${GQA_FUZZ_SECONDS:-30}"
fi
