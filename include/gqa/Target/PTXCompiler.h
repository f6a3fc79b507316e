//===- PTXCompiler.h - gqa.attention to PTX and metadata --------*- C++ -*-===//
//
// Runs the GPU pipeline (gqa/Pipelines/Pipelines.h) stage by stage on a
// module holding gqa.attention (and gqa.merge_states) ops and returns, per
// op, its PTX and its kernel metadata. What gqa-compile (and any embedder) calls.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_TARGET_PTXCOMPILER_H
#define GQA_TARGET_PTXCOMPILER_H

#include "gqa/Pipelines/Pipelines.h"
#include "gqa/Target/KernelMetadata.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::gqa {

/// The kernels of one gqa.attention or gqa.merge_states op.
struct CompiledKernelSet {
  KernelSetMetadata metadata;
  std::string ptx;
};

/// The split-KV limit gqa-compile and the C API use unless told otherwise:
/// enough splits for a batch-1 decode of 8 KV heads to give the 132 SMs of an
/// H100/H200 about two CTAs each.
constexpr int64_t kDefaultMaxSplits = 32;

/// The PTX file of kernel set `index` of `count` written under `stem`:
/// `stem.ptx` for one set, `stem.<index>.ptx` for more.
std::string getKernelSetPTXPath(llvm::StringRef stem, size_t index,
                                size_t count);

/// The name of a stage as gqa-compile spells it (`bufferized`, `gpu`,
/// `nvvm`, `llvm`, `binary`).
llvm::StringRef getGPUPipelineStageName(GPUPipelineStage stage);
/// The stage named `name`, if any.
std::optional<GPUPipelineStage> parseGPUPipelineStage(llvm::StringRef name);

/// Lowers `module` in place through the stages of the GPU pipeline up to and
/// including `last`, calling `afterStage` (when given) after each one. When
/// `last` is GPUPipelineStage::Binary, returns the PTX and metadata of each
/// converted gqa.attention and gqa.merge_states, in module order; otherwise
/// an empty list. Fails (after diagnostics on the module's context) when a
/// stage fails, when `options.chip` is not sm_80 or sm_90, or when the
/// module holds neither op.
FailureOr<std::vector<CompiledKernelSet>> compileToPTX(
    ModuleOp module, const GPUPipelineOptions &options,
    GPUPipelineStage last = GPUPipelineStage::Binary,
    llvm::function_ref<LogicalResult(GPUPipelineStage, ModuleOp)> afterStage =
        nullptr);

} // namespace mlir::gqa

#endif // GQA_TARGET_PTXCOMPILER_H
