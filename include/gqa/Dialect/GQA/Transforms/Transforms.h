//===- Transforms.h - Rewrites of gqa ops -----------------------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_TRANSFORMS_TRANSFORMS_H
#define GQA_DIALECT_GQA_TRANSFORMS_TRANSFORMS_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace mlir::gqa {

class AttentionOp;
class ScheduleAttr;

/// What a user may force of a schedule; 0 (-1 for `maxSplits`) leaves the
/// choice to the target.
struct ScheduleOptions {
  /// cpu, sm_80 or sm_90.
  std::string target = "cpu";
  int64_t blockM = 0;
  int64_t blockN = 0;
  int64_t maxSplits = -1;
  int64_t maxRegisters = 0;
  int64_t minCTAsPerSM = 0;
};

/// The schedule of `op` for `options.target`: the forced values of
/// `options`, and the target's choice for the rest (see gqa-select-schedule);
/// null, with an error on `op`, when the forced values are out of range.
ScheduleAttr selectSchedule(AttentionOp op, const ScheduleOptions &options);

/// Adds the patterns that rewrite bufferized `gqa.attention` ops carrying a
/// schedule, and bufferized `gqa.merge_states` ops, into their tiled form
/// (see the `gqa-distribute` pass).
void populateAttentionDistributionPatterns(RewritePatternSet &patterns);

/// Adds the pattern that loads the next K tile of a KV loop of the tiled
/// form during the current iteration (see the `gqa-prefetch-keys` pass).
void populatePrefetchKeysPatterns(RewritePatternSet &patterns);

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_TRANSFORMS_TRANSFORMS_H
