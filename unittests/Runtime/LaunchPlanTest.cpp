//===- LaunchPlanTest.cpp - Argument checks and launch plans --------------===//

#include "LaunchPlan.h"
#include "TestMetadata.h"

#include "gtest/gtest.h"

#include <cstring>

using namespace gqa::runtime;
using namespace gqa::runtime::test;

namespace {

constexpr int32_t kH200SMs = 132;

GridDim symbolDim(LaunchSize symbol, int64_t mul, int64_t add, int64_t div) {
  GridDim dim;
  dim.symbol = symbol;
  dim.mul = mul;
  dim.add = add;
  dim.div = div;
  return dim;
}

int64_t evaluate(const GridDim &dim, const LaunchSizes &sizes) {
  int64_t extent = -1;
  Status status = evaluateGridDim(dim, sizes, extent);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  return extent;
}

std::string planError(const KernelMetadata &metadata,
                      const gqa_launch_args &args, int32_t smCount = kH200SMs) {
  gqa_launch_plan plan;
  Status status = planLaunch(metadata, args, smCount, plan);
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_ARGUMENT);
  return status.getMessage();
}

gqa_launch_plan plan(const KernelMetadata &metadata,
                     const gqa_launch_args &args, int32_t smCount = kH200SMs) {
  gqa_launch_plan plan;
  Status status = planLaunch(metadata, args, smCount, plan);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  return plan;
}

TEST(GridTest, EvaluatesConstants) {
  GridDim dim;
  dim.isConstant = true;
  dim.constant = 8;
  EXPECT_EQ(evaluate(dim, LaunchSizes{3, 5, 7, 2}), 8);
}

TEST(GridTest, EvaluatesCeilDivision) {
  LaunchSizes sizes{3, 1000, 4097, 5};
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::Batch, 1, 0, 1), sizes), 3);
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::SeqQ, 8, 0, 64), sizes), 125);
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::SeqKV, 1, 0, 64), sizes), 65);
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::SeqKV, 1, 63, 64), sizes), 65);
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::SeqQ, 1, 24, 64), sizes), 16);
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::NumSplits, 4, 0, 1), sizes), 20);
  sizes.seqQ = 1;
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::SeqQ, 8, 0, 64), sizes), 1);
  sizes.seqQ = 64;
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::SeqQ, 1, 0, 64), sizes), 1);
  sizes.seqQ = 65;
  EXPECT_EQ(evaluate(symbolDim(LaunchSize::SeqQ, 1, 0, 64), sizes), 2);
}

TEST(GridTest, ReportsOverflow) {
  int64_t extent;
  Status status =
      evaluateGridDim(symbolDim(LaunchSize::SeqKV, int64_t{1} << 62, 0, 1),
                      LaunchSizes{1, 1, 4, 1}, extent);
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(status.getMessage(),
            "the grid expression ceil((seq_kv * 4611686018427387904 + 0) / 1) "
            "overflows for seq_kv = 4");
}

TEST(LaunchPlanTest, PlansTheContractExample) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  gqa_launch_plan result = plan(metadata, makeArgs(metadata, 2, 1000, 1000));
  ASSERT_EQ(result.num_kernels, 1);
  const gqa_kernel_launch_config &kernel = result.kernels[0];
  EXPECT_STREQ(kernel.name, "gqa_attention_fwd");
  EXPECT_EQ(kernel.role, GQA_KERNEL_ROLE_MAIN);
  EXPECT_EQ(kernel.grid[0], 125u); // ceil(1000 * 8 / 64)
  EXPECT_EQ(kernel.grid[1], 8u);
  EXPECT_EQ(kernel.grid[2], 2u);
  EXPECT_EQ(kernel.block[0], 128u);
  EXPECT_EQ(kernel.block[1], 1u);
  EXPECT_EQ(kernel.block[2], 1u);
  EXPECT_EQ(kernel.dynamic_shared_memory_bytes, 0u);
  EXPECT_EQ(result.num_splits, 1);
  EXPECT_EQ(result.workspace_bytes, 0u);
  EXPECT_EQ(result.partial_lse_offset, 0u);
}

TEST(LaunchPlanTest, RoundsPartialTilesUp) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  EXPECT_EQ(plan(metadata, makeArgs(metadata, 1, 1, 1)).kernels[0].grid[0], 1u);
  EXPECT_EQ(plan(metadata, makeArgs(metadata, 1, 8, 8)).kernels[0].grid[0], 1u);
  EXPECT_EQ(plan(metadata, makeArgs(metadata, 1, 9, 8)).kernels[0].grid[0], 2u);
  EXPECT_EQ(plan(metadata, makeArgs(metadata, 1, 4097, 3)).kernels[0].grid[0],
            513u);
}

TEST(LaunchPlanTest, ChecksEachShapeFact) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  struct Case {
    void (*change)(gqa_launch_args &);
    const char *message;
  };
  const Case cases[] = {
      {[](gqa_launch_args &a) { a.batch = 0; },
       "args.batch must be >= 1, not 0"},
      {[](gqa_launch_args &a) { a.seq_q = 0; },
       "args.seq_q must be >= 1, not 0"},
      {[](gqa_launch_args &a) { a.seq_kv = -5; },
       "args.seq_kv must be >= 1, not -5"},
      {[](gqa_launch_args &a) { a.q_heads = 32; },
       "args.q_heads is 32, but the kernel was compiled for config.q_heads = "
       "64"},
      {[](gqa_launch_args &a) { a.kv_heads = 64; },
       "args.kv_heads is 64, but the kernel was compiled for config.kv_heads "
       "= 8"},
      {[](gqa_launch_args &a) { a.head_dim = 64; },
       "args.head_dim is 64, but the kernel was compiled for config.head_dim "
       "= 128"},
      {[](gqa_launch_args &a) { a.head_dim_v = 0; },
       "args.head_dim_v is 0, but the kernel was compiled for "
       "config.head_dim_v = 128"},
      {[](gqa_launch_args &a) { a.dtype = static_cast<gqa_dtype>(0); },
       "args.dtype is 0, not one of GQA_DTYPE_F16, GQA_DTYPE_BF16, "
       "GQA_DTYPE_F32"},
      {[](gqa_launch_args &a) { a.dtype = GQA_DTYPE_F16; },
       "args.dtype is f16, but the kernel was compiled for config.dtype = "
       "bf16"},
      {[](gqa_launch_args &a) { a.layout = static_cast<gqa_layout>(7); },
       "args.layout is 7, not one of GQA_LAYOUT_BHSD, GQA_LAYOUT_BSHD"},
      {[](gqa_launch_args &a) { a.layout = GQA_LAYOUT_BHSD; },
       "args.layout is bhsd, but the kernel was compiled for config.layout = "
       "bshd"},
  };
  for (const Case &c : cases) {
    gqa_launch_args args = makeArgs(metadata, 2, 128, 128);
    c.change(args);
    EXPECT_EQ(planError(metadata, args), c.message);
    EXPECT_EQ(validateLaunchShape(metadata, args).getMessage(), c.message);
  }
}

TEST(LaunchPlanTest, ZeroInitialisedArgsAreRejected) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  gqa_launch_args args = {};
  EXPECT_EQ(planError(metadata, args), "args.batch must be >= 1, not 0");
}

TEST(LaunchPlanTest, ChecksStaticSizes) {
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  EXPECT_EQ(planError(metadata, makeArgs(metadata, 2, 4, 1024)),
            "args.seq_q is 4, but the kernel was compiled for config.seq_q = 1 "
            "only");
  plan(metadata, makeArgs(metadata, 2, 1, 1024));
}

TEST(LaunchPlanTest, NeedsSMs) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  EXPECT_EQ(planError(metadata, makeArgs(metadata, 1, 1, 1), 0),
            "the SM count must be >= 1, not 0");
}

TEST(LaunchPlanTest, ChecksGridLimits) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  EXPECT_EQ(planError(metadata, makeArgs(metadata, 70000, 1, 1)),
            "kernel 'gqa_attention_fwd' needs grid[2] = 70000, but CUDA allows "
            "1..65535");
  plan(metadata, makeArgs(metadata, 65535, 1, 1));
  // grid[0] = ceil(seq_q * 8 / 64) reaches 2^31 at seq_q = 2^34.
  plan(metadata, makeArgs(metadata, 1, (int64_t{1} << 34) - 8, 1));
  EXPECT_EQ(planError(metadata, makeArgs(metadata, 1, int64_t{1} << 34, 1)),
            "kernel 'gqa_attention_fwd' needs grid[0] = 2147483648, but CUDA "
            "allows 1..2147483647");
}

TEST(LaunchPlanTest, ChecksSizesPassedAsI32) {
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  plan(metadata, makeArgs(metadata, 1, 1, INT32_MAX));
  EXPECT_EQ(
      planError(metadata, makeArgs(metadata, 1, 1, int64_t{INT32_MAX} + 1)),
      "kernel 'gqa_decode_split' takes seq_kv as i32, but seq_kv = "
      "2147483648 does not fit in one");
}

TEST(SplitKVTest, FillsTheGpu) {
  // The split kernel has 4 (KV heads) x num_splits x batch CTAs; 132 SMs ask
  // for 264. seq_kv 8192 is 64 tiles of 128; max_splits is 16.
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  struct Case {
    int64_t batch, seqKV, numSplits;
  };
  const Case cases[] = {
      {1, 8192, 16},  // 64 CTAs at 16 splits: capped by max_splits.
      {8, 8192, 8},   // 9 splits reach 288 CTAs; 8 tiles per split -> 8.
      {64, 8192, 2},  // 256 CTAs at 1 split, 512 at 2.
      {66, 8192, 1},  // 264 CTAs at 1 split.
      {128, 8192, 1}, // Enough CTAs without splitting.
      {1, 300, 3},    // 3 KV tiles: one split each.
      {1, 128, 1},    // A single tile cannot be split.
      {1, 1, 1},
      {2, 1000, 8},  // 8 tiles, 8 CTAs per split: capped by the tiles.
      {4, 1300, 11}, // 11 tiles: 11 splits of 1 tile.
  };
  for (const Case &c : cases) {
    int64_t numSplits = 0;
    Status status =
        chooseNumSplits(metadata, c.batch, 1, c.seqKV, kH200SMs, numSplits);
    ASSERT_TRUE(status.ok()) << status.getMessage();
    EXPECT_EQ(numSplits, c.numSplits)
        << "batch " << c.batch << ", seq_kv " << c.seqKV;
  }
}

TEST(SplitKVTest, NoSplitIsEmpty) {
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  for (int32_t smCount : {1, 16, 108, 132}) {
    for (int64_t batch : {1, 2, 3, 7, 33}) {
      for (int64_t seqKV = 1; seqKV <= 4000; seqKV += 37) {
        int64_t numSplits = 0;
        ASSERT_TRUE(
            chooseNumSplits(metadata, batch, 1, seqKV, smCount, numSplits)
                .ok());
        int64_t tiles = (seqKV + 127) / 128;
        int64_t tilesPerSplit = (tiles + numSplits - 1) / numSplits;
        EXPECT_GE(numSplits, 1);
        EXPECT_LE(numSplits, 16);
        EXPECT_LE(numSplits, tiles);
        // The last split [(n - 1) * tps, tiles) is not empty.
        EXPECT_LT((numSplits - 1) * tilesPerSplit, tiles)
            << "batch " << batch << ", seq_kv " << seqKV << ", splits "
            << numSplits;
      }
    }
  }
}

TEST(SplitKVTest, OneSplitWithoutSplitKV) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  int64_t numSplits = 0;
  ASSERT_TRUE(chooseNumSplits(metadata, 1, 1, 1 << 20, 132, numSplits).ok());
  EXPECT_EQ(numSplits, 1);
}

TEST(SplitKVTest, PlansBothKernelsAndTheWorkspace) {
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  gqa_launch_plan result = plan(metadata, makeArgs(metadata, 8, 1, 8192));
  ASSERT_EQ(result.num_kernels, 2);
  EXPECT_EQ(result.num_splits, 8);

  const gqa_kernel_launch_config &split = result.kernels[0];
  EXPECT_STREQ(split.name, "gqa_decode_split");
  EXPECT_EQ(split.role, GQA_KERNEL_ROLE_SPLIT);
  EXPECT_EQ(split.grid[0], 4u);
  EXPECT_EQ(split.grid[1], 8u);
  EXPECT_EQ(split.grid[2], 8u);
  EXPECT_EQ(split.dynamic_shared_memory_bytes, 65536u);

  const gqa_kernel_launch_config &combine = result.kernels[1];
  EXPECT_STREQ(combine.name, "gqa_decode_combine");
  EXPECT_EQ(combine.role, GQA_KERNEL_ROLE_COMBINE);
  EXPECT_EQ(combine.grid[0], 32u);
  EXPECT_EQ(combine.grid[1], 8u);
  EXPECT_EQ(combine.grid[2], 1u);
  EXPECT_EQ(combine.block[0], 64u);

  // partial_lse: 4 bytes x 8 splits x 8 batch x 32 heads x 1 query = 8192;
  // partial_out: that x head_dim_v 64 = 524288, a multiple of 256.
  EXPECT_EQ(result.partial_lse_offset, 524288u);
  EXPECT_EQ(result.workspace_bytes, 524288u + 8192u);
}

TEST(SplitKVTest, OneSplitLaunchesTheSplitKernelAlone) {
  // 128 sequences fill the GPU without splitting: the split kernel writes
  // the output itself, with no combine and no workspace.
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  gqa_launch_plan result = plan(metadata, makeArgs(metadata, 128, 1, 8192));
  EXPECT_EQ(result.num_splits, 1);
  ASSERT_EQ(result.num_kernels, 1);
  EXPECT_EQ(result.kernels[0].role, GQA_KERNEL_ROLE_SPLIT);
  EXPECT_STREQ(result.kernels[0].name, "gqa_decode_split");
  EXPECT_EQ(result.kernels[0].grid[1], 1u);
  EXPECT_EQ(result.workspace_bytes, 0u);
  EXPECT_EQ(result.partial_lse_offset, 0u);
}

TEST(SplitKVTest, AlignsPartialLse) {
  // 3 splits (3 tiles), 1 batch, 32 heads, 5 query rows, head_dim_v 3:
  // partial_out is 4 * 3 * 32 * 5 * 3 = 5760 bytes, so partial_lse starts
  // at 5888.
  JsonValue document = parseDocument(kSplitKVExample);
  replaceValue(document, "config.head_dim_v", "3");
  replaceValue(document, "config.seq_q", "5");
  KernelMetadata metadata;
  ASSERT_TRUE(decodeKernelMetadata(document, metadata).ok());
  gqa_launch_plan result = plan(metadata, makeArgs(metadata, 1, 5, 300));
  ASSERT_EQ(result.num_splits, 3);
  EXPECT_EQ(result.partial_lse_offset, 5888u);
  EXPECT_EQ(result.workspace_bytes, 5888u + 4u * 3u * 32u * 5u);
}

TEST(SplitKVTest, ReportsWorkspaceOverflow) {
  JsonValue document = parseDocument(kSplitKVExample);
  replaceValue(document, "config.seq_q", "null");
  KernelMetadata metadata;
  ASSERT_TRUE(decodeKernelMetadata(document, metadata).ok());
  EXPECT_EQ(planError(metadata, makeArgs(metadata, 1, int64_t{1} << 55, 256)),
            "the split-KV workspace for 2 splits is larger than 2^63 bytes");
}

class LaunchPointersTest : public testing::Test {
protected:
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  gqa_launch_args args = makeArgs(metadata, 8, 1, 8192);
  gqa_launch_plan launchPlan = plan(metadata, args);

  std::string error() {
    Status status = validateLaunchPointers(metadata, args, launchPlan);
    EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_ARGUMENT);
    return status.getMessage();
  }
};

TEST_F(LaunchPointersTest, AcceptsCompleteArguments) {
  EXPECT_TRUE(validateLaunchPointers(metadata, args, launchPlan).ok());
}

TEST_F(LaunchPointersTest, NeedsEachTensor) {
  args.q = nullptr;
  EXPECT_EQ(error(), "args.q is NULL");
  args = makeArgs(metadata, 8, 1, 8192);
  args.k = nullptr;
  EXPECT_EQ(error(), "args.k is NULL");
  args = makeArgs(metadata, 8, 1, 8192);
  args.v = nullptr;
  EXPECT_EQ(error(), "args.v is NULL");
  args = makeArgs(metadata, 8, 1, 8192);
  args.out = nullptr;
  EXPECT_EQ(error(), "args.out is NULL");
}

TEST_F(LaunchPointersTest, NeedsSixteenByteAlignedTensors) {
  args.v = reinterpret_cast<const void *>(uintptr_t{0x30001});
  EXPECT_EQ(error(), "args.v (196609) is not aligned to 16 bytes");
  args = makeArgs(metadata, 8, 1, 8192);
  // Element-aligned is not enough: the kernels copy 16-byte vectors.
  args.out = reinterpret_cast<void *>(uintptr_t{0x30008});
  EXPECT_EQ(error(), "args.out (196616) is not aligned to 16 bytes");
}

TEST_F(LaunchPointersTest, NeedsKvLensIffTheKernelTakesThem) {
  args.kv_lens = nullptr;
  EXPECT_EQ(error(), "args.kv_lens is NULL, but the kernel reads per-batch KV "
                     "lengths (config.kv_lens = i32)");
  args.kv_lens = reinterpret_cast<const void *>(uintptr_t{0x50002});
  EXPECT_EQ(error(), "args.kv_lens (327682) is not aligned to 4 bytes");

  KernelMetadata withoutKvLens = parseValidMetadata(kContractExample);
  gqa_launch_args plain = makeArgs(withoutKvLens, 1, 1, 1);
  plain.kv_lens = reinterpret_cast<const void *>(uintptr_t{0x50000});
  Status status =
      validateLaunchPointers(withoutKvLens, plain, plan(withoutKvLens, plain));
  EXPECT_EQ(status.getMessage(),
            "args.kv_lens is set, but the kernel was compiled without "
            "per-batch KV lengths (config.kv_lens = none)");
}

TEST_F(LaunchPointersTest, ChecksTheCallersWorkspace) {
  args.workspace = reinterpret_cast<void *>(uintptr_t{0x100000});
  args.workspace_bytes = launchPlan.workspace_bytes;
  EXPECT_TRUE(validateLaunchPointers(metadata, args, launchPlan).ok());
  args.workspace_bytes = launchPlan.workspace_bytes - 1;
  EXPECT_EQ(error(), "args.workspace_bytes is 532479, but this launch needs "
                     "532480 (8 KV splits)");
  args.workspace_bytes = launchPlan.workspace_bytes;
  args.workspace = reinterpret_cast<void *>(uintptr_t{0x100008});
  EXPECT_EQ(error(), "args.workspace (1048584) is not aligned to 16 bytes");
  args.workspace = nullptr;
  EXPECT_EQ(error(), "args.workspace_bytes is 532480, but args.workspace is "
                     "NULL");
}

TEST(PagedLaunchTest, ChecksThePoolAndTheBlockTable) {
  KernelMetadata metadata = parseValidMetadata(kPagedExample);
  // 4 sequences of up to 64 pages of 16 tokens.
  gqa_launch_args args = makeArgs(metadata, 4, 1, 1024);
  gqa_launch_plan launchPlan = plan(metadata, args);
  EXPECT_TRUE(validateLaunchPointers(metadata, args, launchPlan).ok());

  args.seq_kv = 1000;
  EXPECT_EQ(planError(metadata, args),
            "args.seq_kv is 1000, but a paged kernel reads whole pages: it "
            "must be the block table's pages per sequence times "
            "config.page_size = 16");
  args = makeArgs(metadata, 4, 1, 1024);
  args.num_pages = 0;
  EXPECT_EQ(planError(metadata, args), "args.num_pages must be >= 1, not 0");

  args = makeArgs(metadata, 4, 1, 1024);
  args.block_table = nullptr;
  EXPECT_EQ(validateLaunchPointers(metadata, args, launchPlan).getMessage(),
            "args.block_table is NULL, but the kernel reads a paged KV cache "
            "(config.page_size = 16)");
  args.block_table = reinterpret_cast<const void *>(uintptr_t{0x60002});
  EXPECT_EQ(validateLaunchPointers(metadata, args, launchPlan).getMessage(),
            "args.block_table (393218) is not aligned to 4 bytes");
}

TEST(PagedLaunchTest, ContiguousKernelsTakeNoPages) {
  KernelMetadata metadata = parseValidMetadata(kContractExample);
  gqa_launch_args args = makeArgs(metadata, 1, 1, 1);
  args.num_pages = 5;
  EXPECT_EQ(planError(metadata, args),
            "args.num_pages is 5, but the kernel reads contiguous K/V "
            "(config.page_size = 0): leave it 0");
  args.num_pages = 0;
  args.block_table = reinterpret_cast<const void *>(uintptr_t{0x60000});
  EXPECT_EQ(
      validateLaunchPointers(metadata, args, plan(metadata, args)).getMessage(),
      "args.block_table is set, but the kernel reads contiguous K/V "
      "(config.page_size = 0)");
}

TEST(PagedLaunchTest, BindsTheBlockTableAndThePoolSize) {
  KernelMetadata metadata = parseValidMetadata(kPagedExample);
  gqa_launch_args args = makeArgs(metadata, 4, 1, 1024);
  gqa_launch_plan launchPlan = plan(metadata, args);
  KernelParamValues params;
  bindKernelParams(metadata.kernels[0], args, launchPlan, 0, params);
  ASSERT_EQ(params.count, 10u);
  EXPECT_EQ(params.values[5].pointer, 0x60000u); // block_table
  EXPECT_EQ(params.values[8].i64, 1024);         // seq_kv: 64 pages of 16
  EXPECT_EQ(params.values[9].i64, 1000);         // num_pages
}

TEST(BindKernelParamsTest, FollowsTheParamList) {
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  gqa_launch_args args = makeArgs(metadata, 8, 1, 8192);
  gqa_launch_plan launchPlan = plan(metadata, args);
  const uint64_t workspace = 0x7000000;

  KernelParamValues split;
  bindKernelParams(metadata.kernels[0], args, launchPlan, workspace, split);
  ASSERT_EQ(split.count, 10u);
  for (size_t i = 0; i < split.count; ++i)
    EXPECT_EQ(split.pointers[i], &split.values[i]);
  EXPECT_EQ(split.values[0].pointer, 0x10000u); // q
  EXPECT_EQ(split.values[1].pointer, 0x20000u); // k
  EXPECT_EQ(split.values[2].pointer, 0x30000u); // v
  EXPECT_EQ(split.values[3].pointer, 0x40000u); // out
  EXPECT_EQ(split.values[4].pointer, 0x50000u); // kv_lens
  EXPECT_EQ(split.values[5].pointer, workspace);
  EXPECT_EQ(split.values[6].pointer, workspace + launchPlan.partial_lse_offset);
  EXPECT_EQ(split.values[7].i32, 8);    // batch
  EXPECT_EQ(split.values[8].i32, 8192); // seq_kv
  EXPECT_EQ(split.values[9].i32, 8);    // num_splits

  KernelParamValues combine;
  bindKernelParams(metadata.kernels[1], args, launchPlan, workspace, combine);
  ASSERT_EQ(combine.count, 5u);
  EXPECT_EQ(combine.values[0].pointer, workspace);
  EXPECT_EQ(combine.values[1].pointer,
            workspace + launchPlan.partial_lse_offset);
  EXPECT_EQ(combine.values[2].pointer, 0x40000u); // out
  EXPECT_EQ(combine.values[3].i64, 8);            // num_splits
  EXPECT_EQ(combine.values[4].i64, 8);            // batch
}

TEST(BindKernelParamsTest, WritesI32ValuesWhole) {
  // cuLaunchKernel reads 4 bytes for an i32; they must hold the value even
  // where the slot held a larger one before.
  KernelMetadata metadata = parseValidMetadata(kSplitKVExample);
  gqa_launch_args args = makeArgs(metadata, 3, 1, 500);
  gqa_launch_plan launchPlan = plan(metadata, args);
  KernelParamValues params;
  params.values.fill(KernelParamValue{~uint64_t{0}});
  bindKernelParams(metadata.kernels[0], args, launchPlan, 0, params);
  int32_t batch;
  std::memcpy(&batch, params.pointers[7], sizeof(batch));
  EXPECT_EQ(batch, 3);
  EXPECT_EQ(params.values[7].pointer, 3u); // The upper half is zero.
}

} // namespace
