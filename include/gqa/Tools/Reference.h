//===- Reference.h - Float64 reference attention ----------------*- C++ -*-===//
//
// A direct, unoptimised implementation of grouped-query attention in double
// precision (REFERENCE.md section 1), written apart from the compiler so that
// it can check it.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_TOOLS_REFERENCE_H
#define GQA_TOOLS_REFERENCE_H

#include "gqa/Tools/AttentionSpec.h"

#include <vector>

namespace mlir::gqa {

/// The attention output, flat in the spec's layout (Hq heads, Sq rows, Dv),
/// of `query`, `key` and `value` given flat in the same layout; with
/// `spec.hasSinks`, `sinks` holds the Hq sink logits. When `lse` is given it
/// receives each row's natural-log log-sum-exp, flat [B, Hq, Sq] (sink term
/// included; -inf for a row that sees no key and has no sink).
std::vector<double> referenceAttention(const AttentionSpec &spec,
                                       const AttentionSizes &sizes,
                                       const std::vector<double> &query,
                                       const std::vector<double> &key,
                                       const std::vector<double> &value,
                                       const std::vector<double> &sinks = {},
                                       std::vector<double> *lse = nullptr);

/// How far an output is from the reference.
struct Comparison {
  double maxAbsError = 0;
  /// ||out - ref||_2 / ||ref||_2 (the absolute L2 error when ref is 0).
  double relL2Error = 0;
  /// Elements that are NaN or infinite (e.g. never written: the output is
  /// poisoned with NaN before a run).
  int64_t nonFinite = 0;
};

Comparison compareToReference(const std::vector<double> &output,
                              const std::vector<double> &reference);

/// The largest absolute error of a log-sum-exp over the elements that are
/// finite in `reference`; an element that is -inf in one and not in the
/// other, or NaN, counts in `nonFinite`.
Comparison compareLseToReference(const std::vector<double> &lse,
                                 const std::vector<double> &reference);

/// The largest absolute LSE error accepted: 1e-4 for f32, 2e-3 otherwise.
double lseTolerance(ElementType type);

/// The largest relative L2 error accepted for an element type: bf16 1e-2,
/// f16 2e-3, f32 1e-5.
double relL2Tolerance(ElementType type);

} // namespace mlir::gqa

#endif // GQA_TOOLS_REFERENCE_H
