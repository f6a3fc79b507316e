//===- CPUPipeline.cpp - gqa.attention to LLVM for the host CPU -----------===//

#include "gqa/Conversion/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Pipelines/Pipelines.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Async/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
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
  GQASelectScheduleOptions schedule;
  schedule.target = options.schedule;
  schedule.blockM = options.blockM;
  schedule.blockN = options.blockN;
  schedule.maxSplits = options.maxSplits;
  funcs.addPass(createGQASelectSchedule(schedule));
  funcs.addPass(createGQADistribute());
  funcs.addPass(createConvertGQATilesToLinalg());
  funcs.addPass(createCanonicalizerPass());
  funcs.addPass(createCSEPass());
  // The blocks run one after the other, or as tasks of the async runtime.
  bool parallel = options.threads > 1;
  if (parallel)
    funcs.addPass(createForallToParallelLoopPass());
  else
    funcs.addPass(createForallToForLoopPass());

  // The tiles become buffers (the loop-invariant ones hoisted out of the KV
  // loop where their sizes allow), freed by the deallocation pipeline.
  pm.addPass(bufferization::createOneShotBufferizePass(bufferization));
  OpPassManager &buffers = pm.nest<func::FuncOp>();
  buffers.addPass(bufferization::createBufferHoistingPass());
  buffers.addPass(bufferization::createBufferLoopHoistingPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  OpPassManager &loops = pm.nest<func::FuncOp>();
  loops.addPass(createConvertLinalgToLoopsPass());
  loops.addPass(createGQAApproximateMath());
  loops.addPass(createCanonicalizerPass());
  loops.addPass(createCSEPass());
  loops.addPass(createLoopInvariantCodeMotionPass());
  if (parallel) {
    AsyncParallelForPassOptions tasks;
    tasks.numWorkerThreads = options.threads;
    // Every block is a task: a block is thousands of operations already.
    tasks.minTaskSize = 1;
    pm.addPass(createAsyncParallelForPass(tasks));
    pm.addPass(createAsyncToAsyncRuntimePass());
    pm.addPass(createAsyncRuntimeRefCountingPass());
    pm.addPass(createAsyncRuntimeRefCountingOptPass());
    pm.addPass(createConvertAsyncToLLVMPass());
  }

  // The register-resident vectors of the tile lowering.
  pm.addPass(createConvertVectorToSCFPass());
  pm.addPass(createSCFToControlFlowPass());
  // bf16 <-> f32 conversions as integer arithmetic: the JIT then needs no
  // soft-float helpers the host's runtime library may lack.
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertVectorToLLVMPass());
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
      "host CPU: bufferize, schedule, distribute, lower the tiles, convert to "
      "LLVM",
      buildGQAToLLVMCPUPipeline);
}
