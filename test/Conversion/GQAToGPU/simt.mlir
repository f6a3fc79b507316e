// RUN: gqa-opt %s --convert-gqa-to-gpu --canonicalize --cse | FileCheck %s

// f32 has no mma.sync path: the tiled form is lowered onto the CUDA cores
// with the same grid, packed GQA rows, parameters and KV prefetch. 16 packed
// rows per CTA (4 per warp), 32 keys per KV tile (one per lane), K rows
// padded by one element.

// CHECK-LABEL: func.func @f32(
// CHECK:       gpu.launch_func async [%{{.*}}] @gqa_kernels::@gqa_attention_fwd blocks in (%{{.*}}, %c2, %{{.*}}) threads in (%c128, %c1, %c1) dynamic_shared_memory_size %c16512_i32 args(%{{.*}} : memref<1xf32>, %{{.*}} : memref<1xf32>, %{{.*}} : memref<1xf32>, %{{.*}} : memref<1xf32>, %{{.*}} : i64, %{{.*}} : i64, %{{.*}} : i64)
// CHECK:       gpu.func @gqa_attention_fwd(
// CHECK-SAME:    gqa.grid = [{div = 16 : i64, mul = 4 : i64, sym = "seq_q"}, {const = 2 : i64}, {sym = "batch"}]
// CHECK-SAME:    gqa.tile = {block_m = 16 : i64, block_n = 32 : i64, max_registers = 0 : i64, min_ctas_per_sm = 4 : i64, pack_gqa = true, q_in_registers = false, stages = 1 : i64, warps = 4 : i64}
// Q [16 x 64] | K [32 x 65] | V [32 x 32].
// CHECK:         %[[SQT:.*]] = memref.view %{{.*}}[%c0][] : memref<16512xi8, 3> to memref<1024xf32, 3>
// CHECK:         %[[SKT:.*]] = memref.view %{{.*}}[%c4096][] : memref<16512xi8, 3> to memref<2080xf32, 3>
// CHECK:         %[[SVT:.*]] = memref.view %{{.*}}[%c12416][] : memref<16512xi8, 3> to memref<1024xf32, 3>
// CHECK:         %[[TID:.*]] = gpu.thread_id x
// CHECK:         %[[WARP:.*]] = arith.divui %[[TID]], %c32 : index
// The Q tile, copied by every thread, then the first K tile: a padded row
// (65 words) per warp, lanes over d.
// CHECK:         scf.for %{{.*}} = %[[TID]] to %c1024 step %c128 {
// CHECK:           memref.store %{{.*}}, %[[SQT]][
// CHECK:         scf.if
// CHECK:           scf.for %[[J:.*]] = %[[WARP]] to %c32 step %c4 {
// CHECK:             %[[ROW:.*]] = arith.muli %[[J]], %c65 : index
// CHECK:             memref.store %{{.*}}, %[[SKT]][
// CHECK:             memref.store %{{.*}}, %[[SKT]][
// CHECK:         scf.for %{{.*}} = %c0 to %{{.*}} step %c1 iter_args(
// Per KV tile: V copied once for the whole group behind a barrier ...
// CHECK:           gpu.barrier
// CHECK:           scf.for %{{.*}} = %[[TID]] to %c1024 step %c128 {
// CHECK:             memref.store %{{.*}}, %[[SVT]][
// ... per row of the warp s = q . k[lane] over D ...
// CHECK-COUNT-4:   scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args(%{{.*}}) -> (f32) {
// CHECK:             memref.load %[[SQT]][
// CHECK:             memref.load %[[SKT]][
// CHECK:             llvm.intr.fma
// ... the next K tile behind the second barrier ...
// CHECK:           gpu.barrier
// CHECK:           scf.if
// CHECK:             scf.for %{{.*}} = %[[WARP]] to %c32 step %c4 {
// CHECK:               memref.store %{{.*}}, %[[SKT]][
// ... boundary tiles masked, the online softmax with a warp-wide max, and
// P V with p_j broadcast from lane j.
// CHECK:           scf.if %{{.*}} -> (f32, f32, f32, f32) {
// CHECK:             arith.cmpi slt
// CHECK:             arith.select
// CHECK:           gpu.shuffle  xor %{{.*}}, %c16_i32, %c32_i32 : f32
// CHECK:           gpu.shuffle  xor %{{.*}}, %c1_i32, %c32_i32 : f32
// CHECK:           llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"
// CHECK-NOT:       gpu.barrier
// CHECK:           scf.for %{{.*}} = %c0 to %c32 step %c1 iter_args(%{{.*}}) -> (f32) {
// CHECK:             gpu.shuffle  idx
// CHECK:             memref.load %[[SVT]][
// CHECK-NOT:   nvvm.mma.sync
// CHECK-NOT:   nvgpu.ldmatrix
// CHECK:       gpu.return
func.func @f32(%q: memref<?x?x8x64xf32>, %k: memref<?x?x2x64xf32>,
               %v: memref<?x?x2x32xf32>, %o: memref<?x?x8x32xf32>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x8x64xf32>, memref<?x?x2x64xf32>, memref<?x?x2x32xf32>)
    outs(%o : memref<?x?x8x32xf32>) heads(8, 2) layout<bshd> mask<causal>
  return
}
