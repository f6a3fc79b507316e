// RUN: gqa-opt %s --split-input-file --transform-interpreter --canonicalize --cse | FileCheck %s
// The tiled program lowers to the CPU like the op.
// RUN: gqa-opt %s --split-input-file --transform-interpreter --gqa-lower-to-cpu | FileCheck %s --check-prefix=CPU

// gqa.attention through TilingInterface: the domain is (batch, KV head); a
// tile of 2 KV heads of 8 takes the 8 query heads of their groups (g = 4),
// so each tile is gqa.attention with heads(8, 2) on slices.
// CHECK-LABEL: func.func @tile_heads_and_batch
// CHECK-SAME: (%[[Q:.*]]: tensor<?x?x32x64xbf16>, %[[K:.*]]: tensor<?x?x8x64xbf16>, %[[V:.*]]: tensor<?x?x8x64xbf16>, %[[LENS:.*]]: tensor<?xi32>, %[[O:.*]]: tensor<?x?x32x64xbf16>)
// CHECK: scf.for %[[B:.*]] = %c0 to %{{.*}} step %c1 iter_args(%[[OB:.*]] = %[[O]])
// CHECK:   scf.for %[[H:.*]] = %c0 to %c8 step %c2 iter_args(%[[OH:.*]] = %[[OB]])
// CHECK:     %[[QH:.*]] = affine.apply #{{.*}}(%[[H]])
// CHECK-DAG: %[[QS:.*]] = tensor.extract_slice %[[Q]][%[[B]], 0, %[[QH]], 0] [1, %{{.*}}, 8, 64] [1, 1, 1, 1]
// CHECK-DAG: %[[KS:.*]] = tensor.extract_slice %[[K]][%[[B]], 0, %[[H]], 0] [1, %{{.*}}, 2, 64] [1, 1, 1, 1]
// CHECK-DAG: %[[LS:.*]] = tensor.extract_slice %[[LENS]][%[[B]]] [1] [1]
// CHECK-DAG: %[[OS:.*]] = tensor.extract_slice %[[OH]][%[[B]], 0, %[[QH]], 0] [1, %{{.*}}, 8, 64]
// CHECK:     %[[T:.*]] = gqa.attention ins(%[[QS]], %[[KS]], %{{.*}} : tensor<1x?x8x64xbf16>, tensor<1x?x2x64xbf16>, tensor<1x?x2x64xbf16>) kv_lens(%[[LS]] : tensor<1xi32>) outs(%[[OS]] : tensor<1x?x8x64xbf16>) heads(8, 2) layout<bshd> mask<causal> softcap(3.000000e+01)
// CHECK:     tensor.insert_slice %[[T]] into %[[OH]][%[[B]], 0, %[[QH]], 0] [1, %{{.*}}, 8, 64]
// CPU-LABEL: llvm.func @tile_heads_and_batch
// CPU-NOT: gqa.attention ins
func.func @tile_heads_and_batch(%q: tensor<?x?x32x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>,
                                %lens: tensor<?xi32>, %o: tensor<?x?x32x64xbf16>) -> tensor<?x?x32x64xbf16> {
  %r = gqa.attention ins(%q, %k, %v : tensor<?x?x32x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>)
         kv_lens(%lens : tensor<?xi32>) outs(%o : tensor<?x?x32x64xbf16>) heads(32, 8) layout<bshd> mask<causal>
         softcap(30.0) -> tensor<?x?x32x64xbf16>
  return %r : tensor<?x?x32x64xbf16>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["gqa.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %loops:2 = transform.structured.tile_using_for %op tile_sizes [1, 2]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// scf.forall over KV heads (as a GPU or CPU distribution would), sinks and
// the LSE sliced with the query heads; bhsd.
// CHECK-LABEL: func.func @forall_heads_sinks_lse
// CHECK: scf.forall (%[[H:.*]]) in (4) shared_outs(%[[OO:.*]] = %{{.*}}, %[[OL:.*]] = %{{.*}})
// CHECK:   %[[QH:.*]] = affine.apply #{{.*}}(%[[H]])
// CHECK-DAG: tensor.extract_slice %{{.*}}[%[[QH]]] [2] [1] : tensor<8xf32> to tensor<2xf32>
// CHECK:   %{{.*}}:2 = gqa.attention {{.*}} sinks(%{{.*}} : tensor<2xf32>) outs(%{{.*}} : tensor<2x2x5x16xf32>, %{{.*}} : tensor<2x2x5xf32>) heads(2, 1) layout<bhsd> mask<none>
// CHECK:   tensor.parallel_insert_slice %{{.*}} into %[[OO]][0, %[[QH]], 0, 0] [2, 2, 5, 16]
// CHECK:   tensor.parallel_insert_slice %{{.*}} into %[[OL]][0, %[[QH]], 0] [2, 2, 5]
// CPU-LABEL: llvm.func @forall_heads_sinks_lse
func.func @forall_heads_sinks_lse(%q: tensor<2x8x5x16xf32>, %k: tensor<2x4x9x16xf32>, %s: tensor<8xf32>,
                                  %o: tensor<2x8x5x16xf32>, %l: tensor<2x8x5xf32>) -> (tensor<2x8x5x16xf32>, tensor<2x8x5xf32>) {
  %r:2 = gqa.attention ins(%q, %k, %k : tensor<2x8x5x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>)
           sinks(%s : tensor<8xf32>) outs(%o : tensor<2x8x5x16xf32>, %l : tensor<2x8x5xf32>)
           heads(8, 4) layout<bhsd> mask<none> -> tensor<2x8x5x16xf32>, tensor<2x8x5xf32>
  return %r#0, %r#1 : tensor<2x8x5x16xf32>, tensor<2x8x5xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["gqa.attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %op tile_sizes [0, 1]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
