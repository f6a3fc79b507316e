// RUN: gqa-opt %s | FileCheck %s
// Round trip through the generic form.
// RUN: gqa-opt %s --mlir-print-op-generic | gqa-opt | FileCheck %s

// Every tile-level op, as gqa-distribute writes them: one block of 64 packed
// rows of KV head %kvh against one 32-key tile, then the split-KV stores and
// the combine.

// CHECK-LABEL: func.func @block
// CHECK: %[[Q:.*]] = gqa.load_query_tile %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] heads(32, 4) layout<bshd> : memref<?x?x32x128xbf16> -> tensor<64x128xbf16>
// CHECK: %[[K:.*]] = gqa.load_kv_tile %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] kv_len(%{{.*}}) layout<bshd> : memref<?x?x4x128xbf16> -> tensor<32x128xbf16>
// CHECK: %[[V:.*]] = gqa.load_kv_tile %{{.*}} kv_len(%{{.*}}) block_table(%{{.*}} : memref<?x?xi32>) layout<bshd> : memref<?x16x4x64xbf16> -> tensor<32x64xbf16>
// CHECK: %[[S:.*]] = gqa.scores %[[Q]], %[[K]] scale(8.838830e-02) softcap(3.000000e+01) : tensor<64x128xbf16>, tensor<32x128xbf16> -> tensor<64x32xf32>
// CHECK: %[[SM:.*]] = gqa.mask_scores %[[S]] rows(%{{.*}}) keys(%{{.*}}) offset(%{{.*}}) kv_len(%{{.*}}) group(8) mask<causal, window = [128, 0]> : tensor<64x32xf32>
// CHECK: %[[P:.*]], %[[M1:.*]], %[[L1:.*]], %[[A:.*]] = gqa.online_softmax %[[SM]], %{{.*}}, %{{.*}} : tensor<64x32xf32>, tensor<64xf32> -> tensor<64x32xbf16>
// CHECK: %[[ACC:.*]] = gqa.accumulate %[[P]], %[[V]], %{{.*}}, %[[A]] : tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<64x64xf32>, tensor<64xf32>
// CHECK: %[[O:.*]], %[[LSE:.*]] = gqa.finalize %[[ACC]], %[[M1]], %[[L1]] : tensor<64x64xf32>, tensor<64xf32>
// CHECK: gqa.store_output_tile %[[O]], %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] heads(32, 4) layout<bshd> : tensor<64x64xf32>, memref<?x?x32x64xbf16>
// CHECK: gqa.store_partial_tile %[[O]], %[[LSE]], %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] group(8) : tensor<64x64xf32>, tensor<64xf32>, memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>
// CHECK: gqa.combine_splits %{{.*}}, %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] splits(%{{.*}}) rows(8) layout<bshd> : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
func.func @block(%query: memref<?x?x32x128xbf16>, %key: memref<?x?x4x128xbf16>,
                 %pool: memref<?x16x4x64xbf16>, %table: memref<?x?xi32>,
                 %out: memref<?x?x32x64xbf16>, %wo: memref<?x?x32x?x64xf32>,
                 %wl: memref<?x?x32x?xf32>, %b: index, %kvh: index, %row0: index,
                 %key0: index, %len: index, %off: index, %split: index,
                 %splits: index, %m: tensor<64xf32>, %l: tensor<64xf32>,
                 %acc: tensor<64x64xf32>) {
  %q = gqa.load_query_tile %query[%b, %kvh, %row0] heads(32, 4) layout<bshd>
         : memref<?x?x32x128xbf16> -> tensor<64x128xbf16>
  %k = gqa.load_kv_tile %key[%b, %kvh, %key0] kv_len(%len) layout<bshd>
         : memref<?x?x4x128xbf16> -> tensor<32x128xbf16>
  %v = gqa.load_kv_tile %pool[%b, %kvh, %key0] kv_len(%len)
         block_table(%table : memref<?x?xi32>) layout<bshd>
         : memref<?x16x4x64xbf16> -> tensor<32x64xbf16>
  %s = gqa.scores %q, %k scale(0.0883883) softcap(30.0)
         : tensor<64x128xbf16>, tensor<32x128xbf16> -> tensor<64x32xf32>
  %sm = gqa.mask_scores %s rows(%row0) keys(%key0) offset(%off) kv_len(%len)
          group(8) mask<causal, window = [128, 0]> : tensor<64x32xf32>
  %p, %m1, %l1, %alpha = gqa.online_softmax %sm, %m, %l
      : tensor<64x32xf32>, tensor<64xf32> -> tensor<64x32xbf16>
  %acc1 = gqa.accumulate %p, %v, %acc, %alpha
      : tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<64x64xf32>, tensor<64xf32>
  %o, %lse = gqa.finalize %acc1, %m1, %l1 : tensor<64x64xf32>, tensor<64xf32>
  gqa.store_output_tile %o, %out[%b, %kvh, %row0] heads(32, 4) layout<bshd>
    : tensor<64x64xf32>, memref<?x?x32x64xbf16>
  gqa.store_partial_tile %o, %lse, %wo, %wl[%split, %b, %kvh, %row0] group(8)
    : tensor<64x64xf32>, tensor<64xf32>, memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>
  gqa.combine_splits %wo, %wl, %out[%b, %row0] splits(%splits) rows(8) layout<bshd>
    : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
  return
}

// A partial block (the CPU's): the rows are dynamic and given to the load.
// CHECK-LABEL: func.func @partial
// CHECK: gqa.load_query_tile %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] rows(%{{.*}}) heads(8, 8) layout<bhsd> : memref<?x8x?x64xf32> -> tensor<?x64xf32>
func.func @partial(%query: memref<?x8x?x64xf32>, %b: index, %row0: index, %rows: index) -> tensor<?x64xf32> {
  %q = gqa.load_query_tile %query[%b, %b, %row0] rows(%rows) heads(8, 8) layout<bhsd>
         : memref<?x8x?x64xf32> -> tensor<?x64xf32>
  return %q : tensor<?x64xf32>
}

// Sinks and the LSE: the rows' sink logits, finalize with them, the LSE
// stored, the combine with both.
// CHECK-LABEL: func.func @sinks_lse
// CHECK: %[[S:.*]] = gqa.load_sink_tile %{{.*}}[%{{.*}}, %{{.*}}] group(8) : memref<32xf32> -> tensor<64xf32>
// CHECK: %{{.*}}, %[[LSE:.*]] = gqa.finalize %{{.*}}, %{{.*}}, %{{.*}} sinks(%[[S]] : tensor<64xf32>) : tensor<64x64xf32>, tensor<64xf32>
// CHECK: gqa.store_lse_tile %[[LSE]], %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] group(8) : tensor<64xf32>, memref<?x32x?xf32>
// CHECK: gqa.combine_splits {{.*}} rows(8) layout<bshd> sinks(%{{.*}} : memref<32xf32>) lse(%{{.*}} : memref<?x32x?xf32>) : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
func.func @sinks_lse(%sinks: memref<32xf32>, %lse_out: memref<?x32x?xf32>, %out: memref<?x?x32x64xbf16>,
                     %wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %b: index, %kvh: index,
                     %row0: index, %m: tensor<64xf32>, %l: tensor<64xf32>, %acc: tensor<64x64xf32>) {
  %s = gqa.load_sink_tile %sinks[%kvh, %row0] group(8) : memref<32xf32> -> tensor<64xf32>
  %o, %lse = gqa.finalize %acc, %m, %l sinks(%s : tensor<64xf32>) : tensor<64x64xf32>, tensor<64xf32>
  gqa.store_lse_tile %lse, %lse_out[%b, %kvh, %row0] group(8) : tensor<64xf32>, memref<?x32x?xf32>
  gqa.combine_splits %wo, %wl, %out[%b, %row0] splits(%b) rows(8) layout<bshd> sinks(%sinks : memref<32xf32>) lse(%lse_out : memref<?x32x?xf32>)
    : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
  return
}

// A ragged batch: where sequence %b's queries and keys lie in the packed
// tokens.
// CHECK-LABEL: func.func @segments
// CHECK: %{{.*}}, %{{.*}} = gqa.load_segment %{{.*}}[%{{.*}}] : memref<?xi32>
// CHECK: %{{.*}}, %{{.*}} = gqa.load_segment %{{.*}}[%{{.*}}] keys : memref<?xi64>
func.func @segments(%cq: memref<?xi32>, %ck: memref<?xi64>, %b: index) -> (index, index) {
  %start, %length = gqa.load_segment %cq[%b] : memref<?xi32>
  %kstart, %klength = gqa.load_segment %ck[%b] keys : memref<?xi64>
  return %length, %klength : index, index
}

// A ragged batch's longest sequence, named as the launch's seq_q.
// CHECK-LABEL: func.func @launch_size
// CHECK: gqa.launch_size "seq_q" %{{.*}}
func.func @launch_size(%max_seqlen_q: index) -> index {
  %longest = gqa.launch_size "seq_q" %max_seqlen_q
  return %longest : index
}
