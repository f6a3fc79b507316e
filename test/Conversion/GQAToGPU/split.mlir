// RUN: gqa-opt %s --convert-gqa-to-gpu="max-splits=16" --canonicalize --cse | FileCheck %s

// Split-KV (Flash-Decoding) for Llama-3-70B decode with per-sequence KV
// lengths: a split kernel on grid (ceil(Sq * 8 / 64), 8 * num_splits, B)
// writes normalised partial outputs and log-sum-exps to an f32 workspace,
// and a combine kernel on (ceil(Sq * 64 / 4), B, 1) merges them
// (docs/kernel-metadata.md). Launched with one split, the split kernel writes
// the output itself and the combine kernel is not launched.

// CHECK-LABEL: func.func @decode(
// CHECK-SAME: %[[Q:[^:]*]]: memref<?x?x64x128xbf16>, %[[K:[^:]*]]: memref<?x?x8x128xbf16>, %[[V:[^:]*]]: memref<?x?x8x128xbf16>, %[[LENS:[^:]*]]: memref<?xi32>, %[[O:[^:]*]]: memref<?x?x64x128xbf16>)
// CHECK-DAG:   %[[B:.*]] = memref.dim %[[Q]], %c0
// CHECK-DAG:   %[[SQ:.*]] = memref.dim %[[Q]], %c1
// CHECK-DAG:   %[[SKV:.*]] = memref.dim %[[K]], %c1
// The host takes min(16, T) splits of the T = ceil(Skv / 64) KV tiles,
// evened out so that none is empty (gqa-distribute's emitSplitCount).
// CHECK:       %[[T:.*]] = arith.ceildivui %[[SKV]], %c64 : index
// CHECK:       %[[WANT0:.*]] = arith.minui %[[T]], %c16 : index
// CHECK:       %[[WANT:.*]] = arith.maxui %[[WANT0]], %c1 : index
// CHECK:       %[[PER0:.*]] = arith.ceildivui %[[T]], %[[WANT]] : index
// CHECK:       %[[PER:.*]] = arith.maxui %[[PER0]], %c1 : index
// CHECK:       %[[NS0:.*]] = arith.ceildivui %[[T]], %[[PER]] : index
// CHECK:       %[[NS:.*]] = arith.maxui %[[NS0]], %c1 : index
// The workspace on the device: f32 [NS, B, 64, Sq, 128] and [NS, B, 64, Sq].
// CHECK:       %[[PO:.*]], %{{.*}} = gpu.alloc async [%{{.*}}] (%[[NS]], %[[B]], %[[SQ]]) : memref<?x?x64x?x128xf32>
// CHECK:       %[[PL:.*]], %{{.*}} = gpu.alloc async [%{{.*}}] (%[[NS]], %[[B]], %[[SQ]]) : memref<?x?x64x?xf32>
// CHECK:       %[[GY:.*]] = arith.muli %[[NS]], %c8 overflow<nsw> : index
// CHECK:       scf.if
// CHECK:         %[[LP:.*]] = memref.reinterpret_cast %[[LENS]] to offset: [0], sizes: [1], strides: [1] : memref<?xi32> to memref<1xi32>
// CHECK:         %[[POP:.*]] = memref.reinterpret_cast %[[PO]] to offset: [0], sizes: [1], strides: [1] : memref<?x?x64x?x128xf32> to memref<1xf32>
// CHECK:         %[[PLP:.*]] = memref.reinterpret_cast %[[PL]] to offset: [0], sizes: [1], strides: [1] : memref<?x?x64x?xf32> to memref<1xf32>
// CHECK:         %[[NS64:.*]] = arith.index_cast %[[NS]] : index to i64
// CHECK:         gpu.launch_func async [%{{.*}}] @gqa_kernels::@gqa_attention_fwd_split blocks in (%{{.*}}, %[[GY]], %[[B]]) threads in (%c128, %c1, %c1) dynamic_shared_memory_size %c49152_i32 args(%{{.*}} : memref<1xbf16>, %{{.*}} : memref<1xbf16>, %{{.*}} : memref<1xbf16>, %{{.*}} : memref<1xbf16>, %[[LP]] : memref<1xi32>, %[[POP]] : memref<1xf32>, %[[PLP]] : memref<1xf32>, %{{.*}} : i64, %{{.*}} : i64, %{{.*}} : i64, %[[NS64]] : i64)
// The combine only when there is more than one split.
// CHECK:       %[[SEVERAL:.*]] = arith.cmpi ugt, %[[NS]], %c1 : index
// CHECK:       scf.if %[[SEVERAL]] {
// CHECK:         %[[CX:.*]] = arith.muli %[[SQ]], %c16 overflow<nsw> : index
// CHECK:         gpu.launch_func async [%{{.*}}] @gqa_kernels::@gqa_attention_combine blocks in (%[[CX]], %[[B]], %c1) threads in (%c128, %c1, %c1) dynamic_shared_memory_size %c0_i32 args(%{{.*}} : memref<1xf32>, %{{.*}} : memref<1xf32>, %{{.*}} : memref<1xbf16>, %{{.*}} : i64, %{{.*}} : i64, %{{.*}} : i64)
// CHECK:       gpu.dealloc async [%{{.*}}] %[[PO]] : memref<?x?x64x?x128xf32>
// CHECK:       gpu.dealloc async [%{{.*}}] %[[PL]] : memref<?x?x64x?xf32>

// CHECK:       gpu.module @gqa_kernels attributes {gqa.config = {{{.*}}kv_lens = "i32"{{.*}}}, gqa.split_kv = {max_splits = 16 : i64}}
// CHECK:       gpu.func @gqa_attention_fwd_split(%{{.*}}: memref<1xbf16>, %{{.*}}: memref<1xbf16>, %{{.*}}: memref<1xbf16>, %{{.*}}: memref<1xbf16>, %[[KL:.*]]: memref<1xi32>, %{{.*}}: memref<1xf32>, %{{.*}}: memref<1xf32>, %{{.*}}: i64, %{{.*}}: i64, %[[SKVP:.*]]: i64, %[[NSP:.*]]: i64) kernel
// CHECK-SAME:    gqa.grid = [{div = 64 : i64, mul = 8 : i64, sym = "seq_q"}, {mul = 8 : i64, sym = "num_splits"}, {sym = "batch"}]
// CHECK-SAME:    gqa.params = ["q", "k", "v", "out", "kv_lens", "partial_out", "partial_lse", "batch", "seq_q", "seq_kv", "num_splits"]
// CHECK-SAME:    gqa.role = "split"
// CHECK-DAG:     %[[SKVI:.*]] = arith.index_cast %[[SKVP]] : i64 to index
// CHECK-DAG:     %[[NSI:.*]] = arith.index_cast %[[NSP]] : i64 to index
// CHECK-DAG:     %[[GKL:.*]] = memref.reinterpret_cast %[[KL]] to offset: [0], sizes: [%{{.*}}], strides: [1] : memref<1xi32> to memref<?xi32>
// grid y = split * 8 + kvh.
// CHECK:         %[[BY:.*]] = gpu.block_id y
// CHECK:         %[[BZ:.*]] = gpu.block_id z
// CHECK:         %[[KVH:.*]] = arith.remui %[[BY]], %c8 : index
// CHECK:         %[[SPLIT:.*]] = arith.divui %[[BY]], %c8 : index
// The KV length of this sequence, clamped to [0, Skv] as on the CPU.
// CHECK:         %[[LEN32:.*]] = memref.load %[[GKL]][%[[BZ]]] : memref<?xi32>
// CHECK:         %[[LEN:.*]] = arith.index_cast %[[LEN32]] : i32 to index
// CHECK:         %[[LENPOS:.*]] = arith.maxsi %[[LEN]], %c0 : index
// CHECK:         %[[KVLEN:.*]] = arith.minsi %[[LENPOS]], %[[SKVI]] : index
// Split s covers tiles [s t, (s + 1) t), t = ceil(ceil(Skv / 64) / NS),
// intersected with the tiles the causal mask leaves visible; NS is the
// launch's, not the host's choice.
// CHECK:         %[[TILES:.*]] = arith.ceildivui %[[SKVI]], %c64 : index
// CHECK:         %[[TPS:.*]] = arith.ceildivui %[[TILES]], %[[NSI]] : index
// CHECK:         %[[LO:.*]] = arith.muli %[[SPLIT]], %[[TPS]] : index
// CHECK:         %[[HI0:.*]] = arith.addi %[[LO]], %[[TPS]] : index
// CHECK:         %[[HI:.*]] = arith.minsi %[[VISIBLE:.*]], %[[HI0]] : index
// The last split also takes the tiles past the partition.
// CHECK:         %[[END:.*]] = arith.select %{{.*}}, %[[VISIBLE]], %[[HI]] : index
// CHECK:         scf.for %{{.*}} = %{{.*}} to %[[END]] step %c1
// Epilogue: lse = (m + log2 l) ln 2, -inf for rows without keys; with one
// split, the bf16 output; else normalised f32 partials and the LSE, written
// by one lane per row.
// CHECK:         %[[LOG:.*]] = llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"
// CHECK:         %[[LSE0:.*]] = arith.addf %{{.*}}, %[[LOG]] : f32
// CHECK:         %[[LSE1:.*]] = arith.mulf %[[LSE0]], %{{.*}} : f32
// CHECK:         %[[LSE:.*]] = arith.select %{{.*}}, %{{.*}}, %[[LSE1]] : f32
// CHECK:         %[[SINGLE:.*]] = arith.cmpi eq, %[[NSI]], %c1 : index
// CHECK:         scf.if %[[SINGLE]] {
// CHECK:           vector.store %{{.*}} {alignment = 4 : i64} : memref<?xbf16>, vector<2xbf16>
// CHECK-NOT:       memref<?xf32>
// CHECK:         } else {
// CHECK:           vector.store %{{.*}} {alignment = 8 : i64} : memref<?xf32>, vector<2xf32>
// CHECK:           scf.if
// CHECK-NEXT:        memref.store %[[LSE]]

// CHECK:       gpu.func @gqa_attention_combine(%{{.*}}: memref<1xf32>, %{{.*}}: memref<1xf32>, %{{.*}}: memref<1xbf16>, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) kernel
// CHECK-SAME:    gqa.grid = [{div = 4 : i64, mul = 64 : i64, sym = "seq_q"}, {sym = "batch"}, {const = 1 : i64}]
// CHECK-SAME:    gqa.params = ["partial_out", "partial_lse", "out", "batch", "seq_q", "num_splits"]
// CHECK-SAME:    gqa.role = "combine"
// CHECK-SAME:    known_block_size = array<i32: 128, 1, 1>
// Pass 1: the largest lse; pass 2: weights exp(lse - max), 16-byte loads.
// CHECK:         scf.for {{.*}} -> (f32)
// CHECK:           arith.maxnumf
// CHECK:         scf.for {{.*}} -> (f32, f32, f32, f32, f32)
// CHECK:           llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"
// CHECK:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:         scf.if
// CHECK:           vector.store %{{.*}} {alignment = 8 : i64} : memref<?xbf16>, vector<4xbf16>
func.func @decode(%q: memref<?x?x64x128xbf16>, %k: memref<?x?x8x128xbf16>,
                  %v: memref<?x?x8x128xbf16>, %lens: memref<?xi32>,
                  %o: memref<?x?x64x128xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x64x128xbf16>, memref<?x?x8x128xbf16>, memref<?x?x8x128xbf16>)
    kv_lens(%lens : memref<?xi32>)
    outs(%o : memref<?x?x64x128xbf16>) heads(64, 8) layout<bshd> mask<causal>
  return
}
