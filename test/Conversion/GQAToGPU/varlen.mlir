// RUN: gqa-opt %s --convert-gqa-to-gpu=max-splits=0 --canonicalize --cse | FileCheck %s

// A ragged batch (cu_seqlens_q) against a KV cache with kv_lens: the kernel
// takes the offsets and the packed token count T (q and out are [T, 8, 64]:
// 512 elements a token); each CTA (z = its sequence) reads its sequence's
// start and length from the offsets (gqa.load_segment), views q and out from
// start * 512 (the subview's base) and skips the rows past length * g. The
// grid fits the longest sequence (seq_q = max_seqlen_q).

// CHECK-LABEL: func.func @varlen_decode_mix(
// The host passes max_seqlen_q as seq_q.
// CHECK:       %[[SEQ_Q:.*]] = arith.index_cast %arg4 : index to i64
// CHECK:       gpu.launch_func {{.*}}@gqa_attention_fwd
// CHECK-SAME:    %[[SEQ_Q]] : i64
// CHECK:       gpu.func @gqa_attention_fwd(
// CHECK-SAME:    gqa.grid = [{div = 64 : i64, mul = 4 : i64, sym = "seq_q"}, {const = 2 : i64}, {sym = "batch"}]
// CHECK-SAME:    gqa.params = ["q", "k", "v", "out", "kv_lens", "cu_seqlens_q", "batch", "seq_q", "seq_kv", "total_q"]
// CHECK-DAG:     %[[B:.*]] = arith.index_cast %arg6 : i64 to index
// CHECK-DAG:     %[[T:.*]] = arith.index_cast %arg9 : i64 to index
// CHECK-DAG:     %[[TOKENS:.*]] = arith.muli %[[T]], %c512 : index
// CHECK:         memref.reinterpret_cast %arg0 to offset: [0], sizes: [%[[TOKENS]]], strides: [1]
// CHECK:         %[[OFFSETS_SIZE:.*]] = arith.addi %[[B]], %c1 : index
// CHECK:         %[[OFFSETS:.*]] = memref.reinterpret_cast %arg5 to offset: [0], sizes: [%[[OFFSETS_SIZE]]], strides: [1] : memref<1xi32> to memref<?xi32>
// CHECK:         %[[Z:.*]] = gpu.block_id  z
// CHECK:         %[[ROW0:.*]] = arith.muli %block_id_x, %c64
// CHECK:         %[[START32:.*]] = memref.load %[[OFFSETS]][%[[Z]]] : memref<?xi32>
// CHECK:         %[[START:.*]] = arith.index_cast %[[START32]] : i32 to index
// CHECK:         %[[NEXT:.*]] = arith.addi %[[Z]], %c1 : index
// CHECK:         %[[END32:.*]] = memref.load %[[OFFSETS]][%[[NEXT]]] : memref<?xi32>
// CHECK:         %[[END:.*]] = arith.index_cast %[[END32]] : i32 to index
// CHECK:         %[[LENGTH:.*]] = arith.subi %[[END]], %[[START]] : index
// CHECK:         %[[BASE:.*]] = arith.muli %[[START]], %c512 : index
// CHECK:         %[[ROWS:.*]] = arith.muli %[[LENGTH]], %c4
// CHECK:         %[[ANY:.*]] = arith.cmpi slt, %[[ROW0]], %[[ROWS]] : index
// CHECK:         scf.if %[[ANY]] {
// CHECK:           arith.addi %[[BASE]],
func.func @varlen_decode_mix(%q: memref<?x8x64xbf16>, %k: memref<?x?x2x64xbf16>, %lens: memref<?xi32>, %cu: memref<?xi32>, %longest: index, %o: memref<?x8x64xbf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    kv_lens(%lens : memref<?xi32>) cu_seqlens_q(%cu : memref<?xi32>) max_seqlen_q(%longest) outs(%o : memref<?x8x64xbf16>) heads(8, 2) layout<bshd> mask<causal>
  return
}
