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
/// of `query`, `key` and `value` given flat in the same layout.
std::vector<double> referenceAttention(const AttentionSpec &spec,
                                       const AttentionSizes &sizes,
                                       const std::vector<double> &query,
                                       const std::vector<double> &key,
                                       const std::vector<double> &value);

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

/// The largest relative L2 error accepted for an element type: bf16 1e-2,
/// f16 2e-3, f32 1e-5.
double relL2Tolerance(ElementType type);

} // namespace mlir::gqa

#endif // GQA_TOOLS_REFERENCE_H
