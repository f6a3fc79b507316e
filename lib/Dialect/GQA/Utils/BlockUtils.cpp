//===- BlockUtils.cpp - The work of one block of packed rows --------------===//
//
// Unsigned division only of values that are never negative: row and key
// indices and counts.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/Utils/BlockUtils.h"
#include "gqa/Dialect/GQA/Utils/IndexUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::gqa;

BlockWork mlir::gqa::emitBlockWork(ImplicitLocOpBuilder &b, MaskAttr mask,
                                   int64_t groupSize, int64_t blockM,
                                   int64_t blockN, Value firstRow, Value seqQ,
                                   Value offset, Value kvLen, Value split,
                                   Value tilesPerSplit, Value numSplits) {
  IndexBuilder m(b);
  BlockWork work;
  Value g = m.index(groupSize);
  work.firstQuery = m.divu(firstRow, g);
  Value lastRow = m.mins(m.add(firstRow, m.index(blockM - 1)),
                         m.sub(m.mul(seqQ, g), m.index(1)));
  work.lastQuery = m.divu(lastRow, g);
  // Both ends of the visible range grow with the row: the block's range is
  // [begin(first), end(last)).
  work.firstKeys = emitVisibleKeys(b, mask, work.firstQuery, offset, kvLen);
  work.lastKeys = emitVisibleKeys(b, mask, work.lastQuery, offset, kvLen);
  work.tileBegin = m.divu(work.firstKeys.begin, m.index(blockN));
  work.tileEnd =
      m.ceilDivu(m.maxs(work.lastKeys.end, m.index(0)), m.index(blockN));
  if (split) {
    Value splitBegin = m.mul(split, tilesPerSplit);
    work.tileBegin = m.maxs(work.tileBegin, splitBegin);
    Value last = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, split,
                                       m.sub(numSplits, m.index(1)));
    work.tileEnd = arith::SelectOp::create(
        b, last, work.tileEnd,
        m.mins(work.tileEnd, m.add(splitBegin, tilesPerSplit)));
  }
  work.fullBegin = work.lastKeys.begin;
  work.fullEnd = work.firstKeys.end;
  return work;
}

Value mlir::gqa::emitRowsInBlock(ImplicitLocOpBuilder &b, Value rows,
                                 Value total, Value firstRow) {
  IndexBuilder m(b);
  return m.maxs(m.mins(m.sub(total, firstRow), rows), m.index(0));
}

Value mlir::gqa::emitTilesPerSplit(ImplicitLocOpBuilder &b, Value seqKV,
                                   int64_t blockN, Value numSplits) {
  IndexBuilder m(b);
  return m.ceilDivu(m.ceilDivu(seqKV, m.index(blockN)), numSplits);
}

Value mlir::gqa::emitSplitCount(ImplicitLocOpBuilder &b, Value seqKV,
                                int64_t blockN, int64_t maxSplits) {
  IndexBuilder m(b);
  Value tiles = m.ceilDivu(seqKV, m.index(blockN));
  Value wanted = m.maxu(m.minu(tiles, m.index(maxSplits)), m.index(1));
  Value perSplit = m.maxu(m.ceilDivu(tiles, wanted), m.index(1));
  return m.maxu(m.ceilDivu(tiles, perSplit), m.index(1));
}
