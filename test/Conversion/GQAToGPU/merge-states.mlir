// RUN: gqa-opt %s --convert-gqa-to-gpu --canonicalize --cse | FileCheck %s

// gqa.merge_states becomes one kernel, gqa_merge_states, on grid
// (ceil(S * H / rows), 1, B) of 128 threads: each thread merges 4 values of
// one (head, position) row (docs/kernel-metadata.md, "Merge kernel sets").

// CHECK-LABEL: func.func @merge_bshd(
// CHECK-SAME: %[[OA:[^:]*]]: memref<?x?x64x128xbf16>, %[[LA:[^:]*]]: memref<?x64x?xf32>, %[[OB:[^:]*]]: memref<?x?x64x128xbf16>, %[[LB:[^:]*]]: memref<?x64x?xf32>, %[[O:[^:]*]]: memref<?x?x64x128xbf16>, %[[L:[^:]*]]: memref<?x64x?xf32>)
// The grid is the output's (B, S); the sizes passed, out_a's.
// CHECK-DAG:   %[[B:.*]] = memref.dim %[[O]], %c0
// CHECK-DAG:   %[[S:.*]] = memref.dim %[[O]], %c1
// CHECK:       %[[X:.*]] = arith.muli %[[S]], %c16
// CHECK:       gpu.launch_func async [%{{.*}}] @gqa_kernels::@gqa_merge_states blocks in (%[[X]], %c1, %[[B]]) threads in (%c128, %c1, %c1) dynamic_shared_memory_size %c0_i32 args(%{{.*}} : memref<1xbf16>, %{{.*}} : memref<1xf32>, %{{.*}} : memref<1xbf16>, %{{.*}} : memref<1xf32>, %{{.*}} : memref<1xbf16>, %{{.*}} : memref<1xf32>, %{{.*}} : i64, %{{.*}} : i64)
func.func @merge_bshd(%oa: memref<?x?x64x128xbf16>, %la: memref<?x64x?xf32>,
                      %ob: memref<?x?x64x128xbf16>, %lb: memref<?x64x?xf32>,
                      %o: memref<?x?x64x128xbf16>, %l: memref<?x64x?xf32>) {
  gqa.merge_states ins(%oa, %la, %ob, %lb : memref<?x?x64x128xbf16>,
      memref<?x64x?xf32>, memref<?x?x64x128xbf16>, memref<?x64x?xf32>)
      outs(%o : memref<?x?x64x128xbf16>, %l : memref<?x64x?xf32>) layout<bshd>
  return
}

// Packed tokens in place (out = out_a, passed twice): launched as a batch of
// one, the tokens being seq_q.
// CHECK: func.func @merge_varlen_in_place(
// CHECK-SAME: %[[VA:[^:]*]]: memref<?x8x64xf16>
// CHECK:       %[[T:.*]] = memref.dim %[[VA]], %c0
// CHECK:       %[[VAP:.*]] = memref.reinterpret_cast %[[VA]] to offset: [0], sizes: [1], strides: [1] : memref<?x8x64xf16> to memref<1xf16>
// CHECK:       %[[T64:.*]] = arith.index_cast %[[T]] : index to i64
// CHECK:       gpu.launch_func async [%{{.*}}] @gqa_kernels_1::@gqa_merge_states blocks in (%[[T]], %c1, %{{.*}}) threads in (%c128, %c1, %c1) dynamic_shared_memory_size %c0_i32 args(%[[VAP]] : memref<1xf16>, %{{.*}} : memref<1xf32>, %{{.*}} : memref<1xf16>, %{{.*}} : memref<1xf32>, %[[VAP]] : memref<1xf16>, %{{.*}} : memref<1xf32>, %c1_i64 : i64, %[[T64]] : i64)
func.func @merge_varlen_in_place(%oa: memref<?x8x64xf16>, %la: memref<8x?xf32>,
                                 %ob: memref<?x8x64xf16>, %lb: memref<8x?xf32>,
                                 %l: memref<8x?xf32>) {
  gqa.merge_states ins(%oa, %la, %ob, %lb : memref<?x8x64xf16>, memref<8x?xf32>,
      memref<?x8x64xf16>, memref<8x?xf32>)
      outs(%oa : memref<?x8x64xf16>, %l : memref<8x?xf32>) layout<bshd>
  return
}

// The kernels, after the functions.
// CHECK:       gpu.module @gqa_kernels attributes {gqa.config = {dtype = "bf16", head_dim_v = 128 : i64, heads = 64 : i64, layout = "bshd", varlen = false}} {
// CHECK:       gpu.func @gqa_merge_states(
// CHECK-SAME:    gqa.dynamic_shared_memory_bytes = 0 : i64
// CHECK-SAME:    gqa.grid = [{div = 4 : i64, mul = 64 : i64, sym = "seq_q"}, {const = 1 : i64}, {sym = "batch"}]
// CHECK-SAME:    gqa.params = ["out_a", "lse_a", "out_b", "lse_b", "out", "lse", "batch", "seq_q"], gqa.role = "merge", known_block_size = array<i32: 128, 1, 1>
// Row block_id.x * 4 + tid / 32, columns 4 * (tid % 32), batch block_id.z.
// CHECK-DAG:     gpu.block_id x
// CHECK-DAG:     gpu.block_id z
// CHECK-DAG:     gpu.thread_id x
// Each part's LSE, then its 4 values, widened to f32.
// CHECK:         %[[LSEA:.*]] = memref.load
// CHECK:         %[[QA:.*]] = vector.load %{{.*}}[%[[AT:.*]]] {alignment = 8 : i64} : memref<?xbf16>, vector<4xbf16>
// CHECK:         arith.extf %[[QA]] : vector<4xbf16> to vector<4xf32>
// CHECK:         %[[LSEB:.*]] = memref.load
// CHECK:         vector.load %{{.*}}[%[[AT]]] {alignment = 8 : i64} : memref<?xbf16>, vector<4xbf16>
// The shift: max of the two, 0 when both are -inf.
// CHECK:         %[[MAX:.*]] = arith.maxnumf %[[LSEA]], %[[LSEB]] : f32
// CHECK:         %[[NONE:.*]] = arith.cmpf oeq, %[[MAX]], %cst{{.*}} : f32
// CHECK:         arith.select %[[NONE]], %cst{{.*}}, %[[MAX]] : f32
// CHECK:         llvm.nvvm.ex2.approx.f32
// CHECK:         llvm.nvvm.ex2.approx.f32
// CHECK-COUNT-4: llvm.intr.fma
// CHECK:         scf.if
// CHECK:           arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// CHECK:           vector.store %{{.*}}, %{{.*}}[%[[AT]]] {alignment = 8 : i64} : memref<?xbf16>, vector<4xbf16>
// The LSE by the row's first thread: shift + ln(total), -inf when 0.
// CHECK:         llvm.nvvm.lg2.approx.f"
// CHECK:         scf.if
// CHECK:           memref.store %{{.*}} : memref<?xf32>
// CHECK:       gpu.module @gqa_kernels_1 attributes {gqa.config = {batch = 1 : i64, dtype = "f16", head_dim_v = 64 : i64, heads = 8 : i64, layout = "bshd", varlen = true}} {
// CHECK:       gpu.func @gqa_merge_states(
// CHECK-SAME:    gqa.grid = [{div = 8 : i64, mul = 8 : i64, sym = "seq_q"}, {const = 1 : i64}, {sym = "batch"}]

// bhsd: H is dimension 1 (S is dimension 2), 16 rows of 8 threads per CTA.
// CHECK:       gpu.module @gqa_kernels_2 attributes {gqa.config = {batch = 2 : i64, dtype = "f32", head_dim_v = 32 : i64, heads = 4 : i64, layout = "bhsd", seq_q = 3 : i64, varlen = false}} {
// CHECK:       gpu.func @gqa_merge_states(
// CHECK-SAME:    gqa.grid = [{div = 16 : i64, mul = 4 : i64, sym = "seq_q"}, {const = 1 : i64}, {sym = "batch"}]
func.func @merge_bhsd_static(%oa: memref<2x4x3x32xf32>, %la: memref<2x4x3xf32>,
                             %ob: memref<2x4x3x32xf32>, %lb: memref<2x4x3xf32>,
                             %o: memref<2x4x3x32xf32>, %l: memref<2x4x3xf32>) {
  gqa.merge_states ins(%oa, %la, %ob, %lb : memref<2x4x3x32xf32>,
      memref<2x4x3xf32>, memref<2x4x3x32xf32>, memref<2x4x3xf32>)
      outs(%o : memref<2x4x3x32xf32>, %l : memref<2x4x3xf32>) layout<bhsd>
  return
}
