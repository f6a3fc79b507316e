// RUN: gqa-opt %s --convert-gqa-to-gpu=max-splits=8 --canonicalize --cse | FileCheck %s

// The host passes max_seqlen_k as seq_kv (and max_seqlen_q as seq_q).
// CHECK-LABEL: func.func @varlen_packed_split(
// CHECK-DAG:   %[[SEQ_Q:.*]] = arith.index_cast %arg5 : index to i64
// CHECK-DAG:   %[[SEQ_KV:.*]] = arith.index_cast %arg6 : index to i64
// CHECK:       gpu.launch_func {{.*}}@gqa_attention_fwd_split
// CHECK-SAME:    %[[SEQ_Q]] : i64, %[[SEQ_KV]] : i64

// Packed K/V (cu_seqlens_k) with split-KV: the kernels take the key offsets
// and the packed key count (total_kv); max_seqlen_k is seq_kv, which sizes
// the split partition in the kernel as on the host.
// CHECK:       gpu.func @gqa_attention_fwd_split(
// CHECK-SAME:    gqa.params = ["q", "k", "v", "out", "cu_seqlens_q", "cu_seqlens_k", "partial_out", "partial_lse", "batch", "seq_q", "seq_kv", "total_q", "total_kv", "num_splits"]
// CHECK:         %[[SKV:.*]] = arith.index_cast %arg10 : i64 to index
// CHECK:         %[[TOTAL_KV:.*]] = arith.index_cast %arg12 : i64 to index
// CHECK:         %[[NS:.*]] = arith.index_cast %arg13 : i64 to index
// CHECK:         %[[TILES:.*]] = arith.ceildivui %[[SKV]], %c64 : index
// CHECK:         arith.ceildivui %[[TILES]], %[[NS]] : index
// CHECK:       gpu.func @gqa_attention_combine(
func.func @varlen_packed_split(%q: memref<?x8x64xbf16>, %k: memref<?x2x64xbf16>, %v: memref<?x2x64xbf16>, %cq: memref<?xi32>, %ck: memref<?xi32>, %mq: index, %mk: index, %o: memref<?x8x64xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x8x64xbf16>, memref<?x2x64xbf16>, memref<?x2x64xbf16>)
    cu_seqlens_q(%cq : memref<?xi32>) cu_seqlens_k(%ck : memref<?xi32>) max_seqlen_q(%mq) max_seqlen_k(%mk) outs(%o : memref<?x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}
