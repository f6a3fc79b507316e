// A size beyond 64 bits is an error, not a wrapped number.
// RUN: not gqa-opt %s --gqa-kv-cache-report="seq-len=18446744073709551615" -o /dev/null 2>&1 | FileCheck %s
// CHECK: error: KV-cache size at seq-len 18446744073709551615, batch 1 does not fit in 64 bits
func.func @huge(%q: memref<1x64x1x128xbf16>, %k: memref<1x8x1x128xbf16>, %o: memref<1x64x1x128xbf16>) {
  gqa.attention ins(%q, %k, %k : memref<1x64x1x128xbf16>, memref<1x8x1x128xbf16>, memref<1x8x1x128xbf16>)
    outs(%o : memref<1x64x1x128xbf16>) heads(64, 8) layout<bhsd> mask<none>
  return
}
