//===- KernelMetadata.h - PTX and metadata of gqa's kernels -----*- C++ -*-===//
//
// What gqa-compile writes beside the PTX: the kernel metadata JSON of
// docs/kernel-metadata.md, read from the attributes the GQA-to-GPU
// conversion puts on each gpu.module and gpu.func, and the PTX itself, taken
// from the #gpu.object that gpu-module-to-binary{format=isa} produces.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_TARGET_KERNELMETADATA_H
#define GQA_TARGET_KERNELMETADATA_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::gqa {

/// One grid dimension: `constant`, or ceil((symbol * mul + add) / div).
struct GridDimension {
  std::optional<int64_t> constant;
  std::string symbol;
  int64_t mul = 1;
  int64_t add = 0;
  int64_t div = 1;
};

/// One kernel parameter: its name (q, k, v, out, kv_lens, partial_out,
/// partial_lse, batch, seq_q, seq_kv, num_splits) and type (ptr, i32, i64).
struct KernelParameter {
  std::string name;
  std::string type;
};

/// One kernel of a set: how to launch it.
struct KernelLaunchInfo {
  std::string name;
  /// main, split, combine or merge.
  std::string role;
  std::array<int64_t, 3> block = {1, 1, 1};
  int64_t dynamicSharedMemoryBytes = 0;
  int64_t staticSharedMemoryBytes = 0;
  std::array<GridDimension, 3> grid;
  std::vector<KernelParameter> params;
};

/// The `config` section: what the kernels compute.
struct KernelSetConfig {
  int64_t qHeads = 0;
  int64_t kvHeads = 0;
  int64_t groupSize = 0;
  int64_t headDim = 0;
  int64_t headDimV = 0;
  std::string dtype;
  std::string layout;
  std::string mask;
  int64_t windowLeft = -1;
  int64_t windowRight = -1;
  double scale = 0.0;
  double softcap = 0.0;
  std::string kvLens;
  /// Tokens per page of a paged KV cache; 0 when K/V are contiguous.
  int64_t pageSize = 0;
  /// Whether the kernels take one attention-sink logit per query head.
  bool sinks = false;
  /// Whether the kernels also write each row's log-sum-exp.
  bool lse = false;
  /// A ragged batch: q, out (and lse) are packed tokens split by
  /// cu_seqlens_q; with packedKV, k and v too, by cu_seqlens_k.
  bool varlen = false, packedKV = false;
  std::optional<int64_t> batch, seqQ, seqKV;
};

/// The `config` section of a merge kernel set ("gqa.merge_states"): the
/// outputs that gqa.merge_states merges.
struct MergeSetConfig {
  int64_t heads = 0;
  int64_t headDimV = 0;
  std::string dtype;
  std::string layout;
  /// Packed tokens [T, H, Dv] and [H, T], launched as a batch of one.
  bool varlen = false;
  std::optional<int64_t> batch, seqQ;
};

/// The `tile` section.
struct KernelSetTile {
  int64_t blockM = 0;
  int64_t blockN = 0;
  int64_t warps = 0;
  int64_t stages = 0;
  bool packGQA = true;
};

/// Everything the metadata of one op's kernels holds but the chip and the
/// PTX file name: an attention op's set ("gqa.kernel"), or, with `merge`, a
/// gqa.merge_states' ("gqa.merge_states": mergeConfig and its one kernel).
struct KernelSetMetadata {
  /// The gpu.module (and, after gpu-module-to-binary, gpu.binary) symbol.
  std::string moduleName;
  bool merge = false;
  KernelSetConfig config;
  KernelSetTile tile;
  int64_t maxSplits = 0;
  MergeSetConfig mergeConfig;
  /// In launch order.
  std::vector<KernelLaunchInfo> kernels;
};

/// Reads the kernel sets of the gpu.modules in `module` that carry the
/// conversion's `gqa.config` attribute (one per converted gqa.attention or
/// gqa.merge_states, in module order). Emits an error on a gpu.module whose
/// attributes are incomplete.
FailureOr<std::vector<KernelSetMetadata>> collectKernelSets(ModuleOp module);

/// The version of docs/kernel-metadata.md this compiler writes. 3: the
/// config's `sinks`, `lse`, `varlen` and `packed_kv`, and the kernels'
/// parameters for them.
constexpr int64_t kKernelMetadataVersion = 3;
/// The version of the merge kernel sets' format.
constexpr int64_t kMergeMetadataVersion = 1;

/// Writes the metadata JSON of `set` compiled for `chip`, its PTX in the file
/// named `ptxFile` (docs/kernel-metadata.md, kKernelMetadataVersion or, for
/// a merge set, kMergeMetadataVersion).
void writeKernelMetadata(llvm::raw_ostream &os, const KernelSetMetadata &set,
                         StringRef chip, StringRef ptxFile);

/// The PTX of the gpu.binary `binaryName` in `module` (its object in
/// assembly format). Emits an error when there is none.
FailureOr<std::string> extractPTX(ModuleOp module, StringRef binaryName);

} // namespace mlir::gqa

#endif // GQA_TARGET_KERNELMETADATA_H
