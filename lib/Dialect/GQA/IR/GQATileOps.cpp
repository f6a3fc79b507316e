//===- GQATileOps.cpp - Verifiers of the tile-level ops -------------------===//
//
// The tile-level form states the work of one block over statically shaped
// tiles. Each verifier checks the tiles against each other and against the
// memrefs they come from, naming the operand, the dimension and both values.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/TypeUtilities.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// Checks that `value` (named `name`) is a tile of `rank` whose sizes are
/// static but for the rows (dimension 0) of a partial block when
/// `dynamicRows`.
LogicalResult verifyTileShape(Operation *op, Value value, StringRef name,
                              int64_t rank, bool dynamicRows = true) {
  auto type = cast<ShapedType>(value.getType());
  if (type.getRank() != rank)
    return op->emitOpError() << "expects '" << name << "' to be a tile of rank "
                             << rank << ", got " << type;
  for (int64_t dim = dynamicRows ? 1 : 0; dim < rank; ++dim)
    if (type.isDynamicDim(dim))
      return op->emitOpError()
             << "expects '" << name << "' to have a static size in dimension "
             << dim << ", got " << type;
  return success();
}

/// Checks that dimension `dimA` of `a` equals dimension `dimB` of `b`: both
/// the same static size, or both dynamic (the rows of a partial block).
LogicalResult verifySameDim(Operation *op, Value a, StringRef nameA,
                            int64_t dimA, Value b, StringRef nameB,
                            int64_t dimB) {
  auto typeA = cast<ShapedType>(a.getType());
  auto typeB = cast<ShapedType>(b.getType());
  int64_t sizeA = typeA.getDimSize(dimA), sizeB = typeB.getDimSize(dimB);
  if (sizeA == sizeB)
    return success();
  auto print = [](int64_t size) {
    return ShapedType::isDynamic(size) ? std::string("?")
                                       : std::to_string(size);
  };
  return op->emitOpError() << "expects dimension " << dimA << " of '" << nameA
                           << "' (" << print(sizeA) << ") to equal dimension "
                           << dimB << " of '" << nameB << "' (" << print(sizeB)
                           << ")";
}

/// Checks that `a` and `b` hold the same element type.
LogicalResult verifySameElementType(Operation *op, Value a, StringRef nameA,
                                    Value b, StringRef nameB) {
  Type typeA = getElementTypeOrSelf(a.getType());
  Type typeB = getElementTypeOrSelf(b.getType());
  if (typeA == typeB)
    return success();
  return op->emitOpError() << "expects '" << nameA << "' and '" << nameB
                           << "' to hold the same element type, got " << typeA
                           << " and " << typeB;
}

/// Checks a memref operand of the op's tensors: rank 4, f16/bf16/f32, and
/// static heads and head dim in `layout` (they shape the tiles).
LogicalResult verifyAttentionMemRef(Operation *op, Value value, StringRef name,
                                    Layout layout) {
  auto type = cast<MemRefType>(value.getType());
  if (type.getRank() != 4)
    return op->emitOpError()
           << "expects '" << name << "' to be a memref of rank 4, got " << type;
  Type element = type.getElementType();
  if (!element.isF16() && !element.isBF16() && !element.isF32())
    return op->emitOpError()
           << "expects '" << name << "' to hold f16, bf16 or f32, got " << type;
  LayoutDims dims = getLayoutDims(layout);
  if (type.isDynamicDim(dims.heads) || type.isDynamicDim(dims.headDim))
    return op->emitOpError()
           << "expects '" << name
           << "' to have a static head count and head dim "
              "(dims "
           << dims.heads << " and " << dims.headDim << "), got " << type;
  return success();
}

/// Checks the grouping attributes and the query heads of `value`.
LogicalResult verifyHeads(Operation *op, int64_t qHeads, int64_t kvHeads,
                          Value value, StringRef name, Layout layout) {
  if (kvHeads < 1 || qHeads < 1 || qHeads % kvHeads != 0)
    return op->emitOpError()
           << "expects heads(q_heads, kv_heads) with kv_heads >= 1 dividing "
              "q_heads, got heads("
           << qHeads << ", " << kvHeads << ")";
  int64_t heads =
      cast<ShapedType>(value.getType()).getDimSize(getLayoutDims(layout).heads);
  if (heads != qHeads)
    return op->emitOpError()
           << "expects '" << name << "' to have q_heads = " << qHeads
           << " heads, got " << heads;
  return success();
}

/// Checks that `value` (named `name`) is an f32 memref of `rank` whose
/// dimension `headsDim` is static (the query heads), described as `shape`.
LogicalResult verifyF32MemRef(Operation *op, Value value, StringRef name,
                              int64_t rank, int64_t headsDim, StringRef shape) {
  auto type = cast<MemRefType>(value.getType());
  if (type.getRank() != rank || !type.getElementType().isF32() ||
      type.isDynamicDim(headsDim))
    return op->emitOpError() << "expects '" << name << "' to be an f32 memref "
                             << shape << " with static Hq, got " << type;
  return success();
}

/// Checks that the rows of `tile` (rank 1) are `rows` exactly when dynamic.
LogicalResult verifyRowsOperand(Operation *op, Value tile, Value rows) {
  bool dynamicRows = cast<ShapedType>(tile.getType()).isDynamicDim(0);
  if (dynamicRows == static_cast<bool>(rows))
    return success();
  return op->emitOpError() << "expects a 'rows' operand exactly when the "
                              "tile's row dimension is dynamic, got "
                           << tile.getType() << (rows ? " with" : " without")
                           << " rows";
}

} // namespace

LogicalResult LoadQueryTileOp::verify() {
  Operation *op = getOperation();
  unsigned headDim = getLayoutDims(getLayout()).headDim;
  if (failed(verifyAttentionMemRef(op, getQuery(), "query", getLayout())) ||
      failed(verifyHeads(op, getQHeads(), getKvHeads(), getQuery(), "query",
                         getLayout())) ||
      failed(verifyTileShape(op, getTile(), "tile", 2)) ||
      failed(verifySameDim(op, getTile(), "tile", 1, getQuery(), "query",
                           headDim)) ||
      failed(verifySameElementType(op, getTile(), "tile", getQuery(), "query")))
    return failure();
  return verifyRowsOperand(op, getTile(), getRows());
}

LogicalResult LoadSegmentOp::verify() {
  auto type = cast<MemRefType>(getOffsets().getType());
  if (type.getRank() != 1 || !type.getElementType().isSignlessInteger() ||
      !llvm::is_contained({32u, 64u}, type.getElementTypeBitWidth()))
    return emitOpError() << "expects 'offsets' to be a rank-1 memref of i32 "
                            "or i64 (the B+1 cu_seqlens), got "
                         << type;
  return success();
}

LogicalResult LaunchSizeOp::verify() {
  if (!llvm::is_contained({"seq_q", "seq_kv", "batch"}, getName()))
    return emitOpError() << "names launch size '" << getName()
                         << "'; only 'seq_q', 'seq_kv' and 'batch' are given "
                            "this way (the others are dimensions of the "
                            "parameters)";
  return success();
}

LogicalResult LoadSinkTileOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyF32MemRef(op, getSinks(), "sinks", 1, 0, "[Hq]")) ||
      failed(verifyTileShape(op, getTile(), "tile", 1)))
    return failure();
  int64_t qHeads = cast<MemRefType>(getSinks().getType()).getDimSize(0);
  if (getGroupSize() < 1 || qHeads % getGroupSize() != 0)
    return emitOpError() << "expects group >= 1 dividing the " << qHeads
                         << " sinks, got " << getGroupSize();
  return verifyRowsOperand(op, getTile(), getRows());
}

LogicalResult StoreLseTileOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyF32MemRef(op, getOutput(), "output", 3, 1, "[B, Hq, Sq]")) ||
      failed(verifyTileShape(op, getLse(), "lse", 1)))
    return failure();
  int64_t qHeads = cast<MemRefType>(getOutput().getType()).getDimSize(1);
  if (getGroupSize() < 1 || qHeads % getGroupSize() != 0)
    return emitOpError() << "expects group >= 1 dividing the " << qHeads
                         << " query heads of 'output', got " << getGroupSize();
  return success();
}

LogicalResult LoadKVTileOp::verify() {
  Operation *op = getOperation();
  // A paged pool is [pages, page size, Hkv, width] whatever the layout.
  Layout layout = isPaged() ? Layout::BSHD : getLayout();
  if (failed(verifyAttentionMemRef(op, getSource(), "source", layout)) ||
      failed(
          verifyTileShape(op, getTile(), "tile", 2, /*dynamicRows=*/false)) ||
      failed(verifySameDim(op, getTile(), "tile", 1, getSource(), "source",
                           getLayoutDims(layout).headDim)) ||
      failed(
          verifySameElementType(op, getTile(), "tile", getSource(), "source")))
    return failure();
  if (Value table = getBlockTable()) {
    auto type = cast<MemRefType>(table.getType());
    if (type.getRank() != 2 || !type.getElementType().isInteger(32))
      return emitOpError() << "expects 'block_table' to be a rank-2 memref of "
                              "i32, got "
                           << type;
    if (cast<MemRefType>(getSource().getType()).isDynamicDim(1))
      return emitOpError() << "expects a static page size (dimension 1 of the "
                              "paged 'source'), got "
                           << getSource().getType();
  }
  return success();
}

LogicalResult StoreOutputTileOp::verify() {
  Operation *op = getOperation();
  unsigned headDim = getLayoutDims(getLayout()).headDim;
  if (failed(verifyAttentionMemRef(op, getOutput(), "output", getLayout())) ||
      failed(verifyHeads(op, getQHeads(), getKvHeads(), getOutput(), "output",
                         getLayout())) ||
      failed(verifyTileShape(op, getTile(), "tile", 2)) ||
      failed(verifySameDim(op, getTile(), "tile", 1, getOutput(), "output",
                           headDim)))
    return failure();
  return success();
}

LogicalResult StorePartialTileOp::verify() {
  Operation *op = getOperation();
  auto outType = cast<MemRefType>(getPartialOut().getType());
  auto lseType = cast<MemRefType>(getPartialLse().getType());
  if (outType.getRank() != 5 || !outType.getElementType().isF32())
    return emitOpError()
           << "expects 'partial_out' to be an f32 memref [splits, "
              "B, Hq, Sq, Dv], got "
           << outType;
  if (lseType.getRank() != 4 || !lseType.getElementType().isF32())
    return emitOpError()
           << "expects 'partial_lse' to be an f32 memref [splits, "
              "B, Hq, Sq], got "
           << lseType;
  if (getGroupSize() < 1)
    return emitOpError() << "expects group >= 1, got " << getGroupSize();
  if (failed(verifyTileShape(op, getTile(), "tile", 2)) ||
      failed(verifyTileShape(op, getLse(), "lse", 1)) ||
      failed(verifySameDim(op, getTile(), "tile", 0, getLse(), "lse", 0)) ||
      failed(verifySameDim(op, getTile(), "tile", 1, getPartialOut(),
                           "partial_out", 4)) ||
      failed(verifySameDim(op, getPartialOut(), "partial_out", 2,
                           getPartialLse(), "partial_lse", 2)))
    return failure();
  return success();
}

LogicalResult ScoresOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyTileShape(op, getQuery(), "query", 2)) ||
      failed(verifyTileShape(op, getKey(), "key", 2, /*dynamicRows=*/false)) ||
      failed(verifyTileShape(op, getScores(), "scores", 2)) ||
      failed(verifySameElementType(op, getQuery(), "query", getKey(), "key")) ||
      failed(verifySameDim(op, getQuery(), "query", 1, getKey(), "key", 1)) ||
      failed(verifySameDim(op, getScores(), "scores", 0, getQuery(), "query",
                           0)) ||
      failed(verifySameDim(op, getScores(), "scores", 1, getKey(), "key", 0)))
    return failure();
  double scale = getScale().convertToDouble();
  if (!std::isfinite(scale) || scale <= 0.0)
    return emitOpError() << "expects a finite, positive scale, got " << scale;
  if (std::optional<APFloat> softcap = getSoftcap()) {
    double cap = softcap->convertToDouble();
    if (!std::isfinite(cap) || cap <= 0.0)
      return emitOpError() << "expects a finite, positive softcap, got " << cap;
  }
  return success();
}

LogicalResult MaskScoresOp::verify() {
  if (failed(verifyTileShape(getOperation(), getScores(), "scores", 2)))
    return failure();
  if (getGroupSize() < 1)
    return emitOpError() << "expects group >= 1, got " << getGroupSize();
  return success();
}

LogicalResult OnlineSoftmaxOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyTileShape(op, getScores(), "scores", 2)) ||
      failed(verifyTileShape(op, getMax(), "max", 1)) ||
      failed(verifySameDim(op, getScores(), "scores", 0, getMax(), "max", 0)))
    return failure();
  auto scores = cast<ShapedType>(getScores().getType());
  auto probabilities = cast<ShapedType>(getProbabilities().getType());
  if (scores.getShape() != probabilities.getShape())
    return emitOpError() << "expects 'probabilities' to have the shape of "
                            "'scores', got "
                         << probabilities << " and " << scores;
  return success();
}

LogicalResult AccumulateOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyTileShape(op, getProbabilities(), "probabilities", 2)) ||
      failed(verifyTileShape(op, getValue(), "value", 2,
                             /*dynamicRows=*/false)) ||
      failed(verifyTileShape(op, getAccumulator(), "accumulator", 2)) ||
      failed(verifyTileShape(op, getRescale(), "rescale", 1)) ||
      failed(verifySameElementType(op, getProbabilities(), "probabilities",
                                   getValue(), "value")) ||
      failed(verifySameDim(op, getProbabilities(), "probabilities", 1,
                           getValue(), "value", 0)) ||
      failed(verifySameDim(op, getAccumulator(), "accumulator", 0,
                           getProbabilities(), "probabilities", 0)) ||
      failed(verifySameDim(op, getAccumulator(), "accumulator", 1, getValue(),
                           "value", 1)) ||
      failed(verifySameDim(op, getRescale(), "rescale", 0, getAccumulator(),
                           "accumulator", 0)))
    return failure();
  return success();
}

LogicalResult FinalizeOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyTileShape(op, getAccumulator(), "accumulator", 2)) ||
      failed(verifyTileShape(op, getMax(), "max", 1)) ||
      failed(verifySameDim(op, getMax(), "max", 0, getAccumulator(),
                           "accumulator", 0)))
    return failure();
  if (Value sinks = getSinks())
    if (failed(verifySameDim(op, sinks, "sinks", 0, getMax(), "max", 0)))
      return failure();
  return success();
}

LogicalResult CombineSplitsOp::verify() {
  Operation *op = getOperation();
  auto outType = cast<MemRefType>(getPartialOut().getType());
  auto lseType = cast<MemRefType>(getPartialLse().getType());
  if (outType.getRank() != 5 || !outType.getElementType().isF32() ||
      lseType.getRank() != 4 || !lseType.getElementType().isF32())
    return emitOpError() << "expects f32 workspaces [splits, B, Hq, Sq, Dv] "
                            "and [splits, B, Hq, Sq], got "
                         << outType << " and " << lseType;
  if (getRows() < 1)
    return emitOpError() << "expects rows >= 1, got " << getRows();
  LayoutDims dims = getLayoutDims(getLayout());
  if (failed(verifyAttentionMemRef(op, getOutput(), "output", getLayout())) ||
      failed(verifySameDim(op, getPartialOut(), "partial_out", 2, getOutput(),
                           "output", dims.heads)) ||
      failed(verifySameDim(op, getPartialOut(), "partial_out", 4, getOutput(),
                           "output", dims.headDim)) ||
      failed(verifySameDim(op, getPartialOut(), "partial_out", 2,
                           getPartialLse(), "partial_lse", 2)))
    return failure();
  if (Value sinks = getSinks())
    if (failed(verifyF32MemRef(op, sinks, "sinks", 1, 0, "[Hq]")) ||
        failed(verifySameDim(op, sinks, "sinks", 0, getPartialOut(),
                             "partial_out", 2)))
      return failure();
  if (Value lse = getLse())
    if (failed(verifyF32MemRef(op, lse, "lse", 3, 1, "[B, Hq, Sq]")) ||
        failed(verifySameDim(op, lse, "lse", 1, getPartialOut(), "partial_out",
                             2)))
      return failure();
  return success();
}

LogicalResult MergeRowsOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyAttentionMemRef(op, getOutput(), "output", getLayout())) ||
      failed(verifyF32MemRef(op, getLse(), "lse", 3, 1, "[B, H, S]")))
    return failure();
  auto output = cast<MemRefType>(getOutput().getType());
  int64_t headDimV = output.getDimSize(getLayoutDims(getLayout()).headDim);
  if (headDimV % 4 != 0)
    return emitOpError() << "expects a head dim that is a multiple of 4 (each "
                            "thread merges 4 values), got "
                         << headDimV;
  if (getRows() < 1)
    return emitOpError() << "expects rows >= 1, got " << getRows();
  return success();
}
