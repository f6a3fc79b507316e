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
  const int64_t batch = sizes.batch, seqKV = sizes.seqKV;
  const int64_t d = spec.headDim, dv = spec.valueHeadDim();
  const int64_t hq = spec.qHeads, hkv = spec.kvHeads;
  const double scale = spec.resolvedScale();
  std::vector<double> output(static_cast<size_t>(sizes.outputElements(spec)));
  if (lse)
    lse->assign(static_cast<size_t>(sizes.lseElements(spec)), 0.0);
  const double negativeInfinity = -std::numeric_limits<double>::infinity();
  // Where each sequence's rows are: packed tokens start at the running sum
  // of the lengths before it.
  std::vector<int32_t> qStart = AttentionSizes::offsets(sizes.qLens);
  std::vector<int32_t> kStart = AttentionSizes::offsets(sizes.kvLens);
  const int64_t tokens = sizes.totalQueries();
  auto queryAt = [&](int64_t b, int64_t h, int64_t i, int64_t width,
                     int64_t c) {
    if (spec.varlen)
      return ((qStart[b] + i) * hq + h) * width + c;
    return flatIndex(spec, batch, hq, sizes.seqQ, width, b, h, i, c);
  };
  auto keyAt = [&](int64_t b, int64_t h, int64_t j, int64_t width, int64_t c) {
    if (spec.packedKV)
      return ((kStart[b] + j) * hkv + h) * width + c;
    return flatIndex(spec, batch, hkv, seqKV, width, b, h, j, c);
  };
  std::vector<double> scores;
  std::vector<bool> visible;

  for (int64_t b = 0; b < batch; ++b) {
    const int64_t seqQ = spec.varlen ? sizes.qLens[b] : sizes.seqQ;
    // The keys this sequence's K/V hold, and the valid ones.
    const int64_t keys = spec.packedKV ? sizes.kvLens[b] : seqKV;
    const int64_t length = spec.hasKVLens || spec.packedKV
                               ? std::min(sizes.kvLens[b], keys)
                               : keys;
    const int64_t offset = length - seqQ;
    scores.assign(keys, 0.0);
    visible.assign(keys, false);
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t kvHead = h / spec.groupSize();
      for (int64_t i = 0; i < seqQ; ++i) {
        const int64_t diagonal = i + offset;
        double maxScore = negativeInfinity;
        for (int64_t j = 0; j < keys; ++j) {
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
            dot +=
                query[queryAt(b, h, i, d, c)] * key[keyAt(b, kvHead, j, d, c)];
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
        for (int64_t j = 0; j < keys; ++j)
          if (visible[j])
            sum += std::exp(scores[j] - maxScore);
        if (spec.hasSinks)
          sum += std::exp(sink - maxScore);
        if (lse) {
          int64_t at = spec.varlen ? h * tokens + qStart[b] + i
                                   : (b * hq + h) * seqQ + i;
          (*lse)[at] = sum > 0 ? maxScore + std::log(sum) : negativeInfinity;
        }
        for (int64_t e = 0; e < dv; ++e) {
          double out = 0;
          for (int64_t j = 0; j < keys; ++j)
            if (visible[j])
              out += std::exp(scores[j] - maxScore) *
                     value[keyAt(b, kvHead, j, dv, e)];
          // A row that sees no key is 0.
          output[queryAt(b, h, i, dv, e)] = sum > 0 ? out / sum : 0.0;
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
