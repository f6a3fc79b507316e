//===- FakeDriverLaunchTest.cpp - Launches of real kernels, GPU-free ------===//
//
// The runtime, loaded with libgqa-fake-cuda.so as its CUDA driver, launches
// the PTX and metadata gqa-compile wrote into $GQA_FAKE_KERNELS_DIR
// (test/Target/fake-driver.test): prefill, split decode with the runtime's
// workspace, with the caller's and with one split, paged decode, a ragged
// batch with packed K/V, the f32 kernel and the merge_states kernels. The fake
// checks each cuLaunchKernel against the PTX's `.entry` signature; these tests
// check what it recorded against the metadata (each parameter's value by name
// at its PTX position, its width against its type), the grids computed here
// from the configuration, and the order of the stream's operations. Metadata
// that lies about the PTX (two parameters swapped, a grid off by one tile, a
// workspace outside any allocation) must be caught.
//
//===----------------------------------------------------------------------===//

#include "FakeDriverLoader.h"

#include "KernelMetadata.h"
#include "gqa/Runtime/Runtime.h"

#include "gtest/gtest.h"

#include <array>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

using namespace gqa::runtime;
using gqa::runtime::test::allocateMergeArrays;
using gqa::runtime::test::FakeDriver;
using gqa::runtime::test::getMergeParameterValues;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

class FakeDriverTest : public testing::Test {
protected:
  void SetUp() override {
    const char *dir = std::getenv("GQA_FAKE_KERNELS_DIR");
    const char *library = std::getenv(GQA_CUDA_DRIVER_LIBRARY_ENV);
    if (!dir || !library)
      GTEST_SKIP() << "run by test/Target/fake-driver.test (needs "
                      "GQA_FAKE_KERNELS_DIR and GQA_CUDA_DRIVER_LIBRARY)";
    kernels = dir;
    ASSERT_TRUE(fake.load(library)) << dlerror();
    ASSERT_EQ(gqa_runtime_create(0, &runtime), GQA_SUCCESS)
        << gqa_last_error_message();
    fake.reset();
  }
  void TearDown() override {
    for (gqa_kernel kernel : loaded)
      gqa_kernel_destroy(kernel);
    gqa_runtime_destroy(runtime);
  }

  /// Loads `<name>.ptx` and its metadata, as given or with `edit` applied
  /// to the JSON text; `metadata` is the file's own (the truth about the
  /// PTX).
  gqa_kernel load(const std::string &name, KernelMetadata &metadata,
                  const std::function<void(std::string &)> &edit = {}) {
    std::string ptx = readFile(kernels + "/" + name + ".ptx");
    std::string json = readFile(kernels + "/" + name + ".json");
    EXPECT_TRUE(parseKernelMetadata(json, metadata).ok());
    if (edit)
      edit(json);
    gqa_kernel kernel = nullptr;
    EXPECT_EQ(gqa_kernel_load(runtime, ptx.data(), ptx.size(), json.data(),
                              json.size(), &kernel),
              GQA_SUCCESS)
        << gqa_last_error_message();
    loaded.push_back(kernel);
    return kernel;
  }

  /// Arguments with every tensor allocated at its size.
  gqa_launch_args makeArgs(const KernelMetadata &metadata, int64_t batch,
                           int64_t seqQ, int64_t seqKV) {
    const gqa_kernel_config &c = metadata.config;
    int64_t element = c.dtype == GQA_DTYPE_F32 ? 4 : 2;
    gqa_launch_args args = {};
    args.batch = batch;
    args.seq_q = seqQ;
    args.seq_kv = seqKV;
    args.q_heads = c.q_heads;
    args.kv_heads = c.kv_heads;
    args.head_dim = c.head_dim;
    args.head_dim_v = c.head_dim_v;
    args.dtype = c.dtype;
    args.layout = c.layout;
    int64_t keys = batch * seqKV * c.kv_heads;
    if (c.page_size) {
      args.num_pages = batch * ceilDiv(seqKV, c.page_size) + 2;
      keys = args.num_pages * c.page_size * c.kv_heads;
      args.block_table =
          pointer(fake.alloc(4 * batch * ceilDiv(seqKV, c.page_size)));
    }
    args.q =
        pointer(fake.alloc(batch * seqQ * c.q_heads * c.head_dim * element));
    args.k = pointer(fake.alloc(keys * c.head_dim * element));
    args.v = pointer(fake.alloc(keys * c.head_dim_v * element));
    args.out =
        pointer(fake.alloc(batch * seqQ * c.q_heads * c.head_dim_v * element));
    if (c.kv_lens != GQA_KV_LENS_NONE)
      args.kv_lens = pointer(fake.alloc(4 * batch));
    return args;
  }
  static void *pointer(uint64_t address) {
    return reinterpret_cast<void *>(static_cast<uintptr_t>(address));
  }
  static uint64_t address(const void *pointer) {
    return reinterpret_cast<uintptr_t>(pointer);
  }

  /// How launch `index` differs from a launch of `spec` (by name) with
  /// `grid` and parameters of the widths of their types and of the values
  /// `values` gives by name; empty when it does not.
  std::vector<std::string>
  launchMismatches(int index, const KernelSpec &spec,
                   const std::array<unsigned, 3> &grid,
                   const std::map<std::string, uint64_t> &values) {
    std::vector<std::string> out;
    const gqa_fake_launch *launch = fake.launch(index);
    if (!launch)
      return {"no launch " + std::to_string(index)};
    if (launch->kernel != spec.name)
      out.push_back(std::string("kernel ") + launch->kernel + ", not " +
                    spec.name);
    for (int d = 0; d < 3; ++d)
      if (launch->grid[d] != grid[d])
        out.push_back("grid " + std::to_string(d) + " is " +
                      std::to_string(launch->grid[d]) + ", not " +
                      std::to_string(grid[d]));
    if (launch->num_params != static_cast<int>(spec.params.size()))
      return {"the PTX entry takes " + std::to_string(launch->num_params) +
              " parameters, the metadata " +
              std::to_string(spec.params.size())};
    for (size_t i = 0; i < spec.params.size(); ++i) {
      const KernelParam &param = spec.params[i];
      std::string what =
          "parameter " + std::to_string(i) + " (" + param.name + ")";
      if (launch->param_bytes[i] != (param.type == ParamType::I32 ? 4 : 8))
        out.push_back(what + " has " + std::to_string(launch->param_bytes[i]) +
                      " bytes in the PTX");
      auto expected = values.find(param.name);
      if (expected == values.end())
        out.push_back(what + ": no expectation");
      else if (launch->params[i] != expected->second)
        out.push_back(what + " is " + std::to_string(launch->params[i]) +
                      ", not " + std::to_string(expected->second));
    }
    return out;
  }

  void expectLaunch(int index, const KernelSpec &spec,
                    const std::array<unsigned, 3> &grid,
                    const std::map<std::string, uint64_t> &values) {
    std::vector<std::string> mismatches =
        launchMismatches(index, spec, grid, values);
    std::string text;
    for (const std::string &mismatch : mismatches)
      text += "\n  " + mismatch;
    EXPECT_TRUE(mismatches.empty()) << spec.name << ":" << text;
  }

  /// The expected values of the tensor and size parameters of `args`.
  static std::map<std::string, uint64_t> valuesOf(const gqa_launch_args &args,
                                                  int64_t numSplits) {
    return {{"q", address(args.q)},
            {"k", address(args.k)},
            {"v", address(args.v)},
            {"out", address(args.out)},
            {"kv_lens", address(args.kv_lens)},
            {"block_table", address(args.block_table)},
            {"batch", uint64_t(args.batch)},
            {"seq_q", uint64_t(args.seq_q)},
            {"seq_kv", uint64_t(args.seq_kv)},
            {"num_pages", uint64_t(args.num_pages)},
            {"cu_seqlens_q", address(args.cu_seqlens_q)},
            {"cu_seqlens_k", address(args.cu_seqlens_k)},
            {"total_q", uint64_t(args.total_q)},
            {"total_kv", uint64_t(args.total_kv)},
            {"num_splits", uint64_t(numSplits)}};
  }

  /// Checks the split and combine launches of a split-KV launch of `args`
  /// planned as `plan` with the runtime's workspace: the partial arrays in
  /// one allocation at the plan's offset, large enough for every split's
  /// rows; each kernel's grid and parameters.
  void expectSplitAndCombine(const KernelMetadata &m,
                             const gqa_launch_args &args,
                             const gqa_launch_plan &plan) {
    ASSERT_EQ(fake.launchCount(), 2);
    const KernelSpec &split = m.kernels[0];
    std::map<std::string, uint64_t> values = valuesOf(args, plan.num_splits);
    for (size_t i = 0; i < split.params.size(); ++i)
      if (split.params[i].name.rfind("partial_", 0) == 0)
        values[split.params[i].name] = fake.launch(0)->params[i];
    uint64_t partialOut = values["partial_out"];
    uint64_t partialLse = values["partial_lse"];
    expectLaunch(0, split, attentionGrid(m, args, plan.num_splits), values);
    const gqa_kernel_config &c = m.config;
    uint64_t rows = uint64_t(plan.num_splits) * args.batch * c.q_heads;
    EXPECT_EQ(partialLse, partialOut + plan.partial_lse_offset);
    EXPECT_GE(fake.bytesFrom(partialOut), rows * c.head_dim_v * 4);
    EXPECT_GE(fake.bytesFrom(partialLse), rows * 4);
    // The combine: one thread per 4 values of a row, its rows over blocks,
    // one block row per batch entry.
    int64_t threads = m.kernels[1].block[0];
    expectLaunch(
        1, m.kernels[1],
        {unsigned(ceilDiv(c.q_heads * args.seq_q * c.head_dim_v / 4, threads)),
         unsigned(args.batch), 1},
        values);
  }

  /// The main/split kernel's grid: packed rows over BM, KV heads (times the
  /// splits), batch.
  static std::array<unsigned, 3> attentionGrid(const KernelMetadata &m,
                                               const gqa_launch_args &args,
                                               int64_t numSplits) {
    int64_t rows = args.seq_q * m.config.group_size;
    return {unsigned(ceilDiv(rows, m.tiling.block_m)),
            unsigned(m.config.kv_heads * numSplits), unsigned(args.batch)};
  }

  std::string kernels;
  FakeDriver fake;
  gqa_runtime runtime = nullptr;
  std::vector<gqa_kernel> loaded;
};

TEST_F(FakeDriverTest, Prefill) {
  KernelMetadata m;
  gqa_kernel kernel = load("prefill", m);
  gqa_launch_args args = makeArgs(m, 2, 300, 300);
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  ASSERT_EQ(fake.launchCount(), 1);
  expectLaunch(0, m.kernels[0], attentionGrid(m, args, 1), valuesOf(args, 1));
  EXPECT_EQ(fake.launch(0)->block[0], m.kernels[0].block[0]);
  EXPECT_EQ(fake.launch(0)->dynamic_shared_memory_bytes,
            m.kernels[0].dynamicSharedMemoryBytes);
}

TEST_F(FakeDriverTest, SplitDecodeWithTheRuntimesWorkspace) {
  KernelMetadata m;
  gqa_kernel kernel = load("split", m);
  gqa_launch_args args = makeArgs(m, 3, 1, 5000);
  args.stream = reinterpret_cast<void *>(uintptr_t{0xabc0});
  gqa_launch_plan plan;
  ASSERT_EQ(gqa_kernel_plan(kernel, &args, &plan), GQA_SUCCESS);
  ASSERT_GT(plan.num_splits, 1);
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  expectSplitAndCombine(m, args, plan);
  // On the caller's stream, after the workspace's last use, in order.
  EXPECT_EQ(fake.streamLog(),
            std::string("wait event 1 on stream 1\n"
                        "launch gqa_attention_fwd_split on stream 1\n"
                        "launch gqa_attention_combine on stream 1\n"
                        "record event 1 on stream 1\n"));
}

TEST_F(FakeDriverTest, SplitDecodeWithTheCallersWorkspaceAndOneSplit) {
  KernelMetadata m;
  gqa_kernel kernel = load("split", m);
  gqa_launch_args args = makeArgs(m, 3, 1, 5000);
  gqa_launch_plan plan;
  ASSERT_EQ(gqa_kernel_plan(kernel, &args, &plan), GQA_SUCCESS);
  args.workspace = pointer(fake.alloc(plan.workspace_bytes));
  args.workspace_bytes = plan.workspace_bytes;
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  std::map<std::string, uint64_t> values = valuesOf(args, plan.num_splits);
  values["partial_out"] = address(args.workspace);
  values["partial_lse"] = address(args.workspace) + plan.partial_lse_offset;
  expectLaunch(0, m.kernels[0], attentionGrid(m, args, plan.num_splits),
               values);
  EXPECT_EQ(std::string(fake.streamLog()).find("wait"), std::string::npos);

  // Prefill-sized: one split, the split kernel alone, no workspace.
  fake.reset();
  gqa_launch_args prefill = makeArgs(m, 2, 300, 300);
  ASSERT_EQ(gqa_kernel_plan(kernel, &prefill, &plan), GQA_SUCCESS);
  ASSERT_EQ(plan.num_splits, 1);
  ASSERT_EQ(gqa_kernel_launch(kernel, &prefill), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  ASSERT_EQ(fake.launchCount(), 1);
  values = valuesOf(prefill, 1);
  values["partial_out"] = values["partial_lse"] = 0;
  expectLaunch(0, m.kernels[0], attentionGrid(m, prefill, 1), values);
}

TEST_F(FakeDriverTest, PagedDecode) {
  KernelMetadata m;
  gqa_kernel kernel = load("paged", m);
  gqa_launch_args args = makeArgs(m, 4, 1, 70 * m.config.page_size);
  gqa_launch_plan plan;
  ASSERT_EQ(gqa_kernel_plan(kernel, &args, &plan), GQA_SUCCESS);
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  ASSERT_GT(plan.num_splits, 1);
  expectSplitAndCombine(m, args, plan);
}

TEST_F(FakeDriverTest, RaggedBatchWithPackedKV) {
  // 3 sequences, 23 query tokens (the longest 17) against 9000 packed keys
  // (the longest 5000): split-KV over max_seqlen_k, the workspace padded to
  // max_seqlen_q per sequence.
  KernelMetadata m;
  gqa_kernel kernel = load("packed", m);
  const gqa_kernel_config &c = m.config;
  gqa_launch_args args = makeArgs(m, 3, 17, 5000);
  args.total_q = 23;
  args.total_kv = 9000;
  args.q = pointer(fake.alloc(23 * c.q_heads * c.head_dim * 2));
  args.out = pointer(fake.alloc(23 * c.q_heads * c.head_dim_v * 2));
  args.k = pointer(fake.alloc(9000 * c.kv_heads * c.head_dim * 2));
  args.v = pointer(fake.alloc(9000 * c.kv_heads * c.head_dim_v * 2));
  args.cu_seqlens_q = pointer(fake.alloc(4 * 4));
  args.cu_seqlens_k = pointer(fake.alloc(4 * 4));
  gqa_launch_plan plan;
  ASSERT_EQ(gqa_kernel_plan(kernel, &args, &plan), GQA_SUCCESS)
      << gqa_last_error_message();
  ASSERT_GT(plan.num_splits, 1);
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  expectSplitAndCombine(m, args, plan);
}

TEST_F(FakeDriverTest, F32Kernel) {
  KernelMetadata m;
  gqa_kernel kernel = load("f32", m);
  gqa_launch_args args = makeArgs(m, 2, 77, 130);
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  ASSERT_EQ(fake.launchCount(), 1);
  expectLaunch(0, m.kernels[0], attentionGrid(m, args, 1), valuesOf(args, 1));
}

/// Merge arguments for `metadata` (a merge set) with every array allocated
/// at its size: `batch` entries of `seqQ` rows (or, varlen, seqQ tokens).
gqa_merge_args makeMergeArgs(FakeDriver &fake, const KernelMetadata &metadata,
                             int64_t batch, int64_t seqQ) {
  const gqa_merge_config &c = metadata.mergeConfig;
  gqa_merge_args args = {};
  args.batch = batch;
  args.seq_q = seqQ;
  args.heads = c.heads;
  args.head_dim_v = c.head_dim_v;
  args.dtype = c.dtype;
  args.layout = c.layout;
  allocateMergeArrays(fake, args);
  return args;
}

TEST_F(FakeDriverTest, MergeStates) {
  // 64 heads of 128 bf16 values, bshd: 4 rows of 128 threads per CTA over
  // the S * 64 rows of each batch entry (z).
  KernelMetadata m;
  gqa_kernel kernel = load("merge", m);
  ASSERT_EQ(m.kernels.size(), 1u);
  gqa_merge_args args = makeMergeArgs(fake, m, 3, 37);
  ASSERT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  ASSERT_EQ(fake.launchCount(), 1);
  expectLaunch(0, m.kernels[0], {unsigned(ceilDiv(37 * 64, 4)), 1, 3},
               getMergeParameterValues(args));
  EXPECT_EQ(fake.launch(0)->block[0], 128u);
  EXPECT_EQ(fake.launch(0)->dynamic_shared_memory_bytes, 0u);

  // In place: out is out_a.
  fake.reset();
  args.out = const_cast<void *>(args.out_a);
  ASSERT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  expectLaunch(0, m.kernels[0], {unsigned(ceilDiv(37 * 64, 4)), 1, 3},
               getMergeParameterValues(args));
}

TEST_F(FakeDriverTest, MergeStatesOfPackedTokens) {
  // 8 heads of 64 f16 values, 29 packed tokens: a batch of one, 8 rows per
  // CTA.
  KernelMetadata m;
  gqa_kernel kernel = load("merge-varlen", m);
  ASSERT_TRUE(m.mergeConfig.varlen);
  gqa_merge_args args = makeMergeArgs(fake, m, 1, 29);
  ASSERT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  ASSERT_EQ(fake.launchCount(), 1);
  expectLaunch(0, m.kernels[0], {unsigned(ceilDiv(29 * 8, 8)), 1, 1},
               getMergeParameterValues(args));
}

/// Replaces the first `from` in `text` with `to`.
void replaceFirst(std::string &text, const std::string &from,
                  const std::string &to) {
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

TEST_F(FakeDriverTest, CatchesASwappedParameter) {
  // Metadata naming seq_q where the PTX takes seq_kv and the reverse: the
  // launch binds them swapped, and the values at their PTX positions show it.
  KernelMetadata m;
  gqa_kernel kernel = load("prefill", m, [](std::string &json) {
    replaceFirst(json, "\"name\": \"seq_q\"", "\"name\": \"SEQ_Q\"");
    replaceFirst(json, "\"name\": \"seq_kv\"", "\"name\": \"seq_q\"");
    replaceFirst(json, "\"name\": \"SEQ_Q\"", "\"name\": \"seq_kv\"");
  });
  gqa_launch_args args = makeArgs(m, 2, 300, 301);
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS);
  EXPECT_EQ(launchMismatches(0, m.kernels[0], attentionGrid(m, args, 1),
                             valuesOf(args, 1)),
            (std::vector<std::string>{"parameter 5 (seq_q) is 301, not 300",
                                      "parameter 6 (seq_kv) is 300, not 301"}));
}

TEST_F(FakeDriverTest, RefusesALaunchWithFewerParametersThanTheEntry) {
  // Metadata that leaves out the entry's last parameter: the runtime binds
  // one fewer, and the fake refuses the launch.
  KernelMetadata m;
  gqa_kernel kernel = load("prefill", m, [](std::string &json) {
    replaceFirst(json,
                 ",\n        {\n          \"name\": \"seq_kv\",\n          "
                 "\"type\": \"i64\"\n        }",
                 "");
  });
  gqa_launch_args args = makeArgs(m, 2, 300, 300);
  EXPECT_EQ(gqa_kernel_launch(kernel, &args), GQA_ERROR_CUDA);
  EXPECT_EQ(std::string(fake.violation()),
            "cuLaunchKernel('gqa_attention_fwd'): kernelParams[6] is NULL, but "
            "the entry takes 7 parameters");
}

TEST_F(FakeDriverTest, CatchesAWrongGridAndAWorkspaceOutsideAnyAllocation) {
  KernelMetadata m;
  gqa_kernel kernel = load("prefill", m, [](std::string &json) {
    replaceFirst(json, "\"div\": 64", "\"div\": 32");
  });
  gqa_launch_args args = makeArgs(m, 2, 300, 300);
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS);
  EXPECT_EQ(launchMismatches(0, m.kernels[0], attentionGrid(m, args, 1),
                             valuesOf(args, 1)),
            std::vector<std::string>{"grid 0 is 75, not 38"});

  KernelMetadata split;
  gqa_kernel decode = load("split", split);
  gqa_launch_args decodeArgs = makeArgs(split, 3, 1, 5000);
  gqa_launch_plan plan;
  ASSERT_EQ(gqa_kernel_plan(decode, &decodeArgs, &plan), GQA_SUCCESS);
  decodeArgs.workspace = pointer(0x1000); // no allocation
  decodeArgs.workspace_bytes = plan.workspace_bytes;
  EXPECT_EQ(gqa_kernel_launch(decode, &decodeArgs), GQA_ERROR_CUDA);
  EXPECT_NE(std::string(fake.violation()).find("is in no allocation"),
            std::string::npos)
      << fake.violation();
}

} // namespace
