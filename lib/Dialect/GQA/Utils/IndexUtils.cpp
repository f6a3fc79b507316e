//===- IndexUtils.cpp - Folded index arithmetic ---------------------------===//

#include "gqa/Dialect/GQA/Utils/IndexUtils.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"

using namespace mlir;
using namespace mlir::gqa;

Value IndexBuilder::index(int64_t value) {
  return b.createOrFold<arith::ConstantIndexOp>(value);
}

AffineExpr IndexBuilder::dim(unsigned position) {
  return getAffineDimExpr(position, b.getContext());
}

Value IndexBuilder::apply(AffineExpr expr, ArrayRef<Value> operands) {
  AffineMap map = AffineMap::get(operands.size(), /*symbolCount=*/0, expr);
  return getValueOrCreateConstantIndexOp(
      b, b.getLoc(),
      affine::makeComposedFoldedAffineApply(b, b.getLoc(), map,
                                            getAsOpFoldResult(operands)));
}

Value IndexBuilder::add(Value x, Value y) {
  return b.createOrFold<arith::AddIOp>(x, y);
}
Value IndexBuilder::sub(Value x, Value y) {
  return b.createOrFold<arith::SubIOp>(x, y);
}
Value IndexBuilder::mul(Value x, Value y) {
  return b.createOrFold<arith::MulIOp>(x, y);
}
Value IndexBuilder::divu(Value x, Value y) {
  return b.createOrFold<arith::DivUIOp>(x, y);
}
Value IndexBuilder::ceilDivu(Value x, Value y) {
  return b.createOrFold<arith::CeilDivUIOp>(x, y);
}
Value IndexBuilder::mins(Value x, Value y) {
  return b.createOrFold<arith::MinSIOp>(x, y);
}
Value IndexBuilder::maxs(Value x, Value y) {
  return b.createOrFold<arith::MaxSIOp>(x, y);
}
Value IndexBuilder::minu(Value x, Value y) {
  return b.createOrFold<arith::MinUIOp>(x, y);
}
Value IndexBuilder::maxu(Value x, Value y) {
  return b.createOrFold<arith::MaxUIOp>(x, y);
}
