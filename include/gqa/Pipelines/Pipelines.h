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
  PassOptions::Option<std::string> schedule{
      *this, "schedule",
      llvm::cl::desc("Whose schedule the CPU runs: cpu, or a GPU's (sm_80, "
                     "sm_90) to prove its numerics"),
      llvm::cl::init("cpu")};
  PassOptions::Option<int64_t> blockM{
      *this, "block-m",
      llvm::cl::desc("Packed rows per block (0: the schedule's choice)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> blockN{
      *this, "block-n",
      llvm::cl::desc("Keys per KV tile (0: the schedule's choice)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> maxSplits{
      *this, "max-splits",
      llvm::cl::desc("Split-KV with at most this many splits (0: off; -1: "
                     "the schedule's choice)"),
      llvm::cl::init(-1)};
  PassOptions::Option<int64_t> threads{
      *this, "threads",
      llvm::cl::desc("Run the blocks as this many parallel tasks on MLIR's "
                     "async runtime (libmlir_async_runtime, which the JIT "
                     "must load; its pool has a thread per core); 1: in one "
                     "loop"),
      llvm::cl::init(1)};
};

/// Adds to `pm` (on a builtin.module) the passes that lower gqa.attention, on
/// tensors or memrefs, to the LLVM dialect for the host CPU: bufferization,
/// gqa-select-schedule, gqa-distribute, convert-gqa-tiles-to-linalg, a
/// second bufferization of the tiles, then the standard conversions to LLVM.
/// Functions keep the `llvm.emit_c_interface` attribute semantics of
/// func-to-llvm.
void buildGQAToLLVMCPUPipeline(OpPassManager &pm,
                               const CPUPipelineOptions &options);

/// Options of the GPU pipeline.
struct GPUPipelineOptions : public PassPipelineOptions<GPUPipelineOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip", llvm::cl::desc("The GPU: sm_80 or sm_90"),
      llvm::cl::init("sm_90")};
  PassOptions::Option<int64_t> blockM{
      *this, "block-m",
      llvm::cl::desc("Packed query rows per CTA (0: by head dim)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> blockN{
      *this, "block-n", llvm::cl::desc("Keys per KV tile (0: by head dim)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> maxRegisters{
      *this, "max-registers",
      llvm::cl::desc("Register cap per thread (nvvm.maxnreg; 0: none)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> minCTAsPerSM{
      *this, "min-ctas-per-sm",
      llvm::cl::desc("CTAs per SM ptxas keeps room for (0: by head dim)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> maxSplits{
      *this, "max-splits",
      llvm::cl::desc("Split-KV with at most this many splits (0: off)"),
      llvm::cl::init(0)};
};

/// The stages of the GPU pipeline, in order. gqa-compile runs them one by
/// one to print the IR in between.
enum class GPUPipelineStage {
  /// one-shot-bufferize: gqa.attention on memrefs.
  Bufferized,
  /// gqa-select-schedule for the chip: each op carries its #gqa.schedule
  /// (tiles, row packing, split-KV, warps), which convert-gqa-to-gpu follows.
  Scheduled,
  /// convert-gqa-to-gpu: gpu.module(s) with the kernels, gpu.launch_func on
  /// the host.
  GPU,
  /// #nvvm.target attached, kernels in the NVVM/LLVM dialects (bare
  /// pointers), host partly lowered.
  NVVM,
  /// The host in the LLVM dialect too (gpu-to-llvm).
  LLVM,
  /// gpu-module-to-binary{format=isa}: each gpu.module is a gpu.binary whose
  /// #gpu.object holds the PTX.
  Binary,
};

/// Whether `chip` is a GPU the pipeline builds for (sm_80 or sm_90).
bool isSupportedGPUChip(llvm::StringRef chip);

/// Adds the passes of one stage of the GPU pipeline to `pm` (on a
/// builtin.module).
void addGQAToPTXPipelineStage(OpPassManager &pm,
                              const GPUPipelineOptions &options,
                              GPUPipelineStage stage);

/// Adds to `pm` (on a builtin.module) the passes that lower gqa.attention, on
/// tensors or memrefs, to PTX: every stage of GPUPipelineStage in order. The
/// kernels use the bare-pointer calling convention; each op's gpu.module
/// becomes a gpu.binary holding its PTX for `options.chip`.
void buildGQAToPTXPipeline(OpPassManager &pm,
                           const GPUPipelineOptions &options);

/// Registers the named pipelines (`gqa-lower-to-cpu`).
void registerGQAPipelines();

/// Registers the named GPU pipeline (`gqa-lower-to-ptx`).
void registerGQAGPUPipelines();

} // namespace mlir::gqa

#endif // GQA_PIPELINES_PIPELINES_H
