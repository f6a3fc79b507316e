// RUN: gqa-opt %s --gqa-tile="tile-q=16 tile-kv=64" --canonicalize --cse | FileCheck %s

// A paged KV cache: the KV length is the block table's pages times the page
// size (16), and each key of a K/V tile is read from its page,
// block_table[b, j / 16], slot j % 16, with the page clamped into the pool.
// The tiles are still staged once per KV head for its g = 4 query heads.

// CHECK-LABEL: func.func @paged_decode
// CHECK-SAME: (%{{.*}}: memref<?x1x8x64xbf16>, %[[KC:.*]]: memref<?x16x2x64xbf16>, %[[VC:.*]]: memref<?x16x2x64xbf16>, %[[LENS:.*]]: memref<?xi32>, %[[PAGES:.*]]: memref<?x?xi32>, %{{.*}}: memref<?x1x8x64xbf16>)
// CHECK:      %[[MAXPAGES:.*]] = memref.dim %[[PAGES]], %c1
// CHECK:      %[[SKV:.*]] = arith.muli %[[MAXPAGES]], %c16 : index
// CHECK:      %[[KT:.*]] = memref.alloc() : memref<64x64xf32>
// CHECK:      scf.for %[[B:.*]] = %c0 to
// CHECK:        arith.minsi %{{.*}}, %[[SKV]] : index
// CHECK:        scf.for %[[KVH:.*]] = %c0 to %c2 step %c1 {
// CHECK:          scf.for %[[KEY0:.*]] = %c0 to %{{.*}} step %c64 {
// CHECK:            scf.for %[[COL:.*]] = %c0 to %{{.*}} step %c1 {
// CHECK:              %[[J:.*]] = arith.addi %[[KEY0]], %[[COL]] : index
// CHECK:              %[[ENTRY:.*]] = arith.divui %[[J]], %c16 : index
// CHECK:              %[[PAGE32:.*]] = memref.load %[[PAGES]][%[[B]], %[[ENTRY]]] : memref<?x?xi32>
// CHECK:              %[[PAGE0:.*]] = arith.index_cast %[[PAGE32]] : i32 to index
// CHECK:              %[[POOL:.*]] = memref.dim %[[KC]], %c0
// CHECK:              %[[LAST:.*]] = arith.subi %[[POOL]], %c1 : index
// CHECK:              %[[PAGE1:.*]] = arith.maxsi %[[PAGE0]], %c0 : index
// CHECK:              %[[PAGE:.*]] = arith.minsi %[[PAGE1]], %[[LAST]] : index
// CHECK:              %[[SLOT:.*]] = arith.remui %[[J]], %c16 : index
// CHECK:              memref.load %[[KC]][%[[PAGE]], %[[SLOT]], %[[KVH]], %{{.*}}] : memref<?x16x2x64xbf16>
// CHECK:              memref.store %{{.*}}, %[[KT]]
// CHECK:            memref.load %[[VC]][%{{.*}}, %{{.*}}, %[[KVH]], %{{.*}}] : memref<?x16x2x64xbf16>
func.func @paged_decode(%q: memref<?x1x8x64xbf16>, %kc: memref<?x16x2x64xbf16>, %vc: memref<?x16x2x64xbf16>,
                        %lens: memref<?xi32>, %pages: memref<?x?xi32>, %o: memref<?x1x8x64xbf16>) {
  gqa.attention ins(%q, %kc, %vc : memref<?x1x8x64xbf16>, memref<?x16x2x64xbf16>, memref<?x16x2x64xbf16>)
    kv_lens(%lens : memref<?xi32>) block_table(%pages : memref<?x?xi32>)
    outs(%o : memref<?x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}
