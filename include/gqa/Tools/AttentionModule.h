//===- AttentionModule.h - Build IR for one attention spec ------*- C++ -*-===//

#ifndef GQA_TOOLS_ATTENTIONMODULE_H
#define GQA_TOOLS_ATTENTIONMODULE_H

#include "gqa/Tools/AttentionSpec.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::gqa {

/// Builds a module with one function `name`, taking memrefs q, k, v,
/// [kv_lens: memref<?xi32>], out, with dynamic batch and sequence lengths in
/// the spec's layout, whose body is one `gqa.attention`. The function has
/// `llvm.emit_c_interface`. Returns null (after a diagnostic) if the op does
/// not verify.
mlir::OwningOpRef<mlir::ModuleOp>
buildAttentionModule(mlir::MLIRContext &context, const AttentionSpec &spec,
                     llvm::StringRef name);

/// Builds a module with one function `name`, taking memrefs out_a, lse_a,
/// out_b, lse_b, out, lse with dynamic batch and sequence lengths (or
/// tokens), whose body is one `gqa.merge_states`. The function has
/// `llvm.emit_c_interface`. Returns null (after a diagnostic) if the op does
/// not verify.
mlir::OwningOpRef<mlir::ModuleOp>
buildMergeStatesModule(mlir::MLIRContext &context, const MergeStatesSpec &spec,
                       llvm::StringRef name);

} // namespace mlir::gqa

#endif // GQA_TOOLS_ATTENTIONMODULE_H
