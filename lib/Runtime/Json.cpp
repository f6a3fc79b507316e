//===- Json.cpp - Strict JSON documents through nlohmann-json -------------===//
//
// nlohmann-json's SAX parser (RFC 8259, UTF-8 checked) builds the JsonValue
// tree; this file adds what the kernel metadata needs beyond it: no
// duplicate keys, a nesting limit, exact integers.
//
//===----------------------------------------------------------------------===//

#include "Json.h"

#include <nlohmann/json.hpp>

#include <unordered_set>

namespace gqa::runtime {

JsonValue JsonValue::boolean(bool value) {
  JsonValue result;
  result.kind = Kind::Bool;
  result.boolValue = value;
  return result;
}

JsonValue JsonValue::number(double value, std::optional<int64_t> integer) {
  JsonValue result;
  result.kind = Kind::Number;
  result.numberValue = value;
  result.integerValue = integer;
  return result;
}

JsonValue JsonValue::string(std::string value) {
  JsonValue result;
  result.kind = Kind::String;
  result.stringValue = std::move(value);
  return result;
}

JsonValue JsonValue::array(Array elements) {
  JsonValue result;
  result.kind = Kind::Array;
  result.arrayValue = std::move(elements);
  return result;
}

JsonValue JsonValue::object(Object members) {
  JsonValue result;
  result.kind = Kind::Object;
  result.objectValue = std::move(members);
  return result;
}

const JsonValue *JsonValue::find(std::string_view key) const {
  for (const Member &member : objectValue)
    if (member.first == key)
      return &member.second;
  return nullptr;
}

JsonValue *JsonValue::find(std::string_view key) {
  return const_cast<JsonValue *>(std::as_const(*this).find(key));
}

const char *describeJsonKind(JsonValue::Kind kind) {
  switch (kind) {
  case JsonValue::Kind::Null:
    return "null";
  case JsonValue::Kind::Bool:
    return "a boolean";
  case JsonValue::Kind::Number:
    return "a number";
  case JsonValue::Kind::String:
    return "a string";
  case JsonValue::Kind::Array:
    return "an array";
  case JsonValue::Kind::Object:
    return "an object";
  }
  return "a value of unknown kind";
}

namespace {

using nlohmann::json;

/// Builds a JsonValue from nlohmann-json's SAX events. The first error
/// stops the parse: every handler returns false once `error` is set.
class DocumentBuilder : public nlohmann::json_sax<json> {
public:
  explicit DocumentBuilder(JsonValue &root) : root(root) {}

  std::string error;

  bool null() override { return add(JsonValue()); }
  bool boolean(bool value) override { return add(JsonValue::boolean(value)); }
  bool number_integer(number_integer_t value) override {
    return add(JsonValue::number(static_cast<double>(value), value));
  }
  bool number_unsigned(number_unsigned_t value) override {
    std::optional<int64_t> integer;
    if (value <= static_cast<number_unsigned_t>(INT64_MAX))
      integer = static_cast<int64_t>(value);
    return add(JsonValue::number(static_cast<double>(value), integer));
  }
  // (A number beyond double's range is nlohmann-json's parse error.)
  bool number_float(number_float_t value, const string_t &) override {
    return add(JsonValue::number(value));
  }
  bool string(string_t &value) override {
    return add(JsonValue::string(std::move(value)));
  }
  bool binary(binary_t &) override {
    return fail("binary values are not JSON");
  }

  bool start_object(std::size_t) override {
    return open(JsonValue::object({}));
  }
  bool key(string_t &name) override {
    if (!keys.back().insert(name).second)
      return fail("duplicate key '" + name + "' in " + describeOpenPath());
    pendingKey = std::move(name);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(JsonValue::array({})); }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t, const std::string &,
                   const nlohmann::detail::exception &exception) override {
    // "[json.exception.parse_error.101] parse error at line 1, column 2:
    // ..." becomes "line 1, column 2: ...".
    std::string message = exception.what();
    if (message.rfind("[json.exception.", 0) == 0 &&
        message.find("] ") != std::string::npos)
      message = message.substr(message.find("] ") + 2);
    for (std::string_view marker : {"parse error at ", "parse error: "}) {
      size_t at = message.find(marker);
      if (at != std::string::npos) {
        message = message.substr(at + marker.size());
        break;
      }
    }
    return fail(std::move(message));
  }

private:
  bool fail(std::string message) {
    if (error.empty())
      error = std::move(message);
    return false;
  }

  /// Places `value` in the open container (or as the document), and
  /// returns where it now lives.
  JsonValue *place(JsonValue value) {
    if (openValues.empty()) {
      root = std::move(value);
      return &root;
    }
    JsonValue &parent = *openValues.back();
    if (parent.getKind() == JsonValue::Kind::Array) {
      parent.getArray().push_back(std::move(value));
      return &parent.getArray().back();
    }
    parent.getObject().emplace_back(std::move(pendingKey), std::move(value));
    return &parent.getObject().back().second;
  }

  bool add(JsonValue value) {
    if (!error.empty())
      return false;
    place(std::move(value));
    return true;
  }

  /// Opens an array or object. A parent's elements never move while a child
  /// is open (only a closed child is followed by a sibling), so the pointers
  /// in `openValues` stay valid.
  bool open(JsonValue container) {
    if (!error.empty())
      return false;
    if (static_cast<int>(openValues.size()) >= kMaxJsonDepth)
      return fail("nesting deeper than " + std::to_string(kMaxJsonDepth) +
                  " levels of arrays and objects");
    openValues.push_back(place(std::move(container)));
    keys.emplace_back();
    return true;
  }

  bool close() {
    openValues.pop_back();
    keys.pop_back();
    return error.empty();
  }

  /// Where the open object sits: "the top-level object", or a path such as
  /// "kernels[0].grid" of the keys and indices leading to it.
  std::string describeOpenPath() const {
    std::string path;
    for (size_t i = 1; i < openValues.size(); ++i) {
      const JsonValue &parent = *openValues[i - 1];
      if (parent.getKind() == JsonValue::Kind::Array) {
        path += "[" + std::to_string(parent.getArray().size() - 1) + "]";
      } else {
        path += (path.empty() ? "" : ".") + parent.getObject().back().first;
      }
    }
    return path.empty() ? "the top-level object" : "'" + path + "'";
  }

  JsonValue &root;
  std::vector<JsonValue *> openValues;
  /// The keys seen in each open container (empty for arrays).
  std::vector<std::unordered_set<std::string>> keys;
  std::string pendingKey;
};

} // namespace

Status parseJson(std::string_view text, JsonValue &value) {
  value = JsonValue();
  DocumentBuilder builder(value);
  bool parsed = json::sax_parse(text, &builder, json::input_format_t::json,
                                /*strict=*/true, /*ignore_comments=*/false);
  if (parsed && builder.error.empty())
    return Status::success();
  value = JsonValue();
  return Status::failure(GQA_ERROR_INVALID_METADATA, builder.error.empty()
                                                         ? "invalid JSON"
                                                         : builder.error);
}

} // namespace gqa::runtime
