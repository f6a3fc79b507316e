//===- MetadataReader.h - Decoding metadata documents -----------*- C++ -*-===//
//
// What the decoders of both kinds of metadata document (KernelMetadata.cpp:
// "gqa.kernel"; MergeMetadata.cpp: "gqa.merge_states") share: the Reader of
// typed members, which names every key by its full path, the spellings of the
// contract's enumerations, and the decoding of the document's header
// (version, chip, ptx) and of its kernels, each kind with its own
// vocabulary. Internal to the runtime.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_RUNTIME_METADATAREADER_H
#define GQA_RUNTIME_METADATAREADER_H

#include "Json.h"
#include "KernelMetadata.h"
#include "Status.h"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gqa::runtime::decoding {

/// A JSON spelling and the value it stands for.
template <typename T> struct EnumSpelling {
  const char *spelling;
  T value;
};

/// A view of an array of spellings.
template <typename T> class EnumTable {
public:
  template <size_t N>
  constexpr EnumTable(const EnumSpelling<T> (&entries)[N])
      : first(entries), count(N) {}

  const EnumSpelling<T> *begin() const { return first; }
  const EnumSpelling<T> *end() const { return first + count; }
  size_t size() const { return count; }

private:
  const EnumSpelling<T> *first;
  size_t count;
};

/// T, in a parameter from which T is not deduced (so that an array of
/// spellings converts to the EnumTable of the T deduced elsewhere).
template <typename T> struct Identity { using type = T; };
template <typename T> using NonDeduced = typename Identity<T>::type;

inline constexpr EnumSpelling<gqa_dtype> kDTypes[] = {
    {"f16", GQA_DTYPE_F16}, {"bf16", GQA_DTYPE_BF16}, {"f32", GQA_DTYPE_F32}};
inline constexpr EnumSpelling<gqa_layout> kLayouts[] = {
    {"bhsd", GQA_LAYOUT_BHSD}, {"bshd", GQA_LAYOUT_BSHD}};
inline constexpr EnumSpelling<ParamType> kParamTypes[] = {
    {"ptr", ParamType::Ptr}, {"i32", ParamType::I32}, {"i64", ParamType::I64}};

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

/// The spelling of `value`, or "?".
template <typename T>
const char *spell(NonDeduced<EnumTable<T>> spellings, T value) {
  for (const EnumSpelling<T> &entry : spellings)
    if (entry.value == value)
      return entry.spelling;
  return "?";
}

inline std::string quote(std::string_view text) {
  return "'" + std::string(text) + "'";
}

inline Status invalid(std::string message) {
  return Status::failure(GQA_ERROR_INVALID_METADATA, std::move(message));
}

/// The path of a member: "config" + "q_heads" -> "config.q_heads".
inline std::string memberPath(const std::string &path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

inline std::string elementPath(const std::string &path, size_t index) {
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

  template <typename T>
  static Status readEnum(const JsonValue &object, const std::string &path,
                         std::string_view key,
                         NonDeduced<EnumTable<T>> spellings, T &out) {
    std::string spelling;
    if (Status status = readString(object, path, key, spelling); !status.ok())
      return status;
    return lookUpEnum(spelling, memberPath(path, key), spellings, out);
  }

  template <typename T>
  static Status lookUpEnum(const std::string &spelling, const std::string &path,
                           NonDeduced<EnumTable<T>> spellings, T &out) {
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

/// The names the kernels of one kind of document may use.
struct KernelVocabulary {
  EnumTable<gqa_kernel_role> roles;
  EnumTable<LaunchSize> gridSymbols;
  EnumTable<PointerParam> pointers;
  /// The sizes a kernel may take as integer parameters.
  EnumTable<LaunchSize> sizes;
  /// Whose parameter names they are, for messages ("the contract").
  const char *owner;
};

/// Reads "version" (which must be `version`, the version of `format` this
/// runtime reads), "chip" and "ptx" into `metadata`.
Status decodeHeader(const JsonValue &document, std::string_view format,
                    int64_t version, KernelMetadata &metadata);

/// Decodes the "kernels" array of `document` with `vocabulary`: each
/// kernel's keys and values, each parameter name at most once.
Status decodeKernels(const JsonValue &document,
                     const KernelVocabulary &vocabulary,
                     std::vector<KernelSpec> &kernels);

/// "kernel 'name' (kernels[i], role r)", for messages.
std::string describeKernel(const KernelSpec &kernel, size_t index,
                           const KernelVocabulary &vocabulary);

bool takesParam(const KernelSpec &kernel, std::string_view name);

/// Decodes a "gqa.merge_states" document (MergeMetadata.cpp).
Status decodeMergeMetadata(const JsonValue &document, KernelMetadata &metadata);

} // namespace gqa::runtime::decoding

#endif // GQA_RUNTIME_METADATAREADER_H
