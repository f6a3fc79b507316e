//===- PagedKVCache.h - A paged copy of contiguous K and V ------*- C++ -*-===//
//
// The tools check paged attention against the contiguous reference: the same
// keys and values, scattered into page pools through a random block table.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_TOOLS_PAGEDKVCACHE_H
#define GQA_TOOLS_PAGEDKVCACHE_H

#include "gqa/Tools/AttentionSpec.h"
#include "gqa/Tools/HostTensor.h"

#include <cstdint>
#include <random>
#include <vector>

namespace mlir::gqa {

/// K and V as page pools [numPages, pageSize, Hkv, D] and the block table
/// [batch, pagesPerSequence] that maps each sequence's pages into them.
struct PagedKVCache {
  int64_t pageSize = 0;
  /// ceil(Skv / pageSize): the block table's row length. The paged KV length
  /// is pagesPerSequence * pageSize.
  int64_t pagesPerSequence = 0;
  /// More than the sequences use: some pages belong to no sequence.
  int64_t numPages = 0;
  std::vector<int32_t> blockTable;
  HostTensor key, value;

  /// Scatters `key` and `value` (contiguous, in the spec's layout, of
  /// `sizes`) into pools of `spec.pageSize`-token pages, in a random order
  /// drawn from `generator`. Every slot no sequence fills (the pages of no
  /// sequence, the tail of a last page) is NaN: a kernel that reads one
  /// into its result fails the comparison.
  static PagedKVCache scatter(const AttentionSpec &spec,
                              const AttentionSizes &sizes,
                              const HostTensor &key, const HostTensor &value,
                              std::mt19937_64 &generator);
};

} // namespace mlir::gqa

#endif // GQA_TOOLS_PAGEDKVCACHE_H
