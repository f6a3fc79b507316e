//===- TileAttention.cpp - gqa.attention to an online-softmax loop nest ---===//
//
// Rewrites bufferized gqa.attention ops into a target-neutral loop nest:
// FlashAttention's online softmax over KV tiles, with the KV head as a loop
// and the query heads of its group derived from it, so that each K/V tile is
// read once for all query heads that share it.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"
#include "gqa/Dialect/GQA/Utils/MaskUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <cmath>

namespace mlir::gqa {
#define GEN_PASS_DEF_GQATILE
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;

namespace {

//===----------------------------------------------------------------------===//
// Structured control flow on an implicit-location builder.
//===----------------------------------------------------------------------===//

Value indexConstant(ImplicitLocOpBuilder &b, int64_t value) {
  return arith::ConstantIndexOp::create(b, value);
}

Value f32Constant(ImplicitLocOpBuilder &b, double value) {
  return arith::ConstantFloatOp::create(b, b.getF32Type(),
                                        APFloat(static_cast<float>(value)));
}

/// Emits `scf.for %iv = lower to upper step step` and `body(%iv)` inside it.
void emitFor(ImplicitLocOpBuilder &b, Value lower, Value upper, Value step,
             function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(b, lower, upper, step);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  body(loop.getInductionVar());
}

/// Emits a unit-step loop from `lower` to `upper` that folds `body(%iv, acc)`
/// over `init`, and returns the result.
Value emitReduce(ImplicitLocOpBuilder &b, Value lower, Value upper, Value init,
                 function_ref<Value(Value, Value)> body) {
  auto loop = scf::ForOp::create(b, lower, upper, indexConstant(b, 1),
                                 ValueRange{init});
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value next = body(loop.getInductionVar(), loop.getRegionIterArgs()[0]);
    scf::YieldOp::create(b, next);
  }
  return loop.getResult(0);
}

/// Emits `scf.if %condition` with `then()` as its only branch.
void emitIf(ImplicitLocOpBuilder &b, Value condition,
            function_ref<void()> then) {
  auto ifOp = scf::IfOp::create(b, condition, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
  then();
}

//===----------------------------------------------------------------------===//
// The loop nest.
//===----------------------------------------------------------------------===//

/// Emits the tiled online-softmax loop nest of one bufferized attention op in
/// front of it. Scratch buffers (f32) are allocated once around the nest:
///
///   queries  [g, tileQ, D]   the query tile of every head of the group,
///                            pre-multiplied by scale * log2(e)
///   keys     [tileKV, D]     one K tile, shared by the g query heads
///   values   [tileKV, Dv]    one V tile, likewise
///   scores   [tileKV]        one row's scores, then probabilities
///   rowMax, rowSum [g, tileQ]       the running max (log2 domain) and sum
///   accumulator [g, tileQ, Dv]      the running, unnormalised output
class AttentionLoopNest {
public:
  AttentionLoopNest(ImplicitLocOpBuilder &b, AttentionOp op,
                    AttentionTileSizes tiles)
      : b(b), op(op), dims(op.getLayoutDims()), mask(op.getMask()),
        groupSize(op.getGroupSize()), headDim(op.getHeadDim()),
        headDimV(op.getHeadDimV()), tileQ(tiles.queryRows), tileKV(tiles.keys),
        elementType(op.getElementType()) {}

  void emit() {
    f32 = b.getF32Type();
    zero = indexConstant(b, 0);
    one = indexConstant(b, 1);
    Value batch = memref::DimOp::create(b, op.getQuery(), dims.batch);
    Value seqQ = memref::DimOp::create(b, op.getQuery(), dims.seq);
    // A paged sequence is its block table row of pages long.
    Value seqKV =
        op.isPaged()
            ? arith::MulIOp::create(
                  b, memref::DimOp::create(b, op.getBlockTable(), 1),
                  indexConstant(b, op.getPageSize()))
                  .getResult()
            : memref::DimOp::create(b, op.getKey(), dims.seq).getResult();

    queries = allocate({groupSize, tileQ, headDim});
    keys = allocate({tileKV, headDim});
    values = allocate({tileKV, headDimV});
    scores = allocate({tileKV});
    rowMax = allocate({groupSize, tileQ});
    rowSum = allocate({groupSize, tileQ});
    accumulator = allocate({groupSize, tileQ, headDimV});

    emitFor(b, zero, batch, one, [&](Value batchIndex) {
      Value kvLen = emitKVLength(batchIndex, seqKV);
      // Bottom-right alignment: the queries are the last Sq tokens.
      Value offset = arith::SubIOp::create(b, kvLen, seqQ);
      emitFor(b, zero, indexConstant(b, op.getKvHeads()), one,
              [&](Value kvHead) {
                emitFor(b, zero, seqQ, indexConstant(b, tileQ),
                        [&](Value firstRow) {
                          emitQueryTile(batchIndex, kvHead, firstRow, seqQ,
                                        offset, kvLen);
                        });
              });
    });

    for (Value buffer :
         {queries, keys, values, scores, rowMax, rowSum, accumulator})
      memref::DeallocOp::create(b, buffer);
  }

private:
  Value allocate(ArrayRef<int64_t> shape) {
    return memref::AllocOp::create(b, MemRefType::get(shape, f32));
  }

  /// The valid keys of a sequence: its `kv_lens` entry clamped to [0, Skv]
  /// (so that no lowering can read out of bounds), or Skv.
  Value emitKVLength(Value batchIndex, Value seqKV) {
    Value kvLens = op.getKvLens();
    if (!kvLens)
      return seqKV;
    Value length = memref::LoadOp::create(b, kvLens, ValueRange{batchIndex});
    if (!length.getType().isIndex())
      length = arith::IndexCastOp::create(b, b.getIndexType(), length);
    length = arith::MaxSIOp::create(b, length, zero);
    return arith::MinSIOp::create(b, length, seqKV);
  }

  /// The query head of member `member` of the group of `kvHead`.
  Value queryHeadOf(Value kvHead, Value member) {
    Value first = arith::MulIOp::create(b, kvHead, indexConstant(b, groupSize));
    return arith::AddIOp::create(b, first, member);
  }

  /// Loads one element of `tensor` as f32.
  Value loadAsF32(Value tensor, ValueRange indices) {
    Value element = memref::LoadOp::create(b, tensor, indices);
    if (elementType == f32)
      return element;
    return arith::ExtFOp::create(b, f32, element);
  }

  void emitQueryTile(Value batchIndex, Value kvHead, Value firstRow, Value seqQ,
                     Value offset, Value kvLen) {
    Value rows = arith::MinSIOp::create(
        b, indexConstant(b, tileQ), arith::SubIOp::create(b, seqQ, firstRow));
    Value groupEnd = indexConstant(b, groupSize);
    Value headDimEnd = indexConstant(b, headDim);
    // Stage the g x rows queries that share this KV head, scaled into the
    // log2 domain, and reset their running state.
    Value scaleLog2e = f32Constant(b, op.getScaleOrDefault() * M_LOG2E);
    Value negInf = f32Constant(b, -INFINITY);
    Value zeroF = f32Constant(b, 0.0);
    emitFor(b, zero, groupEnd, one, [&](Value member) {
      Value head = queryHeadOf(kvHead, member);
      emitFor(b, zero, rows, one, [&](Value row) {
        Value position = arith::AddIOp::create(b, firstRow, row);
        emitFor(b, zero, headDimEnd, one, [&](Value d) {
          Value q = loadAsF32(op.getQuery(),
                              dims.order(batchIndex, head, position, d));
          memref::StoreOp::create(b, arith::MulFOp::create(b, q, scaleLog2e),
                                  queries, ValueRange{member, row, d});
        });
        memref::StoreOp::create(b, negInf, rowMax, ValueRange{member, row});
        memref::StoreOp::create(b, zeroF, rowSum, ValueRange{member, row});
        emitFor(b, zero, indexConstant(b, headDimV), one, [&](Value e) {
          memref::StoreOp::create(b, zeroF, accumulator,
                                  ValueRange{member, row, e});
        });
      });
    });

    // Visit only the KV tiles that some row of this query tile sees: from
    // the first key of the first row to the last key of the last row.
    Value lastRow =
        arith::SubIOp::create(b, arith::AddIOp::create(b, firstRow, rows), one);
    Value tileBegin = emitVisibleKeys(b, mask, firstRow, offset, kvLen).begin;
    Value tileEnd = emitVisibleKeys(b, mask, lastRow, offset, kvLen).end;
    emitFor(b, tileBegin, tileEnd, indexConstant(b, tileKV), [&](Value key0) {
      Value columns = arith::MinSIOp::create(
          b, indexConstant(b, tileKV), arith::SubIOp::create(b, tileEnd, key0));
      emitKVTileLoad(batchIndex, kvHead, key0, columns);
      emitFor(b, zero, groupEnd, one, [&](Value member) {
        emitFor(b, zero, rows, one, [&](Value row) {
          Value position = arith::AddIOp::create(b, firstRow, row);
          emitRowUpdate(member, row, position, key0, columns, offset, kvLen);
        });
      });
    });

    emitOutputTile(batchIndex, kvHead, firstRow, rows);
  }

  /// Reads keys [key0, key0 + columns) of K and V for `kvHead` into the f32
  /// tiles: once, for every query head of the group.
  void emitKVTileLoad(Value batchIndex, Value kvHead, Value key0,
                      Value columns) {
    auto stage = [&](Value tensor, Value tile, int64_t width) {
      emitFor(b, zero, columns, one, [&](Value column) {
        Value position = arith::AddIOp::create(b, key0, column);
        SmallVector<Value, 4> at = emitKVIndices(batchIndex, kvHead, position);
        emitFor(b, zero, indexConstant(b, width), one, [&](Value d) {
          at[op.getKVLayoutDims().headDim] = d;
          memref::StoreOp::create(b, loadAsF32(tensor, at), tile,
                                  ValueRange{column, d});
        });
      });
    };
    stage(op.getKey(), keys, headDim);
    stage(op.getValue(), values, headDimV);
  }

  /// The indices of key `position` of `kvHead` in K and V, head dim 0: in
  /// the layout, or, when paged, (block_table[b, position / page size],
  /// position % page size, kvHead, 0) with the page clamped into the pool
  /// (a bad table entry reads a wrong page, never outside the pool).
  SmallVector<Value, 4> emitKVIndices(Value batchIndex, Value kvHead,
                                      Value position) {
    if (!op.isPaged())
      return dims.order(batchIndex, kvHead, position, zero);
    Value pageSize = indexConstant(b, op.getPageSize());
    Value entry = arith::DivUIOp::create(b, position, pageSize);
    Value page = arith::IndexCastOp::create(
        b, b.getIndexType(),
        memref::LoadOp::create(b, op.getBlockTable(),
                               ValueRange{batchIndex, entry}));
    Value lastPage =
        arith::SubIOp::create(b, memref::DimOp::create(b, op.getKey(), 0), one);
    page = arith::MinSIOp::create(b, arith::MaxSIOp::create(b, page, zero),
                                  lastPage);
    Value slot = arith::RemUIOp::create(b, position, pageSize);
    return {page, slot, kvHead, zero};
  }

  /// One online-softmax step of one query row against the keys it sees in
  /// the current KV tile.
  void emitRowUpdate(Value member, Value row, Value position, Value key0,
                     Value columns, Value offset, Value kvLen) {
    KeyRange visible = emitVisibleKeys(b, mask, position, offset, kvLen);
    Value columnBegin = arith::MaxSIOp::create(
        b, arith::SubIOp::create(b, visible.begin, key0), zero);
    Value columnEnd = arith::MinSIOp::create(
        b, arith::SubIOp::create(b, visible.end, key0), columns);
    Value seesAny = arith::CmpIOp::create(b, arith::CmpIPredicate::slt,
                                          columnBegin, columnEnd);
    emitIf(b, seesAny, [&] {
      SmallVector<Value, 2> state{member, row};
      // Scores in the log2 domain, and their maximum.
      Value tileMax = emitReduce(
          b, columnBegin, columnEnd, f32Constant(b, -INFINITY),
          [&](Value column, Value runningMax) {
            Value score = emitScore(member, row, column);
            memref::StoreOp::create(b, score, scores, ValueRange{column});
            return arith::MaximumFOp::create(b, runningMax, score);
          });
      Value oldMax = memref::LoadOp::create(b, rowMax, state);
      Value newMax = arith::MaximumFOp::create(b, oldMax, tileMax);
      Value rescale =
          math::Exp2Op::create(b, arith::SubFOp::create(b, oldMax, newMax));
      // Probabilities, kept in place of the scores, and their sum.
      Value tileSum = emitReduce(
          b, columnBegin, columnEnd, f32Constant(b, 0.0),
          [&](Value column, Value runningSum) {
            Value score = memref::LoadOp::create(b, scores, ValueRange{column});
            Value probability = math::Exp2Op::create(
                b, arith::SubFOp::create(b, score, newMax));
            memref::StoreOp::create(b, probability, scores, ValueRange{column});
            return arith::AddFOp::create(b, runningSum, probability);
          });
      Value oldSum = memref::LoadOp::create(b, rowSum, state);
      memref::StoreOp::create(
          b,
          arith::AddFOp::create(b, arith::MulFOp::create(b, oldSum, rescale),
                                tileSum),
          rowSum, state);
      memref::StoreOp::create(b, newMax, rowMax, state);
      // acc = acc * rescale + P V.
      Value headDimVEnd = indexConstant(b, headDimV);
      emitFor(b, zero, headDimVEnd, one, [&](Value e) {
        SmallVector<Value, 3> at{member, row, e};
        Value acc = memref::LoadOp::create(b, accumulator, at);
        memref::StoreOp::create(b, arith::MulFOp::create(b, acc, rescale),
                                accumulator, at);
      });
      emitFor(b, columnBegin, columnEnd, one, [&](Value column) {
        Value probability =
            memref::LoadOp::create(b, scores, ValueRange{column});
        emitFor(b, zero, headDimVEnd, one, [&](Value e) {
          SmallVector<Value, 3> at{member, row, e};
          Value v = memref::LoadOp::create(b, values, ValueRange{column, e});
          Value acc = memref::LoadOp::create(b, accumulator, at);
          Value sum = arith::AddFOp::create(
              b, acc, arith::MulFOp::create(b, probability, v));
          memref::StoreOp::create(b, sum, accumulator, at);
        });
      });
    });
  }

  /// The score of (member, row) against key `column` of the tile, in the
  /// log2 domain: <q, k> with the scale folded into q, then the softcap.
  Value emitScore(Value member, Value row, Value column) {
    auto reassociate = arith::FastMathFlagsAttr::get(
        b.getContext(),
        arith::FastMathFlags::reassoc | arith::FastMathFlags::contract);
    Value dot = emitReduce(
        b, zero, indexConstant(b, headDim), f32Constant(b, 0.0),
        [&](Value d, Value partial) {
          Value q =
              memref::LoadOp::create(b, queries, ValueRange{member, row, d});
          Value k = memref::LoadOp::create(b, keys, ValueRange{column, d});
          Value product = arith::MulFOp::create(b, q, k, reassociate);
          return arith::AddFOp::create(b, partial, product, reassociate);
        });
    std::optional<APFloat> softcap = op.getSoftcap();
    if (!softcap)
      return dot;
    // c * tanh(s / c) on the scaled score s; in the log2 domain the cap is
    // c * log2(e).
    Value cap = f32Constant(b, softcap->convertToDouble() * M_LOG2E);
    Value capped = math::TanhOp::create(b, arith::DivFOp::create(b, dot, cap));
    return arith::MulFOp::create(b, cap, capped);
  }

  /// O = acc / l for each row of the tile, 0 where the row saw no key.
  void emitOutputTile(Value batchIndex, Value kvHead, Value firstRow,
                      Value rows) {
    emitFor(b, zero, indexConstant(b, groupSize), one, [&](Value member) {
      Value head = queryHeadOf(kvHead, member);
      emitFor(b, zero, rows, one, [&](Value row) {
        Value position = arith::AddIOp::create(b, firstRow, row);
        Value sum = memref::LoadOp::create(b, rowSum, ValueRange{member, row});
        Value zeroF = f32Constant(b, 0.0);
        Value sawKeys =
            arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, sum, zeroF);
        Value inverse = arith::SelectOp::create(
            b, sawKeys, arith::DivFOp::create(b, f32Constant(b, 1.0), sum),
            zeroF);
        emitFor(b, zero, indexConstant(b, headDimV), one, [&](Value e) {
          Value acc = memref::LoadOp::create(b, accumulator,
                                             ValueRange{member, row, e});
          Value result = arith::MulFOp::create(b, acc, inverse);
          if (elementType != f32)
            result = arith::TruncFOp::create(b, elementType, result);
          memref::StoreOp::create(b, result, op.getInit(),
                                  dims.order(batchIndex, head, position, e));
        });
      });
    });
  }

  ImplicitLocOpBuilder &b;
  AttentionOp op;
  LayoutDims dims;
  MaskAttr mask;
  int64_t groupSize, headDim, headDimV, tileQ, tileKV;
  Type elementType;
  Type f32;
  Value zero, one;
  Value queries, keys, values, scores, rowMax, rowSum, accumulator;
};

/// Rewrites a bufferized gqa.attention into the tiled loop nest.
struct TileAttentionPattern : public OpRewritePattern<AttentionOp> {
  TileAttentionPattern(MLIRContext *context, AttentionTileSizes tiles)
      : OpRewritePattern(context), tiles(tiles) {}

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "expected memref operands");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    b.setInsertionPoint(op);
    AttentionLoopNest(b, op, tiles).emit();
    rewriter.eraseOp(op);
    return success();
  }

  AttentionTileSizes tiles;
};

struct GQATilePass : public gqa::impl::GQATileBase<GQATilePass> {
  using Base::Base;

  void runOnOperation() override {
    if (tileQ < 1 || tileKV < 1) {
      getOperation()->emitError()
          << "gqa-tile: tile sizes must be positive, got tile-q="
          << static_cast<int64_t>(tileQ)
          << " tile-kv=" << static_cast<int64_t>(tileKV);
      return signalPassFailure();
    }
    RewritePatternSet patterns(&getContext());
    populateAttentionTilingPatterns(patterns, {tileQ, tileKV});
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    // Whatever is left is on tensors: bufferize first.
    WalkResult remaining = getOperation()->walk([](AttentionOp op) {
      op.emitError() << "gqa-tile expects gqa.attention on memrefs; run "
                        "one-shot-bufferize first";
      return WalkResult::interrupt();
    });
    if (remaining.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace

void mlir::gqa::populateAttentionTilingPatterns(RewritePatternSet &patterns,
                                                AttentionTileSizes tileSizes) {
  patterns.add<TileAttentionPattern>(patterns.getContext(), tileSizes);
}
