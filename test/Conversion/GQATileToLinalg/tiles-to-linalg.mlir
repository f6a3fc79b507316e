// RUN: gqa-opt %s --split-input-file --convert-gqa-tiles-to-linalg --canonicalize --cse | FileCheck %s

// The scores of a block of many rows: K transposed once into f32 (head dim
// x keys), then a register-blocked product: 4 rows x (up to 4) vectors of
// 16 keys accumulate over the head dim, each Q element broadcast once per
// step and each Kᵀ vector loaded once for the 4 rows; then the scale (and
// log2(e)), per vector.
// CHECK-LABEL: func.func @scores
// CHECK-NOT: gqa.
// CHECK: %[[KT:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<32x128xbf16>) outs(%{{.*}} : tensor<128x32xf32>)
// CHECK:   arith.extf
// CHECK: scf.for %[[R:.*]] = %c0 to %c64 step %c4
// CHECK:   scf.for %[[D:.*]] = %c0 to %c128 step %c1 iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     vector.transfer_read %[[KT]][%[[D]], %c0]{{.*}} : tensor<128x32xf32>, vector<16xf32>
// CHECK:     vector.transfer_read %[[KT]][%[[D]], %c16]{{.*}} : tensor<128x32xf32>, vector<16xf32>
// CHECK:     vector.transfer_read %{{.*}}[%[[R]], %[[D]]]{{.*}} : tensor<64x128xbf16>, vector<1xbf16>
// CHECK:     vector.broadcast %{{.*}} : vector<1xf32> to vector<16xf32>
// CHECK-COUNT-2: vector.fma
// softcap: c log2(e) tanh(x scale / c)
// CHECK:   math.tanh %{{.*}} : vector<16xf32>
// CHECK:   vector.transfer_write %{{.*}}[%[[R]], %c0]{{.*}} : vector<16xf32>, tensor<64x32xf32>
// CHECK-NOT: gqa.
func.func @scores(%q: tensor<64x128xbf16>, %k: tensor<32x128xbf16>) -> tensor<64x32xf32> {
  %s = gqa.scores %q, %k scale(0.0883883) softcap(30.0)
         : tensor<64x128xbf16>, tensor<32x128xbf16> -> tensor<64x32xf32>
  return %s : tensor<64x32xf32>
}

// -----

// The scores of a block of few rows (decode: the g heads of one position),
// where transposing K would cost more than it saves: per query row, four
// keys at a time, each dot product accumulating in a vector of 16 lanes over
// the head dim and reduced once; then the scale, per score.
// CHECK-LABEL: func.func @scores_few_rows
// CHECK-NOT: linalg.generic
// CHECK: scf.for %[[R:.*]] = %c0 to %c8 step %c1
// CHECK:   scf.for %[[C:.*]] = %c0 to %c32 step %c4
// CHECK:     scf.for %[[D:.*]] = %c0 to %c128 step %c16 iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:       vector.transfer_read %{{.*}}[%[[R]], %[[D]]]{{.*}} : tensor<8x128xbf16>, vector<16xbf16>
// CHECK:       arith.extf %{{.*}} : vector<16xbf16> to vector<16xf32>
// CHECK:       vector.fma
// CHECK:     vector.reduction <add>, %{{.*}} fastmath<reassoc,contract> : vector<16xf32> into f32
// CHECK:     tensor.insert %{{.*}} into %{{.*}}[%[[R]], %{{.*}}] : tensor<8x32xf32>
func.func @scores_few_rows(%q: tensor<8x128xbf16>, %k: tensor<32x128xbf16>) -> tensor<8x32xf32> {
  %s = gqa.scores %q, %k scale(0.0883883)
         : tensor<8x128xbf16>, tensor<32x128xbf16> -> tensor<8x32xf32>
  return %s : tensor<8x32xf32>
}

// -----

// Any other head dim: a linalg contraction over it in f32, then the scale.
// CHECK-LABEL: func.func @scores_odd
// CHECK: %[[DOT:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<?x20xf16>, tensor<5x20xf16>) outs(%{{.*}} : tensor<?x5xf32>)
// CHECK:   arith.extf
// CHECK:   arith.mulf {{.*}} fastmath<reassoc,contract>
// CHECK:   arith.addf {{.*}} fastmath<reassoc,contract>
// CHECK: linalg.generic {{.*}} ins(%[[DOT]] : tensor<?x5xf32>)
// CHECK:   arith.mulf
func.func @scores_odd(%q: tensor<?x20xf16>, %k: tensor<5x20xf16>) -> tensor<?x5xf32> {
  %s = gqa.scores %q, %k scale(0.25) : tensor<?x20xf16>, tensor<5x20xf16> -> tensor<?x5xf32>
  return %s : tensor<?x5xf32>
}

// -----

// P V: a register-blocked product over the keys, 4 rows (then one at a time
// for the rest of a partial block) x 4 vectors of 16 columns, each
// accumulator vector starting from its columns of A times the row's rescale;
// written back over the accumulator.
// CHECK-LABEL: func.func @accumulate
// CHECK-SAME: %[[ACC:[^:]*]]: tensor<?x64xf32>
// CHECK: %[[ROWS:.*]] = tensor.dim
// CHECK: %[[FULL:.*]] = affine.apply #{{.*}}()[%[[ROWS]]]
// CHECK: scf.for %[[R:.*]] = %c0 to %[[FULL]] step %c4 iter_args(%[[A:.*]] = %[[ACC]])
// CHECK-COUNT-16: arith.mulf %{{.*}}, %{{.*}} : vector<16xf32>
// CHECK:   scf.for %{{.*}} = %c0 to %c32 step %c1 iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK-COUNT-16: vector.fma
// CHECK:   vector.transfer_write %{{.*}}, %[[A]][%[[R]], %c0]
// CHECK: scf.for %[[R1:.*]] = %[[FULL]] to %[[ROWS]] step %c1
// CHECK-COUNT-4: vector.fma
func.func @accumulate(%p: tensor<?x32xbf16>, %v: tensor<32x64xbf16>, %acc: tensor<?x64xf32>, %alpha: tensor<?xf32>) -> tensor<?x64xf32> {
  %r = gqa.accumulate %p, %v, %acc, %alpha : tensor<?x32xbf16>, tensor<32x64xbf16>, tensor<?x64xf32>, tensor<?xf32>
  return %r : tensor<?x64xf32>
}

// -----

// The mask: per element, the keys of the row's query position (row / g).
// CHECK-LABEL: func.func @mask
// CHECK: linalg.generic
// CHECK:   %[[R:.*]] = linalg.index 0
// CHECK:   %[[C:.*]] = linalg.index 1
// CHECK:   affine.apply #{{.*}}()[%{{.*}}, %[[R]]]
// CHECK:   arith.select %{{.*}}, %{{.*}}, %cst
func.func @mask(%s: tensor<64x32xf32>, %row0: index, %key0: index, %off: index, %len: index) -> tensor<64x32xf32> {
  %m = gqa.mask_scores %s rows(%row0) keys(%key0) offset(%off) kv_len(%len) group(8) mask<causal> : tensor<64x32xf32>
  return %m : tensor<64x32xf32>
}

// -----

// The online softmax: row maxima (max ignoring NaN; per row, lane-wise over
// vectors of 16 scores, then by halving), exp2, row sums, P in the element
// type; m and l written over their inputs.
// CHECK-LABEL: func.func @softmax
// CHECK-SAME: (%[[S:.*]]: tensor<?x32xf32>, %[[M:.*]]: tensor<?xf32>, %[[L:.*]]: tensor<?xf32>)
// CHECK: %[[ROWS:.*]] = tensor.dim %[[S]], %c0
// CHECK: tensor.empty(%[[ROWS]]) : tensor<?xf32>
// CHECK: scf.for %[[R:.*]] = %c0 to %[[ROWS]] step %c1
// CHECK:   scf.for {{.*}} -> (vector<16xf32>)
// CHECK:     arith.maxnumf %{{.*}} : vector<16xf32>
// CHECK:   vector.extract_strided_slice %{{.*}} {offsets = [8], sizes = [8], strides = [1]}
// CHECK:   arith.maxnumf %{{.*}} : vector<8xf32>
// CHECK:   arith.maxnumf %{{.*}} : vector<1xf32>
// CHECK:   tensor.insert %{{.*}}[%[[R]]] : tensor<?xf32>
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<?xf32>) outs(%[[M]], %{{.*}}, %{{.*}} : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>)
// CHECK:   math.exp2
// CHECK: math.exp2
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: outs(%[[L]] : tensor<?xf32>)
// CHECK:   math.fma
func.func @softmax(%s: tensor<?x32xf32>, %m: tensor<?xf32>, %l: tensor<?xf32>) -> (tensor<?x32xbf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>) {
  %p, %m1, %l1, %a = gqa.online_softmax %s, %m, %l : tensor<?x32xf32>, tensor<?xf32> -> tensor<?x32xbf16>
  return %p, %m1, %l1, %a : tensor<?x32xbf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// Loads gather packed rows (position = row / g, head = kvh * g + row mod g)
// and paged rows through the block table, clamped into the pool; rows past
// the end are zero.
// CHECK-LABEL: func.func @loads
// CHECK: tensor.generate
// CHECK:   arith.cmpi slt
// CHECK:   memref.load %{{.*}} : memref<?x?x32x128xbf16>
// CHECK:   arith.select
// CHECK: tensor.generate
// CHECK:   memref.load %{{.*}} : memref<?x?xi32>
// CHECK:   arith.maxsi
// CHECK:   arith.minsi
// CHECK:   memref.load %{{.*}} : memref<?x16x4x64xbf16>
func.func @loads(%query: memref<?x?x32x128xbf16>, %pool: memref<?x16x4x64xbf16>, %table: memref<?x?xi32>, %b: index, %kvh: index, %row0: index, %len: index) -> (tensor<64x128xbf16>, tensor<32x64xbf16>) {
  %q = gqa.load_query_tile %query[%b, %kvh, %row0] heads(32, 4) layout<bshd> : memref<?x?x32x128xbf16> -> tensor<64x128xbf16>
  %v = gqa.load_kv_tile %pool[%b, %kvh, %row0] kv_len(%len) block_table(%table : memref<?x?xi32>) layout<bshd> : memref<?x16x4x64xbf16> -> tensor<32x64xbf16>
  return %q, %v : tensor<64x128xbf16>, tensor<32x64xbf16>
}

// -----

// The combine: per row, the largest LSE, the weights exp(lse - max), the
// weighted sum of the partial rows.
// CHECK-LABEL: func.func @combine
// CHECK: scf.for
// CHECK:   scf.for {{.*}} iter_args
// CHECK:     arith.maxnumf
// CHECK:   math.exp
// CHECK:   scf.for
// CHECK:     math.fma
// CHECK:     arith.truncf
// CHECK:     memref.store
func.func @combine(%wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %out: memref<?x?x32x64xbf16>, %b: index, %row0: index, %ns: index) {
  gqa.combine_splits %wo, %wl, %out[%b, %row0] splits(%ns) rows(8) layout<bshd> : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
  return
}

// -----

// Sinks: each packed row reads its head's sink; finalize folds it in as one
// more key (score log2(e) sink, no value): a per-row factor alpha / l' and
// LSE, then O = A * factor.
// CHECK-LABEL: func.func @sinks
// CHECK: tensor.generate %{{.*}} {
// CHECK:   affine.apply
// CHECK:   memref.load %{{.*}}[%{{.*}}] : memref<16xf32>
// CHECK: linalg.generic
// CHECK:   arith.mulf %{{.*}}, %cst
// CHECK:   arith.maxnumf
// CHECK:   math.exp2
// CHECK:   math.fma
// CHECK:   arith.divf
// CHECK:   math.log2
// CHECK: linalg.generic
// CHECK:   arith.mulf
func.func @sinks(%sinks: memref<16xf32>, %kvh: index, %row0: index, %rows: index, %acc: tensor<?x64xf32>, %m: tensor<?xf32>, %l: tensor<?xf32>) -> (tensor<?x64xf32>, tensor<?xf32>) {
  %s = gqa.load_sink_tile %sinks[%kvh, %row0] rows(%rows) group(4) : memref<16xf32> -> tensor<?xf32>
  %o, %lse = gqa.finalize %acc, %m, %l sinks(%s : tensor<?xf32>) : tensor<?x64xf32>, tensor<?xf32>
  return %o, %lse : tensor<?x64xf32>, tensor<?xf32>
}

// -----

// The LSE of each row that exists goes to [B, Hq, Sq].
// CHECK-LABEL: func.func @store_lse
// CHECK: scf.for
// CHECK:   tensor.extract
// CHECK:   memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] : memref<?x32x?xf32>
func.func @store_lse(%lse: tensor<64xf32>, %out: memref<?x32x?xf32>, %b: index, %kvh: index, %row0: index) {
  gqa.store_lse_tile %lse, %out[%b, %kvh, %row0] group(8) : tensor<64xf32>, memref<?x32x?xf32>
  return
}

// -----

// The combine with sinks and the merged LSE: the sink joins the maximum and
// the weights; M + log(weights) is stored.
// CHECK-LABEL: func.func @combine_sinks_lse
// CHECK: scf.for
// CHECK:   arith.maxnumf
// CHECK:   memref.load %{{.*}}[%{{.*}}] : memref<32xf32>
// CHECK:   arith.maxnumf
// CHECK:   math.exp
// CHECK:   math.log
// CHECK:   memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] : memref<?x32x?xf32>
func.func @combine_sinks_lse(%wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %out: memref<?x?x32x64xbf16>, %s: memref<32xf32>, %lse: memref<?x32x?xf32>, %b: index, %row0: index, %ns: index) {
  gqa.combine_splits %wo, %wl, %out[%b, %row0] splits(%ns) rows(8) layout<bshd> sinks(%s : memref<32xf32>) lse(%lse : memref<?x32x?xf32>) : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
  return
}

// -----

// gqa.merge_states' merge: the combine's loops over two parts, part p's LSE
// and values those of out_a (p = 0) or out_b; the merged LSE is stored after
// the row's values (out may be out_a).
// CHECK-LABEL: func.func @merge_rows
// CHECK: scf.for
// CHECK:   scf.for {{.*}} iter_args
// CHECK:     memref.load %{{.*}} : memref<?x8x?xf32>
// CHECK:     memref.load %{{.*}} : memref<?x8x?xf32>
// CHECK:     arith.select
// CHECK:     arith.maxnumf
// CHECK:   scf.for
// CHECK:     scf.for {{.*}} iter_args
// CHECK:       memref.load %{{.*}} : memref<?x8x?x64xf16>
// CHECK:       memref.load %{{.*}} : memref<?x8x?x64xf16>
// CHECK:       arith.select
// CHECK:       arith.extf
// CHECK:       math.fma
// CHECK:     arith.truncf
// CHECK:     memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<?x8x?x64xf16>
// CHECK:   math.log
// CHECK:   memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] : memref<?x8x?xf32>
func.func @merge_rows(%oa: memref<?x8x?x64xf16>, %la: memref<?x8x?xf32>, %ob: memref<?x8x?x64xf16>, %lb: memref<?x8x?xf32>, %l: memref<?x8x?xf32>, %b: index, %row0: index) {
  gqa.merge_rows %oa, %la, %ob, %lb, %oa, %l[%b, %row0] rows(8) layout<bhsd> : memref<?x8x?x64xf16>, memref<?x8x?xf32>
  return
}
