// RUN: gqa-opt %s --convert-gqa-tiles-to-linalg -verify-diagnostics

// The attention op itself is distributed first.
func.func @f(%q: memref<1x4x8x16xf32>, %k: memref<1x2x8x16xf32>, %o: memref<1x4x8x16xf32>) {
  // expected-error @+1 {{'gqa.attention' op was not lowered by convert-gqa-tiles-to-linalg; run gqa-select-schedule and gqa-distribute first}}
  gqa.attention ins(%q, %k, %k : memref<1x4x8x16xf32>, memref<1x2x8x16xf32>, memref<1x2x8x16xf32>)
    outs(%o : memref<1x4x8x16xf32>) heads(4, 2) layout<bhsd> mask<none>
  return
}
