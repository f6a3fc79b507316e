//===- GQAOps.td - Operations of the gqa dialect -----------*- tablegen -*-===//

#ifndef GQA_DIALECT_GQA_IR_GQAOPS_TD
#define GQA_DIALECT_GQA_IR_GQAOPS_TD

include "gqa/Dialect/GQA/IR/GQAAttrs.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/TilingInterface.td"
include "mlir/IR/OpAsmInterface.td"

def GQA_TensorOrMemRef : AnyTypeOf<[AnyRankedTensor, AnyMemRef],
                                   "ranked tensor or memref">;

def GQA_AttentionOp : GQA_Op<"attention", [
    AttrSizedOperandSegments,
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>,
    DeclareOpInterfaceMethods<TilingInterface, ["getIterationDomain",
        "getLoopIteratorTypes", "getTiledImplementation",
        "getResultTilePosition", "generateResultTileValue"]>
  ]> {
  let summary = "Grouped-query scaled dot-product attention";
  let description = [{
    Computes, for every batch `b`, query head `h` and query row `i`,

    ```
    kvh    = h / (q_heads / kv_heads)
    s_ij   = scale * <Q[b,h,i,:], K[b,kvh,j,:]>   (softcap c: c * tanh(s_ij / c))
    O[b,h,i,:] = sum_j softmax_j(masked s_ij) * V[b,kvh,j,:]
    ```

    The grouping is explicit: `heads(q_heads, kv_heads)` states the number of
    query heads and of key/value heads, and the verifier checks that it
    divides and that every operand agrees with it. Query head `h` reads KV
    head `h / g`; no repeated K or V is ever implied.

    - `layout` orders the four tensors' dimensions (`bhsd` or `bshd`).
    - `mask` is `#gqa.mask<...>`: none, causal (bottom-right aligned when
      `Sq != Skv`), a sliding window, or both.
    - `scale` defaults to `1/sqrt(D)`; `softcap`, when given, applies
      `c * tanh(s / c)` to the scaled scores.
    - `kv_lens` (optional, shape `[B]`, `i32` or `index`) gives the valid
      length of each sequence's keys; keys at or beyond it are masked and the
      mask is aligned against it.
    - `block_table` (optional, shape `[B, max_pages]`, `i32`) makes the KV
      cache paged, as vLLM and FlashAttention's `flash_attn_with_kvcache`
      keep it: `key` and `value` are `[num_pages, page_size, Hkv, D]` pools
      (whatever `layout`, which then orders `query` and `init` only), and
      key `j` of sequence `b` is `key[block_table[b, j / page_size],
      j % page_size]`. The KV length is `max_pages * page_size`, or
      `kv_lens`; `page_size` must be static. Pages are shared by every query
      head of the group like any K/V row.

    Batch and sequence lengths may be dynamic; head counts and head dims are
    static. Query, key, value and output share one element type (`f16`,
    `bf16` or `f32`); the computation accumulates in `f32`. The value (and
    output) head dim `Dv` may differ from the query/key head dim `D`. A row
    that sees no key produces zeros.

    - `sinks` (optional, shape `[Hq]`, `f32`) gives each query head one
      attention-sink logit (GPT-OSS): it joins the softmax denominator and
      carries no value. With `m = max(max_j s_ij, sink_h)`,
      `O_i = sum_j exp(s_ij - m) V_j / (sum_j exp(s_ij - m) + exp(sink_h - m))`;
      the sink is compared with the scaled (and softcapped) scores and is not
      scaled itself. A row that sees no key is 0.
    - A second init, `lse_init` (shape `[B, Hq, Sq]`, `f32`, whatever the
      layout: flash_attn's `softmax_lse`), makes the op also produce each
      row's natural-log `logsumexp_j s_ij` over its visible, scaled (and
      softcapped) scores, sink term included; `-inf` for a row that sees no
      key (and has no sink). Partial results over disjoint keys merge
      exactly by it (`merge_attention_states`). With `cu_seqlens_q` it is
      `[Hq, T]` (flash_attn's varlen shape).
    - Ragged batches (flash_attn's varlen): `cu_seqlens_q` (shape `[B+1]`,
      `i32`) makes `query` and `init` packed tokens `[T, Hq, D]` and
      `[T, Hq, Dv]` (the layout must be `bshd`): sequence `b` has the
      `cu_seqlens_q[b+1] - cu_seqlens_q[b]` queries from token
      `cu_seqlens_q[b]`. K/V are then a cache `[B, Skv, Hkv, D]` (or paged)
      whose valid lengths are `kv_lens` (flash_attn's `seqused_k`), or, with
      `cu_seqlens_k` (`[B+1]`, `i32`), packed `[Tk, Hkv, D]` the same way
      (and `kv_lens`, if given, clamped to each segment). Causal and windows
      align bottom-right per sequence, at `kv_len_b - q_len_b`; a batch may
      mix prefill chunks and decode rows. `max_seqlen_q` (and, with
      `cu_seqlens_k`, `max_seqlen_k`), optional `index` operands, are the
      longest sequence's query (key) count, as flash_attn takes them: they
      size the GPU grid and the split partition, which the host cannot read
      from offsets in device memory (the GPU lowering needs them). A
      sequence longer than them is computed only in part, as in flash_attn.
      Without them the CPU lowering reads the offsets.

    On tensors the op implements `TilingInterface` over (batch, KV head):
    a tile of KV heads carries exactly the query heads of their groups (a
    tile of `t` KV heads is an op with `heads(t * g, t)`), so upstream's
    tiling (`transform.structured.tile_using_for` / `tile_using_forall`)
    splits it into independent attention problems without breaking a group.
    The sequence dimensions are not tiled this way (a mask aligns against
    the whole sequence), nor is the batch of a ragged batch.

    `schedule` (optional, `#gqa.schedule<...>`) says how the op is
    distributed and tiled for a target; `gqa-select-schedule` sets it.

    On tensors the op is in destination-passing style: `outs` holds the
    inits (the output's, then the LSE's) whose buffers the results may
    reuse, and the op never reads them. On memrefs (after bufferization) it
    has no result and writes `outs`.

    ```mlir
    %o = gqa.attention ins(%q, %k, %v : tensor<?x?x64x128xbf16>,
                                        tensor<?x?x8x128xbf16>,
                                        tensor<?x?x8x128xbf16>)
           kv_lens(%lens : tensor<?xi32>)
           outs(%init : tensor<?x?x64x128xbf16>)
           heads(64, 8) layout<bshd> mask<causal> softcap(30.0)
           -> tensor<?x?x64x128xbf16>

    // Decode against a paged cache of 16-token pages.
    gqa.attention ins(%q, %kc, %vc : memref<?x1x64x128xbf16>,
                                     memref<?x16x8x128xbf16>,
                                     memref<?x16x8x128xbf16>)
      kv_lens(%lens : memref<?xi32>) block_table(%pages : memref<?x?xi32>)
      outs(%o : memref<?x1x64x128xbf16>) heads(64, 8) layout<bshd> mask<none>

    // Attention sinks and the log-sum-exp of every row.
    %o, %lse = gqa.attention ins(%q, %k, %v : tensor<?x?x64x64xbf16>,
                                             tensor<?x?x8x64xbf16>,
                                             tensor<?x?x8x64xbf16>)
           sinks(%s : tensor<64xf32>)
           outs(%init : tensor<?x?x64x64xbf16>, %lse0 : tensor<?x64x?xf32>)
           heads(64, 8) layout<bshd> mask<causal>
           -> tensor<?x?x64x64xbf16>, tensor<?x64x?xf32>
    ```
  }];

  let arguments = (ins
    GQA_TensorOrMemRef:$query,
    GQA_TensorOrMemRef:$key,
    GQA_TensorOrMemRef:$value,
    Optional<GQA_TensorOrMemRef>:$kv_lens,
    Optional<GQA_TensorOrMemRef>:$block_table,
    Optional<GQA_TensorOrMemRef>:$sinks,
    Optional<GQA_TensorOrMemRef>:$cu_seqlens_q,
    Optional<GQA_TensorOrMemRef>:$cu_seqlens_k,
    Optional<Index>:$max_seqlen_q,
    Optional<Index>:$max_seqlen_k,
    GQA_TensorOrMemRef:$init,
    Optional<GQA_TensorOrMemRef>:$lse_init,
    I64Attr:$q_heads,
    I64Attr:$kv_heads,
    GQA_LayoutAttr:$layout,
    GQA_MaskAttr:$mask,
    OptionalAttr<F32Attr>:$scale,
    OptionalAttr<F32Attr>:$softcap,
    OptionalAttr<GQA_ScheduleAttr>:$schedule
  );
  let results = (outs Variadic<AnyRankedTensor>:$result);

  let assemblyFormat = [{
    `ins` `(` $query `,` $key `,` $value `:`
              type($query) `,` type($key) `,` type($value) `)`
    (`kv_lens` `(` $kv_lens^ `:` type($kv_lens) `)`)?
    (`block_table` `(` $block_table^ `:` type($block_table) `)`)?
    (`sinks` `(` $sinks^ `:` type($sinks) `)`)?
    (`cu_seqlens_q` `(` $cu_seqlens_q^ `:` type($cu_seqlens_q) `)`)?
    (`cu_seqlens_k` `(` $cu_seqlens_k^ `:` type($cu_seqlens_k) `)`)?
    (`max_seqlen_q` `(` $max_seqlen_q^ `)`)?
    (`max_seqlen_k` `(` $max_seqlen_k^ `)`)?
    `outs` `(` $init `:` type($init)
               (`,` $lse_init^ `:` type($lse_init))? `)`
    `heads` `(` $q_heads `,` $kv_heads `)`
    `layout` `` $layout
    `mask` `` $mask
    (`scale` `(` $scale^ `)`)?
    (`softcap` `(` $softcap^ `)`)?
    attr-dict (`->` type($result)^)?
  }];

  let hasVerifier = 1;

  let extraClassDeclaration = [{
    //===------------------------------------------------------------------===//
    // The grouping.
    //===------------------------------------------------------------------===//

    /// The number of query heads sharing one key/value head (Hq / Hkv).
    int64_t getGroupSize() {
      return getQHeads() / getKvHeads();
    }
    /// Whether this is multi-head attention (one query head per KV head).
    bool isMHA() { return getQHeads() == getKvHeads(); }
    /// Whether this is multi-query attention (one KV head for all).
    bool isMQA() { return getKvHeads() == 1; }
    /// The key/value head that query head `queryHead` reads.
    int64_t getKVHeadOf(int64_t queryHead) {
      return queryHead / getGroupSize();
    }

    //===------------------------------------------------------------------===//
    // Shapes, read through the layout.
    //===------------------------------------------------------------------===//

    ShapedType getQueryType() { return cast<ShapedType>(getQuery().getType()); }
    ShapedType getKeyType() { return cast<ShapedType>(getKey().getType()); }
    ShapedType getValueType() { return cast<ShapedType>(getValue().getType()); }
    ShapedType getInitType() { return cast<ShapedType>(getInit().getType()); }
    /// The element type of all four tensors.
    Type getElementType() { return getQueryType().getElementType(); }
    /// The dimension positions of the op's layout (of query and init, and
    /// of key and value unless paged).
    LayoutDims getLayoutDims() { return ::mlir::gqa::getLayoutDims(getLayout()); }
    /// Whether key and value are paged through `block_table`.
    bool isPaged() { return static_cast<bool>(getBlockTable()); }
    /// The dimension positions of key and value: the layout's, or, when
    /// paged, (page, slot, head, head dim) in the positions of bshd.
    LayoutDims getKVLayoutDims() {
      return isPaged() ? ::mlir::gqa::getLayoutDims(Layout::BSHD)
                       : getLayoutDims();
    }
    /// The tokens per page of a paged KV cache (0 when not paged).
    int64_t getPageSize() {
      return isPaged() ? getKeyType().getDimSize(getKVLayoutDims().seq) : 0;
    }
    /// Whether the queries are packed tokens [T, Hq, D] of a ragged batch
    /// (cu_seqlens_q).
    bool isVarlen() { return static_cast<bool>(getCuSeqlensQ()); }
    /// Whether key and value are packed tokens [Tk, Hkv, D] (cu_seqlens_k).
    bool hasPackedKV() { return static_cast<bool>(getCuSeqlensK()); }
    /// D: the head dim of query and key (the last dimension in every form).
    int64_t getHeadDim() {
      return getQueryType().getDimSize(getQueryType().getRank() - 1);
    }
    /// Dv: the head dim of value and output.
    int64_t getHeadDimV() {
      return getValueType().getDimSize(getValueType().getRank() - 1);
    }
    /// The scale applied to the scores: the attribute, or 1/sqrt(D).
    double getScaleOrDefault();
    /// What the op computes, as the `config` of docs/kernel-metadata.md:
    /// heads, head dims, dtype, layout, mask, scale, softcap, KV lengths,
    /// page size and the sizes its static shapes fix. gqa-distribute records
    /// it on the blocks, and the GPU lowering writes it into the metadata.
    DictionaryAttr getKernelConfig();
    ShapedType getLseInitType() {
      return getLseInit() ? cast<ShapedType>(getLseInit().getType())
                          : ShapedType();
    }
    /// The inits: the output's, then the LSE's when the op returns it (two
    /// adjacent operands).
    MutableOperandRange getDpsInitsMutable() {
      return MutableOperandRange(getOperation(),
                                 getInitMutable().getOperandNumber(),
                                 getLseInit() ? 2 : 1);
    }
  }];
}

def GQA_MergeStatesOp : GQA_Op<"merge_states", [
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>
  ]> {
  let summary = "Merges two partial attention results by their log-sum-exps";
  let description = [{
    Attention over keys split into two disjoint parts (cascade attention's
    shared prefix and per-request suffix, context parallelism's shards) is
    recovered exactly from each part's normalised output and natural-log
    log-sum-exp (the `lse` of `gqa.attention`). For every row (batch `b`,
    head `h`, position `i`):
    ```
    M   = max(lse_a, lse_b),  w_x = exp(lse_x - M)   (0 when lse_x = -inf)
    out = (w_a out_a + w_b out_b) / (w_a + w_b)
    lse = M + log(w_a + w_b)
    ```
    and a row neither part saw (both `-inf`) gets `out = 0`, `lse = -inf`.
    Sinks belong to one part (compute the other without them).

    The outputs are `[B, S, H, Dv]` or `[B, H, S, Dv]` as `layout` orders
    them, with log-sum-exps `[B, H, S]` whatever the layout (flash_attn's
    `softmax_lse`), or packed tokens `[T, H, Dv]` with `[H, T]` (the varlen
    shapes; `layout` must be `bshd`). The three outputs share one type
    (`f16`, `bf16` or `f32`; the arithmetic is `f32`), the three
    log-sum-exps are `f32`; `H` and `Dv` are static.

    On tensors the op is in destination-passing style (`outs`: the output's
    init, then the LSE's; never read); on memrefs it has no result, and its
    output may be `out_a` or `out_b` (each element is read before it is
    written) but its LSE must be neither `lse_a` nor `lse_b`.
    ```mlir
    %o, %lse = gqa.merge_states
        ins(%oa, %la, %ob, %lb : tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>,
                                 tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>)
        outs(%o0 : tensor<?x?x64x128xbf16>, %l0 : tensor<?x64x?xf32>)
        layout<bshd> -> tensor<?x?x64x128xbf16>, tensor<?x64x?xf32>
    ```
  }];
  let arguments = (ins
    GQA_TensorOrMemRef:$out_a,
    GQA_TensorOrMemRef:$lse_a,
    GQA_TensorOrMemRef:$out_b,
    GQA_TensorOrMemRef:$lse_b,
    GQA_TensorOrMemRef:$init,
    GQA_TensorOrMemRef:$lse_init,
    GQA_LayoutAttr:$layout
  );
  let results = (outs Variadic<AnyRankedTensor>:$result);
  let assemblyFormat = [{
    `ins` `(` $out_a `,` $lse_a `,` $out_b `,` $lse_b `:`
              type($out_a) `,` type($lse_a) `,` type($out_b) `,`
              type($lse_b) `)`
    `outs` `(` $init `:` type($init) `,` $lse_init `:` type($lse_init) `)`
    `layout` `` $layout
    attr-dict (`->` type($result)^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ShapedType getOutputType() { return cast<ShapedType>(getInit().getType()); }
    /// Whether the outputs are packed tokens [T, H, Dv].
    bool isVarlen() { return getOutputType().getRank() == 3; }
    /// H: the heads (dimension 1 of packed tokens, else where the layout
    /// puts them).
    int64_t getHeads() {
      return getOutputType().getDimSize(
          isVarlen() ? 1 : getLayoutDims(getLayout()).heads);
    }
    /// Dv: the outputs' head dim.
    int64_t getHeadDimV() {
      return getOutputType().getDimSize(getOutputType().getRank() - 1);
    }
    /// What the op computes, as the `config` of a gqa.merge_states kernel
    /// set (docs/kernel-metadata.md): heads, head dim, dtype, layout,
    /// varlen and the sizes its static shapes fix.
    DictionaryAttr getKernelConfig();
    MutableOperandRange getDpsInitsMutable() {
      return MutableOperandRange(getOperation(),
                                 getInitMutable().getOperandNumber(), 2);
    }
  }];
}

include "gqa/Dialect/GQA/IR/GQATileOps.td"

#endif // GQA_DIALECT_GQA_IR_GQAOPS_TD
