//===- IndexUtils.h - Folded index arithmetic -------------------*- C++ -*-===//
//
// Index arithmetic as composed, folded affine maps, shared by the passes
// that compute the tiled form's rows, keys and blocks.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_DIALECT_GQA_UTILS_INDEXUTILS_H
#define GQA_DIALECT_GQA_UTILS_INDEXUTILS_H

#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/Builders.h"

namespace mlir::gqa {

/// The value of `expr`, whose dims are `operands` (index values), as an
/// `affine.apply` composed with the applies that produce its operands and
/// folded (a constant when it can be).
Value emitIndexExpr(OpBuilder &b, Location loc, AffineExpr expr,
                    ArrayRef<Value> operands);

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_UTILS_INDEXUTILS_H
