// Decode for 3 sequences of up to 5 pages of 32 tokens, in a pool of 40.
func.func @paged(%q: memref<3x1x16x64xbf16>, %kc: memref<40x32x4x64xbf16>, %vc: memref<40x32x4x64xbf16>,
                 %lens: memref<3xi32>, %pages: memref<3x5xi32>, %o: memref<3x1x16x64xbf16>) {
  gqa.attention ins(%q, %kc, %vc : memref<3x1x16x64xbf16>, memref<40x32x4x64xbf16>, memref<40x32x4x64xbf16>)
    kv_lens(%lens : memref<3xi32>) block_table(%pages : memref<3x5xi32>)
    outs(%o : memref<3x1x16x64xbf16>) heads(16, 4) layout<bshd> mask<none>
  return
}
