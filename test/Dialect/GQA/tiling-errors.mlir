// RUN: gqa-opt %s --split-input-file --transform-interpreter -verify-diagnostics

// 3 does not divide the 8 KV heads: the last tile's size is dynamic, and the
// head counts must be static. ("faild" is upstream's spelling.)
func.func @uneven(%q: tensor<1x5x32x64xf32>, %k: tensor<1x9x8x64xf32>, %o: tensor<1x5x32x64xf32>) -> tensor<1x5x32x64xf32> {
  // expected-error @+3 {{'gqa.attention' op tiles KV heads by a static, positive size (the head counts shape the op)}}
  // expected-error @+2 {{faild to tile operation}}
  // expected-error @+1 {{failed to generate tiling loops}}
  %r = gqa.attention ins(%q, %k, %k : tensor<1x5x32x64xf32>, tensor<1x9x8x64xf32>, tensor<1x9x8x64xf32>)
         outs(%o : tensor<1x5x32x64xf32>) heads(32, 8) layout<bshd> mask<none> -> tensor<1x5x32x64xf32>
  return %r : tensor<1x5x32x64xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["gqa.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %loops = transform.structured.tile_using_for %op tile_sizes [0, 3]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
