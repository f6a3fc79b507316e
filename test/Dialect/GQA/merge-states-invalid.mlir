// RUN: gqa-opt %s -split-input-file -verify-diagnostics

func.func @rank(%o: memref<?x64x128xbf16>, %l: memref<64x?xf32>, %o5: memref<1x?x?x64x128xbf16>) {
  // expected-error @+1 {{expects 'out_a' of rank 4 ([B, S, H, Dv] or [B, H, S, Dv] as the layout orders it) or 3 (packed tokens [T, H, Dv]), got 'memref<1x?x?x64x128xbf16>'}}
  gqa.merge_states ins(%o5, %l, %o, %l : memref<1x?x?x64x128xbf16>, memref<64x?xf32>, memref<?x64x128xbf16>, memref<64x?xf32>)
      outs(%o : memref<?x64x128xbf16>, %l : memref<64x?xf32>) layout<bshd>
  return
}

// -----

func.func @packed_bhsd(%o: memref<?x64x128xbf16>, %l: memref<64x?xf32>, %l2: memref<64x?xf32>) {
  // expected-error @+1 {{packed tokens [T, H, Dv] need layout bshd, got layout bhsd}}
  gqa.merge_states ins(%o, %l, %o, %l : memref<?x64x128xbf16>, memref<64x?xf32>, memref<?x64x128xbf16>, memref<64x?xf32>)
      outs(%o : memref<?x64x128xbf16>, %l2 : memref<64x?xf32>) layout<bhsd>
  return
}

// -----

func.func @element(%o: memref<?x64x128xi8>, %l: memref<64x?xf32>) {
  // expected-error @+1 {{expects 'out_a' to hold f16, bf16 or f32, got 'i8'}}
  gqa.merge_states ins(%o, %l, %o, %l : memref<?x64x128xi8>, memref<64x?xf32>, memref<?x64x128xi8>, memref<64x?xf32>)
      outs(%o : memref<?x64x128xi8>, %l : memref<64x?xf32>) layout<bshd>
  return
}

// -----

func.func @dynamic_heads(%o: memref<?x?x?x128xf16>, %l: memref<?x?x?xf32>) {
  // expected-error @+1 {{expects a static head count and head dim in 'out_a', got 'memref<?x?x?x128xf16>'}}
  gqa.merge_states ins(%o, %l, %o, %l : memref<?x?x?x128xf16>, memref<?x?x?xf32>, memref<?x?x?x128xf16>, memref<?x?x?xf32>)
      outs(%o : memref<?x?x?x128xf16>, %l : memref<?x?x?xf32>) layout<bshd>
  return
}

// -----

func.func @out_b_heads(%a: memref<?x?x64x128xf16>, %b: memref<?x?x32x128xf16>, %l: memref<?x64x?xf32>) {
  // expected-error @+1 {{'out_b' head count (dim 2) is 32, but 'out_a' has 64}}
  gqa.merge_states ins(%a, %l, %b, %l : memref<?x?x64x128xf16>, memref<?x64x?xf32>, memref<?x?x32x128xf16>, memref<?x64x?xf32>)
      outs(%a : memref<?x?x64x128xf16>, %l : memref<?x64x?xf32>) layout<bshd>
  return
}

// -----

func.func @init_dtype(%a: memref<?x?x64x128xf16>, %o: memref<?x?x64x128xbf16>, %l: memref<?x64x?xf32>) {
  // expected-error @+1 {{expects 'init' of the rank and element type of 'out_a' ('memref<?x?x64x128xf16>'), got 'memref<?x?x64x128xbf16>'}}
  gqa.merge_states ins(%a, %l, %a, %l : memref<?x?x64x128xf16>, memref<?x64x?xf32>, memref<?x?x64x128xf16>, memref<?x64x?xf32>)
      outs(%o : memref<?x?x64x128xbf16>, %l : memref<?x64x?xf32>) layout<bshd>
  return
}

// -----

func.func @lse_type(%a: memref<?x?x64x128xf16>, %l: memref<?x64x?xf32>, %bad: memref<?x64x?xf16>) {
  // expected-error @+1 {{expects 'lse_b' to be f32 [B, H, S], got 'memref<?x64x?xf16>'}}
  gqa.merge_states ins(%a, %l, %a, %bad : memref<?x?x64x128xf16>, memref<?x64x?xf32>, memref<?x?x64x128xf16>, memref<?x64x?xf16>)
      outs(%a : memref<?x?x64x128xf16>, %l : memref<?x64x?xf32>) layout<bshd>
  return
}

// -----

func.func @lse_heads(%a: memref<?x?x64x128xf16>, %l: memref<?x64x?xf32>, %bad: memref<?x8x?xf32>) {
  // expected-error @+1 {{'lse_init' head count (dim 1) is 8, but 'out_a' has 64}}
  gqa.merge_states ins(%a, %l, %a, %l : memref<?x?x64x128xf16>, memref<?x64x?xf32>, memref<?x?x64x128xf16>, memref<?x64x?xf32>)
      outs(%a : memref<?x?x64x128xf16>, %bad : memref<?x8x?xf32>) layout<bshd>
  return
}

// -----

func.func @lse_tokens(%a: memref<10x8x64xf16>, %l: memref<8x10xf32>, %bad: memref<8x12xf32>) {
  // expected-error @+1 {{'lse_a' token count (dim 1) is 12, but 'out_a' has 10}}
  gqa.merge_states ins(%a, %bad, %a, %l : memref<10x8x64xf16>, memref<8x12xf32>, memref<10x8x64xf16>, memref<8x10xf32>)
      outs(%a : memref<10x8x64xf16>, %l : memref<8x10xf32>) layout<bshd>
  return
}

// -----

func.func @lse_seq_bhsd(%a: memref<2x4x3x32xf32>, %l: memref<2x4x3xf32>, %bad: memref<2x4x5xf32>) {
  // expected-error @+1 {{'lse_b' sequence length (dim 2) is 5, but 'out_a' has 3}}
  gqa.merge_states ins(%a, %l, %a, %bad : memref<2x4x3x32xf32>, memref<2x4x3xf32>, memref<2x4x3x32xf32>, memref<2x4x5xf32>)
      outs(%a : memref<2x4x3x32xf32>, %l : memref<2x4x3xf32>) layout<bhsd>
  return
}

// -----

func.func @mixed(%a: tensor<?x?x64x128xf16>, %l: memref<?x64x?xf32>) {
  // expected-error @+1 {{operands must be all tensors or all memrefs, but 'out_a' is 'tensor<?x?x64x128xf16>' and an operand is 'memref<?x64x?xf32>'}}
  gqa.merge_states ins(%a, %l, %a, %l : tensor<?x?x64x128xf16>, memref<?x64x?xf32>, tensor<?x?x64x128xf16>, memref<?x64x?xf32>)
      outs(%a : tensor<?x?x64x128xf16>, %l : memref<?x64x?xf32>) layout<bshd>
  return
}

// -----

func.func @results(%a: tensor<?x?x64x128xf16>, %l: tensor<?x64x?xf32>) {
  // expected-error @+1 {{on tensors the op must have one result per init (2), got 1}}
  %r = gqa.merge_states ins(%a, %l, %a, %l : tensor<?x?x64x128xf16>, tensor<?x64x?xf32>, tensor<?x?x64x128xf16>, tensor<?x64x?xf32>)
      outs(%a : tensor<?x?x64x128xf16>, %l : tensor<?x64x?xf32>) layout<bshd> -> tensor<?x?x64x128xf16>
  return
}
