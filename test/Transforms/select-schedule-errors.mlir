// RUN: not gqa-opt %s --gqa-select-schedule=target=sm_70 2>&1 | FileCheck %s --check-prefix=TARGET
// TARGET: gqa-select-schedule: target must be cpu, sm_80 or sm_90, got 'sm_70'
// RUN: not gqa-opt %s --gqa-select-schedule=block-m=-2 2>&1 | FileCheck %s --check-prefix=BLOCK
// BLOCK: gqa-select-schedule: block-m must be >= 0, got -2
// RUN: not gqa-opt %s --gqa-select-schedule=max-splits=-3 2>&1 | FileCheck %s --check-prefix=SPLITS
// SPLITS: gqa-select-schedule: max-splits must be >= -1, got -3
// RUN: not gqa-opt %s --gqa-select-schedule=block-m=100000 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: error: 'gqa.attention' op schedule block_m = 100000 and block_n = 64 are too large

func.func @f(%q: memref<?x?x8x64xf16>, %k: memref<?x?x2x64xf16>, %o: memref<?x?x8x64xf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, memref<?x?x2x64xf16>, memref<?x?x2x64xf16>)
    outs(%o : memref<?x?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// An op's own schedule is kept, with a warning when it is another target's.
// RUN: gqa-opt %s --split-input-file --gqa-select-schedule=target=sm_90 -verify-diagnostics -o /dev/null
// -----
func.func @other_target(%q: memref<?x?x8x64xf16>, %k: memref<?x?x2x64xf16>, %o: memref<?x?x8x64xf16>) {
  // expected-warning @+1 {{keeps its schedule for sm_80; gqa-select-schedule was asked for sm_90}}
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, memref<?x?x2x64xf16>, memref<?x?x2x64xf16>)
    outs(%o : memref<?x?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
    {schedule = #gqa.schedule<target = "sm_80", block_m = 32, block_n = 16, max_splits = 2, warps = 2, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>}
  return
}
