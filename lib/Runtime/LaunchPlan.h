//===- LaunchPlan.h - Check arguments and plan a launch ---------*- C++ -*-===//
//
// Everything about a launch that needs no GPU: checking the caller's
// arguments against the metadata, evaluating grid expressions, choosing the
// number of KV splits, sizing the workspace and laying out the kernel
// parameters; for attention kernel sets (gqa_launch_args) and merge_states
// kernel sets (gqa_merge_args).
//
//===----------------------------------------------------------------------===//

#ifndef GQA_RUNTIME_LAUNCHPLAN_H
#define GQA_RUNTIME_LAUNCHPLAN_H

#include "KernelMetadata.h"
#include "Status.h"

#include <array>
#include <cstdint>

namespace gqa::runtime {

/// The grid-dimension limits of every CUDA device since compute 3.0.
constexpr int64_t kMaxGridX = 2147483647;
constexpr int64_t kMaxGridYZ = 65535;

/// The split-KV heuristic aims for this many CTAs per SM.
constexpr int64_t kTargetCtasPerSM = 2;

/// partial_lse starts at a multiple of this in the workspace.
constexpr uint64_t kWorkspaceAlignment = 256;

/// The sizes a launch gives the grid symbols and size parameters.
struct LaunchSizes {
  int64_t batch = 1;
  int64_t seqQ = 1;
  int64_t seqKV = 1;
  int64_t numSplits = 1;
  /// Paged kernels only.
  int64_t numPages = 0;
  /// Ragged batches only: the packed query (and key) tokens.
  int64_t totalQ = 0, totalKV = 0;

  int64_t get(LaunchSize size) const;
};

/// Checks that `metadata` is an attention kernel set, then the sizes (>= 1,
/// equal to the sizes fixed in the metadata) and the shape facts (heads,
/// head dims, dtype, layout) of `args` against it. Fails with
/// GQA_ERROR_INVALID_ARGUMENT naming the field.
Status validateLaunchShape(const KernelMetadata &metadata,
                           const gqa_launch_args &args);

/// Evaluates one grid dimension: the constant, or
/// ceil((symbol * mul + add) / div). Fails if the arithmetic overflows.
Status evaluateGridDim(const GridDim &dim, const LaunchSizes &sizes,
                       int64_t &extent);

/// Picks the number of KV splits for split-KV metadata: the fewest splits
/// whose split-kernel grid has kTargetCtasPerSM * smCount CTAs, but never
/// more than split_kv.max_splits or the KV tiles of tile.block_n; then the
/// fewest splits that keep the same tiles per split, so that no split is
/// empty. 1 for metadata without split-KV.
Status chooseNumSplits(const KernelMetadata &metadata, int64_t batch,
                       int64_t seqQ, int64_t seqKV, int32_t smCount,
                       int64_t &numSplits);

/// validateLaunchShape, then the whole plan for a device of `smCount` SMs:
/// grids (checked against the device limits), blocks, shared memory, the
/// number of splits and the workspace. Also checks that every size passed as
/// an i32 parameter fits in one.
Status planLaunch(const KernelMetadata &metadata, const gqa_launch_args &args,
                  int32_t smCount, gqa_launch_plan &plan);

/// Checks the pointers of `args`: tensors present and aligned to their
/// element size, kv_lens present iff the kernel takes it, a caller's
/// workspace large enough and 16-byte aligned.
Status validateLaunchPointers(const KernelMetadata &metadata,
                              const gqa_launch_args &args,
                              const gqa_launch_plan &plan);

/// One kernel parameter's value, as cuLaunchKernel reads it.
union KernelParamValue {
  uint64_t pointer;
  int64_t i64;
  int32_t i32;
};

/// The parameter array of one cuLaunchKernel call. `pointers[i]` points into
/// `values`, so the object is neither copied nor moved.
struct KernelParamValues {
  KernelParamValues() = default;
  KernelParamValues(const KernelParamValues &) = delete;
  KernelParamValues &operator=(const KernelParamValues &) = delete;

  std::array<KernelParamValue, kMaxKernelParams> values = {};
  std::array<void *, kMaxKernelParams> pointers = {};
  size_t count = 0;
};

/// Fills the parameters of `kernel` for a planned launch; `workspace` is the
/// device address of the split-KV workspace (0 without split-KV).
void bindKernelParams(const KernelSpec &kernel, const gqa_launch_args &args,
                      const gqa_launch_plan &plan, uint64_t workspace,
                      KernelParamValues &params);

/// Checks that `metadata` is a merge_states kernel set and `args` fits it
/// (sizes >= 1 and equal to the fixed ones, heads, head_dim_v, dtype and
/// layout equal to the config's, batch 1 with config.varlen), then plans its
/// kernel: grid (within the device limits), block, shared memory, and every
/// size passed as an i32 fitting in one.
Status planMerge(const KernelMetadata &metadata, const gqa_merge_args &args,
                 gqa_kernel_launch_config &launch);

/// Checks the pointers of a merge already planned: all six given, out_a,
/// out_b and out 16-byte aligned, the log-sum-exps 4-byte aligned; lse
/// sharing no byte with lse_a or lse_b; out either out_a (out_b) or sharing
/// no byte with it.
Status validateMergePointers(const gqa_merge_args &args);

/// Fills the parameters of a merge kernel.
void bindMergeParams(const KernelSpec &kernel, const gqa_merge_args &args,
                     KernelParamValues &params);

} // namespace gqa::runtime

#endif // GQA_RUNTIME_LAUNCHPLAN_H
