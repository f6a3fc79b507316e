//===- AttentionSpec.h - One attention configuration ------------*- C++ -*-===//
//
// What the tools (gqa-run, gqa-compile) are asked to compile and run: the
// attributes of one gqa.attention op and, for a run, its sizes. Plain C++:
// the host-side reference and checks use it without MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_TOOLS_ATTENTIONSPEC_H
#define GQA_TOOLS_ATTENTIONSPEC_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::gqa {

/// Element type of the four attention tensors.
enum class ElementType { F16, BF16, F32 };

/// "f16", "bf16" or "f32".
const char *elementTypeName(ElementType type);
/// Parses "f16", "bf16" or "f32".
std::optional<ElementType> parseElementType(const std::string &name);
/// Bytes of one element.
int64_t elementBytes(ElementType type);

/// The attributes of one attention op (what a compiled kernel is
/// specialised for).
struct AttentionSpec {
  int64_t qHeads = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  /// Head dim of V and the output; 0 means equal to headDim.
  int64_t headDimV = 0;
  ElementType elementType = ElementType::BF16;
  /// bshd (B, S, H, D) when true, else bhsd (B, H, S, D).
  bool bshd = false;
  bool causal = false;
  /// The sliding window; -1 leaves a side unbounded.
  int64_t windowLeft = -1;
  int64_t windowRight = -1;
  std::optional<double> scale;
  std::optional<double> softcap;
  /// Whether the op takes per-sequence KV lengths.
  bool hasKVLens = false;
  /// Tokens per page of a paged KV cache (a block table maps each sequence's
  /// pages into K/V pools [pages, pageSize, Hkv, D]); 0: contiguous K/V.
  int64_t pageSize = 0;
  /// Whether the op takes one attention-sink logit per query head (f32 [Hq]).
  bool hasSinks = false;
  /// Whether the op also returns each row's log-sum-exp (f32 [B, Hq, Sq],
  /// or [Hq, T] when varlen).
  bool returnLse = false;
  /// A ragged batch: Q and the output are packed tokens [T, Hq, D] split by
  /// cu_seqlens_q (the layout is bshd).
  bool varlen = false;
  /// With varlen: K and V are packed tokens [Tk, Hkv, D] split by
  /// cu_seqlens_k (the KV lengths), not a [B, Skv, Hkv, D] cache.
  bool packedKV = false;

  int64_t groupSize() const { return qHeads / kvHeads; }
  int64_t valueHeadDim() const { return headDimV ? headDimV : headDim; }
  bool hasWindow() const { return windowLeft >= 0 || windowRight >= 0; }
  bool isPaged() const { return pageSize > 0; }
  /// The scale applied to the scores: the given one, or 1/sqrt(D).
  double resolvedScale() const;
  /// "bshd" or "bhsd".
  const char *layoutName() const { return bshd ? "bshd" : "bhsd"; }
  /// "none", "causal" or "window".
  const char *maskName() const;

  /// Sets the element type from "f16", "bf16" or "f32"; returns "" or a
  /// one-line message.
  std::string setElementType(const std::string &name);
  /// Sets the layout from "bhsd" or "bshd"; returns "" or a message.
  std::string setLayout(const std::string &name);

  /// An empty string when valid, else a one-line message naming the problem.
  std::string validate() const;
};

/// What one gqa.merge_states merges: two partial attention results of
/// `heads` heads of `headDimV` values (and the merged one), with their f32
/// log-sum-exps [B, H, S], or, varlen, packed tokens [T, H, Dv] with
/// log-sum-exps [H, T].
struct MergeStatesSpec {
  int64_t heads = 0;
  int64_t headDimV = 0;
  ElementType elementType = ElementType::BF16;
  bool bshd = false;
  bool varlen = false;

  /// As AttentionSpec's.
  std::string setElementType(const std::string &name);
  std::string setLayout(const std::string &name);
  const char *layoutName() const { return bshd ? "bshd" : "bhsd"; }

  /// An empty string when valid, else a one-line message naming the problem.
  std::string validate() const;
};

/// The sizes of one run.
struct AttentionSizes {
  int64_t batch = 1;
  int64_t seqQ = 1;
  int64_t seqKV = 1;
  /// Per-sequence KV lengths (`batch` entries) when the spec has them (and
  /// the segments of packed K/V).
  std::vector<int64_t> kvLens;
  /// Varlen: the queries of each sequence (`batch` entries; seqQ is their
  /// maximum).
  std::vector<int64_t> qLens;

  /// The query rows of all sequences: T when varlen, else batch * seqQ.
  int64_t totalQueries() const;
  /// The key rows K holds: Tk when packed, else batch * seqKV.
  int64_t totalKeys(const AttentionSpec &spec) const;
  /// The B+1 offsets of segments of `lengths` (cu_seqlens).
  static std::vector<int32_t> offsets(const std::vector<int64_t> &lengths);

  /// An empty string when valid for `spec`, else a one-line message.
  std::string validate(const AttentionSpec &spec) const;

  /// Elements of Q/O, K and V (the output has Dv per row).
  int64_t queryElements(const AttentionSpec &spec) const;
  int64_t keyElements(const AttentionSpec &spec) const;
  int64_t valueElements(const AttentionSpec &spec) const;
  int64_t outputElements(const AttentionSpec &spec) const;
  /// Elements of the log-sum-exps: Hq per query row.
  int64_t lseElements(const AttentionSpec &spec) const;
};

/// The flat (row-major) offset of element (b, h, s, d) of a tensor with
/// `heads` heads, `seq` positions and head dim `dim` in the spec's layout.
int64_t flatIndex(const AttentionSpec &spec, int64_t batch, int64_t heads,
                  int64_t seq, int64_t dim, int64_t b, int64_t h, int64_t s,
                  int64_t d);

} // namespace mlir::gqa

#endif // GQA_TOOLS_ATTENTIONSPEC_H
