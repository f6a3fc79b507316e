//===- Passes.td - Conversions out of the gqa dialect ------*- tablegen -*-===//

#ifndef GQA_CONVERSION_PASSES_TD
#define GQA_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertGQAToGPU : Pass<"convert-gqa-to-gpu", "ModuleOp"> {
  let summary = "Lower gqa.attention to FlashAttention-2 GPU kernels and "
                "their launches";
  let description = [{
    Rewrites each bufferized `gqa.attention` (on memrefs) into a
    `gpu.module` holding its kernels and, in place of the op, the host code
    that launches them with `gpu.launch_func`. The kernels are written for
    `mma.sync` tensor cores (sm_80 and newer) with `f16` or `bf16` inputs and
    `f32` accumulation:

    - One CTA handles `block-m` packed rows of one KV head of one batch
      entry: grid `(ceil(Sq * g / block-m), Hkv, B)`. Packed row `r` is
      query position `r / g` of query head `kvh * g + r % g`, so the `g`
      query heads that share a KV head are rows of one tile, and each K/V
      tile is copied (`cp.async`) into shared memory once for all of them.
    - Q K^T and P V use `ldmatrix` + `mma.sync.m16n8k16` from XOR-swizzled
      shared memory; the online softmax runs in registers (base 2, quad
      shuffles); P is reused from registers as the A operand of P V.
    - KV tiles outside every row's visible range (causal, window, KV length)
      are skipped and only boundary tiles are masked, both through
      `emitVisibleKeys`, the mask arithmetic the CPU path uses as well.
    - With `max-splits` > 0 the op becomes Flash-Decoding: a split kernel
      (grid `y` = `Hkv * num_splits`) writes normalised partial outputs and
      log-sum-exps to an f32 workspace, and a combine kernel merges them.

    Kernels take bare pointers (`memref<1xT>`) and the batch and sequence
    lengths as `i64`, in the order docs/kernel-metadata.md lists; the
    `gpu.module` and each `gpu.func` carry `gqa.*` attributes (config, tile,
    grid expressions, parameters) from which the metadata JSON is written.
    f32 ops get a plain kernel on the CUDA cores (16 rows per CTA, one key
    per lane) with the same grid, parameters and split-KV partition.
    Unsupported ops (f16/bf16 head dims that are not multiples of 64 or
    exceed 256, f32 head dims that are not multiples of 4, non-contiguous
    memrefs, tensors, tile options the kernels cannot use) are reported with
    an error naming what is unsupported.

    Example: `gqa-opt --convert-gqa-to-gpu` on

    ```mlir
    func.func @l70b(%q: memref<?x?x64x128xbf16>, %k: memref<?x?x8x128xbf16>,
                    %v: memref<?x?x8x128xbf16>, %o: memref<?x?x64x128xbf16>) {
      gqa.attention ins(%q, %k, %v : memref<?x?x64x128xbf16>,
                        memref<?x?x8x128xbf16>, memref<?x?x8x128xbf16>)
        outs(%o : memref<?x?x64x128xbf16>) heads(64, 8) layout<bshd>
        mask<causal>
      return
    }
    ```

    gives `gpu.module @gqa_kernels` with `gpu.func @gqa_attention_fwd` and,
    in `@l70b`, a `gpu.launch_func` on the grid
    `(ceil(Sq * 8 / 64), 8, B)` with 128 threads and 48 KiB of dynamic
    shared memory.
  }];
  let options = [
    Option<"blockM", "block-m", "int64_t", /*default=*/"0",
           "Packed query rows per CTA (16 per warp); 0 chooses by head dim">,
    Option<"blockN", "block-n", "int64_t", /*default=*/"0",
           "Keys per KV tile; 0 chooses by head dim (64, or 32 above 128)">,
    Option<"maxRegisters", "max-registers", "int64_t", /*default=*/"0",
           "Register cap per thread of the attention kernels (nvvm.maxnreg); "
           "0 leaves it to ptxas">,
    Option<"minCTAsPerSM", "min-ctas-per-sm", "int64_t", /*default=*/"0",
           "CTAs per SM that ptxas must keep room for (nvvm.minctasm); 0 "
           "chooses by head dim (3 up to 64, else 2; 4 for f32)">,
    Option<"maxSplits", "max-splits", "int64_t", /*default=*/"0",
           "Split-KV (Flash-Decoding) with at most this many KV splits; "
           "0 disables it">
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect", "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect", "::mlir::nvgpu::NVGPUDialect",
    "::mlir::NVVM::NVVMDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect", "::mlir::vector::VectorDialect"
  ];
}

def ConvertGQATilesToGPU : Pass<"convert-gqa-tiles-to-gpu", "ModuleOp"> {
  let summary = "Lower the tiled form of gqa-distribute to GPU kernels and "
                "their launches";
  let description = [{
    Turns each `scf.forall` of blocks that `gqa-distribute` made (the
    foralls carrying `gqa.schedule`, `gqa.config` and `gqa.role`) into a
    `gpu.func` in a `gpu.module` per attention op, one CTA per block, and
    replaces the forall by its `gpu.launch_func`:

    - The kernel's parameters are the memrefs the block uses, named by what
      it does with them (`q`, `k`, `v`, `out`, `kv_lens`, `block_table`,
      `partial_out`, `partial_lse`), as bare pointers, then the launch sizes
      (`batch`, `seq_q`, `seq_kv`, `num_pages`, `num_splits`), in the order
      of docs/kernel-metadata.md. Every host scalar the block reads is
      recomputed in the kernel from those sizes; the block ids are the
      forall's induction variables.
    - The tile ops map onto the hardware and nothing else: f16/bf16 tiles
      onto `mma.sync` tensor cores (`cp.async` into XOR-swizzled shared
      memory, `ldmatrix`, P reused from registers, quad shuffles), f32
      tiles onto the CUDA cores. Tiles become per-lane registers through
      `scf.for` and `scf.if`; the copies into shared memory are ordered
      with the fewest `cp.async` waits and barriers that keep every
      buffer's readers and writers apart.
    - `gqa.combine_splits` becomes the combine kernel (4 values per
      thread); the host's split-KV workspaces become `gpu.alloc`.

    The function and module carry the `gqa.*` launch attributes (config,
    tile, grid, parameters, shared memory) that the metadata writer and
    gpusim read.

    ```
    $ gqa-opt tiled.mlir --gqa-prefetch-keys --convert-gqa-tiles-to-gpu
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::memref::MemRefDialect",
    "::mlir::nvgpu::NVGPUDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect"
  ];
}

def ConvertGQATilesToLinalg : Pass<"convert-gqa-tiles-to-linalg"> {
  let summary = "Lower the tile-level gqa ops to linalg, tensor and scf for "
                "the CPU";
  let description = [{
    Rewrites the tiled form that `gqa-distribute` produces for the CPU: each
    tile-level op becomes upstream ops that implement its definition and
    nothing more:

    - `gqa.load_query_tile`, `gqa.load_kv_tile`: `tensor.generate` gathering
      the packed (query position, group head) rows, or the rows of a paged
      KV cache through the block table (pages clamped into the pool);
    - `gqa.scores` and `gqa.accumulate`: loops over the rows whose partial
      sums stay in vectors (four keys' dot products in 16-lane vectors over
      the head dim; 32 columns of an accumulator row while each key's P V
      term is added), or `linalg.generic` contractions where the head dims
      are not multiples of 8;
    - `gqa.mask_scores`, `gqa.online_softmax`, `gqa.finalize`:
      `linalg.generic` ops on tensors (the mask through `emitVisibleKeys`,
      the softmax in base 2);
    - `gqa.store_output_tile`, `gqa.store_partial_tile`,
      `gqa.combine_splits`: `scf.for` loops of loads and stores.

    The result is bufferized (one-shot-bufferize) and lowered to loops by
    the CPU pipeline (`gqa-lower-to-cpu`).

    ```
    $ gqa-opt tiled.mlir --convert-gqa-tiles-to-linalg
    ```
  }];
  let dependentDialects = [
    "::mlir::affine::AffineDialect", "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect", "::mlir::vector::VectorDialect"
  ];
}

#endif // GQA_CONVERSION_PASSES_TD
