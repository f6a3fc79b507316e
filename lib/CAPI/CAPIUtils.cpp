//===- CAPIUtils.cpp - What the C API's entry points share ----------------===//

#include "CAPIUtils.h"

#include <cstdlib>
#include <cstring>

using namespace mlir::gqa;

/// A malloc'ed copy of `text` that C callers free with gqa_compiler_free.
char *mlir::gqa::capi::copyToC(llvm::StringRef text) {
  char *copy = static_cast<char *>(std::malloc(text.size() + 1));
  if (!copy)
    return nullptr;
  std::memcpy(copy, text.data(), text.size());
  copy[text.size()] = '\0';
  return copy;
}

/// Reports `message` through `*error` (when given) and returns 1.
int mlir::gqa::capi::fail(char **error, llvm::StringRef message) {
  if (error)
    *error = copyToC(message);
  return 1;
}

/// The spec of `attention`, or a message in `error`.
AttentionSpec mlir::gqa::capi::toSpec(const gqa_compiler_attention &attention,
                                      std::string &error) {
  AttentionSpec spec;
  spec.qHeads = attention.q_heads;
  spec.kvHeads = attention.kv_heads;
  spec.headDim = attention.head_dim;
  spec.headDimV = attention.head_dim_v;
  error = spec.setElementType(attention.dtype ? attention.dtype : "(null)");
  if (error.empty())
    error = spec.setLayout(attention.layout ? attention.layout : "(null)");
  if (!error.empty())
    return spec;
  spec.causal = attention.causal != 0;
  spec.windowLeft = attention.window_left;
  spec.windowRight = attention.window_right;
  if (attention.scale != 0)
    spec.scale = attention.scale;
  if (attention.softcap != 0)
    spec.softcap = attention.softcap;
  spec.hasKVLens = attention.kv_lens != 0;
  spec.pageSize = attention.page_size;
  spec.hasSinks = attention.sinks != 0;
  spec.returnLse = attention.return_lse != 0;
  spec.varlen = attention.varlen != 0;
  spec.packedKV = attention.packed_kv != 0;
  error = spec.validate();
  return spec;
}

MergeStatesSpec mlir::gqa::capi::toSpec(const gqa_compiler_merge_states &merge,
                                        std::string &error) {
  MergeStatesSpec spec;
  spec.heads = merge.heads;
  spec.headDimV = merge.head_dim_v;
  spec.varlen = merge.varlen != 0;
  error = spec.setElementType(merge.dtype ? merge.dtype : "(null)");
  if (error.empty())
    error = spec.setLayout(merge.layout ? merge.layout : "(null)");
  if (error.empty())
    error = spec.validate();
  return spec;
}
