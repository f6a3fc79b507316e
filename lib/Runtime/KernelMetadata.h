//===- KernelMetadata.h - The metadata JSON beside each PTX -----*- C++ -*-===//
//
// The parsed form of docs/kernel-metadata.md, and its parser. Everything the
// contract allows is checked here, at load time, so that launching only has
// to check the caller's arguments.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_RUNTIME_KERNELMETADATA_H
#define GQA_RUNTIME_KERNELMETADATA_H

#include "Json.h"
#include "Status.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace gqa::runtime {

/// The "format" of each kind of document, and the "version" of it this
/// runtime reads (each kind is versioned on its own).
constexpr std::string_view kAttentionFormat = "gqa.kernel";
constexpr int64_t kMetadataVersion = 3;
constexpr std::string_view kMergeStatesFormat = "gqa.merge_states";
constexpr int64_t kMergeMetadataVersion = 1;

/// The most parameters a kernel can take: each name of the attention
/// contract's vocabulary (12 pointers, 7 sizes) at most once, which is more
/// than a merge kernel's (6 and 2); the decoders assert it.
constexpr size_t kMaxKernelParams = 19;

/// A size known at launch: a grid symbol, or an integer kernel parameter.
enum class LaunchSize {
  Batch,
  SeqQ,
  SeqKV,
  NumSplits,
  NumPages,
  TotalQ,
  TotalKV
};

/// A pointer kernel parameter (OutA to LseB: merge kernels only; Out and
/// Lse: both kinds).
enum class PointerParam {
  Q,
  K,
  V,
  Out,
  KvLens,
  BlockTable,
  PartialOut,
  PartialLse,
  Sinks,
  Lse,
  CuSeqlensQ,
  CuSeqlensK,
  OutA,
  LseA,
  OutB,
  LseB
};

/// The contract's name of a launch size ("seq_kv").
const char *getLaunchSizeName(LaunchSize size);

/// The contract's spellings ("bf16", "bshd", "i32"), or "?" for a value
/// outside the enumeration.
const char *getDTypeName(gqa_dtype dtype);
const char *getLayoutName(gqa_layout layout);
const char *getKvLensTypeName(gqa_kv_lens_type type);

/// The size in bytes of one element of `dtype` (0 for an unknown value).
int64_t getDTypeSize(gqa_dtype dtype);

/// One grid dimension: a constant, or ceil((symbol * mul + add) / div).
struct GridDim {
  /// Set for { "const": N }; then `constant` is the dimension.
  bool isConstant = false;
  int64_t constant = 1;
  LaunchSize symbol = LaunchSize::Batch;
  int64_t mul = 1;
  int64_t add = 0;
  int64_t div = 1;
};

enum class ParamType { Ptr, I32, I64 };

/// One kernel parameter: where its value comes from, and its type.
struct KernelParam {
  std::string name;
  ParamType type = ParamType::Ptr;
  std::variant<PointerParam, LaunchSize> source;
};

/// One entry of "kernels".
struct KernelSpec {
  std::string name;
  gqa_kernel_role role = GQA_KERNEL_ROLE_MAIN;
  std::array<uint32_t, 3> block = {1, 1, 1};
  uint32_t dynamicSharedMemoryBytes = 0;
  uint32_t staticSharedMemoryBytes = 0;
  std::array<GridDim, 3> grid;
  std::vector<KernelParam> params;
};

/// A whole metadata file, of either kind.
struct KernelMetadata {
  gqa_kernel_set_kind kind = GQA_KERNEL_SET_ATTENTION;
  int64_t version = kMetadataVersion;
  std::string chip;
  std::string ptxFile;
  /// Attention ("gqa.kernel") only; zero for a merge_states set.
  gqa_kernel_config config = {};
  gqa_kernel_tiling tiling = {};
  /// Merge_states ("gqa.merge_states") only; zero for an attention set.
  gqa_merge_config mergeConfig = {};
  /// In launch order: one `main` kernel, or `split` then `combine`; for a
  /// merge_states set, one `merge` kernel.
  std::vector<KernelSpec> kernels;

  bool isMergeStates() const { return kind == GQA_KERNEL_SET_MERGE_STATES; }
  bool splitsKV() const { return tiling.max_splits > 0; }
};

/// Decodes and checks an already parsed metadata document of either kind
/// (by its "format"). Failures are GQA_ERROR_INVALID_METADATA naming the key
/// ("kernels[1].grid[0].div").
Status decodeKernelMetadata(const JsonValue &document,
                            KernelMetadata &metadata);

/// parseJson + decodeKernelMetadata; messages start with "metadata: ".
Status parseKernelMetadata(std::string_view json, KernelMetadata &metadata);

/// Whether `chip` reads as a chip name: sm_ and 2 to 4 digits, then
/// optionally `a` or `f` ("sm_90", "sm_90a", "sm_100f").
bool isValidChipName(std::string_view chip);

/// Checks that a device of compute capability major.minor can run PTX built
/// for `chip` ("sm_90": 9.0 or newer; "sm_90a": exactly 9.0; "sm_100f": 10.x
/// with x >= 0). Fails with GQA_ERROR_UNSUPPORTED_DEVICE.
Status checkChipSupported(std::string_view chip, int major, int minor);

} // namespace gqa::runtime

#endif // GQA_RUNTIME_KERNELMETADATA_H
