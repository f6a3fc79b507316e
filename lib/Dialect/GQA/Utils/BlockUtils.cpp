//===- BlockUtils.cpp - The work of one block of packed rows --------------===//
//
// Unsigned division only of values that are never negative: row and key
// indices and counts.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/Utils/BlockUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// Index arithmetic on an implicit-location builder, folded where it can be.
struct IndexMath {
  ImplicitLocOpBuilder &b;

  Value c(int64_t value) { return b.createOrFold<arith::ConstantIndexOp>(value); }
  Value add(Value x, Value y) { return b.createOrFold<arith::AddIOp>(x, y); }
  Value sub(Value x, Value y) { return b.createOrFold<arith::SubIOp>(x, y); }
  Value mul(Value x, Value y) { return b.createOrFold<arith::MulIOp>(x, y); }
  Value divu(Value x, Value y) { return b.createOrFold<arith::DivUIOp>(x, y); }
  Value ceilDivu(Value x, Value y) {
    return b.createOrFold<arith::CeilDivUIOp>(x, y);
  }
  Value mins(Value x, Value y) { return b.createOrFold<arith::MinSIOp>(x, y); }
  Value maxs(Value x, Value y) { return b.createOrFold<arith::MaxSIOp>(x, y); }
  Value minu(Value x, Value y) { return b.createOrFold<arith::MinUIOp>(x, y); }
  Value maxu(Value x, Value y) { return b.createOrFold<arith::MaxUIOp>(x, y); }
};

} // namespace

BlockWork mlir::gqa::emitBlockWork(ImplicitLocOpBuilder &b, MaskAttr mask,
                                   int64_t groupSize, int64_t blockM,
                                   int64_t blockN, Value firstRow, Value seqQ,
                                   Value offset, Value kvLen, Value split,
                                   Value tilesPerSplit) {
  IndexMath m{b};
  BlockWork work;
  Value g = m.c(groupSize);
  work.firstQuery = m.divu(firstRow, g);
  Value lastRow = m.mins(m.add(firstRow, m.c(blockM - 1)),
                         m.sub(m.mul(seqQ, g), m.c(1)));
  work.lastQuery = m.divu(lastRow, g);
  // Both ends of the visible range grow with the row: the block's range is
  // [begin(first), end(last)).
  work.firstKeys = emitVisibleKeys(b, mask, work.firstQuery, offset, kvLen);
  work.lastKeys = emitVisibleKeys(b, mask, work.lastQuery, offset, kvLen);
  work.tileBegin = m.divu(work.firstKeys.begin, m.c(blockN));
  work.tileEnd = m.ceilDivu(m.maxs(work.lastKeys.end, m.c(0)), m.c(blockN));
  if (split) {
    Value splitBegin = m.mul(split, tilesPerSplit);
    work.tileBegin = m.maxs(work.tileBegin, splitBegin);
    work.tileEnd = m.mins(work.tileEnd, m.add(splitBegin, tilesPerSplit));
  }
  work.fullBegin = work.lastKeys.begin;
  work.fullEnd = work.firstKeys.end;
  return work;
}

Value mlir::gqa::emitTilesPerSplit(ImplicitLocOpBuilder &b, Value seqKV,
                                   int64_t blockN, Value numSplits) {
  IndexMath m{b};
  return m.ceilDivu(m.ceilDivu(seqKV, m.c(blockN)), numSplits);
}

Value mlir::gqa::emitSplitCount(ImplicitLocOpBuilder &b, Value seqKV,
                                int64_t blockN, int64_t maxSplits) {
  IndexMath m{b};
  Value tiles = m.ceilDivu(seqKV, m.c(blockN));
  Value wanted = m.maxu(m.minu(tiles, m.c(maxSplits)), m.c(1));
  Value perSplit = m.maxu(m.ceilDivu(tiles, wanted), m.c(1));
  return m.maxu(m.ceilDivu(tiles, perSplit), m.c(1));
}
