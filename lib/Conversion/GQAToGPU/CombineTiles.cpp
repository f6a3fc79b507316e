//===- CombineTiles.cpp - Merges of partial results on the CUDA cores -----===//
//
// The split-KV merge (gqa.combine_splits) and the merge of two partial
// results (gqa.merge_rows), docs/kernel-metadata.md: each thread merges 4
// consecutive Dv values of one (head, position) row of the op's block,
//
//   out[b, h, i, :] = sum_s w_s O_s / sum_s w_s,  w_s = exp(lse_s - max lse)
//
// with O_s the part's (normalised) output row and lse_s its log-sum-exp; a
// part with lse = -inf (no key) weighs 0, and a row no part saw is written
// as 0. The combine's parts are the splits of partial_out/partial_lse, and
// with sinks the head's sink logit joins the maximum and the denominator (a
// key without a value); the merge's parts are out_a and out_b. With an LSE,
// the row's first thread writes max + log(sum of the weights) (-inf when 0).
//
//===----------------------------------------------------------------------===//

#include "TileLowering.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

using arith::CmpFPredicate;
using arith::CmpIPredicate;

namespace {

/// The row of its block a thread merges, and its first column.
struct MergeRow {
  /// Whether the row exists (< H * S); head and position are row 0's when
  /// it does not (an address even when a sequence of a ragged batch has no
  /// queries: the divisor is then 1, not 0).
  Value valid, head, position, column;
};

MergeRow emitMergeRow(KernelBuilder &k, Value firstRow, int64_t threadsPerRow,
                      Value heads, Value seqQ) {
  Value tid = k.threadId();
  Value row = k.add(firstRow, k.divu(tid, threadsPerRow));
  MergeRow merge;
  merge.column = k.mul(k.remu(tid, threadsPerRow), 4);
  merge.valid = k.cmp(CmpIPredicate::slt, row, k.mul(seqQ, heads));
  Value clamped = k.select(merge.valid, row, k.index(0));
  Value positions = k.maxs(seqQ, 1);
  merge.head = k.divu(clamped, positions);
  merge.position = k.remu(clamped, positions);
  return merge;
}

/// The maximum of the parts' log-sum-exps as the weights' shift: 0 when it
/// is -inf (no part saw a key), so that every weight is 0, never NaN.
Value emitWeightShift(KernelBuilder &k, Value lseMax) {
  return k.fselect(k.fcmp(CmpFPredicate::OEQ, lseMax, -INFINITY), 0.0, lseMax);
}

/// exp(lse - shift).
Value emitWeight(KernelBuilder &k, Value lse, Value shift) {
  return k.exp2(k.fmul(k.fsub(lse, shift), kLog2E));
}

/// The merged row: the sum `total` of the weights and the weighted sums
/// `weighted` of this thread's 4 values, written to `out` (in `layout`,
/// [B, H, S, Dv] in bhsd order) and, when there is one, the LSE to `lse`
/// ([B, H, S]).
void storeMergedRow(KernelBuilder &k, const MergeRow &row, Value batch,
                    Layout layout, const KernelTensor &out,
                    const KernelTensor *lse, Value shift, Value total,
                    ArrayRef<Value> weighted) {
  Value empty = k.fcmp(CmpFPredicate::OEQ, total, 0.0);
  Value inverse = k.fselect(empty, 0.0, k.fdiv(k.f32(1.0), total));
  SmallVector<Value, 4> outAt =
      getLayoutDims(layout).order(batch, row.head, row.position, Value());
  outAt.resize(3);
  Value outIndex = k.add(out.offset(k, outAt), row.column);
  k.ifThen(row.valid, [&] {
    SmallVector<Value, 4> values;
    for (Value sum : weighted)
      values.push_back(k.fmul(sum, inverse));
    k.storeQuad(out.flat, outIndex, values);
  });
  if (!lse)
    return;
  Value merged =
      k.fselect(empty, -INFINITY, k.fadd(shift, k.fmul(k.log2(total), kLn2)));
  Value leads = k.cmp(CmpIPredicate::eq, row.column, k.index(0));
  k.ifThen(k.andb(row.valid, leads), [&] {
    k.store(merged, lse->flat, lse->offset(k, {batch, row.head, row.position}));
  });
}

/// Dv / 4 threads per row of `output` ([.., Dv]).
int64_t getThreadsPerRow(Value output) {
  auto type = cast<MemRefType>(output.getType());
  return type.getDimSize(type.getRank() - 1) / 4;
}

} // namespace

int64_t mlir::gqa::gpu_kernel::getCombineThreads(CombineSplitsOp op) {
  return op.getRows() * getThreadsPerRow(op.getPartialOut());
}

int64_t mlir::gqa::gpu_kernel::getMergeThreads(MergeRowsOp op) {
  return op.getRows() * getThreadsPerRow(op.getOutput());
}

LogicalResult mlir::gqa::gpu_kernel::lowerCombineSplits(BlockLowering &block,
                                                        CombineSplitsOp op) {
  KernelBuilder &k = block.k;
  const KernelTensor &partialOut = block.tensor(op.getPartialOut());
  const KernelTensor &partialLse = block.tensor(op.getPartialLse());
  Value batch = block.scalar(op.getBatch()),
        numSplits = block.scalar(op.getSplits());
  // Rows of a batch entry, in [Hq, Sq] order.
  MergeRow row = emitMergeRow(k, block.scalar(op.getFirstRow()),
                              getThreadsPerRow(op.getPartialOut()),
                              partialLse.sizes[2], partialLse.sizes[3]);
  SmallVector<Value> at = {k.index(0), batch, row.head, row.position};
  Value lseBase = partialLse.offset(k, at);
  Value outBase = k.add(partialOut.offset(k, at), row.column);
  auto loadLse = [&](Value split) {
    return k.load(partialLse.flat,
                  k.add(lseBase, k.mul(split, partialLse.strides[0])));
  };

  // The sink competes with the splits' log-sum-exps for the maximum.
  Value sink;
  if (op.getSinks())
    sink = k.load(block.tensor(op.getSinks()).flat, row.head);
  SmallVector<Value> maxInit = {sink ? sink : k.f32(-INFINITY)};
  Value lseMax = k.forLoop(k.index(0), numSplits, maxInit,
                           [&](Value s, ValueRange acc) -> SmallVector<Value> {
                             return {k.fmax(acc[0], loadLse(s))};
                           })[0];
  Value shift = emitWeightShift(k, lseMax);

  SmallVector<Value> sumInit(5, k.f32(0.0));
  if (sink)
    sumInit[0] = emitWeight(k, sink, shift);
  SmallVector<Value> sums = k.forLoop(
      k.index(0), numSplits, sumInit,
      [&](Value s, ValueRange acc) -> SmallVector<Value> {
        Value weight = emitWeight(k, loadLse(s), shift);
        SmallVector<Value, 4> partial = k.loadQuad(
            partialOut.flat, k.add(outBase, k.mul(s, partialOut.strides[0])));
        SmallVector<Value> next = {k.fadd(acc[0], weight)};
        for (int64_t e = 0; e < 4; ++e)
          next.push_back(k.fma(weight, partial[e], acc[1 + e]));
        return next;
      });
  const KernelTensor *lse = op.getLse() ? &block.tensor(op.getLse()) : nullptr;
  storeMergedRow(k, row, batch, op.getLayout(), block.tensor(op.getOutput()),
                 lse, shift, sums[0], ArrayRef<Value>(sums).drop_front());
  return success();
}

LogicalResult mlir::gqa::gpu_kernel::lowerMergeRows(BlockLowering &block,
                                                    MergeRowsOp op) {
  KernelBuilder &k = block.k;
  const KernelTensor &lseA = block.tensor(op.getLseA());
  Value batch = block.scalar(op.getBatch());
  MergeRow row = emitMergeRow(k, block.scalar(op.getFirstRow()),
                              getThreadsPerRow(op.getOutput()), lseA.sizes[1],
                              lseA.sizes[2]);
  SmallVector<Value, 4> outAt =
      getLayoutDims(op.getLayout())
          .order(batch, row.head, row.position, row.column);
  SmallVector<Value> lseAt = {batch, row.head, row.position};
  // Each part's log-sum-exp and its 4 values (read before `out`, which may
  // be either part, is written).
  SmallVector<Value, 2> lses;
  SmallVector<SmallVector<Value, 4>, 2> values;
  for (auto [out, lse] : {std::pair(op.getOutA(), op.getLseA()),
                          std::pair(op.getOutB(), op.getLseB())}) {
    const KernelTensor &outPart = block.tensor(out);
    const KernelTensor &lsePart = block.tensor(lse);
    lses.push_back(k.load(lsePart.flat, lsePart.offset(k, lseAt)));
    values.push_back(k.loadQuad(outPart.flat, outPart.offset(k, outAt)));
  }
  Value shift = emitWeightShift(k, k.fmax(lses[0], lses[1]));
  Value weightA = emitWeight(k, lses[0], shift),
        weightB = emitWeight(k, lses[1], shift);
  SmallVector<Value, 4> weighted;
  for (int64_t e = 0; e < 4; ++e)
    weighted.push_back(
        k.fma(weightB, values[1][e], k.fmul(weightA, values[0][e])));
  storeMergedRow(k, row, batch, op.getLayout(), block.tensor(op.getOutput()),
                 &block.tensor(op.getLse()), shift, k.fadd(weightA, weightB),
                 weighted);
  return success();
}
