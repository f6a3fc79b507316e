//===- GQATiling.cpp - TilingInterface of gqa.attention -------------------===//
//
// (And ReifyRankedShapedTypeOpInterface: each result has its init's shape.)
// The iteration domain is (batch, KV head), both parallel. A tile of KV
// heads [h0, h0 + t) reads query heads [h0 * g, (h0 + t) * g): the grouping
// never breaks, and each tile is again a gqa.attention, with heads(t * g, t),
// on slices of its operands.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// The tile of one attention problem: sequences [b0, b0 + bs) and KV heads
/// [h0, h0 + hs), hs static.
struct AttentionTile {
  OpFoldResult batchOffset, batchSize, kvHeadOffset, qHeadOffset;
  int64_t kvHeads, qHeads;
};

FailureOr<AttentionTile> getTile(AttentionOp op, OpBuilder &b,
                                 ArrayRef<OpFoldResult> offsets,
                                 ArrayRef<OpFoldResult> sizes) {
  std::optional<int64_t> kvHeads = getConstantIntValue(sizes[1]);
  if (!kvHeads || *kvHeads <= 0)
    return op.emitOpError()
           << "tiles KV heads by a static, positive size (the head counts "
              "shape the op)";
  AffineExpr d0;
  bindDims(b.getContext(), d0);
  int64_t g = op.getGroupSize();
  OpFoldResult qHeadOffset = affine::makeComposedFoldedAffineApply(
      b, op.getLoc(), d0 * g, {offsets[1]});
  return AttentionTile{offsets[0],  sizes[0], offsets[1],
                       qHeadOffset, *kvHeads, *kvHeads * g};
}

/// The slice of `source` whose dimension `dims[i]` is `[offsets[i],
/// offsets[i] + sizes[i])`, whole in the others.
Value slice(OpBuilder &b, Location loc, Value source, ArrayRef<unsigned> dims,
            ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes) {
  auto type = cast<RankedTensorType>(source.getType());
  SmallVector<OpFoldResult> allOffsets(type.getRank(), b.getIndexAttr(0));
  SmallVector<OpFoldResult> allSizes = tensor::getMixedSizes(b, loc, source);
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  for (auto [dim, offset, size] : llvm::zip(dims, offsets, sizes)) {
    allOffsets[dim] = offset;
    allSizes[dim] = size;
  }
  return tensor::ExtractSliceOp::create(b, loc, source, allOffsets, allSizes,
                                        strides);
}

} // namespace

LogicalResult
AttentionOp::reifyResultShapes(OpBuilder &b,
                               ReifiedRankedShapedTypeDims &reifiedShapes) {
  // On tensors the results are the inits, written: the same shapes.
  for (OpResult result : getOperation()->getResults())
    reifiedShapes.push_back(
        tensor::getMixedSizes(b, getLoc(), getTiedOpOperand(result)->get()));
  return success();
}

SmallVector<utils::IteratorType> AttentionOp::getLoopIteratorTypes() {
  return {utils::IteratorType::parallel, utils::IteratorType::parallel};
}

SmallVector<Range> AttentionOp::getIterationDomain(OpBuilder &b) {
  Location loc = getLoc();
  OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
  OpFoldResult batch = isVarlen() ? b.getIndexAttr(1)
                                  : tensor::getMixedSize(b, loc, getQuery(),
                                                         getLayoutDims().batch);
  return {Range{zero, batch, one},
          Range{zero, b.getIndexAttr(getKvHeads()), one}};
}

FailureOr<TilingResult>
AttentionOp::getTiledImplementation(OpBuilder &b,
                                    ArrayRef<OpFoldResult> offsets,
                                    ArrayRef<OpFoldResult> sizes) {
  if (!hasPureTensorSemantics())
    return emitOpError() << "is tiled on tensors only";
  if (isVarlen())
    return emitOpError() << "tiles a ragged batch by KV heads only; its batch "
                            "is one domain point";
  FailureOr<AttentionTile> tile = getTile(*this, b, offsets, sizes);
  if (failed(tile))
    return failure();
  Location loc = getLoc();
  LayoutDims dims = getLayoutDims();
  SmallVector<Operation *> slices;
  auto take = [&](Value source, ArrayRef<unsigned> at,
                  ArrayRef<OpFoldResult> from,
                  ArrayRef<OpFoldResult> count) -> Value {
    if (!source)
      return Value();
    Value result = slice(b, loc, source, at, from, count);
    slices.push_back(result.getDefiningOp());
    return result;
  };
  OpFoldResult qHeads = b.getIndexAttr(tile->qHeads),
               kvHeads = b.getIndexAttr(tile->kvHeads);
  // Query, init and LSE: batch and query heads; K/V: batch and KV heads,
  // or, paged, the KV heads of the pools and the block table's rows.
  auto queries = [&](Value source) {
    return take(source, {dims.batch, dims.heads},
                {tile->batchOffset, tile->qHeadOffset},
                {tile->batchSize, qHeads});
  };
  auto keys = [&](Value source) {
    if (isPaged())
      return take(source, {getKVLayoutDims().heads}, {tile->kvHeadOffset},
                  {kvHeads});
    return take(source, {dims.batch, dims.heads},
                {tile->batchOffset, tile->kvHeadOffset},
                {tile->batchSize, kvHeads});
  };
  auto rows = [&](Value source) {
    return take(source, {0}, {tile->batchOffset}, {tile->batchSize});
  };
  Value lse = take(getLseInit(), {0, 1}, {tile->batchOffset, tile->qHeadOffset},
                   {tile->batchSize, qHeads});
  Value init = queries(getInit());
  SmallVector<Type> resultTypes = {init.getType()};
  if (lse)
    resultTypes.push_back(lse.getType());
  auto tiled = AttentionOp::create(
      b, loc, resultTypes, queries(getQuery()), keys(getKey()),
      keys(getValue()), rows(getKvLens()), rows(getBlockTable()),
      take(getSinks(), {0}, {tile->qHeadOffset}, {qHeads}),
      /*cuSeqlensQ=*/Value(), /*cuSeqlensK=*/Value(),
      /*maxSeqlenQ=*/Value(), /*maxSeqlenK=*/Value(), init, lse,
      b.getI64IntegerAttr(tile->qHeads), b.getI64IntegerAttr(tile->kvHeads),
      getLayoutAttr(), getMaskAttr(), getScaleAttr(), getSoftcapAttr(),
      getScheduleAttr());
  // Without `scale`, the default 1/sqrt(D) is the same for the tile.
  return TilingResult{{tiled}, SmallVector<Value>(tiled.getResults()), slices};
}

LogicalResult AttentionOp::getResultTilePosition(
    OpBuilder &b, unsigned resultNumber, ArrayRef<OpFoldResult> offsets,
    ArrayRef<OpFoldResult> sizes, SmallVector<OpFoldResult> &resultOffsets,
    SmallVector<OpFoldResult> &resultSizes) {
  FailureOr<AttentionTile> tile = getTile(*this, b, offsets, sizes);
  if (failed(tile))
    return failure();
  Value result = getResult()[resultNumber];
  auto type = cast<RankedTensorType>(result.getType());
  resultOffsets.assign(type.getRank(), b.getIndexAttr(0));
  resultSizes = tensor::getMixedSizes(b, getLoc(), getDpsInits()[resultNumber]);
  // The output is in the layout; the LSE is [B, Hq, Sq].
  unsigned batchDim = resultNumber == 0 ? getLayoutDims().batch : 0;
  unsigned headsDim = resultNumber == 0 ? getLayoutDims().heads : 1;
  resultOffsets[batchDim] = tile->batchOffset;
  resultSizes[batchDim] = tile->batchSize;
  resultOffsets[headsDim] = tile->qHeadOffset;
  resultSizes[headsDim] = b.getIndexAttr(tile->qHeads);
  return success();
}

FailureOr<TilingResult>
AttentionOp::generateResultTileValue(OpBuilder &b, unsigned resultNumber,
                                     ArrayRef<OpFoldResult> offsets,
                                     ArrayRef<OpFoldResult> sizes) {
  return getTiledImplementation(b, offsets, sizes);
}
