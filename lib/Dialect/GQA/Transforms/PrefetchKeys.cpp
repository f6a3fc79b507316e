//===- PrefetchKeys.cpp - Load the next K tile during the current one -----===//
//
// Rotates the key load of each KV loop of the tiled form by one iteration
// (see the gqa-prefetch-keys pass).
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"
#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::gqa {
#define GEN_PASS_DEF_GQAPREFETCHKEYS
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// The key load of `loop`'s body that its `gqa.scores` reads, with every
/// operand but the first key defined outside the loop.
std::pair<LoadKVTileOp, ScoresOp> findKeyLoad(scf::ForOp loop) {
  for (ScoresOp scores : loop.getBody()->getOps<ScoresOp>()) {
    auto load = scores.getKey().getDefiningOp<LoadKVTileOp>();
    if (!load || load->getBlock() != loop.getBody())
      continue;
    bool invariant = llvm::all_of(load->getOpOperands(), [&](OpOperand &use) {
      return use.get() == load.getFirstKey() ||
             loop.isDefinedOutsideOfLoop(use.get());
    });
    if (invariant && load.getResult().hasOneUse())
      return {load, scores};
  }
  return {};
}

/// The ops of loop body `body` that compute the first key of `load`.
SetVector<Operation *> getFirstKeySlice(Block *body, LoadKVTileOp load) {
  BackwardSliceOptions options;
  options.filter = [&](Operation *op) { return op->getBlock() == body; };
  options.inclusive = true;
  SetVector<Operation *> slice;
  if (Operation *def = load.getFirstKey().getDefiningOp();
      def && def->getBlock() == body)
    (void)getBackwardSlice(def, &slice, options);
  return slice;
}

/// Clones `load` of loop body `body` with its first key computed for
/// iteration `iteration` (the chain of pure ops from the induction variable).
Value cloneLoadAt(OpBuilder &b, Block *body, LoadKVTileOp load,
                  Value iteration) {
  IRMapping mapping;
  mapping.map(body->getArgument(0), iteration);
  SetVector<Operation *> slice = getFirstKeySlice(body, load);
  for (Operation *op : slice)
    b.clone(*op, mapping);
  return b.clone(*load, mapping)->getResult(0);
}

struct PrefetchKeysPattern : public OpRewritePattern<scf::ForOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(scf::ForOp loop,
                                PatternRewriter &rewriter) const override {
    auto [load, scores] = findKeyLoad(loop);
    if (!load)
      return rewriter.notifyMatchFailure(loop, "no key load to prefetch");
    if (!llvm::all_of(getFirstKeySlice(loop.getBody(), load), isPure))
      return rewriter.notifyMatchFailure(loop, "the first key is not pure");

    Location loc = loop.getLoc();
    Type tileType = load.getType();
    rewriter.setInsertionPoint(loop);
    Value runs =
        arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::slt,
                              loop.getLowerBound(), loop.getUpperBound());
    auto first = scf::IfOp::create(
        rewriter, loc, runs,
        [&](OpBuilder &b, Location loc) {
          scf::YieldOp::create(
              b, loc,
              cloneLoadAt(b, loop.getBody(), load, loop.getLowerBound()));
        },
        [&](OpBuilder &b, Location loc) {
          auto type = cast<RankedTensorType>(tileType);
          scf::YieldOp::create(b, loc,
                               tensor::EmptyOp::create(b, loc, type.getShape(),
                                                       type.getElementType())
                                   .getResult());
        });

    auto newYields = [&](OpBuilder &b, Location loc,
                         ArrayRef<BlockArgument> carried) {
      // Called before the body moves into the new loop: the ops are built
      // in the old body, in terms of its induction variable.
      Value current = carried.front();
      Block *body = loop.getBody();
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointAfter(scores);
      Value nextIteration =
          arith::AddIOp::create(b, loc, body->getArgument(0), loop.getStep());
      Value more = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                         nextIteration, loop.getUpperBound());
      auto next = scf::IfOp::create(
          b, loc, more,
          [&](OpBuilder &b, Location loc) {
            scf::YieldOp::create(b, loc,
                                 cloneLoadAt(b, body, load, nextIteration));
          },
          [&](OpBuilder &b, Location loc) {
            scf::YieldOp::create(b, loc, current);
          });
      return SmallVector<Value>{next.getResult(0)};
    };
    FailureOr<LoopLikeOpInterface> rotated = loop.replaceWithAdditionalYields(
        rewriter, first.getResult(0), /*replaceInitOperandUsesInLoop=*/false,
        newYields);
    if (failed(rotated))
      return failure();
    auto newLoop = cast<scf::ForOp>(rotated->getOperation());
    rewriter.replaceOp(load, newLoop.getRegionIterArgs().back());
    return success();
  }
};

struct GQAPrefetchKeysPass
    : public gqa::impl::GQAPrefetchKeysBase<GQAPrefetchKeysPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populatePrefetchKeysPatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace

void mlir::gqa::populatePrefetchKeysPatterns(RewritePatternSet &patterns) {
  patterns.add<PrefetchKeysPattern>(patterns.getContext());
}
