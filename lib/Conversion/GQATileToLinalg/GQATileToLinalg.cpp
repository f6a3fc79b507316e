//===- GQATileToLinalg.cpp - The tile-level ops for the CPU ---------------===//
//
// Maps each tile-level op onto upstream ops: linalg.generic on tensors for
// the arithmetic (bufferized, then lowered to loops or vectorised by the CPU
// pipeline), tensor.generate for the gathers of packed or paged rows, and scf
// loops for the stores and the merges (Merges.cpp). The algorithm is not
// re-derived here: each pattern implements exactly its op's definition.
//
//===----------------------------------------------------------------------===//

#include "TileBuilder.h"
#include "gqa/Conversion/Passes.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Utils/BlockUtils.h"
#include "gqa/Dialect/GQA/Utils/IndexUtils.h"
#include "gqa/Dialect/GQA/Utils/MaskUtils.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <cmath>

namespace mlir::gqa {
#define GEN_PASS_DEF_CONVERTGQATILESTOLINALG
#include "gqa/Conversion/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::tile_lowering;

namespace {

//===----------------------------------------------------------------------===//
// Packed rows: (query position, head of the group).
//===----------------------------------------------------------------------===//

/// Where packed row `packed` (< Sq * g) of KV head `kvHead` lies.
struct PackedRow {
  Value position, head;
};
PackedRow unpackRow(TileBuilder &t, Value packed, Value kvHead,
                    int64_t groupSize) {
  AffineExpr d0 = t.dim(0), d1 = t.dim(1);
  return {t.apply(d0.floorDiv(groupSize), {packed}),
          t.apply(d1 * groupSize + d0 % groupSize, {packed, kvHead})};
}

/// The number of packed rows of `memref` (Sq * g), read through `layout`.
Value packedRowCount(TileBuilder &t, Value memref, Layout layout,
                     int64_t groupSize) {
  Value seq = memref::DimOp::create(t.b, memref, getLayoutDims(layout).seq);
  return t.apply(t.dim(0) * groupSize, {seq});
}

/// The indices in the source of the element in global row `row` (clamped
/// into range) and column `column`.
using RowIndices =
    function_ref<SmallVector<Value, 4>(TileBuilder &, Value row, Value column)>;

/// A tile gathered row by row from `source`: tile row `r` is global row
/// `first + r`, read where it is below `end` and zero past it (a row past
/// the end reads row 0, a valid address, and is replaced).
Value gatherRows(TileBuilder &t, RankedTensorType type, ValueRange dynamicSizes,
                 Value source, Value first, Value end, RowIndices indices) {
  auto generate = tensor::GenerateOp::create(
      t.b, type, dynamicSizes,
      [&](OpBuilder &nested, Location loc, ValueRange at) {
        ImplicitLocOpBuilder b(loc, nested);
        TileBuilder inner(b);
        Value row = inner.apply(inner.dim(0) + inner.dim(1), {first, at[0]});
        Value valid =
            arith::CmpIOp::create(b, arith::CmpIPredicate::slt, row, end);
        row = arith::SelectOp::create(b, valid, row, inner.index(0));
        Value element =
            memref::LoadOp::create(b, source, indices(inner, row, at[1]));
        Value zero =
            arith::ConstantOp::create(b, b.getZeroAttr(type.getElementType()));
        tensor::YieldOp::create(
            b, arith::SelectOp::create(b, valid, element, zero).getResult());
      });
  return generate.getResult();
}

struct LoadQueryTileLowering : public TilePattern<LoadQueryTileOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, LoadQueryTileOp op) const override {
    int64_t g = op.getQHeads() / op.getKvHeads();
    LayoutDims dims = getLayoutDims(op.getLayout());
    SmallVector<Value, 1> dynamicSizes;
    if (Value rows = op.getRows())
      dynamicSizes.push_back(rows);
    return {gatherRows(t, cast<RankedTensorType>(op.getTile().getType()),
                       dynamicSizes, op.getQuery(), op.getFirstRow(),
                       packedRowCount(t, op.getQuery(), op.getLayout(), g),
                       [&](TileBuilder &inner, Value row, Value column) {
                         PackedRow at =
                             unpackRow(inner, row, op.getKvHead(), g);
                         return dims.order<Value>(op.getBatch(), at.head,
                                                  at.position, column);
                       })};
  }
};

struct LoadKVTileLowering : public TilePattern<LoadKVTileOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, LoadKVTileOp op) const override {
    auto type = cast<RankedTensorType>(op.getTile().getType());
    if (!op.isPaged())
      return {gatherRows(
          t, type, {}, op.getSource(), op.getFirstKey(), op.getKvLen(),
          [&](TileBuilder &, Value key, Value column) {
            return getLayoutDims(op.getLayout())
                .order<Value>(op.getBatch(), op.getKvHead(), key, column);
          })};
    int64_t pageSize = cast<MemRefType>(op.getSource().getType()).getDimSize(1);
    Value lastPage =
        t.apply(t.dim(0) - 1,
                {memref::DimOp::create(t.b, op.getSource(), 0).getResult()});
    return {gatherRows(
        t, type, {}, op.getSource(), op.getFirstKey(), op.getKvLen(),
        [&](TileBuilder &inner, Value key, Value column) {
          // The page, clamped into the pool: a bad entry reads a wrong
          // page, never memory outside the pool.
          ImplicitLocOpBuilder &b = inner.b;
          Value entry = inner.apply(inner.dim(0).floorDiv(pageSize), {key});
          Value page = arith::IndexCastOp::create(
              b, b.getIndexType(),
              memref::LoadOp::create(b, op.getBlockTable(),
                                     ValueRange{op.getBatch(), entry}));
          page = arith::MinSIOp::create(
              b, arith::MaxSIOp::create(b, page, inner.index(0)), lastPage);
          Value slot = inner.apply(inner.dim(0) % pageSize, {key});
          return SmallVector<Value, 4>{page, slot, op.getKvHead(), column};
        })};
  }
};

struct LoadSegmentLowering : public OpRewritePattern<LoadSegmentOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LoadSegmentOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto offset = [&](Value at) {
      return arith::IndexCastOp::create(
          b, b.getIndexType(),
          memref::LoadOp::create(b, op.getOffsets(), ValueRange{at}));
    };
    Value start = offset(op.getSequence());
    Value next = offset(arith::AddIOp::create(
        b, op.getSequence(), arith::ConstantIndexOp::create(b, 1)));
    rewriter.replaceOp(op, {start, arith::SubIOp::create(b, next, start)});
    return success();
  }
};

/// On the CPU a launch size is just its value.
struct LaunchSizeLowering : public OpRewritePattern<LaunchSizeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LaunchSizeOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, op.getValue());
    return success();
  }
};

struct LoadSinkTileLowering : public TilePattern<LoadSinkTileOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, LoadSinkTileOp op) const override {
    SmallVector<Value, 1> dynamicSizes;
    if (Value rows = op.getRows())
      dynamicSizes.push_back(rows);
    int64_t g = op.getGroupSize();
    auto generate = tensor::GenerateOp::create(
        t.b, cast<RankedTensorType>(op.getTile().getType()), dynamicSizes,
        [&](OpBuilder &nested, Location loc, ValueRange at) {
          ImplicitLocOpBuilder b(loc, nested);
          TileBuilder inner(b);
          AffineExpr d0 = inner.dim(0), d1 = inner.dim(1), d2 = inner.dim(2);
          Value head = inner.apply(d0 * g + (d1 + d2) % g,
                                   {op.getKvHead(), op.getFirstRow(), at[0]});
          tensor::YieldOp::create(
              b, memref::LoadOp::create(b, op.getSinks(), ValueRange{head})
                     .getResult());
        });
    return {generate.getResult()};
  }
};

//===----------------------------------------------------------------------===//
// Stores.
//===----------------------------------------------------------------------===//

/// Runs `body(tile row, packed row)` for each row of `tile` that exists
/// (packed row below `packed`), the rows of the block at `firstRow` of KV
/// head `kvHead`.
void forEachPackedRow(
    TileBuilder &t, Value tile, Value packed, Value firstRow, Value kvHead,
    int64_t groupSize,
    function_ref<void(TileBuilder &, Value row, PackedRow at)> body) {
  Value rows = emitRowsInBlock(t.b, t.rowsOf(tile), packed, firstRow);
  t.forEach(t.index(0), rows, [&](ImplicitLocOpBuilder &b, Value row) {
    TileBuilder inner(b);
    Value packedRow = inner.apply(inner.dim(0) + inner.dim(1), {firstRow, row});
    body(inner, row, unpackRow(inner, packedRow, kvHead, groupSize));
  });
}

/// Stores row `row` of the f32 `tile`, rounded to `memref`'s element type,
/// at `where` + (column) in `memref`.
void storeTileRow(TileBuilder &t, Value tile, Value row, Value memref,
                  function_ref<SmallVector<Value>(Value column)> where) {
  auto type = cast<RankedTensorType>(tile.getType());
  Type elementType = cast<MemRefType>(memref.getType()).getElementType();
  t.forEach(
      t.index(0), t.index(type.getDimSize(1)),
      [&](ImplicitLocOpBuilder &b, Value column) {
        Value x = tensor::ExtractOp::create(b, tile, ValueRange{row, column});
        memref::StoreOp::create(b, TileBuilder::fromF32(b, x, elementType),
                                memref, where(column));
      });
}

struct StoreOutputTileLowering : public TilePattern<StoreOutputTileOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t,
                           StoreOutputTileOp op) const override {
    int64_t g = op.getQHeads() / op.getKvHeads();
    LayoutDims dims = getLayoutDims(op.getLayout());
    forEachPackedRow(
        t, op.getTile(), packedRowCount(t, op.getOutput(), op.getLayout(), g),
        op.getFirstRow(), op.getKvHead(), g,
        [&](TileBuilder &inner, Value row, PackedRow at) {
          storeTileRow(inner, op.getTile(), row, op.getOutput(),
                       [&](Value column) {
                         return dims.order<Value>(op.getBatch(), at.head,
                                                  at.position, column);
                       });
        });
    return {};
  }
};

struct StorePartialTileLowering : public TilePattern<StorePartialTileOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t,
                           StorePartialTileOp op) const override {
    int64_t g = op.getGroupSize();
    // partial_out is [splits, B, Hq, Sq, Dv].
    Value seq = memref::DimOp::create(t.b, op.getPartialOut(), 3);
    forEachPackedRow(
        t, op.getTile(), t.apply(t.dim(0) * g, {seq}), op.getFirstRow(),
        op.getKvHead(), g, [&](TileBuilder &inner, Value row, PackedRow at) {
          SmallVector<Value> where = {op.getSplit(), op.getBatch(), at.head,
                                      at.position};
          memref::StoreOp::create(
              inner.b,
              tensor::ExtractOp::create(inner.b, op.getLse(), ValueRange{row}),
              op.getPartialLse(), where);
          storeTileRow(inner, op.getTile(), row, op.getPartialOut(),
                       [&](Value column) {
                         SmallVector<Value> element = where;
                         element.push_back(column);
                         return element;
                       });
        });
    return {};
  }
};

struct StoreLseTileLowering : public TilePattern<StoreLseTileOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, StoreLseTileOp op) const override {
    int64_t g = op.getGroupSize();
    // The output is [B, Hq, Sq].
    Value seq = memref::DimOp::create(t.b, op.getOutput(), 2);
    forEachPackedRow(
        t, op.getLse(), t.apply(t.dim(0) * g, {seq}), op.getFirstRow(),
        op.getKvHead(), g, [&](TileBuilder &inner, Value row, PackedRow at) {
          memref::StoreOp::create(
              inner.b,
              tensor::ExtractOp::create(inner.b, op.getLse(), ValueRange{row}),
              op.getOutput(), ValueRange{op.getBatch(), at.head, at.position});
        });
    return {};
  }
};

//===----------------------------------------------------------------------===//
// The online softmax.
//===----------------------------------------------------------------------===//

struct MaskScoresLowering : public TilePattern<MaskScoresOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, MaskScoresOp op) const override {
    auto type = cast<RankedTensorType>(op.getScores().getType());
    return {t.generic(
        {op.getScores()}, {t.empty(type)}, {t.identity2(), t.identity2()},
        {kParallel, kParallel}, [&](ImplicitLocOpBuilder &b, ValueRange args) {
          TileBuilder inner(b);
          Value row = linalg::IndexOp::create(b, 0);
          Value column = linalg::IndexOp::create(b, 1);
          Value position = inner.apply(
              (inner.dim(0) + inner.dim(1)).floorDiv(op.getGroupSize()),
              {op.getFirstRow(), row});
          Value key = inner.apply(inner.dim(0) + inner.dim(1),
                                  {op.getFirstKey(), column});
          KeyRange visible = emitVisibleKeys(b, op.getMask(), position,
                                             op.getOffset(), op.getKvLen());
          Value seen = arith::AndIOp::create(
              b,
              arith::CmpIOp::create(b, arith::CmpIPredicate::sle, visible.begin,
                                    key),
              arith::CmpIOp::create(b, arith::CmpIPredicate::slt, key,
                                    visible.end));
          return SmallVector<Value>{arith::SelectOp::create(
              b, seen, args[0], inner.f32Constant(-INFINITY))};
        })[0]};
  }
};

struct OnlineSoftmaxLowering : public TilePattern<OnlineSoftmaxOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, OnlineSoftmaxOp op) const override {
    auto scoresType = cast<RankedTensorType>(op.getScores().getType());
    auto rowType = cast<RankedTensorType>(op.getMax().getType());
    auto probabilitiesType =
        cast<RankedTensorType>(op.getProbabilities().getType());
    // The tile's row maxima (max ignores NaN, as the GPU's max.f32).
    Value tileMax =
        scoresType.getDimSize(1) % kMaxLanes == 0
            ? rowMaximaInVectors(t, op.getScores(), rowType)
            : t.generic({op.getScores()}, {t.filled(rowType, -INFINITY)},
                        {t.identity2(), t.rows2()}, {kParallel, kReduction},
                        [&](ImplicitLocOpBuilder &b, ValueRange args) {
                          return SmallVector<Value>{
                              arith::MaxNumFOp::create(b, args[1], args[0])};
                        })[0];
    // m' = max(m, tile max); u = m' or 0 where -inf; alpha = exp2(m - u).
    // m' is written over m (the running state stays in one buffer).
    ValueRange rowState = t.generic(
        {tileMax}, {op.getMax(), t.empty(rowType), t.empty(rowType)},
        {t.identity1(), t.identity1(), t.identity1(), t.identity1()},
        {kParallel}, [&](ImplicitLocOpBuilder &b, ValueRange args) {
          TileBuilder inner(b);
          Value oldMax = args[1];
          Value newMax = arith::MaxNumFOp::create(b, oldMax, args[0]);
          Value none =
              arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, newMax,
                                    inner.f32Constant(-INFINITY));
          Value use =
              arith::SelectOp::create(b, none, inner.f32Constant(0.0), newMax);
          Value alpha =
              math::Exp2Op::create(b, arith::SubFOp::create(b, oldMax, use));
          return SmallVector<Value>{newMax, use, alpha};
        });
    Value newMax = rowState[0], use = rowState[1], alpha = rowState[2];
    // P = exp2(S - u) in f32, its row sums, and P rounded.
    Value exponentials = t.generic(
        {op.getScores(), use}, {t.empty(scoresType)},
        {t.identity2(), t.rows2(), t.identity2()}, {kParallel, kParallel},
        [&](ImplicitLocOpBuilder &b, ValueRange args) {
          return SmallVector<Value>{math::Exp2Op::create(
              b, arith::SubFOp::create(b, args[0], args[1]))};
        })[0];
    Value tileSum = t.generic(
        {exponentials}, {t.filled(rowType, 0.0)}, {t.identity2(), t.rows2()},
        {kParallel, kReduction}, [&](ImplicitLocOpBuilder &b, ValueRange args) {
          return SmallVector<Value>{
              arith::AddFOp::create(b, args[1], args[0], t.reassociate())};
        })[0];
    Type elementType = probabilitiesType.getElementType();
    Value probabilities = exponentials;
    if (!elementType.isF32())
      probabilities =
          t.generic({exponentials}, {t.empty(probabilitiesType)},
                    {t.identity2(), t.identity2()}, {kParallel, kParallel},
                    [&](ImplicitLocOpBuilder &b, ValueRange args) {
                      return SmallVector<Value>{
                          TileBuilder::fromF32(b, args[0], elementType)};
                    })[0];
    // l' = alpha l + tile sum, over l.
    Value newSum =
        t.generic({alpha, tileSum}, {op.getSum()},
                  {t.identity1(), t.identity1(), t.identity1()}, {kParallel},
                  [&](ImplicitLocOpBuilder &b, ValueRange args) {
                    return SmallVector<Value>{
                        math::FmaOp::create(b, args[2], args[0], args[1])};
                  })[0];
    return {probabilities, newMax, newSum, alpha};
  }

  /// Lanes of the vectors of rowMaximaInVectors.
  static constexpr int64_t kMaxLanes = 16;

  /// The row maxima of `scores` (its columns a multiple of kMaxLanes), a
  /// row at a time: the lane-wise maximum of the row's vectors, then the
  /// maximum of its lanes by halving. (As a linalg reduction the maximum is
  /// a chain of scalar compares through memory, and vector.reduction
  /// <maxnumf> lowers to a chain of 16 compares.)
  static Value rowMaximaInVectors(TileBuilder &t, Value scores,
                                  RankedTensorType rowType) {
    int64_t columns = cast<RankedTensorType>(scores.getType()).getDimSize(1);
    auto vectorType = VectorType::get({kMaxLanes}, t.f32);
    Value lowest = TileBuilder::f32Like(t.b, vectorType, -INFINITY);
    return t.iterate(
        t.index(0), t.rowsOf(scores), t.index(1), t.empty(rowType),
        [&](ImplicitLocOpBuilder &b, Value row, ValueRange maxima) {
          TileBuilder rt(b);
          Value lanes = rt.reduce(
              rt.index(0), rt.index(columns / kMaxLanes), lowest,
              [&](ImplicitLocOpBuilder &b, Value step, Value acc) {
                TileBuilder ct(b);
                Value column = ct.apply(ct.dim(0) * kMaxLanes, {step});
                return arith::MaxNumFOp::create(
                           b, acc, ct.readF32(scores, {row, column}, kMaxLanes))
                    .getResult();
              });
          for (int64_t width = kMaxLanes / 2; width >= 1; width /= 2) {
            auto half = [&](int64_t offset) -> Value {
              return vector::ExtractStridedSliceOp::create(
                  b, lanes, ArrayRef<int64_t>{offset}, ArrayRef<int64_t>{width},
                  ArrayRef<int64_t>{1});
            };
            lanes = arith::MaxNumFOp::create(b, half(0), half(width));
          }
          Value maximum =
              vector::ExtractOp::create(b, lanes, ArrayRef<int64_t>{0});
          return SmallVector<Value>{
              tensor::InsertOp::create(b, maximum, maxima[0], ValueRange{row})
                  .getResult()};
        })[0];
  }
};

struct FinalizeLowering : public TilePattern<FinalizeOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, FinalizeOp op) const override {
    auto type = cast<RankedTensorType>(op.getAccumulator().getType());
    auto rowType = cast<RankedTensorType>(op.getMax().getType());
    Value sinks = op.getSinks();
    SmallVector<Value, 3> inputs = {op.getMax(), op.getSum()};
    if (sinks)
      inputs.push_back(sinks);
    SmallVector<AffineMap> maps(inputs.size() + 2, t.identity1());
    // Per row: the factor of A (alpha / l', 0 where l' = 0) and
    // lse = ln(2) (m' + log2 l') (-inf where l' = 0); without a sink
    // m' = m, l' = l and alpha = 1.
    ValueRange rowResults = t.generic(
        inputs, {t.empty(rowType), t.empty(rowType)}, maps, {kParallel},
        [&](ImplicitLocOpBuilder &b, ValueRange args) {
          TileBuilder inner(b);
          Value max = args[0], sum = args[1], alpha;
          if (sinks) {
            // The sink is one more key, of score log2(e) sink, with no value.
            Value sink =
                arith::MulFOp::create(b, args[2], inner.f32Constant(M_LOG2E));
            Value joined = arith::MaxNumFOp::create(b, max, sink);
            Value none =
                arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, joined,
                                      inner.f32Constant(-INFINITY));
            Value use = arith::SelectOp::create(b, none, inner.f32Constant(0.0),
                                                joined);
            alpha = math::Exp2Op::create(b, arith::SubFOp::create(b, max, use));
            sum = math::FmaOp::create(
                b, alpha, sum,
                math::Exp2Op::create(b, arith::SubFOp::create(b, sink, use)));
            max = use;
          }
          Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, sum,
                                              inner.f32Constant(0.0));
          Value numerator = alpha ? alpha : inner.f32Constant(1.0);
          Value factor =
              arith::SelectOp::create(b, empty, inner.f32Constant(0.0),
                                      arith::DivFOp::create(b, numerator, sum));
          Value natural = arith::MulFOp::create(
              b, arith::AddFOp::create(b, max, math::Log2Op::create(b, sum)),
              inner.f32Constant(M_LN2));
          Value lse = arith::SelectOp::create(
              b, empty, inner.f32Constant(-INFINITY), natural);
          return SmallVector<Value>{factor, lse};
        });
    // O = A * factor.
    Value output = t.generic(
        {op.getAccumulator(), rowResults[0]}, {t.empty(type)},
        {t.identity2(), t.rows2(), t.identity2()}, {kParallel, kParallel},
        [&](ImplicitLocOpBuilder &b, ValueRange args) {
          return SmallVector<Value>{arith::MulFOp::create(b, args[0], args[1])};
        })[0];
    return {output, rowResults[1]};
  }
};

struct ConvertGQATilesToLinalgPass
    : public gqa::impl::ConvertGQATilesToLinalgBase<
          ConvertGQATilesToLinalgPass> {
  using Base::Base;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateGQATileToLinalgPatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    WalkResult remaining = getOperation()->walk([](Operation *op) {
      if (isa<GQADialect>(op->getDialect())) {
        op->emitOpError() << "was not lowered by convert-gqa-tiles-to-linalg"
                          << (isa<AttentionOp>(op)
                                  ? "; run gqa-select-schedule and "
                                    "gqa-distribute first"
                                  : "");
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (remaining.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace

void mlir::gqa::populateGQATileToLinalgPatterns(RewritePatternSet &patterns) {
  patterns
      .add<LoadQueryTileLowering, LoadKVTileLowering, LoadSegmentLowering,
           LaunchSizeLowering, LoadSinkTileLowering, StoreOutputTileLowering,
           StorePartialTileLowering, StoreLseTileLowering, MaskScoresLowering,
           OnlineSoftmaxLowering, FinalizeLowering>(patterns.getContext());
  populateContractionPatterns(patterns);
  populateMergePatterns(patterns);
}
