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
      {"", "expected a value, found the end of the text"},
      {"   ", "expected a value"},
      {"{", "expected a string key"},
      {"{\"a\" 1}", "expected ':' after the key 'a'"},
      {"{\"a\": 1,}", "expected a string key"},
      {"{\"a\": 1 \"b\": 2}", "expected ',' or '}'"},
      {"[1, 2,]", "unexpected character ']'"},
      {"[1 2]", "expected ',' or ']'"},
      {"[1", "expected ',' or ']'"},
      {"{'a': 1}", "expected a string key"},
      {"{a: 1}", "expected a string key"},
      {"tru", "invalid literal (expected 'true')"},
      {"nul", "invalid literal (expected 'null')"},
      {"True", "unexpected character 'T'"},
      {"NaN", "unexpected character 'N'"},
      {"Infinity", "unexpected character 'I'"},
      {"01", "leading zeros"},
      {"-", "expected a digit in a number"},
      {"+1", "unexpected character '+'"},
      {"1.", "expected a digit after the decimal point"},
      {".5", "unexpected character '.'"},
      {"1e", "expected a digit in the exponent"},
      {"1e999", "number out of range"},
      {"\"abc", "unterminated string"},
      {"\"a\nb\"", "unescaped control character"},
      {"\"\\x\"", "invalid escape '\\x'"},
      {"\"\\u12zz\"", "invalid hex digit"},
      {"\"\\u12", "truncated \\u escape"},
      {"\"\\ud83d\"", "high surrogate not followed by a low surrogate"},
      {"\"\\ud83d\\u0041\"", "high surrogate not followed by a low surrogate"},
      {"\"\\ude00\"", "unpaired low surrogate"},
      {"\"\xC3\"", "invalid UTF-8"},
      {"\"\xC0\xAF\"", "invalid UTF-8"},         // Overlong '/'.
      {"\"\xED\xA0\x80\"", "invalid UTF-8"},     // An encoded surrogate.
      {"\"\xF4\x90\x80\x80\"", "invalid UTF-8"}, // Above U+10FFFF.
      {"\"\xFF\"", "invalid UTF-8"},
      {"{\"a\": 1, \"a\": 2}", "duplicate key 'a'"},
      {"{} {}", "unexpected content after the JSON value"},
      {"1 // comment", "unexpected content after the JSON value"},
  };
  for (const Case &c : cases) {
    std::string message = parseError(c.text);
    EXPECT_NE(message.find(c.message), std::string::npos)
        << "text: " << c.text << "\nmessage: " << message;
  }
}

TEST(JsonTest, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parseError("{\n  \"a\": 1,\n  \"a\": 2\n}"),
            "line 3, column 3: duplicate key 'a'");
  EXPECT_EQ(parseError("[1,\n 2,\n x]"),
            "line 3, column 2: unexpected character 'x'");
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
