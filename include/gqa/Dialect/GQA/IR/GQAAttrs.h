//===- GQAAttrs.h - Attributes of the gqa dialect ---------------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_IR_GQAATTRS_H
#define GQA_DIALECT_GQA_IR_GQAATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/SmallVector.h"

#include "gqa/Dialect/GQA/IR/GQAEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "gqa/Dialect/GQA/IR/GQAAttrs.h.inc"

namespace mlir::gqa {

/// Where the batch, head, sequence and head-dim dimensions sit in a rank-4
/// attention tensor of a given layout.
struct LayoutDims {
  unsigned batch;
  unsigned heads;
  unsigned seq;
  unsigned headDim;

  /// Orders (batch, head, position, head-dim) values, e.g. the indices of one
  /// element, as the layout stores them.
  template <typename T>
  llvm::SmallVector<T, 4> order(T batchValue, T headValue, T seqValue,
                                T headDimValue) const {
    llvm::SmallVector<T, 4> ordered(4);
    ordered[batch] = batchValue;
    ordered[heads] = headValue;
    ordered[seq] = seqValue;
    ordered[headDim] = headDimValue;
    return ordered;
  }
};

/// The dimension positions of `layout`.
LayoutDims getLayoutDims(Layout layout);

/// Whether `target` names a schedule target (cpu, sm_80 or sm_90).
bool isScheduleTarget(llvm::StringRef target);

/// The attributes gqa-distribute puts on each `scf.forall` of blocks, for
/// the target lowerings: the op's `#gqa.schedule`, its kernel config
/// (AttentionOp::getKernelConfig) and the blocks' role: `main` (the whole
/// KV range), `split` (a split-KV share, or all of it when launched with
/// one split), `combine` (the merge of the splits), or `merge` (the blocks
/// of a gqa.merge_states, which carry its config and no schedule).
constexpr llvm::StringLiteral kBlockScheduleAttrName = "gqa.schedule";
constexpr llvm::StringLiteral kBlockConfigAttrName = "gqa.config";
constexpr llvm::StringLiteral kBlockRoleAttrName = "gqa.role";

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_IR_GQAATTRS_H
