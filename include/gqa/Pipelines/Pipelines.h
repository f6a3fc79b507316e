//===- Pipelines.h - gqa's lowering pipelines -------------------*- C++ -*-===//
//
// The pipelines that take gqa.attention to executable code, as functions
// that other compilers can call on their own pass managers, and registered
// as named pipelines for gqa-opt.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_PIPELINES_PIPELINES_H
#define GQA_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::gqa {

/// Options of the CPU pipeline.
struct CPUPipelineOptions : public PassPipelineOptions<CPUPipelineOptions> {
  PassOptions::Option<int64_t> tileQ{
      *this, "tile-q", llvm::cl::desc("Query rows per tile (gqa-tile)"),
      llvm::cl::init(16)};
  PassOptions::Option<int64_t> tileKV{
      *this, "tile-kv", llvm::cl::desc("Keys per KV tile (gqa-tile)"),
      llvm::cl::init(64)};
};

/// Adds to `pm` (on a builtin.module) the passes that lower gqa.attention, on
/// tensors or memrefs, to the LLVM dialect for the host CPU: bufferization,
/// gqa-tile, then the standard conversions to LLVM. Functions keep the
/// `llvm.emit_c_interface` attribute semantics of func-to-llvm.
void buildGQAToLLVMCPUPipeline(OpPassManager &pm,
                               const CPUPipelineOptions &options);

/// Registers the named pipelines (`gqa-lower-to-cpu`).
void registerGQAPipelines();

} // namespace mlir::gqa

#endif // GQA_PIPELINES_PIPELINES_H
