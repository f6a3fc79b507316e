//===- PagedKVCache.cpp - A paged copy of contiguous K and V --------------===//

#include "gqa/Tools/PagedKVCache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

using namespace mlir::gqa;

namespace {

/// Copies every (b, h, j) row of `contiguous` (width elements, the spec's
/// layout) to its slot in `pool`.
void scatterRows(const AttentionSpec &spec, const AttentionSizes &sizes,
                 const PagedKVCache &cache, int64_t width,
                 const HostTensor &contiguous, HostTensor &pool) {
  const int64_t rowBytes = width * elementBytes(spec.elementType);
  const auto *source = static_cast<const uint8_t *>(contiguous.data());
  auto *target = static_cast<uint8_t *>(pool.data());
  for (int64_t b = 0; b < sizes.batch; ++b)
    for (int64_t j = 0; j < sizes.seqKV; ++j) {
      int64_t page =
          cache.blockTable[b * cache.pagesPerSequence + j / cache.pageSize];
      int64_t slot = j % cache.pageSize;
      for (int64_t h = 0; h < spec.kvHeads; ++h) {
        int64_t from = flatIndex(spec, sizes.batch, spec.kvHeads, sizes.seqKV,
                                 width, b, h, j, 0);
        int64_t to =
            ((page * cache.pageSize + slot) * spec.kvHeads + h) * width;
        std::memcpy(target + to * elementBytes(spec.elementType),
                    source + from * elementBytes(spec.elementType), rowBytes);
      }
    }
}

} // namespace

PagedKVCache PagedKVCache::scatter(const AttentionSpec &spec,
                                   const AttentionSizes &sizes,
                                   const HostTensor &key,
                                   const HostTensor &value,
                                   std::mt19937_64 &generator) {
  const int64_t pageSize = spec.pageSize;
  const int64_t pagesPerSequence = (sizes.seqKV + pageSize - 1) / pageSize;
  // A few pages more than the sequences use, so that a wrong page index can
  // land on a page of no sequence.
  const int64_t numPages = sizes.batch * pagesPerSequence + 3;
  std::vector<int32_t> order(numPages);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), generator);
  PagedKVCache cache{
      pageSize,
      pagesPerSequence,
      numPages,
      std::vector<int32_t>(order.begin(),
                           order.begin() + sizes.batch * pagesPerSequence),
      HostTensor(spec.elementType,
                 numPages * pageSize * spec.kvHeads * spec.headDim),
      HostTensor(spec.elementType,
                 numPages * pageSize * spec.kvHeads * spec.valueHeadDim())};
  cache.key.fill(NAN);
  cache.value.fill(NAN);
  scatterRows(spec, sizes, cache, spec.headDim, key, cache.key);
  scatterRows(spec, sizes, cache, spec.valueHeadDim(), value, cache.value);
  return cache;
}
