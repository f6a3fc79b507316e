//===- IndexUtils.cpp - Folded index arithmetic ---------------------------===//

#include "gqa/Dialect/GQA/Utils/IndexUtils.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"

using namespace mlir;

Value mlir::gqa::emitIndexExpr(OpBuilder &b, Location loc, AffineExpr expr,
                               ArrayRef<Value> operands) {
  AffineMap map = AffineMap::get(operands.size(), /*symbolCount=*/0, expr);
  return getValueOrCreateConstantIndexOp(
      b, loc,
      affine::makeComposedFoldedAffineApply(b, loc, map,
                                            getAsOpFoldResult(operands)));
}
