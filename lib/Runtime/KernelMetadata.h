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

/// The metadata "version" this runtime reads.
constexpr int64_t kMetadataVersion = 3;

/// The most parameters a kernel can take: each name of the contract's
/// vocabulary (12 pointers, 7 sizes) at most once; KernelMetadata.cpp
/// asserts that it matches the vocabulary.
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

/// A pointer kernel parameter.
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
  CuSeqlensK
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

/// A whole metadata file.
struct KernelMetadata {
  int64_t version = kMetadataVersion;
  std::string chip;
  std::string ptxFile;
  gqa_kernel_config config = {};
  gqa_kernel_tiling tiling = {};
  /// In launch order: one `main` kernel, or `split` then `combine`.
  std::vector<KernelSpec> kernels;

  bool splitsKV() const { return tiling.max_splits > 0; }
};

/// Decodes and checks an already parsed metadata document. Failures are
/// GQA_ERROR_INVALID_METADATA naming the key ("kernels[1].grid[0].div").
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
