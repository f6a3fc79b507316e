// RUN: gqa-opt %s --split-input-file --gqa-distribute --canonicalize --cse | FileCheck %s

// GQA, g = 8 (32 query heads, 4 KV heads), bshd, causal, per-sequence KV
// lengths, the sm_90 schedule without split-KV. One scf.forall of blocks
// mapped to the grid (x: blocks of 64 packed rows, y: KV head, z: batch);
// in each block the tile ops. The K and V tiles have no head dimension: one
// tile per KV head serves the 8 query heads packed into the rows.

// CHECK-LABEL: func.func @gqa_causal
// CHECK-SAME: (%[[Q:.*]]: memref<?x?x32x64xbf16>, %[[K:.*]]: memref<?x?x4x64xbf16>, %[[V:.*]]: memref<?x?x4x64xbf16>, %[[LENS:.*]]: memref<?xi32>, %[[O:.*]]: memref<?x?x32x64xbf16>)
// CHECK-NOT: memref.alloc
// CHECK: scf.forall (%[[RB:.*]], %[[KVH:.*]], %[[B:.*]]) in (%{{.*}}, 4, %{{.*}}) {
// CHECK:   %[[LEN32:.*]] = memref.load %[[LENS]][%[[B]]]
// CHECK:   %[[QT:.*]] = gqa.load_query_tile %[[Q]][%[[B]], %[[KVH]], %[[ROW0:.*]]] heads(32, 4) layout<bshd> : memref<?x?x32x64xbf16> -> tensor<64x64xbf16>
// CHECK:   scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step %c1 iter_args(%[[ACC:.*]] = %{{.*}}, %[[M:.*]] = %{{.*}}, %[[L:.*]] = %{{.*}}) -> (tensor<64x64xf32>, tensor<64xf32>, tensor<64xf32>) {
// CHECK:     %[[KEY0:.*]] = affine.apply #{{.*}}(%[[N]])
// CHECK:     %[[KT:.*]] = gqa.load_kv_tile %[[K]][%[[B]], %[[KVH]], %[[KEY0]]] kv_len(%[[LEN:.*]]) layout<bshd> : memref<?x?x4x64xbf16> -> tensor<64x64xbf16>
// CHECK:     %[[VT:.*]] = gqa.load_kv_tile %[[V]][%[[B]], %[[KVH]], %[[KEY0]]] kv_len(%[[LEN]]) layout<bshd>
// CHECK:     %[[S:.*]] = gqa.scores %[[QT]], %[[KT]] scale(1.250000e-01) softcap(3.000000e+01) : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
// Only a tile that some row does not see whole is masked.
// CHECK:     %[[SM:.*]] = scf.if %{{.*}} -> (tensor<64x64xf32>) {
// CHECK:       gqa.mask_scores %[[S]] rows(%[[ROW0]]) keys(%[[KEY0]]) offset(%{{.*}}) kv_len(%[[LEN]]) group(8) mask<causal>
// CHECK:     } else {
// CHECK:       scf.yield %[[S]]
// CHECK:     %[[P:.*]], %[[M1:.*]], %[[L1:.*]], %[[ALPHA:.*]] = gqa.online_softmax %[[SM]], %[[M]], %[[L]] : tensor<64x64xf32>, tensor<64xf32> -> tensor<64x64xbf16>
// CHECK:     %[[ACC1:.*]] = gqa.accumulate %[[P]], %[[VT]], %[[ACC]], %[[ALPHA]]
// CHECK:     scf.yield %[[ACC1]], %[[M1]], %[[L1]]
// CHECK:   %[[OT:.*]], %{{.*}} = gqa.finalize
// CHECK:   gqa.store_output_tile %[[OT]], %[[O]][%[[B]], %[[KVH]], %[[ROW0]]] heads(32, 4) layout<bshd>
// What the blocks are, for the target lowerings: the op's kernel config, the
// role and the schedule.
// CHECK: } {gqa.config = {dtype = "bf16", group_size = 8 : i64, head_dim = 64 : i64, head_dim_v = 64 : i64, kv_heads = 4 : i64, kv_lens = "i32", layout = "bshd", lse = false, mask = "causal", packed_kv = false, page_size = 0 : i64, q_heads = 32 : i64, scale = 1.250000e-01 : f64, sinks = false, softcap = 3.000000e+01 : f64, varlen = false, window_left = -1 : i64, window_right = 0 : i64}, gqa.role = "main", gqa.schedule = #gqa.schedule<target = "sm_90", {{.*}}>, mapping = [#gpu.block<x>, #gpu.block<y>, #gpu.block<z>]}
// No K/V buffer or tile with 32 heads exists.
// CHECK-NOT: x32x64xbf16> -> tensor
func.func @gqa_causal(%q: memref<?x?x32x64xbf16>, %k: memref<?x?x4x64xbf16>, %v: memref<?x?x4x64xbf16>, %lens: memref<?xi32>, %o: memref<?x?x32x64xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x32x64xbf16>, memref<?x?x4x64xbf16>, memref<?x?x4x64xbf16>)
    kv_lens(%lens : memref<?xi32>) outs(%o : memref<?x?x32x64xbf16>)
    heads(32, 4) layout<bshd> mask<causal> softcap(30.0)
    {schedule = #gqa.schedule<target = "sm_90", block_m = 64, block_n = 64, max_splits = 0, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>}
  return
}

// -----

// Split-KV: the splits are min(max_splits, KV tiles) evened out, the grid's
// y is splits x Hkv (KV head = y mod Hkv, split = y / Hkv), one split stores
// the output, more store partial results that a second scf.forall combines.

// CHECK-LABEL: func.func @split
// CHECK-SAME: %[[O:[^:]*]]: memref<?x1x8x128xf16>)
// CHECK: %[[TILES:.*]] = arith.ceildivui %{{.*}}, %c64
// CHECK: %[[WANT:.*]] = arith.minui %[[TILES]], %c16
// CHECK: %[[WORKO:.*]] = memref.alloc(%[[NS:.*]], %{{.*}}) : memref<?x?x8x1x128xf32>
// CHECK: %[[WORKL:.*]] = memref.alloc(%[[NS]], %{{.*}}) : memref<?x?x8x1xf32>
// CHECK: scf.forall (%{{.*}}, %[[Y:.*]], %[[B:.*]]) in (1, %{{.*}}, %{{.*}}) {
// CHECK:   %[[KVH:.*]] = affine.apply #{{.*}}(%[[Y]])
// CHECK:   %[[SPLIT:.*]] = affine.apply #{{.*}}(%[[Y]])
// Tiles of the split: [s t, (s + 1) t), t = ceil(tiles / splits).
// CHECK:   %[[TPS:.*]] = arith.ceildivui %[[TILES]], %[[NS]]
// CHECK:   %[[LO:.*]] = arith.muli %[[SPLIT]], %[[TPS]]
// CHECK:   %[[HI:.*]] = arith.addi %[[LO]], %[[TPS]]
// CHECK:   gqa.load_query_tile %{{.*}}[%[[B]], %[[KVH]], %c0] heads(8, 2) layout<bshd> {{.*}} -> tensor<64x128xf16>
// CHECK:   scf.for %{{.*}} = %{{.*}} to %{{.*}}
// CHECK:   %[[OT:.*]], %[[LSE:.*]] = gqa.finalize
// CHECK:   %[[ONE:.*]] = arith.cmpi eq, %[[NS]], %c1
// CHECK:   scf.if %[[ONE]] {
// CHECK:     gqa.store_output_tile %[[OT]], %[[O]]
// CHECK:   } else {
// CHECK:     gqa.store_partial_tile %[[OT]], %[[LSE]], %{{.*}}, %{{.*}}[%[[SPLIT]], %[[B]], %[[KVH]], %c0] group(4)
// CHECK: %[[SEVERAL:.*]] = arith.cmpi ugt, %[[NS]], %c1
// CHECK: scf.if %[[SEVERAL]] {
// CHECK:   scf.forall (%[[CB:.*]], %[[CBB:.*]]) in (2, %{{.*}}) {
// CHECK:     gqa.combine_splits %{{.*}}, %{{.*}}, %[[O]][%[[CBB]], %{{.*}}] splits(%[[NS]]) rows(4) layout<bshd>
// CHECK:   } {gqa.config = {{{.*}}seq_q = 1 : i64{{.*}}}, gqa.role = "combine", gqa.schedule = {{.*}}, mapping = [#gpu.block<x>, #gpu.block<y>]}
func.func @split(%q: memref<?x1x8x128xf16>, %k: memref<?x?x2x128xf16>, %v: memref<?x?x2x128xf16>, %o: memref<?x1x8x128xf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x1x8x128xf16>, memref<?x?x2x128xf16>, memref<?x?x2x128xf16>)
    outs(%o : memref<?x1x8x128xf16>) heads(8, 2) layout<bshd> mask<none>
    {schedule = #gqa.schedule<target = "sm_80", block_m = 64, block_n = 64, max_splits = 16, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>}
  return
}

// -----

// Sinks and the LSE under split-KV: the single-split branch folds the sinks
// into its own finalize and stores the LSE; a split's partial result has no
// sink (the combine adds it once, and writes the merged LSE).

// CHECK-LABEL: func.func @split_sinks_lse
// CHECK-SAME: %[[S:[^:]*]]: memref<8xf32>, %[[O:[^:]*]]: memref<?x1x8x128xf16>, %[[L:[^:]*]]: memref<?x8x1xf32>)
// CHECK: scf.forall (%[[X:.*]], %[[Y:.*]], %[[B:.*]]) in
// CHECK:   %[[KVH:.*]] = affine.apply #{{.*}}(%[[Y]])
// CHECK:   scf.for
// CHECK-NOT: gqa.finalize
// CHECK:   scf.if %{{.*}} {
// CHECK:     %[[ST:.*]] = gqa.load_sink_tile %[[S]][%[[KVH]], %c0] group(4) : memref<8xf32> -> tensor<64xf32>
// CHECK:     %[[OT:.*]], %[[LSE:.*]] = gqa.finalize %{{.*}}, %{{.*}}, %{{.*}} sinks(%[[ST]] : tensor<64xf32>)
// CHECK:     gqa.store_output_tile %[[OT]], %[[O]]
// CHECK:     gqa.store_lse_tile %[[LSE]], %[[L]][%[[B]], %[[KVH]], %c0] group(4) : tensor<64xf32>, memref<?x8x1xf32>
// CHECK:   } else {
// CHECK:     %[[PO:.*]], %[[PL:.*]] = gqa.finalize %{{.*}}, %{{.*}}, %{{.*}} : tensor<64x128xf32>, tensor<64xf32>
// CHECK:     gqa.store_partial_tile %[[PO]], %[[PL]]
// CHECK:   gqa.combine_splits {{.*}} layout<bshd> sinks(%[[S]] : memref<8xf32>) lse(%[[L]] : memref<?x8x1xf32>)
func.func @split_sinks_lse(%q: memref<?x1x8x128xf16>, %k: memref<?x?x2x128xf16>, %v: memref<?x?x2x128xf16>, %s: memref<8xf32>, %o: memref<?x1x8x128xf16>, %l: memref<?x8x1xf32>) {
  gqa.attention ins(%q, %k, %v : memref<?x1x8x128xf16>, memref<?x?x2x128xf16>, memref<?x?x2x128xf16>)
    sinks(%s : memref<8xf32>) outs(%o : memref<?x1x8x128xf16>, %l : memref<?x8x1xf32>) heads(8, 2) layout<bshd> mask<none>
    {schedule = #gqa.schedule<target = "sm_80", block_m = 64, block_n = 64, max_splits = 16, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>}
  return
}

// -----

// The CPU's partial blocks load as many sinks as the block has rows.
// CHECK-LABEL: func.func @cpu_sinks
// CHECK: gqa.load_query_tile {{.*}} rows(%[[ROWS:.*]]) heads
// CHECK: %[[ST:.*]] = gqa.load_sink_tile %{{.*}}[%{{.*}}, %{{.*}}] rows(%[[ROWS]]) group(4) : memref<8xf32> -> tensor<?xf32>
// CHECK: gqa.finalize {{.*}} sinks(%[[ST]] : tensor<?xf32>)
// CHECK: gqa.store_output_tile
// CHECK-NOT: gqa.store_lse_tile
func.func @cpu_sinks(%q: memref<?x8x?x64xf32>, %k: memref<?x2x?x64xf32>, %s: memref<8xf32>, %o: memref<?x8x?x64xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x8x?x64xf32>, memref<?x2x?x64xf32>, memref<?x2x?x64xf32>)
    sinks(%s : memref<8xf32>) outs(%o : memref<?x8x?x64xf32>) heads(8, 2) layout<bhsd> mask<causal>
    {schedule = #gqa.schedule<target = "cpu", block_m = 32, block_n = 64, max_splits = 0, warps = 1, stages = 1, q_in_registers = false, min_ctas_per_sm = 1, max_registers = 0>}
  return
}

// -----

// The CPU schedule runs partial blocks: the tiles have as many rows as the
// block has, min(block_m, Sq * g - first row), so that decode (g rows) does
// no padded work. A paged cache reads K/V through the block table.

// CHECK-LABEL: func.func @cpu_paged_decode
// CHECK: scf.forall
// Decode: Sq * g = 4 rows, not 64.
// CHECK:   %[[QT:.*]] = gqa.load_query_tile %{{.*}} rows(%[[ROWS:.*]]) heads(8, 2) layout<bhsd> : memref<?x8x1x64xf32> -> tensor<?x64xf32>
// CHECK:   tensor.splat %{{.*}}[%[[ROWS]]] : tensor<?x64xf32>
// CHECK:   scf.for
// CHECK:     gqa.load_kv_tile %{{.*}} kv_len(%{{.*}}) block_table(%{{.*}} : memref<?x?xi32>) layout<bhsd> : memref<?x16x2x64xf32> -> tensor<32x64xf32>
// CHECK:     gqa.scores %[[QT]], %{{.*}} : tensor<?x64xf32>, tensor<32x64xf32> -> tensor<?x32xf32>
func.func @cpu_paged_decode(%q: memref<?x8x1x64xf32>, %k: memref<?x16x2x64xf32>, %v: memref<?x16x2x64xf32>, %table: memref<?x?xi32>, %o: memref<?x8x1x64xf32>) {
  gqa.attention ins(%q, %k, %v : memref<?x8x1x64xf32>, memref<?x16x2x64xf32>, memref<?x16x2x64xf32>)
    block_table(%table : memref<?x?xi32>) outs(%o : memref<?x8x1x64xf32>) heads(8, 2) layout<bhsd> mask<none>
    {schedule = #gqa.schedule<target = "cpu", block_m = 64, block_n = 32, max_splits = 0, warps = 1, stages = 1, q_in_registers = false, min_ctas_per_sm = 0, max_registers = 0>}
  return
}

// -----

// A ragged batch: the batch is the offsets' size - 1, the grid fits the
// longest sequence (a loop over the offsets), and each block views its
// sequence's tokens (gqa.load_segment) as a bshd batch of one (subview +
// expand_shape), packed
// K/V the same way; blocks past a shorter sequence's rows do nothing.
// CHECK-LABEL: func.func @varlen_packed
// CHECK-SAME: (%[[Q:[^:]*]]: memref<?x8x64xf32>, %[[K:[^:]*]]: memref<?x2x64xf32>, %{{[^:]*}}: memref<?x2x64xf32>, %[[CQ:[^:]*]]: memref<?xi32>, %[[CK:[^:]*]]: memref<?xi32>, %[[O:[^:]*]]: memref<?x8x64xf32>, %[[L:[^:]*]]: memref<8x?xf32>)
// CHECK: %[[OFFSETS:.*]] = memref.dim %[[CQ]], %c0
// CHECK: %[[B:.*]] = affine.apply #{{.*}}()[%[[OFFSETS]]]
// CHECK: %[[LONGEST:.*]] = scf.for {{.*}} = %c0 to %[[B]] step %c1 iter_args
// CHECK:   arith.maxsi
// CHECK: scf.forall (%[[RB:.*]], %[[KVH:.*]], %[[S:.*]]) in (%{{.*}}, 2, %[[B]]) {
// CHECK:   %[[QSTART:.*]], %[[QLEN:.*]] = gqa.load_segment %[[CQ]][%[[S]]] : memref<?xi32>
// CHECK:   %[[QV:.*]] = memref.subview %[[Q]][%[[QSTART]], 0, 0] [%[[QLEN]], 8, 64] [1, 1, 1]
// CHECK:   %[[QB:.*]] = memref.expand_shape %[[QV]] {{\[\[}}0, 1], [2], [3]] output_shape [1, %[[QLEN]], 8, 64]
// CHECK:   %[[OB:.*]] = memref.expand_shape {{.*}} output_shape [1, %[[QLEN]], 8, 64]
// CHECK:   %[[LB:.*]] = memref.expand_shape {{.*}} {{\[\[}}0, 1], [2]] output_shape [1, 8, %[[QLEN]]]
// CHECK:   %{{.*}}, %[[KLEN:.*]] = gqa.load_segment %[[CK]][%[[S]]] keys : memref<?xi32>
// CHECK:   %[[KB:.*]] = memref.expand_shape {{.*}} output_shape [1, %[[KLEN]], 2, 64]
// CHECK:   scf.if %{{.*}} {
// CHECK:     gqa.load_query_tile %[[QB]][%c0, %[[KVH]], %{{.*}}] rows(%{{.*}}) heads(8, 2) layout<bshd>
// CHECK:     gqa.load_kv_tile %[[KB]][%c0, %[[KVH]], %{{.*}}] kv_len(%[[KLEN]]) layout<bshd>
// CHECK:     gqa.store_output_tile %{{.*}}, %[[OB]][%c0, %[[KVH]], %{{.*}}]
// CHECK:     gqa.store_lse_tile %{{.*}}, %[[LB]][%c0, %[[KVH]], %{{.*}}] group(4)
func.func @varlen_packed(%q: memref<?x8x64xf32>, %k: memref<?x2x64xf32>, %v: memref<?x2x64xf32>, %cq: memref<?xi32>, %ck: memref<?xi32>, %o: memref<?x8x64xf32>, %l: memref<8x?xf32>) {
  gqa.attention ins(%q, %k, %v : memref<?x8x64xf32>, memref<?x2x64xf32>, memref<?x2x64xf32>)
    cu_seqlens_q(%cq : memref<?xi32>) cu_seqlens_k(%ck : memref<?xi32>) outs(%o : memref<?x8x64xf32>, %l : memref<8x?xf32>)
    heads(8, 2) layout<bshd> mask<causal>
    {schedule = #gqa.schedule<target = "cpu", block_m = 32, block_n = 64, max_splits = 0, warps = 1, stages = 1, q_in_registers = false, min_ctas_per_sm = 1, max_registers = 0>}
  return
}

// -----

// Ragged queries against a cache with lengths and split-KV: K/V keep their
// batch index (the sequence), the workspaces are viewed at the sequence.
// The workspace's rows are the launch's max_seqlen_q, named as seq_q.
// CHECK-LABEL: func.func @varlen_cache_split
// CHECK: %[[SQ:.*]] = gqa.launch_size "seq_q" %arg4
// CHECK: %[[WO:.*]] = memref.alloc(%{{.*}}, %{{.*}}, %[[SQ]]) : memref<?x?x8x?x64xf32>
// CHECK: scf.forall (%{{.*}}, %{{.*}}, %[[S:.*]]) in
// CHECK:   memref.subview %[[WO]][0, %[[S]], 0, 0, 0] [%{{.*}}, 1, 8, %{{.*}}, 64] [1, 1, 1, 1, 1]
// CHECK:     gqa.load_kv_tile %{{.*}}[%[[S]], %{{.*}}, %{{.*}}] kv_len
// CHECK:       gqa.store_partial_tile {{.*}}[%{{.*}}, %c0, %{{.*}}, %{{.*}}] group(4)
// CHECK: scf.forall (%{{.*}}, %[[CS:.*]]) in
// CHECK:   gqa.combine_splits {{.*}}[%c0, %{{.*}}] splits
func.func @varlen_cache_split(%q: memref<?x8x64xf32>, %k: memref<?x?x2x64xf32>, %lens: memref<?xi32>, %cq: memref<?xi32>, %mq: index, %o: memref<?x8x64xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf32>, memref<?x?x2x64xf32>, memref<?x?x2x64xf32>)
    kv_lens(%lens : memref<?xi32>) cu_seqlens_q(%cq : memref<?xi32>) max_seqlen_q(%mq) outs(%o : memref<?x8x64xf32>)
    heads(8, 2) layout<bshd> mask<none>
    {schedule = #gqa.schedule<target = "sm_80", block_m = 64, block_n = 64, max_splits = 16, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>}
  return
}
