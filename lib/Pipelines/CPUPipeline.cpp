//===- CPUPipeline.cpp - gqa.attention to LLVM for the host CPU -----------===//

#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Pipelines/Pipelines.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::gqa;

void mlir::gqa::buildGQAToLLVMCPUPipeline(OpPassManager &pm,
                                          const CPUPipelineOptions &options) {
  bufferization::OneShotBufferizePassOptions bufferization;
  bufferization.bufferizeFunctionBoundaries = true;
  bufferization.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferization));

  OpPassManager &funcs = pm.nest<func::FuncOp>();
  funcs.addPass(createGQATile({options.tileQ, options.tileKV}));
  funcs.addPass(createCanonicalizerPass());
  funcs.addPass(createCSEPass());
  funcs.addPass(createLoopInvariantCodeMotionPass());

  pm.addPass(createSCFToControlFlowPass());
  // bf16 <-> f32 conversions as integer arithmetic: the JIT then needs no
  // soft-float helpers the host's runtime library may lack.
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::gqa::registerGQAPipelines() {
  PassPipelineRegistration<CPUPipelineOptions>(
      "gqa-lower-to-cpu",
      "Lower gqa.attention (tensors or memrefs) to the LLVM dialect for the "
      "host CPU: bufferize, gqa-tile, convert to LLVM",
      buildGQAToLLVMCPUPipeline);
}
