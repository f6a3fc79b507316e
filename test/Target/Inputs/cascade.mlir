// Cascade attention: each sequence's queries attend to a shared prefix and to
// their own suffix apart, returning LSEs, and gqa.merge_states merges the two
// results in place into the first.
func.func @cascade(%q: memref<?x?x8x64xbf16>, %prefix: memref<?x?x2x64xbf16>,
                   %suffix: memref<?x?x2x64xbf16>, %o: memref<?x?x8x64xbf16>,
                   %o2: memref<?x?x8x64xbf16>, %lse: memref<?x8x?xf32>,
                   %lse2: memref<?x8x?xf32>, %merged: memref<?x8x?xf32>) {
  gqa.attention ins(%q, %prefix, %prefix : memref<?x?x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    outs(%o : memref<?x?x8x64xbf16>, %lse : memref<?x8x?xf32>) heads(8, 2) layout<bshd> mask<none>
  gqa.attention ins(%q, %suffix, %suffix : memref<?x?x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    outs(%o2 : memref<?x?x8x64xbf16>, %lse2 : memref<?x8x?xf32>) heads(8, 2) layout<bshd> mask<causal>
  gqa.merge_states ins(%o, %lse, %o2, %lse2 : memref<?x?x8x64xbf16>, memref<?x8x?xf32>, memref<?x?x8x64xbf16>, memref<?x8x?xf32>)
    outs(%o : memref<?x?x8x64xbf16>, %merged : memref<?x8x?xf32>) layout<bshd>
  return
}
