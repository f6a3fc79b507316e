// RUN: gqa-opt %s --split-input-file --gqa-tile="tile-q=16 tile-kv=64" --canonicalize --cse | FileCheck %s

// GQA, g = 8 (32 query heads, 4 KV heads), bshd, causal, per-sequence KV
// lengths, dynamic batch and lengths. The loop nest runs over batch, KV head
// and query tile, then over KV tiles; K/V are indexed by the KV-head loop
// variable and staged in tiles with no head dimension at all, shared by the
// g query heads whose index is derived as kvh * 8 + j.

// CHECK-LABEL: func.func @gqa_causal_bshd
// CHECK-SAME: (%[[Q:.*]]: memref<?x?x32x64xbf16>, %[[K:.*]]: memref<?x?x4x64xbf16>, %[[V:.*]]: memref<?x?x4x64xbf16>, %[[O:.*]]: memref<?x?x32x64xbf16>, %[[LENS:.*]]: memref<?xi32>)
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : index
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : index
// CHECK-DAG: %[[C64:.*]] = arith.constant 64 : index
// CHECK: %[[B:.*]] = memref.dim %[[Q]], %c0
// CHECK: %[[SQ:.*]] = memref.dim %[[Q]], %c1
// CHECK: %[[SKV:.*]] = memref.dim %[[K]], %c1
// Scratch: g x tile-q query rows, one K tile, one V tile, no Hq anywhere.
// CHECK: %[[QT:.*]] = memref.alloc() : memref<8x16x64xf32>
// CHECK: %[[KT:.*]] = memref.alloc() : memref<64x64xf32>
// CHECK: %[[VT:.*]] = memref.alloc() : memref<64x64xf32>
// CHECK-NOT: memref.alloc() : memref<{{.*}}32x
// CHECK: scf.for %[[BI:.*]] = %c0 to %[[B]] step %c1 {
// CHECK:   %[[LEN32:.*]] = memref.load %[[LENS]][%[[BI]]]
// CHECK:   %[[LENI:.*]] = arith.index_cast %[[LEN32]]
// CHECK:   %[[LENPOS:.*]] = arith.maxsi %[[LENI]], %c0
// CHECK:   %[[LEN:.*]] = arith.minsi %[[LENPOS]], %[[SKV]]
// CHECK:   %[[OFF:.*]] = arith.subi %[[LEN]], %[[SQ]]
// CHECK:   scf.for %[[KVH:.*]] = %c0 to %[[C4]] step %c1 {
// CHECK:     scf.for %[[Q0:.*]] = %c0 to %[[SQ]] step %[[C16]] {
// Stage the queries of the group: head = kvh * g + j.
// CHECK:       scf.for %[[J:.*]] = %c0 to %[[C8]] step %c1 {
// CHECK:         %[[FIRST:.*]] = arith.muli %[[KVH]], %[[C8]]
// CHECK:         %[[H:.*]] = arith.addi %[[FIRST]], %[[J]]
// CHECK:         memref.load %[[Q]][%[[BI]], %{{.*}}, %[[H]], %{{.*}}] : memref<?x?x32x64xbf16>
// Causal: the last KV tile visited ends at the last row's diagonal.
// CHECK:       %[[DIAG:.*]] = arith.addi %{{.*}}, %[[OFF]]
// CHECK:       %[[END1:.*]] = arith.addi %[[DIAG]], %c1
// CHECK:       %[[END:.*]] = arith.minsi %[[LEN]], %[[END1]]
// CHECK:       scf.for %[[K0:.*]] = %c0 to %[[END]] step %[[C64]] {
// The K and V tiles are read once per KV head, before the group loop.
// CHECK:         memref.load %[[K]][%[[BI]], %{{.*}}, %[[KVH]], %{{.*}}] : memref<?x?x4x64xbf16>
// CHECK:         memref.store %{{.*}}, %[[KT]]
// CHECK:         memref.load %[[V]][%[[BI]], %{{.*}}, %[[KVH]], %{{.*}}] : memref<?x?x4x64xbf16>
// CHECK:         memref.store %{{.*}}, %[[VT]]
// CHECK:         scf.for %[[JJ:.*]] = %c0 to %[[C8]] step %c1 {
// CHECK-NOT:       memref.load %[[K]]
// CHECK-NOT:       memref.load %[[V]]
// Online softmax: scores in the log2 domain, running max and rescaling.
// CHECK:           scf.if
// CHECK:             memref.load %[[QT]]
// CHECK:             memref.load %[[KT]]
// CHECK:             arith.maximumf
// CHECK:             math.exp2
// CHECK:             memref.load %[[VT]]
// CHECK:       scf.for
// CHECK:         arith.cmpf ogt
// CHECK:         arith.select
// CHECK:         arith.truncf %{{.*}} : f32 to bf16
// CHECK:         memref.store %{{.*}}, %[[O]][%[[BI]], %{{.*}}, %{{.*}}, %{{.*}}] : memref<?x?x32x64xbf16>
// CHECK-COUNT-7: memref.dealloc
func.func @gqa_causal_bshd(%q: memref<?x?x32x64xbf16>, %k: memref<?x?x4x64xbf16>, %v: memref<?x?x4x64xbf16>,
                           %o: memref<?x?x32x64xbf16>, %lens: memref<?xi32>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x32x64xbf16>, memref<?x?x4x64xbf16>, memref<?x?x4x64xbf16>)
    kv_lens(%lens : memref<?xi32>) outs(%o : memref<?x?x32x64xbf16>) heads(32, 4) layout<bshd> mask<causal>
  return
}

// -----

// A two-sided window also bounds the first KV tile: from the first row's
// diagonal minus the left width. MQA: one KV head, the whole group (16 heads)
// per tile; K and V tiles still have no head dimension. f32 needs no
// conversions; softcap goes through tanh; Dv (48) differs from D (32).

// CHECK-LABEL: func.func @mqa_window_softcap
// CHECK: memref.alloc() : memref<16x16x32xf32>
// CHECK: %[[KT:.*]] = memref.alloc() : memref<64x32xf32>
// CHECK: %[[VT:.*]] = memref.alloc() : memref<64x48xf32>
// CHECK: memref.alloc() : memref<16x16x48xf32>
// CHECK: %[[OFF:.*]] = arith.subi
// CHECK: scf.for %[[Q0:.*]] = %c0 to %{{.*}} step %c16
// CHECK: %[[DIAG0:.*]] = arith.addi %[[Q0]], %[[OFF]] : index
// CHECK: %[[LO1:.*]] = arith.subi %[[DIAG0]], %c5
// CHECK: %[[LO:.*]] = arith.maxsi %[[LO1]], %c0
// CHECK: %[[HI:.*]] = arith.minsi %{{.*}}, %{{.*}}
// CHECK: scf.for %{{.*}} = %[[LO]] to %[[HI]] step %c64
// CHECK-NOT: arith.extf
// CHECK: math.tanh
// CHECK-NOT: arith.truncf
// CHECK: return
func.func @mqa_window_softcap(%q: memref<?x16x?x32xf32>, %k: memref<?x1x?x32xf32>, %v: memref<?x1x?x48xf32>,
                              %o: memref<?x16x?x48xf32>) {
  gqa.attention ins(%q, %k, %v : memref<?x16x?x32xf32>, memref<?x1x?x32xf32>, memref<?x1x?x48xf32>)
    outs(%o : memref<?x16x?x48xf32>) heads(16, 1) layout<bhsd> mask<window = [5, 2]> softcap(20.0)
  return
}

// -----

// Decode (Sq = 1): one query tile of one row per KV head (the query-tile loop
// folds away); the 8 heads of the group share each K/V tile. Without a mask every KV tile is visited.

// CHECK-LABEL: func.func @decode
// CHECK: %[[SKV:.*]] = memref.dim %{{.*}}, %c2 : memref<?x8x?x128xf16>
// CHECK: scf.for %[[KVH:.*]] = %c0 to %c8 step %c1
// CHECK: scf.for %{{.*}} = %c0 to %[[SKV]] step %c64
// CHECK: memref.load %{{.*}}[%{{.*}}, %[[KVH]], %{{.*}}, %{{.*}}] : memref<?x8x?x128xf16>
func.func @decode(%q: memref<?x64x1x128xf16>, %k: memref<?x8x?x128xf16>, %v: memref<?x8x?x128xf16>,
                  %o: memref<?x64x1x128xf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x64x1x128xf16>, memref<?x8x?x128xf16>, memref<?x8x?x128xf16>)
    outs(%o : memref<?x64x1x128xf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}
