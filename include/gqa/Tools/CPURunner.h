//===- CPURunner.h - JIT-compile and run attention on the CPU ---*- C++ -*-===//

#ifndef GQA_TOOLS_CPURUNNER_H
#define GQA_TOOLS_CPURUNNER_H

#include "gqa/Tools/AttentionSpec.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>

namespace mlir {
class ExecutionEngine;
class ModuleOp;
} // namespace mlir

namespace mlir::gqa {

/// Which schedule the CPU runs, and what of it is forced (0, or -1 for
/// `maxSplits`: the schedule's choice). See gqa-select-schedule.
struct CPUSchedule {
  /// cpu, sm_80 or sm_90.
  std::string target = "cpu";
  int64_t blockM = 0;
  int64_t blockN = 0;
  int64_t maxSplits = -1;
  /// Threads the blocks run on (MLIR's async runtime); 1: one loop.
  int64_t threads = 1;
};

/// A module lowered through gqa-lower-to-cpu and JIT-compiled: the entry
/// point of one function's C interface.
class JITFunction {
public:
  /// Lowers `module` through gqa-lower-to-cpu with `schedule` (its blocks
  /// on MLIR's async runtime when schedule.threads > 1), compiles it for
  /// this host and looks up the packed wrapper of `name`'s C interface.
  static llvm::Expected<std::unique_ptr<JITFunction>>
  compile(ModuleOp module, const CPUSchedule &schedule, llvm::StringRef name);
  ~JITFunction();

  /// Calls the function: one pointer per argument (a pointer to each
  /// memref descriptor, or to an index value).
  void call(void **arguments) const { entry(arguments); }

private:
  JITFunction(std::unique_ptr<ExecutionEngine> engine, void (*entry)(void **),
              bool parallel);

  std::unique_ptr<ExecutionEngine> engine;
  void (*entry)(void **);
  /// Whether its blocks run on MLIR's async runtime.
  bool parallel;
};

/// The host arrays of one run, contiguous, in the spec's layout and element
/// type.
struct CPUOperands {
  /// A paged spec's `key` and `value` are pools [numPages, pageSize, Hkv, D]
  /// read through `blockTable` [batch, pagesPerSequence] (sizes.seqKV is then
  /// pagesPerSequence * pageSize).
  const void *query = nullptr, *key = nullptr, *value = nullptr;
  /// `sizes.batch` entries when the spec has KV lengths.
  const int32_t *kvLens = nullptr;
  const int32_t *blockTable = nullptr;
  int64_t numPages = 0, pagesPerSequence = 0;
  /// Hq sink logits when the spec has sinks.
  const float *sinks = nullptr;
  /// Varlen: the B+1 offsets of each sequence's queries in the packed
  /// tokens [T, Hq, D] (query, output), and of its keys in packed K/V.
  const int32_t *cuSeqlensQ = nullptr, *cuSeqlensK = nullptr;
  void *output = nullptr;
  /// The log-sum-exps when the spec returns them: [B, Hq, Sq], or [Hq, T].
  float *lse = nullptr;
};

/// One attention spec compiled for the host CPU through the gqa-lower-to-cpu
/// pipeline and JIT-compiled; callable on any sizes.
class CPUKernel {
public:
  /// Compiles `spec` with `schedule`.
  static llvm::Expected<std::unique_ptr<CPUKernel>>
  compile(const AttentionSpec &spec, const CPUSchedule &schedule);

  /// Runs on `operands`, sized by `sizes`.
  void run(const AttentionSizes &sizes, const CPUOperands &operands) const;

private:
  CPUKernel(const AttentionSpec &spec, std::unique_ptr<JITFunction> function)
      : spec(spec), function(std::move(function)) {}

  AttentionSpec spec;
  std::unique_ptr<JITFunction> function;
};

/// The host arrays of one merge (gqa.merge_states), contiguous: the outputs
/// [B, H, S, Dv] in the spec's layout and element type (packed [T, H, Dv]
/// when varlen), their log-sum-exps f32 [B, H, S] ([H, T]). `output` may be
/// `outA` or `outB`; `lse` must be neither part's.
struct CPUMergeOperands {
  const void *outA = nullptr;
  const float *lseA = nullptr;
  const void *outB = nullptr;
  const float *lseB = nullptr;
  void *output = nullptr;
  float *lse = nullptr;
};

/// One merge spec compiled for the host CPU; callable on any sizes.
class CPUMergeKernel {
public:
  /// Compiles `spec`, its blocks on `threads` threads.
  static llvm::Expected<std::unique_ptr<CPUMergeKernel>>
  compile(const MergeStatesSpec &spec, int64_t threads);

  /// Merges `batch` entries of `seqQ` rows per head (varlen: `seqQ`
  /// tokens, `batch` unused).
  void run(int64_t batch, int64_t seqQ, const CPUMergeOperands &operands) const;

private:
  CPUMergeKernel(const MergeStatesSpec &spec,
                 std::unique_ptr<JITFunction> function)
      : spec(spec), function(std::move(function)) {}

  MergeStatesSpec spec;
  std::unique_ptr<JITFunction> function;
};

} // namespace mlir::gqa

#endif // GQA_TOOLS_CPURUNNER_H
