//===- Passes.td - Passes of the gqa dialect ---------------*- tablegen -*-===//

#ifndef GQA_DIALECT_GQA_TRANSFORMS_PASSES_TD
#define GQA_DIALECT_GQA_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def GQAKVCacheReport : Pass<"gqa-kv-cache-report", "ModuleOp"> {
  let summary = "Print the KV-cache size of each attention op and of the model";
  let description = [{
    Treats the module as a model whose layers are its `gqa.attention` ops, in
    order, and prints for each op and for the sum over the module:

    - the bytes of K and V cache per token (per sequence of the batch),
    - the bytes at `seq-len` tokens for `batch` sequences,
    - the bytes the same model would need with multi-head attention
      (`kv_heads = q_heads`), and the saving (the factor `q_heads / kv_heads`
      for a uniform model).

    All byte counts are exact integers:
    `2 * layers * batch * kv_heads * D * seq_len * bytes_per_element` when
    `D = Dv` (K contributes `D` and V `Dv` in general). The IR is unchanged.

    Example, for an 80-layer Llama-3-70B (64 query heads, 8 KV heads, D 128,
    bf16) at 131072 tokens:

    ```
    $ gqa-opt llama3-70b.mlir --gqa-kv-cache-report="seq-len=131072" -o /dev/null
    ...
    model: layers 80, kv bytes/token 327680, kv bytes 42949672960,
           mha bytes 343597383680, saving 8x (87.5% less)
    ```
  }];
  let options = [
    Option<"seqLen", "seq-len", "uint64_t", /*default=*/"131072",
           "Tokens per sequence at which to size the cache">,
    Option<"batch", "batch", "uint64_t", /*default=*/"1",
           "Sequences held in the cache">,
    Option<"perOp", "per-op", "bool", /*default=*/"true",
           "Print a line for every attention op, not only the model total">
  ];
}

def GQASelectSchedule : Pass<"gqa-select-schedule"> {
  let summary = "Choose the schedule of each gqa.attention for a target";
  let description = [{
    Sets `schedule = #gqa.schedule<...>` on every `gqa.attention` that has
    none, for `target`: tile sizes, the packing of (query position, group
    head) rows, split-KV, and for the GPUs warps, stages, whether Q stays in
    registers and the register hints. An op that already carries a schedule
    keeps it, so a front end can state its own. Options that are not 0 (or
    -1 for `max-splits`) replace the target's choice.

    - `cpu`: `block_m = 16 * g` packed rows (16 query positions of every head
      of the group; at most 1024), `block_n = 64`, no split.
    - `sm_80`, `sm_90`: the tensor-core kernels' tiles: 64 packed rows (4
      warps of 16), 64 keys up to head dim 128 and 32 above, 32 splits at
      most; f32 runs on the CUDA cores with 16 x 32 tiles.

    ```
    $ gqa-opt l70b.mlir --gqa-select-schedule="target=sm_90"
    gqa.attention ... {schedule = #gqa.schedule<target = "sm_90", block_m = 64,
                       block_n = 64, max_splits = 32, warps = 4, ...>}
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "The target: cpu, sm_80 or sm_90">,
    Option<"blockM", "block-m", "int64_t", /*default=*/"0",
           "Packed rows per block (0: the target's choice)">,
    Option<"blockN", "block-n", "int64_t", /*default=*/"0",
           "Keys per KV tile (0: the target's choice)">,
    Option<"maxSplits", "max-splits", "int64_t", /*default=*/"-1",
           "Split-KV with at most this many splits (0: off; -1: the "
           "target's choice)">,
    Option<"maxRegisters", "max-registers", "int64_t", /*default=*/"0",
           "GPU: register cap per thread (0: none)">,
    Option<"minCTAsPerSM", "min-ctas-per-sm", "int64_t", /*default=*/"0",
           "GPU: CTAs per SM that ptxas keeps room for (0: by head dim)">
  ];
}

def GQADistribute : Pass<"gqa-distribute"> {
  let summary = "Distribute gqa.attention over blocks of tiles (the tiled form)";
  let description = [{
    Rewrites each bufferized `gqa.attention` carrying a schedule into its
    tiled form: one `scf.forall` whose iterations are the blocks (the CTAs
    of the GPU grid, with `#gpu.block` mapping), and in each block the
    tile-level ops over one block of packed rows:

    ```
    scf.forall (%rb, %y, %b) in (ceil(Sq * g / BM), Hkv [* splits], B)
      kvh = y mod Hkv, split = y / Hkv             split-KV only
      kv_len, offset = kv_len - Sq; the KV tiles the rows see (emitVisibleKeys),
      cut to the split's share
      %q = gqa.load_query_tile                     BM packed rows of the group
      scf.for %n = tile_begin to tile_end  iter_args(acc, m, l)
        %k = gqa.load_kv_tile key; %v = gqa.load_kv_tile value   once per group
        %s = gqa.scores %q, %k
        %s = scf.if (tile partly visible) gqa.mask_scores %s
        %p, m, l, %alpha = gqa.online_softmax %s, m, l
        acc = gqa.accumulate %p, %v, acc, %alpha
      %o, %lse = gqa.finalize acc, m, l
      gqa.store_output_tile | gqa.store_partial_tile (split-KV, more than one split)
    [split-KV: workspaces, then scf.forall over row blocks: gqa.combine_splits]
    ```

    The grid, the packing of rows, which KV tiles a block visits and the
    split partition are computed here, once, for every target; the target
    lowerings map the tile ops and never re-derive them. With split-KV the
    number of splits is `min(max_splits, KV tiles)` evened out so that no
    split is empty, and one split stores its output directly. The
    workspaces are `memref.alloc`s that the buffer deallocation pipeline
    frees, as it frees the buffers of one-shot-bufferize.

    Each bufferized `gqa.merge_states` becomes one `scf.forall` over
    (ceil(S * H / rows), B) blocks of `gqa.merge_rows`, `rows` (head,
    position) rows each, as many as the split-KV combine's blocks hold
    (packed tokens are viewed as a batch of one).
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::affine::AffineDialect",
    "::mlir::gpu::GPUDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect"
  ];
}

def GQAPrefetchKeys : Pass<"gqa-prefetch-keys"> {
  let summary = "Load each block's next K tile while the current one is used";
  let description = [{
    Software-pipelines the KV loop of the tiled form by one K tile: the
    first tile's `gqa.load_kv_tile` of the key moves in front of the loop
    (when the loop runs), the tile becomes a loop-carried value, and each
    iteration loads the next tile right after its `gqa.scores`, so that on
    the GPU the copy overlaps the softmax and `P V` of the current tile
    (FlashAttention-2's schedule with single K and V buffers):

    ```
    %k0 = scf.if (lo < hi) { gqa.load_kv_tile key(lo) } else { tensor.empty }
    scf.for %n = lo to hi iter_args(..., %k = %k0)
      %v = gqa.load_kv_tile value(n)
      %s = gqa.scores %q, %k
      %kn = scf.if (n + 1 < hi) { gqa.load_kv_tile key(n + 1) } else { %k }
      ...
      scf.yield ..., %kn
    ```

    The values are unchanged; only where the loads are. The GPU pipeline
    runs it before `convert-gqa-tiles-to-gpu`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def GQAApproximateMath : Pass<"gqa-approximate-math"> {
  let summary = "Replace exp2, exp, tanh and log2 by polynomials that vectorise";
  let description = [{
    For the CPU: expands `math.exp2` into `math.exp` and replaces `math.exp`,
    `math.tanh` and `math.log2` on f32 by upstream's polynomial
    approximations (`populateMathPolynomialApproximationPatterns`), plain
    arithmetic that the loop vectoriser turns into vector code instead of
    one libm call per element. The online softmax evaluates one `exp2` per
    score, so this is most of its cost on the CPU.

    ```
    $ gqa-opt lowered.mlir --gqa-approximate-math
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::vector::VectorDialect"
  ];
}

#endif // GQA_DIALECT_GQA_TRANSFORMS_PASSES_TD
