//===- MaskUtils.cpp - IR for the attention mask --------------------------===//

#include "gqa/Dialect/GQA/Utils/MaskUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::gqa;

KeyRange mlir::gqa::emitVisibleKeys(ImplicitLocOpBuilder &b, MaskAttr mask,
                                    Value row, Value offset, Value kvLen) {
  auto index = [&](int64_t value) -> Value {
    return arith::ConstantIndexOp::create(b, value);
  };
  // The diagonal: the key aligned with this query row.
  Value diagonal = arith::AddIOp::create(b, row, offset);
  Value begin = index(0);
  if (int64_t left = mask.getWindowLeft(); left >= 0)
    begin = arith::MaxSIOp::create(
        b, begin, arith::SubIOp::create(b, diagonal, index(left)));
  Value end = kvLen;
  if (int64_t right = mask.getEffectiveRight(); right >= 0)
    end = arith::MinSIOp::create(
        b, end, arith::AddIOp::create(b, diagonal, index(right + 1)));
  return {begin, end};
}
