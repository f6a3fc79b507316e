func.func @bad(%q: memref<?x?x8x64xf32>, %k: memref<?x?x3x64xf32>, %o: memref<?x?x8x64xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf32>, memref<?x?x3x64xf32>, memref<?x?x3x64xf32>)
    outs(%o : memref<?x?x8x64xf32>) heads(8, 3) layout<bshd> mask<causal>
  return
}
