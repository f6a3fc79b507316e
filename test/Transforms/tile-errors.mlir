// RUN: gqa-opt %s --gqa-tile -split-input-file -verify-diagnostics
// RUN: not gqa-opt %s --gqa-tile="tile-q=0" 2>&1 | FileCheck %s --check-prefix=TILES
// TILES: gqa-tile: tile sizes must be positive, got tile-q=0 tile-kv=64

// gqa-tile works on bufferized ops; tensors must be bufferized first.
func.func @tensors(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %o: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  // expected-error @+1 {{gqa-tile expects gqa.attention on memrefs; run one-shot-bufferize first}}
  %r = gqa.attention ins(%q, %k, %k : tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>)
         outs(%o : tensor<1x4x8x16xf32>) heads(4, 2) layout<bhsd> mask<none> -> tensor<1x4x8x16xf32>
  return %r : tensor<1x4x8x16xf32>
}
