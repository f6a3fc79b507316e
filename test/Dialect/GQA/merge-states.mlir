// RUN: gqa-opt %s | gqa-opt | FileCheck %s
// RUN: gqa-opt %s -one-shot-bufferize="bufferize-function-boundaries" | FileCheck %s --check-prefix=BUF

// CHECK-LABEL: func @merge_bshd
// CHECK: gqa.merge_states ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>, tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>) outs(%{{.*}} : tensor<?x?x64x128xbf16>, %{{.*}} : tensor<?x64x?xf32>) layout<bshd> -> tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>
// BUF-LABEL: func @merge_bshd
// BUF: gqa.merge_states ins({{.*}} : memref<?x?x64x128xbf16{{.*}}>, memref<?x64x?xf32{{.*}}>, memref<?x?x64x128xbf16{{.*}}>, memref<?x64x?xf32{{.*}}>) outs({{.*}}) layout<bshd>{{$}}
func.func @merge_bshd(%oa: tensor<?x?x64x128xbf16>, %la: tensor<?x64x?xf32>,
                      %ob: tensor<?x?x64x128xbf16>, %lb: tensor<?x64x?xf32>,
                      %o: tensor<?x?x64x128xbf16>, %l: tensor<?x64x?xf32>)
    -> (tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>) {
  %r:2 = gqa.merge_states ins(%oa, %la, %ob, %lb : tensor<?x?x64x128xbf16>,
      tensor<?x64x?xf32>, tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>)
      outs(%o : tensor<?x?x64x128xbf16>, %l : tensor<?x64x?xf32>) layout<bshd>
      -> tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>
  return %r#0, %r#1 : tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>
}

// CHECK-LABEL: func @merge_varlen_in_place
// CHECK: gqa.merge_states ins(%[[A:.*]], %{{.*}}, %{{.*}}, %{{.*}} : memref<?x8x64xf16>, memref<8x?xf32>, memref<?x8x64xf16>, memref<8x?xf32>) outs(%[[A]] : memref<?x8x64xf16>, %{{.*}} : memref<8x?xf32>) layout<bshd>
func.func @merge_varlen_in_place(%oa: memref<?x8x64xf16>, %la: memref<8x?xf32>,
                                 %ob: memref<?x8x64xf16>, %lb: memref<8x?xf32>,
                                 %l: memref<8x?xf32>) {
  gqa.merge_states ins(%oa, %la, %ob, %lb : memref<?x8x64xf16>, memref<8x?xf32>,
      memref<?x8x64xf16>, memref<8x?xf32>)
      outs(%oa : memref<?x8x64xf16>, %l : memref<8x?xf32>) layout<bshd>
  return
}

// CHECK-LABEL: func @merge_bhsd_static
// CHECK: layout<bhsd>
func.func @merge_bhsd_static(%oa: memref<2x4x3x32xf32>, %la: memref<2x4x3xf32>,
                             %ob: memref<2x4x3x32xf32>, %lb: memref<2x4x3xf32>,
                             %o: memref<2x4x3x32xf32>, %l: memref<2x4x3xf32>) {
  gqa.merge_states ins(%oa, %la, %ob, %lb : memref<2x4x3x32xf32>,
      memref<2x4x3xf32>, memref<2x4x3x32xf32>, memref<2x4x3xf32>)
      outs(%o : memref<2x4x3x32xf32>, %l : memref<2x4x3xf32>) layout<bhsd>
  return
}
