//===- GQAAttrs.td - Attributes of the gqa dialect ---------*- tablegen -*-===//

#ifndef GQA_DIALECT_GQA_IR_GQAATTRS_TD
#define GQA_DIALECT_GQA_IR_GQAATTRS_TD

include "gqa/Dialect/GQA/IR/GQABase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

def GQA_Layout : I32EnumAttr<"Layout", "memory layout of the attention tensors", [
    I32EnumAttrCase<"BHSD", 0, "bhsd">,
    I32EnumAttrCase<"BSHD", 1, "bshd">
  ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::gqa";
}

def GQA_LayoutAttr : EnumAttr<GQA_Dialect, GQA_Layout, "layout"> {
  let summary = "Order of the (batch, head, sequence, head-dim) dimensions";
  let description = [{
    The dimension order shared by the query, key, value and output of an
    attention op:

    - `bhsd`: (batch, heads, sequence, head dim), as PyTorch's
      `scaled_dot_product_attention` takes it;
    - `bshd`: (batch, sequence, heads, head dim), as FlashAttention and the
      Hugging Face KV caches store it.

    ```mlir
    #gqa.layout<bshd>
    ```
  }];
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Mask
//===----------------------------------------------------------------------===//

def GQA_MaskAttr : AttrDef<GQA_Dialect, "Mask"> {
  let mnemonic = "mask";
  let summary = "Which keys each query may attend to";
  let description = [{
    The attention mask, in the bottom-right alignment that KV caches need:
    with `off = Skv - Sq` (or `kv_len[b] - Sq` when the op has per-batch KV
    lengths, the queries being the last `Sq` tokens of their sequence),
    query `i` may see key `j` iff

    - `causal`: `j <= i + off`;
    - `window = [left, right]`: `i + off - left <= j <= i + off + right`,
      where `-1` leaves that side unbounded.

    Both may be combined (a causal sliding window, as in Mistral); the window
    then bounds the left side, and `right` must be `0` or `-1`. A row that
    sees no key produces zeros.

    ```mlir
    #gqa.mask<none>
    #gqa.mask<causal>
    #gqa.mask<window = [128, 128]>
    #gqa.mask<causal, window = [4096, 0]>
    ```
  }];
  let parameters = (ins
    "bool":$causal,
    DefaultValuedParameter<"int64_t", "-1">:$windowLeft,
    DefaultValuedParameter<"int64_t", "-1">:$windowRight
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Whether the mask limits any key at all.
    bool isNone() const {
      return !getCausal() && !hasWindow();
    }
    /// Whether a sliding window (on either side) is set.
    bool hasWindow() const {
      return getWindowLeft() >= 0 || getWindowRight() >= 0;
    }
    /// The furthest key after the diagonal that a query may see, or -1 when
    /// unbounded. A causal mask makes it 0.
    int64_t getEffectiveRight() const {
      return getCausal() ? 0 : getWindowRight();
    }
  }];
}

#endif // GQA_DIALECT_GQA_IR_GQAATTRS_TD
