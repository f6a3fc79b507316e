//===- GQATileToLinalg.h - The tile-level ops for the CPU -------*- C++ -*-===//
//
// The lowering of gqa's tile-level ops (the tiled form gqa-distribute
// produces) onto linalg on tensors, tensor.generate and scf loops, for the
// CPU pipeline.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_CONVERSION_GQATILETOLINALG_GQATILETOLINALG_H
#define GQA_CONVERSION_GQATILETOLINALG_GQATILETOLINALG_H

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace mlir::gqa {

/// Adds the patterns that rewrite each tile-level op (gqa.load_query_tile,
/// gqa.scores, gqa.online_softmax, ..., gqa.combine_splits) into linalg,
/// tensor, arith, math, memref and scf ops.
void populateGQATileToLinalgPatterns(RewritePatternSet &patterns);

} // namespace mlir::gqa

#endif // GQA_CONVERSION_GQATILETOLINALG_GQATILETOLINALG_H
