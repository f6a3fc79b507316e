//===- CombineKernel.cpp - The split-KV combine kernel --------------------===//
//
// Merges the split kernel's partial results (docs/kernel-metadata.md):
//
//   out[b, h, i, :] = sum_s w_s O_s / sum_s w_s,  w_s = exp(lse_s - max lse)
//
// with O_s = partial_out[s, b, h, i, :] (already normalised) and lse_s =
// partial_lse[s, b, h, i]; a split with lse = -inf (no key) weighs 0, and a
// row no split saw is written as 0. With num_splits = 1 it does nothing (the
// split kernel wrote the output). Each thread merges 4 consecutive Dv
// values of one (b, h, i) row: grid (ceil(Sq * Hq / rows per CTA), B, 1).
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

using arith::CmpFPredicate;
using arith::CmpIPredicate;

gpu::GPUFuncOp
mlir::gqa::gpu_kernel::buildCombineKernel(OpBuilder &builder, Location loc,
                                          const KernelSpec &spec) {
  const int64_t Dv = spec.headDimV, Hq = spec.qHeads;
  const CombineShape shape = getCombineShape(Dv);
  MLIRContext *context = builder.getContext();
  Type elementType = spec.elementType, f32 = builder.getF32Type(),
       i64 = builder.getI64Type(), indexType = builder.getIndexType();

  auto pointer = [](Type type) { return MemRefType::get({1}, type); };
  SmallVector<std::pair<StringRef, Type>> params = {
      {"partial_out", pointer(f32)},
      {"partial_lse", pointer(f32)},
      {"out", pointer(elementType)},
      {"batch", i64},
      {"seq_q", i64},
      {"num_splits", i64}};
  SmallVector<Type> types;
  SmallVector<Attribute> names;
  for (auto [name, type] : params) {
    types.push_back(type);
    names.push_back(builder.getStringAttr(name));
  }
  auto func = gpu::GPUFuncOp::create(builder, loc, kCombineName,
                                     FunctionType::get(context, types, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                builder.getUnitAttr());
  func.setKnownBlockSizeAttr(builder.getDenseI32ArrayAttr(
      {static_cast<int32_t>(shape.threads()), 1, 1}));
  func->setAttr(kParamsAttr, builder.getArrayAttr(names));
  func->setAttr(kDynamicSharedMemoryAttr, builder.getI64IntegerAttr(0));

  ImplicitLocOpBuilder b(loc, builder);
  Block *entry = &func.getBody().front();
  b.setInsertionPointToEnd(entry);
  auto returnOp = gpu::ReturnOp::create(b);
  b.setInsertionPoint(returnOp);
  KernelBuilder k(b, func);
  k.setElementType(elementType);

  Value batchSize = k.cast(k.param("batch"), indexType);
  Value seqQ = k.cast(k.param("seq_q"), indexType);
  Value numSplits = k.cast(k.param("num_splits"), indexType);
  // With one split the split kernel wrote the output itself and there is no
  // workspace: nothing to merge. The runtime does not launch this kernel
  // then; the host code of convert-gqa-to-gpu does, harmlessly.
  auto merge = scf::IfOp::create(b, k.cmp(CmpIPredicate::ugt, numSplits, 1),
                                 /*withElseRegion=*/false);
  b.setInsertionPoint(merge.thenBlock()->getTerminator());
  // Rows per batch entry of the workspace, in [Hq, Sq] order.
  Value rowsPerBatch = k.mul(seqQ, Hq);
  Value splitStride = k.mul(batchSize, rowsPerBatch);
  Value gPartialOut = k.globalView(k.param("partial_out"),
                                   k.mul(k.mul(numSplits, splitStride), Dv));
  Value gPartialLse =
      k.globalView(k.param("partial_lse"), k.mul(numSplits, splitStride));
  Value gOut = k.globalView(k.param("out"), k.mul(splitStride, Dv));

  Value tid = k.threadId();
  Value rowInCTA = k.divu(tid, shape.threadsPerRow);
  Value column = k.mul(k.remu(tid, shape.threadsPerRow), 4);
  Value row =
      k.add(k.mul(k.blockId(gpu::Dimension::x), shape.rowsPerCTA), rowInCTA);
  Value batch = k.blockId(gpu::Dimension::y);
  Value valid = k.cmp(CmpIPredicate::slt, row, rowsPerBatch);
  Value clamped = k.mins(row, k.sub(rowsPerBatch, 1));
  Value head = k.divu(clamped, seqQ);
  Value position = k.remu(clamped, seqQ);
  // partial_lse[s, b, h, i] = base + s * splitStride.
  Value base = k.add(k.mul(batch, rowsPerBatch), clamped);
  const double negInf = -INFINITY;
  const double log2e = 1.4426950408889634;

  SmallVector<Value> maxInit = {k.f32(negInf)};
  Value lseMax = k.forLoop(k.index(0), numSplits, maxInit,
                           [&](Value s, ValueRange acc) -> SmallVector<Value> {
                             Value at = k.add(k.mul(s, splitStride), base);
                             return {k.fmax(acc[0], k.load(gPartialLse, at))};
                           })[0];
  Value lseUse =
      k.fselect(k.fcmp(CmpFPredicate::OEQ, lseMax, negInf), 0.0, lseMax);

  SmallVector<Value> sumInit(5, k.f32(0.0));
  SmallVector<Value> sums =
      k.forLoop(k.index(0), numSplits, sumInit,
                [&](Value s, ValueRange acc) -> SmallVector<Value> {
                  Value at = k.add(k.mul(s, splitStride), base);
                  Value weight = k.exp2(
                      k.fmul(k.fsub(k.load(gPartialLse, at), lseUse), log2e));
                  SmallVector<Value, 4> partial =
                      k.loadF32x4(gPartialOut, k.add(k.mul(at, Dv), column));
                  SmallVector<Value> next = {k.fadd(acc[0], weight)};
                  for (int64_t e = 0; e < 4; ++e)
                    next.push_back(k.fma(weight, partial[e], acc[1 + e]));
                  return next;
                });
  Value inverse = k.fselect(k.fcmp(CmpFPredicate::OEQ, sums[0], 0.0), 0.0,
                            k.fdiv(k.f32(1.0), sums[0]));

  Value outRow;
  if (spec.layout == Layout::BSHD)
    outRow =
        k.mul(k.add(k.mul(k.add(k.mul(batch, seqQ), position), Hq), head), Dv);
  else
    outRow =
        k.mul(k.add(k.mul(k.add(k.mul(batch, Hq), head), seqQ), position), Dv);
  Value outIndex = k.add(outRow, column);
  k.ifThen(valid, [&] {
    SmallVector<Value, 4> values;
    for (int64_t e = 0; e < 4; ++e)
      values.push_back(k.fmul(sums[1 + e], inverse));
    k.storeQuad(gOut, outIndex, values);
  });
  return func;
}
