//===- CPU.cpp - gqa's CPU path as a C library ----------------------------===//
//
// gqa_cpu_kernel wraps a CPUKernel (the gqa-lower-to-cpu pipeline,
// JIT-compiled); a call checks the caller's arguments against the
// configuration before it touches them.
//
//===----------------------------------------------------------------------===//

#include "gqa-c/CPU.h"
#include "CAPIUtils.h"
#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "gqa/Tools/CPURunner.h"

#include <memory>
#include <thread>

using namespace mlir::gqa;
using namespace mlir::gqa::capi;

struct gqa_cpu_kernel {
  AttentionSpec spec;
  std::unique_ptr<CPUKernel> kernel;
};

struct gqa_cpu_merge_kernel {
  MergeStatesSpec spec;
  std::unique_ptr<CPUMergeKernel> kernel;
};

namespace {

/// The threads of `options` (0: one per core), or a message.
std::string getThreads(const gqa_cpu_options *options, int64_t &threads) {
  int64_t requested = options ? options->threads : 0;
  if (requested < 0)
    return "threads must be >= 0 (0: one per core), got " +
           std::to_string(requested);
  threads = requested > 0
                ? requested
                : std::max<int64_t>(1, std::thread::hardware_concurrency());
  return "";
}

} // namespace

extern "C" int gqa_cpu_kernel_create(const gqa_compiler_attention *attention,
                                     const gqa_cpu_options *options,
                                     gqa_cpu_kernel **kernel, char **error) {
  if (error)
    *error = nullptr;
  if (!attention || !kernel)
    return fail(error, "attention and kernel must not be NULL");
  std::string message;
  AttentionSpec spec = toSpec(*attention, message);
  if (!message.empty())
    return fail(error, message);
  CPUSchedule schedule;
  if (options && options->schedule)
    schedule.target = options->schedule;
  if (!isScheduleTarget(schedule.target))
    return fail(error, "schedule must be cpu, sm_80 or sm_90, got '" +
                           schedule.target + "'");
  message = getThreads(options, schedule.threads);
  if (!message.empty())
    return fail(error, message);
  schedule.maxSplits =
      options && options->max_splits >= 0 ? options->max_splits : -1;
  auto compiled = CPUKernel::compile(spec, schedule);
  if (!compiled)
    return fail(error, llvm::toString(compiled.takeError()));
  *kernel = new gqa_cpu_kernel{spec, std::move(*compiled)};
  return 0;
}

extern "C" int gqa_cpu_kernel_run(const gqa_cpu_kernel *kernel,
                                  const gqa_cpu_arguments *arguments,
                                  char **error) {
  if (error)
    *error = nullptr;
  if (!kernel || !arguments)
    return fail(error, "kernel and arguments must not be NULL");
  const AttentionSpec &spec = kernel->spec;
  const gqa_cpu_arguments &a = *arguments;
  AttentionSizes sizes{a.batch, a.seq_q, a.seq_kv, {}};
  if (spec.isPaged()) {
    if (a.pages_per_sequence <= 0 || a.num_pages <= 0)
      return fail(error, "a paged configuration needs pages_per_sequence and "
                         "num_pages > 0, got " +
                             std::to_string(a.pages_per_sequence) + " and " +
                             std::to_string(a.num_pages));
    if (__builtin_mul_overflow(a.pages_per_sequence, spec.pageSize,
                               &sizes.seqKV))
      return fail(error, "pages_per_sequence * page_size overflows");
  }
  // The lengths only need their count here; the kernel clamps each.
  if (spec.hasKVLens)
    sizes.kvLens.assign(a.batch > 0 ? a.batch : 0, 0);
  // A ragged batch: each segment's length from its offsets.
  auto segments = [&](const char *name, const int32_t *offsets,
                      std::vector<int64_t> &lengths,
                      int64_t &longest) -> std::string {
    if (!offsets)
      return std::string(name) + " must not be NULL for this configuration";
    if (a.batch <= 0)
      return "batch must be positive, got " + std::to_string(a.batch);
    if (offsets[0] != 0)
      return std::string(name) + "[0] must be 0, got " +
             std::to_string(offsets[0]);
    lengths.clear();
    longest = 1;
    for (int64_t b = 0; b < a.batch; ++b) {
      int64_t length = int64_t{offsets[b + 1]} - offsets[b];
      if (length < 0)
        return std::string(name) + " must not decrease, but [" +
               std::to_string(b + 1) + "] = " + std::to_string(offsets[b + 1]) +
               " < " + std::to_string(offsets[b]);
      lengths.push_back(length);
      longest = std::max(longest, length);
    }
    return "";
  };
  std::string message;
  if (spec.varlen)
    message = segments("cu_seqlens_q", a.cu_seqlens_q, sizes.qLens, sizes.seqQ);
  if (message.empty() && spec.packedKV) {
    std::vector<int64_t> keys;
    message = segments("cu_seqlens_k", a.cu_seqlens_k, keys, sizes.seqKV);
    // The segments size K/V (the caller's kv_lens, if any, are clamped into
    // them by the kernel).
    sizes.kvLens = keys;
  }
  if (!message.empty())
    return fail(error, message);
  message = sizes.validate(spec);
  if (!message.empty())
    return fail(error, message);
  struct Required {
    const char *name;
    const void *pointer;
    bool needed;
  };
  for (const Required &required :
       {Required{"query", a.query, true},
        {"key", a.key, true},
        {"value", a.value, true},
        {"output", a.output, true},
        {"kv_lens", a.kv_lens, spec.hasKVLens},
        {"block_table", a.block_table, spec.isPaged()},
        {"sinks", a.sinks, spec.hasSinks},
        {"lse", a.lse, spec.returnLse}}) {
    if (required.needed && !required.pointer)
      return fail(error, std::string(required.name) +
                             " must not be NULL for this configuration");
  }
  CPUOperands operands;
  operands.query = a.query;
  operands.key = a.key;
  operands.value = a.value;
  operands.kvLens = a.kv_lens;
  operands.blockTable = a.block_table;
  operands.numPages = a.num_pages;
  operands.pagesPerSequence = a.pages_per_sequence;
  operands.sinks = a.sinks;
  operands.cuSeqlensQ = a.cu_seqlens_q;
  operands.cuSeqlensK = a.cu_seqlens_k;
  operands.output = a.output;
  operands.lse = a.lse;
  kernel->kernel->run(sizes, operands);
  return 0;
}

extern "C" void gqa_cpu_kernel_destroy(gqa_cpu_kernel *kernel) {
  delete kernel;
}

extern "C" int
gqa_cpu_merge_kernel_create(const gqa_compiler_merge_states *merge,
                            const gqa_cpu_options *options,
                            gqa_cpu_merge_kernel **kernel, char **error) {
  if (error)
    *error = nullptr;
  if (!merge || !kernel)
    return fail(error, "merge and kernel must not be NULL");
  std::string message;
  MergeStatesSpec spec = toSpec(*merge, message);
  if (!message.empty())
    return fail(error, message);
  int64_t threads = 1;
  message = getThreads(options, threads);
  if (!message.empty())
    return fail(error, message);
  auto compiled = CPUMergeKernel::compile(spec, threads);
  if (!compiled)
    return fail(error, llvm::toString(compiled.takeError()));
  *kernel = new gqa_cpu_merge_kernel{spec, std::move(*compiled)};
  return 0;
}

extern "C" int
gqa_cpu_merge_kernel_run(const gqa_cpu_merge_kernel *kernel,
                         const gqa_cpu_merge_arguments *arguments,
                         char **error) {
  if (error)
    *error = nullptr;
  if (!kernel || !arguments)
    return fail(error, "kernel and arguments must not be NULL");
  const MergeStatesSpec &spec = kernel->spec;
  const gqa_cpu_merge_arguments &a = *arguments;
  int64_t batch = spec.varlen ? 1 : a.batch;
  if (batch <= 0 || a.seq_q < 0)
    return fail(error, "batch must be positive and seq_q >= 0, got " +
                           std::to_string(a.batch) + " and " +
                           std::to_string(a.seq_q));
  // The largest array, in bytes, must fit in 64 bits.
  int64_t rows, elements, bytes;
  if (__builtin_mul_overflow(batch, a.seq_q, &rows) ||
      __builtin_mul_overflow(rows, spec.heads, &rows) ||
      __builtin_mul_overflow(rows, spec.headDimV, &elements) ||
      __builtin_mul_overflow(elements, int64_t{8}, &bytes))
    return fail(error, "batch * seq_q * heads * head_dim_v overflows");
  for (auto [name, pointer] :
       {std::pair<const char *, const void *>{"out_a", a.out_a},
        {"lse_a", a.lse_a},
        {"out_b", a.out_b},
        {"lse_b", a.lse_b},
        {"output", a.output},
        {"lse", a.lse}})
    if (!pointer)
      return fail(error, std::string(name) + " must not be NULL");
  if (a.lse == a.lse_a || a.lse == a.lse_b)
    return fail(error, std::string("lse is ") +
                           (a.lse == a.lse_a ? "lse_a" : "lse_b") +
                           ": the merged log-sum-exps must not overwrite a "
                           "part's");
  CPUMergeOperands operands;
  operands.outA = a.out_a;
  operands.lseA = a.lse_a;
  operands.outB = a.out_b;
  operands.lseB = a.lse_b;
  operands.output = a.output;
  operands.lse = a.lse;
  kernel->kernel->run(batch, a.seq_q, operands);
  return 0;
}

extern "C" void gqa_cpu_merge_kernel_destroy(gqa_cpu_merge_kernel *kernel) {
  delete kernel;
}
