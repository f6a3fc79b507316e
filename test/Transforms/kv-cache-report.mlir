// The seed's Llama-3-70B numbers, to the byte: 80 layers, 64 query heads,
// 8 KV heads, head dim 128, bf16, 131072 tokens.
// RUN: gqa-opt %gqa_src_root/examples/llama3-70b-model.mlir \
// RUN:   --gqa-kv-cache-report="seq-len=131072" -o /dev/null | FileCheck %s --check-prefix=LLAMA
// LLAMA: gqa-kv-cache-report: seq_len 131072, batch 1
// LLAMA: layer 0: q_heads 64, kv_heads 8, group 8, head_dim 128, head_dim_v 128, bf16: kv bytes/token 4096, kv bytes 536870912, mha bytes 4294967296, saving 8x (87.5% less)
// LLAMA: layer 79:
// LLAMA-NOT: layer 80:
// LLAMA: model: layers 80, kv bytes/token 327680, kv bytes 42949672960, mha bytes 343597383680, saving 8x (87.5% less)

// Batch scales the cache linearly; per-op lines can be left out.
// RUN: gqa-opt %gqa_src_root/examples/llama3-70b-model.mlir \
// RUN:   --gqa-kv-cache-report="seq-len=8192 batch=4 per-op=false" -o /dev/null | FileCheck %s --check-prefix=BATCH
// BATCH: gqa-kv-cache-report: seq_len 8192, batch 4
// BATCH-NOT: layer
// BATCH: model: layers 80, kv bytes/token 327680, kv bytes 10737418240, mha bytes 85899345920, saving 8x (87.5% less)

// A mixed model (this file): each op is sized by its own heads, head dims and
// element type, and the model sums them; the IR is left unchanged.
// RUN: gqa-opt %s --gqa-kv-cache-report="seq-len=1000" | FileCheck %s
// CHECK: gqa-kv-cache-report: seq_len 1000, batch 1
// MQA, f32, D 64 = Dv: 1 * (64 + 64) * 4 = 512 bytes/token; MHA 32x that.
// CHECK-NEXT: layer 0: q_heads 32, kv_heads 1, group 32, head_dim 64, head_dim_v 64, f32: kv bytes/token 512, kv bytes 512000, mha bytes 16384000, saving 32x (96.875% less)
// MHA, f16, D 64, Dv 96: 4 * (64 + 96) * 2 = 1280 bytes/token; no saving.
// CHECK-NEXT: layer 1: q_heads 4, kv_heads 4, group 1, head_dim 64, head_dim_v 96, f16: kv bytes/token 1280, kv bytes 1280000, mha bytes 1280000, saving 1x (0% less)
// CHECK-NEXT: model: layers 2, kv bytes/token 1792, kv bytes 1792000, mha bytes 17664000, saving 9.85714x (89.8551% less)
// CHECK: func.func @mixed
// CHECK-COUNT-2: gqa.attention
func.func @mixed(%q0: memref<1x32x7x64xf32>, %k0: memref<1x1x9x64xf32>, %o0: memref<1x32x7x64xf32>,
                 %q1: tensor<?x4x?x64xf16>, %k1: tensor<?x4x?x64xf16>, %v1: tensor<?x4x?x96xf16>,
                 %o1: tensor<?x4x?x96xf16>) -> tensor<?x4x?x96xf16> {
  gqa.attention ins(%q0, %k0, %k0 : memref<1x32x7x64xf32>, memref<1x1x9x64xf32>, memref<1x1x9x64xf32>)
    outs(%o0 : memref<1x32x7x64xf32>) heads(32, 1) layout<bhsd> mask<none>
  %r = gqa.attention ins(%q1, %k1, %v1 : tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16>, tensor<?x4x?x96xf16>)
         outs(%o1 : tensor<?x4x?x96xf16>) heads(4, 4) layout<bhsd> mask<causal> -> tensor<?x4x?x96xf16>
  return %r : tensor<?x4x?x96xf16>
}
