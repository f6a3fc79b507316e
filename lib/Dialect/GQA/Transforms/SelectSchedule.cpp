//===- SelectSchedule.cpp - Choose each attention op's schedule -----------===//
//
// The one place where a target's tile sizes, row packing, split-KV and
// kernel hints are chosen. Every lowering reads the schedule off the op.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"

#include <algorithm>

namespace mlir::gqa {
#define GEN_PASS_DEF_GQASELECTSCHEDULE
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;

/// The schedule, or null with an error on `op` when it is out of range.
static ScheduleAttr makeSchedule(AttentionOp op, StringRef target,
                                 int64_t blockM, int64_t blockN,
                                 int64_t maxSplits, int64_t warps,
                                 int64_t stages, bool qInRegisters,
                                 int64_t minCTAsPerSM, int64_t maxRegisters) {
  if (failed(ScheduleAttr::verify([&] { return op.emitOpError(); }, target,
                                  blockM, blockN, maxSplits, warps, stages,
                                  qInRegisters, minCTAsPerSM, maxRegisters)))
    return ScheduleAttr();
  return ScheduleAttr::get(op.getContext(), target, blockM, blockN, maxSplits,
                           warps, stages, qInRegisters, minCTAsPerSM,
                           maxRegisters);
}

ScheduleAttr mlir::gqa::selectSchedule(AttentionOp op,
                                       const ScheduleOptions &options) {
  auto pick = [](int64_t forced, int64_t chosen) {
    return forced > 0 ? forced : chosen;
  };
  int64_t widest = std::max(op.getHeadDim(), op.getHeadDimV());
  if (options.target == "cpu") {
    // 16 query positions of every head of the group per block (at most
    // 1024 rows: wide groups of MQA).
    return makeSchedule(
        op, options.target,
        pick(options.blockM, std::min<int64_t>(16 * op.getGroupSize(), 1024)),
        pick(options.blockN, 64), std::max<int64_t>(options.maxSplits, 0),
        /*warps=*/1, /*stages=*/1, /*qInRegisters=*/false,
        /*minCtasPerSm=*/0, /*maxRegisters=*/0);
  }
  int64_t maxSplits = options.maxSplits >= 0 ? options.maxSplits : 32;
  if (op.getElementType().isF32()) {
    // The CUDA-core kernel: 4 warps of 4 rows, one key per lane. Unhinted,
    // ptxas targets 64 registers and may spill (4 bytes for D = 128 on
    // sm_80); 128 registers (4 CTAs) leave room.
    return makeSchedule(op, options.target, pick(options.blockM, 16),
                        pick(options.blockN, 32), maxSplits,
                        /*warps=*/4, /*stages=*/1,
                        /*qInRegisters=*/false, pick(options.minCTAsPerSM, 4),
                        options.maxRegisters);
  }
  // 64 rows (4 warps of 16) per CTA; 64-key tiles up to head dim 128, 32
  // above, which keeps S + O + Q fragments within 255 registers and the
  // shared memory at 64 KiB for D = 256. ptxas fits D = 64 in 168 registers
  // (3 CTAs of 128 threads per SM; at 128 registers the split-KV kernel
  // spills) and wider heads in 255 (2 CTAs) without spilling.
  int64_t blockM = pick(options.blockM, 64);
  return makeSchedule(op, options.target, blockM,
                      pick(options.blockN, widest <= 128 ? 64 : 32), maxSplits,
                      /*warps=*/std::max<int64_t>(blockM / 16, 1), /*stages=*/1,
                      /*qInRegisters=*/widest <= 128,
                      pick(options.minCTAsPerSM, widest <= 64 ? 3 : 2),
                      options.maxRegisters);
}

namespace {

struct GQASelectSchedulePass
    : public gqa::impl::GQASelectScheduleBase<GQASelectSchedulePass> {
  using Base::Base;

  void runOnOperation() override {
    if (!isScheduleTarget(target)) {
      getOperation()->emitError()
          << "gqa-select-schedule: target must be cpu, sm_80 or sm_90, got '"
          << target << "'";
      return signalPassFailure();
    }
    for (auto [name, value, least] :
         {std::tuple<StringRef, int64_t, int64_t>{"block-m", blockM, 0},
          {"block-n", blockN, 0},
          {"max-splits", maxSplits, -1},
          {"max-registers", maxRegisters, 0},
          {"min-ctas-per-sm", minCTAsPerSM, 0}}) {
      if (value < least) {
        getOperation()->emitError()
            << "gqa-select-schedule: " << name << " must be >= " << least
            << ", got " << value;
        return signalPassFailure();
      }
    }
    ScheduleOptions options{target,    blockM,       blockN,
                            maxSplits, maxRegisters, minCTAsPerSM};
    WalkResult result = getOperation()->walk([&](AttentionOp op) {
      if (ScheduleAttr kept = op.getScheduleAttr()) {
        // The op's own schedule wins; say so when it is another target's.
        if (kept.getTarget() != target)
          op.emitWarning() << "keeps its schedule for " << kept.getTarget()
                           << "; gqa-select-schedule was asked for " << target;
        return WalkResult::advance();
      }
      // Forced sizes may be out of range: a null schedule, diagnosed.
      ScheduleAttr chosen = selectSchedule(op, options);
      if (!chosen)
        return WalkResult::interrupt();
      op.setScheduleAttr(chosen);
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
