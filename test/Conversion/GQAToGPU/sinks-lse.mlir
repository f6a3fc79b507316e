// RUN: gqa-opt %s --split-input-file --convert-gqa-to-gpu=max-splits=8 --canonicalize --cse | FileCheck %s
// RUN: gqa-opt %s --split-input-file --convert-gqa-to-gpu=max-splits=0 --canonicalize --cse | FileCheck %s --check-prefix=ONE

// Sinks and the LSE on split-KV decode: every kernel takes `sinks` and `lse`
// (the split kernel finalises the rows itself when launched with one split);
// the combine kernel starts each row's maximum at the head's sink logit,
// starts the denominator at the sink's weight exp(sink - M), and the first
// thread of each row stores M + ln(sum of the weights), -inf when it is 0.

// CHECK-LABEL: func.func @decode_sinks_lse(
// CHECK:       gpu.launch_func {{.*}} @gqa_kernels::@gqa_attention_fwd_split
// CHECK:       gpu.launch_func {{.*}} @gqa_kernels::@gqa_attention_combine
// CHECK:       gpu.module @gqa_kernels attributes {gqa.config = {{{.*}}lse = true{{.*}}sinks = true
// CHECK:       gpu.func @gqa_attention_fwd_split(
// CHECK-SAME:    gqa.params = ["q", "k", "v", "out", "partial_out", "partial_lse", "sinks", "lse", "batch", "seq_q", "seq_kv", "num_splits"]
// CHECK:       gpu.func @gqa_attention_combine(
// CHECK-SAME:    gqa.params = ["partial_out", "partial_lse", "out", "sinks", "lse", "batch", "seq_q", "num_splits"]
// CHECK:         %[[SINKS:.*]] = memref.reinterpret_cast %arg3 to offset: [0], sizes: [8], strides: [1]
// CHECK:         %[[LSE:.*]] = memref.reinterpret_cast %arg4
// CHECK:         %[[SINK:.*]] = memref.load %[[SINKS]][%[[HEAD:.*]]] : memref<8xf32, strided<[1]>>
// CHECK:         %[[MAX:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[SINK]]) -> (f32)
// CHECK:         %[[NONE:.*]] = arith.cmpf oeq, %[[MAX]], %[[NEGINF:.*]] : f32
// CHECK:         %[[M:.*]] = arith.select %[[NONE]], %{{.*}}, %[[MAX]] : f32
// CHECK:         %[[SHIFTED:.*]] = arith.subf %[[SINK]], %[[M]] : f32
// CHECK:         %[[LOG2:.*]] = arith.mulf %[[SHIFTED]], %{{.*}} : f32
// CHECK:         %[[WEIGHT:.*]] = llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"(%[[LOG2]])
// CHECK:         %[[SUMS:.*]]:5 = scf.for {{.*}} iter_args(%{{.*}} = %[[WEIGHT]],
// CHECK:         %[[EMPTY:.*]] = arith.cmpf oeq, %[[SUMS]]#0, %{{.*}} : f32
// CHECK:         vector.store
// CHECK:         %[[LG2:.*]] = llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"(%[[SUMS]]#0)
// CHECK:         %[[LN:.*]] = arith.mulf %[[LG2]], %{{.*}} : f32
// CHECK:         %[[MERGED:.*]] = arith.addf %[[M]], %[[LN]] : f32
// CHECK:         %[[VALUE:.*]] = arith.select %[[EMPTY]], %[[NEGINF]], %[[MERGED]] : f32
// CHECK:         %[[FIRST:.*]] = arith.cmpi eq, %{{.*}}, %c0 : index
// CHECK:         scf.if
// CHECK:           memref.store %[[VALUE]], %[[LSE]][%{{.*}}] : memref<?xf32>
func.func @decode_sinks_lse(%q: memref<?x1x8x64xbf16>, %k: memref<?x?x2x64xbf16>, %sinks: memref<8xf32>, %o: memref<?x1x8x64xbf16>, %lse: memref<?x8x1xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x1x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    sinks(%sinks : memref<8xf32>) outs(%o : memref<?x1x8x64xbf16>, %lse : memref<?x8x1xf32>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Without split-KV: one kernel, no workspace; it reads the sinks and writes
// the LSE itself.
// ONE-LABEL: func.func @decode_sinks_lse(
// ONE:       gpu.func @gqa_attention_fwd(
// ONE-SAME:    gqa.params = ["q", "k", "v", "out", "sinks", "lse", "batch", "seq_q", "seq_kv"]
// ONE-NOT:   gpu.func
// ONE-LABEL: func.func @prefill_lse(
// ONE:       gpu.func @gqa_attention_fwd(
// ONE-SAME:    gqa.params = ["q", "k", "v", "out", "lse", "batch", "seq_q", "seq_kv"]
// ONE:         llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"
// ONE:         memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<?xf32>
// ONE-NOT:   gpu.func
func.func @prefill_lse(%q: memref<?x?x8x64xbf16>, %k: memref<?x?x2x64xbf16>, %o: memref<?x?x8x64xbf16>, %lse: memref<?x8x?xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    outs(%o : memref<?x?x8x64xbf16>, %lse : memref<?x8x?xf32>) heads(8, 2) layout<bshd> mask<causal>
  return
}
