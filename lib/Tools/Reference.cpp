//===- Reference.cpp - Float64 reference attention ------------------------===//

#include "gqa/Tools/Reference.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir::gqa;

std::vector<double> mlir::gqa::referenceAttention(
    const AttentionSpec &spec, const AttentionSizes &sizes,
    const std::vector<double> &query, const std::vector<double> &key,
    const std::vector<double> &value, const std::vector<double> &sinks,
    std::vector<double> *lse) {
  const int64_t batch = sizes.batch, seqQ = sizes.seqQ, seqKV = sizes.seqKV;
  const int64_t d = spec.headDim, dv = spec.valueHeadDim();
  const double scale = spec.resolvedScale();
  std::vector<double> output(static_cast<size_t>(sizes.outputElements(spec)));
  if (lse)
    lse->assign(static_cast<size_t>(sizes.lseElements(spec)), 0.0);
  const double negativeInfinity = -std::numeric_limits<double>::infinity();
  std::vector<double> scores(static_cast<size_t>(seqKV));
  std::vector<bool> visible(static_cast<size_t>(seqKV));

  for (int64_t b = 0; b < batch; ++b) {
    const int64_t length = spec.hasKVLens ? sizes.kvLens[b] : seqKV;
    const int64_t offset = length - seqQ;
    for (int64_t h = 0; h < spec.qHeads; ++h) {
      const int64_t kvHead = h / spec.groupSize();
      for (int64_t i = 0; i < seqQ; ++i) {
        const int64_t diagonal = i + offset;
        double maxScore = negativeInfinity;
        for (int64_t j = 0; j < seqKV; ++j) {
          bool sees = j < length;
          if (spec.causal && j > diagonal)
            sees = false;
          if (spec.windowLeft >= 0 && j < diagonal - spec.windowLeft)
            sees = false;
          if (spec.windowRight >= 0 && j > diagonal + spec.windowRight)
            sees = false;
          visible[j] = sees;
          if (!sees)
            continue;
          double dot = 0;
          for (int64_t c = 0; c < d; ++c)
            dot += query[flatIndex(spec, batch, spec.qHeads, seqQ, d, b, h, i,
                                   c)] *
                   key[flatIndex(spec, batch, spec.kvHeads, seqKV, d, b, kvHead,
                                 j, c)];
          double score = scale * dot;
          if (spec.softcap)
            score = *spec.softcap * std::tanh(score / *spec.softcap);
          scores[j] = score;
          maxScore = std::max(maxScore, score);
        }
        // A sink is one more logit in the denominator, with no value.
        double sink = spec.hasSinks ? sinks[h] : negativeInfinity;
        maxScore = std::max(maxScore, sink);
        double sum = 0;
        for (int64_t j = 0; j < seqKV; ++j)
          if (visible[j])
            sum += std::exp(scores[j] - maxScore);
        if (spec.hasSinks)
          sum += std::exp(sink - maxScore);
        if (lse)
          (*lse)[(b * spec.qHeads + h) * seqQ + i] =
              sum > 0 ? maxScore + std::log(sum) : negativeInfinity;
        for (int64_t e = 0; e < dv; ++e) {
          double out = 0;
          for (int64_t j = 0; j < seqKV; ++j)
            if (visible[j])
              out += std::exp(scores[j] - maxScore) *
                     value[flatIndex(spec, batch, spec.kvHeads, seqKV, dv, b,
                                     kvHead, j, e)];
          // A row that sees no key is 0.
          output[flatIndex(spec, batch, spec.qHeads, seqQ, dv, b, h, i, e)] =
              sum > 0 ? out / sum : 0.0;
        }
      }
    }
  }
  return output;
}

Comparison mlir::gqa::compareToReference(const std::vector<double> &output,
                                         const std::vector<double> &reference) {
  Comparison comparison;
  double errorSquares = 0, referenceSquares = 0;
  for (size_t i = 0; i < output.size(); ++i) {
    if (!std::isfinite(output[i])) {
      ++comparison.nonFinite;
      continue;
    }
    double error = std::abs(output[i] - reference[i]);
    comparison.maxAbsError = std::max(comparison.maxAbsError, error);
    errorSquares += error * error;
    referenceSquares += reference[i] * reference[i];
  }
  comparison.relL2Error = referenceSquares > 0
                              ? std::sqrt(errorSquares / referenceSquares)
                              : std::sqrt(errorSquares);
  return comparison;
}

Comparison
mlir::gqa::compareLseToReference(const std::vector<double> &lse,
                                 const std::vector<double> &reference) {
  Comparison comparison;
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isnan(lse[i]) ||
        std::isfinite(lse[i]) != std::isfinite(reference[i]) ||
        (!std::isfinite(lse[i]) && lse[i] != reference[i])) {
      ++comparison.nonFinite;
      continue;
    }
    if (std::isfinite(reference[i]))
      comparison.maxAbsError =
          std::max(comparison.maxAbsError, std::abs(lse[i] - reference[i]));
  }
  return comparison;
}

double mlir::gqa::lseTolerance(ElementType type) {
  return type == ElementType::F32 ? 1e-4 : 2e-3;
}

double mlir::gqa::relL2Tolerance(ElementType type) {
  switch (type) {
  case ElementType::BF16:
    return 1e-2;
  case ElementType::F16:
    return 2e-3;
  case ElementType::F32:
    return 1e-5;
  }
  return 0;
}
