// RUN: gqa-opt %s | FileCheck %s
// Round trip through the generic form: it must print back identically.
// RUN: gqa-opt %s --mlir-print-op-generic | gqa-opt | FileCheck %s
// The generic form spells the attributes out.
// RUN: gqa-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// CHECK-LABEL: func.func @llama3_70b_prefill
// CHECK-SAME: (%[[Q:.*]]: tensor<1x64x512x128xbf16>, %[[K:.*]]: tensor<1x8x512x128xbf16>, %[[V:.*]]: tensor<1x8x512x128xbf16>, %[[INIT:.*]]: tensor<1x64x512x128xbf16>)
// CHECK: %[[O:.*]] = gqa.attention ins(%[[Q]], %[[K]], %[[V]] : tensor<1x64x512x128xbf16>, tensor<1x8x512x128xbf16>, tensor<1x8x512x128xbf16>) outs(%[[INIT]] : tensor<1x64x512x128xbf16>) heads(64, 8) layout<bhsd> mask<causal> -> tensor<1x64x512x128xbf16>
// CHECK: return %[[O]]
// GENERIC-LABEL: sym_name = "llama3_70b_prefill"
// GENERIC: "gqa.attention"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{kv_heads = 8 : i64, layout = #gqa.layout<bhsd>, mask = #gqa.mask<causal>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0>, q_heads = 64 : i64}>
func.func @llama3_70b_prefill(%q: tensor<1x64x512x128xbf16>, %k: tensor<1x8x512x128xbf16>,
                              %v: tensor<1x8x512x128xbf16>, %init: tensor<1x64x512x128xbf16>)
    -> tensor<1x64x512x128xbf16> {
  %o = gqa.attention ins(%q, %k, %v : tensor<1x64x512x128xbf16>, tensor<1x8x512x128xbf16>, tensor<1x8x512x128xbf16>)
         outs(%init : tensor<1x64x512x128xbf16>) heads(64, 8) layout<bhsd> mask<causal>
         -> tensor<1x64x512x128xbf16>
  return %o : tensor<1x64x512x128xbf16>
}

// Decode against a KV cache in bshd layout: dynamic batch and KV length,
// per-sequence lengths, a causal sliding window, softcap and an explicit scale.
// CHECK-LABEL: func.func @decode_bshd
// CHECK: gqa.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x1x32x128xf16>, tensor<?x?x4x128xf16>, tensor<?x?x4x128xf16>) kv_lens(%{{.*}} : tensor<?xi32>) outs(%{{.*}} : tensor<?x1x32x128xf16>) heads(32, 4) layout<bshd> mask<causal, window = [4096, 0]> scale(1.250000e-01) softcap(3.000000e+01) -> tensor<?x1x32x128xf16>
// GENERIC-LABEL: sym_name = "decode_bshd"
// GENERIC: kv_heads = 4 : i64, layout = #gqa.layout<bshd>, mask = #gqa.mask<causal, window = [4096, 0]>, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0>, q_heads = 32 : i64, scale = 1.250000e-01 : f32, softcap = 3.000000e+01 : f32
func.func @decode_bshd(%q: tensor<?x1x32x128xf16>, %k: tensor<?x?x4x128xf16>, %v: tensor<?x?x4x128xf16>,
                       %lens: tensor<?xi32>, %init: tensor<?x1x32x128xf16>) -> tensor<?x1x32x128xf16> {
  %o = gqa.attention ins(%q, %k, %v : tensor<?x1x32x128xf16>, tensor<?x?x4x128xf16>, tensor<?x?x4x128xf16>)
         kv_lens(%lens : tensor<?xi32>) outs(%init : tensor<?x1x32x128xf16>)
         heads(32, 4) layout<bshd> mask<causal, window = [4096, 0]> scale(0.125) softcap(30.0)
         -> tensor<?x1x32x128xf16>
  return %o : tensor<?x1x32x128xf16>
}

// MHA (g = 1) with a two-sided window, f32, Dv != D, index-typed lengths.
// CHECK-LABEL: func.func @mha_window_dv
// CHECK: gqa.attention {{.*}} kv_lens(%{{.*}} : tensor<2xindex>) {{.*}} heads(8, 8) layout<bhsd> mask<window = [16, 3]> -> tensor<2x8x17x96xf32>
func.func @mha_window_dv(%q: tensor<2x8x17x64xf32>, %k: tensor<2x8x33x64xf32>, %v: tensor<2x8x33x96xf32>,
                         %lens: tensor<2xindex>, %init: tensor<2x8x17x96xf32>) -> tensor<2x8x17x96xf32> {
  %o = gqa.attention ins(%q, %k, %v : tensor<2x8x17x64xf32>, tensor<2x8x33x64xf32>, tensor<2x8x33x96xf32>)
         kv_lens(%lens : tensor<2xindex>) outs(%init : tensor<2x8x17x96xf32>)
         heads(8, 8) layout<bhsd> mask<window = [16, 3]> -> tensor<2x8x17x96xf32>
  return %o : tensor<2x8x17x96xf32>
}

// MQA (one KV head) after bufferization: memrefs, no result.
// CHECK-LABEL: func.func @mqa_memref
// CHECK: gqa.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<4x100x16x64xbf16>, memref<4x100x1x64xbf16>, memref<4x100x1x64xbf16>) outs(%{{.*}} : memref<4x100x16x64xbf16>) heads(16, 1) layout<bshd> mask<none>{{$}}
func.func @mqa_memref(%q: memref<4x100x16x64xbf16>, %k: memref<4x100x1x64xbf16>, %v: memref<4x100x1x64xbf16>,
                      %out: memref<4x100x16x64xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<4x100x16x64xbf16>, memref<4x100x1x64xbf16>, memref<4x100x1x64xbf16>)
    outs(%out : memref<4x100x16x64xbf16>) heads(16, 1) layout<bshd> mask<none>
  return
}

// Decode against a paged KV cache (vLLM's layout): 16-token pages in pools of
// [pages, 16, Hkv, D] for K and V, a block table of each sequence's pages,
// and per-sequence lengths; the layout orders query and init only.
// CHECK-LABEL: func.func @paged_decode
// CHECK: gqa.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<?x1x64x128xbf16>, memref<?x16x8x128xbf16>, memref<?x16x8x128xbf16>) kv_lens(%{{.*}} : memref<?xi32>) block_table(%{{.*}} : memref<?x?xi32>) outs(%{{.*}} : memref<?x1x64x128xbf16>) heads(64, 8) layout<bshd> mask<none>{{$}}
// GENERIC-LABEL: sym_name = "paged_decode"
// GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0>
func.func @paged_decode(%q: memref<?x1x64x128xbf16>, %kc: memref<?x16x8x128xbf16>, %vc: memref<?x16x8x128xbf16>,
                        %lens: memref<?xi32>, %pages: memref<?x?xi32>, %o: memref<?x1x64x128xbf16>) {
  gqa.attention ins(%q, %kc, %vc : memref<?x1x64x128xbf16>, memref<?x16x8x128xbf16>, memref<?x16x8x128xbf16>)
    kv_lens(%lens : memref<?xi32>) block_table(%pages : memref<?x?xi32>)
    outs(%o : memref<?x1x64x128xbf16>) heads(64, 8) layout<bshd> mask<none>
  return
}

// A paged cache under bhsd queries, without lengths (every sequence is
// max pages * page size long), Dv != D, on tensors.
// CHECK-LABEL: func.func @paged_bhsd_tensors
// CHECK: gqa.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<2x4x3x64xf16>, tensor<9x32x2x64xf16>, tensor<9x32x2x32xf16>) block_table(%{{.*}} : tensor<2x5xi32>) outs(%{{.*}} : tensor<2x4x3x32xf16>) heads(4, 2) layout<bhsd> mask<causal> -> tensor<2x4x3x32xf16>
func.func @paged_bhsd_tensors(%q: tensor<2x4x3x64xf16>, %kc: tensor<9x32x2x64xf16>, %vc: tensor<9x32x2x32xf16>,
                              %pages: tensor<2x5xi32>, %init: tensor<2x4x3x32xf16>) -> tensor<2x4x3x32xf16> {
  %o = gqa.attention ins(%q, %kc, %vc : tensor<2x4x3x64xf16>, tensor<9x32x2x64xf16>, tensor<9x32x2x32xf16>)
         block_table(%pages : tensor<2x5xi32>) outs(%init : tensor<2x4x3x32xf16>)
         heads(4, 2) layout<bhsd> mask<causal> -> tensor<2x4x3x32xf16>
  return %o : tensor<2x4x3x32xf16>
}

// Attention sinks and the log-sum-exp as a second result (GPT-OSS decode).
// CHECK-LABEL: func.func @sinks_and_lse
// CHECK: %{{.*}}:2 = gqa.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x1x64x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>) sinks(%{{.*}} : tensor<64xf32>) outs(%{{.*}} : tensor<?x1x64x64xbf16>, %{{.*}} : tensor<?x64x1xf32>) heads(64, 8) layout<bshd> mask<causal> -> tensor<?x1x64x64xbf16>, tensor<?x64x1xf32>
// GENERIC-LABEL: sym_name = "sinks_and_lse"
// GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1>
func.func @sinks_and_lse(%q: tensor<?x1x64x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>,
                         %s: tensor<64xf32>, %init: tensor<?x1x64x64xbf16>, %lse0: tensor<?x64x1xf32>)
    -> (tensor<?x1x64x64xbf16>, tensor<?x64x1xf32>) {
  %o, %lse = gqa.attention ins(%q, %k, %v : tensor<?x1x64x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>)
         sinks(%s : tensor<64xf32>) outs(%init : tensor<?x1x64x64xbf16>, %lse0 : tensor<?x64x1xf32>)
         heads(64, 8) layout<bshd> mask<causal> -> tensor<?x1x64x64xbf16>, tensor<?x64x1xf32>
  return %o, %lse : tensor<?x1x64x64xbf16>, tensor<?x64x1xf32>
}

// A ragged batch (flash_attn_varlen_func): packed query tokens [T, Hq, D]
// split by cu_seqlens_q against a paged cache with per-sequence lengths, and
// against packed K/V split by cu_seqlens_k with the LSE [Hq, T].
// CHECK-LABEL: func.func @varlen
// CHECK: gqa.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<?x32x128xbf16>, memref<?x16x8x128xbf16>, memref<?x16x8x128xbf16>) kv_lens(%{{.*}} : memref<?xi32>) block_table(%{{.*}} : memref<?x?xi32>) cu_seqlens_q(%{{.*}} : memref<?xi32>) outs(%{{.*}} : memref<?x32x128xbf16>) heads(32, 8) layout<bshd> mask<causal>{{$}}
// CHECK: gqa.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<?x32x128xbf16>, memref<?x8x128xbf16>, memref<?x8x128xbf16>) cu_seqlens_q(%{{.*}} : memref<5xi32>) cu_seqlens_k(%{{.*}} : memref<5xi32>) outs(%{{.*}} : memref<?x32x128xbf16>, %{{.*}} : memref<32x?xf32>) heads(32, 8) layout<bshd> mask<causal>{{$}}
// GENERIC-LABEL: sym_name = "varlen"
// GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0>
// GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1>
func.func @varlen(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xbf16>, %lens: memref<?xi32>, %pages: memref<?x?xi32>,
                  %cu: memref<?xi32>, %o: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>, %cq: memref<5xi32>,
                  %ck: memref<5xi32>, %lse: memref<32x?xf32>) {
  gqa.attention ins(%q, %kc, %kc : memref<?x32x128xbf16>, memref<?x16x8x128xbf16>, memref<?x16x8x128xbf16>)
    kv_lens(%lens : memref<?xi32>) block_table(%pages : memref<?x?xi32>) cu_seqlens_q(%cu : memref<?xi32>)
    outs(%o : memref<?x32x128xbf16>) heads(32, 8) layout<bshd> mask<causal>
  gqa.attention ins(%q, %k, %k : memref<?x32x128xbf16>, memref<?x8x128xbf16>, memref<?x8x128xbf16>)
    cu_seqlens_q(%cq : memref<5xi32>) cu_seqlens_k(%ck : memref<5xi32>)
    outs(%o : memref<?x32x128xbf16>, %lse : memref<32x?xf32>) heads(32, 8) layout<bshd> mask<causal>
  return
}
