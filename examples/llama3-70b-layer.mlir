// One attention layer of Llama-3-70B (Llama-3.1-70B): 64 query heads share
// 8 KV heads (group size 8), head dim 128, bf16, bshd (the layout of
// FlashAttention and of Hugging Face KV caches), causal. Batch and sequence
// lengths are dynamic: one compiled kernel serves prefill and decode.
func.func @llama3_70b_layer(%q: tensor<?x?x64x128xbf16>, %k: tensor<?x?x8x128xbf16>,
                            %v: tensor<?x?x8x128xbf16>) -> tensor<?x?x64x128xbf16> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %batch = tensor.dim %q, %c0 : tensor<?x?x64x128xbf16>
  %seq = tensor.dim %q, %c1 : tensor<?x?x64x128xbf16>
  %init = tensor.empty(%batch, %seq) : tensor<?x?x64x128xbf16>
  %o = gqa.attention ins(%q, %k, %v : tensor<?x?x64x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>)
         outs(%init : tensor<?x?x64x128xbf16>) heads(64, 8) layout<bshd> mask<causal>
         -> tensor<?x?x64x128xbf16>
  return %o : tensor<?x?x64x128xbf16>
}
