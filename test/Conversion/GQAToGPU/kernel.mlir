// RUN: gqa-opt %s --convert-gqa-to-gpu --canonicalize --cse | FileCheck %s

// Llama-3-70B: 64 query heads over 8 KV heads (g = 8), D = 128, bf16, bshd,
// causal, dynamic batch and lengths, through the tiled form
// (gqa-distribute, gqa-prefetch-keys, convert-gqa-tiles-to-gpu). One CTA per
// (64 packed rows, KV head, batch entry): the KV head comes from the grid,
// the query head of packed row r is kvh * 8 + r % 8, and each K/V tile is
// copied into shared memory once per CTA for the 8 query heads of the group.
// No K/V buffer or index ever has 64 heads.

// CHECK-LABEL: func.func @l70b(
// CHECK-SAME: %[[Q:[^:]*]]: memref<?x?x64x128xbf16>, %[[K:[^:]*]]: memref<?x?x8x128xbf16>, %[[V:[^:]*]]: memref<?x?x8x128xbf16>, %[[O:[^:]*]]: memref<?x?x64x128xbf16>)
// CHECK-DAG:   %[[B:.*]] = memref.dim %[[Q]], %c0
// CHECK-DAG:   %[[SQ:.*]] = memref.dim %[[Q]], %c1
// The grid: (ceil(Sq * g / 64), Hkv, B); nothing is launched when it is empty.
// CHECK:       scf.if
// CHECK-DAG:     %[[QP:.*]] = memref.reinterpret_cast %[[Q]] to offset: [0], sizes: [1], strides: [1] : memref<?x?x64x128xbf16> to memref<1xbf16>
// CHECK-DAG:     %[[KP:.*]] = memref.reinterpret_cast %[[K]] to offset: [0], sizes: [1], strides: [1] : memref<?x?x8x128xbf16> to memref<1xbf16>
// CHECK-DAG:     %[[VP:.*]] = memref.reinterpret_cast %[[V]] to offset: [0], sizes: [1], strides: [1] : memref<?x?x8x128xbf16> to memref<1xbf16>
// CHECK-DAG:     %[[OP:.*]] = memref.reinterpret_cast %[[O]] to offset: [0], sizes: [1], strides: [1] : memref<?x?x64x128xbf16> to memref<1xbf16>
// CHECK-DAG:     %[[B64:.*]] = arith.index_cast %[[B]] : index to i64
// CHECK-DAG:     %[[SQ64:.*]] = arith.index_cast %[[SQ]] : index to i64
// CHECK-DAG:     %[[SKV:.*]] = memref.dim %[[K]], %c1
// CHECK-DAG:     %[[SKV64:.*]] = arith.index_cast %[[SKV]] : index to i64
// 128 threads, 48 KiB of dynamic shared memory, on a stream of its own.
// CHECK:         %[[START:.*]] = gpu.wait async
// CHECK:         %[[DONE:.*]] = gpu.launch_func async [%[[START]]] @gqa_kernels::@gqa_attention_fwd blocks in (%{{.*}}, %c8, %[[B]]) threads in (%c128, %c1, %c1) dynamic_shared_memory_size %c49152_i32 args(%[[QP]] : memref<1xbf16>, %[[KP]] : memref<1xbf16>, %[[VP]] : memref<1xbf16>, %[[OP]] : memref<1xbf16>, %[[B64]] : i64, %[[SQ64]] : i64, %[[SKV64]] : i64)
// CHECK:         gpu.wait [%[[DONE]]]

// The kernel set describes itself for the metadata writer.
// CHECK:       gpu.module @gqa_kernels attributes {gqa.config = {dtype = "bf16", group_size = 8 : i64, head_dim = 128 : i64, head_dim_v = 128 : i64, kv_heads = 8 : i64, kv_lens = "none", layout = "bshd", lse = false, mask = "causal", packed_kv = false, page_size = 0 : i64, q_heads = 64 : i64, scale = 0.088388347648318433 : f64, sinks = false, softcap = 0.000000e+00 : f64, varlen = false, window_left = -1 : i64, window_right = 0 : i64}, gqa.split_kv = {max_splits = 0 : i64}}
// CHECK:       memref.global "public" @gqa_smem : memref<0xi8, 3> {alignment = 16 : i64}
// CHECK:       gpu.func @gqa_attention_fwd(%[[GQP:.*]]: memref<1xbf16>, %[[GKP:.*]]: memref<1xbf16>, %[[GVP:.*]]: memref<1xbf16>, %[[GOP:.*]]: memref<1xbf16>, %{{.*}}: i64, %{{.*}}: i64, %[[GSKV:.*]]: i64) kernel
// CHECK-SAME:    gqa.dynamic_shared_memory_bytes = 49152 : i64
// CHECK-SAME:    gqa.grid = [{div = 64 : i64, mul = 8 : i64, sym = "seq_q"}, {const = 8 : i64}, {sym = "batch"}]
// CHECK-SAME:    gqa.params = ["q", "k", "v", "out", "batch", "seq_q", "seq_kv"]
// CHECK-SAME:    gqa.role = "main"
// CHECK-SAME:    gqa.tile = {block_m = 64 : i64, block_n = 64 : i64, max_registers = 0 : i64, min_ctas_per_sm = 2 : i64, pack_gqa = true, q_in_registers = true, stages = 1 : i64, warps = 4 : i64}
// CHECK-SAME:    known_block_size = array<i32: 128, 1, 1>, nvvm.minctasm = 2 : i32
// K and V are viewed with Hkv = 8 heads of 128 (Skv * 1024 * B elements).
// CHECK:         %[[SKVI:.*]] = arith.index_cast %[[GSKV]] : i64 to index
// CHECK:         %[[KROWS:.*]] = arith.muli %[[SKVI]], %c1024 : index
// CHECK:         %[[KSIZE:.*]] = arith.muli %[[KROWS]], %{{.*}} : index
// CHECK:         %[[GK:.*]] = memref.reinterpret_cast %[[GKP]] to offset: [0], sizes: [%[[KSIZE]]], strides: [1] : memref<1xbf16> to memref<?xbf16>
// CHECK:         %[[GV:.*]] = memref.reinterpret_cast %[[GVP]] to offset: [0], sizes: [%[[KSIZE]]], strides: [1] : memref<1xbf16> to memref<?xbf16>
// CHECK:         %[[KVH:.*]] = gpu.block_id y
// CHECK:         %[[BATCH:.*]] = gpu.block_id z
// Shared memory: Q [64 x 128] | K [64 x 128] | V [64 x 128], one array.
// CHECK:         %[[SMEM:.*]] = memref.get_global @gqa_smem : memref<0xi8, 3>
// CHECK:         %[[BYTES:.*]] = memref.reinterpret_cast %[[SMEM]] to offset: [0], sizes: [49152], strides: [1] : memref<0xi8, 3> to memref<49152xi8, 3>
// CHECK:         %[[SQT:.*]] = memref.view %[[BYTES]][%c0][] : memref<49152xi8, 3> to memref<8192xbf16, 3>
// CHECK:         %[[SKT:.*]] = memref.view %[[BYTES]][%c16384][] : memref<49152xi8, 3> to memref<8192xbf16, 3>
// CHECK:         %[[SVT:.*]] = memref.view %[[BYTES]][%c32768][] : memref<49152xi8, 3> to memref<8192xbf16, 3>
// The query head of a packed row: kvh * 8 + r % 8, at position r / 8 (a row
// past Sq * 8 reads 0 bytes of the last row).
// CHECK:         %[[MEMBER:.*]] = arith.remui %[[R:.*]], %c8 : index
// CHECK-NEXT:    %[[FIRSTHEAD:.*]] = arith.muli %[[KVH]], %c8 : index
// CHECK-NEXT:    %[[HEAD:.*]] = arith.addi %[[FIRSTHEAD]], %[[MEMBER]] : index
// CHECK-NEXT:    %[[POS:.*]] = arith.divui %[[R]], %c8 : index
// Prologue: the Q tile (8 16-byte copies per thread), then the first K tile
// when the block has one (gqa-prefetch-keys).
// CHECK-COUNT-8: nvgpu.device_async_copy %{{.*}}[%{{.*}}], %[[SQT]][%{{.*}}], 8, %{{.*}} {bypassL1}
// CHECK-NOT:     nvgpu.device_async_copy
// CHECK:         nvvm.cp.async.commit.group
// Row j of K for (b, kvh) in bshd: b * Skv * 1024 + kvh * 128 + j * 1024,
// the base computed once per block.
// CHECK:         %[[KBATCH:.*]] = arith.muli %[[BATCH]], %[[KROWS]] : index
// CHECK:         %[[KHEAD:.*]] = arith.muli %[[KVH]], %c128 : index
// CHECK:         %[[KBASE:.*]] = arith.addi %[[KBATCH]], %[[KHEAD]] : index
// CHECK:         scf.if
// CHECK:           arith.addi %[[KBASE]], %{{.*}} : index
// CHECK-COUNT-8:   nvgpu.device_async_copy %[[GK]][%{{.*}}], %[[SKT]][%{{.*}}], 8, %{{.*}} {bypassL1}
// CHECK-NOT:       nvgpu.device_async_copy
// CHECK:           nvvm.cp.async.commit.group
// Q fragments are loaded once, before the KV loop.
// CHECK:         nvvm.cp.async.wait.group 0
// CHECK-NEXT:    gpu.barrier
// CHECK-COUNT-8: nvgpu.ldmatrix %[[SQT]][
// Causal: the loop starts at tile 0 and ends at the last row's diagonal.
// CHECK:         scf.for %{{.*}} = %c0 to %{{.*}} step %c1 iter_args(
// Per KV tile: one V tile for the whole group (8 copies per thread) ...
// CHECK:           nvvm.cp.async.wait.group 0
// CHECK-NEXT:      gpu.barrier
// CHECK-COUNT-8:   nvgpu.device_async_copy %[[GV]][%{{.*}}], %[[SVT]][%{{.*}}], 8, %{{.*}} {bypassL1}
// CHECK-NOT:       nvgpu.device_async_copy
// CHECK:           nvvm.cp.async.commit.group
// ... S = Q K^T from registers and the K tile (64 mma per warp) ...
// CHECK-NOT:       nvgpu.ldmatrix %[[SQT]][
// CHECK-COUNT-64:  nvvm.mma.sync
// CHECK:           nvvm.cp.async.wait.group 0
// CHECK-NEXT:      gpu.barrier
// ... the next K tile, prefetched under softmax and P V ...
// CHECK:           scf.if
// CHECK-COUNT-8:     nvgpu.device_async_copy %[[GK]][%{{.*}}], %[[SKT]][%{{.*}}], 8, %{{.*}} {bypassL1}
// CHECK-NOT:         nvgpu.device_async_copy
// CHECK:             nvvm.cp.async.commit.group
// ... masking on boundary tiles only (a CTA-uniform branch) ...
// CHECK:           scf.if %{{.*}} -> (f32, f32
// CHECK:             arith.select %{{.*}}, %{{.*}}, %cst
// CHECK:           } else {
// ... the online softmax with quad shuffles and exp2 ...
// CHECK:           gpu.shuffle  xor %{{.*}}, %c1_i32, %c32_i32 : f32
// CHECK:           gpu.shuffle  xor %{{.*}}, %c2_i32, %c32_i32 : f32
// CHECK:           llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"
// ... and O += P V with V transposed by ldmatrix (64 mma per warp), with
// no barrier of its own (the one before the K prefetch covered V).
// CHECK-NOT:       gpu.barrier
// CHECK:           nvgpu.ldmatrix %[[SVT]][%{{.*}}] {numTiles = 4 : i32, transpose = true}
// CHECK-COUNT-64:  nvvm.mma.sync
// CHECK-NOT:       nvvm.mma.sync
// CHECK:           scf.yield
// Epilogue: rows of the packed tile go to (b, position, head) in bshd.
// CHECK:         vector.store %{{.*}}, %{{.*}}[%{{.*}}] {alignment = 4 : i64} : memref<?xbf16>, vector<2xbf16>
// The copies still in flight (a prefetch the last tile did not issue) are
// awaited before the kernel returns.
// CHECK:         nvvm.cp.async.wait.group 0
// CHECK-NEXT:    gpu.return

func.func @l70b(%q: memref<?x?x64x128xbf16>, %k: memref<?x?x8x128xbf16>,
                %v: memref<?x?x8x128xbf16>, %o: memref<?x?x64x128xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x64x128xbf16>, memref<?x?x8x128xbf16>, memref<?x?x8x128xbf16>)
    outs(%o : memref<?x?x64x128xbf16>) heads(64, 8) layout<bshd> mask<causal>
  return
}
