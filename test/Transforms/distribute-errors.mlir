// RUN: gqa-opt %s --gqa-distribute -split-input-file -verify-diagnostics

// gqa-distribute works on bufferized ops.
func.func @tensors(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %o: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  // expected-error @+1 {{gqa-distribute expects gqa.attention on memrefs; run one-shot-bufferize first}}
  %r = gqa.attention ins(%q, %k, %k : tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>)
         outs(%o : tensor<1x4x8x16xf32>) heads(4, 2) layout<bhsd> mask<none> -> tensor<1x4x8x16xf32>
  return %r : tensor<1x4x8x16xf32>
}

// -----

// ... that carry a schedule.
func.func @unscheduled(%q: memref<1x4x8x16xf32>, %k: memref<1x2x8x16xf32>, %o: memref<1x4x8x16xf32>) {
  // expected-error @+1 {{gqa-distribute expects a schedule on gqa.attention; run gqa-select-schedule first}}
  gqa.attention ins(%q, %k, %k : memref<1x4x8x16xf32>, memref<1x2x8x16xf32>, memref<1x2x8x16xf32>)
    outs(%o : memref<1x4x8x16xf32>) heads(4, 2) layout<bhsd> mask<none>
  return
}
