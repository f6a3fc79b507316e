//===- Json.h - Strict JSON documents ---------------------------*- C++ -*-===//
//
// RFC 8259 JSON, strictly: no comments, no trailing commas, no NaN, no
// duplicate object keys, UTF-8 only (a leading byte order mark is skipped,
// as RFC 8259 allows), parsed by nlohmann-json (header-only,
// so the runtime stays free of LLVM) into a small document tree that the
// kernel-metadata decoder walks.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_RUNTIME_JSON_H
#define GQA_RUNTIME_JSON_H

#include "Status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gqa::runtime {

/// One JSON value. Objects keep their members in document order.
class JsonValue {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<JsonValue>;
  using Member = std::pair<std::string, JsonValue>;
  using Object = std::vector<Member>;

  /// null.
  JsonValue() = default;
  static JsonValue boolean(bool value);
  /// A number; `integer` is set when it was written without fraction or
  /// exponent and fits in int64_t.
  static JsonValue number(double value,
                          std::optional<int64_t> integer = std::nullopt);
  static JsonValue string(std::string value);
  static JsonValue array(Array elements);
  static JsonValue object(Object members);

  Kind getKind() const { return kind; }
  bool isNull() const { return kind == Kind::Null; }

  bool getBool() const { return boolValue; }
  double getNumber() const { return numberValue; }
  const std::optional<int64_t> &getInteger() const { return integerValue; }
  const std::string &getString() const { return stringValue; }
  const Array &getArray() const { return arrayValue; }
  Array &getArray() { return arrayValue; }
  const Object &getObject() const { return objectValue; }
  Object &getObject() { return objectValue; }

  /// The member named `key` of an object, or null if there is none.
  const JsonValue *find(std::string_view key) const;
  JsonValue *find(std::string_view key);

private:
  Kind kind = Kind::Null;
  bool boolValue = false;
  double numberValue = 0;
  std::optional<int64_t> integerValue;
  std::string stringValue;
  Array arrayValue;
  Object objectValue;
};

/// "null", "a boolean", "a number", "a string", "an array" or "an object".
const char *describeJsonKind(JsonValue::Kind kind);

/// The deepest nesting of arrays and objects parseJson accepts.
constexpr int kMaxJsonDepth = 64;

/// Parses one JSON text (surrounding whitespace allowed). Failures are
/// GQA_ERROR_INVALID_METADATA with "line L, column C: <what is wrong>"
/// (nlohmann-json's account of a syntax error; a number out of double's
/// range is "number overflow parsing '1e999'"), or a message naming the
/// duplicate key and its object, or the nesting limit.
Status parseJson(std::string_view text, JsonValue &value);

} // namespace gqa::runtime

#endif // GQA_RUNTIME_JSON_H
