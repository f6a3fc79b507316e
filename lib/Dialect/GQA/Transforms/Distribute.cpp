//===- Distribute.cpp - gqa.attention to its tiled form -------------------===//
//
// Rewrites a bufferized, scheduled gqa.attention into blocks of tile-level
// ops: the grid, the packing of (query position, group head) rows, the KV
// tiles each block visits and the split-KV partition are computed here, once,
// for every target.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"
#include "gqa/Dialect/GQA/Utils/BlockUtils.h"
#include "gqa/Dialect/GQA/Utils/IndexUtils.h"
#include "gqa/Dialect/GQA/Utils/MaskUtils.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <cmath>

namespace mlir::gqa {
#define GEN_PASS_DEF_GQADISTRIBUTE
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// `source` (of sizes `sizes`) with a unit dimension in front, a batch of
/// one: `reassociation` groups it with the first.
Value emitBatchOfOne(ImplicitLocOpBuilder &b, Value source,
                     ArrayRef<OpFoldResult> sizes,
                     ArrayRef<ReassociationIndices> reassociation) {
  SmallVector<int64_t> shape = {1};
  SmallVector<OpFoldResult> outputShape = {b.getIndexAttr(1)};
  for (OpFoldResult size : sizes) {
    std::optional<int64_t> known = getConstantIntValue(size);
    shape.push_back(known ? *known : ShapedType::kDynamic);
    outputShape.push_back(size);
  }
  FailureOr<MemRefType> type = memref::ExpandShapeOp::computeExpandedType(
      cast<MemRefType>(source.getType()), shape, reassociation);
  assert(succeeded(type) && "a unit dimension always expands");
  return memref::ExpandShapeOp::create(b, *type, source, reassociation,
                                       outputShape);
}

/// The grid mapping of a forall of `rank` blocks: x, then y, then z.
SmallVector<Attribute> getGridMapping(MLIRContext *context, int64_t rank) {
  SmallVector<Attribute> mapping;
  for (gpu::MappingId id :
       {gpu::MappingId::DimX, gpu::MappingId::DimY, gpu::MappingId::DimZ})
    mapping.push_back(gpu::GPUBlockMappingAttr::get(context, id));
  mapping.resize(rank);
  return mapping;
}

/// Builds the tiled form of one attention op in front of it.
class AttentionDistribution : public IndexBuilder {
public:
  AttentionDistribution(ImplicitLocOpBuilder &b, AttentionOp op)
      : IndexBuilder(b), op(op), schedule(op.getScheduleAttr()),
        dims(op.getLayoutDims()), groupSize(op.getGroupSize()),
        blockM(schedule.getBlockM()), blockN(schedule.getBlockN()),
        elementType(op.getElementType()), f32(b.getF32Type()) {}

  void emit() {
    // A ragged batch has B+1 offsets; its longest sequences size the grid
    // and the split partition.
    if (op.isVarlen()) {
      batch =
          apply(d0 - 1,
                {memref::DimOp::create(b, op.getCuSeqlensQ(), 0).getResult()});
      seqQ = emitLongest(op.getMaxSeqlenQ(), op.getCuSeqlensQ(), "seq_q");
    } else {
      batch = memref::DimOp::create(b, op.getQuery(), dims.batch);
      seqQ = memref::DimOp::create(b, op.getQuery(), dims.seq);
    }
    // A paged sequence is its block table row of pages long.
    if (op.isPaged())
      seqKV =
          apply(d0 * op.getPageSize(),
                {memref::DimOp::create(b, op.getBlockTable(), 1).getResult()});
    else if (op.hasPackedKV())
      seqKV = emitLongest(op.getMaxSeqlenK(), op.getCuSeqlensK(), "seq_kv");
    else
      seqKV = memref::DimOp::create(b, op.getKey(), dims.seq);
    Value rowBlocks = apply((d0 * groupSize).ceilDiv(blockM), {seqQ});

    if (!schedule.isSplitKV()) {
      emitBlocks(rowBlocks, index(op.getKvHeads()));
      return;
    }
    // Split-KV: min(max_splits, KV tiles) splits, evened out so that none
    // is empty.
    numSplits = emitSplitCount(b, seqKV, blockN, schedule.getMaxSplits());
    // The workspaces: f32 [splits, B, Hq, Sq, Dv] and [splits, B, Hq, Sq],
    // freed by the buffer deallocation pipeline, as the buffers of
    // one-shot-bufferize are.
    int64_t dyn = ShapedType::kDynamic, qHeads = op.getQHeads();
    partialOut = memref::AllocOp::create(
        b, MemRefType::get({dyn, dyn, qHeads, dyn, op.getHeadDimV()}, f32),
        ValueRange{numSplits, batch, seqQ});
    partialLse = memref::AllocOp::create(
        b, MemRefType::get({dyn, dyn, qHeads, dyn}, f32),
        ValueRange{numSplits, batch, seqQ});
    emitBlocks(rowBlocks, apply(d0 * op.getKvHeads(), {numSplits}));
    // One split stored the output itself.
    Value several = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt,
                                          numSplits, index(1));
    scf::IfOp::create(b, several, [&](OpBuilder &nested, Location) {
      within(nested, [&] {
        emitCombine();
        scf::YieldOp::create(b);
      });
    });
  }

private:
  /// Runs `body` with `b` inserting where `nested` (a region's body builder)
  /// does.
  void within(OpBuilder &nested, function_ref<void()> body) {
    OpBuilder::InsertionGuard guard(b);
    b.restoreInsertionPoint(nested.saveInsertionPoint());
    body();
  }
  /// The longest sequence of a ragged batch: `given` (max_seqlen_q/k) as
  /// launch size `name`, or, without it, read from the offsets (on the
  /// host, which only the CPU can).
  Value emitLongest(Value given, Value offsets, StringRef name) {
    if (given)
      return LaunchSizeOp::create(b, b.getIndexType(), name, given);
    return emitLongestSegment(offsets);
  }
  /// The longest of the segments that the B+1 i32 `offsets` delimit.
  Value emitLongestSegment(Value offsets) {
    auto loop = scf::ForOp::create(
        b, index(0), batch, index(1), ValueRange{index(0)},
        [&](OpBuilder &nested, Location, Value i, ValueRange longest) {
          within(nested, [&] {
            Value length = sub(loadIndex(offsets, apply(d0 + 1, {i})),
                               loadIndex(offsets, i));
            scf::YieldOp::create(b, maxs(longest[0], length));
          });
        });
    return loop.getResult(0);
  }
  /// An integer element of a rank-1 memref, as index.
  Value loadIndex(Value memref, Value at) {
    Value element = memref::LoadOp::create(b, memref, ValueRange{at});
    if (element.getType().isIndex())
      return element;
    return arith::IndexCastOp::create(b, b.getIndexType(), element);
  }

  /// What one block reads and writes of its sequence: the op's operands, or,
  /// in a ragged batch, views of the sequence's tokens as a batch of one in
  /// bshd, so that the tile ops see every form alike.
  struct Sequence {
    Value query, init, lse, key, value;
    /// The batch index of query/init/lse and of key/value in those.
    Value queryBatch, kvBatch;
    /// Its queries and the keys its K/V hold (before kv_lens).
    Value seqQ, seqKV;
    /// Split-KV: its rows of the workspaces, at `queryBatch`.
    Value partialOut, partialLse;
  };
  Sequence emitSequence(Value batchIndex) {
    Sequence seq{op.getQuery(), op.getInit(), op.getLseInit(), op.getKey(),
                 op.getValue(), batchIndex,   batchIndex,      seqQ,
                 seqKV,         partialOut,   partialLse};
    if (!op.isVarlen())
      return seq;
    auto segment = [&](Value offsets, bool keys) {
      auto bounds = LoadSegmentOp::create(b, b.getIndexType(), b.getIndexType(),
                                          offsets, batchIndex, keys);
      return std::pair(bounds.getStart(), bounds.getLength());
    };
    auto [qStart, qLength] = segment(op.getCuSeqlensQ(), /*keys=*/false);
    seq.query = emitTokens(op.getQuery(), qStart, qLength);
    seq.init = emitTokens(op.getInit(), qStart, qLength);
    if (Value lse = op.getLseInit())
      seq.lse = emitView(lse, {index(0), qStart},
                         {index(op.getQHeads()), qLength}, {{0, 1}, {2}});
    seq.queryBatch = index(0);
    seq.seqQ = qLength;
    if (numSplits) {
      // [splits, 1, Hq, q_len(, Dv)] at the sequence, within the workspace's
      // Sq (the longest sequence, or the launch's max_seqlen_q on the GPU:
      // a caller's understatement leaves rows unwritten, never writes past
      // the workspace).
      Value workspaceRows = mins(qLength, seqQ);
      auto rows = [&](Value workspace) {
        auto type = cast<MemRefType>(workspace.getType());
        SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
        offsets[1] = batchIndex;
        SmallVector<OpFoldResult> sizes = {numSplits, b.getIndexAttr(1),
                                           b.getIndexAttr(op.getQHeads()),
                                           workspaceRows};
        if (type.getRank() == 5)
          sizes.push_back(b.getIndexAttr(op.getHeadDimV()));
        SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
        return memref::SubViewOp::create(b, workspace, offsets, sizes, strides)
            .getResult();
      };
      seq.partialOut = rows(partialOut);
      seq.partialLse = rows(partialLse);
    }
    if (op.hasPackedKV()) {
      auto [kStart, kLength] = segment(op.getCuSeqlensK(), /*keys=*/true);
      seq.key = emitTokens(op.getKey(), kStart, kLength);
      seq.value = emitTokens(op.getValue(), kStart, kLength);
      seq.kvBatch = index(0);
      seq.seqKV = kLength;
    }
    return seq;
  }
  /// Tokens [start, start + length) of packed [T, H, D] as [1, length, H, D].
  Value emitTokens(Value packed, Value start, Value length) {
    auto type = cast<MemRefType>(packed.getType());
    return emitView(
        packed, {start, index(0), index(0)},
        {length, index(type.getDimSize(1)), index(type.getDimSize(2))},
        {{0, 1}, {2}, {3}});
  }
  /// The subview at `offsets` of `sizes` (unit strides) of `source`, with a
  /// unit dimension in front (the batch of one): `reassociation` groups it
  /// with the first.
  Value emitView(Value source, ArrayRef<Value> offsets, ArrayRef<Value> sizes,
                 ArrayRef<ReassociationIndices> reassociation) {
    SmallVector<OpFoldResult> offsetFolds = getAsOpFoldResult(offsets),
                              sizeFolds = getAsOpFoldResult(sizes),
                              strides(sizes.size(), b.getIndexAttr(1));
    Value slice =
        memref::SubViewOp::create(b, source, offsetFolds, sizeFolds, strides);
    return emitBatchOfOne(b, slice, sizeFolds, reassociation);
  }

  /// The `scf.forall` of the attention blocks, mapped to the GPU grid
  /// (x: row blocks, y: KV heads [times splits], z: batch).
  void emitBlocks(Value rowBlocks, Value gridY) {
    SmallVector<OpFoldResult> upper = {rowBlocks, gridY, batch};
    auto forall = scf::ForallOp::create(b, upper, ValueRange{},
                                        b.getArrayAttr(gridMapping(3)));
    describeBlocks(forall, numSplits ? "split" : "main");
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getBody());
    ValueRange ivs = forall.getInductionVars();
    emitBlock(ivs[0], ivs[1], ivs[2]);
  }

  /// Records on `forall` what its blocks are, for the target lowerings.
  void describeBlocks(scf::ForallOp forall, StringRef role) {
    forall->setAttr(kBlockScheduleAttrName, schedule);
    forall->setAttr(kBlockConfigAttrName, op.getKernelConfig());
    forall->setAttr(kBlockRoleAttrName, b.getStringAttr(role));
  }

  SmallVector<Attribute> gridMapping(int64_t rank) {
    return getGridMapping(b.getContext(), rank);
  }

  /// The valid keys of a sequence: its `kv_lens` entry clamped to [0, Skv]
  /// (so that no lowering can read out of bounds), or Skv.
  Value emitKVLength(Value batchIndex, Value sequenceKeys) {
    Value kvLens = op.getKvLens();
    if (!kvLens)
      return sequenceKeys;
    return mins(maxs(loadIndex(kvLens, batchIndex), index(0)), sequenceKeys);
  }

  /// One block: `blockM` packed rows of one KV head of one sequence, against
  /// the KV tiles they see (of its split).
  void emitBlock(Value rowBlock, Value blockY, Value batchIndex) {
    Value kvHead = blockY, split;
    if (numSplits) {
      kvHead = apply(d0 % op.getKvHeads(), {blockY});
      split = apply(d0.floorDiv(op.getKvHeads()), {blockY});
    }
    Value firstRow = apply(d0 * blockM, {rowBlock});
    Sequence seq = emitSequence(batchIndex);
    if (!op.isVarlen())
      return emitBlockRows(seq, batchIndex, kvHead, split, firstRow);
    // A ragged batch's grid fits its longest sequence: the blocks past a
    // shorter one's rows have none.
    Value hasRows =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, firstRow,
                              apply(d0 * groupSize, {seq.seqQ}));
    scf::IfOp::create(b, hasRows, [&](OpBuilder &nested, Location) {
      within(nested, [&] {
        emitBlockRows(seq, batchIndex, kvHead, split, firstRow);
        scf::YieldOp::create(b);
      });
    });
  }

  /// The work of a block with rows, from `firstRow` of `seq`.
  void emitBlockRows(const Sequence &seq, Value batchIndex, Value kvHead,
                     Value split, Value firstRow) {
    Value seqQ = seq.seqQ;
    Value kvLen = emitKVLength(batchIndex, seq.seqKV);
    // Bottom-right alignment: the queries are the last Sq tokens.
    Value offset = apply(d0 - d1, {kvLen, seqQ});
    MaskAttr mask = op.getMask();
    BlockWork work = emitBlockWork(
        b, mask, groupSize, blockM, blockN, firstRow, seqQ, offset, kvLen,
        split, split ? emitTilesPerSplit(b, seqKV, blockN, numSplits) : Value(),
        numSplits);
    Value tileBegin = work.tileBegin, tileEnd = work.tileEnd;
    Value fullBegin = work.fullBegin, fullEnd = work.fullEnd;

    int64_t qHeads = op.getQHeads(), kvHeads = op.getKvHeads();
    // The CPU runs partial blocks: the last block of a sequence has only the
    // rows that exist (decode has g rows, not blockM). A GPU block is whole.
    SmallVector<Value, 1> rows;
    int64_t rowsOfTile = blockM;
    if (schedule.getTarget() == "cpu") {
      rows.push_back(emitRowsInBlock(b, index(blockM),
                                     apply(d0 * groupSize, {seqQ}), firstRow));
      rowsOfTile = ShapedType::kDynamic;
    }
    auto tileType = [&](int64_t rows, int64_t columns, Type type) {
      return RankedTensorType::get({rows, columns}, type);
    };
    auto rowType = RankedTensorType::get({rowsOfTile}, f32);
    auto accumulatorType = tileType(rowsOfTile, op.getHeadDimV(), f32);
    Value query = LoadQueryTileOp::create(
        b, tileType(rowsOfTile, op.getHeadDim(), elementType), seq.query,
        seq.queryBatch, kvHead, firstRow, rows.empty() ? Value() : rows.front(),
        qHeads, kvHeads, op.getLayout());
    auto splat = [&](RankedTensorType type, double value) -> Value {
      Value scalar = arith::ConstantFloatOp::create(
          b, b.getF32Type(), APFloat(static_cast<float>(value)));
      return tensor::SplatOp::create(b, scalar, type, rows);
    };
    SmallVector<Value> inits = {splat(accumulatorType, 0.0),
                                splat(rowType, -INFINITY), splat(rowType, 0.0)};
    auto loop = scf::ForOp::create(
        b, tileBegin, tileEnd, index(1), inits,
        [&](OpBuilder &nested, Location, Value tile, ValueRange state) {
          within(nested, [&] {
            Value firstKey = apply(d0 * blockN, {tile});
            auto loadKV = [&](Value source, int64_t width) -> Value {
              return LoadKVTileOp::create(
                  b, tileType(blockN, width, elementType), source, seq.kvBatch,
                  kvHead, firstKey, kvLen, op.getBlockTable(), op.getLayout());
            };
            Value key = loadKV(seq.key, op.getHeadDim());
            Value value = loadKV(seq.value, op.getHeadDimV());
            std::optional<APFloat> softcap = op.getSoftcap();
            Value scores = ScoresOp::create(
                b, tileType(rowsOfTile, blockN, f32), query, key,
                b.getF32FloatAttr(op.getScaleOrDefault()),
                softcap ? b.getF32FloatAttr(softcap->convertToDouble())
                        : FloatAttr());
            // Mask only tiles that some row does not see whole.
            Value boundary = arith::OrIOp::create(
                b,
                arith::CmpIOp::create(b, arith::CmpIPredicate::slt, firstKey,
                                      fullBegin),
                arith::CmpIOp::create(b, arith::CmpIPredicate::sgt,
                                      apply(d0 + blockN, {firstKey}), fullEnd));
            auto masked = scf::IfOp::create(
                b, boundary,
                [&](OpBuilder &nested, Location) {
                  within(nested, [&] {
                    Value result = MaskScoresOp::create(
                        b, scores.getType(), scores, firstRow, firstKey, offset,
                        kvLen, groupSize, mask);
                    scf::YieldOp::create(b, result);
                  });
                },
                [&](OpBuilder &nested, Location loc) {
                  scf::YieldOp::create(nested, loc, scores);
                });
            auto softmax = OnlineSoftmaxOp::create(
                b, tileType(rowsOfTile, blockN, elementType), rowType, rowType,
                rowType, masked.getResult(0), state[1], state[2]);
            Value accumulator = AccumulateOp::create(
                b, accumulatorType, softmax.getProbabilities(), value, state[0],
                softmax.getRescale());
            scf::YieldOp::create(b, ValueRange{accumulator, softmax.getNewMax(),
                                               softmax.getNewSum()});
          });
        });
    // The rows' output and LSE; with sinks, joined by each row's sink
    // (once: a split's partial result leaves it to the combine).
    auto finalize = [&](bool withSinks) {
      Value sinkTile;
      if (withSinks)
        sinkTile = LoadSinkTileOp::create(
            b, rowType, op.getSinks(), kvHead, firstRow,
            rows.empty() ? Value() : rows.front(), groupSize);
      return FinalizeOp::create(b, accumulatorType, rowType, loop.getResult(0),
                                loop.getResult(1), loop.getResult(2), sinkTile);
    };
    bool hasSinks = static_cast<bool>(op.getSinks());
    auto storeOutput = [&](FinalizeOp rows) {
      StoreOutputTileOp::create(b, rows.getOutput(), seq.init, seq.queryBatch,
                                kvHead, firstRow, qHeads, kvHeads,
                                op.getLayout());
      if (seq.lse)
        StoreLseTileOp::create(b, rows.getLse(), seq.lse, seq.queryBatch,
                               kvHead, firstRow, groupSize);
    };
    if (!split) {
      storeOutput(finalize(hasSinks));
      return;
    }
    // Without sinks both branches store the same finalised rows.
    FinalizeOp shared = hasSinks ? FinalizeOp() : finalize(false);
    // Launched with one split, the block saw all its keys.
    Value single =
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, numSplits, index(1));
    scf::IfOp::create(
        b, single,
        [&](OpBuilder &nested, Location) {
          within(nested, [&] {
            storeOutput(shared ? shared : finalize(true));
            scf::YieldOp::create(b);
          });
        },
        [&](OpBuilder &nested, Location) {
          within(nested, [&] {
            FinalizeOp partial = shared ? shared : finalize(false);
            StorePartialTileOp::create(b, partial.getOutput(), partial.getLse(),
                                       seq.partialOut, seq.partialLse, split,
                                       seq.queryBatch, kvHead, firstRow,
                                       groupSize);
            scf::YieldOp::create(b);
          });
        });
  }

  /// The split-KV combine: blocks of (query head, position) rows of each
  /// sequence, as many per block as 128 threads merge 4 values each.
  void emitCombine() {
    int64_t rows = getMergeRowsPerBlock(op.getHeadDimV());
    Value blocks = apply((d0 * op.getQHeads()).ceilDiv(rows), {seqQ});
    SmallVector<OpFoldResult> upper = {blocks, batch};
    auto forall = scf::ForallOp::create(b, upper, ValueRange{},
                                        b.getArrayAttr(gridMapping(2)));
    describeBlocks(forall, "combine");
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getBody());
    ValueRange ivs = forall.getInductionVars();
    Sequence seq = emitSequence(ivs[1]);
    CombineSplitsOp::create(b, seq.partialOut, seq.partialLse, seq.init,
                            seq.queryBatch, apply(d0 * rows, {ivs[0]}),
                            numSplits, op.getSinks(), seq.lse, rows,
                            op.getLayout());
  }

  AttentionOp op;
  ScheduleAttr schedule;
  LayoutDims dims;
  int64_t groupSize, blockM, blockN;
  Type elementType, f32;
  AffineExpr d0 = dim(0), d1 = dim(1);
  Value batch, seqQ, seqKV;
  /// Split-KV only.
  Value numSplits, partialOut, partialLse;
};

/// Rewrites a bufferized, scheduled gqa.attention into its tiled form.
struct DistributeAttentionPattern : public OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "expected memref operands");
    if (!op.getScheduleAttr())
      return rewriter.notifyMatchFailure(op, "expected a schedule");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    b.setInsertionPoint(op);
    AttentionDistribution(b, op).emit();
    rewriter.eraseOp(op);
    return success();
  }
};

/// Rewrites a bufferized gqa.merge_states into blocks of gqa.merge_rows:
/// grid (row blocks, 1, batch), each block as many (head, position) rows as
/// the split-KV combine's. Packed tokens [T, H, Dv] (and [H, T]) are viewed
/// as a batch of one.
struct DistributeMergeStatesPattern : public OpRewritePattern<MergeStatesOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MergeStatesOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "expected memref operands");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    b.setInsertionPoint(op);
    IndexBuilder ib(b);
    LayoutDims dims = getLayoutDims(op.getLayout());
    Value output = op.getInit();
    // Packed tokens are launched as a batch of one (a size no dimension of
    // theirs gives).
    Value batch =
        op.isVarlen()
            ? LaunchSizeOp::create(b, b.getIndexType(), "batch", ib.index(1))
                  .getResult()
            : memref::DimOp::create(b, output, dims.batch).getResult();
    Value seq = memref::DimOp::create(b, output, op.isVarlen() ? 0 : dims.seq);
    int64_t rows = getMergeRowsPerBlock(op.getHeadDimV());
    Value blocks = ib.apply((ib.dim(0) * op.getHeads()).ceilDiv(rows), {seq});
    SmallVector<OpFoldResult> upper = {blocks, batch};
    // The batch on z, as the attention kernels have it.
    MLIRContext *context = b.getContext();
    auto forall = scf::ForallOp::create(
        b, upper, ValueRange{},
        b.getArrayAttr(
            {gpu::GPUBlockMappingAttr::get(context, gpu::MappingId::DimX),
             gpu::GPUBlockMappingAttr::get(context, gpu::MappingId::DimZ)}));
    forall->setAttr(kBlockConfigAttrName, op.getKernelConfig());
    forall->setAttr(kBlockRoleAttrName, b.getStringAttr("merge"));
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(forall.getBody());
      SmallVector<Value, 6> operands;
      for (Value operand : op->getOperands()) {
        if (!op.isVarlen()) {
          operands.push_back(operand);
          continue;
        }
        // [T, H, Dv] as [1, T, H, Dv]; [H, T] as [1, H, T].
        auto type = cast<MemRefType>(operand.getType());
        SmallVector<OpFoldResult> sizes =
            memref::getMixedSizes(b, b.getLoc(), operand);
        SmallVector<ReassociationIndices> groups = {{0, 1}};
        for (int64_t dim = 1; dim < type.getRank(); ++dim)
          groups.push_back({dim + 1});
        operands.push_back(emitBatchOfOne(b, operand, sizes, groups));
      }
      ValueRange ivs = forall.getInductionVars();
      Value batchIndex = op.isVarlen() ? ib.index(0) : ivs[1];
      MergeRowsOp::create(b, operands[0], operands[1], operands[2], operands[3],
                          operands[4], operands[5], batchIndex,
                          ib.apply(ib.dim(0) * rows, {ivs[0]}), rows,
                          op.getLayout());
    }
    rewriter.eraseOp(op);
    return success();
  }
};

struct GQADistributePass
    : public gqa::impl::GQADistributeBase<GQADistributePass> {
  using Base::Base;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateAttentionDistributionPatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    WalkResult merges = getOperation()->walk([](MergeStatesOp op) {
      op.emitError() << "gqa-distribute expects gqa.merge_states on memrefs; "
                        "run one-shot-bufferize first";
      return WalkResult::interrupt();
    });
    if (merges.wasInterrupted())
      return signalPassFailure();
    WalkResult remaining = getOperation()->walk([](AttentionOp op) {
      if (!op.hasPureBufferSemantics())
        op.emitError() << "gqa-distribute expects gqa.attention on memrefs; "
                          "run one-shot-bufferize first";
      else
        op.emitError() << "gqa-distribute expects a schedule on "
                          "gqa.attention; run gqa-select-schedule first";
      return WalkResult::interrupt();
    });
    if (remaining.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace

void mlir::gqa::populateAttentionDistributionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DistributeAttentionPattern, DistributeMergeStatesPattern>(
      patterns.getContext());
}
