// RUN: gqa-opt %s --resolve-ranked-shaped-type-result-dims | FileCheck %s

// ReifyRankedShapedTypeOpInterface: each result of gqa.attention on tensors
// has its init's shape, so a tensor.dim of a result folds to one of the init
// (the output's and the LSE's) without computing the attention (and
// without a canonicalisation of tensor.dim).
// CHECK-LABEL: func.func @result_dims
// CHECK-SAME: %[[O:[a-z0-9]+]]: tensor<?x?x8x64xf32>, %[[L:[a-z0-9]+]]: tensor<?x8x?xf32>
// CHECK-DAG: %[[B:.*]] = tensor.dim %[[O]], %c0
// CHECK-DAG: %[[S:.*]] = tensor.dim %[[O]], %c1
// CHECK-DAG: %[[LS:.*]] = tensor.dim %[[L]], %c2
// CHECK: return %[[B]], %[[S]], %[[LS]]
func.func @result_dims(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x2x64xf32>, %o: tensor<?x?x8x64xf32>,
                       %l: tensor<?x8x?xf32>) -> (index, index, index) {
  %r:2 = gqa.attention ins(%q, %k, %k : tensor<?x?x8x64xf32>, tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>)
           outs(%o : tensor<?x?x8x64xf32>, %l : tensor<?x8x?xf32>) heads(8, 2) layout<bshd> mask<causal>
           -> tensor<?x?x8x64xf32>, tensor<?x8x?xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %b = tensor.dim %r#0, %c0 : tensor<?x?x8x64xf32>
  %s = tensor.dim %r#0, %c1 : tensor<?x?x8x64xf32>
  %ls = tensor.dim %r#1, %c2 : tensor<?x8x?xf32>
  return %b, %s, %ls : index, index, index
}
