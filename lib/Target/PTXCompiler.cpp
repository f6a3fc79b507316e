//===- PTXCompiler.cpp - gqa.attention to PTX and metadata ----------------===//

#include "gqa/Target/PTXCompiler.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Pass/PassManager.h"

using namespace mlir;
using namespace mlir::gqa;

namespace {
constexpr GPUPipelineStage kStages[] = {
    GPUPipelineStage::Bufferized, GPUPipelineStage::Scheduled,
    GPUPipelineStage::GPU,        GPUPipelineStage::NVVM,
    GPUPipelineStage::LLVM,       GPUPipelineStage::Binary};
} // namespace

llvm::StringRef mlir::gqa::getGPUPipelineStageName(GPUPipelineStage stage) {
  switch (stage) {
  case GPUPipelineStage::Bufferized:
    return "bufferized";
  case GPUPipelineStage::Scheduled:
    return "scheduled";
  case GPUPipelineStage::GPU:
    return "gpu";
  case GPUPipelineStage::NVVM:
    return "nvvm";
  case GPUPipelineStage::LLVM:
    return "llvm";
  case GPUPipelineStage::Binary:
    return "binary";
  }
  return "";
}

std::optional<GPUPipelineStage>
mlir::gqa::parseGPUPipelineStage(llvm::StringRef name) {
  for (GPUPipelineStage stage : kStages)
    if (getGPUPipelineStageName(stage) == name)
      return stage;
  return std::nullopt;
}

FailureOr<std::vector<CompiledKernelSet>> mlir::gqa::compileToPTX(
    ModuleOp module, const GPUPipelineOptions &options, GPUPipelineStage last,
    llvm::function_ref<LogicalResult(GPUPipelineStage, ModuleOp)> afterStage) {
  if (!isSupportedGPUChip(options.chip))
    return module.emitError() << "unsupported chip '" << options.chip
                              << "' (expected sm_80 or sm_90)";
  bool hasOp = false;
  module.walk([&](Operation *op) {
    if (isa<AttentionOp, MergeStatesOp>(op))
      hasOp = true;
  });
  if (!hasOp)
    return module.emitError()
           << "the input holds no gqa.attention or gqa.merge_states op";

  std::vector<KernelSetMetadata> sets;
  for (GPUPipelineStage stage : kStages) {
    PassManager pm(module.getContext());
    addGQAToPTXPipelineStage(pm, options, stage);
    if (failed(pm.run(module)))
      return failure();
    // The conversion's attributes do not survive the lowering to NVVM: read
    // the metadata right after it.
    if (stage == GPUPipelineStage::GPU) {
      FailureOr<std::vector<KernelSetMetadata>> collected =
          collectKernelSets(module);
      if (failed(collected))
        return failure();
      sets = std::move(*collected);
    }
    if (afterStage && failed(afterStage(stage, module)))
      return failure();
    if (stage == last)
      break;
  }
  std::vector<CompiledKernelSet> compiled;
  if (last != GPUPipelineStage::Binary)
    return compiled;
  for (KernelSetMetadata &set : sets) {
    FailureOr<std::string> ptx = extractPTX(module, set.moduleName);
    if (failed(ptx))
      return failure();
    // A function the PTX declares but does not define (a libdevice one)
    // would only fail when the driver loads it.
    size_t declaration = ptx->find(".extern .func");
    if (declaration != std::string::npos) {
      StringRef rest = StringRef(*ptx).substr(declaration);
      StringRef name = rest.take_until([](char c) { return c == '\n'; });
      return module.emitError()
             << "the PTX of @" << set.moduleName
             << " calls a function it does not define: '" << name.trim() << "'";
    }
    compiled.push_back({std::move(set), std::move(*ptx)});
  }
  return compiled;
}

std::string mlir::gqa::getKernelSetPTXPath(llvm::StringRef stem, size_t index,
                                           size_t count) {
  std::string path = stem.str();
  if (count > 1)
    path += "." + std::to_string(index);
  return path + ".ptx";
}
