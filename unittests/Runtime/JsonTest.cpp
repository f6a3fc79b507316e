//===- JsonTest.cpp - The strict JSON parser ------------------------------===//

#include "Json.h"

#include "gtest/gtest.h"

#include <string>

using namespace gqa::runtime;

namespace {

JsonValue parseOk(std::string_view text) {
  JsonValue value;
  Status status = parseJson(text, value);
  EXPECT_TRUE(status.ok()) << text << ": " << status.getMessage();
  return value;
}

std::string parseError(std::string_view text) {
  JsonValue value;
  Status status = parseJson(text, value);
  EXPECT_FALSE(status.ok()) << "accepted: " << text;
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_METADATA);
  return status.getMessage();
}

TEST(JsonTest, ParsesScalars) {
  EXPECT_TRUE(parseOk("null").isNull());
  EXPECT_TRUE(parseOk(" true ").getBool());
  EXPECT_FALSE(parseOk("false").getBool());
  EXPECT_EQ(parseOk("\"text\"").getString(), "text");
}

TEST(JsonTest, KeepsIntegersExact) {
  JsonValue value = parseOk("9007199254740993");
  ASSERT_TRUE(value.getInteger());
  EXPECT_EQ(*value.getInteger(), 9007199254740993LL);
  EXPECT_EQ(*parseOk("-42").getInteger(), -42);
  EXPECT_EQ(*parseOk("0").getInteger(), 0);
  EXPECT_EQ(*parseOk("-0").getInteger(), 0);
  EXPECT_EQ(*parseOk("9223372036854775807").getInteger(), INT64_MAX);
}

TEST(JsonTest, NumbersWithFractionOrExponentAreNotIntegers) {
  JsonValue fraction = parseOk("0.08838834764831845");
  EXPECT_FALSE(fraction.getInteger());
  EXPECT_DOUBLE_EQ(fraction.getNumber(), 0.08838834764831845);
  JsonValue exponent = parseOk("1e3");
  EXPECT_FALSE(exponent.getInteger());
  EXPECT_DOUBLE_EQ(exponent.getNumber(), 1000.0);
  EXPECT_DOUBLE_EQ(parseOk("-2.5E-1").getNumber(), -0.25);
  EXPECT_FALSE(parseOk("64.0").getInteger());
}

TEST(JsonTest, IntegersBeyondInt64AreNumbersOnly) {
  JsonValue value = parseOk("9223372036854775808");
  EXPECT_FALSE(value.getInteger());
  EXPECT_DOUBLE_EQ(value.getNumber(), 9223372036854775808.0);
}

TEST(JsonTest, ParsesContainersInOrder) {
  JsonValue value = parseOk(R"({"b": [1, 2, {"c": null}], "a": {}})");
  ASSERT_EQ(value.getKind(), JsonValue::Kind::Object);
  ASSERT_EQ(value.getObject().size(), 2u);
  EXPECT_EQ(value.getObject()[0].first, "b");
  EXPECT_EQ(value.getObject()[1].first, "a");
  const JsonValue *array = value.find("b");
  ASSERT_NE(array, nullptr);
  ASSERT_EQ(array->getArray().size(), 3u);
  EXPECT_EQ(*array->getArray()[1].getInteger(), 2);
  EXPECT_TRUE(array->getArray()[2].find("c")->isNull());
  EXPECT_EQ(value.find("missing"), nullptr);
  EXPECT_TRUE(parseOk("[]").getArray().empty());
}

TEST(JsonTest, DecodesEscapes) {
  EXPECT_EQ(parseOk(R"("a\"b\\c\/d\b\f\n\r\t")").getString(),
            "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(parseOk(R"("\u0041\u00e9\u20AC")").getString(),
            "A\xC3\xA9\xE2\x82\xAC");
  // U+1F600 as a surrogate pair.
  EXPECT_EQ(parseOk(R"("\ud83d\ude00")").getString(), "\xF0\x9F\x98\x80");
}

TEST(JsonTest, SkipsAByteOrderMark) {
  // RFC 8259 lets a parser ignore one; nlohmann-json does.
  EXPECT_TRUE(parseOk("\xEF\xBB\xBFnull").isNull());
}

TEST(JsonTest, AcceptsUtf8) {
  EXPECT_EQ(parseOk("\"gr\xC3\xBC\xC3\x9F \xF0\x9F\x98\x80\"").getString(),
            "gr\xC3\xBC\xC3\x9F \xF0\x9F\x98\x80");
}

TEST(JsonTest, RejectsMalformedText) {
  struct Case {
    const char *text;
    const char *message;
  };
  const Case cases[] = {
      {"", "line 1, column 1: syntax error while parsing value - unexpected "
           "end of input"},
      {"   ", "unexpected end of input"},
      {"{", "while parsing object key - unexpected end of input; expected "
            "string literal"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\": 1,}", "unexpected '}'; expected string literal"},
      {"{\"a\": 1 \"b\": 2}", "expected '}'"},
      {"[1, 2,]", "unexpected ']'"},
      {"[1 2]", "expected ']'"},
      {"[1", "unexpected end of input; expected ']'"},
      {"{'a': 1}", "expected string literal"},
      {"{a: 1}", "expected string literal"},
      {"tru", "invalid literal; last read: 'tru'"},
      {"nul", "invalid literal; last read: 'nul'"},
      {"True", "invalid literal; last read: 'T'"},
      {"NaN", "invalid literal; last read: 'N'"},
      {"Infinity", "invalid literal; last read: 'I'"},
      {"01", "unexpected number literal; expected end of input"},
      {"-", "expected digit after '-'"},
      {"+1", "invalid literal; last read: '+'"},
      {"1.", "expected digit after '.'"},
      {".5", "invalid literal; last read: '.'"},
      {"1e", "digit after exponent"},
      {"1e999", "number overflow parsing '1e999'"},
      {"\"abc", "missing closing quote"},
      {"\"a\nb\"", "control character U+000A (LF) must be escaped"},
      {"\"\\x\"", "forbidden character after backslash"},
      {"\"\\u12zz\"", "'\\u' must be followed by 4 hex digits"},
      {"\"\\u12", "'\\u' must be followed by 4 hex digits"},
      {"\"\\ud83d\"", "surrogate U+D800..U+DBFF must be followed by "
                      "U+DC00..U+DFFF"},
      {"\"\\ud83d\\u0041\"", "must be followed by U+DC00..U+DFFF"},
      {"\"\\ude00\"", "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"},
      {"\"\xC3\"", "ill-formed UTF-8 byte"},
      {"\"\xC0\xAF\"", "ill-formed UTF-8 byte"},     // Overlong '/'.
      {"\"\xED\xA0\x80\"", "ill-formed UTF-8 byte"}, // An encoded surrogate.
      {"\"\xF4\x90\x80\x80\"", "ill-formed UTF-8 byte"}, // Above U+10FFFF.
      {"\"\xFF\"", "ill-formed UTF-8 byte"},
      {"{\"a\": 1, \"a\": 2}", "duplicate key 'a' in the top-level object"},
      {"{\"k\": [{\"a\": 1, \"a\": 2}]}", "duplicate key 'a' in 'k[0]'"},
      {"{} {}", "unexpected '{'; expected end of input"},
      {"1 // comment", "expected end of input"},
  };
  for (const Case &c : cases) {
    std::string message = parseError(c.text);
    EXPECT_NE(message.find(c.message), std::string::npos)
        << "text: " << c.text << "\nmessage: " << message;
  }
}

TEST(JsonTest, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parseError("[1,\n 2,\n x]"),
            "line 3, column 2: syntax error while parsing value - invalid "
            "literal; last read: '2,<U+000A> x'");
  EXPECT_EQ(parseError("{\n  \"a\": 1,\n  \"b\": {\"c\": 1, \"c\": 2}\n}"),
            "duplicate key 'c' in 'b'");
}

TEST(JsonTest, LimitsNesting) {
  std::string deepest(kMaxJsonDepth, '[');
  deepest += std::string(kMaxJsonDepth, ']');
  parseOk(deepest);
  std::string tooDeep(kMaxJsonDepth + 1, '[');
  tooDeep += std::string(kMaxJsonDepth + 1, ']');
  EXPECT_NE(parseError(tooDeep).find("nesting deeper than 64"),
            std::string::npos);
  // Far deeper than a stack could take by recursion.
  std::string hostile(1 << 20, '[');
  EXPECT_NE(parseError(hostile).find("nesting"), std::string::npos);
}

TEST(JsonTest, DescribesKinds) {
  EXPECT_STREQ(describeJsonKind(JsonValue::Kind::String), "a string");
  EXPECT_STREQ(describeJsonKind(JsonValue::Kind::Object), "an object");
  EXPECT_STREQ(describeJsonKind(JsonValue::Kind::Null), "null");
}

} // namespace
