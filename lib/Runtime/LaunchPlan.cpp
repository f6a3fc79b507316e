//===- LaunchPlan.cpp - Check arguments and plan a launch -----------------===//

#include "LaunchPlan.h"

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>

namespace gqa::runtime {

int64_t LaunchSizes::get(LaunchSize size) const {
  switch (size) {
  case LaunchSize::Batch:
    return batch;
  case LaunchSize::SeqQ:
    return seqQ;
  case LaunchSize::SeqKV:
    return seqKV;
  case LaunchSize::NumSplits:
    return numSplits;
  case LaunchSize::NumPages:
    return numPages;
  case LaunchSize::TotalQ:
    return totalQ;
  case LaunchSize::TotalKV:
    return totalKV;
  }
  return 0;
}

namespace {

Status invalidArgument(std::string message) {
  return Status::failure(GQA_ERROR_INVALID_ARGUMENT, std::move(message));
}

int64_t ceilDiv(int64_t numerator, int64_t denominator) {
  return numerator / denominator + (numerator % denominator != 0);
}

/// a * b + c, or false on overflow.
bool mulAdd(int64_t a, int64_t b, int64_t c, int64_t &result) {
  int64_t product;
  return !__builtin_mul_overflow(a, b, &product) &&
         !__builtin_add_overflow(product, c, &result);
}

Status checkPositive(const char *field, int64_t value) {
  if (value >= 1)
    return Status::success();
  return invalidArgument(std::string("args.") + field + " must be >= 1, not " +
                         std::to_string(value));
}

Status checkFact(const char *field, int64_t value, int64_t compiled) {
  if (value == compiled)
    return Status::success();
  return invalidArgument(std::string("args.") + field + " is " +
                         std::to_string(value) +
                         ", but the kernel was compiled for config." + field +
                         " = " + std::to_string(compiled));
}

/// A size the metadata may fix (`compiled` != 0).
Status checkStaticSize(const char *field, int64_t value, int64_t compiled) {
  if (compiled == 0 || value == compiled)
    return Status::success();
  return invalidArgument(std::string("args.") + field + " is " +
                         std::to_string(value) +
                         ", but the kernel was compiled for config." + field +
                         " = " + std::to_string(compiled) + " only");
}

/// The product of a kernel's grid for `sizes`.
Status countCtas(const KernelSpec &kernel, const LaunchSizes &sizes,
                 int64_t &ctas) {
  ctas = 1;
  for (const GridDim &dim : kernel.grid) {
    int64_t extent;
    if (Status status = evaluateGridDim(dim, sizes, extent); !status.ok())
      return status;
    if (!mulAdd(ctas, extent, 0, ctas))
      return invalidArgument("the grid of kernel '" + kernel.name +
                             "' has more CTAs than fit in 64 bits");
  }
  return Status::success();
}

Status checkPointer(const char *field, const void *pointer, int64_t alignment) {
  if (!pointer)
    return invalidArgument(std::string("args.") + field + " is NULL");
  if (reinterpret_cast<uintptr_t>(pointer) % alignment != 0)
    return invalidArgument(
        std::string("args.") + field + " (" +
        std::to_string(reinterpret_cast<uintptr_t>(pointer)) +
        ") is not aligned to " + std::to_string(alignment) + " bytes");
  return Status::success();
}

/// Each kind of kernel set has its own entry points.
Status checkKind(const KernelMetadata &metadata, gqa_kernel_set_kind kind) {
  if (metadata.kind == kind)
    return Status::success();
  if (metadata.isMergeStates())
    return invalidArgument(
        "a gqa.merge_states kernel set is launched with "
        "gqa_kernel_merge_states (and planned with gqa_plan_merge), not with "
        "gqa_launch_args");
  return invalidArgument("an attention kernel set (gqa.kernel) is launched "
                         "with gqa_kernel_launch (and planned with "
                         "gqa_plan_launch), not with gqa_merge_args");
}

/// Checks a caller's dtype and layout: valid values, equal to the config's.
Status checkTypes(gqa_dtype dtype, gqa_layout layout, gqa_dtype compiledDType,
                  gqa_layout compiledLayout) {
  if (getDTypeSize(dtype) == 0)
    return invalidArgument("args.dtype is " + std::to_string(dtype) +
                           ", not one of GQA_DTYPE_F16, GQA_DTYPE_BF16, "
                           "GQA_DTYPE_F32");
  if (dtype != compiledDType)
    return invalidArgument(std::string("args.dtype is ") + getDTypeName(dtype) +
                           ", but the kernel was compiled for config.dtype = " +
                           getDTypeName(compiledDType));
  if (layout != GQA_LAYOUT_BHSD && layout != GQA_LAYOUT_BSHD)
    return invalidArgument("args.layout is " + std::to_string(layout) +
                           ", not one of GQA_LAYOUT_BHSD, GQA_LAYOUT_BSHD");
  if (layout != compiledLayout)
    return invalidArgument(
        std::string("args.layout is ") + getLayoutName(layout) +
        ", but the kernel was compiled for config.layout = " +
        getLayoutName(compiledLayout));
  return Status::success();
}

} // namespace

Status validateLaunchShape(const KernelMetadata &metadata,
                           const gqa_launch_args &args) {
  if (Status status = checkKind(metadata, GQA_KERNEL_SET_ATTENTION);
      !status.ok())
    return status;
  const gqa_kernel_config &config = metadata.config;
  for (Status status :
       {checkPositive("batch", args.batch), checkPositive("seq_q", args.seq_q),
        checkPositive("seq_kv", args.seq_kv),
        checkFact("q_heads", args.q_heads, config.q_heads),
        checkFact("kv_heads", args.kv_heads, config.kv_heads),
        checkFact("head_dim", args.head_dim, config.head_dim),
        checkFact("head_dim_v", args.head_dim_v, config.head_dim_v),
        checkStaticSize("batch", args.batch, config.batch),
        checkStaticSize("seq_q", args.seq_q, config.seq_q),
        checkStaticSize("seq_kv", args.seq_kv, config.seq_kv)})
    if (!status.ok())
      return status;
  if (Status status =
          checkTypes(args.dtype, args.layout, config.dtype, config.layout);
      !status.ok())
    return status;
  // A ragged batch has its packed tokens (seq_q and seq_kv are then the
  // longest sequence's); another kernel none.
  for (auto [name, total, compiled, flag] :
       {std::tuple<const char *, int64_t, bool, const char *>{
            "total_q", args.total_q, config.varlen != 0, "varlen"},
        {"total_kv", args.total_kv, config.packed_kv != 0, "packed_kv"}}) {
    if (compiled) {
      if (Status status = checkPositive(name, total); !status.ok())
        return status;
    } else if (total != 0) {
      return invalidArgument(std::string("args.") + name + " is " +
                             std::to_string(total) + ", but config." + flag +
                             " is false: leave it 0");
    }
  }
  // (seq_kv, max_seqlen_k, may exceed total_kv: a bucketed maximum only sizes
  // the split partition.)
  if (config.varlen && args.seq_q > args.total_q)
    return invalidArgument("args.seq_q (the longest sequence's queries) is " +
                           std::to_string(args.seq_q) +
                           ", more than all the queries, args.total_q = " +
                           std::to_string(args.total_q));
  if (!config.page_size) {
    if (args.num_pages != 0)
      return invalidArgument("args.num_pages is " +
                             std::to_string(args.num_pages) +
                             ", but the kernel reads contiguous K/V "
                             "(config.page_size = 0): leave it 0");
    return Status::success();
  }
  if (Status status = checkPositive("num_pages", args.num_pages); !status.ok())
    return status;
  if (args.seq_kv % config.page_size != 0)
    return invalidArgument(
        "args.seq_kv is " + std::to_string(args.seq_kv) +
        ", but a paged kernel reads whole pages: it must be the block "
        "table's pages per sequence times config.page_size = " +
        std::to_string(config.page_size));
  return Status::success();
}

Status evaluateGridDim(const GridDim &dim, const LaunchSizes &sizes,
                       int64_t &extent) {
  if (dim.isConstant) {
    extent = dim.constant;
    return Status::success();
  }
  int64_t numerator;
  if (!mulAdd(sizes.get(dim.symbol), dim.mul, dim.add, numerator))
    return invalidArgument(
        std::string("the grid expression ceil((") +
        getLaunchSizeName(dim.symbol) + " * " + std::to_string(dim.mul) +
        " + " + std::to_string(dim.add) + ") / " + std::to_string(dim.div) +
        ") overflows for " + getLaunchSizeName(dim.symbol) + " = " +
        std::to_string(sizes.get(dim.symbol)));
  extent = ceilDiv(numerator, dim.div);
  return Status::success();
}

Status chooseNumSplits(const KernelMetadata &metadata, int64_t batch,
                       int64_t seqQ, int64_t seqKV, int32_t smCount,
                       int64_t &numSplits) {
  numSplits = 1;
  if (!metadata.splitsKV())
    return Status::success();
  const KernelSpec &splitKernel = metadata.kernels.front();
  int64_t kvTiles = ceilDiv(seqKV, metadata.tiling.block_n);
  int64_t maxSplits = std::min(metadata.tiling.max_splits, kvTiles);
  int64_t targetCtas = kTargetCtasPerSM * smCount;
  LaunchSizes sizes{batch, seqQ, seqKV, 1};
  for (; sizes.numSplits < maxSplits; ++sizes.numSplits) {
    int64_t ctas;
    if (Status status = countCtas(splitKernel, sizes, ctas); !status.ok())
      return status;
    if (ctas >= targetCtas)
      break;
  }
  int64_t tilesPerSplit = ceilDiv(kvTiles, sizes.numSplits);
  numSplits = ceilDiv(kvTiles, tilesPerSplit);
  return Status::success();
}

namespace {

/// The split-KV workspace of `plan` (num_splits already set): partial_out,
/// then partial_lse at the next multiple of kWorkspaceAlignment. One split
/// needs none: the split kernel then writes the output itself.
Status sizeWorkspace(const KernelMetadata &metadata,
                     const gqa_launch_args &args, gqa_launch_plan &plan) {
  plan.workspace_bytes = 0;
  plan.partial_lse_offset = 0;
  if (!metadata.splitsKV() || plan.num_splits == 1)
    return Status::success();
  constexpr int64_t f32Bytes = 4;
  int64_t lseBytes = f32Bytes, outBytes, lseOffset, totalBytes;
  bool fits = mulAdd(lseBytes, plan.num_splits, 0, lseBytes) &&
              mulAdd(lseBytes, args.batch, 0, lseBytes) &&
              mulAdd(lseBytes, args.q_heads, 0, lseBytes) &&
              mulAdd(lseBytes, args.seq_q, 0, lseBytes) &&
              mulAdd(lseBytes, args.head_dim_v, 0, outBytes) &&
              mulAdd(ceilDiv(outBytes, kWorkspaceAlignment),
                     kWorkspaceAlignment, 0, lseOffset) &&
              mulAdd(lseOffset, 1, lseBytes, totalBytes);
  if (!fits)
    return invalidArgument("the split-KV workspace for " +
                           std::to_string(plan.num_splits) +
                           " splits is larger than 2^63 bytes");
  plan.workspace_bytes = static_cast<uint64_t>(totalBytes);
  plan.partial_lse_offset = static_cast<uint64_t>(lseOffset);
  return Status::success();
}

/// Checks that the sizes a kernel takes as i32 parameters fit in one.
Status checkI32Params(const KernelSpec &kernel, const LaunchSizes &sizes) {
  for (const KernelParam &param : kernel.params) {
    const auto *size = std::get_if<LaunchSize>(&param.source);
    if (!size || param.type != ParamType::I32)
      continue;
    int64_t value = sizes.get(*size);
    if (value > std::numeric_limits<int32_t>::max())
      return invalidArgument("kernel '" + kernel.name + "' takes " +
                             param.name + " as i32, but " + param.name + " = " +
                             std::to_string(value) + " does not fit in one");
  }
  return Status::success();
}

/// How `kernel` is started for `sizes`: its grid (within CUDA's limits),
/// block and shared memory; checks that the sizes it takes as i32 fit.
Status planKernel(const KernelSpec &kernel, const LaunchSizes &sizes,
                  gqa_kernel_launch_config &launch) {
  launch.name = kernel.name.c_str();
  launch.role = kernel.role;
  launch.dynamic_shared_memory_bytes = kernel.dynamicSharedMemoryBytes;
  for (size_t d = 0; d < 3; ++d) {
    launch.block[d] = kernel.block[d];
    int64_t extent;
    if (Status status = evaluateGridDim(kernel.grid[d], sizes, extent);
        !status.ok())
      return std::move(status).withContext("kernel '" + kernel.name + "'");
    int64_t limit = d == 0 ? kMaxGridX : kMaxGridYZ;
    if (extent < 1 || extent > limit)
      return invalidArgument("kernel '" + kernel.name + "' needs grid[" +
                             std::to_string(d) +
                             "] = " + std::to_string(extent) +
                             ", but CUDA allows 1.." + std::to_string(limit));
    launch.grid[d] = static_cast<uint32_t>(extent);
  }
  return checkI32Params(kernel, sizes);
}

} // namespace

Status planLaunch(const KernelMetadata &metadata, const gqa_launch_args &args,
                  int32_t smCount, gqa_launch_plan &plan) {
  if (Status status = checkKind(metadata, GQA_KERNEL_SET_ATTENTION);
      !status.ok())
    return status;
  if (smCount < 1)
    return invalidArgument("the SM count must be >= 1, not " +
                           std::to_string(smCount));
  if (Status status = validateLaunchShape(metadata, args); !status.ok())
    return status;
  plan = {};
  LaunchSizes sizes{args.batch,     args.seq_q,   args.seq_kv,  1,
                    args.num_pages, args.total_q, args.total_kv};
  if (Status status = chooseNumSplits(metadata, args.batch, args.seq_q,
                                      args.seq_kv, smCount, sizes.numSplits);
      !status.ok())
    return status;
  plan.num_splits = sizes.numSplits;
  // With one split, the split kernel writes the output and the combine
  // kernel (last in the list) is not launched (docs/kernel-metadata.md).
  size_t launched = metadata.kernels.size();
  if (metadata.splitsKV() && plan.num_splits == 1)
    launched = 1;
  plan.num_kernels = static_cast<int32_t>(launched);
  for (size_t i = 0; i < launched; ++i)
    if (Status status = planKernel(metadata.kernels[i], sizes, plan.kernels[i]);
        !status.ok())
      return status;
  return sizeWorkspace(metadata, args, plan);
}

Status validateLaunchPointers(const KernelMetadata &metadata,
                              const gqa_launch_args &args,
                              const gqa_launch_plan &plan) {
  // The kernels move q, k and v in 16-byte vectors (cp.async) and store the
  // output in vectors of up to 16 bytes (docs/kernel-metadata.md).
  constexpr int64_t tensorAlignment = 16;
  for (Status status : {checkPointer("q", args.q, tensorAlignment),
                        checkPointer("k", args.k, tensorAlignment),
                        checkPointer("v", args.v, tensorAlignment),
                        checkPointer("out", args.out, tensorAlignment)})
    if (!status.ok())
      return status;

  bool paged = metadata.config.page_size > 0;
  if (!paged && args.block_table)
    return invalidArgument("args.block_table is set, but the kernel reads "
                           "contiguous K/V (config.page_size = 0)");
  if (paged) {
    if (!args.block_table)
      return invalidArgument(
          "args.block_table is NULL, but the kernel reads a paged KV cache "
          "(config.page_size = " +
          std::to_string(metadata.config.page_size) + ")");
    if (Status status = checkPointer("block_table", args.block_table, 4);
        !status.ok())
      return status;
  }

  gqa_kv_lens_type kvLens = metadata.config.kv_lens;
  if (kvLens == GQA_KV_LENS_NONE && args.kv_lens)
    return invalidArgument("args.kv_lens is set, but the kernel was compiled "
                           "without per-batch KV lengths (config.kv_lens = "
                           "none)");
  if (kvLens != GQA_KV_LENS_NONE) {
    if (!args.kv_lens)
      return invalidArgument(
          std::string("args.kv_lens is NULL, but the kernel reads per-batch "
                      "KV lengths (config.kv_lens = ") +
          getKvLensTypeName(kvLens) + ")");
    if (Status status = checkPointer("kv_lens", args.kv_lens,
                                     kvLens == GQA_KV_LENS_I32 ? 4 : 8);
        !status.ok())
      return status;
  }

  // The sinks are f32 [q_heads] and the LSE f32 [batch, q_heads, seq_q].
  // The offsets of a ragged batch are int32 [batch + 1].
  struct Feature {
    const char *name;
    const void *pointer;
    /// The config key that says whether the kernel reads it.
    const char *key;
    bool compiled;
  };
  const gqa_kernel_config &config = metadata.config;
  for (auto [name, pointer, key, compiled] :
       {Feature{"sinks", args.sinks, "sinks", config.sinks != 0},
        Feature{"lse", args.lse, "lse", config.lse != 0},
        Feature{"cu_seqlens_q", args.cu_seqlens_q, "varlen",
                config.varlen != 0},
        Feature{"cu_seqlens_k", args.cu_seqlens_k, "packed_kv",
                config.packed_kv != 0}}) {
    std::string setting =
        std::string("config.") + key + " = " + (compiled ? "true" : "false");
    if (!compiled && pointer)
      return invalidArgument(std::string("args.") + name +
                             " is set, but the kernel was compiled without " +
                             "it (" + setting + ")");
    if (compiled && !pointer)
      return invalidArgument(std::string("args.") + name +
                             " is NULL, but the kernel was compiled with it (" +
                             setting + ")");
    if (compiled)
      if (Status status = checkPointer(name, pointer, 4); !status.ok())
        return status;
  }

  if (!args.workspace) {
    if (args.workspace_bytes != 0)
      return invalidArgument("args.workspace_bytes is " +
                             std::to_string(args.workspace_bytes) +
                             ", but args.workspace is NULL");
    return Status::success();
  }
  if (Status status = checkPointer("workspace", args.workspace, 16);
      !status.ok())
    return status;
  if (args.workspace_bytes < plan.workspace_bytes)
    return invalidArgument(
        "args.workspace_bytes is " + std::to_string(args.workspace_bytes) +
        ", but this launch needs " + std::to_string(plan.workspace_bytes) +
        " (" + std::to_string(plan.num_splits) + " KV splits)");
  return Status::success();
}

namespace {

uint64_t addressOf(const void *pointer) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pointer));
}

/// Lays out the parameters of `kernel` by name: each size of `sizes` at its
/// type's width, each pointer as `pointerValue` gives it.
template <typename PointerValue>
void bindParams(const KernelSpec &kernel, const LaunchSizes &sizes,
                PointerValue pointerValue, KernelParamValues &params) {
  params.count = kernel.params.size();
  for (size_t i = 0; i < params.count; ++i) {
    const KernelParam &param = kernel.params[i];
    KernelParamValue &value = params.values[i];
    value = {};
    params.pointers[i] = &value;
    if (const auto *size = std::get_if<LaunchSize>(&param.source)) {
      if (param.type == ParamType::I32)
        value.i32 = static_cast<int32_t>(sizes.get(*size));
      else
        value.i64 = sizes.get(*size);
      continue;
    }
    value.pointer = pointerValue(std::get<PointerParam>(param.source));
  }
}

} // namespace

void bindKernelParams(const KernelSpec &kernel, const gqa_launch_args &args,
                      const gqa_launch_plan &plan, uint64_t workspace,
                      KernelParamValues &params) {
  LaunchSizes sizes{args.batch,     args.seq_q,   args.seq_kv,  plan.num_splits,
                    args.num_pages, args.total_q, args.total_kv};
  auto pointerValue = [&](PointerParam pointer) -> uint64_t {
    switch (pointer) {
    case PointerParam::Q:
      return addressOf(args.q);
    case PointerParam::K:
      return addressOf(args.k);
    case PointerParam::V:
      return addressOf(args.v);
    case PointerParam::Out:
      return addressOf(args.out);
    case PointerParam::KvLens:
      return addressOf(args.kv_lens);
    case PointerParam::BlockTable:
      return addressOf(args.block_table);
    case PointerParam::PartialOut:
      return workspace;
    case PointerParam::PartialLse:
      return workspace + plan.partial_lse_offset;
    case PointerParam::Sinks:
      return addressOf(args.sinks);
    case PointerParam::Lse:
      return addressOf(args.lse);
    case PointerParam::CuSeqlensQ:
      return addressOf(args.cu_seqlens_q);
    case PointerParam::CuSeqlensK:
      return addressOf(args.cu_seqlens_k);
    case PointerParam::OutA:
    case PointerParam::LseA:
    case PointerParam::OutB:
    case PointerParam::LseB:
      break; // Merge kernels only: never in an attention document.
    }
    return 0;
  };
  bindParams(kernel, sizes, pointerValue, params);
}

Status planMerge(const KernelMetadata &metadata, const gqa_merge_args &args,
                 gqa_kernel_launch_config &launch) {
  if (Status status = checkKind(metadata, GQA_KERNEL_SET_MERGE_STATES);
      !status.ok())
    return status;
  const gqa_merge_config &config = metadata.mergeConfig;
  for (Status status :
       {checkPositive("batch", args.batch), checkPositive("seq_q", args.seq_q),
        checkFact("heads", args.heads, config.heads),
        checkFact("head_dim_v", args.head_dim_v, config.head_dim_v),
        checkStaticSize("batch", args.batch, config.batch),
        checkStaticSize("seq_q", args.seq_q, config.seq_q),
        checkTypes(args.dtype, args.layout, config.dtype, config.layout)})
    if (!status.ok())
      return status;
  if (config.varlen && args.batch != 1)
    return invalidArgument("args.batch is " + std::to_string(args.batch) +
                           ", but config.varlen is true: packed tokens are "
                           "merged as batch 1 of seq_q tokens");
  launch = {};
  LaunchSizes sizes;
  sizes.batch = args.batch;
  sizes.seqQ = args.seq_q;
  return planKernel(metadata.kernels.front(), sizes, launch);
}

Status validateMergePointers(const gqa_merge_args &args) {
  // The outputs move in 16-byte vectors; the log-sum-exps are f32.
  constexpr int64_t outAlignment = 16, lseAlignment = 4;
  for (Status status : {checkPointer("out_a", args.out_a, outAlignment),
                        checkPointer("lse_a", args.lse_a, lseAlignment),
                        checkPointer("out_b", args.out_b, outAlignment),
                        checkPointer("lse_b", args.lse_b, lseAlignment),
                        checkPointer("out", args.out, outAlignment),
                        checkPointer("lse", args.lse, lseAlignment)})
    if (!status.ok())
      return status;

  // The bytes of each array (saturated: planMerge has bounded the sizes by
  // the grid, not by memory).
  uint64_t rows = 1, lseBytes, outBytes;
  bool fits =
      !__builtin_mul_overflow(rows, uint64_t(args.batch), &rows) &&
      !__builtin_mul_overflow(rows, uint64_t(args.heads), &rows) &&
      !__builtin_mul_overflow(rows, uint64_t(args.seq_q), &rows) &&
      !__builtin_mul_overflow(rows, uint64_t{4}, &lseBytes) &&
      !__builtin_mul_overflow(rows, uint64_t(args.head_dim_v), &outBytes) &&
      !__builtin_mul_overflow(outBytes, uint64_t(getDTypeSize(args.dtype)),
                              &outBytes);
  if (!fits)
    lseBytes = outBytes = std::numeric_limits<uint64_t>::max();
  auto overlap = [](const void *a, const void *b, uint64_t bytes) {
    uint64_t x = addressOf(a), y = addressOf(b);
    return (x < y ? y - x : x - y) < bytes;
  };
  // Every thread of a row reads the row's log-sum-exps, and one writes the
  // merged one: lse must be memory of its own.
  for (auto [name, input] :
       {std::pair<const char *, const void *>{"lse_a", args.lse_a},
        {"lse_b", args.lse_b}}) {
    if (args.lse == input)
      return invalidArgument(std::string("args.lse is args.") + name +
                             ": the merged log-sum-exps must not overwrite an "
                             "input's (every thread of a row reads them)");
    if (overlap(args.lse, input, lseBytes))
      return invalidArgument(std::string("args.lse overlaps args.") + name +
                             " (" + std::to_string(lseBytes) +
                             " bytes each): the merged log-sum-exps must not "
                             "overwrite an input's");
  }
  // Each value of out is read from out_a and out_b by the thread that
  // writes it, so out may be either input exactly, but not overlap one.
  for (auto [name, input] :
       {std::pair<const char *, const void *>{"out_a", args.out_a},
        {"out_b", args.out_b}})
    if (args.out != input && overlap(args.out, input, outBytes))
      return invalidArgument(std::string("args.out overlaps args.") + name +
                             " (" + std::to_string(outBytes) +
                             " bytes each) without being it: out may be " +
                             name + " itself or memory of its own");
  return Status::success();
}

void bindMergeParams(const KernelSpec &kernel, const gqa_merge_args &args,
                     KernelParamValues &params) {
  LaunchSizes sizes;
  sizes.batch = args.batch;
  sizes.seqQ = args.seq_q;
  auto pointerValue = [&](PointerParam pointer) -> uint64_t {
    switch (pointer) {
    case PointerParam::OutA:
      return addressOf(args.out_a);
    case PointerParam::LseA:
      return addressOf(args.lse_a);
    case PointerParam::OutB:
      return addressOf(args.out_b);
    case PointerParam::LseB:
      return addressOf(args.lse_b);
    case PointerParam::Out:
      return addressOf(args.out);
    case PointerParam::Lse:
      return addressOf(args.lse);
    default:
      return 0; // Attention kernels only: never in a merge document.
    }
  };
  bindParams(kernel, sizes, pointerValue, params);
}

} // namespace gqa::runtime
