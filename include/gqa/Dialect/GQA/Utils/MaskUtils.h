//===- MaskUtils.h - IR for the attention mask ------------------*- C++ -*-===//
//
// The keys a query row may see, as IR, shared by every lowering of
// gqa.attention so that the CPU and GPU paths cannot disagree on the mask.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_DIALECT_GQA_UTILS_MASKUTILS_H
#define GQA_DIALECT_GQA_UTILS_MASKUTILS_H

#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::gqa {

/// The half-open range [begin, end) of key positions that a query row sees.
/// It is empty when begin >= end.
struct KeyRange {
  Value begin;
  Value end;
};

/// Emits the keys that query row `row` (index) sees under `mask`, with the
/// bottom-right alignment `offset` = kvLen - Sq (index, may be negative) and
/// `kvLen` valid keys. Keys at or beyond `kvLen` are never visible. Because
/// both ends grow with the row, the range of a block of rows [r0, r1] is
/// {begin(r0), end(r1)}.
KeyRange emitVisibleKeys(ImplicitLocOpBuilder &b, MaskAttr mask, Value row,
                         Value offset, Value kvLen);

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_UTILS_MASKUTILS_H
