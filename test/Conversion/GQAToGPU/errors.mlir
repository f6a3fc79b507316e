// RUN: gqa-opt %s --split-input-file --convert-gqa-to-gpu -verify-diagnostics -o /dev/null
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="block-m=24" 2>&1 | FileCheck %s --check-prefix=BLOCKM
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="block-n=200" 2>&1 | FileCheck %s --check-prefix=BLOCKN
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="max-splits=-1" 2>&1 | FileCheck %s --check-prefix=SPLITS
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="max-splits=10000" 2>&1 | FileCheck %s --check-prefix=SPLITS-GRID
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="max-registers=300" 2>&1 | FileCheck %s --check-prefix=REGS
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="block-m=32" 2>&1 | FileCheck %s --check-prefix=F32-TILE
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="block-m=48" 2>&1 | FileCheck %s --check-prefix=CHUNKS
// RUN: not gqa-opt %s --split-input-file --convert-gqa-to-gpu="block-m=128 block-n=128" 2>&1 | FileCheck %s --check-prefix=SMEM

// Every op the GPU path cannot compile gets an error naming what is
// unsupported; none crashes, and no IR is produced for it.

// BLOCKM: error: 'gqa.attention' op block-m = 24 is not supported (16, 32, 48, ..., 128 rows: 16 per warp; 0 chooses)
// BLOCKN: error: 'gqa.attention' op block-n = 200 is not supported (a multiple of 16, at most 128; 0 chooses)
// SPLITS: error: 'gqa.attention' op max-splits must be >= 0 (0 disables split-KV), got -1
// SPLITS-GRID: error: 'gqa.attention' op max-splits = 10000 times kv_heads = 8 exceeds the 65535 CTAs that grid dimension y may have
// F32-TILE: error: 'gqa.attention' op block-m and block-n are fixed at 16 and 32 on the f32 path, got 32 and 32
// REGS: error: 'gqa.attention' op max-registers = 300 is not supported (64 to 255; 0 leaves it to ptxas)
// CHUNKS: error: 'gqa.attention' op block-m = 48 and block-n = 64 give a K tile of 1024 16-byte chunks, not a multiple of the 96 threads that copy it
// SMEM: error: 'gqa.attention' op block-m = 128 and block-n = 128 need 196608 bytes of shared memory, more than the 166912 an sm_80 CTA may have

func.func @supported(%q: memref<?x?x64x128xbf16>, %k: memref<?x?x8x128xbf16>, %v: memref<?x?x8x128xbf16>, %o: memref<?x?x64x128xbf16>) {
  gqa.attention ins(%q, %k, %v : memref<?x?x64x128xbf16>, memref<?x?x8x128xbf16>, memref<?x?x8x128xbf16>)
    outs(%o : memref<?x?x64x128xbf16>) heads(64, 8) layout<bshd> mask<causal>
  return
}

// -----

func.func @head_dim_256(%q: memref<?x?x8x256xbf16>, %k: memref<?x?x1x256xbf16>, %o: memref<?x?x8x256xbf16>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x256xbf16>, memref<?x?x1x256xbf16>, memref<?x?x1x256xbf16>)
    outs(%o : memref<?x?x8x256xbf16>) heads(8, 1) layout<bshd> mask<none>
  return
}

// -----

func.func @f32_supported(%q: memref<?x4x?x64xf32>, %k: memref<?x2x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x4x?x64xf32>, memref<?x2x?x64xf32>, memref<?x2x?x64xf32>)
    outs(%o : memref<?x4x?x64xf32>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @f32_head_dim_130(%q: memref<?x4x?x130xf32>, %k: memref<?x2x?x130xf32>, %o: memref<?x4x?x130xf32>) {
  // expected-error @+1 {{'gqa.attention' op head dim D = 130 is not supported by the f32 GPU path (it must be a multiple of 4 and at most 256)}}
  gqa.attention ins(%q, %k, %k : memref<?x4x?x130xf32>, memref<?x2x?x130xf32>, memref<?x2x?x130xf32>)
    outs(%o : memref<?x4x?x130xf32>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @head_dim_96(%q: memref<?x4x?x96xf16>, %k: memref<?x2x?x96xf16>, %o: memref<?x4x?x96xf16>) {
  // expected-error @+1 {{'gqa.attention' op head dim D = 96 is not supported by the GPU path (it must be a multiple of 64 and at most 256)}}
  gqa.attention ins(%q, %k, %k : memref<?x4x?x96xf16>, memref<?x2x?x96xf16>, memref<?x2x?x96xf16>)
    outs(%o : memref<?x4x?x96xf16>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @head_dim_320(%q: memref<?x4x?x320xbf16>, %k: memref<?x2x?x320xbf16>, %o: memref<?x4x?x320xbf16>) {
  // expected-error @+1 {{'gqa.attention' op head dim D = 320 is not supported by the GPU path (it must be a multiple of 64 and at most 256)}}
  gqa.attention ins(%q, %k, %k : memref<?x4x?x320xbf16>, memref<?x2x?x320xbf16>, memref<?x2x?x320xbf16>)
    outs(%o : memref<?x4x?x320xbf16>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @value_head_dim_32(%q: memref<?x4x?x64xbf16>, %k: memref<?x2x?x64xbf16>, %v: memref<?x2x?x32xbf16>, %o: memref<?x4x?x32xbf16>) {
  // expected-error @+1 {{'gqa.attention' op value head dim Dv = 32 is not supported by the GPU path (it must be a multiple of 64 and at most 256)}}
  gqa.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x2x?x64xbf16>, memref<?x2x?x32xbf16>)
    outs(%o : memref<?x4x?x32xbf16>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @strided(%q: memref<?x4x?x64xbf16, strided<[?, ?, 128, 1]>>, %k: memref<?x2x?x64xbf16>, %o: memref<?x4x?x64xbf16>) {
  // expected-error @+1 {{'gqa.attention' op 'query' must be a contiguous row-major memref (identity layout) on the GPU path, got memref<?x4x?x64xbf16, strided<[?, ?, 128, 1]>>}}
  gqa.attention ins(%q, %k, %k : memref<?x4x?x64xbf16, strided<[?, ?, 128, 1]>>, memref<?x2x?x64xbf16>, memref<?x2x?x64xbf16>)
    outs(%o : memref<?x4x?x64xbf16>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @shared_memory(%q: memref<?x4x?x64xbf16, 3>, %k: memref<?x2x?x64xbf16>, %o: memref<?x4x?x64xbf16>) {
  // expected-error @+1 {{'gqa.attention' op 'query' must be in the default (global) memory space on the GPU path, got memref<?x4x?x64xbf16, 3>}}
  gqa.attention ins(%q, %k, %k : memref<?x4x?x64xbf16, 3>, memref<?x2x?x64xbf16>, memref<?x2x?x64xbf16>)
    outs(%o : memref<?x4x?x64xbf16>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @tensors(%q: tensor<1x4x8x64xbf16>, %k: tensor<1x2x8x64xbf16>, %o: tensor<1x4x8x64xbf16>) -> tensor<1x4x8x64xbf16> {
  // expected-error @+1 {{'gqa.attention' op the GPU path expects gqa.attention on memrefs; run one-shot-bufferize first}}
  %r = gqa.attention ins(%q, %k, %k : tensor<1x4x8x64xbf16>, tensor<1x2x8x64xbf16>, tensor<1x2x8x64xbf16>)
         outs(%o : tensor<1x4x8x64xbf16>) heads(4, 2) layout<bhsd> mask<none> -> tensor<1x4x8x64xbf16>
  return %r : tensor<1x4x8x64xbf16>
}

// -----

func.func @empty_batch(%q: memref<0x4x?x64xbf16>, %k: memref<0x2x?x64xbf16>, %o: memref<0x4x?x64xbf16>) {
  // expected-error @+1 {{'gqa.attention' op 'query' has a static batch size of 0; the GPU kernels need at least 1}}
  gqa.attention ins(%q, %k, %k : memref<0x4x?x64xbf16>, memref<0x2x?x64xbf16>, memref<0x2x?x64xbf16>)
    outs(%o : memref<0x4x?x64xbf16>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @strided_sinks(%q: memref<?x4x?x64xbf16>, %k: memref<?x2x?x64xbf16>, %s: memref<4xf32, strided<[2]>>, %o: memref<?x4x?x64xbf16>) {
  // expected-error @+1 {{'gqa.attention' op 'sinks' must be a contiguous row-major memref (identity layout) on the GPU path, got memref<4xf32, strided<[2]>>}}
  gqa.attention ins(%q, %k, %k : memref<?x4x?x64xbf16>, memref<?x2x?x64xbf16>, memref<?x2x?x64xbf16>)
    sinks(%s : memref<4xf32, strided<[2]>>) outs(%o : memref<?x4x?x64xbf16>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @lse_in_shared_memory(%q: memref<?x4x?x64xbf16>, %k: memref<?x2x?x64xbf16>, %o: memref<?x4x?x64xbf16>, %l: memref<?x4x?xf32, 3>) {
  // expected-error @+1 {{'gqa.attention' op 'lse' must be in the default (global) memory space on the GPU path, got memref<?x4x?xf32, 3>}}
  gqa.attention ins(%q, %k, %k : memref<?x4x?x64xbf16>, memref<?x2x?x64xbf16>, memref<?x2x?x64xbf16>)
    outs(%o : memref<?x4x?x64xbf16>, %l : memref<?x4x?xf32, 3>) heads(4, 2) layout<bhsd> mask<none>
  return
}

// -----

func.func @varlen_without_longest(%q: memref<?x4x64xbf16>, %k: memref<?x?x2x64xbf16>, %cq: memref<?xi32>, %o: memref<?x4x64xbf16>) {
  // expected-error @+1 {{'gqa.attention' op a ragged batch on the GPU needs 'max_seqlen_q' with 'cu_seqlens_q': the longest sequence sizes the grid and the split partition, and the host cannot read it from offsets in device memory}}
  gqa.attention ins(%q, %k, %k : memref<?x4x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    cu_seqlens_q(%cq : memref<?xi32>) outs(%o : memref<?x4x64xbf16>) heads(4, 2) layout<bshd> mask<causal>
  return
}

// -----

func.func @packed_kv_without_longest(%q: memref<?x4x64xbf16>, %k: memref<?x2x64xbf16>, %cq: memref<?xi32>, %ck: memref<?xi32>, %mq: index, %o: memref<?x4x64xbf16>) {
  // expected-error @+1 {{'gqa.attention' op a ragged batch on the GPU needs 'max_seqlen_k' with 'cu_seqlens_k'}}
  gqa.attention ins(%q, %k, %k : memref<?x4x64xbf16>, memref<?x2x64xbf16>, memref<?x2x64xbf16>)
    cu_seqlens_q(%cq : memref<?xi32>) cu_seqlens_k(%ck : memref<?xi32>) max_seqlen_q(%mq) outs(%o : memref<?x4x64xbf16>) heads(4, 2) layout<bshd> mask<causal>
  return
}

// -----

func.func @varlen_empty_batch(%q: memref<?x4x64xbf16>, %k: memref<?x?x2x64xbf16>, %cq: memref<1xi32>, %mq: index, %o: memref<?x4x64xbf16>) {
  // expected-error @+1 {{'gqa.attention' op 'cu_seqlens_q' has a static size of 1 (a batch of 0); the GPU kernels need at least 1 sequence}}
  gqa.attention ins(%q, %k, %k : memref<?x4x64xbf16>, memref<?x?x2x64xbf16>, memref<?x?x2x64xbf16>)
    cu_seqlens_q(%cq : memref<1xi32>) max_seqlen_q(%mq) outs(%o : memref<?x4x64xbf16>) heads(4, 2) layout<bshd> mask<causal>
  return
}
