//===- CombineTiles.cpp - gqa.combine_splits on the CUDA cores ------------===//
//
// The split-KV merge (docs/kernel-metadata.md): each thread merges 4
// consecutive Dv values of one (head, position) row of the op's block,
//
//   out[b, h, i, :] = sum_s w_s O_s / sum_s w_s,  w_s = exp(lse_s - max lse)
//
// with O_s = partial_out[s, b, h, i, :] (already normalised) and lse_s =
// partial_lse[s, b, h, i]; a split with lse = -inf (no key) weighs 0, and a
// row no split saw is written as 0. With sinks, the head's sink logit joins
// the maximum and the denominator (a key without a value); with an LSE, the
// row's first thread writes max + log(sum of the weights) (-inf when 0).
//
//===----------------------------------------------------------------------===//

#include "TileLowering.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

using arith::CmpFPredicate;
using arith::CmpIPredicate;

/// Dv / 4 threads per row.
static int64_t getThreadsPerRow(CombineSplitsOp op) {
  return cast<MemRefType>(op.getPartialOut().getType()).getDimSize(4) / 4;
}

int64_t mlir::gqa::gpu_kernel::getCombineThreads(CombineSplitsOp op) {
  return op.getRows() * getThreadsPerRow(op);
}

LogicalResult mlir::gqa::gpu_kernel::lowerCombineSplits(BlockLowering &block,
                                                        CombineSplitsOp op) {
  KernelBuilder &k = block.k;
  const KernelTensor &partialOut = block.tensor(op.getPartialOut());
  const KernelTensor &partialLse = block.tensor(op.getPartialLse());
  const KernelTensor &out = block.tensor(op.getOutput());
  int64_t threadsPerRow = getThreadsPerRow(op);
  Value batch = block.scalar(op.getBatch()),
        numSplits = block.scalar(op.getSplits());

  Value tid = k.threadId();
  Value row = k.add(block.scalar(op.getFirstRow()), k.divu(tid, threadsPerRow));
  Value column = k.mul(k.remu(tid, threadsPerRow), 4);
  // Rows of a batch entry, in [Hq, Sq] order.
  Value seqQ = partialLse.sizes[3];
  Value rowsPerBatch = k.mul(seqQ, partialLse.sizes[2]);
  Value valid = k.cmp(CmpIPredicate::slt, row, rowsPerBatch);
  // An invalid row reads row 0 (an address even when a sequence of a
  // ragged batch has no queries: the divisor is then 1, not 0).
  Value clamped = k.select(valid, row, k.index(0));
  Value positions = k.maxs(seqQ, 1);
  Value head = k.divu(clamped, positions);
  Value position = k.remu(clamped, positions);
  SmallVector<Value> at = {k.index(0), batch, head, position};
  Value lseBase = partialLse.offset(k, at);
  Value outBase = k.add(partialOut.offset(k, at), column);
  const double negInf = -INFINITY;

  // The sink competes with the splits' log-sum-exps for the maximum.
  Value sink;
  if (op.getSinks())
    sink = k.load(block.tensor(op.getSinks()).flat, head);
  SmallVector<Value> maxInit = {sink ? sink : k.f32(negInf)};
  Value lseMax =
      k.forLoop(k.index(0), numSplits, maxInit,
                [&](Value s, ValueRange acc) -> SmallVector<Value> {
                  Value lse =
                      k.load(partialLse.flat,
                             k.add(lseBase, k.mul(s, partialLse.strides[0])));
                  return {k.fmax(acc[0], lse)};
                })[0];
  Value lseUse =
      k.fselect(k.fcmp(CmpFPredicate::OEQ, lseMax, negInf), 0.0, lseMax);

  SmallVector<Value> sumInit(5, k.f32(0.0));
  if (sink)
    sumInit[0] = k.exp2(k.fmul(k.fsub(sink, lseUse), kLog2E));
  SmallVector<Value> sums = k.forLoop(
      k.index(0), numSplits, sumInit,
      [&](Value s, ValueRange acc) -> SmallVector<Value> {
        Value lse = k.load(partialLse.flat,
                           k.add(lseBase, k.mul(s, partialLse.strides[0])));
        Value weight = k.exp2(k.fmul(k.fsub(lse, lseUse), kLog2E));
        SmallVector<Value, 4> partial = k.loadF32x4(
            partialOut.flat, k.add(outBase, k.mul(s, partialOut.strides[0])));
        SmallVector<Value> next = {k.fadd(acc[0], weight)};
        for (int64_t e = 0; e < 4; ++e)
          next.push_back(k.fma(weight, partial[e], acc[1 + e]));
        return next;
      });
  Value inverse = k.fselect(k.fcmp(CmpFPredicate::OEQ, sums[0], 0.0), 0.0,
                            k.fdiv(k.f32(1.0), sums[0]));
  LayoutDims dims = getLayoutDims(op.getLayout());
  SmallVector<Value, 4> outAt = dims.order(batch, head, position, Value());
  outAt.resize(3);
  Value outIndex = k.add(out.offset(k, outAt), column);
  k.ifThen(valid, [&] {
    SmallVector<Value, 4> values;
    for (int64_t e = 0; e < 4; ++e)
      values.push_back(k.fmul(sums[1 + e], inverse));
    k.storeQuad(out.flat, outIndex, values);
  });
  if (op.getLse()) {
    const KernelTensor &lse = block.tensor(op.getLse());
    Value merged = k.fselect(k.fcmp(CmpFPredicate::OEQ, sums[0], 0.0), negInf,
                             k.fadd(lseUse, k.fmul(k.log2(sums[0]), kLn2)));
    Value leads = k.cmp(CmpIPredicate::eq, column, k.index(0));
    k.ifThen(k.andb(valid, leads), [&] {
      k.store(merged, lse.flat, lse.offset(k, {batch, head, position}));
    });
  }
  return success();
}
