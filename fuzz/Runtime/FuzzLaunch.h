//===- FuzzLaunch.h - A launch of fuzzed sizes, checked as launches are ---===//
//
// Shared by the runtime's fuzz targets: the arguments of a launch whose
// sizes come from fuzzer bytes, and the checks gqa_kernel_launch (for a
// merge_states kernel set, gqa_kernel_merge_states) makes before it calls
// the driver (plan, pointers, parameter binding), with the invariants a plan
// must keep.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_FUZZ_RUNTIME_FUZZLAUNCH_H
#define GQA_FUZZ_RUNTIME_FUZZLAUNCH_H

#include "KernelMetadata.h"
#include "LaunchPlan.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>

namespace gqa::runtime::fuzz {

/// A fake device address, 1 MiB aligned, distinct per tensor.
template <typename T> T *fakeAddress(uintptr_t index) {
  return reinterpret_cast<T *>(uintptr_t{0x100000} * (index + 1));
}

/// One size as the bytes of `sizes` pick it: their first byte keeps
/// `fallback`, takes a small value (-1 to 2^18, where launches are planned)
/// or any 64-bit one; with no bytes left, `fallback`.
inline int64_t fuzzSize(FuzzedDataProvider &sizes, int64_t fallback) {
  uint8_t choice = sizes.ConsumeIntegral<uint8_t>();
  if (choice < 96)
    return fallback;
  if (choice < 224)
    return sizes.ConsumeIntegralInRange<int64_t>(-1, int64_t{1} << 18);
  return sizes.ConsumeIntegral<int64_t>();
}

/// The arguments of a launch of `metadata`: every pointer it needs set, and
/// each size, unless the bytes of `sizes` say otherwise, a value that fits
/// the document (2 sequences of 17 queries against 100 keys, or 7 pages, the
/// config's heads and types). A size's first byte picks: keep that value, a
/// small one (-1 to 2^18, where launches are planned) or any 64-bit one; with
/// no bytes left every size keeps its value.
inline gqa_launch_args makeFuzzedArgs(const KernelMetadata &metadata,
                                      FuzzedDataProvider &sizes) {
  const gqa_kernel_config &config = metadata.config;
  auto size = [&](int64_t fallback) { return fuzzSize(sizes, fallback); };
  gqa_launch_args args = {};
  args.q = fakeAddress<const void>(0);
  args.k = fakeAddress<const void>(1);
  args.v = fakeAddress<const void>(2);
  args.out = fakeAddress<void>(3);
  if (config.kv_lens != GQA_KV_LENS_NONE)
    args.kv_lens = fakeAddress<const void>(4);
  if (config.page_size)
    args.block_table = fakeAddress<const void>(5);
  if (config.sinks)
    args.sinks = fakeAddress<const void>(6);
  if (config.lse)
    args.lse = fakeAddress<void>(7);
  if (config.varlen)
    args.cu_seqlens_q = fakeAddress<const void>(8);
  if (config.packed_kv)
    args.cu_seqlens_k = fakeAddress<const void>(9);
  args.batch = size(2);
  args.seq_q = size(17);
  args.seq_kv = size(config.page_size ? 7 * config.page_size : 100);
  args.num_pages = size(config.page_size ? 64 : 0);
  args.total_q = size(config.varlen ? 30 : 0);
  args.total_kv = size(config.packed_kv ? 150 : 0);
  args.q_heads = size(config.q_heads);
  args.kv_heads = size(config.kv_heads);
  args.head_dim = size(config.head_dim);
  args.head_dim_v = size(config.head_dim_v);
  args.dtype = static_cast<gqa_dtype>(size(config.dtype));
  args.layout = static_cast<gqa_layout>(size(config.layout));
  if (sizes.ConsumeIntegral<uint8_t>() >= 128) {
    args.workspace = fakeAddress<void>(10);
    args.workspace_bytes = sizes.ConsumeIntegral<uint64_t>();
  }
  return args;
}

/// The arguments of a merge of `metadata` (a merge_states set), as
/// makeFuzzedArgs makes them: every pointer set, 2 sequences of 17 rows (1
/// of 30 with config.varlen) unless the bytes say otherwise; one byte may
/// make lse alias lse_a or out alias out_a.
inline gqa_merge_args makeFuzzedMergeArgs(const KernelMetadata &metadata,
                                          FuzzedDataProvider &sizes) {
  const gqa_merge_config &config = metadata.mergeConfig;
  auto size = [&](int64_t fallback) { return fuzzSize(sizes, fallback); };
  gqa_merge_args args = {};
  args.out_a = fakeAddress<const void>(0);
  args.lse_a = fakeAddress<const void>(1);
  args.out_b = fakeAddress<const void>(2);
  args.lse_b = fakeAddress<const void>(3);
  args.out = fakeAddress<void>(4);
  args.lse = fakeAddress<void>(5);
  args.batch = size(config.varlen ? 1 : 2);
  args.seq_q = size(config.varlen ? 30 : 17);
  args.heads = size(config.heads);
  args.head_dim_v = size(config.head_dim_v);
  args.dtype = static_cast<gqa_dtype>(size(config.dtype));
  args.layout = static_cast<gqa_layout>(size(config.layout));
  uint8_t alias = sizes.ConsumeIntegral<uint8_t>();
  if (alias >= 240)
    args.lse = const_cast<void *>(args.lse_a);
  else if (alias >= 224)
    args.out = const_cast<void *>(args.out_a);
  return args;
}

/// A merge of `metadata` as gqa_kernel_merge_states checks and binds it;
/// aborts where the plan breaks an invariant or the pointer checks let lse
/// alias an input.
inline void planAndBindMerge(const KernelMetadata &metadata,
                             FuzzedDataProvider &sizes) {
  gqa_merge_args args = makeFuzzedMergeArgs(metadata, sizes);
  gqa_kernel_launch_config launch;
  if (!planMerge(metadata, args, launch).ok())
    return;
  if (launch.role != GQA_KERNEL_ROLE_MERGE)
    std::abort();
  for (uint32_t extent : launch.grid)
    if (extent == 0)
      std::abort(); // Sizes are >= 1: a merge is never empty.
  if (!validateMergePointers(args).ok())
    return;
  if (args.lse == args.lse_a || args.lse == args.lse_b)
    std::abort(); // The merged LSE must have memory of its own.
  KernelParamValues params;
  bindMergeParams(metadata.kernels.front(), args, params);
  if (params.count != metadata.kernels.front().params.size())
    std::abort();
}

/// Plans a launch of `metadata` with sizes from `sizes`, checks its
/// pointers and binds every kernel's parameters, as gqa_kernel_launch does
/// (gqa_kernel_merge_states for a merge_states set, which gqa_kernel_launch
/// must refuse); aborts where a plan breaks an invariant (a refusal is a
/// status, fine).
inline void planAndBind(const KernelMetadata &metadata,
                        FuzzedDataProvider &sizes) {
  if (metadata.isMergeStates()) {
    gqa_launch_args none = {};
    gqa_launch_plan plan;
    if (planLaunch(metadata, none, 132, plan).ok())
      std::abort(); // Each kind has its own entry points.
    planAndBindMerge(metadata, sizes);
    return;
  }
  int32_t smCount = sizes.ConsumeIntegral<uint8_t>() < 128
                        ? 132
                        : sizes.ConsumeIntegral<int32_t>();
  gqa_launch_args args = makeFuzzedArgs(metadata, sizes);
  gqa_launch_plan plan;
  if (!planLaunch(metadata, args, smCount, plan).ok())
    return;
  if (plan.num_kernels < 1 ||
      plan.num_kernels > static_cast<int32_t>(metadata.kernels.size()))
    std::abort(); // A plan launches some of the document's kernels.
  for (int32_t i = 0; i < plan.num_kernels; ++i)
    for (uint32_t extent : plan.kernels[i].grid)
      if (extent == 0)
        std::abort(); // Nothing to launch is refused, not planned.
  if (!validateLaunchPointers(metadata, args, plan).ok())
    return;
  for (int32_t i = 0; i < plan.num_kernels; ++i) {
    KernelParamValues params;
    bindKernelParams(metadata.kernels[i], args, plan, 0x200000, params);
    if (params.count != metadata.kernels[i].params.size())
      std::abort(); // One value per parameter of the entry.
  }
}

} // namespace gqa::runtime::fuzz

#endif // GQA_FUZZ_RUNTIME_FUZZLAUNCH_H
