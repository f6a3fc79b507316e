//===- Passes.h - Passes of the gqa dialect ---------------------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_TRANSFORMS_PASSES_H
#define GQA_DIALECT_GQA_TRANSFORMS_PASSES_H

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
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
