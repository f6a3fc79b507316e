//===- GQABase.td - The gqa dialect ------------------------*- tablegen -*-===//
//
// The dialect definition shared by the attributes and the ops.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_DIALECT_GQA_IR_GQABASE_TD
#define GQA_DIALECT_GQA_IR_GQABASE_TD

include "mlir/IR/OpBase.td"

def GQA_Dialect : Dialect {
  let name = "gqa";
  let cppNamespace = "::mlir::gqa";
  let summary = "Grouped-query attention with the KV grouping in the IR";
  let description = [{
    The `gqa` dialect expresses grouped-query attention (GQA): `Hq` query heads
    share `Hkv` key/value heads, `g = Hq / Hkv` query heads per KV head. The
    grouping is an explicit, verified attribute of each attention op, so that
    passes can derive the KV head of a query head (`h / g`) instead of
    materialising a repeated K/V. Multi-head attention (`g = 1`) and multi-query
    attention (`Hkv = 1`) are its two ends.

    ```mlir
    %o = gqa.attention ins(%q, %k, %v : tensor<1x64x512x128xbf16>,
                                        tensor<1x8x512x128xbf16>,
                                        tensor<1x8x512x128xbf16>)
           outs(%init : tensor<1x64x512x128xbf16>)
           heads(64, 8) layout<bhsd> mask<causal> -> tensor<1x64x512x128xbf16>
    ```
  }];
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
    /// Registers the dialect's attributes (defined beside their storage).
    void registerAttributes();
  }];
}

class GQA_Op<string mnemonic, list<Trait> traits = []>
    : Op<GQA_Dialect, mnemonic, traits>;

#endif // GQA_DIALECT_GQA_IR_GQABASE_TD
