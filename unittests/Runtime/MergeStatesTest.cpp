//===- MergeStatesTest.cpp - Merge kernel sets, without a GPU -------------===//
//
// The second kind of kernel set ("format": "gqa.merge_states", its own
// version 1): its document decoded with the same strictness as attention
// metadata, its arguments checked and its launch planned, its pointers
// checked and bound by name, and the C API that reads and plans it; each
// kind refused by the other kind's entry points.
//
//===----------------------------------------------------------------------===//

#include "LaunchPlan.h"
#include "TestMetadata.h"

#include "gqa/Runtime/Runtime.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

using namespace gqa::runtime;
using namespace gqa::runtime::test;

namespace {

KernelMetadata mergeMetadata(const JsonValue &document) {
  KernelMetadata metadata;
  Status status = decodeKernelMetadata(document, metadata);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  return metadata;
}

/// The contract's merge example with each path set to its replacement.
KernelMetadata mergeMetadataWith(
    std::initializer_list<std::pair<const char *, const char *>> changes) {
  JsonValue document = parseDocument(kMergeExample);
  for (auto [path, replacement] : changes)
    replaceValue(document, path, replacement);
  return mergeMetadata(document);
}

//===----------------------------------------------------------------------===//
// The document
//===----------------------------------------------------------------------===//

/// The config of kMergeExample: 64 heads of Dv 128, bf16 bshd, no fixed
/// sizes.
void expectExampleConfig(const gqa_merge_config &config) {
  EXPECT_EQ(config.heads, 64);
  EXPECT_EQ(config.head_dim_v, 128);
  EXPECT_EQ(config.dtype, GQA_DTYPE_BF16);
  EXPECT_EQ(config.layout, GQA_LAYOUT_BSHD);
  EXPECT_EQ(config.varlen, 0);
  EXPECT_EQ(config.batch, 0);
  EXPECT_EQ(config.seq_q, 0);
}

TEST(MergeMetadataTest, DecodesTheContractExample) {
  KernelMetadata metadata = parseValidMetadata(kMergeExample);
  EXPECT_EQ(metadata.kind, GQA_KERNEL_SET_MERGE_STATES);
  EXPECT_TRUE(metadata.isMergeStates());
  EXPECT_EQ(metadata.version, 1);
  EXPECT_EQ(metadata.chip, "sm_90");
  EXPECT_EQ(metadata.ptxFile, "merge.ptx");

  const gqa_merge_config &config = metadata.mergeConfig;
  expectExampleConfig(config);
  // Nothing of attention's config or tiling.
  EXPECT_EQ(metadata.config.q_heads, 0);
  EXPECT_EQ(metadata.tiling.block_m, 0);
  EXPECT_FALSE(metadata.splitsKV());

  ASSERT_EQ(metadata.kernels.size(), 1u);
  const KernelSpec &kernel = metadata.kernels[0];
  EXPECT_EQ(kernel.name, "gqa_merge_states");
  EXPECT_EQ(kernel.role, GQA_KERNEL_ROLE_MERGE);
  EXPECT_EQ(kernel.block, (std::array<uint32_t, 3>{128, 1, 1}));
  EXPECT_EQ(kernel.grid[0].symbol, LaunchSize::SeqQ);
  EXPECT_EQ(kernel.grid[0].mul, 64);
  EXPECT_EQ(kernel.grid[0].div, 4);
  EXPECT_TRUE(kernel.grid[1].isConstant);
  EXPECT_EQ(kernel.grid[2].symbol, LaunchSize::Batch);
  ASSERT_EQ(kernel.params.size(), 8u);
  const PointerParam pointers[] = {PointerParam::OutA, PointerParam::LseA,
                                   PointerParam::OutB, PointerParam::LseB,
                                   PointerParam::Out,  PointerParam::Lse};
  for (size_t i = 0; i < 6; ++i)
    EXPECT_EQ(std::get<PointerParam>(kernel.params[i].source), pointers[i])
        << kernel.params[i].name;
  EXPECT_EQ(std::get<LaunchSize>(kernel.params[6].source), LaunchSize::Batch);
  EXPECT_EQ(std::get<LaunchSize>(kernel.params[7].source), LaunchSize::SeqQ);
  EXPECT_EQ(kernel.params[7].type, ParamType::I64);
}

/// The merge example in the contract itself must stay valid.
TEST(MergeMetadataTest, TheContractDocumentsValidMetadata) {
  std::ifstream file(GQA_TEST_METADATA_DOC);
  ASSERT_TRUE(file) << "cannot read " << GQA_TEST_METADATA_DOC;
  std::stringstream contents;
  contents << file.rdbuf();
  std::string text = contents.str();
  size_t begin = text.find("```json\n{\n  \"format\": \"gqa.merge_states\"");
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  size_t end = text.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  KernelMetadata metadata =
      parseValidMetadata(std::string_view(text).substr(begin, end - begin));
  EXPECT_TRUE(metadata.isMergeStates());
}

TEST(MergeMetadataTest, DecodesF32BhsdAndVarlen) {
  KernelMetadata f32 = mergeMetadataWith({{"config.dtype", "\"f32\""},
                                          {"config.layout", "\"bhsd\""},
                                          {"config.head_dim_v", "64"},
                                          {"config.batch", "4"}});
  EXPECT_EQ(f32.mergeConfig.dtype, GQA_DTYPE_F32);
  EXPECT_EQ(f32.mergeConfig.layout, GQA_LAYOUT_BHSD);
  EXPECT_EQ(f32.mergeConfig.head_dim_v, 64);
  EXPECT_EQ(f32.mergeConfig.batch, 4);

  KernelMetadata varlen =
      mergeMetadataWith({{"config.varlen", "true"}, {"config.seq_q", "4096"}});
  EXPECT_EQ(varlen.mergeConfig.varlen, 1);
  EXPECT_EQ(varlen.mergeConfig.seq_q, 4096);
  KernelMetadata varlenBatch1 =
      mergeMetadataWith({{"config.varlen", "true"}, {"config.batch", "1"}});
  EXPECT_EQ(varlenBatch1.mergeConfig.batch, 1);
}

TEST(MergeMetadataTest, SizesAreOptionalParameters) {
  // A kernel may take its sizes as i32, or not at all.
  JsonValue document = parseDocument(kMergeExample);
  JsonValue::Array &params = lookUp(document, "kernels[0].params")->getArray();
  params.pop_back();
  replaceValue(document, "kernels[0].params[6].type", "\"i32\"");
  KernelMetadata metadata = mergeMetadata(document);
  ASSERT_EQ(metadata.kernels[0].params.size(), 7u);
  EXPECT_EQ(metadata.kernels[0].params[6].type, ParamType::I32);
}

/// Every key of the merge contract is required.
class MergeMissingKeyTest : public testing::TestWithParam<const char *> {};

TEST_P(MergeMissingKeyTest, IsNamed) {
  JsonValue document = parseDocument(kMergeExample);
  eraseMember(document, GetParam());
  std::string message = decodeError(document);
  std::string expected = std::string("missing key '") + GetParam() + "'";
  EXPECT_EQ(message.substr(0, expected.size()), expected)
      << "message: " << message;
}

INSTANTIATE_TEST_SUITE_P(
    MergeMetadataTest, MergeMissingKeyTest,
    testing::Values("format", "version", "chip", "ptx", "config",
                    "config.heads", "config.head_dim_v", "config.dtype",
                    "config.layout", "config.varlen", "config.batch",
                    "config.seq_q", "kernels", "kernels[0].name",
                    "kernels[0].role", "kernels[0].block",
                    "kernels[0].dynamic_shared_memory_bytes",
                    "kernels[0].static_shared_memory_bytes", "kernels[0].grid",
                    "kernels[0].params", "kernels[0].grid[2].sym",
                    "kernels[0].params[0].name", "kernels[0].params[0].type"));

struct BadMergeValue {
  const char *path;
  const char *replacement;
  const char *message;
};

std::ostream &operator<<(std::ostream &os, const BadMergeValue &value) {
  return os << value.path << " = " << value.replacement;
}

class MergeBadValueTest : public testing::TestWithParam<BadMergeValue> {};

TEST_P(MergeBadValueTest, IsRejected) {
  JsonValue document = parseDocument(kMergeExample);
  replaceValue(document, GetParam().path, GetParam().replacement);
  std::string message = decodeError(document);
  EXPECT_NE(message.find(GetParam().message), std::string::npos)
      << "message: " << message;
}

INSTANTIATE_TEST_SUITE_P(
    MergeMetadataTest, MergeBadValueTest,
    testing::Values(
        BadMergeValue{"version", "2",
                      "metadata version 2 is not supported: key 'version' "
                      "must be 1 for format gqa.merge_states"},
        BadMergeValue{"version", "3",
                      "metadata version 3 is not supported: key 'version' "
                      "must be 1 for format gqa.merge_states"},
        BadMergeValue{"version", "\"1\"",
                      "key 'version' must be an integer, not a string"},
        BadMergeValue{"chip", "\"gfx942\"",
                      "key 'chip' must look like sm_90 or sm_90a, not "
                      "'gfx942'"},
        BadMergeValue{"ptx", "\"\"", "key 'ptx' must not be empty"},
        BadMergeValue{"config", "[]",
                      "key 'config' must be an object, not an array"},
        BadMergeValue{"config.heads", "0",
                      "key 'config.heads' must be >= 1, not 0"},
        BadMergeValue{"config.heads", "\"64\"",
                      "key 'config.heads' must be an integer, not a string"},
        BadMergeValue{"config.head_dim_v", "0",
                      "key 'config.head_dim_v' must be >= 1, not 0"},
        BadMergeValue{"config.head_dim_v", "126",
                      "key 'config.head_dim_v' must be a multiple of 4 (each "
                      "thread of the merge kernel moves 4 consecutive values "
                      "of a row), not 126"},
        BadMergeValue{"config.dtype", "\"f64\"",
                      "key 'config.dtype' must be one of f16, bf16, f32, not "
                      "'f64'"},
        BadMergeValue{"config.layout", "\"sbhd\"",
                      "key 'config.layout' must be one of bhsd, bshd, not "
                      "'sbhd'"},
        BadMergeValue{"config.varlen", "0",
                      "key 'config.varlen' must be a boolean, not a number"},
        BadMergeValue{"config.batch", "0",
                      "key 'config.batch' must be >= 1, not 0"},
        BadMergeValue{"config.seq_q", "1.5",
                      "key 'config.seq_q' must be an integer or null, not a "
                      "number"},
        BadMergeValue{"kernels", "[]", "key 'kernels' must not be empty"},
        BadMergeValue{"kernels", "{}",
                      "key 'kernels' must be an array, not an object"},
        BadMergeValue{"kernels[0].name", "\"\"",
                      "key 'kernels[0].name' must not be empty"},
        BadMergeValue{"kernels[0].role", "\"main\"",
                      "key 'kernels[0].role' must be one of merge, not "
                      "'main'"},
        BadMergeValue{"kernels[0].role", "\"combine\"",
                      "key 'kernels[0].role' must be one of merge, not "
                      "'combine'"},
        BadMergeValue{"kernels[0].block", "[0, 1, 1]",
                      "key 'kernels[0].block[0]' must be >= 1, not 0"},
        BadMergeValue{"kernels[0].dynamic_shared_memory_bytes", "-1",
                      "key 'kernels[0].dynamic_shared_memory_bytes' must be "
                      ">= 0"},
        BadMergeValue{"kernels[0].grid[0]", R"({"sym": "seq_kv"})",
                      "key 'kernels[0].grid[0].sym' must be one of batch, "
                      "seq_q, not 'seq_kv'"},
        BadMergeValue{"kernels[0].grid[1]", R"({"sym": "num_splits"})",
                      "key 'kernels[0].grid[1].sym' must be one of batch, "
                      "seq_q, not 'num_splits'"},
        BadMergeValue{"kernels[0].grid[0]", R"({"sym": "seq_q", "div": 0})",
                      "key 'kernels[0].grid[0].div' must be >= 1, not 0"},
        BadMergeValue{"kernels[0].params[0].name", "\"q\"",
                      "key 'kernels[0].params[0].name' is 'q', which is not a "
                      "parameter name of a merge kernel (out_a, lse_a, "
                      "out_b, lse_b, out, lse, batch, seq_q)"},
        BadMergeValue{"kernels[0].params[6].name", "\"seq_kv\"",
                      "key 'kernels[0].params[6].name' is 'seq_kv', which is "
                      "not a parameter name of a merge kernel"},
        BadMergeValue{"kernels[0].params[1].name", "\"out_a\"",
                      "kernel 'gqa_merge_states' (kernels[0]) takes "
                      "parameter 'out_a' twice"},
        BadMergeValue{"kernels[0].params[0].type", "\"i64\"",
                      "parameter 'out_a' (kernels[0].params[0]) is a "
                      "pointer, so its type must be ptr"},
        BadMergeValue{"kernels[0].params[7].type", "\"ptr\"",
                      "parameter 'seq_q' (kernels[0].params[7]) is an "
                      "integer, so its type must be i32 or i64"},
        BadMergeValue{"kernels[0].params[7].type", "\"f32\"",
                      "key 'kernels[0].params[7].type' must be one of ptr, "
                      "i32, i64, not 'f32'"}));

TEST(MergeMetadataTest, VarlenNeedsBshdAndOneBatch) {
  JsonValue document = parseDocument(kMergeExample);
  replaceValue(document, "config.varlen", "true");
  replaceValue(document, "config.layout", "\"bhsd\"");
  EXPECT_EQ(decodeError(document),
            "config.varlen is true, so config.layout must be bshd (packed "
            "tokens [T, H, Dv])");
  replaceValue(document, "config.layout", "\"bshd\"");
  replaceValue(document, "config.batch", "2");
  EXPECT_EQ(decodeError(document),
            "config.varlen is true, so config.batch must be 1 or null (the "
            "packed tokens are one batch), not 2");
}

TEST(MergeMetadataTest, HoldsExactlyOneKernel) {
  JsonValue document = parseDocument(kMergeExample);
  JsonValue::Array &kernels = lookUp(document, "kernels")->getArray();
  kernels.push_back(kernels.front());
  EXPECT_EQ(decodeError(document),
            "a gqa.merge_states document's 'kernels' must hold exactly one "
            "kernel, of role merge, not 2");
}

TEST(MergeMetadataTest, TheKernelTakesEveryTensor) {
  for (const char *name : {"out_a", "lse_a", "out_b", "lse_b", "out", "lse"}) {
    JsonValue document = parseDocument(kMergeExample);
    JsonValue::Array &params =
        lookUp(document, "kernels[0].params")->getArray();
    params.erase(std::remove_if(params.begin(), params.end(),
                                [&](const JsonValue &param) {
                                  return param.find("name")->getString() ==
                                         name;
                                }),
                 params.end());
    EXPECT_EQ(decodeError(document),
              std::string("kernel 'gqa_merge_states' (kernels[0], role "
                          "merge) must take parameter '") +
                  name + "'");
  }
}

TEST(MergeMetadataTest, RejectsUnknownKeysEverywhere) {
  for (const char *path : {"", "config", "kernels[0]", "kernels[0].grid[0]",
                           "kernels[0].grid[1]", "kernels[0].params[3]"}) {
    JsonValue document = parseDocument(kMergeExample);
    JsonValue *object = lookUp(document, path);
    ASSERT_NE(object, nullptr) << path;
    object->getObject().emplace_back("extra_key", JsonValue());
    std::string expected =
        std::string("unknown key '") + path + (*path ? "." : "") + "extra_key'";
    EXPECT_EQ(decodeError(document), expected);
  }
  // Attention's objects and keys are not part of it.
  for (auto [path, key] : {std::pair<const char *, const char *>{"", "tile"},
                           {"", "split_kv"},
                           {"config", "q_heads"},
                           {"config", "lse"}}) {
    JsonValue document = parseDocument(kMergeExample);
    lookUp(document, path)->getObject().emplace_back(key, JsonValue());
    EXPECT_EQ(decodeError(document), std::string("unknown key '") + path +
                                         (*path ? "." : "") + key + "'");
  }
}

TEST(MergeMetadataTest, AttentionDocumentsTakeNoMergeKernel) {
  JsonValue document = parseDocument(kContractExample);
  replaceValue(document, "kernels[0].role", "\"merge\"");
  EXPECT_EQ(decodeError(document),
            "key 'kernels[0].role' must be one of main, split, combine, not "
            "'merge'");
  document = parseDocument(kContractExample);
  replaceValue(document, "kernels[0].params[0].name", "\"out_a\"");
  EXPECT_NE(decodeError(document).find(
                "key 'kernels[0].params[0].name' is 'out_a', which is not a "
                "parameter name of the contract (q, k, v, out, "),
            std::string::npos);
  // A merge document's format with attention's keys is read as a merge
  // document, and refused as one.
  document = parseDocument(kContractExample);
  replaceValue(document, "format", "\"gqa.merge_states\"");
  EXPECT_EQ(decodeError(document), "unknown key 'tile'");
}

TEST(MergeMetadataTest, ParsingReplacesWhatTheMetadataHeld) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  ASSERT_TRUE(parseKernelMetadata(kMergeExample, metadata).ok());
  EXPECT_TRUE(metadata.isMergeStates());
  EXPECT_EQ(metadata.config.q_heads, 0);
  ASSERT_TRUE(parseKernelMetadata(kContractExample, metadata).ok());
  EXPECT_FALSE(metadata.isMergeStates());
  EXPECT_EQ(metadata.mergeConfig.heads, 0);
}

//===----------------------------------------------------------------------===//
// Planning
//===----------------------------------------------------------------------===//

gqa_kernel_launch_config planMergeOk(const KernelMetadata &metadata,
                                     const gqa_merge_args &args) {
  gqa_kernel_launch_config launch;
  Status status = planMerge(metadata, args, launch);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  return launch;
}

std::string planMergeError(const KernelMetadata &metadata,
                           const gqa_merge_args &args) {
  gqa_kernel_launch_config launch;
  Status status = planMerge(metadata, args, launch);
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_ARGUMENT);
  return status.getMessage();
}

TEST(MergePlanTest, PlansTheContractExample) {
  // 64 heads of 128 values, 4 rows per CTA: ceil(seq_q * 64 / 4) CTAs of
  // 128 threads along x, one row of them per batch entry.
  KernelMetadata metadata = parseValidMetadata(kMergeExample);
  gqa_kernel_launch_config launch =
      planMergeOk(metadata, makeMergeArgs(metadata, 3, 1000));
  EXPECT_STREQ(launch.name, "gqa_merge_states");
  EXPECT_EQ(launch.role, GQA_KERNEL_ROLE_MERGE);
  EXPECT_EQ(launch.grid[0], 16000u);
  EXPECT_EQ(launch.grid[1], 1u);
  EXPECT_EQ(launch.grid[2], 3u);
  EXPECT_EQ(launch.block[0], 128u);
  EXPECT_EQ(launch.block[1], 1u);
  EXPECT_EQ(launch.block[2], 1u);
  EXPECT_EQ(launch.dynamic_shared_memory_bytes, 0u);
  for (auto [seqQ, ctas] :
       {std::pair<int64_t, uint32_t>{1, 16}, {2, 32}, {77, 1232}}) {
    launch = planMergeOk(metadata, makeMergeArgs(metadata, 1, seqQ));
    EXPECT_EQ(launch.grid[0], ctas) << "seq_q " << seqQ;
  }
}

TEST(MergePlanTest, RoundsPartialCtasUp) {
  // 5 heads of 256 values, 2 rows per CTA: ceil(seq_q * 5 / 2) CTAs.
  KernelMetadata metadata = mergeMetadataWith(
      {{"config.heads", "5"},
       {"config.head_dim_v", "256"},
       {"kernels[0].grid[0]", R"({"sym": "seq_q", "mul": 5, "div": 2})"}});
  EXPECT_EQ(planMergeOk(metadata, makeMergeArgs(metadata, 1, 1)).grid[0], 3u);
  EXPECT_EQ(planMergeOk(metadata, makeMergeArgs(metadata, 1, 2)).grid[0], 5u);
  EXPECT_EQ(planMergeOk(metadata, makeMergeArgs(metadata, 1, 3)).grid[0], 8u);
}

TEST(MergePlanTest, ChecksEachArgument) {
  KernelMetadata metadata = parseValidMetadata(kMergeExample);
  struct Case {
    void (*change)(gqa_merge_args &);
    const char *message;
  };
  const Case cases[] = {
      {[](gqa_merge_args &a) { a.batch = 0; },
       "args.batch must be >= 1, not 0"},
      {[](gqa_merge_args &a) { a.seq_q = -3; },
       "args.seq_q must be >= 1, not -3"},
      {[](gqa_merge_args &a) { a.heads = 32; },
       "args.heads is 32, but the kernel was compiled for config.heads = 64"},
      {[](gqa_merge_args &a) { a.head_dim_v = 64; },
       "args.head_dim_v is 64, but the kernel was compiled for "
       "config.head_dim_v = 128"},
      {[](gqa_merge_args &a) { a.dtype = static_cast<gqa_dtype>(0); },
       "args.dtype is 0, not one of GQA_DTYPE_F16, GQA_DTYPE_BF16, "
       "GQA_DTYPE_F32"},
      {[](gqa_merge_args &a) { a.dtype = GQA_DTYPE_F16; },
       "args.dtype is f16, but the kernel was compiled for config.dtype = "
       "bf16"},
      {[](gqa_merge_args &a) { a.layout = static_cast<gqa_layout>(7); },
       "args.layout is 7, not one of GQA_LAYOUT_BHSD, GQA_LAYOUT_BSHD"},
      {[](gqa_merge_args &a) { a.layout = GQA_LAYOUT_BHSD; },
       "args.layout is bhsd, but the kernel was compiled for config.layout = "
       "bshd"},
  };
  for (const Case &c : cases) {
    gqa_merge_args args = makeMergeArgs(metadata, 2, 128);
    c.change(args);
    EXPECT_EQ(planMergeError(metadata, args), c.message);
  }
  gqa_merge_args zero = {};
  EXPECT_EQ(planMergeError(metadata, zero), "args.batch must be >= 1, not 0");
}

TEST(MergePlanTest, ChecksFixedSizesAndVarlen) {
  KernelMetadata fixed =
      mergeMetadataWith({{"config.batch", "2"}, {"config.seq_q", "1"}});
  planMergeOk(fixed, makeMergeArgs(fixed, 2, 1));
  EXPECT_EQ(planMergeError(fixed, makeMergeArgs(fixed, 3, 1)),
            "args.batch is 3, but the kernel was compiled for config.batch = "
            "2 only");
  EXPECT_EQ(planMergeError(fixed, makeMergeArgs(fixed, 2, 4)),
            "args.seq_q is 4, but the kernel was compiled for config.seq_q = "
            "1 only");

  KernelMetadata varlen = mergeMetadataWith({{"config.varlen", "true"}});
  EXPECT_EQ(planMergeOk(varlen, makeMergeArgs(varlen, 1, 4097)).grid[0],
            65552u);
  EXPECT_EQ(planMergeError(varlen, makeMergeArgs(varlen, 2, 4097)),
            "args.batch is 2, but config.varlen is true: packed tokens are "
            "merged as batch 1 of seq_q tokens");
}

TEST(MergePlanTest, ChecksGridLimitsAndI32Sizes) {
  KernelMetadata metadata = parseValidMetadata(kMergeExample);
  planMergeOk(metadata, makeMergeArgs(metadata, 65535, 1));
  EXPECT_EQ(planMergeError(metadata, makeMergeArgs(metadata, 65536, 1)),
            "kernel 'gqa_merge_states' needs grid[2] = 65536, but CUDA allows "
            "1..65535");
  // grid[0] = seq_q * 16 reaches 2^31 at seq_q = 2^27.
  planMergeOk(metadata, makeMergeArgs(metadata, 1, (int64_t{1} << 27) - 1));
  EXPECT_EQ(planMergeError(metadata, makeMergeArgs(metadata, 1, 1 << 27)),
            "kernel 'gqa_merge_states' needs grid[0] = 2147483648, but CUDA "
            "allows 1..2147483647");
  EXPECT_EQ(planMergeError(metadata, makeMergeArgs(metadata, 1, INT64_MAX)),
            "kernel 'gqa_merge_states': the grid expression ceil((seq_q * 64 "
            "+ 0) / 4) overflows for seq_q = 9223372036854775807");

  KernelMetadata i32 =
      mergeMetadataWith({{"kernels[0].grid[0]", R"({"const": 1})"},
                         {"kernels[0].params[7].type", "\"i32\""}});
  planMergeOk(i32, makeMergeArgs(i32, 1, INT32_MAX));
  EXPECT_EQ(planMergeError(i32, makeMergeArgs(i32, 1, int64_t{INT32_MAX} + 1)),
            "kernel 'gqa_merge_states' takes seq_q as i32, but seq_q = "
            "2147483648 does not fit in one");
}

TEST(MergePlanTest, EachKindHasItsOwnEntryPoints) {
  KernelMetadata merge = parseValidMetadata(kMergeExample);
  KernelMetadata attention = parseValidMetadata(kContractExample);
  const char *mergeMessage =
      "a gqa.merge_states kernel set is launched with gqa_kernel_merge_states "
      "(and planned with gqa_plan_merge), not with gqa_launch_args";
  gqa_launch_args launchArgs = makeArgs(attention, 1, 1, 1);
  gqa_launch_plan plan;
  EXPECT_EQ(planLaunch(merge, launchArgs, 132, plan).getMessage(),
            mergeMessage);
  EXPECT_EQ(planLaunch(merge, launchArgs, 0, plan).getMessage(), mergeMessage);
  EXPECT_EQ(validateLaunchShape(merge, launchArgs).getMessage(), mergeMessage);
  EXPECT_EQ(planMergeError(attention, makeMergeArgs(merge, 1, 1)),
            "an attention kernel set (gqa.kernel) is launched with "
            "gqa_kernel_launch (and planned with gqa_plan_launch), not with "
            "gqa_merge_args");
}

//===----------------------------------------------------------------------===//
// Pointers and parameters
//===----------------------------------------------------------------------===//

class MergePointersTest : public testing::Test {
protected:
  KernelMetadata metadata = parseValidMetadata(kMergeExample);
  // 2 x 64 x 10 rows: lse arrays of 5120 bytes, outputs of 327680.
  gqa_merge_args args = makeMergeArgs(metadata, 2, 10);

  std::string error() {
    Status status = validateMergePointers(args);
    EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_ARGUMENT);
    return status.getMessage();
  }
  static const char *at(const void *base, uintptr_t offset) {
    return static_cast<const char *>(base) + offset;
  }
};

TEST_F(MergePointersTest, AcceptsCompleteArguments) {
  EXPECT_TRUE(validateMergePointers(args).ok());
}

TEST_F(MergePointersTest, NeedsEachPointer) {
  const void *gqa_merge_args::*fields[] = {
      &gqa_merge_args::out_a, &gqa_merge_args::lse_a, &gqa_merge_args::out_b,
      &gqa_merge_args::lse_b};
  const char *names[] = {"out_a", "lse_a", "out_b", "lse_b"};
  for (size_t i = 0; i < 4; ++i) {
    args = makeMergeArgs(metadata, 2, 10);
    args.*fields[i] = nullptr;
    EXPECT_EQ(error(), std::string("args.") + names[i] + " is NULL");
  }
  args = makeMergeArgs(metadata, 2, 10);
  args.out = nullptr;
  EXPECT_EQ(error(), "args.out is NULL");
  args = makeMergeArgs(metadata, 2, 10);
  args.lse = nullptr;
  EXPECT_EQ(error(), "args.lse is NULL");
}

TEST_F(MergePointersTest, ChecksAlignment) {
  // The outputs move in 16-byte vectors, the log-sum-exps are f32.
  args.out_b = at(args.out_b, 8);
  EXPECT_EQ(error(), "args.out_b (3298534883336) is not aligned to 16 bytes");
  args = makeMergeArgs(metadata, 2, 10);
  args.out = const_cast<char *>(at(args.out, 4));
  EXPECT_EQ(error(), "args.out (5497558138884) is not aligned to 16 bytes");
  args = makeMergeArgs(metadata, 2, 10);
  args.lse_a = at(args.lse_a, 2);
  EXPECT_EQ(error(), "args.lse_a (2199023255554) is not aligned to 4 bytes");
  args = makeMergeArgs(metadata, 2, 10);
  args.lse = const_cast<char *>(at(args.lse, 4));
  EXPECT_TRUE(validateMergePointers(args).ok());
}

TEST_F(MergePointersTest, TheMergedLseHasMemoryOfItsOwn) {
  args.lse = const_cast<void *>(args.lse_a);
  EXPECT_EQ(error(), "args.lse is args.lse_a: the merged log-sum-exps must "
                     "not overwrite an input's (every thread of a row reads "
                     "them)");
  args.lse = const_cast<void *>(args.lse_b);
  EXPECT_EQ(error(), "args.lse is args.lse_b: the merged log-sum-exps must "
                     "not overwrite an input's (every thread of a row reads "
                     "them)");
  // 5120 bytes each: 5116 bytes past lse_b still share its last value.
  args.lse = const_cast<char *>(at(args.lse_b, 5116));
  EXPECT_EQ(error(), "args.lse overlaps args.lse_b (5120 bytes each): the "
                     "merged log-sum-exps must not overwrite an input's");
  args.lse = const_cast<char *>(at(args.lse_b, 5120));
  EXPECT_TRUE(validateMergePointers(args).ok());
  args.lse_a = at(args.lse, 4);
  EXPECT_EQ(error(), "args.lse overlaps args.lse_a (5120 bytes each): the "
                     "merged log-sum-exps must not overwrite an input's");
}

TEST_F(MergePointersTest, OutMayBeAnInputButNotOverlapOne) {
  args.out = const_cast<void *>(args.out_a);
  EXPECT_TRUE(validateMergePointers(args).ok());
  args.out = const_cast<void *>(args.out_b);
  EXPECT_TRUE(validateMergePointers(args).ok());
  args.out = const_cast<char *>(at(args.out_b, 16));
  EXPECT_EQ(error(), "args.out overlaps args.out_b (327680 bytes each) "
                     "without being it: out may be out_b itself or memory of "
                     "its own");
  args.out = const_cast<char *>(at(args.out_a, 327680));
  EXPECT_TRUE(validateMergePointers(args).ok());
}

TEST(MergeBindTest, FollowsTheParamListAndItsTypes) {
  // The parameters in another order, the sizes as i32.
  KernelMetadata metadata = mergeMetadataWith(
      {{"kernels[0].params",
        R"([{"name": "seq_q", "type": "i32"}, {"name": "out", "type": "ptr"},
            {"name": "lse", "type": "ptr"}, {"name": "lse_b", "type": "ptr"},
            {"name": "out_b", "type": "ptr"}, {"name": "lse_a", "type": "ptr"},
            {"name": "out_a", "type": "ptr"},
            {"name": "batch", "type": "i32"}])"}});
  gqa_merge_args args = makeMergeArgs(metadata, 3, 77);
  KernelParamValues params;
  params.values.fill(KernelParamValue{~uint64_t{0}});
  bindMergeParams(metadata.kernels[0], args, params);
  ASSERT_EQ(params.count, 8u);
  for (size_t i = 0; i < params.count; ++i)
    EXPECT_EQ(params.pointers[i], &params.values[i]);
  int32_t seqQ;
  std::memcpy(&seqQ, params.pointers[0], sizeof(seqQ));
  EXPECT_EQ(seqQ, 77);
  EXPECT_EQ(params.values[0].pointer, 77u); // The upper half is zero.
  auto address = [](const void *pointer) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pointer));
  };
  EXPECT_EQ(params.values[1].pointer, address(args.out));
  EXPECT_EQ(params.values[2].pointer, address(args.lse));
  EXPECT_EQ(params.values[3].pointer, address(args.lse_b));
  EXPECT_EQ(params.values[4].pointer, address(args.out_b));
  EXPECT_EQ(params.values[5].pointer, address(args.lse_a));
  EXPECT_EQ(params.values[6].pointer, address(args.out_a));
  EXPECT_EQ(params.values[7].i32, 3);

  KernelMetadata example = parseValidMetadata(kMergeExample);
  bindMergeParams(example.kernels[0], args, params);
  EXPECT_EQ(params.values[0].pointer, address(args.out_a));
  EXPECT_EQ(params.values[6].i64, 3);
  EXPECT_EQ(params.values[7].i64, 77);
}

//===----------------------------------------------------------------------===//
// The C API
//===----------------------------------------------------------------------===//

std::string lastError() { return gqa_last_error_message(); }

gqa_metadata parseHandle(std::string_view json) {
  gqa_metadata metadata = nullptr;
  EXPECT_EQ(gqa_metadata_parse(json.data(), json.size(), &metadata),
            GQA_SUCCESS)
      << lastError();
  return metadata;
}

TEST(MergeCApiTest, ExposesTheMetadata) {
  gqa_metadata metadata = parseHandle(kMergeExample);
  ASSERT_NE(metadata, nullptr);
  gqa_kernel_set_kind kind = {};
  ASSERT_EQ(gqa_metadata_get_kind(metadata, &kind), GQA_SUCCESS);
  EXPECT_EQ(kind, GQA_KERNEL_SET_MERGE_STATES);
  EXPECT_STREQ(gqa_metadata_chip(metadata), "sm_90");
  EXPECT_STREQ(gqa_metadata_ptx_file(metadata), "merge.ptx");
  gqa_merge_config config;
  ASSERT_EQ(gqa_metadata_get_merge_config(metadata, &config), GQA_SUCCESS);
  expectExampleConfig(config);

  const char *refusal =
      ": the metadata describes a gqa.merge_states kernel set, which has no "
      "attention config, tile or split_kv (read its config with "
      "gqa_metadata_get_merge_config)";
  gqa_kernel_config attentionConfig;
  EXPECT_EQ(gqa_metadata_get_config(metadata, &attentionConfig),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), std::string("gqa_metadata_get_config") + refusal);
  gqa_kernel_tiling tiling;
  EXPECT_EQ(gqa_metadata_get_tiling(metadata, &tiling),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), std::string("gqa_metadata_get_tiling") + refusal);
  gqa_metadata_destroy(metadata);

  metadata = parseHandle(kContractExample);
  ASSERT_EQ(gqa_metadata_get_kind(metadata, &kind), GQA_SUCCESS);
  EXPECT_EQ(kind, GQA_KERNEL_SET_ATTENTION);
  EXPECT_EQ(gqa_metadata_get_merge_config(metadata, &config),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "gqa_metadata_get_merge_config: the metadata "
                         "describes an attention kernel set (gqa.kernel), "
                         "which has no merge config (read its config with "
                         "gqa_metadata_get_config)");
  gqa_metadata_destroy(metadata);
}

TEST(MergeCApiTest, RejectsInvalidMetadataNamingTheKey) {
  std::string json(kMergeExample);
  json.replace(json.find("\"heads\": 64"), 11, "\"heads\": -64");
  gqa_metadata metadata = nullptr;
  EXPECT_EQ(gqa_metadata_parse(json.data(), json.size(), &metadata),
            GQA_ERROR_INVALID_METADATA);
  EXPECT_EQ(metadata, nullptr);
  EXPECT_EQ(lastError(), "metadata: key 'config.heads' must be >= 1, not -64");
}

TEST(MergeCApiTest, PlansWithoutAGpu) {
  gqa_metadata metadata = parseHandle(kMergeExample);
  gqa_merge_args args = {};
  args.batch = 2;
  args.seq_q = 5;
  args.heads = 64;
  args.head_dim_v = 128;
  args.dtype = GQA_DTYPE_BF16;
  args.layout = GQA_LAYOUT_BSHD;
  gqa_kernel_launch_config launch;
  ASSERT_EQ(gqa_plan_merge(metadata, &args, &launch), GQA_SUCCESS)
      << lastError();
  EXPECT_STREQ(launch.name, "gqa_merge_states");
  EXPECT_EQ(launch.role, GQA_KERNEL_ROLE_MERGE);
  EXPECT_EQ(launch.grid[0], 80u);
  EXPECT_EQ(launch.grid[2], 2u);

  args.head_dim_v = 64;
  EXPECT_EQ(gqa_plan_merge(metadata, &args, &launch),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "args.head_dim_v is 64, but the kernel was compiled "
                         "for config.head_dim_v = 128");

  gqa_launch_args launchArgs = {};
  gqa_launch_plan plan;
  EXPECT_EQ(gqa_plan_launch(metadata, &launchArgs, 132, &plan),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "a gqa.merge_states kernel set is launched with "
                         "gqa_kernel_merge_states (and planned with "
                         "gqa_plan_merge), not with gqa_launch_args");
  gqa_metadata_destroy(metadata);

  metadata = parseHandle(kContractExample);
  EXPECT_EQ(gqa_plan_merge(metadata, &args, &launch),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "an attention kernel set (gqa.kernel) is launched "
                         "with gqa_kernel_launch (and planned with "
                         "gqa_plan_launch), not with gqa_merge_args");
  gqa_metadata_destroy(metadata);
}

TEST(MergeCApiTest, RejectsNullArguments) {
  gqa_metadata metadata = parseHandle(kMergeExample);
  gqa_merge_args args = {};
  gqa_kernel_launch_config launch;
  gqa_kernel_set_kind kind;
  gqa_merge_config config;
  struct Case {
    std::function<gqa_status()> call;
    const char *message;
  };
  const Case cases[] = {
      {[&] { return gqa_metadata_get_kind(nullptr, &kind); },
       "gqa_metadata_get_kind: metadata is NULL"},
      {[&] { return gqa_metadata_get_kind(metadata, nullptr); },
       "gqa_metadata_get_kind: kind is NULL"},
      {[&] { return gqa_metadata_get_merge_config(nullptr, &config); },
       "gqa_metadata_get_merge_config: metadata is NULL"},
      {[&] { return gqa_metadata_get_merge_config(metadata, nullptr); },
       "gqa_metadata_get_merge_config: config is NULL"},
      {[&] { return gqa_plan_merge(nullptr, &args, &launch); },
       "gqa_plan_merge: metadata is NULL"},
      {[&] { return gqa_plan_merge(metadata, nullptr, &launch); },
       "gqa_plan_merge: args is NULL"},
      {[&] { return gqa_plan_merge(metadata, &args, nullptr); },
       "gqa_plan_merge: launch is NULL"},
      {[&] { return gqa_kernel_merge_states(nullptr, &args); },
       "gqa_kernel_merge_states: kernel is NULL"},
  };
  for (const Case &c : cases) {
    EXPECT_EQ(c.call(), GQA_ERROR_INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(lastError(), c.message);
  }
  gqa_metadata_destroy(metadata);
}

} // namespace
