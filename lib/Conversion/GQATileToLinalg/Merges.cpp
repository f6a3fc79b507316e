//===- Merges.cpp - The merges by log-sum-exp for the CPU -----------------===//
//
// gqa.combine_splits (the split-KV combine) and gqa.merge_rows
// (gqa.merge_states) as scf loops over the rows of their block: each row is
// the weighted mean of its parts' rows,
//
//   out = sum_p w_p O_p / sum_p w_p,  w_p = exp(lse_p - max lse),
//
// a part with lse = -inf weighing 0 and a row no part saw written as 0; a
// head's sink logit (combine) joins the maximum and the denominator; the
// LSE, when written, is max + log(sum of the weights) (-inf when 0).
//
//===----------------------------------------------------------------------===//

#include "TileBuilder.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Utils/BlockUtils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::tile_lowering;

namespace {

/// What a merge reads of row (head, position) of its batch entry: `count`
/// parts, part `part`'s log-sum-exp and its value at `column`.
struct MergeParts {
  Value count;
  function_ref<Value(ImplicitLocOpBuilder &, Value part, Value head,
                     Value position)>
      lse;
  function_ref<Value(ImplicitLocOpBuilder &, Value part, Value head,
                     Value position, Value column)>
      value;
  /// The f32 sink logits [H], or null.
  Value sinks;
};

/// Merges the rows [firstRow, firstRow + rows) of the `heads * seq` rows
/// (head-major) of batch entry `batch` into `output` (in `layout`) and, when
/// given, `lse` ([B, H, S]).
void emitMergedRows(TileBuilder &t, const MergeParts &parts, Value firstRow,
                    int64_t rows, int64_t heads, Value seq, Value batch,
                    int64_t headDimV, Value output, Layout layout, Value lse) {
  Type elementType = cast<MemRefType>(output.getType()).getElementType();
  LayoutDims dims = getLayoutDims(layout);
  Value total = t.apply(t.dim(0) * heads, {seq});
  Value count = emitRowsInBlock(t.b, t.index(rows), total, firstRow);
  t.forEach(t.index(0), count, [&](ImplicitLocOpBuilder &b, Value row) {
    TileBuilder inner(b);
    Value flat = inner.apply(inner.dim(0) + inner.dim(1), {firstRow, row});
    Value head = arith::DivUIOp::create(b, flat, seq);
    Value position = arith::RemUIOp::create(b, flat, seq);
    Value zero = inner.index(0);
    Value maximum =
        inner.reduce(zero, parts.count, inner.f32Constant(-INFINITY),
                     [&](ImplicitLocOpBuilder &b, Value part, Value acc) {
                       return arith::MaxNumFOp::create(
                                  b, acc, parts.lse(b, part, head, position))
                           .getResult();
                     });
    // The head's sink joins the maximum and the weights.
    Value sink;
    if (parts.sinks) {
      sink = memref::LoadOp::create(b, parts.sinks, ValueRange{head});
      maximum = arith::MaxNumFOp::create(b, maximum, sink);
    }
    // Every part -inf: weights exp(-inf - 0) = 0 and the row is 0.
    Value none = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, maximum,
                                       inner.f32Constant(-INFINITY));
    maximum = arith::SelectOp::create(b, none, inner.f32Constant(0.0), maximum);
    auto weightOf = [&](ImplicitLocOpBuilder &b, Value part) -> Value {
      return math::ExpOp::create(
          b, arith::SubFOp::create(b, parts.lse(b, part, head, position),
                                   maximum));
    };
    Value weights = inner.reduce(
        zero, parts.count,
        sink ? math::ExpOp::create(b, arith::SubFOp::create(b, sink, maximum))
                   .getResult()
             : inner.f32Constant(0.0),
        [&](ImplicitLocOpBuilder &b, Value part, Value acc) {
          return arith::AddFOp::create(b, acc, weightOf(b, part)).getResult();
        });
    Value isEmpty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, weights,
                                          inner.f32Constant(0.0));
    Value inverse = arith::SelectOp::create(
        b, isEmpty, inner.f32Constant(0.0),
        arith::DivFOp::create(b, inner.f32Constant(1.0), weights));
    // Every value of the row before the LSE is written (`output` may be
    // one of the parts; `lse` is none of theirs).
    inner.forEach(
        zero, inner.index(headDimV),
        [&](ImplicitLocOpBuilder &b, Value column) {
          TileBuilder columnBuilder(b);
          Value sum = columnBuilder.reduce(
              columnBuilder.index(0), parts.count,
              columnBuilder.f32Constant(0.0),
              [&](ImplicitLocOpBuilder &b, Value part, Value acc) {
                Value value = TileBuilder::toF32(
                    b, parts.value(b, part, head, position, column));
                return math::FmaOp::create(b, weightOf(b, part), value, acc)
                    .getResult();
              });
          Value result = TileBuilder::fromF32(
              b, arith::MulFOp::create(b, sum, inverse), elementType);
          memref::StoreOp::create(b, result, output,
                                  dims.order(batch, head, position, column));
        });
    if (lse) {
      Value merged =
          arith::AddFOp::create(b, maximum, math::LogOp::create(b, weights));
      memref::StoreOp::create(
          b,
          arith::SelectOp::create(b, isEmpty, inner.f32Constant(-INFINITY),
                                  merged),
          lse, ValueRange{batch, head, position});
    }
  });
}

struct CombineSplitsLowering : public TilePattern<CombineSplitsOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, CombineSplitsOp op) const override {
    // partial_out is [splits, B, Hq, Sq, Dv], partial_lse [splits, B, Hq, Sq].
    auto outType = cast<MemRefType>(op.getPartialOut().getType());
    Value batch = op.getBatch();
    MergeParts parts;
    parts.count = op.getSplits();
    auto lse = [&](ImplicitLocOpBuilder &b, Value split, Value head,
                   Value position) -> Value {
      return memref::LoadOp::create(b, op.getPartialLse(),
                                    ValueRange{split, batch, head, position});
    };
    auto value = [&](ImplicitLocOpBuilder &b, Value split, Value head,
                     Value position, Value column) -> Value {
      return memref::LoadOp::create(
          b, op.getPartialOut(),
          ValueRange{split, batch, head, position, column});
    };
    parts.lse = lse;
    parts.value = value;
    parts.sinks = op.getSinks();
    emitMergedRows(
        t, parts, op.getFirstRow(), op.getRows(), outType.getDimSize(2),
        memref::DimOp::create(t.b, op.getPartialOut(), 3), batch,
        outType.getDimSize(4), op.getOutput(), op.getLayout(), op.getLse());
    return {};
  }
};

struct MergeRowsLowering : public TilePattern<MergeRowsOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, MergeRowsOp op) const override {
    // Two parts: out_a/lse_a and out_b/lse_b, lse [B, H, S].
    auto outType = cast<MemRefType>(op.getOutput().getType());
    auto lseType = cast<MemRefType>(op.getLse().getType());
    LayoutDims dims = getLayoutDims(op.getLayout());
    Value batch = op.getBatch();
    auto isFirst = [](ImplicitLocOpBuilder &b, Value part) -> Value {
      return arith::CmpIOp::create(
          b, arith::CmpIPredicate::eq, part,
          arith::ConstantIndexOp::create(b, 0).getResult());
    };
    auto lse = [&](ImplicitLocOpBuilder &b, Value part, Value head,
                   Value position) -> Value {
      ValueRange at{batch, head, position};
      return arith::SelectOp::create(
          b, isFirst(b, part), memref::LoadOp::create(b, op.getLseA(), at),
          memref::LoadOp::create(b, op.getLseB(), at));
    };
    auto value = [&](ImplicitLocOpBuilder &b, Value part, Value head,
                     Value position, Value column) -> Value {
      SmallVector<Value, 4> at = dims.order(batch, head, position, column);
      return arith::SelectOp::create(
          b, isFirst(b, part), memref::LoadOp::create(b, op.getOutA(), at),
          memref::LoadOp::create(b, op.getOutB(), at));
    };
    MergeParts parts;
    parts.count = t.index(2);
    parts.lse = lse;
    parts.value = value;
    emitMergedRows(t, parts, op.getFirstRow(), op.getRows(),
                   lseType.getDimSize(1),
                   memref::DimOp::create(t.b, op.getLse(), 2), batch,
                   outType.getDimSize(dims.headDim), op.getOutput(),
                   op.getLayout(), op.getLse());
    return {};
  }
};

} // namespace

void mlir::gqa::tile_lowering::populateMergePatterns(
    RewritePatternSet &patterns) {
  patterns.add<CombineSplitsLowering, MergeRowsLowering>(patterns.getContext());
}
