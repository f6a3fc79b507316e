//===- BlockUtils.h - The work of one block of packed rows ------*- C++ -*-===//
//
// Which KV tiles a block of packed (query position, group head) rows visits,
// which of them it must mask, and how split-KV partitions the tiles: as IR,
// in one place, for gqa-distribute, the GPU kernels and their launches.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_DIALECT_GQA_UTILS_BLOCKUTILS_H
#define GQA_DIALECT_GQA_UTILS_BLOCKUTILS_H

#include "gqa/Dialect/GQA/Utils/MaskUtils.h"

#include <algorithm>

namespace mlir::gqa {

/// What one block of `blockM` packed rows (row `r` is query position `r / g`)
/// works on. All values are index.
struct BlockWork {
  /// The query positions of the block's first and last existing rows.
  Value firstQuery, lastQuery;
  /// The keys they see (emitVisibleKeys); both ends grow with the row.
  KeyRange firstKeys, lastKeys;
  /// The KV tiles of `blockN` keys the block visits, [tileBegin, tileEnd),
  /// cut to its split's share with split-KV; empty when tileBegin >= tileEnd.
  Value tileBegin, tileEnd;
  /// The keys every row of the block sees, [fullBegin, fullEnd): a tile
  /// inside needs no mask.
  Value fullBegin, fullEnd;
};

/// Emits the work of the block whose first packed row is `firstRow` (of `Sq *
/// groupSize`; the block has at least one), with the bottom-right alignment
/// `offset` = kvLen - Sq and `kvLen` valid keys. With split-KV, `split`,
/// `tilesPerSplit` (emitTilesPerSplit) and `numSplits` cut the tiles to split
/// `split`'s; the last split also takes any tiles past the partition (a
/// packed sequence longer than the max_seqlen_k that sized it is still read
/// whole).
BlockWork emitBlockWork(ImplicitLocOpBuilder &b, MaskAttr mask,
                        int64_t groupSize, int64_t blockM, int64_t blockN,
                        Value firstRow, Value seqQ, Value offset, Value kvLen,
                        Value split = Value(), Value tilesPerSplit = Value(),
                        Value numSplits = Value());

/// The rows of a block of at most `rows` rows starting at row `firstRow` of
/// `total` that exist: min(rows, total - firstRow), at least 0.
Value emitRowsInBlock(ImplicitLocOpBuilder &b, Value rows, Value total,
                      Value firstRow);

/// Split-KV: the KV tiles of each of `numSplits` splits of `seqKV` keys in
/// tiles of `blockN`: ceil(ceil(seqKV / blockN) / numSplits). Split `s`
/// covers tiles [s t, (s + 1) t).
Value emitTilesPerSplit(ImplicitLocOpBuilder &b, Value seqKV, int64_t blockN,
                        Value numSplits);

/// The number of splits a launch takes of `seqKV` keys in tiles of `blockN`:
/// min(maxSplits, tiles), evened out so that no split is empty (at least 1).
Value emitSplitCount(ImplicitLocOpBuilder &b, Value seqKV, int64_t blockN,
                     int64_t maxSplits);

/// The (head, position) rows of one block of a merge (the split-KV combine,
/// gqa.merge_states) of rows of `headDimV` values: as many as 128 threads
/// merging 4 values each hold, at least one.
inline int64_t getMergeRowsPerBlock(int64_t headDimV) {
  return std::max<int64_t>(1, 512 / headDimV);
}

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_UTILS_BLOCKUTILS_H
