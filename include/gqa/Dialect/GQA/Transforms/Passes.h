//===- Passes.h - Passes of the gqa dialect ---------------------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_TRANSFORMS_PASSES_H
#define GQA_DIALECT_GQA_TRANSFORMS_PASSES_H

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::gqa {

#define GEN_PASS_DECL
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_TRANSFORMS_PASSES_H
