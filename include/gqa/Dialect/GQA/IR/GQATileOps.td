//===- GQATileOps.td - The tile-level form of attention ----*- tablegen -*-===//
//
// The work of one block (a CTA on the GPU, a task on the CPU) of an attention
// op, over tiles: what gqa-distribute produces and every target lowers. Each
// step of FlashAttention's algorithm is one op, defined here once.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_DIALECT_GQA_IR_GQATILEOPS_TD
#define GQA_DIALECT_GQA_IR_GQATILEOPS_TD

include "gqa/Dialect/GQA/IR/GQAAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def GQA_Tile : RankedTensorOf<[F16, BF16, F32]>;
def GQA_F32Tile : RankedTensorOf<[F32]>;

class GQA_TileOp<string mnemonic, list<Trait> traits = []>
    : GQA_Op<mnemonic, traits> {
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Loads and stores between the op's memrefs and tiles.
//===----------------------------------------------------------------------===//

def GQA_LoadQueryTileOp : GQA_TileOp<"load_query_tile"> {
  let summary = "The packed query rows of one block, as a tile";
  let description = [{
    Reads `BM` packed rows of the query of KV head `kv_head`, batch `batch`,
    starting at packed row `first_row`, into a `BM x D` tile. Packed row `p`
    (of `Sq * g`) is query position `p / g` of query head `kv_head * g +
    p % g`, `g = q_heads / kv_heads`: the `g` query heads that share the KV
    head are rows of one tile. Rows past `Sq * g` are zero; the query must
    hold at least one position (a block exists only then).

    The tile has `BM` rows, or, when its row dimension is dynamic, `rows`
    rows: a target that runs partial blocks (the CPU) gives the last block
    only the rows that exist, and every tile derived from this one has as
    many rows.

    ```mlir
    %q = gqa.load_query_tile %query[%b, %kvh, %row0] heads(64, 8) layout<bshd>
           : memref<?x?x64x128xbf16> -> tensor<64x128xbf16>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "the query", [MemRead]>:$query,
    Index:$batch, Index:$kv_head, Index:$first_row, Optional<Index>:$rows,
    I64Attr:$q_heads, I64Attr:$kv_heads, GQA_LayoutAttr:$layout);
  let results = (outs GQA_Tile:$tile);
  let assemblyFormat = [{
    $query `[` $batch `,` $kv_head `,` $first_row `]`
    (`rows` `(` $rows^ `)`)? `heads` `(` $q_heads `,` $kv_heads `)` `layout` `` $layout
    attr-dict `:` type($query) `->` type($tile)
  }];
}

def GQA_LoadKVTileOp : GQA_TileOp<"load_kv_tile"> {
  let summary = "One K or V tile of a KV head, for every query head of its group";
  let description = [{
    Reads keys `[first_key, first_key + BN)` of KV head `kv_head`, batch
    `batch`, of `source` (the key or the value) into a `BN x width` tile.
    Rows at or past `kv_len` are zero. With `block_table`, `source` is a pool
    `[pages, page_size, Hkv, width]` and key `j` is row `j % page_size` of
    page `block_table[batch, j / page_size]`, clamped into the pool (a bad
    entry reads a wrong page, never memory outside the pool). The tile is
    read once and serves all `g` query heads of the group. The source must
    hold at least one key (a pool at least one page): a row past `kv_len`
    reads key 0 before it is replaced by zero, and gqa-distribute loads
    tiles only where a block sees keys.

    ```mlir
    %k = gqa.load_kv_tile %key[%b, %kvh, %key0] kv_len(%len) layout<bshd>
           : memref<?x?x8x128xbf16> -> tensor<64x128xbf16>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "the key or the value", [MemRead]>:$source,
    Index:$batch, Index:$kv_head, Index:$first_key, Index:$kv_len,
    Arg<Optional<AnyMemRef>, "the block table", [MemRead]>:$block_table,
    GQA_LayoutAttr:$layout);
  let results = (outs GQA_Tile:$tile);
  let assemblyFormat = [{
    $source `[` $batch `,` $kv_head `,` $first_key `]` `kv_len` `(` $kv_len `)`
    (`block_table` `(` $block_table^ `:` type($block_table) `)`)?
    `layout` `` $layout attr-dict `:` type($source) `->` type($tile)
  }];
  let extraClassDeclaration = [{
    /// Whether `source` is a pool of pages read through `block_table`.
    bool isPaged() { return static_cast<bool>(getBlockTable()); }
  }];
}

def GQA_LoadSinkTileOp : GQA_TileOp<"load_sink_tile"> {
  let summary = "The attention-sink logit of each packed row of a block";
  let description = [{
    Reads, for each of the tile's `BM` packed rows `first_row + r` of KV head
    `kv_head`, the sink logit of its query head: `sinks[kv_head * g +
    (first_row + r) % g]`, `g = group_size` (see `gqa.load_query_tile`). The
    tile has `BM` rows, or `rows` when its row dimension is dynamic.

    ```mlir
    %s = gqa.load_sink_tile %sinks[%kvh, %row0] group(8)
           : memref<64xf32> -> tensor<64xf32>
    ```
  }];
  let arguments = (ins Arg<AnyMemRef, "the sinks", [MemRead]>:$sinks,
                       Index:$kv_head, Index:$first_row, Optional<Index>:$rows,
                       I64Attr:$group_size);
  let results = (outs GQA_F32Tile:$tile);
  let assemblyFormat = [{
    $sinks `[` $kv_head `,` $first_row `]` (`rows` `(` $rows^ `)`)?
    `group` `(` $group_size `)` attr-dict `:` type($sinks) `->` type($tile)
  }];
}

def GQA_LoadSegmentOp : GQA_TileOp<"load_segment"> {
  let summary = "Where one sequence of a ragged batch lies in its packed tokens";
  let description = [{
    Reads the `B+1` integer offsets (cu_seqlens) of a ragged batch at
    sequence `sequence`: its tokens are `[start, start + length)` of the
    packed tensor, `start = offsets[sequence]` and `length =
    offsets[sequence + 1] - start`. `keys` marks the offsets of packed K/V
    (cu_seqlens_k) rather than of the queries (cu_seqlens_q); a target
    passes the two as different kernel parameters.

    ```mlir
    %start, %length = gqa.load_segment %cu_seqlens_q[%b] : memref<?xi32>
    %kstart, %klength = gqa.load_segment %cu_seqlens_k[%b] keys
      : memref<?xi32>
    ```
  }];
  let arguments = (ins Arg<AnyMemRef, "the offsets", [MemRead]>:$offsets,
                       Index:$sequence, UnitAttr:$keys);
  let results = (outs Index:$start, Index:$length);
  let assemblyFormat = [{
    $offsets `[` $sequence `]` (`keys` $keys^)? attr-dict `:` type($offsets)
  }];
}

def GQA_LaunchSizeOp : GQA_TileOp<"launch_size", [Pure]> {
  let summary = "A size of the launch that no tensor's shape gives";
  let description = [{
    Names `value` as launch size `name` of the kernel contract
    (docs/kernel-metadata.md): `seq_q`, `seq_kv` or `batch`. A ragged
    batch's longest sequence (flash_attn's `max_seqlen_q`, `max_seqlen_k`)
    sizes the grid and the split partition, yet no dimension of a packed
    tensor is it (nor the batch of one that packed tokens of
    `gqa.merge_states` are launched as): the GPU lowering makes `value` the
    kernel's size parameter of that name (the host passes `value`), and the
    CPU lowering uses `value` itself.

    ```mlir
    %longest = gqa.launch_size "seq_q" %max_seqlen_q
    ```
  }];
  let arguments = (ins StrAttr:$name, Index:$value);
  let results = (outs Index:$result);
  let assemblyFormat = "$name $value attr-dict";
}

def GQA_StoreOutputTileOp : GQA_TileOp<"store_output_tile"> {
  let summary = "Writes a block's normalised rows to the output";
  let description = [{
    Writes the `BM x Dv` f32 tile, rounded to the output's element type, to
    the packed rows `[first_row, first_row + BM)` of KV head `kv_head` (see
    `gqa.load_query_tile`); rows past `Sq * g` are not written.

    ```mlir
    gqa.store_output_tile %o, %out[%b, %kvh, %row0] heads(64, 8) layout<bshd>
      : tensor<64x128xf32>, memref<?x?x64x128xbf16>
    ```
  }];
  let arguments = (ins GQA_F32Tile:$tile,
    Arg<AnyMemRef, "the output", [MemWrite]>:$output,
    Index:$batch, Index:$kv_head, Index:$first_row,
    I64Attr:$q_heads, I64Attr:$kv_heads, GQA_LayoutAttr:$layout);
  let assemblyFormat = [{
    $tile `,` $output `[` $batch `,` $kv_head `,` $first_row `]`
    `heads` `(` $q_heads `,` $kv_heads `)` `layout` `` $layout
    attr-dict `:` type($tile) `,` type($output)
  }];
}

def GQA_StorePartialTileOp : GQA_TileOp<"store_partial_tile"> {
  let summary = "Writes a split's normalised rows and their log-sum-exp";
  let description = [{
    Split-KV: writes the `BM x Dv` tile and the `BM` log-sum-exps of packed
    rows `[first_row, first_row + BM)` of KV head `kv_head` to the workspace
    of split `split`: `partial_out[split, batch, head, position, :]` and
    `partial_lse[split, batch, head, position]` (f32, `[splits, B, Hq, Sq,
    Dv]` and `[splits, B, Hq, Sq]`), with head and position of each packed
    row as in `gqa.load_query_tile`. Rows past `Sq * g` are not written.

    ```mlir
    gqa.store_partial_tile %o, %lse, %wo, %wl[%s, %b, %kvh, %row0] group(8)
      : tensor<64x128xf32>, tensor<64xf32>, memref<?x?x64x?x128xf32>,
        memref<?x?x64x?xf32>
    ```
  }];
  let arguments = (ins GQA_F32Tile:$tile, GQA_F32Tile:$lse,
    Arg<AnyMemRef, "the partial outputs", [MemWrite]>:$partial_out,
    Arg<AnyMemRef, "the partial log-sum-exps", [MemWrite]>:$partial_lse,
    Index:$split, Index:$batch, Index:$kv_head, Index:$first_row,
    I64Attr:$group_size);
  let assemblyFormat = [{
    $tile `,` $lse `,` $partial_out `,` $partial_lse
    `[` $split `,` $batch `,` $kv_head `,` $first_row `]`
    `group` `(` $group_size `)` attr-dict `:` type($tile) `,` type($lse) `,`
    type($partial_out) `,` type($partial_lse)
  }];
}

def GQA_StoreLseTileOp : GQA_TileOp<"store_lse_tile"> {
  let summary = "Writes the log-sum-exps of a block's rows";
  let description = [{
    Writes the `BM` f32 log-sum-exps of packed rows `[first_row, first_row +
    BM)` of KV head `kv_head` to `lse[batch, head, position]` (`[B, Hq, Sq]`),
    with head and position of each packed row as in `gqa.load_query_tile`;
    rows past `Sq * g` are not written.

    ```mlir
    gqa.store_lse_tile %lse, %lse_out[%b, %kvh, %row0] group(8)
      : tensor<64xf32>, memref<?x64x?xf32>
    ```
  }];
  let arguments = (ins GQA_F32Tile:$lse,
    Arg<AnyMemRef, "the log-sum-exps", [MemWrite]>:$output,
    Index:$batch, Index:$kv_head, Index:$first_row, I64Attr:$group_size);
  let assemblyFormat = [{
    $lse `,` $output `[` $batch `,` $kv_head `,` $first_row `]`
    `group` `(` $group_size `)` attr-dict `:` type($lse) `,` type($output)
  }];
}

//===----------------------------------------------------------------------===//
// The online softmax.
//===----------------------------------------------------------------------===//

def GQA_ScoresOp : GQA_TileOp<"scores", [Pure]> {
  let summary = "The scores of a Q tile against a K tile, in the log2 domain";
  let description = [{
    `S[r, c] = log2(e) * cap(scale * <Q[r, :], K[c, :]>)` in f32, with
    `cap(x) = softcap * tanh(x / softcap)` when `softcap` is set and `x`
    otherwise. The base-2 domain lets the softmax use `exp2`.

    ```mlir
    %s = gqa.scores %q, %k scale(0.0883883) softcap(30.0)
           : tensor<64x128xbf16>, tensor<64x128xbf16> -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins GQA_Tile:$query, GQA_Tile:$key, F32Attr:$scale,
                       OptionalAttr<F32Attr>:$softcap);
  let results = (outs GQA_F32Tile:$scores);
  let assemblyFormat = [{
    $query `,` $key `scale` `(` $scale `)` (`softcap` `(` $softcap^ `)`)?
    attr-dict `:` type($query) `,` type($key) `->` type($scores)
  }];
}

def GQA_MaskScoresOp : GQA_TileOp<"mask_scores", [Pure,
    AllTypesMatch<["scores", "result"]>]> {
  let summary = "Masks the scores of a partly visible tile";
  let description = [{
    Sets `S[r, c]` to `-inf` where key `first_key + c` is not visible to the
    query position of packed row `first_row + r` (that is `(first_row + r) /
    group_size`) under `mask`, with the bottom-right alignment `offset` (the
    sequence's KV length minus `Sq`) and `kv_len` valid keys. The visible
    range is the one `emitVisibleKeys` computes for every lowering.

    ```mlir
    %m = gqa.mask_scores %s rows(%row0) keys(%key0) offset(%off) kv_len(%len)
           group(8) mask<causal> : tensor<64x64xf32>
    ```
  }];
  let arguments = (ins GQA_F32Tile:$scores, Index:$first_row, Index:$first_key,
                       Index:$offset, Index:$kv_len, I64Attr:$group_size,
                       GQA_MaskAttr:$mask);
  let results = (outs GQA_F32Tile:$result);
  let assemblyFormat = [{
    $scores `rows` `(` $first_row `)` `keys` `(` $first_key `)`
    `offset` `(` $offset `)` `kv_len` `(` $kv_len `)`
    `group` `(` $group_size `)` `mask` `` $mask attr-dict `:` type($scores)
  }];
}

def GQA_OnlineSoftmaxOp : GQA_TileOp<"online_softmax", [Pure,
    AllTypesMatch<["max", "sum", "new_max", "new_sum", "rescale"]>]> {
  let summary = "One online-softmax step over a tile of scores (base 2)";
  let description = [{
    With the running maximum `m` and sum `l` of each row (`-inf` and `0`
    before the first tile):

    ```
    m'    = max(m, max_c S[r, c])
    u     = m' == -inf ? 0 : m'          (a row that saw no key yet: no NaN)
    P     = exp2(S - u)                   rounded to the result's element type
    alpha = exp2(m - u)                   the rescale of what came before
    l'    = alpha * l + sum_c exp2(S - u) (of the unrounded probabilities)
    ```

    ```mlir
    %p, %m1, %l1, %alpha = gqa.online_softmax %s, %m0, %l0
        : tensor<64x64xf32>, tensor<64xf32> -> tensor<64x64xbf16>
    ```
  }];
  let arguments = (ins GQA_F32Tile:$scores, GQA_F32Tile:$max, GQA_F32Tile:$sum);
  let results = (outs GQA_Tile:$probabilities, GQA_F32Tile:$new_max,
                      GQA_F32Tile:$new_sum, GQA_F32Tile:$rescale);
  let assemblyFormat = [{
    $scores `,` $max `,` $sum attr-dict `:` type($scores) `,` type($max)
    `->` type($probabilities)
  }];
}

def GQA_AccumulateOp : GQA_TileOp<"accumulate", [Pure,
    AllTypesMatch<["accumulator", "result"]>]> {
  let summary = "Rescales the output accumulator and adds P V";
  let description = [{
    `A'[r, e] = rescale[r] * A[r, e] + sum_c P[r, c] * V[c, e]`, accumulating
    in f32.

    ```mlir
    %acc1 = gqa.accumulate %p, %v, %acc0, %alpha
        : tensor<64x64xbf16>, tensor<64x128xbf16>, tensor<64x128xf32>,
          tensor<64xf32>
    ```
  }];
  let arguments = (ins GQA_Tile:$probabilities, GQA_Tile:$value,
                       GQA_F32Tile:$accumulator, GQA_F32Tile:$rescale);
  let results = (outs GQA_F32Tile:$result);
  let assemblyFormat = [{
    $probabilities `,` $value `,` $accumulator `,` $rescale attr-dict `:`
    type($probabilities) `,` type($value) `,` type($accumulator) `,`
    type($rescale)
  }];
}

def GQA_FinalizeOp : GQA_TileOp<"finalize", [Pure,
    AllTypesMatch<["accumulator", "output"]>,
    AllTypesMatch<["max", "sum", "lse"]>]> {
  let summary = "Normalises the accumulator; the rows' log-sum-exp";
  let description = [{
    `O[r, :] = A[r, :] / l[r]` and `lse[r] = ln(2) * (m[r] + log2(l[r]))`,
    the natural-log log-sum-exp of the row's scaled scores; a row that saw no
    key (`l = 0`) gets `O = 0` and `lse = -inf`.

    With `sinks` (the natural-log sink logit of each row), the sink joins
    the denominator as one more key that carries no value: with `t =
    log2(e) * sink[r]`, `m' = max(m, t)`, `alpha = exp2(m - m')`,

    ```
    O[r, :] = alpha A[r, :] / (alpha l[r] + exp2(t - m'))
    lse[r]  = ln(2) * (m' + log2(alpha l[r] + exp2(t - m')))
    ```

    so a row that saw no key gets `O = 0` and `lse = sink[r]`.

    ```mlir
    %o, %lse = gqa.finalize %acc, %m, %l : tensor<64x128xf32>, tensor<64xf32>
    %o2, %lse2 = gqa.finalize %acc, %m, %l sinks(%s : tensor<64xf32>)
        : tensor<64x128xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins GQA_F32Tile:$accumulator, GQA_F32Tile:$max,
                       GQA_F32Tile:$sum, Optional<GQA_F32Tile>:$sinks);
  let results = (outs GQA_F32Tile:$output, GQA_F32Tile:$lse);
  let assemblyFormat = [{
    $accumulator `,` $max `,` $sum
    (`sinks` `(` $sinks^ `:` type($sinks) `)`)? attr-dict `:`
    type($accumulator) `,` type($max)
  }];
}

//===----------------------------------------------------------------------===//
// Split-KV.
//===----------------------------------------------------------------------===//

def GQA_CombineSplitsOp : GQA_TileOp<"combine_splits",
    [AttrSizedOperandSegments]> {
  let summary = "Merges the splits' partial results of a block of rows";
  let description = [{
    For the rows `[first_row, first_row + rows)` of batch `batch`, a row
    being a (query head, position) pair numbered `head * Sq + position`
    (rows past `Hq * Sq` are left alone):

    ```
    out[batch, head, position, :] = sum_s w_s O_s / sum_s w_s,
    w_s = exp(lse_s - max_s lse_s)
    ```

    over the `splits` splits, with `O_s = partial_out[s, batch, head,
    position, :]` and `lse_s = partial_lse[s, batch, head, position]`. A
    split with `lse = -inf` (no key) weighs 0; a row that no split saw is 0.

    With `sinks` (`[Hq]`), the head's sink logit joins the denominator with
    weight `exp(sinks[head] - M)`, `M` then also maximising over it. With
    `lse` (`[B, Hq, Sq]`), the row's merged log-sum-exp `M + log(sum of the
    weights)` (sink included) is written there; `-inf` when every weight is
    0.

    ```mlir
    gqa.combine_splits %wo, %wl, %out[%b, %row0] splits(%ns) rows(64)
      layout<bshd> : memref<?x?x64x?x128xf32>, memref<?x?x64x?xf32>,
                     memref<?x?x64x128xbf16>
    gqa.combine_splits %wo, %wl, %out[%b, %row0] splits(%ns) rows(64)
      layout<bshd> sinks(%s : memref<64xf32>) lse(%lse : memref<?x64x?xf32>)
      : memref<?x?x64x?x128xf32>, memref<?x?x64x?xf32>,
        memref<?x?x64x128xbf16>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "the partial outputs", [MemRead]>:$partial_out,
    Arg<AnyMemRef, "the partial log-sum-exps", [MemRead]>:$partial_lse,
    Arg<AnyMemRef, "the output", [MemWrite]>:$output,
    Index:$batch, Index:$first_row, Index:$splits,
    Arg<Optional<AnyMemRef>, "the sinks", [MemRead]>:$sinks,
    Arg<Optional<AnyMemRef>, "the merged log-sum-exps", [MemWrite]>:$lse,
    I64Attr:$rows, GQA_LayoutAttr:$layout);
  let assemblyFormat = [{
    $partial_out `,` $partial_lse `,` $output `[` $batch `,` $first_row `]`
    `splits` `(` $splits `)` `rows` `(` $rows `)` `layout` `` $layout
    (`sinks` `(` $sinks^ `:` type($sinks) `)`)?
    (`lse` `(` $lse^ `:` type($lse) `)`)?
    attr-dict `:` type($partial_out) `,` type($partial_lse) `,` type($output)
  }];
}

def GQA_MergeRowsOp : GQA_TileOp<"merge_rows", [
    AllTypesMatch<["out_a", "out_b", "output"]>,
    AllTypesMatch<["lse_a", "lse_b", "lse"]>]> {
  let summary = "Merges two partial results of a block of rows";
  let description = [{
    For the rows `[first_row, first_row + rows)` of batch `batch`, a row
    being a (head, position) pair numbered `head * S + position` (rows past
    `H * S` are left alone), `gqa.merge_states`' merge of
    `out_a[batch, head, position, :]` and `out_b[...]` by `lse_a[batch,
    head, position]` and `lse_b[...]` into `output` and `lse`:
    `M = max(lse_a, lse_b)`, `w_x = exp(lse_x - M)` (0 for `-inf`),
    `output = (w_a out_a + w_b out_b) / (w_a + w_b)` (0 when both weigh 0),
    `lse = M + log(w_a + w_b)` (`-inf` then).

    ```mlir
    gqa.merge_rows %oa, %la, %ob, %lb, %out, %lse[%b, %row0] rows(4)
      layout<bshd> : memref<?x?x64x128xbf16>, memref<?x64x?xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "the first part's output", [MemRead]>:$out_a,
    Arg<AnyMemRef, "the first part's log-sum-exps", [MemRead]>:$lse_a,
    Arg<AnyMemRef, "the second part's output", [MemRead]>:$out_b,
    Arg<AnyMemRef, "the second part's log-sum-exps", [MemRead]>:$lse_b,
    Arg<AnyMemRef, "the merged output", [MemWrite]>:$output,
    Arg<AnyMemRef, "the merged log-sum-exps", [MemWrite]>:$lse,
    Index:$batch, Index:$first_row, I64Attr:$rows, GQA_LayoutAttr:$layout);
  let assemblyFormat = [{
    $out_a `,` $lse_a `,` $out_b `,` $lse_b `,` $output `,` $lse
    `[` $batch `,` $first_row `]` `rows` `(` $rows `)` `layout` `` $layout
    attr-dict `:` type($output) `,` type($lse)
  }];
  let hasVerifier = 1;
}

#endif // GQA_DIALECT_GQA_IR_GQATILEOPS_TD
