//===- KernelMetadataTest.cpp - Decoding docs/kernel-metadata.md ----------===//

#include "KernelMetadata.h"
#include "TestMetadata.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <fstream>
#include <sstream>

using namespace gqa::runtime;
using namespace gqa::runtime::test;

namespace {

TEST(KernelMetadataTest, DecodesTheContractExample) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  EXPECT_EQ(metadata.version, 3);
  EXPECT_EQ(metadata.chip, "sm_90");
  EXPECT_EQ(metadata.ptxFile, "l70b.ptx");

  const gqa_kernel_config &config = metadata.config;
  EXPECT_EQ(config.q_heads, 64);
  EXPECT_EQ(config.kv_heads, 8);
  EXPECT_EQ(config.group_size, 8);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.head_dim_v, 128);
  EXPECT_EQ(config.dtype, GQA_DTYPE_BF16);
  EXPECT_EQ(config.layout, GQA_LAYOUT_BSHD);
  EXPECT_EQ(config.mask, GQA_MASK_CAUSAL);
  EXPECT_EQ(config.window_left, -1);
  EXPECT_EQ(config.window_right, -1);
  EXPECT_DOUBLE_EQ(config.scale, 0.08838834764831845);
  EXPECT_EQ(config.softcap, 0.0);
  EXPECT_EQ(config.kv_lens, GQA_KV_LENS_NONE);
  EXPECT_EQ(config.batch, 0);
  EXPECT_EQ(config.seq_q, 0);
  EXPECT_EQ(config.seq_kv, 0);

  EXPECT_EQ(metadata.tiling.block_m, 64);
  EXPECT_EQ(metadata.tiling.block_n, 64);
  EXPECT_EQ(metadata.tiling.warps, 4);
  EXPECT_EQ(metadata.tiling.stages, 2);
  EXPECT_EQ(metadata.tiling.pack_gqa, 1);
  EXPECT_EQ(metadata.tiling.max_splits, 0);
  EXPECT_FALSE(metadata.splitsKV());

  ASSERT_EQ(metadata.kernels.size(), 1u);
  const KernelSpec &kernel = metadata.kernels[0];
  EXPECT_EQ(kernel.name, "gqa_attention_fwd");
  EXPECT_EQ(kernel.role, GQA_KERNEL_ROLE_MAIN);
  EXPECT_EQ(kernel.block, (std::array<uint32_t, 3>{128, 1, 1}));
  EXPECT_EQ(kernel.dynamicSharedMemoryBytes, 0u);
  EXPECT_EQ(kernel.staticSharedMemoryBytes, 49152u);

  EXPECT_FALSE(kernel.grid[0].isConstant);
  EXPECT_EQ(kernel.grid[0].symbol, LaunchSize::SeqQ);
  EXPECT_EQ(kernel.grid[0].mul, 8);
  EXPECT_EQ(kernel.grid[0].add, 0);
  EXPECT_EQ(kernel.grid[0].div, 64);
  EXPECT_TRUE(kernel.grid[1].isConstant);
  EXPECT_EQ(kernel.grid[1].constant, 8);
  EXPECT_EQ(kernel.grid[2].symbol, LaunchSize::Batch);
  EXPECT_EQ(kernel.grid[2].mul, 1);
  EXPECT_EQ(kernel.grid[2].div, 1);

  ASSERT_EQ(kernel.params.size(), 7u);
  EXPECT_EQ(kernel.params[0].name, "q");
  EXPECT_EQ(kernel.params[0].type, ParamType::Ptr);
  EXPECT_EQ(std::get<PointerParam>(kernel.params[0].source), PointerParam::Q);
  EXPECT_EQ(std::get<PointerParam>(kernel.params[3].source), PointerParam::Out);
  EXPECT_EQ(kernel.params[6].type, ParamType::I64);
  EXPECT_EQ(std::get<LaunchSize>(kernel.params[6].source), LaunchSize::SeqKV);
}

/// The example in the contract itself (not a copy of it) must stay valid.
TEST(KernelMetadataTest, TheContractDocumentsValidMetadata) {
  std::ifstream file(GQA_TEST_METADATA_DOC);
  ASSERT_TRUE(file) << "cannot read " << GQA_TEST_METADATA_DOC;
  std::stringstream contents;
  contents << file.rdbuf();
  std::string text = contents.str();
  size_t begin = text.find("```json\n");
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  size_t end = text.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  KernelMetadata metadata =
      parseValidMetadata(std::string_view(text).substr(begin, end - begin));
  EXPECT_EQ(metadata.kernels.size(), 1u);
}

TEST(KernelMetadataTest, DecodesSplitKVMetadata) {
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  EXPECT_TRUE(metadata.splitsKV());
  EXPECT_EQ(metadata.tiling.max_splits, 16);
  EXPECT_EQ(metadata.config.kv_lens, GQA_KV_LENS_I32);
  EXPECT_EQ(metadata.config.seq_q, 1);
  EXPECT_DOUBLE_EQ(metadata.config.softcap, 30.0);
  ASSERT_EQ(metadata.kernels.size(), 2u);
  EXPECT_EQ(metadata.kernels[0].role, GQA_KERNEL_ROLE_SPLIT);
  EXPECT_EQ(metadata.kernels[1].role, GQA_KERNEL_ROLE_COMBINE);
  EXPECT_EQ(metadata.kernels[0].dynamicSharedMemoryBytes, 65536u);
  EXPECT_EQ(metadata.kernels[0].grid[1].symbol, LaunchSize::NumSplits);
  const KernelParam &kvLens = metadata.kernels[0].params[4];
  EXPECT_EQ(std::get<PointerParam>(kvLens.source), PointerParam::KvLens);
  const KernelParam &numSplits = metadata.kernels[0].params[9];
  EXPECT_EQ(numSplits.type, ParamType::I32);
  EXPECT_EQ(std::get<LaunchSize>(numSplits.source), LaunchSize::NumSplits);
}

TEST(KernelMetadataTest, DecodesPagedMetadata) {
  KernelMetadata metadata = parseValidMetadata(kPagedExample);
  EXPECT_EQ(metadata.config.page_size, 16);
  const KernelSpec &kernel = metadata.kernels[0];
  EXPECT_EQ(std::get<PointerParam>(kernel.params[5].source),
            PointerParam::BlockTable);
  EXPECT_EQ(std::get<LaunchSize>(kernel.params[9].source),
            LaunchSize::NumPages);
}

TEST(KernelMetadataTest, ReadsGridTerms) {
  JsonValue document = parseDocument(kContractExample);
  replaceValue(document, "kernels[0].grid[0]",
               R"({"sym": "seq_kv", "mul": 3, "add": 5, "div": 7})");
  KernelMetadata metadata;
  Status status = decodeKernelMetadata(document, metadata);
  ASSERT_TRUE(status.ok()) << status.getMessage();
  const GridDim &dim = metadata.kernels[0].grid[0];
  EXPECT_EQ(dim.symbol, LaunchSize::SeqKV);
  EXPECT_EQ(dim.mul, 3);
  EXPECT_EQ(dim.add, 5);
  EXPECT_EQ(dim.div, 7);
}

TEST(KernelMetadataTest, AcceptsStaticSizesAndWindows) {
  JsonValue document = parseDocument(kContractExample);
  replaceValue(document, "config.batch", "4");
  replaceValue(document, "config.seq_kv", "8192");
  replaceValue(document, "config.mask", "\"window\"");
  replaceValue(document, "config.window_left", "256");
  replaceValue(document, "config.window_right", "0");
  KernelMetadata metadata;
  Status status = decodeKernelMetadata(document, metadata);
  ASSERT_TRUE(status.ok()) << status.getMessage();
  EXPECT_EQ(metadata.config.batch, 4);
  EXPECT_EQ(metadata.config.seq_q, 0);
  EXPECT_EQ(metadata.config.seq_kv, 8192);
  EXPECT_EQ(metadata.config.mask, GQA_MASK_WINDOW);
  EXPECT_EQ(metadata.config.window_left, 256);
}

TEST(KernelMetadataTest, ReportsJsonErrorsWithPosition) {
  KernelMetadata metadata;
  Status status =
      parseKernelMetadata("{\"format\": \"gqa.kernel\",}", metadata);
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_METADATA);
  EXPECT_EQ(status.getMessage(),
            "metadata: line 1, column 25: syntax error while parsing object "
            "key - unexpected '}'; expected string literal");
  status = parseKernelMetadata("[]", metadata);
  EXPECT_EQ(status.getMessage(),
            "metadata: the document must be an object, not an array");
}

/// Every key of the contract is required.
class MissingKeyTest : public testing::TestWithParam<const char *> {};

TEST_P(MissingKeyTest, IsNamed) {
  JsonValue document = parseDocument(kSplitKVExample);
  eraseMember(document, GetParam());
  std::string message = decodeError(document);
  std::string expected = std::string("missing key '") + GetParam() + "'";
  EXPECT_EQ(message.substr(0, expected.size()), expected)
      << "message: " << message;
}

INSTANTIATE_TEST_SUITE_P(
    KernelMetadataTest, MissingKeyTest,
    testing::Values("format", "version", "chip", "ptx", "config",
                    "config.q_heads", "config.kv_heads", "config.group_size",
                    "config.head_dim", "config.head_dim_v", "config.dtype",
                    "config.layout", "config.mask", "config.window_left",
                    "config.window_right", "config.scale", "config.softcap",
                    "config.kv_lens", "config.batch", "config.seq_q",
                    "config.seq_kv", "tile", "tile.block_m", "tile.block_n",
                    "tile.warps", "tile.stages", "tile.pack_gqa", "split_kv",
                    "split_kv.max_splits", "kernels", "kernels[0].name",
                    "kernels[0].role", "kernels[0].block",
                    "kernels[0].dynamic_shared_memory_bytes",
                    "kernels[0].static_shared_memory_bytes", "kernels[0].grid",
                    "kernels[0].params", "kernels[1].params[0].name",
                    "kernels[1].params[0].type", "kernels[1].grid[1].sym"));

struct BadValue {
  const char *path;
  const char *replacement;
  const char *message;
};

std::ostream &operator<<(std::ostream &os, const BadValue &value) {
  return os << value.path << " = " << value.replacement;
}

/// Ill-typed values and values outside the contract.
class BadValueTest : public testing::TestWithParam<BadValue> {};

TEST_P(BadValueTest, IsRejected) {
  JsonValue document = parseDocument(kSplitKVExample);
  replaceValue(document, GetParam().path, GetParam().replacement);
  std::string message = decodeError(document);
  EXPECT_NE(message.find(GetParam().message), std::string::npos)
      << "message: " << message;
}

INSTANTIATE_TEST_SUITE_P(
    KernelMetadataTest, BadValueTest,
    testing::Values(
        BadValue{"format", "\"gqa.kernels\"",
                 "key 'format' must be \"gqa.kernel\" or "
                 "\"gqa.merge_states\", not 'gqa.kernels'"},
        BadValue{"format", "1", "key 'format' must be a string, not a number"},
        BadValue{"version", "1",
                 "metadata version 1 is not supported: key 'version' must be "
                 "3 for format gqa.kernel"},
        BadValue{"version", "\"1\"",
                 "key 'version' must be an integer, not a string"},
        BadValue{"version", "1.0",
                 "key 'version' must be an integer, not a number"},
        BadValue{"chip", "\"gfx942\"",
                 "key 'chip' must look like sm_90 or sm_90a, not 'gfx942'"},
        BadValue{"chip", "\"sm_9\"", "key 'chip' must look like"},
        BadValue{"ptx", "\"\"", "key 'ptx' must not be empty"},
        BadValue{"config", "[]",
                 "key 'config' must be an object, not an array"},
        BadValue{"config.q_heads", "\"32\"",
                 "key 'config.q_heads' must be an integer, not a string"},
        BadValue{"config.q_heads", "0",
                 "key 'config.q_heads' must be >= 1, not 0"},
        BadValue{"config.q_heads", "33",
                 "config.q_heads (33) must be a multiple of config.kv_heads "
                 "(4)"},
        BadValue{"config.group_size", "4",
                 "config.group_size (4) must be config.q_heads / "
                 "config.kv_heads (8)"},
        BadValue{"config.head_dim", "-128",
                 "key 'config.head_dim' must be >= 1, not -128"},
        BadValue{"config.head_dim_v", "null",
                 "key 'config.head_dim_v' must be an integer, not null"},
        BadValue{"config.dtype", "\"f64\"",
                 "key 'config.dtype' must be one of f16, bf16, f32, not "
                 "'f64'"},
        BadValue{"config.layout", "\"sbhd\"",
                 "key 'config.layout' must be one of bhsd, bshd, not 'sbhd'"},
        BadValue{"config.mask", "\"alibi\"",
                 "key 'config.mask' must be one of none, causal, window"},
        BadValue{"config.mask", "true",
                 "key 'config.mask' must be a string, not a boolean"},
        BadValue{"config.window_left", "-2",
                 "key 'config.window_left' must be >= -1, not -2"},
        BadValue{"config.window_left", "16",
                 "config.mask is none, so config.window_left and "
                 "config.window_right must be -1"},
        BadValue{"config.scale", "0",
                 "key 'config.scale' must be a positive finite number"},
        BadValue{"config.scale", "\"auto\"",
                 "key 'config.scale' must be a number, not a string"},
        BadValue{"config.softcap", "-1.5", "key 'config.softcap' must be >= 0"},
        BadValue{"config.kv_lens", "\"u32\"",
                 "key 'config.kv_lens' must be one of none, i32, i64"},
        BadValue{"config.kv_lens", "\"none\"",
                 "kernel 'gqa_decode_split' (kernels[0], role split) takes "
                 "'kv_lens', but config.kv_lens is none"},
        BadValue{"config.batch", "0", "key 'config.batch' must be >= 1, not 0"},
        BadValue{"config.seq_q", "1.5",
                 "key 'config.seq_q' must be an integer or null, not a "
                 "number"},
        BadValue{"tile.block_n", "0", "key 'tile.block_n' must be >= 1, not 0"},
        BadValue{"tile.pack_gqa", "1",
                 "key 'tile.pack_gqa' must be a boolean, not a number"},
        BadValue{"split_kv.max_splits", "-1",
                 "key 'split_kv.max_splits' must be >= 0, not -1"},
        BadValue{"split_kv.max_splits", "0",
                 "split_kv.max_splits is 0, so 'kernels' must hold exactly "
                 "one kernel, of role main"},
        BadValue{"kernels", "[]", "key 'kernels' must not be empty"},
        BadValue{"kernels", "{}",
                 "key 'kernels' must be an array, not an object"},
        BadValue{"kernels[0].name", "\"\"",
                 "key 'kernels[0].name' must not be empty"},
        BadValue{"kernels[0].role", "\"prologue\"",
                 "key 'kernels[0].role' must be one of main, split, combine"},
        BadValue{"kernels[1].role", "\"split\"",
                 "split_kv.max_splits is 16, so 'kernels' must hold a kernel "
                 "of role split followed by one of role combine"},
        BadValue{"kernels[0].block", "[128, 1]",
                 "key 'kernels[0].block' must have 3 elements, not 2"},
        BadValue{"kernels[0].block", "[0, 1, 1]",
                 "key 'kernels[0].block[0]' must be >= 1, not 0"},
        BadValue{"kernels[0].block", "[128, 1, 65]",
                 "key 'kernels[0].block[2]' must be <= 64, not 65"},
        BadValue{"kernels[0].block", "[512, 4, 1]",
                 "key 'kernels[0].block' asks for 2048 threads per block; at "
                 "most 1024 are possible"},
        BadValue{"kernels[0].dynamic_shared_memory_bytes", "-1",
                 "key 'kernels[0].dynamic_shared_memory_bytes' must be >= 0"},
        BadValue{"kernels[0].dynamic_shared_memory_bytes", "4294967296",
                 "key 'kernels[0].dynamic_shared_memory_bytes' must be <= "
                 "4294967295"},
        BadValue{"kernels[0].static_shared_memory_bytes", "1e3",
                 "key 'kernels[0].static_shared_memory_bytes' must be an "
                 "integer, not a number"},
        BadValue{"kernels[0].grid", "[{\"const\": 1}, {\"const\": 1}]",
                 "key 'kernels[0].grid' must have 3 elements, not 2"},
        BadValue{"kernels[0].grid[0]", "{}",
                 "missing key 'kernels[0].grid[0].sym' (or 'const')"},
        BadValue{"kernels[0].grid[0]", "4",
                 "key 'kernels[0].grid[0]' must be an object, not a number"},
        BadValue{"kernels[0].grid[0]", "{\"const\": 4, \"sym\": \"batch\"}",
                 "key 'kernels[0].grid[0]' must have either 'const' or "
                 "'sym', not both"},
        BadValue{"kernels[0].grid[0]", "{\"const\": 4, \"div\": 2}",
                 "key 'kernels[0].grid[0]' has 'const', so it must not have "
                 "'mul', 'add' or 'div'"},
        BadValue{"kernels[0].grid[0]", "{\"const\": 0}",
                 "key 'kernels[0].grid[0].const' must be >= 1, not 0"},
        BadValue{"kernels[0].grid[0]", "{\"sym\": \"heads\"}",
                 "key 'kernels[0].grid[0].sym' must be one of batch, seq_q, "
                 "seq_kv, num_splits, not 'heads'"},
        BadValue{"kernels[0].grid[0]", "{\"sym\": \"batch\", \"div\": 0}",
                 "key 'kernels[0].grid[0].div' must be >= 1, not 0"},
        BadValue{"kernels[0].grid[0]", "{\"sym\": \"batch\", \"mul\": 0}",
                 "key 'kernels[0].grid[0].mul' must be >= 1, not 0"},
        BadValue{"kernels[0].grid[0]", "{\"sym\": \"batch\", \"add\": -1}",
                 "key 'kernels[0].grid[0].add' must be >= 0, not -1"},
        BadValue{"kernels[0].grid[0]", "{\"sym\": \"batch\", \"mul\": 2.0}",
                 "key 'kernels[0].grid[0].mul' must be an integer"},
        BadValue{"kernels[0].params", "[]",
                 "key 'kernels[0].params' must not be empty"},
        BadValue{"kernels[0].params[0]", "\"q\"",
                 "key 'kernels[0].params[0]' must be an object, not a string"},
        BadValue{"kernels[0].params[0].name", "\"query\"",
                 "key 'kernels[0].params[0].name' is 'query', which is not a "
                 "parameter name of the contract"},
        BadValue{"kernels[0].params[0].type", "\"f32\"",
                 "key 'kernels[0].params[0].type' must be one of ptr, i32, "
                 "i64, not 'f32'"},
        BadValue{"kernels[0].params[0].type", "\"i64\"",
                 "parameter 'q' (kernels[0].params[0]) is a pointer, so its "
                 "type must be ptr"},
        BadValue{"kernels[0].params[7].type", "\"ptr\"",
                 "parameter 'batch' (kernels[0].params[7]) is an integer, so "
                 "its type must be i32 or i64"},
        BadValue{"kernels[0].params[1].name", "\"q\"",
                 "kernel 'gqa_decode_split' (kernels[0]) takes parameter 'q' "
                 "twice"},
        BadValue{"kernels[0].params[0]", R"({"name": "seq_q", "type": "i32"})",
                 "kernel 'gqa_decode_split' (kernels[0], role split) must "
                 "take parameter 'q'"},
        BadValue{"kernels[0].params[3]", R"({"name": "seq_q", "type": "i32"})",
                 "kernel 'gqa_decode_split' (kernels[0], role split) must "
                 "take parameter 'out'"},
        BadValue{"kernels[1].params[2].name", "\"q\"",
                 "kernel 'gqa_decode_combine' (kernels[1], role combine) must "
                 "take parameter 'out'"},
        BadValue{"kernels[0].params[4]", R"({"name": "seq_q", "type": "i32"})",
                 "config.kv_lens is i32, but no kernel takes parameter "
                 "'kv_lens'"},
        BadValue{"kernels[0].params[3].type", "\"i32\"",
                 "is a pointer, so its type must be ptr"}));

/// Paged metadata: the page size and the parameters it brings.
class BadPagedValueTest : public BadValueTest {};

TEST_P(BadPagedValueTest, IsRejected) {
  JsonValue document = parseDocument(kPagedExample);
  replaceValue(document, GetParam().path, GetParam().replacement);
  std::string message = decodeError(document);
  EXPECT_NE(message.find(GetParam().message), std::string::npos)
      << "message: " << message;
}

INSTANTIATE_TEST_SUITE_P(
    KernelMetadataTest, BadPagedValueTest,
    testing::Values(
        BadValue{"config.page_size", "-16",
                 "key 'config.page_size' must be >= 0, not -16"},
        BadValue{"config.seq_kv", "100",
                 "config.seq_kv (100) must be a multiple of config.page_size "
                 "(16)"},
        BadValue{"kernels[0].params[5]", R"({"name": "seq_kv", "type": "i32"})",
                 "takes parameter 'seq_kv' twice"},
        BadValue{"kernels[0].params[9]", R"({"name": "seq_q", "type": "i32"})",
                 "takes parameter 'seq_q' twice"},
        BadValue{"config.page_size", "0",
                 "kernel 'gqa_attention_fwd' (kernels[0]) takes 'block_table', "
                 "but config.page_size is 0"},
        BadValue{"kernels[0].grid[0]", R"({"sym": "num_pages"})",
                 "key 'kernels[0].grid[0].sym' must be one of batch, seq_q, "
                 "seq_kv, num_splits, not 'num_pages'"}));

TEST(KernelMetadataTest, PagedKernelsMustReadTheBlockTable) {
  JsonValue document = parseDocument(kPagedExample);
  // The pool size goes missing.
  replaceValue(document, "kernels[0].params",
               R"([{"name": "q", "type": "ptr"}, {"name": "k", "type": "ptr"},
                   {"name": "v", "type": "ptr"}, {"name": "out", "type": "ptr"},
                   {"name": "kv_lens", "type": "ptr"},
                   {"name": "block_table", "type": "ptr"},
                   {"name": "batch", "type": "i64"},
                   {"name": "seq_q", "type": "i64"},
                   {"name": "seq_kv", "type": "i64"}])");
  EXPECT_EQ(decodeError(document),
            "kernel 'gqa_attention_fwd' (kernels[0]) must take parameter "
            "'num_pages' (config.page_size is 16)");
}

TEST(KernelMetadataTest, RejectsUnknownKeysEverywhere) {
  for (const char *path :
       {"", "config", "tile", "split_kv", "kernels[0]", "kernels[0].grid[0]",
        "kernels[0].grid[1]", "kernels[1].params[2]"}) {
    JsonValue document = parseDocument(kSplitKVExample);
    JsonValue *object = lookUp(document, path);
    ASSERT_NE(object, nullptr) << path;
    object->getObject().emplace_back("extra_key", JsonValue());
    std::string expected =
        std::string("unknown key '") + path + (*path ? "." : "") + "extra_key'";
    EXPECT_EQ(decodeError(document), expected);
  }
}

TEST(KernelMetadataTest, MainKernelMustTakeTheTensors) {
  for (const char *name : {"q", "k", "v", "out"}) {
    JsonValue document = parseDocument(kContractExample);
    JsonValue::Array &params =
        lookUp(document, "kernels[0].params")->getArray();
    params.erase(std::remove_if(params.begin(), params.end(),
                                [&](const JsonValue &param) {
                                  return param.find("name")->getString() ==
                                         name;
                                }),
                 params.end());
    EXPECT_EQ(decodeError(document),
              std::string("kernel 'gqa_attention_fwd' (kernels[0], role "
                          "main) must take parameter '") +
                  name + "'");
  }
}

TEST(KernelMetadataTest, SplitNamesNeedSplitKV) {
  for (const char *name : {"num_splits", "partial_out", "partial_lse"}) {
    JsonValue document = parseDocument(kContractExample);
    replaceValue(document, "kernels[0].params[4].name",
                 std::string("\"") + name + "\"");
    if (std::string_view(name) != "num_splits")
      replaceValue(document, "kernels[0].params[4].type", "\"ptr\"");
    EXPECT_EQ(decodeError(document),
              std::string("kernel 'gqa_attention_fwd' (kernels[0], role "
                          "main) takes '") +
                  name + "', but split_kv.max_splits is 0");
  }
  JsonValue document = parseDocument(kContractExample);
  replaceValue(document, "kernels[0].grid[1]", R"({"sym": "num_splits"})");
  EXPECT_EQ(decodeError(document),
            "kernel 'gqa_attention_fwd' (kernels[0], role main) has "
            "num_splits in its grid, but split_kv.max_splits is 0");
}

TEST(KernelMetadataTest, KvLensParamNeedsConfig) {
  JsonValue document = parseDocument(kContractExample);
  replaceValue(document, "kernels[0].params[4]",
               R"({"name": "kv_lens", "type": "ptr"})");
  EXPECT_EQ(decodeError(document),
            "kernel 'gqa_attention_fwd' (kernels[0], role main) takes "
            "'kv_lens', but config.kv_lens is none");
}

TEST(KernelMetadataTest, CausalWindowRightIsZeroOrUnbounded) {
  JsonValue document = parseDocument(kContractExample);
  replaceValue(document, "config.window_right", "0");
  replaceValue(document, "config.window_left", "128");
  KernelMetadata metadata;
  EXPECT_TRUE(decodeKernelMetadata(document, metadata).ok());
  replaceValue(document, "config.window_right", "4");
  EXPECT_EQ(decodeError(document),
            "config.mask is causal, so config.window_right must be 0 or -1, "
            "not 4");
}

TEST(KernelMetadataTest, ChecksChipAgainstDevice) {
  EXPECT_TRUE(checkChipSupported("sm_90", 9, 0).ok());
  EXPECT_TRUE(checkChipSupported("sm_80", 9, 0).ok());
  EXPECT_TRUE(checkChipSupported("sm_90", 10, 0).ok());
  EXPECT_TRUE(checkChipSupported("sm_90a", 9, 0).ok());
  EXPECT_TRUE(checkChipSupported("sm_100f", 10, 3).ok());
  EXPECT_TRUE(checkChipSupported("sm_120", 12, 0).ok());

  Status status = checkChipSupported("sm_90", 8, 9);
  EXPECT_EQ(status.getCode(), GQA_ERROR_UNSUPPORTED_DEVICE);
  EXPECT_EQ(status.getMessage(),
            "the kernel was compiled for sm_90 (compute capability 9.0 or "
            "newer), but the device has compute capability 8.9");
  status = checkChipSupported("sm_90a", 10, 0);
  EXPECT_EQ(status.getCode(), GQA_ERROR_UNSUPPORTED_DEVICE);
  EXPECT_EQ(status.getMessage(),
            "the kernel was compiled for sm_90a (compute capability 9.0 "
            "exactly), but the device has compute capability 10.0");
  EXPECT_FALSE(checkChipSupported("sm_100f", 12, 0).ok());
  EXPECT_FALSE(checkChipSupported("sm_100f", 9, 0).ok());
  EXPECT_EQ(checkChipSupported("compute_90", 9, 0).getCode(),
            GQA_ERROR_INVALID_METADATA);
}

TEST(KernelMetadataTest, SpellsEnumerations) {
  EXPECT_STREQ(getDTypeName(GQA_DTYPE_BF16), "bf16");
  EXPECT_STREQ(getLayoutName(GQA_LAYOUT_BHSD), "bhsd");
  EXPECT_STREQ(getKvLensTypeName(GQA_KV_LENS_I64), "i64");
  EXPECT_STREQ(getLaunchSizeName(LaunchSize::NumSplits), "num_splits");
  EXPECT_STREQ(getDTypeName(static_cast<gqa_dtype>(0)), "?");
  EXPECT_EQ(getDTypeSize(GQA_DTYPE_F16), 2);
  EXPECT_EQ(getDTypeSize(GQA_DTYPE_F32), 4);
  EXPECT_EQ(getDTypeSize(static_cast<gqa_dtype>(9)), 0);
}

} // namespace
