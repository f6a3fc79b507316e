// RUN: gqa-opt %s --convert-gqa-to-gpu --canonicalize --cse | FileCheck %s

// MQA (8 query heads on 1 KV head), bhsd, f16, D = 128 and Dv = 64, a causal
// sliding window of 256 keys, index-typed KV lengths, explicit scale and a
// softcap, static batch and KV length. Every bound of the mask comes from
// emitVisibleKeys (in gqa-distribute's block work and in the tile ops'
// lowering): the diagonal i + kv_len - Sq, begin = max(diag - 256, 0), end =
// min(kv_len, diag + 1).

// CHECK-LABEL: func.func @window(
// The static batch is a constant grid dimension.
// CHECK:       gpu.launch_func async [%{{.*}}] @gqa_kernels::@gqa_attention_fwd blocks in (%{{.*}}, %c1, %c2) threads in (%c128, %c1, %c1) dynamic_shared_memory_size %c40960_i32 args({{.*}} : memref<1xindex>, %c2_i64 : i64, %{{.*}} : i64, %c4096_i64 : i64)

// CHECK:       gpu.module @gqa_kernels attributes {gqa.config = {batch = 2 : i64, dtype = "f16", group_size = 8 : i64, head_dim = 128 : i64, head_dim_v = 64 : i64, kv_heads = 1 : i64, kv_lens = "i64", layout = "bhsd", lse = false, mask = "window", packed_kv = false, page_size = 0 : i64, q_heads = 8 : i64, scale = 1.250000e-01 : f64, seq_kv = 4096 : i64, sinks = false, softcap = 3.000000e+01 : f64, varlen = false, window_left = 256 : i64, window_right = 0 : i64}
// CHECK:       gpu.func @gqa_attention_fwd(%{{.*}}: memref<1xf16>, %{{.*}}: memref<1xf16>, %{{.*}}: memref<1xf16>, %{{.*}}: memref<1xf16>, %[[KL:.*]]: memref<1xindex>, %{{.*}}: i64, %[[SQP:.*]]: i64, %{{.*}}: i64) kernel
// CHECK-SAME:    gqa.dynamic_shared_memory_bytes = 40960 : i64
// CHECK-SAME:    gqa.params = ["q", "k", "v", "out", "kv_lens", "batch", "seq_q", "seq_kv"]
// CHECK:         %[[SQ:.*]] = arith.index_cast %[[SQP]] : i64 to index
// CHECK:         %[[GKL:.*]] = memref.reinterpret_cast %[[KL]]
// CHECK:         %[[RB:.*]] = gpu.block_id x
// CHECK:         %[[BATCH:.*]] = gpu.block_id z
// Shared memory: Q [64 x 128] | K [64 x 128] | V [64 x 64].
// CHECK:         memref.view %{{.*}}[%c32768][] : memref<40960xi8, 3> to memref<4096xf16, 3>
// The block's work, as gqa-distribute computed it: KV length, offset, the
// first and last queries' windows and the tile range.
// CHECK:         %[[FIRST:.*]] = arith.muli %[[RB]], %c64
// CHECK:         %[[LEN0:.*]] = memref.load %[[GKL]][%[[BATCH]]]
// CHECK:         %[[LEN1:.*]] = arith.maxsi %[[LEN0]], %c0 : index
// CHECK:         %[[LEN:.*]] = arith.minui %[[LEN1]], %c4096 : index
// CHECK:         %[[OFF:.*]] = arith.subi %[[LEN]], %[[SQ]] : index
// The first query of the block, r0 / 8: its window begins the tile range.
// CHECK:         %[[IMIN:.*]] = arith.divui %[[FIRST]], %c8 : index
// CHECK:         %[[DIAG0:.*]] = arith.addi %[[IMIN]], %[[OFF]] : index
// CHECK:         %[[B0:.*]] = arith.subi %[[DIAG0]], %c256 : index
// CHECK:         %[[BEGIN0:.*]] = arith.maxsi %[[B0]], %c0 : index
// CHECK:         %[[E0:.*]] = arith.addi %[[DIAG0]], %c1 : index
// CHECK:         %[[END0:.*]] = arith.minsi %[[LEN]], %[[E0]] : index
// The last query: its diagonal ends the range.
// CHECK:         %[[DIAG1:.*]] = arith.addi %{{.*}}, %[[OFF]] : index
// CHECK:         %[[B1:.*]] = arith.subi %[[DIAG1]], %c256 : index
// CHECK:         %[[BEGIN1:.*]] = arith.maxsi %[[B1]], %c0 : index
// CHECK:         %[[E1:.*]] = arith.addi %[[DIAG1]], %c1 : index
// CHECK:         %[[END1:.*]] = arith.minsi %[[LEN]], %[[E1]] : index
// CHECK:         %[[LO:.*]] = arith.divui %[[BEGIN0]], %c64 : index
// CHECK:         %[[END1P:.*]] = arith.maxsi %[[END1]], %c0 : index
// CHECK:         %[[HI:.*]] = arith.ceildivui %[[END1P]], %c64 : index
// bhsd: row j of K for (b, kvh = 0) is b * 4096 * 128 + j * 128.
// CHECK:         arith.muli %[[BATCH]], %c524288 : index
// Per lane row, once per block: end and begin of its visible keys, in i32.
// CHECK:         %[[REND:.*]] = arith.index_cast %{{.*}} : index to i32
// CHECK:         %[[RBEGIN:.*]] = arith.index_cast %{{.*}} : index to i32
// CHECK:         scf.for %[[N:.*]] = %[[LO]] to %[[HI]] step %c1
// CHECK:           %[[J0:.*]] = arith.muli %[[N]], %c64 overflow<nsw> : index
// Softcap before the mask: tanh(s * scale / c) = 1 - 2 / (2^(2 log2(e) s
// scale / c) + 1), then scale2 = c * log2(e).
// CHECK:           %[[S0:.*]] = arith.mulf %{{.*}}, %[[INNER:.*]] : f32
// CHECK:           %[[S1:.*]] = arith.mulf %[[S0]], %[[TWOLOG2E:.*]] : f32
// CHECK:           %[[E:.*]] = llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"(%[[S1]]) : (f32) -> f32
// CHECK:           %[[E1:.*]] = arith.addf %[[E]], %{{.*}} : f32
// CHECK:           %[[R:.*]] = nvvm.rcp.approx.ftz.f %[[E1]] : f32
// CHECK:           llvm.intr.fma(%[[R]], %{{.*}}, %{{.*}}) : (f32, f32, f32) -> f32
// A tile is masked unless every row sees all of it: j0 >= begin(last row)
// and j0 + 64 <= end(first row).
// CHECK:           %[[J1:.*]] = arith.addi %[[J0]], %c64 : index
// CHECK:           %[[PAST:.*]] = arith.cmpi sgt, %[[J1]], %[[END0]] : index
// CHECK:           %[[BEFORE:.*]] = arith.cmpi slt, %[[J0]], %[[BEGIN1]] : index
// CHECK:           %[[MASKED:.*]] = arith.ori %[[BEFORE]], %[[PAST]] : i1
// CHECK:           scf.if %[[MASKED]] -> (f32,
// Element c of the lane: begin <= j0 + 2 tig + c < end.
// CHECK:             %[[COL:.*]] = arith.index_cast %{{.*}} : index to i32
// CHECK:             %[[LAST0:.*]] = arith.subi %[[REND]], %[[COL]] : i32
// CHECK:             %[[LAST:.*]] = arith.subi %[[LAST0]], %c1_i32 : i32
// CHECK:             %[[FIRSTC:.*]] = arith.subi %[[RBEGIN]], %[[COL]] : i32
// CHECK:             %[[OK1:.*]] = arith.cmpi sge, %[[LAST]], %c0_i32 : i32
// CHECK:             %[[OK2:.*]] = arith.cmpi sle, %[[FIRSTC]], %c0_i32 : i32
// CHECK:             %[[OK:.*]] = arith.andi %[[OK1]], %[[OK2]] : i1
// CHECK:             arith.select %[[OK]], %{{.*}}, %{{.*}} : f32
func.func @window(%q: memref<2x8x?x128xf16>, %k: memref<2x1x4096x128xf16>,
                  %v: memref<2x1x4096x64xf16>, %lens: memref<2xindex>,
                  %o: memref<2x8x?x64xf16>) {
  gqa.attention ins(%q, %k, %v : memref<2x8x?x128xf16>, memref<2x1x4096x128xf16>, memref<2x1x4096x64xf16>)
    kv_lens(%lens : memref<2xindex>)
    outs(%o : memref<2x8x?x64xf16>) heads(8, 1) layout<bhsd> mask<causal, window = [256, 0]>
    scale(0.125) softcap(30.0)
  return
}
