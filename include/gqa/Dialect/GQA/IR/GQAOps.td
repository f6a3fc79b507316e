//===- GQAOps.td - Operations of the gqa dialect -----------*- tablegen -*-===//

#ifndef GQA_DIALECT_GQA_IR_GQAOPS_TD
#define GQA_DIALECT_GQA_IR_GQAOPS_TD

include "gqa/Dialect/GQA/IR/GQAAttrs.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpAsmInterface.td"

def GQA_TensorOrMemRef : AnyTypeOf<[AnyRankedTensor, AnyMemRef],
                                   "ranked tensor or memref">;

def GQA_AttentionOp : GQA_Op<"attention", [
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>
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

    Batch and sequence lengths may be dynamic; head counts and head dims are
    static. Query, key, value and output share one element type (`f16`,
    `bf16` or `f32`); the computation accumulates in `f32`. The value (and
    output) head dim `Dv` may differ from the query/key head dim `D`. A row
    that sees no key produces zeros.

    On tensors the op is in destination-passing style: `outs` is the init
    whose buffer the result may reuse, and the op never reads it. On memrefs
    (after bufferization) it has no result and writes `outs`.

    ```mlir
    %o = gqa.attention ins(%q, %k, %v : tensor<?x?x64x128xbf16>,
                                        tensor<?x?x8x128xbf16>,
                                        tensor<?x?x8x128xbf16>)
           kv_lens(%lens : tensor<?xi32>)
           outs(%init : tensor<?x?x64x128xbf16>)
           heads(64, 8) layout<bshd> mask<causal> softcap(30.0)
           -> tensor<?x?x64x128xbf16>
    ```
  }];

  let arguments = (ins
    GQA_TensorOrMemRef:$query,
    GQA_TensorOrMemRef:$key,
    GQA_TensorOrMemRef:$value,
    Optional<GQA_TensorOrMemRef>:$kv_lens,
    GQA_TensorOrMemRef:$init,
    I64Attr:$q_heads,
    I64Attr:$kv_heads,
    GQA_LayoutAttr:$layout,
    GQA_MaskAttr:$mask,
    OptionalAttr<F32Attr>:$scale,
    OptionalAttr<F32Attr>:$softcap
  );
  let results = (outs Variadic<AnyRankedTensor>:$result);

  let assemblyFormat = [{
    `ins` `(` $query `,` $key `,` $value `:`
              type($query) `,` type($key) `,` type($value) `)`
    (`kv_lens` `(` $kv_lens^ `:` type($kv_lens) `)`)?
    `outs` `(` $init `:` type($init) `)`
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
    /// The dimension positions of the op's layout.
    LayoutDims getLayoutDims() { return ::mlir::gqa::getLayoutDims(getLayout()); }
    /// D: the head dim of query and key.
    int64_t getHeadDim() {
      return getQueryType().getDimSize(getLayoutDims().headDim);
    }
    /// Dv: the head dim of value and output.
    int64_t getHeadDimV() {
      return getValueType().getDimSize(getLayoutDims().headDim);
    }
    /// The scale applied to the scores: the attribute, or 1/sqrt(D).
    double getScaleOrDefault();
    MutableOperandRange getDpsInitsMutable() { return getInitMutable(); }
  }];
}

#endif // GQA_DIALECT_GQA_IR_GQAOPS_TD
