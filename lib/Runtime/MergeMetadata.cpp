//===- MergeMetadata.cpp - The metadata of a merge_states kernel set ------===//
//
// Decodes a "gqa.merge_states" document (docs/kernel-metadata.md, "Merge
// kernel sets") with the Reader and the kernel decoding that attention
// documents use, and the same strictness: every key required, unknown keys
// rejected (a "tile" or "split_kv" too), messages naming the key by its path.
//
//===----------------------------------------------------------------------===//

#include "MetadataReader.h"

#include <iterator>

namespace gqa::runtime::decoding {

namespace {

const EnumSpelling<gqa_kernel_role> kMergeRoles[] = {
    {"merge", GQA_KERNEL_ROLE_MERGE}};
/// The sizes a merge kernel's grid may depend on and it may take.
const EnumSpelling<LaunchSize> kMergeSizes[] = {{"batch", LaunchSize::Batch},
                                                {"seq_q", LaunchSize::SeqQ}};
const EnumSpelling<PointerParam> kMergePointers[] = {
    {"out_a", PointerParam::OutA}, {"lse_a", PointerParam::LseA},
    {"out_b", PointerParam::OutB}, {"lse_b", PointerParam::LseB},
    {"out", PointerParam::Out},    {"lse", PointerParam::Lse}};
static_assert(std::size(kMergePointers) + std::size(kMergeSizes) <=
                  kMaxKernelParams,
              "a merge kernel's parameters must fit in KernelParamValues");

const KernelVocabulary kMergeVocabulary = {
    kMergeRoles, kMergeSizes, kMergePointers, kMergeSizes, "a merge kernel"};

/// Each thread of the merge kernel moves 4 consecutive values of a row.
constexpr int64_t kMergeValuesPerThread = 4;

Status decodeMergeConfig(const JsonValue &document, gqa_merge_config &config) {
  const std::string path = "config";
  const JsonValue *object;
  if (Status status = Reader::get(document, "", path, object); !status.ok())
    return status;
  if (Status status =
          Reader::expectObject(*object, path,
                               {"heads", "head_dim_v", "dtype", "layout",
                                "varlen", "batch", "seq_q"});
      !status.ok())
    return status;
  Status status =
      Reader::readInteger(*object, path, "heads", 1, kInt64Max, config.heads);
  if (status.ok())
    status = Reader::readInteger(*object, path, "head_dim_v", 1, kInt64Max,
                                 config.head_dim_v);
  if (status.ok())
    status = Reader::readEnum(*object, path, "dtype", kDTypes, config.dtype);
  if (status.ok())
    status = Reader::readEnum(*object, path, "layout", kLayouts, config.layout);
  bool varlen = false;
  if (status.ok())
    status = Reader::readBool(*object, path, "varlen", varlen);
  config.varlen = varlen;
  if (status.ok())
    status = Reader::readOptionalSize(*object, path, "batch", config.batch);
  if (status.ok())
    status = Reader::readOptionalSize(*object, path, "seq_q", config.seq_q);
  if (!status.ok())
    return status;

  if (config.head_dim_v % kMergeValuesPerThread != 0)
    return invalid("key 'config.head_dim_v' must be a multiple of " +
                   std::to_string(kMergeValuesPerThread) +
                   " (each thread of the merge kernel moves " +
                   std::to_string(kMergeValuesPerThread) +
                   " consecutive values of a row), not " +
                   std::to_string(config.head_dim_v));
  if (config.varlen && config.layout != GQA_LAYOUT_BSHD)
    return invalid("config.varlen is true, so config.layout must be bshd "
                   "(packed tokens [T, H, Dv])");
  if (config.varlen && config.batch > 1)
    return invalid("config.varlen is true, so config.batch must be 1 or null "
                   "(the packed tokens are one batch), not " +
                   std::to_string(config.batch));
  return Status::success();
}

} // namespace

Status decodeMergeMetadata(const JsonValue &document,
                           KernelMetadata &metadata) {
  metadata.kind = GQA_KERNEL_SET_MERGE_STATES;
  if (Status status = Reader::expectObject(
          document, "",
          {"format", "version", "chip", "ptx", "config", "kernels"});
      !status.ok())
    return status;
  if (Status status = decodeHeader(document, kMergeStatesFormat,
                                   kMergeMetadataVersion, metadata);
      !status.ok())
    return status;
  if (Status status = decodeMergeConfig(document, metadata.mergeConfig);
      !status.ok())
    return status;
  if (Status status =
          decodeKernels(document, kMergeVocabulary, metadata.kernels);
      !status.ok())
    return status;

  if (metadata.kernels.size() != 1)
    return invalid("a gqa.merge_states document's 'kernels' must hold exactly "
                   "one kernel, of role merge, not " +
                   std::to_string(metadata.kernels.size()));
  const KernelSpec &kernel = metadata.kernels.front();
  for (const EnumSpelling<PointerParam> &pointer : kMergePointers)
    if (!takesParam(kernel, pointer.spelling))
      return invalid(describeKernel(kernel, 0, kMergeVocabulary) +
                     " must take parameter " + quote(pointer.spelling));
  return Status::success();
}

} // namespace gqa::runtime::decoding
