// RUN: gqa-opt %s --convert-gqa-to-gpu --canonicalize --cse | FileCheck %s

// A paged KV cache (16-token pages): the host passes the block table and the
// pool's page count, and Skv = pages per sequence * 16; the kernel finds the
// row of key j of its KV head in the pool [pages, 16, Hkv, D] at page * 16 *
// Hkv * D + (j % 16) * Hkv * D + kvh * D, with page = block_table[b *
// (Skv / 16) + j / 16] clamped into [0, pages - 1].

// CHECK-LABEL: func.func @paged_decode(
// CHECK-SAME: %{{.*}}: memref<?x1x8x64xbf16>, %[[KC:.*]]: memref<?x16x2x64xbf16>, %{{.*}}: memref<?x16x2x64xbf16>, %{{.*}}: memref<?xi32>, %[[PAGES:.*]]: memref<?x?xi32>, %{{.*}}: memref<?x1x8x64xbf16>)
// CHECK:      %[[TABLE:.*]] = memref.reinterpret_cast %[[PAGES]] to offset: [0], sizes: [1], strides: [1] : memref<?x?xi32> to memref<1xi32>
// CHECK:      %[[MAX:.*]] = memref.dim %[[PAGES]], %c1
// CHECK:      %[[SKV:.*]] = arith.muli %[[MAX]], %c16 : index
// CHECK:      %[[SKV64:.*]] = arith.index_cast %[[SKV]] : index to i64
// CHECK:      %[[POOL:.*]] = memref.dim %[[KC]], %c0
// CHECK:      %[[POOL64:.*]] = arith.index_cast %[[POOL]] : index to i64
// Decode (Sq = 1, g = 4): one block of rows per (KV head, sequence).
// CHECK:      gpu.launch_func async [%{{.*}}] @gqa_kernels::@gqa_attention_fwd blocks in (%c1, %c2, %{{[^)]*}})
// CHECK-SAME:   %{{.*}} : memref<1xi32>, %[[TABLE]] : memref<1xi32>, %{{.*}} : i64, %{{.*}} : i64, %[[SKV64]] : i64, %[[POOL64]] : i64)

// CHECK:      gpu.module @gqa_kernels attributes {gqa.config = {{{.*}}page_size = 16 : i64{{.*}}seq_q = 1 : i64
// CHECK:      gpu.func @gqa_attention_fwd(
// CHECK-SAME:   gqa.params = ["q", "k", "v", "out", "kv_lens", "block_table", "batch", "seq_q", "seq_kv", "num_pages"]
// CHECK-DAG:    %[[PAGESI:.*]] = arith.index_cast %arg9 : i64 to index
// CHECK-DAG:    %[[TABLEV:.*]] = memref.reinterpret_cast %arg5 to offset: [0], sizes: [%{{.*}}], strides: [1] : memref<1xi32> to memref<?xi32>
// The last page of the pool clamps a bad entry.
// CHECK:        arith.subi %[[PAGESI]], %c1 : index
// The first copy of a K tile (rows 0-15: page entry 0, its index folded);
// the second is the general form.
// CHECK:        nvvm.cp.async.commit.group
// CHECK:        nvgpu.device_async_copy
// CHECK:        %[[KEY:.*]] = arith.maxsi %{{.*}}, %c0 : index
// CHECK-NEXT:   %[[ENTRY0:.*]] = arith.divui %[[KEY]], %c16 : index
// CHECK-NEXT:   %[[ENTRY:.*]] = arith.addi %{{.*}}, %[[ENTRY0]] : index
// CHECK-NEXT:   %[[PAGE32:.*]] = memref.load %[[TABLEV]][%[[ENTRY]]] : memref<?xi32>
// CHECK-NEXT:   %[[PAGE0:.*]] = arith.index_cast %[[PAGE32]] : i32 to index
// CHECK-NEXT:   %[[PAGE1:.*]] = arith.maxsi %[[PAGE0]], %c0 : index
// CHECK-NEXT:   %[[PAGE:.*]] = arith.minsi %[[PAGE1]], %{{.*}} : index
// CHECK-NEXT:   %[[SLOT:.*]] = arith.remui %[[KEY]], %c16 : index
// CHECK-NEXT:   %[[R0:.*]] = arith.muli %[[PAGE]], %c2048 : index
// CHECK-NEXT:   %[[R1:.*]] = arith.muli %[[SLOT]], %c128 : index
// CHECK-NEXT:   %[[R2:.*]] = arith.addi %[[R0]], %[[R1]] : index
// CHECK-NEXT:   arith.addi %[[R2]], %{{.*}} : index
// CHECK:        nvgpu.device_async_copy
func.func @paged_decode(%q: memref<?x1x8x64xbf16>, %kc: memref<?x16x2x64xbf16>, %vc: memref<?x16x2x64xbf16>,
                        %lens: memref<?xi32>, %pages: memref<?x?xi32>, %o: memref<?x1x8x64xbf16>) {
  gqa.attention ins(%q, %kc, %vc : memref<?x1x8x64xbf16>, memref<?x16x2x64xbf16>, memref<?x16x2x64xbf16>)
    kv_lens(%lens : memref<?xi32>) block_table(%pages : memref<?x?xi32>)
    outs(%o : memref<?x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}
