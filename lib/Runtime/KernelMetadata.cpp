//===- KernelMetadata.cpp - The metadata JSON beside each PTX -------------===//

#include "KernelMetadata.h"

#include <cmath>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <tuple>
#include <utility>

namespace gqa::runtime {

namespace {

/// A JSON spelling and the value it stands for.
template <typename T> struct EnumSpelling {
  const char *spelling;
  T value;
};

const EnumSpelling<gqa_dtype> kDTypes[] = {
    {"f16", GQA_DTYPE_F16}, {"bf16", GQA_DTYPE_BF16}, {"f32", GQA_DTYPE_F32}};
const EnumSpelling<gqa_layout> kLayouts[] = {{"bhsd", GQA_LAYOUT_BHSD},
                                             {"bshd", GQA_LAYOUT_BSHD}};
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
const EnumSpelling<ParamType> kParamTypes[] = {
    {"ptr", ParamType::Ptr}, {"i32", ParamType::I32}, {"i64", ParamType::I64}};

template <typename T, size_t N>
const char *spell(const EnumSpelling<T> (&spellings)[N], T value) {
  for (const EnumSpelling<T> &entry : spellings)
    if (entry.value == value)
      return entry.spelling;
  return "?";
}

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

std::string quote(std::string_view text) {
  return "'" + std::string(text) + "'";
}

Status invalid(std::string message) {
  return Status::failure(GQA_ERROR_INVALID_METADATA, std::move(message));
}

/// The path of a member: "config" + "q_heads" -> "config.q_heads".
std::string memberPath(const std::string &path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string elementPath(const std::string &path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

/// Reads typed members out of JSON objects; every message names the key by
/// its full path.
class Reader {
public:
  /// Checks that `value` at `path` is an object whose keys are all in
  /// `knownKeys`.
  static Status
  expectObject(const JsonValue &value, const std::string &path,
               std::initializer_list<std::string_view> knownKeys) {
    if (value.getKind() != JsonValue::Kind::Object)
      return typeError(path, "an object", value);
    for (const JsonValue::Member &member : value.getObject()) {
      bool known = false;
      for (std::string_view key : knownKeys)
        known = known || key == member.first;
      if (!known)
        return invalid("unknown key " + quote(memberPath(path, member.first)));
    }
    return Status::success();
  }

  static Status typeError(const std::string &path, const char *expected,
                          const JsonValue &found) {
    return invalid((path.empty() ? "the document" : "key " + quote(path)) +
                   " must be " + expected + ", not " +
                   describeJsonKind(found.getKind()));
  }

  static Status get(const JsonValue &object, const std::string &path,
                    std::string_view key, const JsonValue *&member) {
    member = object.find(key);
    if (!member)
      return invalid("missing key " + quote(memberPath(path, key)));
    return Status::success();
  }

  static Status readInteger(const JsonValue &object, const std::string &path,
                            std::string_view key, int64_t minimum,
                            int64_t maximum, int64_t &out) {
    const JsonValue *member;
    if (Status status = get(object, path, key, member); !status.ok())
      return status;
    return checkInteger(*member, memberPath(path, key), minimum, maximum, out);
  }

  static Status checkInteger(const JsonValue &value, const std::string &path,
                             int64_t minimum, int64_t maximum, int64_t &out) {
    if (value.getKind() != JsonValue::Kind::Number || !value.getInteger())
      return typeError(path, "an integer", value);
    out = *value.getInteger();
    if (out < minimum)
      return invalid("key " + quote(path) + " must be >= " +
                     std::to_string(minimum) + ", not " + std::to_string(out));
    if (out > maximum)
      return invalid("key " + quote(path) + " must be <= " +
                     std::to_string(maximum) + ", not " + std::to_string(out));
    return Status::success();
  }

  static Status readUInt32(const JsonValue &object, const std::string &path,
                           std::string_view key, uint32_t &out) {
    int64_t value = 0;
    Status status = readInteger(object, path, key, 0,
                                std::numeric_limits<uint32_t>::max(), value);
    out = static_cast<uint32_t>(value);
    return status;
  }

  /// An integer >= 1, or null (stored as 0).
  static Status readOptionalSize(const JsonValue &object,
                                 const std::string &path, std::string_view key,
                                 int64_t &out) {
    const JsonValue *member;
    if (Status status = get(object, path, key, member); !status.ok())
      return status;
    if (member->isNull()) {
      out = 0;
      return Status::success();
    }
    if (member->getKind() != JsonValue::Kind::Number || !member->getInteger())
      return typeError(memberPath(path, key), "an integer or null", *member);
    return checkInteger(*member, memberPath(path, key), 1,
                        std::numeric_limits<int64_t>::max(), out);
  }

  static Status readNumber(const JsonValue &object, const std::string &path,
                           std::string_view key, double &out) {
    const JsonValue *member;
    if (Status status = get(object, path, key, member); !status.ok())
      return status;
    if (member->getKind() != JsonValue::Kind::Number)
      return typeError(memberPath(path, key), "a number", *member);
    out = member->getNumber();
    return Status::success();
  }

  static Status readBool(const JsonValue &object, const std::string &path,
                         std::string_view key, bool &out) {
    const JsonValue *member;
    if (Status status = get(object, path, key, member); !status.ok())
      return status;
    if (member->getKind() != JsonValue::Kind::Bool)
      return typeError(memberPath(path, key), "a boolean", *member);
    out = member->getBool();
    return Status::success();
  }

  static Status readString(const JsonValue &object, const std::string &path,
                           std::string_view key, std::string &out) {
    const JsonValue *member;
    if (Status status = get(object, path, key, member); !status.ok())
      return status;
    if (member->getKind() != JsonValue::Kind::String)
      return typeError(memberPath(path, key), "a string", *member);
    out = member->getString();
    if (out.empty())
      return invalid("key " + quote(memberPath(path, key)) +
                     " must not be empty");
    return Status::success();
  }

  template <typename T, size_t N>
  static Status readEnum(const JsonValue &object, const std::string &path,
                         std::string_view key,
                         const EnumSpelling<T> (&spellings)[N], T &out) {
    std::string spelling;
    if (Status status = readString(object, path, key, spelling); !status.ok())
      return status;
    return lookUpEnum(spelling, memberPath(path, key), spellings, out);
  }

  template <typename T, size_t N>
  static Status lookUpEnum(const std::string &spelling, const std::string &path,
                           const EnumSpelling<T> (&spellings)[N], T &out) {
    std::string choices;
    for (const EnumSpelling<T> &entry : spellings) {
      if (spelling == entry.spelling) {
        out = entry.value;
        return Status::success();
      }
      choices += choices.empty() ? "" : ", ";
      choices += entry.spelling;
    }
    return invalid("key " + quote(path) + " must be one of " + choices +
                   ", not " + quote(spelling));
  }

  /// Checks that `object[key]` is an array of `size` elements (any size if
  /// `size` is 0, but not empty).
  static Status readArray(const JsonValue &object, const std::string &path,
                          std::string_view key, size_t size,
                          const JsonValue::Array *&out) {
    const JsonValue *member;
    if (Status status = get(object, path, key, member); !status.ok())
      return status;
    if (member->getKind() != JsonValue::Kind::Array)
      return typeError(memberPath(path, key), "an array", *member);
    out = &member->getArray();
    if (size != 0 && out->size() != size)
      return invalid("key " + quote(memberPath(path, key)) + " must have " +
                     std::to_string(size) + " elements, not " +
                     std::to_string(out->size()));
    if (out->empty())
      return invalid("key " + quote(memberPath(path, key)) +
                     " must not be empty");
    return Status::success();
  }
};

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

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

Status decodeGridDim(const JsonValue &value, const std::string &path,
                     GridDim &dim) {
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
  if (Status status =
          Reader::readEnum(value, path, "sym", kGridSymbols, dim.symbol);
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
                   KernelParam &param) {
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
  for (const EnumSpelling<PointerParam> &entry : kPointerParams) {
    if (param.name == entry.spelling) {
      param.source = entry.value;
      if (param.type != ParamType::Ptr)
        return invalid("parameter " + quote(param.name) + " (" + path +
                       ") is a pointer, so its type must be ptr");
      return Status::success();
    }
  }
  for (const EnumSpelling<LaunchSize> &entry : kLaunchSizes) {
    if (param.name == entry.spelling) {
      param.source = entry.value;
      if (param.type == ParamType::Ptr)
        return invalid("parameter " + quote(param.name) + " (" + path +
                       ") is an integer, so its type must be i32 or i64");
      return Status::success();
    }
  }
  return invalid("key " + quote(namePath) + " is " + quote(param.name) +
                 ", which is not a parameter name of the contract (q, k, v, "
                 "out, kv_lens, block_table, batch, seq_q, seq_kv, "
                 "num_pages, num_splits, partial_out, partial_lse, sinks, "
                 "lse, cu_seqlens_q, total_q, cu_seqlens_k, total_kv)");
}

Status decodeKernel(const JsonValue &value, const std::string &path,
                    KernelSpec &kernel) {
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
          Reader::readEnum(value, path, "role", kRoles, kernel.role);
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
    if (Status status = decodeGridDim(
            (*grid)[i], elementPath(path + ".grid", i), kernel.grid[i]);
        !status.ok())
      return status;

  const JsonValue::Array *params;
  if (Status status = Reader::readArray(value, path, "params", 0, params);
      !status.ok())
    return status;
  for (size_t i = 0; i < params->size(); ++i) {
    KernelParam param;
    if (Status status =
            decodeParam((*params)[i], elementPath(path + ".params", i), param);
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

bool takesParam(const KernelSpec &kernel, std::string_view name) {
  for (const KernelParam &param : kernel.params)
    if (param.name == name)
      return true;
  return false;
}

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
    std::string where = "kernel " + quote(kernel.name) + " (kernels[" +
                        std::to_string(i) + "], role " +
                        spell(kRoles, kernel.role) + ")";
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
  if (format != "gqa.kernel")
    return invalid("key 'format' must be \"gqa.kernel\", not " + quote(format));
  if (Status status = Reader::readInteger(document, "", "version", 1, kInt64Max,
                                          metadata.version);
      !status.ok())
    return status;
  if (metadata.version != kMetadataVersion)
    return invalid("metadata version " + std::to_string(metadata.version) +
                   " is not supported (this runtime reads version " +
                   std::to_string(kMetadataVersion) + ")");
  if (Status status = Reader::readString(document, "", "chip", metadata.chip);
      !status.ok())
    return status;
  if (!isValidChipName(metadata.chip))
    return invalid("key 'chip' must look like sm_90 or sm_90a, not " +
                   quote(metadata.chip));
  if (Status status = Reader::readString(document, "", "ptx", metadata.ptxFile);
      !status.ok())
    return status;

  const JsonValue *config;
  if (Status status = Reader::get(document, "", "config", config); !status.ok())
    return status;
  if (Status status = decodeConfig(*config, metadata.config); !status.ok())
    return status;
  if (Status status = decodeTiling(document, metadata.tiling); !status.ok())
    return status;

  const JsonValue::Array *kernels;
  if (Status status = Reader::readArray(document, "", "kernels", 0, kernels);
      !status.ok())
    return status;
  metadata.kernels.clear();
  for (size_t i = 0; i < kernels->size(); ++i) {
    KernelSpec kernel;
    if (Status status =
            decodeKernel((*kernels)[i], elementPath("kernels", i), kernel);
        !status.ok())
      return status;
    metadata.kernels.push_back(std::move(kernel));
  }
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
