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


//===----------------------------------------------------------------------===//
// Schedule
//===----------------------------------------------------------------------===//

def GQA_ScheduleAttr : AttrDef<GQA_Dialect, "Schedule"> {
  let mnemonic = "schedule";
  let summary = "How one attention op is distributed and tiled for a target";
  let description = [{
    The schedule of a `gqa.attention` op, chosen per target by
    `gqa-select-schedule` (and overridable there), read by `gqa-distribute`
    and the target lowerings, and recorded in the kernel metadata:

    - `target`: `cpu`, `sm_80` or `sm_90`: whose lowering the schedule is
      for. Any target's schedule runs on the CPU (`gqa-run --schedule`), so
      that the CPU proves the numerics of what the GPU will run.
    - `block_m`: packed rows per block (one CTA, or one CPU task). A packed
      row is a (query position, head of the group) pair: row `r` of KV head
      `kvh` is query position `r / g` of query head `kvh * g + r % g`, so the
      `g` heads sharing a KV head fill one tile (FlashAttention-3's PackGQA).
    - `block_n`: keys per KV tile. Both are at most 16384, and a score tile
      (`block_m x block_n`) at most 2^24 elements.
    - `max_splits`: split-KV (Flash-Decoding) with at most this many splits
      of the KV tiles; 0 for none. The number used is chosen at run time
      (`min(max_splits, KV tiles)`, evened out so that no split is empty).
    - `warps`, `stages`, `q_in_registers`, `min_ctas_per_sm`,
      `max_registers`: what the GPU lowerings need (warps per CTA, buffers per
      K/V tile, whether Q fragments stay in registers, the occupancy and
      register hints); the CPU lowering ignores them.

    ```mlir
    #gqa.schedule<target = "sm_90", block_m = 64, block_n = 64, max_splits = 32,
                  warps = 4, stages = 1, q_in_registers = true,
                  min_ctas_per_sm = 2, max_registers = 0>
    ```
  }];
  let parameters = (ins
    StringRefParameter<"the target: cpu, sm_80 or sm_90">:$target,
    "int64_t":$block_m,
    "int64_t":$block_n,
    "int64_t":$max_splits,
    "int64_t":$warps,
    "int64_t":$stages,
    "bool":$q_in_registers,
    "int64_t":$min_ctas_per_sm,
    "int64_t":$max_registers
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The most rows or keys of a tile, and the most elements of a score
    /// tile: the tiles are statically shaped buffers or registers.
    static constexpr int64_t kMaxTileSize = 16384;
    static constexpr int64_t kMaxScoreTileElements = int64_t{1} << 24;
    /// Whether the schedule splits the KV sequence across blocks.
    bool isSplitKV() const { return getMaxSplits() > 0; }
  }];
}

#endif // GQA_DIALECT_GQA_IR_GQAATTRS_TD
