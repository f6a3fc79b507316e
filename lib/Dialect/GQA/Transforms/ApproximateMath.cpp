//===- ApproximateMath.cpp - Vectorisable math for the CPU ----------------===//
//
// A thin pass over upstream's math expansions and polynomial approximations:
// the softmax's exp2 (and the softcap's tanh, the LSE's log2) become
// arithmetic the loop vectoriser handles, instead of libm calls.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::gqa {
#define GEN_PASS_DEF_GQAAPPROXIMATEMATH
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;

namespace {

struct GQAApproximateMathPass
    : public gqa::impl::GQAApproximateMathBase<GQAApproximateMathPass> {
  using Base::Base;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    math::populateExpansionPatterns(patterns, {"exp2"});
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == "exp" || name == "tanh" || name == "log2";
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
