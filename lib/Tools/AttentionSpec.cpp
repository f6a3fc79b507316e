//===- AttentionSpec.cpp - One attention configuration --------------------===//

#include "gqa/Tools/AttentionSpec.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

using namespace mlir::gqa;

const char *mlir::gqa::elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F16:
    return "f16";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F32:
    return "f32";
  }
  return "?";
}

std::optional<ElementType>
mlir::gqa::parseElementType(const std::string &name) {
  for (ElementType type :
       {ElementType::F16, ElementType::BF16, ElementType::F32})
    if (name == elementTypeName(type))
      return type;
  return std::nullopt;
}

int64_t mlir::gqa::elementBytes(ElementType type) {
  return type == ElementType::F32 ? 4 : 2;
}

double AttentionSpec::resolvedScale() const {
  return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(headDim));
}

const char *AttentionSpec::maskName() const {
  if (hasWindow())
    return "window";
  return causal ? "causal" : "none";
}

/// Sets `type` from "f16", "bf16" or "f32"; returns "" or a message.
static std::string setElementTypeFrom(const std::string &name,
                                      ElementType &type) {
  std::optional<ElementType> parsed = parseElementType(name);
  if (!parsed)
    return "unknown dtype '" + name + "' (expected f16, bf16 or f32)";
  type = *parsed;
  return "";
}

/// Sets `bshd` from "bhsd" or "bshd"; returns "" or a message.
static std::string setLayoutFrom(const std::string &name, bool &bshd) {
  if (name != "bhsd" && name != "bshd")
    return "unknown layout '" + name + "' (expected bhsd or bshd)";
  bshd = name == "bshd";
  return "";
}

std::string AttentionSpec::setElementType(const std::string &name) {
  return setElementTypeFrom(name, elementType);
}

std::string AttentionSpec::setLayout(const std::string &name) {
  return setLayoutFrom(name, bshd);
}

std::string MergeStatesSpec::setElementType(const std::string &name) {
  return setElementTypeFrom(name, elementType);
}

std::string MergeStatesSpec::setLayout(const std::string &name) {
  return setLayoutFrom(name, bshd);
}

std::string MergeStatesSpec::validate() const {
  std::ostringstream error;
  if (heads <= 0)
    error << "heads must be positive, got " << heads;
  else if (headDimV <= 0)
    error << "head-dim-v must be positive, got " << headDimV;
  else if (varlen && !bshd)
    error << "packed tokens (varlen) are [T, H, Dv]: the layout must be bshd";
  return error.str();
}

std::string AttentionSpec::validate() const {
  std::ostringstream error;
  if (qHeads <= 0)
    error << "q-heads must be positive, got " << qHeads;
  else if (kvHeads <= 0)
    error << "kv-heads must be positive, got " << kvHeads;
  else if (qHeads % kvHeads != 0)
    error << "q-heads (" << qHeads << ") is not a multiple of kv-heads ("
          << kvHeads << ")";
  else if (headDim <= 0)
    error << "head-dim must be positive, got " << headDim;
  else if (headDimV < 0)
    error << "head-dim-v must be positive, got " << headDimV;
  else if (pageSize < 0)
    error << "page-size must be positive (or 0: not paged), got " << pageSize;
  else if (windowLeft < -1 || windowRight < -1)
    error << "window bounds must be >= 0 or -1 (unbounded), got " << windowLeft
          << "," << windowRight;
  else if (causal && windowRight > 0)
    error << "a causal mask admits no key after the diagonal: window right "
             "must be 0 or -1, got "
          << windowRight;
  else if (hasWindow() && windowLeft == -1 &&
           (windowRight == -1 || (causal && windowRight <= 0)))
    error << "window " << windowLeft << "," << windowRight << " bounds no key";
  else if (scale && !(*scale > 0 && std::isfinite(*scale)))
    error << "scale must be positive and finite, got " << *scale;
  else if (softcap && !(*softcap > 0 && std::isfinite(*softcap)))
    error << "softcap must be positive and finite, got " << *softcap;
  else if (varlen && !bshd)
    error << "ragged queries are packed tokens [T, H, D]: the layout must be "
             "bshd";
  else if (packedKV && !varlen)
    error << "packed K/V (cu_seqlens_k) come with ragged queries "
             "(cu_seqlens_q: q-lens, --varlen)";
  else if (packedKV && isPaged())
    error << "packed K/V and a paged cache exclude each other";
  return error.str();
}

std::string AttentionSizes::validate(const AttentionSpec &spec) const {
  std::ostringstream error;
  if (batch <= 0)
    error << "batch must be positive, got " << batch;
  else if (seqQ <= 0)
    error << "seq-q must be positive, got " << seqQ;
  else if (seqKV <= 0)
    error << "seq-kv must be positive, got " << seqKV;
  else if (spec.hasKVLens && static_cast<int64_t>(kvLens.size()) != batch)
    error << "kv-lens has " << kvLens.size() << " entries, but batch is "
          << batch;
  else if (!spec.hasKVLens && !spec.packedKV && !kvLens.empty())
    error << "kv-lens given for a configuration without KV lengths";
  else if (spec.packedKV && static_cast<int64_t>(kvLens.size()) != batch)
    error << "packed K/V need one kv-lens entry per sequence (" << batch
          << "), got " << kvLens.size();
  else if (spec.varlen && static_cast<int64_t>(qLens.size()) != batch)
    error << "q-lens has " << qLens.size() << " entries, but batch is "
          << batch;
  else if (!spec.varlen && !qLens.empty())
    error << "q-lens given for a configuration without ragged queries";
  if (!error.str().empty())
    return error.str();
  for (size_t b = 0; b < qLens.size(); ++b)
    if (qLens[b] < 0 || qLens[b] > seqQ)
      return "q-lens[" + std::to_string(b) + "] = " + std::to_string(qLens[b]) +
             " is outside [0, " + std::to_string(seqQ) + "]";
  // Every array's bytes must be a 64-bit count (the arrays are allocated
  // on the host, and indexed in 64 bits by every kernel).
  int64_t widest = std::max(spec.headDim, spec.valueHeadDim());
  for (auto [name, heads, seq] :
       {std::tuple<const char *, int64_t, int64_t>{"query", spec.qHeads, seqQ},
        {"key", spec.kvHeads, seqKV}}) {
    int64_t bytes = elementBytes(spec.elementType);
    for (int64_t factor : {batch, heads, seq, widest}) {
      if (__builtin_mul_overflow(bytes, factor, &bytes)) {
        error << "the " << name << " of batch " << batch << ", " << heads
              << " heads, " << seq << " positions and head dim " << widest
              << " has more bytes than a 64-bit count holds";
        return error.str();
      }
    }
  }
  for (size_t b = 0; b < kvLens.size(); ++b) {
    if (kvLens[b] < 0 || kvLens[b] > seqKV) {
      error << "kv-lens[" << b << "] = " << kvLens[b]
            << " is outside [0, seq-kv = " << seqKV << "]";
      break;
    }
  }
  return error.str();
}

int64_t AttentionSizes::totalQueries() const {
  if (qLens.empty())
    return batch * seqQ;
  int64_t total = 0;
  for (int64_t length : qLens)
    total += length;
  return total;
}
int64_t AttentionSizes::totalKeys(const AttentionSpec &spec) const {
  if (!spec.packedKV)
    return batch * seqKV;
  int64_t total = 0;
  for (int64_t length : kvLens)
    total += length;
  return total;
}
std::vector<int32_t>
AttentionSizes::offsets(const std::vector<int64_t> &lengths) {
  std::vector<int32_t> offsets = {0};
  for (int64_t length : lengths)
    offsets.push_back(offsets.back() + static_cast<int32_t>(length));
  return offsets;
}

int64_t AttentionSizes::queryElements(const AttentionSpec &spec) const {
  return totalQueries() * spec.qHeads * spec.headDim;
}
int64_t AttentionSizes::keyElements(const AttentionSpec &spec) const {
  return totalKeys(spec) * spec.kvHeads * spec.headDim;
}
int64_t AttentionSizes::valueElements(const AttentionSpec &spec) const {
  return totalKeys(spec) * spec.kvHeads * spec.valueHeadDim();
}
int64_t AttentionSizes::outputElements(const AttentionSpec &spec) const {
  return totalQueries() * spec.qHeads * spec.valueHeadDim();
}

int64_t AttentionSizes::lseElements(const AttentionSpec &spec) const {
  return totalQueries() * spec.qHeads;
}

int64_t mlir::gqa::flatIndex(const AttentionSpec &spec, int64_t batch,
                             int64_t heads, int64_t seq, int64_t dim, int64_t b,
                             int64_t h, int64_t s, int64_t d) {
  (void)batch;
  if (spec.bshd)
    return ((b * seq + s) * heads + h) * dim + d;
  return ((b * heads + h) * seq + s) * dim + d;
}
