//===- GQAToGPU.cpp - gqa.attention to GPU kernels and launches -----------===//
//
// convert-gqa-to-gpu: the GPU stage from gqa.attention (and
// gqa.merge_states, whose kernel needs no schedule). It refuses, naming
// the reason, every op the kernels cannot run, gives each op without a
// schedule the one its options choose, and takes the ops through the tiled
// form: gqa-distribute (the grid, the row packing, the KV tiles of each block
// and the split partition), gqa-prefetch-keys and convert-gqa-tiles-to-gpu
// (the kernels and their launches, TilesToGPU.cpp).
//
//===----------------------------------------------------------------------===//

#include "gqa/Conversion/GQAToGPU/GQAToGPU.h"
#include "gqa/Conversion/Passes.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"
#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

namespace mlir::gqa {
#define GEN_PASS_DEF_CONVERTGQATOGPU
#include "gqa/Conversion/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;

namespace {

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertGQAToGPUPass
    : public gqa::impl::ConvertGQAToGPUBase<ConvertGQAToGPUPass> {
  using Base::Base;

  void runOnOperation() override {
    GQAToGPUOptions options;
    options.tile = {blockM, blockN, maxRegisters, minCTAsPerSM};
    options.maxSplits = maxSplits;
    // Report every op the GPU path cannot compile, then convert the rest.
    bool unsupported = false;
    getOperation()->walk([&](AttentionOp op) {
      std::string reason = getGPUUnsupportedReason(op, options);
      if (reason.empty())
        return;
      op.emitOpError() << reason;
      unsupported = true;
    });
    getOperation()->walk([&](MergeStatesOp op) {
      if (op.getHeadDimV() % 4 == 0)
        return;
      op.emitOpError() << "has head dim " << op.getHeadDimV()
                       << "; the GPU merge kernel takes a multiple of 4 (each "
                          "thread merges 4 values)";
      unsupported = true;
    });
    if (unsupported)
      return signalPassFailure();
    // Through the tiled form: each op with its schedule (the pass options
    // choose it for an op without one).
    WalkResult unscheduled = getOperation()->walk([&](AttentionOp op) {
      if (op.getScheduleAttr())
        return WalkResult::advance();
      ScheduleOptions choice;
      choice.target = "sm_90";
      choice.blockM = blockM;
      choice.blockN = blockN;
      choice.maxSplits = maxSplits;
      choice.maxRegisters = maxRegisters;
      choice.minCTAsPerSM = minCTAsPerSM;
      ScheduleAttr schedule = selectSchedule(op, choice);
      if (!schedule)
        return WalkResult::interrupt();
      op.setScheduleAttr(schedule);
      return WalkResult::advance();
    });
    if (unscheduled.wasInterrupted())
      return signalPassFailure();
    OpPassManager pipeline(ModuleOp::getOperationName());
    addTiledGPUPasses(pipeline);
    if (failed(runPipeline(pipeline, getOperation())))
      signalPassFailure();
  }
};

} // namespace

void mlir::gqa::addTiledGPUPasses(OpPassManager &pm) {
  pm.addPass(createGQADistribute());
  // No CSE here: it would merge the K and V loads of an op whose key and
  // value are one memref, which need buffers of their own.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createGQAPrefetchKeys());
  pm.addPass(createConvertGQATilesToGPU());
  // The blocks' affine index math, in arith: the sign tests of the
  // expansion of floordiv and mod on block ids fold away, and what is
  // non-negative becomes unsigned.
  pm.addPass(createLowerAffinePass());
  pm.addPass(arith::createIntRangeOptimizationsPass());
  pm.addPass(arith::createArithUnsignedWhenEquivalentPass());
}
