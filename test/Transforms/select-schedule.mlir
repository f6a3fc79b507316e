// RUN: gqa-opt %s --gqa-select-schedule | FileCheck %s --check-prefix=CPU
// RUN: gqa-opt %s --gqa-select-schedule=target=sm_90 | FileCheck %s --check-prefix=SM90
// RUN: gqa-opt %s --gqa-select-schedule="target=sm_80 block-n=32 max-splits=4 max-registers=200 min-ctas-per-sm=1" | FileCheck %s --check-prefix=FORCED
// RUN: gqa-opt %s --gqa-select-schedule=target=sm_90 --mlir-print-op-generic | gqa-opt | FileCheck %s --check-prefix=SM90

// On the CPU, 16 query positions of every head of the group, 64 keys, no split.
// CPU-LABEL: func.func @d128
// CPU: schedule = #gqa.schedule<target = "cpu", block_m = 128, block_n = 64, max_splits = 0, warps = 1, stages = 1, q_in_registers = false, min_ctas_per_sm = 0, max_registers = 0>
// The tensor-core kernels: 64 packed rows in 4 warps, 64 keys up to D 128
// and 32 above, Q in registers up to D 128, 32 splits.
// SM90-LABEL: func.func @d128
// SM90: schedule = #gqa.schedule<target = "sm_90", block_m = 64, block_n = 64, max_splits = 32, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>
// FORCED-LABEL: func.func @d128
// FORCED: schedule = #gqa.schedule<target = "sm_80", block_m = 64, block_n = 32, max_splits = 4, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 1, max_registers = 200>
func.func @d128(%q: memref<?x?x64x128xbf16>, %k: memref<?x?x8x128xbf16>, %o: memref<?x?x64x128xbf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x64x128xbf16>, memref<?x?x8x128xbf16>, memref<?x?x8x128xbf16>)
    outs(%o : memref<?x?x64x128xbf16>) heads(64, 8) layout<bshd> mask<causal>
  return
}

// SM90-LABEL: func.func @d256
// SM90: schedule = #gqa.schedule<target = "sm_90", block_m = 64, block_n = 32, max_splits = 32, warps = 4, stages = 1, q_in_registers = false, min_ctas_per_sm = 2, max_registers = 0>
func.func @d256(%q: memref<?x?x8x256xf16>, %k: memref<?x?x8x256xf16>, %o: memref<?x?x8x256xf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x256xf16>, memref<?x?x8x256xf16>, memref<?x?x8x256xf16>)
    outs(%o : memref<?x?x8x256xf16>) heads(8, 8) layout<bshd> mask<none>
  return
}

// SM90-LABEL: func.func @d64
// SM90: schedule = #gqa.schedule<target = "sm_90", block_m = 64, block_n = 64, max_splits = 32, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 3, max_registers = 0>
func.func @d64(%q: memref<?x?x8x64xf16>, %k: memref<?x?x1x64xf16>, %o: memref<?x?x8x64xf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, memref<?x?x1x64xf16>, memref<?x?x1x64xf16>)
    outs(%o : memref<?x?x8x64xf16>) heads(8, 1) layout<bshd> mask<none>
  return
}

// f32 runs on the CUDA cores: 16 x 32 tiles, 4 CTAs per SM.
// SM90-LABEL: func.func @f32
// SM90: schedule = #gqa.schedule<target = "sm_90", block_m = 16, block_n = 32, max_splits = 32, warps = 4, stages = 1, q_in_registers = false, min_ctas_per_sm = 4, max_registers = 0>
func.func @f32(%q: memref<?x?x8x64xf32>, %k: memref<?x?x2x64xf32>, %o: memref<?x?x8x64xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf32>, memref<?x?x2x64xf32>, memref<?x?x2x64xf32>)
    outs(%o : memref<?x?x8x64xf32>) heads(8, 2) layout<bshd> mask<none>
  return
}

// A schedule already on the op is kept, whatever the target.
// CPU-LABEL: func.func @kept
// CPU: schedule = #gqa.schedule<target = "sm_80", block_m = 32, block_n = 16, max_splits = 2, warps = 2, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>
func.func @kept(%q: memref<?x?x8x64xf16>, %k: memref<?x?x2x64xf16>, %o: memref<?x?x8x64xf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, memref<?x?x2x64xf16>, memref<?x?x2x64xf16>)
    outs(%o : memref<?x?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
    {schedule = #gqa.schedule<target = "sm_80", block_m = 32, block_n = 16, max_splits = 2, warps = 2, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>}
  return
}
