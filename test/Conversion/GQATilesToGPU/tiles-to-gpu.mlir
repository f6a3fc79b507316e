// RUN: gqa-opt %s --split-input-file --gqa-select-schedule="target=sm_90 max-splits=0" --gqa-distribute --canonicalize --convert-gqa-tiles-to-gpu --canonicalize --cse | FileCheck %s
// RUN: not gqa-opt %s --split-input-file --gqa-select-schedule="target=sm_90 max-splits=0" --gqa-distribute --canonicalize --cse --convert-gqa-tiles-to-gpu 2>&1 | FileCheck %s --check-prefix=MERGED

// convert-gqa-tiles-to-gpu on the tiled form itself, without
// gqa-prefetch-keys: each KV tile's K and V are loaded at the top of the
// loop, and the shared-memory ordering puts one wait and barrier before the
// copies (every warp is done with the previous tiles) and one before the
// first read (the copies landed). The forall becomes the launch; its
// induction variables the block ids.

// CHECK-LABEL: func.func @unpipelined(
// CHECK:       gpu.launch_func async [%{{.*}}] @gqa_kernels::@gqa_attention_fwd
// CHECK:       gpu.func @gqa_attention_fwd(
// CHECK-SAME:    gqa.params = ["q", "k", "v", "out", "batch", "seq_q", "seq_kv"]
// CHECK-SAME:    gqa.role = "main"
// CHECK:         gpu.block_id x
// The Q tile, then its fragments once, before the loop.
// CHECK:         nvvm.cp.async.commit.group
// CHECK:         nvvm.cp.async.wait.group 0
// CHECK-NEXT:    gpu.barrier
// CHECK:         nvgpu.ldmatrix
// CHECK:         scf.for
// CHECK:           nvvm.cp.async.wait.group 0
// CHECK-NEXT:      gpu.barrier
// CHECK-COUNT-4:   nvgpu.device_async_copy
// CHECK:           nvvm.cp.async.commit.group
// CHECK-COUNT-4:   nvgpu.device_async_copy
// CHECK:           nvvm.cp.async.commit.group
// CHECK-NEXT:      nvvm.cp.async.wait.group 0
// CHECK-NEXT:      gpu.barrier
// CHECK:           nvvm.mma.sync
// CHECK-NOT:       gpu.barrier
// CHECK:           scf.yield
func.func @unpipelined(%q: memref<?x?x8x64xbf16>, %k: memref<?x?x2x64xbf16>, %v: memref<?x?x2x64xbf16>, %o: memref<?x?x8x64xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    outs(%o : memref<?x?x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}

// -----

// One memref as key and value: two loads, each into its own buffer, and the
// kernel takes it twice (k and v). CSE would merge the loads; one tile read
// as both cannot share a buffer, and the lowering says so.

// CHECK-LABEL: func.func @same_key_and_value(
// CHECK:       gpu.launch_func
// CHECK-SAME:    args(%[[Q:[^ ]*]] : memref<1xbf16>, %[[K:[^ ]*]] : memref<1xbf16>, %[[K]] : memref<1xbf16>,
// MERGED: error: 'gqa.load_kv_tile' op must be either the key of a gqa.scores or the value of a gqa.accumulate
func.func @same_key_and_value(%q: memref<?x?x8x64xbf16>, %k: memref<?x?x2x64xbf16>, %o: memref<?x?x8x64xbf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    outs(%o : memref<?x?x8x64xbf16>) heads(8, 2) layout<bshd> mask<none>
  return
}
