//===- GPUPipeline.cpp - gqa.attention to PTX -----------------------------===//
//
// bufferize -> convert-gqa-to-gpu -> NVVM (bare pointers) -> LLVM ->
// gpu-module-to-binary{format=isa}. The device passes follow upstream's
// gpu-lower-to-nvvm-pipeline (GPUToNVVMPipeline.cpp), split into stages
// that gqa-compile can print, with the chip and tile options of gqa.
//
//===----------------------------------------------------------------------===//

#include "gqa/Conversion/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Pipelines/Pipelines.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::gqa;

bool mlir::gqa::isSupportedGPUChip(llvm::StringRef chip) {
  return chip == "sm_80" || chip == "sm_90";
}

void mlir::gqa::addGQAToPTXPipelineStage(OpPassManager &pm,
                                         const GPUPipelineOptions &options,
                                         GPUPipelineStage stage) {
  switch (stage) {
  case GPUPipelineStage::Bufferized: {
    bufferization::OneShotBufferizePassOptions bufferization;
    bufferization.bufferizeFunctionBoundaries = true;
    bufferization.functionBoundaryTypeConversion =
        bufferization::LayoutMapOption::IdentityLayoutMap;
    pm.addPass(bufferization::createOneShotBufferizePass(bufferization));
    return;
  }
  case GPUPipelineStage::Scheduled: {
    GQASelectScheduleOptions schedule;
    schedule.target = options.chip;
    schedule.blockM = options.blockM;
    schedule.blockN = options.blockN;
    schedule.maxSplits = options.maxSplits;
    schedule.maxRegisters = options.maxRegisters;
    schedule.minCTAsPerSM = options.minCTAsPerSM;
    pm.addPass(createGQASelectSchedule(schedule));
    return;
  }
  case GPUPipelineStage::GPU: {
    ConvertGQAToGPUOptions conversion;
    conversion.blockM = options.blockM;
    conversion.blockN = options.blockN;
    conversion.maxRegisters = options.maxRegisters;
    conversion.minCTAsPerSM = options.minCTAsPerSM;
    conversion.maxSplits = options.maxSplits;
    pm.addPass(createConvertGQAToGPU(conversion));
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    return;
  }
  case GPUPipelineStage::NVVM: {
    // Common to host and device (upstream's buildCommonPassPipeline; no
    // outlining: the kernels are gpu.func already).
    pm.addPass(createConvertNVGPUToNVVMPass());
    pm.addPass(createConvertVectorToSCFPass());
    pm.addPass(createSCFToControlFlowPass());
    pm.addPass(createConvertNVVMToLLVMPass());
    pm.addPass(createConvertFuncToLLVMPass());
    pm.addPass(memref::createExpandStridedMetadataPass());
    GpuNVVMAttachTargetOptions target;
    target.chip = options.chip;
    // PTX ISA 8.0: bf16 mma.sync, cp.async and ldmatrix, for both chips.
    target.features = "+ptx80";
    target.optLevel = 3;
    pm.addPass(createGpuNVVMAttachTarget(target));
    pm.addPass(createLowerAffinePass());
    pm.addPass(createArithToLLVMConversionPass());
    pm.addPass(createConvertIndexToLLVMPass());
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    // The kernels (upstream's buildGpuPassPipeline), with 64-bit indices:
    // global offsets of a KV cache exceed 2^31 elements.
    OpPassManager &device = pm.nest<gpu::GPUModuleOp>();
    device.addPass(createStripDebugInfoPass());
    ConvertGpuOpsToNVVMOpsOptions nvvm;
    nvvm.useBarePtrCallConv = true;
    device.addPass(createConvertGpuOpsToNVVMOps(nvvm));
    device.addPass(createCanonicalizerPass());
    device.addPass(createCSEPass());
    device.addPass(createReconcileUnrealizedCastsPass());
    return;
  }
  case GPUPipelineStage::LLVM: {
    GpuToLLVMConversionPassOptions host;
    host.kernelBarePtrCallConv = true;
    pm.addPass(createGpuToLLVMConversionPass(host));
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    pm.addPass(createReconcileUnrealizedCastsPass());
    return;
  }
  case GPUPipelineStage::Binary: {
    GpuModuleToBinaryPassOptions binary;
    binary.compilationTarget = "isa";
    pm.addPass(createGpuModuleToBinaryPass(binary));
    return;
  }
  }
}

void mlir::gqa::buildGQAToPTXPipeline(OpPassManager &pm,
                                      const GPUPipelineOptions &options) {
  for (GPUPipelineStage stage :
       {GPUPipelineStage::Bufferized, GPUPipelineStage::Scheduled,
        GPUPipelineStage::GPU, GPUPipelineStage::NVVM, GPUPipelineStage::LLVM,
        GPUPipelineStage::Binary})
    addGQAToPTXPipelineStage(pm, options, stage);
}

void mlir::gqa::registerGQAGPUPipelines() {
  PassPipelineRegistration<GPUPipelineOptions>(
      "gqa-lower-to-ptx",
      "Lower gqa.attention (tensors or memrefs) to PTX: bufferize, "
      "gqa-select-schedule, convert-gqa-to-gpu, NVVM with bare pointers, "
      "gpu-module-to-binary",
      buildGQAToPTXPipeline);
}
