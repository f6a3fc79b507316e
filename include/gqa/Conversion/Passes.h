//===- Passes.h - Conversions out of the gqa dialect ------------*- C++ -*-===//

#ifndef GQA_CONVERSION_PASSES_H
#define GQA_CONVERSION_PASSES_H

#include "gqa/Conversion/GQATileToLinalg/GQATileToLinalg.h"
#include "gqa/Conversion/GQAToGPU/GQAToGPU.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::gqa {

#define GEN_PASS_DECL
#include "gqa/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "gqa/Conversion/Passes.h.inc"

} // namespace mlir::gqa

#endif // GQA_CONVERSION_PASSES_H
