//===- IndexUtils.h - Folded index arithmetic -------------------*- C++ -*-===//
//
// Index arithmetic on an implicit-location builder, each op folded where it
// can be (affine maps composed with the applies producing their operands),
// shared by the passes that compute the tiled form's blocks, rows and keys.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_DIALECT_GQA_UTILS_INDEXUTILS_H
#define GQA_DIALECT_GQA_UTILS_INDEXUTILS_H

#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::gqa {

/// Builds folded `index` arithmetic at `b`'s insertion point. Unsigned
/// division only of values that are never negative.
class IndexBuilder {
public:
  explicit IndexBuilder(ImplicitLocOpBuilder &b) : b(b) {}

  ImplicitLocOpBuilder &b;

  /// An index constant.
  Value index(int64_t value);
  /// Affine dim `position`, for `apply`.
  AffineExpr dim(unsigned position);
  /// The value of `expr`, whose dims are `operands`, as a composed and
  /// folded `affine.apply` (a constant when it can be).
  Value apply(AffineExpr expr, ArrayRef<Value> operands);

  Value add(Value x, Value y);
  Value sub(Value x, Value y);
  Value mul(Value x, Value y);
  Value divu(Value x, Value y);
  Value ceilDivu(Value x, Value y);
  Value mins(Value x, Value y);
  Value maxs(Value x, Value y);
  Value minu(Value x, Value y);
  Value maxu(Value x, Value y);
};

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_UTILS_INDEXUTILS_H
