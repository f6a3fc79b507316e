// RUN: gqa-opt %s --gqa-select-schedule=target=sm_80 --gqa-distribute --canonicalize --gqa-prefetch-keys --canonicalize | FileCheck %s

// The K load of the KV loop moves one iteration ahead: tile lo before the
// loop (when it runs), tile n + 1 right after the scores of tile n; V stays
// where it is. The K tile becomes a loop-carried value.

// CHECK-LABEL: func.func @prefetch(
// CHECK:       scf.forall
// CHECK:         %[[RUNS:.*]] = arith.cmpi slt, %[[LO:.*]], %[[HI:.*]] : index
// CHECK:         %[[K0:.*]] = scf.if %[[RUNS]] -> (tensor<64x64xbf16>) {
// CHECK:           %[[KEY0:.*]] = affine.apply #{{.*}}(%[[LO]])
// CHECK:           %[[T0:.*]] = gqa.load_kv_tile %{{.*}}[%{{.*}}, %{{.*}}, %[[KEY0]]]
// CHECK:           scf.yield %[[T0]]
// CHECK:         } else {
// CHECK:           %[[EMPTY:.*]] = tensor.empty() : tensor<64x64xbf16>
// CHECK:           scf.yield %[[EMPTY]]
// CHECK:         scf.for %[[N:.*]] = %[[LO]] to %[[HI]] step %c1 iter_args({{.*}}, %[[K:.*]] = %[[K0]]) -> ({{.*}}, tensor<64x64xbf16>) {
// CHECK:           gqa.load_kv_tile %{{.*}} kv_len
// CHECK:           gqa.scores %{{.*}}, %[[K]]
// CHECK:           %[[NEXT:.*]] = arith.addi %[[N]], %c1 : index
// CHECK:           %[[MORE:.*]] = arith.cmpi slt, %[[NEXT]], %[[HI]] : index
// CHECK:           %[[KN:.*]] = scf.if %[[MORE]] -> (tensor<64x64xbf16>) {
// CHECK:             %[[KEYN:.*]] = affine.apply #{{.*}}(%[[NEXT]])
// CHECK:             %[[TN:.*]] = gqa.load_kv_tile %{{.*}}[%{{.*}}, %{{.*}}, %[[KEYN]]]
// CHECK:             scf.yield %[[TN]]
// CHECK:           } else {
// CHECK:             scf.yield %[[K]]
// CHECK:           gqa.online_softmax
// CHECK:           gqa.accumulate
// CHECK:           scf.yield {{.*}}, %[[KN]] :
func.func @prefetch(%q: memref<?x?x8x64xbf16>, %k: memref<?x?x2x64xbf16>, %v: memref<?x?x2x64xbf16>, %o: memref<?x?x8x64xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    outs(%o : memref<?x?x8x64xbf16>) heads(8, 2) layout<bshd> mask<causal>
  return
}
