// RUN: gqa-opt %s -split-input-file -verify-diagnostics

// Every rule of the gqa.attention verifier, each with a case that breaks it.

// Query heads that do not split into equal groups.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x6x33x128xbf16>, %v: tensor<2x6x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'gqa.attention' op q_heads (64) is not a multiple of kv_heads (6): query heads must split into equal groups}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x6x33x128xbf16>, tensor<2x6x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 6) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// A non-positive head count.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{q_heads must be positive, got 0}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(0, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// 
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{kv_heads must be positive, got -8}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, -8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Query head count differs from q_heads.
func.func @f(%q: tensor<2x32x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'query' head count (dim 1 of bhsd) is 32, but q_heads is 64}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x32x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Output head count differs from q_heads.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x32x17x128xbf16>) {
  // expected-error @+1 {{'init' head count (dim 1 of bhsd) is 32, but q_heads is 64}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x32x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x32x17x128xbf16>
  return
}

// -----

// Key head count differs from kv_heads (bshd puts heads in dim 2).
func.func @f(%q: tensor<2x17x64x128xbf16>, %k: tensor<2x33x4x128xbf16>, %v: tensor<2x33x8x128xbf16>, %init: tensor<2x17x64x128xbf16>) {
  // expected-error @+1 {{'key' head count (dim 2 of bshd) is 4, but kv_heads is 8}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x17x64x128xbf16>, tensor<2x33x4x128xbf16>, tensor<2x33x8x128xbf16>) outs(%init : tensor<2x17x64x128xbf16>) heads(64, 8) layout<bshd> mask<none> -> tensor<2x17x64x128xbf16>
  return
}

// -----

// Value head count differs from kv_heads.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x16x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'value' head count (dim 1 of bhsd) is 16, but kv_heads is 8}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x16x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// K and V sequence lengths differ.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x34x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'value' sequence length (dim 2 of bhsd) is 34, but the 'key' sequence length is 33}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x34x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Q and K head dims differ.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x64xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'key' head dim (dim 3 of bhsd) is 64, but the 'query' head dim is 128}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x64xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Output head dim differs from V's.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x96xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'init' head dim (dim 3 of bhsd) is 128, but the 'value' head dim is 96}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x96xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Output sequence length differs from the query's.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x18x128xbf16>) {
  // expected-error @+1 {{'init' sequence length (dim 2 of bhsd) is 18, but the 'query' sequence length is 17}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x18x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x18x128xbf16>
  return
}

// -----

// Batch mismatch.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<3x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'key' batch (dim 0 of bhsd) is 3, but the 'query' batch is 2}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<3x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Wrong rank.
func.func @f(%q: tensor<64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'query' must have rank 4 (B, H, S, D in layout bhsd), got rank 3}}
  %o = gqa.attention ins(%q, %k, %v : tensor<64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Mismatched element types.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'key' element type 'f16' differs from 'query' element type 'bf16'}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// An element type no kernel supports.
func.func @f(%q: tensor<2x64x17x128xf64>, %k: tensor<2x8x33x128xf64>, %v: tensor<2x8x33x128xf64>, %init: tensor<2x64x17x128xf64>) {
  // expected-error @+1 {{'query' element type must be f16, bf16 or f32, got 'f64'}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xf64>, tensor<2x8x33x128xf64>, tensor<2x8x33x128xf64>) outs(%init : tensor<2x64x17x128xf64>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xf64>
  return
}

// -----

// Non-positive scale.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{scale must be positive and finite, got -1}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> scale(-1.0) -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Zero softcap.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{softcap must be positive and finite, got 0}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> softcap(0.0) -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Dynamic head count: head counts shape the generated code.
func.func @f(%q: tensor<2x?x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'query' head count (dim 1 of bhsd) must be static}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x?x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Dynamic head dim.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x?xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{'key' head dim (dim 3 of bhsd) must be static}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x?xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// KV lengths of the wrong rank.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>, %lens: tensor<2x1xi32>) {
  // expected-error @+1 {{'kv_lens' must have rank 1 (shape [B]), got rank 2}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) kv_lens(%lens : tensor<2x1xi32>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// KV lengths of the wrong size.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>, %lens: tensor<3xi32>) {
  // expected-error @+1 {{'kv_lens' dim 0 is 3, but the 'query' batch is 2}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) kv_lens(%lens : tensor<3xi32>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// KV lengths of the wrong element type.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>, %lens: tensor<2xf32>) {
  // expected-error @+1 {{'kv_lens' element type must be i32 or index, got 'f32'}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) kv_lens(%lens : tensor<2xf32>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Result type differs from the init.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{result type 'tensor<2x64x17x128xf16>' differs from 'init' type 'tensor<2x64x17x128xbf16>'}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xf16>
  return
}

// -----

// A tensor op with no result.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{on tensors the op must have one result per init (1), got 0}}
  gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

// Tensors mixed with memrefs.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %v: memref<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{operands must be all tensors or all memrefs, but 'query' is 'tensor<2x64x17x128xbf16>' and an operand is 'memref<2x8x33x128xbf16>'}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// A memref op with a result (generic form).
func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %v: memref<2x8x33x128xbf16>, %init: memref<2x64x17x128xbf16>) {
  // expected-error @+1 {{on memrefs the op writes 'init' and has no result, got 1}}
  %o = "gqa.attention"(%q, %k, %v, %init) <{q_heads = 64 : i64, kv_heads = 8 : i64, layout = #gqa.layout<bhsd>, mask = #gqa.mask<none>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0>}> : (memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>, memref<2x64x17x128xbf16>) -> tensor<2x64x17x128xbf16>
  return
}

// -----

// A window that sees keys after the diagonal contradicts a causal mask.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{mask window right = 4 contradicts the causal mask, which admits no key after the diagonal (use 0)}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<causal, window = [128, 4]> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// A negative window bound other than -1 (unbounded).
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{mask window left must be >= 0 (or -1 for unbounded), got -2}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<window = [-2, 0]> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// 
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{mask window right must be >= 0 (or -1 for unbounded), got -7}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<window = [3, -7]> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// A window that bounds nothing.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{mask window = [-1, -1] bounds no key; write #gqa.mask<none> instead}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<window = [-1, -1]> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// A window that adds nothing to a causal mask.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{mask window = [-1, 0] bounds no key; write #gqa.mask<causal> instead}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<causal, window = [-1, 0]> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// An unknown mask.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+1 {{expected mask 'none', 'causal', 'window = [left, right]' or 'causal, window = [left, right]'}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<diagonal> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// An unknown layout.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %v: tensor<2x8x33x128xbf16>, %init: tensor<2x64x17x128xbf16>) {
  // expected-error @+2 {{expected ::mlir::gqa::Layout to be one of: bhsd, bshd}}
  // expected-error @+1 {{failed to parse GQA_LayoutAttr parameter 'value'}}
  %o = gqa.attention ins(%q, %k, %v : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%init : tensor<2x64x17x128xbf16>) heads(64, 8) layout<hsbd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

// Paged KV: the block table has one row per sequence.
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<20x16x2x64xbf16>, %vc: memref<20x16x2x64xbf16>, %pages: memref<2x4xi32>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'block_table' dim 0 is 2, but the 'query' batch is 3}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<20x16x2x64xbf16>, memref<20x16x2x64xbf16>) block_table(%pages : memref<2x4xi32>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Paged KV: block table entries are i32 (as in vLLM and FlashAttention).
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<20x16x2x64xbf16>, %vc: memref<20x16x2x64xbf16>, %pages: memref<3x4xi64>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'block_table' element type must be i32, got 'i64'}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<20x16x2x64xbf16>, memref<20x16x2x64xbf16>) block_table(%pages : memref<3x4xi64>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Paged KV: the block table is [B, max pages].
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<20x16x2x64xbf16>, %vc: memref<20x16x2x64xbf16>, %pages: memref<12xi32>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'block_table' must have rank 2 (shape [B, max pages]), got rank 1}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<20x16x2x64xbf16>, memref<20x16x2x64xbf16>) block_table(%pages : memref<12xi32>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Paged KV: a block table with no page.
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<20x16x2x64xbf16>, %vc: memref<20x16x2x64xbf16>, %pages: memref<3x0xi32>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'block_table' must give each sequence at least one page, got shape [3, 0]}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<20x16x2x64xbf16>, memref<20x16x2x64xbf16>) block_table(%pages : memref<3x0xi32>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Paged KV: the page size shapes the generated code.
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<20x?x2x64xbf16>, %vc: memref<20x?x2x64xbf16>, %pages: memref<3x4xi32>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'key' page size (dim 1 of the paged cache [pages, page size, H, D]) must be static}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<20x?x2x64xbf16>, memref<20x?x2x64xbf16>) block_table(%pages : memref<3x4xi32>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Paged KV: key and value pages hold the same tokens.
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<20x16x2x64xbf16>, %vc: memref<20x32x2x64xbf16>, %pages: memref<3x4xi32>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'value' page size (dim 1 of the paged cache [pages, page size, H, D]) is 32, but the 'key' page size is 16}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<20x16x2x64xbf16>, memref<20x32x2x64xbf16>) block_table(%pages : memref<3x4xi32>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Paged KV: one pool of pages for key and value.
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<20x16x2x64xbf16>, %vc: memref<21x16x2x64xbf16>, %pages: memref<3x4xi32>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'value' page count (dim 0 of the paged cache [pages, page size, H, D]) is 21, but the 'key' page count is 20}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<20x16x2x64xbf16>, memref<21x16x2x64xbf16>) block_table(%pages : memref<3x4xi32>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Paged KV: the heads of a paged cache are dim 2, whatever the layout.
func.func @f(%q: memref<3x8x1x64xbf16>, %kc: memref<20x2x16x64xbf16>, %vc: memref<20x2x16x64xbf16>, %pages: memref<3x4xi32>, %o: memref<3x8x1x64xbf16>) {
  // expected-error @+1 {{'key' head count (dim 2 of the paged cache [pages, page size, H, D]) is 16, but kv_heads is 2}}
  gqa.attention ins(%q, %kc, %vc : memref<3x8x1x64xbf16>, memref<20x2x16x64xbf16>, memref<20x2x16x64xbf16>) block_table(%pages : memref<3x4xi32>) outs(%o : memref<3x8x1x64xbf16>) heads(8, 2) layout<bhsd> mask<none>
  return
}

// -----

// Paged KV: a pool is rank 4.
func.func @f(%q: memref<3x1x8x64xbf16>, %kc: memref<320x2x64xbf16>, %vc: memref<320x2x64xbf16>, %pages: memref<3x4xi32>, %o: memref<3x1x8x64xbf16>) {
  // expected-error @+1 {{'key' must have rank 4 (pages, page size, H, D with a block_table), got rank 3}}
  gqa.attention ins(%q, %kc, %vc : memref<3x1x8x64xbf16>, memref<320x2x64xbf16>, memref<320x2x64xbf16>) block_table(%pages : memref<3x4xi32>) outs(%o : memref<3x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// Static sizes whose byte counts overflow 64-bit offsets (2^62 query heads).
func.func @f(%q: memref<?x4611686018427387904x?x64xbf16>, %k: memref<?x2x?x64xbf16>, %o: memref<?x4611686018427387904x?x64xbf16>) {
  // expected-error @+1 {{'query' of type 'memref<?x4611686018427387904x?x64xbf16>' has more than 2^48 bytes in its static dimensions: offsets into it could overflow 64-bit indices}}
  gqa.attention ins(%q, %k, %k : memref<?x4611686018427387904x?x64xbf16>, memref<?x2x?x64xbf16>, memref<?x2x?x64xbf16>) outs(%o : memref<?x4611686018427387904x?x64xbf16>) heads(4611686018427387904, 2) layout<bhsd> mask<none>
  return
}

// -----

// Sinks: one f32 per query head.
func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %s: memref<8xf32>, %o: memref<2x64x17x128xbf16>) {
  // expected-error @+1 {{'sinks' dim 0 must be q_heads (64), got 8}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) sinks(%s : memref<8xf32>) outs(%o : memref<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %s: memref<64xbf16>, %o: memref<2x64x17x128xbf16>) {
  // expected-error @+1 {{'sinks' element type must be f32, got 'bf16'}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) sinks(%s : memref<64xbf16>) outs(%o : memref<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %s: memref<?xf32>, %o: memref<2x64x17x128xbf16>) {
  // expected-error @+1 {{'sinks' dim 0 must be q_heads (64), got ?}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) sinks(%s : memref<?xf32>) outs(%o : memref<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %s: memref<1x64xf32>, %o: memref<2x64x17x128xbf16>) {
  // expected-error @+1 {{'sinks' must have rank 1 (shape [Hq]), got rank 2}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) sinks(%s : memref<1x64xf32>) outs(%o : memref<2x64x17x128xbf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

// The LSE is f32 [B, Hq, Sq] whatever the layout.
func.func @f(%q: memref<2x17x64x128xbf16>, %k: memref<2x33x8x128xbf16>, %o: memref<2x17x64x128xbf16>, %l: memref<2x17x64xf32>) {
  // expected-error @+1 {{'lse_init' dim 1 must be q_heads (64), got 17}}
  gqa.attention ins(%q, %k, %k : memref<2x17x64x128xbf16>, memref<2x33x8x128xbf16>, memref<2x33x8x128xbf16>) outs(%o : memref<2x17x64x128xbf16>, %l : memref<2x17x64xf32>) heads(64, 8) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %o: memref<2x64x17x128xbf16>, %l: memref<2x64x16xf32>) {
  // expected-error @+1 {{'lse_init' dim 2 is 16, but the 'query' sequence length is 17}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) outs(%o : memref<2x64x17x128xbf16>, %l : memref<2x64x16xf32>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %o: memref<2x64x17x128xbf16>, %l: memref<3x64x17xf32>) {
  // expected-error @+1 {{'lse_init' dim 0 is 3, but the 'query' batch is 2}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) outs(%o : memref<2x64x17x128xbf16>, %l : memref<3x64x17xf32>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %o: memref<2x64x17x128xbf16>, %l: memref<2x64x17xf16>) {
  // expected-error @+1 {{'lse_init' element type must be f32, got 'f16'}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) outs(%o : memref<2x64x17x128xbf16>, %l : memref<2x64x17xf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

func.func @f(%q: memref<2x64x17x128xbf16>, %k: memref<2x8x33x128xbf16>, %o: memref<2x64x17x128xbf16>, %l: memref<2x64xf32>) {
  // expected-error @+1 {{'lse_init' must have rank 3 (shape [B, Hq, Sq]), got rank 2}}
  gqa.attention ins(%q, %k, %k : memref<2x64x17x128xbf16>, memref<2x8x33x128xbf16>, memref<2x8x33x128xbf16>) outs(%o : memref<2x64x17x128xbf16>, %l : memref<2x64xf32>) heads(64, 8) layout<bhsd> mask<none>
  return
}

// -----

// On tensors, a result per init, typed as it.
func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %o: tensor<2x64x17x128xbf16>, %l: tensor<2x64x17xf32>) {
  // expected-error @+1 {{on tensors the op must have one result per init (2), got 1}}
  %r = gqa.attention ins(%q, %k, %k : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%o : tensor<2x64x17x128xbf16>, %l : tensor<2x64x17xf32>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>
  return
}

// -----

func.func @f(%q: tensor<2x64x17x128xbf16>, %k: tensor<2x8x33x128xbf16>, %o: tensor<2x64x17x128xbf16>, %l: tensor<2x64x17xf32>) {
  // expected-error @+1 {{LSE result type 'tensor<2x64x?xf32>' differs from 'lse_init' type 'tensor<2x64x17xf32>'}}
  %r:2 = gqa.attention ins(%q, %k, %k : tensor<2x64x17x128xbf16>, tensor<2x8x33x128xbf16>, tensor<2x8x33x128xbf16>) outs(%o : tensor<2x64x17x128xbf16>, %l : tensor<2x64x17xf32>) heads(64, 8) layout<bhsd> mask<none> -> tensor<2x64x17x128xbf16>, tensor<2x64x?xf32>
  return
}

// -----

// Ragged batches: packed tokens are bshd.
func.func @f(%q: memref<?x8x64xf16>, %k: memref<?x2x?x64xf16>, %cu: memref<?xi32>, %o: memref<?x8x64xf16>) {
  // expected-error @+1 {{packed queries (cu_seqlens_q) are tokens [T, Hq, D]: the layout must be bshd, got bhsd}}
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf16>, memref<?x2x?x64xf16>, memref<?x2x?x64xf16>) cu_seqlens_q(%cu : memref<?xi32>) outs(%o : memref<?x8x64xf16>) heads(8, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @f(%q: memref<?x?x8x64xf16>, %k: memref<?x?x2x64xf16>, %cu: memref<?xi32>, %o: memref<?x?x8x64xf16>) {
  // expected-error @+1 {{'query' must have rank 3 (T, H, D: tokens packed by cu_seqlens_q), got rank 4}}
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, memref<?x?x2x64xf16>, memref<?x?x2x64xf16>) cu_seqlens_q(%cu : memref<?xi32>) outs(%o : memref<?x?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<?x8x64xf16>, %k: memref<?x?x2x64xf16>, %cu: memref<?xi32>, %o: memref<?x8x64xf16>) {
  // expected-error @+1 {{'key' must have rank 3 (T, H, D: tokens packed by cu_seqlens_k), got rank 4}}
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf16>, memref<?x?x2x64xf16>, memref<?x?x2x64xf16>) cu_seqlens_q(%cu : memref<?xi32>) cu_seqlens_k(%cu : memref<?xi32>) outs(%o : memref<?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<?x?x8x64xf16>, %k: memref<?x2x64xf16>, %cu: memref<?xi32>, %o: memref<?x?x8x64xf16>) {
  // expected-error @+1 {{'cu_seqlens_k' needs 'cu_seqlens_q': packed keys come with packed queries}}
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, memref<?x2x64xf16>, memref<?x2x64xf16>) cu_seqlens_k(%cu : memref<?xi32>) outs(%o : memref<?x?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<?x8x64xf16>, %k: memref<?x2x64xf16>, %cq: memref<4xi32>, %ck: memref<3xi32>, %o: memref<?x8x64xf16>) {
  // expected-error @+1 {{'cu_seqlens_k' has 3 offsets, but 'cu_seqlens_q' 4: both have B+1}}
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf16>, memref<?x2x64xf16>, memref<?x2x64xf16>) cu_seqlens_q(%cq : memref<4xi32>) cu_seqlens_k(%ck : memref<3xi32>) outs(%o : memref<?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<?x8x64xf16>, %k: memref<?x2x64xf16>, %cq: memref<?xi64>, %o: memref<?x8x64xf16>) {
  // expected-error @+1 {{'cu_seqlens_q' must be a rank-1 i32 array of B+1 offsets, got 'memref<?xi64>'}}
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf16>, memref<?x2x64xf16>, memref<?x2x64xf16>) cu_seqlens_q(%cq : memref<?xi64>) outs(%o : memref<?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<?x8x64xf16>, %k: memref<3x?x2x64xf16>, %cq: memref<5xi32>, %o: memref<?x8x64xf16>) {
  // expected-error @+1 {{'key' batch (dim 0 of bshd) is 3, but the batch (the size of 'cu_seqlens_q' - 1) is 4}}
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf16>, memref<3x?x2x64xf16>, memref<3x?x2x64xf16>) cu_seqlens_q(%cq : memref<5xi32>) outs(%o : memref<?x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<10x8x64xf16>, %k: memref<?x2x64xf16>, %cq: memref<5xi32>, %o: memref<9x8x64xf16>) {
  // expected-error @+1 {{'init' token count (dim 0 of the packed tokens [T, H, D]) is 9, but the 'query' token count is 10}}
  gqa.attention ins(%q, %k, %k : memref<10x8x64xf16>, memref<?x2x64xf16>, memref<?x2x64xf16>) cu_seqlens_q(%cq : memref<5xi32>) cu_seqlens_k(%cq : memref<5xi32>) outs(%o : memref<9x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<10x8x64xf16>, %k: memref<?x2x64xf16>, %cq: memref<5xi32>, %o: memref<10x8x64xf16>, %l: memref<8x9xf32>) {
  // expected-error @+1 {{'lse_init' dim 1 is 9, but the 'query' token count is 10}}
  gqa.attention ins(%q, %k, %k : memref<10x8x64xf16>, memref<?x2x64xf16>, memref<?x2x64xf16>) cu_seqlens_q(%cq : memref<5xi32>) cu_seqlens_k(%cq : memref<5xi32>) outs(%o : memref<10x8x64xf16>, %l : memref<8x9xf32>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @f(%q: memref<10x8x64xf16>, %k: memref<?x2x64xf16>, %cq: memref<5xi32>, %o: memref<10x8x64xf16>, %lens: memref<3xi32>) {
  // expected-error @+1 {{'kv_lens' dim 0 is 3, but the batch (the size of 'cu_seqlens_q' - 1) is 4}}
  gqa.attention ins(%q, %k, %k : memref<10x8x64xf16>, memref<?x2x64xf16>, memref<?x2x64xf16>) kv_lens(%lens : memref<3xi32>) cu_seqlens_q(%cq : memref<5xi32>) cu_seqlens_k(%cq : memref<5xi32>) outs(%o : memref<10x8x64xf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @max_seqlen_without_offsets(%q: memref<2x17x8x64xf32>, %k: memref<2x33x2x64xf32>, %o: memref<2x17x8x64xf32>, %m: index) {
  // expected-error @+1 {{'max_seqlen_q' is the longest sequence of a ragged batch; it needs 'cu_seqlens_q'}}
  gqa.attention ins(%q, %k, %k : memref<2x17x8x64xf32>, memref<2x33x2x64xf32>, memref<2x33x2x64xf32>)
    max_seqlen_q(%m) outs(%o : memref<2x17x8x64xf32>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @max_seqlen_k_without_packed_kv(%q: memref<?x8x64xf32>, %k: memref<2x33x2x64xf32>, %cq: memref<?xi32>, %o: memref<?x8x64xf32>, %m: index) {
  // expected-error @+1 {{'max_seqlen_k' is the longest sequence of a ragged batch; it needs 'cu_seqlens_k'}}
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf32>, memref<2x33x2x64xf32>, memref<2x33x2x64xf32>)
    cu_seqlens_q(%cq : memref<?xi32>) max_seqlen_k(%m) outs(%o : memref<?x8x64xf32>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

func.func @negative_max_seqlen(%q: memref<?x8x64xf32>, %k: memref<2x33x2x64xf32>, %cq: memref<?xi32>, %o: memref<?x8x64xf32>) {
  %m = arith.constant -1 : index
  // expected-error @+1 {{'max_seqlen_q' must be >= 0, got -1}}
  gqa.attention ins(%q, %k, %k : memref<?x8x64xf32>, memref<2x33x2x64xf32>, memref<2x33x2x64xf32>)
    cu_seqlens_q(%cq : memref<?xi32>) max_seqlen_q(%m) outs(%o : memref<?x8x64xf32>) heads(8, 2) layout<bshd> mask<none>
  return
}
