//===- Json.cpp - A small strict JSON parser ------------------------------===//

#include "Json.h"

#include <charconv>
#include <cmath>

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

/// A recursive-descent parser over one JSON text. The first error wins:
/// every parse function returns false once `error` is set.
class JsonParser {
public:
  explicit JsonParser(std::string_view text) : text(text) {}

  Status parseDocument(JsonValue &value) {
    skipWhitespace();
    if (parseValue(value, /*depth=*/0)) {
      skipWhitespace();
      if (position != text.size())
        fail("unexpected content after the JSON value");
    }
    if (error.empty())
      return Status::success();
    return Status::failure(GQA_ERROR_INVALID_METADATA, describeErrorPosition());
  }

private:
  bool fail(std::string message) {
    if (error.empty()) {
      error = std::move(message);
      errorPosition = position;
    }
    return false;
  }

  std::string describeErrorPosition() const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < errorPosition && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return "line " + std::to_string(line) + ", column " +
           std::to_string(column) + ": " + error;
  }

  bool atEnd() const { return position >= text.size(); }
  char peek() const { return atEnd() ? '\0' : text[position]; }

  void skipWhitespace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r'))
      ++position;
  }

  bool parseValue(JsonValue &value, int depth) {
    if (atEnd())
      return fail("expected a value, found the end of the text");
    switch (peek()) {
    case '{':
      return parseObject(value, depth + 1);
    case '[':
      return parseArray(value, depth + 1);
    case '"': {
      std::string string;
      if (!parseString(string))
        return false;
      value = JsonValue::string(std::move(string));
      return true;
    }
    case 't':
      return parseLiteral("true", JsonValue::boolean(true), value);
    case 'f':
      return parseLiteral("false", JsonValue::boolean(false), value);
    case 'n':
      return parseLiteral("null", JsonValue(), value);
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9'))
        return parseNumber(value);
      return fail(std::string("unexpected character '") + peek() + "'");
    }
  }

  bool parseLiteral(std::string_view literal, JsonValue literalValue,
                    JsonValue &value) {
    if (text.substr(position, literal.size()) != literal)
      return fail("invalid literal (expected '" + std::string(literal) + "')");
    position += literal.size();
    value = std::move(literalValue);
    return true;
  }

  bool parseObject(JsonValue &value, int depth) {
    if (depth > kMaxJsonDepth)
      return fail("nesting deeper than " + std::to_string(kMaxJsonDepth));
    ++position; // '{'
    JsonValue::Object members;
    skipWhitespace();
    if (peek() == '}') {
      ++position;
      value = JsonValue::object(std::move(members));
      return true;
    }
    while (true) {
      skipWhitespace();
      if (peek() != '"')
        return fail("expected a string key in the object");
      size_t keyPosition = position;
      std::string key;
      if (!parseString(key))
        return false;
      for (const JsonValue::Member &member : members) {
        if (member.first == key) {
          position = keyPosition;
          return fail("duplicate key '" + key + "'");
        }
      }
      skipWhitespace();
      if (peek() != ':')
        return fail("expected ':' after the key '" + key + "'");
      ++position;
      skipWhitespace();
      JsonValue member;
      if (!parseValue(member, depth))
        return false;
      members.emplace_back(std::move(key), std::move(member));
      skipWhitespace();
      if (peek() == ',') {
        ++position;
        continue;
      }
      if (peek() == '}') {
        ++position;
        value = JsonValue::object(std::move(members));
        return true;
      }
      return fail("expected ',' or '}' after an object member");
    }
  }

  bool parseArray(JsonValue &value, int depth) {
    if (depth > kMaxJsonDepth)
      return fail("nesting deeper than " + std::to_string(kMaxJsonDepth));
    ++position; // '['
    JsonValue::Array elements;
    skipWhitespace();
    if (peek() == ']') {
      ++position;
      value = JsonValue::array(std::move(elements));
      return true;
    }
    while (true) {
      skipWhitespace();
      JsonValue element;
      if (!parseValue(element, depth))
        return false;
      elements.push_back(std::move(element));
      skipWhitespace();
      if (peek() == ',') {
        ++position;
        continue;
      }
      if (peek() == ']') {
        ++position;
        value = JsonValue::array(std::move(elements));
        return true;
      }
      return fail("expected ',' or ']' after an array element");
    }
  }

  /// Reads four hex digits of a \u escape.
  bool parseHex4(uint32_t &codeUnit) {
    if (text.size() - position < 4)
      return fail("truncated \\u escape");
    codeUnit = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text[position++];
      codeUnit <<= 4;
      if (c >= '0' && c <= '9')
        codeUnit |= c - '0';
      else if (c >= 'a' && c <= 'f')
        codeUnit |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        codeUnit |= c - 'A' + 10;
      else
        return fail("invalid hex digit in a \\u escape");
    }
    return true;
  }

  static void appendUtf8(uint32_t codePoint, std::string &out) {
    if (codePoint < 0x80) {
      out += static_cast<char>(codePoint);
    } else if (codePoint < 0x800) {
      out += static_cast<char>(0xC0 | (codePoint >> 6));
      out += static_cast<char>(0x80 | (codePoint & 0x3F));
    } else if (codePoint < 0x10000) {
      out += static_cast<char>(0xE0 | (codePoint >> 12));
      out += static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (codePoint & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (codePoint >> 18));
      out += static_cast<char>(0x80 | ((codePoint >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (codePoint & 0x3F));
    }
  }

  /// Decodes the escape after a backslash.
  bool parseEscape(std::string &out) {
    if (atEnd())
      return fail("unterminated string");
    char c = text[position++];
    switch (c) {
    case '"':
    case '\\':
    case '/':
      out += c;
      return true;
    case 'b':
      out += '\b';
      return true;
    case 'f':
      out += '\f';
      return true;
    case 'n':
      out += '\n';
      return true;
    case 'r':
      out += '\r';
      return true;
    case 't':
      out += '\t';
      return true;
    case 'u':
      break;
    default:
      --position;
      return fail(std::string("invalid escape '\\") + c + "'");
    }
    uint32_t codePoint;
    if (!parseHex4(codePoint))
      return false;
    if (codePoint >= 0xDC00 && codePoint <= 0xDFFF)
      return fail("unpaired low surrogate in a \\u escape");
    if (codePoint >= 0xD800 && codePoint <= 0xDBFF) {
      if (text.substr(position, 2) != "\\u")
        return fail("high surrogate not followed by a low surrogate");
      position += 2;
      uint32_t low;
      if (!parseHex4(low))
        return false;
      if (low < 0xDC00 || low > 0xDFFF)
        return fail("high surrogate not followed by a low surrogate");
      codePoint = 0x10000 + ((codePoint - 0xD800) << 10) + (low - 0xDC00);
    }
    appendUtf8(codePoint, out);
    return true;
  }

  /// Copies one UTF-8 encoded character (first byte >= 0x80), rejecting
  /// overlong forms, surrogates and code points above U+10FFFF.
  bool copyUtf8Sequence(std::string &out) {
    auto lead = static_cast<unsigned char>(text[position]);
    int length;
    uint32_t codePoint, minimum;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2, codePoint = lead & 0x1F, minimum = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3, codePoint = lead & 0x0F, minimum = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4, codePoint = lead & 0x07, minimum = 0x10000;
    } else {
      return fail("invalid UTF-8 in a string");
    }
    if (text.size() - position < static_cast<size_t>(length))
      return fail("invalid UTF-8 in a string");
    for (int i = 1; i < length; ++i) {
      auto next = static_cast<unsigned char>(text[position + i]);
      if ((next & 0xC0) != 0x80)
        return fail("invalid UTF-8 in a string");
      codePoint = (codePoint << 6) | (next & 0x3F);
    }
    if (codePoint < minimum || codePoint > 0x10FFFF ||
        (codePoint >= 0xD800 && codePoint <= 0xDFFF))
      return fail("invalid UTF-8 in a string");
    out.append(text.substr(position, length));
    position += length;
    return true;
  }

  bool parseString(std::string &out) {
    ++position; // '"'
    while (true) {
      if (atEnd())
        return fail("unterminated string");
      auto c = static_cast<unsigned char>(text[position]);
      if (c == '"') {
        ++position;
        return true;
      }
      if (c < 0x20)
        return fail("unescaped control character in a string");
      if (c == '\\') {
        ++position;
        if (!parseEscape(out))
          return false;
      } else if (c >= 0x80) {
        if (!copyUtf8Sequence(out))
          return false;
      } else {
        out += static_cast<char>(c);
        ++position;
      }
    }
  }

  /// Skips one or more digits; false if there is none.
  bool skipDigits() {
    size_t start = position;
    while (!atEnd() && peek() >= '0' && peek() <= '9')
      ++position;
    return position > start;
  }

  bool parseNumber(JsonValue &value) {
    size_t start = position;
    if (peek() == '-')
      ++position;
    if (peek() == '0') {
      ++position;
      if (peek() >= '0' && peek() <= '9')
        return fail("leading zeros are not allowed in a number");
    } else if (!skipDigits()) {
      return fail("expected a digit in a number");
    }
    bool isIntegerLiteral = true;
    if (peek() == '.') {
      isIntegerLiteral = false;
      ++position;
      if (!skipDigits())
        return fail("expected a digit after the decimal point");
    }
    if (peek() == 'e' || peek() == 'E') {
      isIntegerLiteral = false;
      ++position;
      if (peek() == '+' || peek() == '-')
        ++position;
      if (!skipDigits())
        return fail("expected a digit in the exponent");
    }
    const char *first = text.data() + start;
    const char *last = text.data() + position;
    double number = 0;
    auto [end, errc] = std::from_chars(first, last, number);
    if (errc != std::errc() || end != last || !std::isfinite(number)) {
      position = start;
      return fail("number out of range");
    }
    std::optional<int64_t> integer;
    int64_t parsedInteger = 0;
    if (isIntegerLiteral) {
      auto [integerEnd, integerErrc] =
          std::from_chars(first, last, parsedInteger);
      if (integerErrc == std::errc() && integerEnd == last)
        integer = parsedInteger;
    }
    value = JsonValue::number(number, integer);
    return true;
  }

  std::string_view text;
  size_t position = 0;
  std::string error;
  size_t errorPosition = 0;
};

} // namespace

Status parseJson(std::string_view text, JsonValue &value) {
  return JsonParser(text).parseDocument(value);
}

} // namespace gqa::runtime
