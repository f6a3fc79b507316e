// Two attention layers on tensors with static sizes: a causal GQA layer and
// a sliding-window MQA layer with KV lengths.
func.func @prefill(%q: tensor<2x256x32x128xbf16>, %k: tensor<2x256x8x128xbf16>,
                   %v: tensor<2x256x8x128xbf16>) -> tensor<2x256x32x128xbf16> {
  %init = tensor.empty() : tensor<2x256x32x128xbf16>
  %o = gqa.attention ins(%q, %k, %v : tensor<2x256x32x128xbf16>, tensor<2x256x8x128xbf16>, tensor<2x256x8x128xbf16>)
         outs(%init : tensor<2x256x32x128xbf16>) heads(32, 8) layout<bshd> mask<causal>
         -> tensor<2x256x32x128xbf16>
  return %o : tensor<2x256x32x128xbf16>
}

func.func @decode(%q: tensor<?x8x1x64xf16>, %k: tensor<?x1x?x64xf16>, %v: tensor<?x1x?x64xf16>,
                  %lens: tensor<?xi32>, %init: tensor<?x8x1x64xf16>) -> tensor<?x8x1x64xf16> {
  %o = gqa.attention ins(%q, %k, %v : tensor<?x8x1x64xf16>, tensor<?x1x?x64xf16>, tensor<?x1x?x64xf16>)
         kv_lens(%lens : tensor<?xi32>)
         outs(%init : tensor<?x8x1x64xf16>) heads(8, 1) layout<bhsd> mask<window = [1024, 0]>
         softcap(20.0) -> tensor<?x8x1x64xf16>
  return %o : tensor<?x8x1x64xf16>
}
