func.func @f32(%q: memref<?x4x?x66xf32>, %k: memref<?x2x?x66xf32>, %o: memref<?x4x?x66xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x4x?x66xf32>, memref<?x2x?x66xf32>, memref<?x2x?x66xf32>)
    outs(%o : memref<?x4x?x66xf32>) heads(4, 2) layout<bhsd> mask<none>
  return
}
