//===- KernelMetadata.cpp - The metadata JSON beside each PTX -------------===//

#include "KernelMetadata.h"

#include "MetadataReader.h"

#include <cmath>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <tuple>
#include <utility>

namespace gqa::runtime {

using namespace decoding;

namespace {

const EnumSpelling<gqa_mask> kMasks[] = {{"none", GQA_MASK_NONE},
                                         {"causal", GQA_MASK_CAUSAL},
                                         {"window", GQA_MASK_WINDOW}};
const EnumSpelling<gqa_kv_lens_type> kKvLensTypes[] = {
    {"none", GQA_KV_LENS_NONE},
    {"i32", GQA_KV_LENS_I32},
    {"i64", GQA_KV_LENS_I64}};
const EnumSpelling<gqa_kernel_role> kRoles[] = {
    {"main", GQA_KERNEL_ROLE_MAIN},
    {"split", GQA_KERNEL_ROLE_SPLIT},
    {"combine", GQA_KERNEL_ROLE_COMBINE}};
/// The sizes a kernel may take as integer parameters.
const EnumSpelling<LaunchSize> kLaunchSizes[] = {
    {"batch", LaunchSize::Batch},        {"seq_q", LaunchSize::SeqQ},
    {"seq_kv", LaunchSize::SeqKV},       {"num_splits", LaunchSize::NumSplits},
    {"num_pages", LaunchSize::NumPages}, {"total_q", LaunchSize::TotalQ},
    {"total_kv", LaunchSize::TotalKV}};
/// The sizes a grid dimension may depend on.
const EnumSpelling<LaunchSize> kGridSymbols[] = {
    {"batch", LaunchSize::Batch},
    {"seq_q", LaunchSize::SeqQ},
    {"seq_kv", LaunchSize::SeqKV},
    {"num_splits", LaunchSize::NumSplits}};
const EnumSpelling<PointerParam> kPointerParams[] = {
    {"q", PointerParam::Q},
    {"k", PointerParam::K},
    {"v", PointerParam::V},
    {"out", PointerParam::Out},
    {"kv_lens", PointerParam::KvLens},
    {"block_table", PointerParam::BlockTable},
    {"partial_out", PointerParam::PartialOut},
    {"partial_lse", PointerParam::PartialLse},
    {"sinks", PointerParam::Sinks},
    {"lse", PointerParam::Lse},
    {"cu_seqlens_q", PointerParam::CuSeqlensQ},
    {"cu_seqlens_k", PointerParam::CuSeqlensK}};
// decodeKernel takes each name at most once, so that many parameters fit in
// the launch's arrays (KernelParamValues).
static_assert(std::size(kPointerParams) + std::size(kLaunchSizes) ==
                  kMaxKernelParams,
              "kMaxKernelParams must count the contract's parameter names");

const KernelVocabulary kAttentionVocabulary = {
    kRoles, kGridSymbols, kPointerParams, kLaunchSizes, "the contract"};

} // namespace

const char *getLaunchSizeName(LaunchSize size) {
  return spell(kLaunchSizes, size);
}
const char *getDTypeName(gqa_dtype dtype) { return spell(kDTypes, dtype); }
const char *getLayoutName(gqa_layout layout) { return spell(kLayouts, layout); }
const char *getKvLensTypeName(gqa_kv_lens_type type) {
  return spell(kKvLensTypes, type);
}

int64_t getDTypeSize(gqa_dtype dtype) {
  switch (dtype) {
  case GQA_DTYPE_F16:
  case GQA_DTYPE_BF16:
    return 2;
  case GQA_DTYPE_F32:
    return 4;
  }
  return 0;
}

namespace {

Status decodeConfig(const JsonValue &object, gqa_kernel_config &config) {
  const std::string path = "config";
  if (Status status = Reader::expectObject(
          object, path,
          {"q_heads", "kv_heads", "group_size", "head_dim",    "head_dim_v",
           "dtype",   "layout",   "mask",       "window_left", "window_right",
           "scale",   "softcap",  "kv_lens",    "page_size",   "sinks",
           "lse",     "varlen",   "packed_kv",  "batch",       "seq_q",
           "seq_kv"});
      !status.ok())
    return status;
  Status status;
  auto readPositive = [&](std::string_view key, int64_t &out) {
    if (status.ok())
      status = Reader::readInteger(object, path, key, 1, kInt64Max, out);
  };
  readPositive("q_heads", config.q_heads);
  readPositive("kv_heads", config.kv_heads);
  readPositive("group_size", config.group_size);
  readPositive("head_dim", config.head_dim);
  readPositive("head_dim_v", config.head_dim_v);
  if (status.ok())
    status = Reader::readEnum(object, path, "dtype", kDTypes, config.dtype);
  if (status.ok())
    status = Reader::readEnum(object, path, "layout", kLayouts, config.layout);
  if (status.ok())
    status = Reader::readEnum(object, path, "mask", kMasks, config.mask);
  if (status.ok())
    status = Reader::readInteger(object, path, "window_left", -1, kInt64Max,
                                 config.window_left);
  if (status.ok())
    status = Reader::readInteger(object, path, "window_right", -1, kInt64Max,
                                 config.window_right);
  if (status.ok())
    status = Reader::readNumber(object, path, "scale", config.scale);
  if (status.ok())
    status = Reader::readNumber(object, path, "softcap", config.softcap);
  if (status.ok())
    status =
        Reader::readEnum(object, path, "kv_lens", kKvLensTypes, config.kv_lens);
  if (status.ok())
    status = Reader::readInteger(object, path, "page_size", 0, kInt64Max,
                                 config.page_size);
  for (auto [key, flag] :
       {std::pair<std::string_view, int32_t *>{"sinks", &config.sinks},
        {"lse", &config.lse},
        {"varlen", &config.varlen},
        {"packed_kv", &config.packed_kv}}) {
    bool value = false;
    if (status.ok())
      status = Reader::readBool(object, path, key, value);
    *flag = value;
  }
  if (status.ok())
    status = Reader::readOptionalSize(object, path, "batch", config.batch);
  if (status.ok())
    status = Reader::readOptionalSize(object, path, "seq_q", config.seq_q);
  if (status.ok())
    status = Reader::readOptionalSize(object, path, "seq_kv", config.seq_kv);
  if (!status.ok())
    return status;

  if (config.varlen && config.layout != GQA_LAYOUT_BSHD)
    return invalid("config.varlen is true, so config.layout must be bshd "
                   "(packed tokens [T, H, D])");
  if (config.packed_kv && !config.varlen)
    return invalid("config.packed_kv is true, but config.varlen is false");
  if (config.packed_kv && config.page_size)
    return invalid("config.packed_kv is true, so config.page_size must be 0 "
                   "(K/V are packed tokens, not page pools)");
  if (config.q_heads % config.kv_heads != 0)
    return invalid("config.q_heads (" + std::to_string(config.q_heads) +
                   ") must be a multiple of config.kv_heads (" +
                   std::to_string(config.kv_heads) + ")");
  if (config.group_size != config.q_heads / config.kv_heads)
    return invalid("config.group_size (" + std::to_string(config.group_size) +
                   ") must be config.q_heads / config.kv_heads (" +
                   std::to_string(config.q_heads / config.kv_heads) + ")");
  if (config.mask == GQA_MASK_NONE &&
      (config.window_left != -1 || config.window_right != -1))
    return invalid("config.mask is none, so config.window_left and "
                   "config.window_right must be -1");
  if (config.mask == GQA_MASK_CAUSAL && config.window_right > 0)
    return invalid("config.mask is causal, so config.window_right must be 0 "
                   "or -1, not " +
                   std::to_string(config.window_right));
  if (!(config.scale > 0) || std::isinf(config.scale))
    return invalid("key 'config.scale' must be a positive finite number");
  if (!(config.softcap >= 0))
    return invalid("key 'config.softcap' must be >= 0");
  if (config.page_size && config.seq_kv % config.page_size != 0)
    return invalid("config.seq_kv (" + std::to_string(config.seq_kv) +
                   ") must be a multiple of config.page_size (" +
                   std::to_string(config.page_size) + ")");
  return Status::success();
}

Status decodeTiling(const JsonValue &document, gqa_kernel_tiling &tiling) {
  const JsonValue *tile;
  if (Status status = Reader::get(document, "", "tile", tile); !status.ok())
    return status;
  if (Status status = Reader::expectObject(
          *tile, "tile", {"block_m", "block_n", "warps", "stages", "pack_gqa"});
      !status.ok())
    return status;
  Status status;
  auto readPositive = [&](std::string_view key, int64_t &out) {
    if (status.ok())
      status = Reader::readInteger(*tile, "tile", key, 1, kInt64Max, out);
  };
  readPositive("block_m", tiling.block_m);
  readPositive("block_n", tiling.block_n);
  readPositive("warps", tiling.warps);
  readPositive("stages", tiling.stages);
  bool packGqa = false;
  if (status.ok())
    status = Reader::readBool(*tile, "tile", "pack_gqa", packGqa);
  tiling.pack_gqa = packGqa ? 1 : 0;
  if (!status.ok())
    return status;

  const JsonValue *splitKV;
  if (Status status = Reader::get(document, "", "split_kv", splitKV);
      !status.ok())
    return status;
  if (Status status =
          Reader::expectObject(*splitKV, "split_kv", {"max_splits"});
      !status.ok())
    return status;
  return Reader::readInteger(*splitKV, "split_kv", "max_splits", 0,
                             std::numeric_limits<int32_t>::max(),
                             tiling.max_splits);
}

} // namespace

namespace decoding {

namespace {

Status decodeGridDim(const JsonValue &value, const std::string &path,
                     EnumTable<LaunchSize> symbols, GridDim &dim) {
  if (Status status = Reader::expectObject(
          value, path, {"const", "sym", "mul", "add", "div"});
      !status.ok())
    return status;
  bool hasConstant = value.find("const") != nullptr;
  bool hasSymbol = value.find("sym") != nullptr;
  if (hasConstant && hasSymbol)
    return invalid("key " + quote(path) +
                   " must have either 'const' or 'sym', not both");
  if (hasConstant) {
    if (value.getObject().size() != 1)
      return invalid("key " + quote(path) +
                     " has 'const', so it must not have 'mul', 'add' or 'div'");
    dim.isConstant = true;
    return Reader::readInteger(value, path, "const", 1, kInt64Max,
                               dim.constant);
  }
  if (!hasSymbol)
    return invalid("missing key " + quote(memberPath(path, "sym")) +
                   " (or 'const')");
  dim.isConstant = false;
  if (Status status = Reader::readEnum(value, path, "sym", symbols, dim.symbol);
      !status.ok())
    return status;
  struct OptionalTerm {
    std::string_view key;
    int64_t minimum;
    int64_t &out;
  };
  for (const OptionalTerm &term :
       {OptionalTerm{"mul", 1, dim.mul}, OptionalTerm{"add", 0, dim.add},
        OptionalTerm{"div", 1, dim.div}}) {
    if (!value.find(term.key))
      continue;
    if (Status status = Reader::readInteger(value, path, term.key, term.minimum,
                                            kInt64Max, term.out);
        !status.ok())
      return status;
  }
  return Status::success();
}

Status decodeParam(const JsonValue &value, const std::string &path,
                   const KernelVocabulary &vocabulary, KernelParam &param) {
  if (Status status = Reader::expectObject(value, path, {"name", "type"});
      !status.ok())
    return status;
  if (Status status = Reader::readString(value, path, "name", param.name);
      !status.ok())
    return status;
  if (Status status =
          Reader::readEnum(value, path, "type", kParamTypes, param.type);
      !status.ok())
    return status;
  std::string namePath = memberPath(path, "name");
  for (const EnumSpelling<PointerParam> &entry : vocabulary.pointers) {
    if (param.name == entry.spelling) {
      param.source = entry.value;
      if (param.type != ParamType::Ptr)
        return invalid("parameter " + quote(param.name) + " (" + path +
                       ") is a pointer, so its type must be ptr");
      return Status::success();
    }
  }
  for (const EnumSpelling<LaunchSize> &entry : vocabulary.sizes) {
    if (param.name == entry.spelling) {
      param.source = entry.value;
      if (param.type == ParamType::Ptr)
        return invalid("parameter " + quote(param.name) + " (" + path +
                       ") is an integer, so its type must be i32 or i64");
      return Status::success();
    }
  }
  std::string names;
  for (const EnumSpelling<PointerParam> &entry : vocabulary.pointers)
    names += std::string(names.empty() ? "" : ", ") + entry.spelling;
  for (const EnumSpelling<LaunchSize> &entry : vocabulary.sizes)
    names += std::string(", ") + entry.spelling;
  return invalid("key " + quote(namePath) + " is " + quote(param.name) +
                 ", which is not a parameter name of " + vocabulary.owner +
                 " (" + names + ")");
}

Status decodeKernel(const JsonValue &value, const std::string &path,
                    const KernelVocabulary &vocabulary, KernelSpec &kernel) {
  if (Status status = Reader::expectObject(
          value, path,
          {"name", "role", "block", "dynamic_shared_memory_bytes",
           "static_shared_memory_bytes", "grid", "params"});
      !status.ok())
    return status;
  if (Status status = Reader::readString(value, path, "name", kernel.name);
      !status.ok())
    return status;
  if (Status status =
          Reader::readEnum(value, path, "role", vocabulary.roles, kernel.role);
      !status.ok())
    return status;

  const JsonValue::Array *block;
  if (Status status = Reader::readArray(value, path, "block", 3, block);
      !status.ok())
    return status;
  const int64_t blockLimits[3] = {1024, 1024, 64};
  int64_t threads = 1;
  for (size_t i = 0; i < 3; ++i) {
    int64_t extent;
    if (Status status =
            Reader::checkInteger((*block)[i], elementPath(path + ".block", i),
                                 1, blockLimits[i], extent);
        !status.ok())
      return status;
    kernel.block[i] = static_cast<uint32_t>(extent);
    threads *= extent;
  }
  if (threads > 1024)
    return invalid("key " + quote(path + ".block") + " asks for " +
                   std::to_string(threads) +
                   " threads per block; at most 1024 are possible");

  if (Status status =
          Reader::readUInt32(value, path, "dynamic_shared_memory_bytes",
                             kernel.dynamicSharedMemoryBytes);
      !status.ok())
    return status;
  if (Status status =
          Reader::readUInt32(value, path, "static_shared_memory_bytes",
                             kernel.staticSharedMemoryBytes);
      !status.ok())
    return status;

  const JsonValue::Array *grid;
  if (Status status = Reader::readArray(value, path, "grid", 3, grid);
      !status.ok())
    return status;
  for (size_t i = 0; i < 3; ++i)
    if (Status status =
            decodeGridDim((*grid)[i], elementPath(path + ".grid", i),
                          vocabulary.gridSymbols, kernel.grid[i]);
        !status.ok())
      return status;

  const JsonValue::Array *params;
  if (Status status = Reader::readArray(value, path, "params", 0, params);
      !status.ok())
    return status;
  for (size_t i = 0; i < params->size(); ++i) {
    KernelParam param;
    if (Status status = decodeParam(
            (*params)[i], elementPath(path + ".params", i), vocabulary, param);
        !status.ok())
      return status;
    for (const KernelParam &earlier : kernel.params)
      if (earlier.name == param.name)
        return invalid("kernel " + quote(kernel.name) + " (" + path +
                       ") takes parameter " + quote(param.name) + " twice");
    kernel.params.push_back(std::move(param));
  }
  return Status::success();
}

} // namespace

Status decodeHeader(const JsonValue &document, std::string_view format,
                    int64_t version, KernelMetadata &metadata) {
  if (Status status = Reader::readInteger(document, "", "version", 1, kInt64Max,
                                          metadata.version);
      !status.ok())
    return status;
  if (metadata.version != version)
    return invalid("metadata version " + std::to_string(metadata.version) +
                   " is not supported: key 'version' must be " +
                   std::to_string(version) + " for format " +
                   std::string(format) + " (recompile the kernel)");
  if (Status status = Reader::readString(document, "", "chip", metadata.chip);
      !status.ok())
    return status;
  if (!isValidChipName(metadata.chip))
    return invalid("key 'chip' must look like sm_90 or sm_90a, not " +
                   quote(metadata.chip));
  return Reader::readString(document, "", "ptx", metadata.ptxFile);
}

Status decodeKernels(const JsonValue &document,
                     const KernelVocabulary &vocabulary,
                     std::vector<KernelSpec> &kernels) {
  const JsonValue::Array *array;
  if (Status status = Reader::readArray(document, "", "kernels", 0, array);
      !status.ok())
    return status;
  kernels.clear();
  for (size_t i = 0; i < array->size(); ++i) {
    KernelSpec kernel;
    if (Status status = decodeKernel((*array)[i], elementPath("kernels", i),
                                     vocabulary, kernel);
        !status.ok())
      return status;
    kernels.push_back(std::move(kernel));
  }
  return Status::success();
}

std::string describeKernel(const KernelSpec &kernel, size_t index,
                           const KernelVocabulary &vocabulary) {
  return "kernel " + quote(kernel.name) + " (kernels[" + std::to_string(index) +
         "], role " + spell(vocabulary.roles, kernel.role) + ")";
}

bool takesParam(const KernelSpec &kernel, std::string_view name) {
  for (const KernelParam &param : kernel.params)
    if (param.name == name)
      return true;
  return false;
}

} // namespace decoding

namespace {

bool usesNumSplitsInGrid(const KernelSpec &kernel) {
  for (const GridDim &dim : kernel.grid)
    if (!dim.isConstant && dim.symbol == LaunchSize::NumSplits)
      return true;
  return false;
}

/// The parameters a kernel of `role` cannot do without.
std::vector<std::string_view> getRequiredParams(gqa_kernel_role role) {
  switch (role) {
  case GQA_KERNEL_ROLE_MAIN:
    return {"q", "k", "v", "out"};
  case GQA_KERNEL_ROLE_SPLIT:
    // With one split the split kernel writes `out` itself.
    return {"q", "k", "v", "out", "partial_out", "partial_lse", "num_splits"};
  case GQA_KERNEL_ROLE_COMBINE:
    return {"partial_out", "partial_lse", "out"};
  case GQA_KERNEL_ROLE_MERGE:
    break; // Not a role of an attention document (see MergeMetadata.cpp).
  }
  return {};
}

/// Checks the kernels against each other and against config and split_kv:
/// the roles, and that each kernel takes what its role needs.
Status checkKernelList(const KernelMetadata &metadata) {
  const std::vector<KernelSpec> &kernels = metadata.kernels;
  if (!metadata.splitsKV()) {
    if (kernels.size() != 1 || kernels[0].role != GQA_KERNEL_ROLE_MAIN)
      return invalid("split_kv.max_splits is 0, so 'kernels' must hold "
                     "exactly one kernel, of role main");
  } else if (kernels.size() != 2 || kernels[0].role != GQA_KERNEL_ROLE_SPLIT ||
             kernels[1].role != GQA_KERNEL_ROLE_COMBINE) {
    return invalid("split_kv.max_splits is " +
                   std::to_string(metadata.tiling.max_splits) +
                   ", so 'kernels' must hold a kernel of role split followed "
                   "by one of role combine");
  }

  bool takeKvLens = metadata.config.kv_lens != GQA_KV_LENS_NONE;
  bool someKernelTakesKvLens = false;
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelSpec &kernel = kernels[i];
    std::string where = describeKernel(kernel, i, kAttentionVocabulary);
    for (std::string_view name : getRequiredParams(kernel.role))
      if (!takesParam(kernel, name))
        return invalid(where + " must take parameter " + quote(name));
    if (!metadata.splitsKV()) {
      for (std::string_view name : {"num_splits", "partial_out", "partial_lse"})
        if (takesParam(kernel, name))
          return invalid(where + " takes " + quote(name) +
                         ", but split_kv.max_splits is 0");
      if (usesNumSplitsInGrid(kernel))
        return invalid(where + " has num_splits in its grid, but "
                               "split_kv.max_splits is 0");
    }
    if (takesParam(kernel, "kv_lens")) {
      if (!takeKvLens)
        return invalid(where + " takes 'kv_lens', but config.kv_lens is none");
      someKernelTakesKvLens = true;
    }
  }
  if (takeKvLens && !someKernelTakesKvLens)
    return invalid(std::string("config.kv_lens is ") +
                   getKvLensTypeName(metadata.config.kv_lens) +
                   ", but no kernel takes parameter 'kv_lens'");
  // Every kernel reads the sinks, writes the LSE and finds its sequences'
  // queries as the config says (the split kernel too: launched alone, it
  // finalises the rows itself); none other.
  const gqa_kernel_config &config = metadata.config;
  for (auto [name, key, taken] :
       {std::tuple<std::string_view, std::string_view, bool>{"sinks", "sinks",
                                                             config.sinks != 0},
        {"lse", "lse", config.lse != 0},
        {"cu_seqlens_q", "varlen", config.varlen != 0},
        {"total_q", "varlen", config.varlen != 0}})
    for (size_t i = 0; i < kernels.size(); ++i)
      if (takesParam(kernels[i], name) != taken)
        return invalid("kernel " + quote(kernels[i].name) + " (kernels[" +
                       std::to_string(i) + "]) " +
                       (taken ? "must take parameter " + quote(name) +
                                    " (config." + std::string(key) + " is true)"
                              : "takes " + quote(name) + ", but config." +
                                    std::string(key) + " is false"));
  // A paged attention kernel reads the block table and the pool size, one of
  // packed K/V their offsets and tokens; other kernels never do.
  bool paged = config.page_size > 0, packed = config.packed_kv != 0;
  std::string pagedWhy =
                  "config.page_size is " + std::to_string(config.page_size),
              packedWhy = std::string("config.packed_kv is ") +
                          (packed ? "true" : "false");
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelSpec &kernel = kernels[i];
    bool attention = kernel.role != GQA_KERNEL_ROLE_COMBINE;
    for (auto [name, compiled, why] :
         {std::tuple<std::string_view, bool, const std::string &>{
              "block_table", paged, pagedWhy},
          {"num_pages", paged, pagedWhy},
          {"cu_seqlens_k", packed, packedWhy},
          {"total_kv", packed, packedWhy}}) {
      if (takesParam(kernel, name) == (compiled && attention))
        continue;
      std::string where = "kernel " + quote(kernel.name) + " (kernels[" +
                          std::to_string(i) + "])";
      if (compiled && attention)
        return invalid(where + " must take parameter " + quote(name) + " (" +
                       why + ")");
      return invalid(where + " takes " + quote(name) + ", but " +
                     (compiled ? "a combine kernel reads no KV" : why));
    }
  }
  return Status::success();
}

} // namespace

Status decodeKernelMetadata(const JsonValue &document,
                            KernelMetadata &metadata) {
  metadata = KernelMetadata();
  // The format says which decoder reads the rest.
  if (const JsonValue *format = document.find("format");
      format && format->getKind() == JsonValue::Kind::String &&
      format->getString() == kMergeStatesFormat)
    return decodeMergeMetadata(document, metadata);
  if (Status status =
          Reader::expectObject(document, "",
                               {"format", "version", "chip", "ptx", "config",
                                "tile", "split_kv", "kernels"});
      !status.ok())
    return status;
  std::string format;
  if (Status status = Reader::readString(document, "", "format", format);
      !status.ok())
    return status;
  if (format != kAttentionFormat)
    return invalid("key 'format' must be \"gqa.kernel\" or "
                   "\"gqa.merge_states\", not " +
                   quote(format));
  if (Status status =
          decodeHeader(document, kAttentionFormat, kMetadataVersion, metadata);
      !status.ok())
    return status;

  const JsonValue *config;
  if (Status status = Reader::get(document, "", "config", config); !status.ok())
    return status;
  if (Status status = decodeConfig(*config, metadata.config); !status.ok())
    return status;
  if (Status status = decodeTiling(document, metadata.tiling); !status.ok())
    return status;
  if (Status status =
          decodeKernels(document, kAttentionVocabulary, metadata.kernels);
      !status.ok())
    return status;
  return checkKernelList(metadata);
}

Status parseKernelMetadata(std::string_view json, KernelMetadata &metadata) {
  JsonValue document;
  Status status = parseJson(json, document);
  if (status.ok())
    status = decodeKernelMetadata(document, metadata);
  return std::move(status).withContext("metadata");
}

} // namespace gqa::runtime
