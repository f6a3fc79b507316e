// RUN: gqa-opt %s -gqa-distribute | FileCheck %s

// Blocks of 4 rows (128 threads x 4 values of Dv = 128) over (S * 64 / 4, B),
// the batch on z as for the attention kernels.
// CHECK-LABEL: func @merge_bshd
// CHECK: scf.forall (%[[RB:.*]], %[[B:.*]]) in (%{{.*}}, %{{.*}})
// CHECK: gqa.merge_rows %arg0, %arg1, %arg2, %arg3, %arg4, %arg5[%[[B]], %{{.*}}] rows(4) layout<bshd>
// CHECK: gqa.config = {dtype = "bf16", head_dim_v = 128 : i64, heads = 64 : i64, layout = "bshd", varlen = false}, gqa.role = "merge", mapping = [#gpu.block<x>, #gpu.block<z>]
func.func @merge_bshd(%oa: memref<?x?x64x128xbf16>, %la: memref<?x64x?xf32>,
                      %ob: memref<?x?x64x128xbf16>, %lb: memref<?x64x?xf32>,
                      %o: memref<?x?x64x128xbf16>, %l: memref<?x64x?xf32>) {
  gqa.merge_states ins(%oa, %la, %ob, %lb : memref<?x?x64x128xbf16>,
      memref<?x64x?xf32>, memref<?x?x64x128xbf16>, memref<?x64x?xf32>)
      outs(%o : memref<?x?x64x128xbf16>, %l : memref<?x64x?xf32>) layout<bshd>
  return
}

// Packed tokens: a batch of one (the kernel's batch size, which no dimension
// gives), each operand viewed as [1, T, H, Dv] / [1, H, T].
// CHECK-LABEL: func @merge_varlen
// CHECK: %[[ONE:.*]] = arith.constant 1 : index
// CHECK: %[[BATCH:.*]] = gqa.launch_size "batch" %[[ONE]]
// CHECK: scf.forall (%{{.*}}, %{{.*}}) in (%{{.*}}, %[[BATCH]])
// CHECK-COUNT-6: memref.expand_shape
// CHECK: gqa.merge_rows {{.*}} rows(8) layout<bshd> : memref<1x?x8x64xf16>, memref<1x8x?xf32>
// CHECK: batch = 1 : i64
func.func @merge_varlen(%oa: memref<?x8x64xf16>, %la: memref<8x?xf32>,
                        %ob: memref<?x8x64xf16>, %lb: memref<8x?xf32>,
                        %l: memref<8x?xf32>) {
  gqa.merge_states ins(%oa, %la, %ob, %lb : memref<?x8x64xf16>, memref<8x?xf32>,
      memref<?x8x64xf16>, memref<8x?xf32>)
      outs(%oa : memref<?x8x64xf16>, %l : memref<8x?xf32>) layout<bshd>
  return
}
