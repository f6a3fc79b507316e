//===- Transforms.h - Rewrites of gqa ops -----------------------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_TRANSFORMS_TRANSFORMS_H
#define GQA_DIALECT_GQA_TRANSFORMS_TRANSFORMS_H

#include <cstdint>

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace mlir::gqa {

/// Tile sizes of the online-softmax loop nest.
struct AttentionTileSizes {
  /// Query rows per tile, for each query head of a group.
  int64_t queryRows = 16;
  /// Keys per KV tile.
  int64_t keys = 64;
};

/// Adds the pattern that rewrites bufferized `gqa.attention` ops into the
/// tiled online-softmax loop nest (see the `gqa-tile` pass).
void populateAttentionTilingPatterns(RewritePatternSet &patterns,
                                     AttentionTileSizes tileSizes);

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_TRANSFORMS_TRANSFORMS_H
