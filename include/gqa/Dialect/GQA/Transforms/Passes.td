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

#endif // GQA_DIALECT_GQA_TRANSFORMS_PASSES_TD
