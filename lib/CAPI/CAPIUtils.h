//===- CAPIUtils.h - What the C API's entry points share --------*- C++ -*-===//
//
// Private to lib/CAPI: strings handed to C callers, error reporting and the
// configuration struct read into an AttentionSpec.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_LIB_CAPI_CAPIUTILS_H
#define GQA_LIB_CAPI_CAPIUTILS_H

#include "gqa-c/Compiler.h"
#include "gqa/Tools/AttentionSpec.h"
#include "llvm/ADT/StringRef.h"

#include <string>

namespace mlir::gqa::capi {

/// A malloc'ed copy of `text` that C callers free with gqa_compiler_free.
char *copyToC(llvm::StringRef text);

/// Reports `message` through `*error` (when given) and returns 1.
int fail(char **error, llvm::StringRef message);

/// The spec of `attention`, or a message in `error`.
AttentionSpec toSpec(const gqa_compiler_attention &attention,
                     std::string &error);
/// The spec of `merge`, or a message in `error`.
MergeStatesSpec toSpec(const gqa_compiler_merge_states &merge,
                       std::string &error);

} // namespace mlir::gqa::capi

#endif // GQA_LIB_CAPI_CAPIUTILS_H
