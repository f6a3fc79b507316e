//===- MergeStatesLaunchTest.cpp - Merge launches through the fake driver -===//
//
// gqa_kernel_merge_states, with libgqa-fake-cuda.so as the CUDA driver: the
// fake checks each cuLaunchKernel against the `.entry` signature of the PTX
// (its parameter count and widths, its `.ptr` parameters inside
// allocations), and these tests check what it recorded: the grid, each
// parameter's value by its metadata name at its PTX position, the stream.
// gqa-compile does not write merge kernels yet, so the PTX is a stand-in
// with the contract's signature (the fake reads nothing else); once it does,
// test/Target/fake-driver.test can launch the real one the same way.
//
//===----------------------------------------------------------------------===//

#include "FakeDriverLoader.h"
#include "KernelMetadata.h"
#include "TestMetadata.h"

#include "gqa/Runtime/Runtime.h"

#include "gtest/gtest.h"

#include <map>
#include <string>
#include <vector>

using namespace gqa::runtime;
using namespace gqa::runtime::test;

namespace {

/// PTX with one `.entry` named `name` taking `pointers` `.ptr` parameters,
/// then one integer parameter of each width (bits) of `sizes`. Not a
/// kernel: its body is empty.
std::string stubPtx(const std::string &name, int pointers,
                    const std::vector<int> &sizes) {
  std::string ptx = "// A stand-in: the fake driver reads only the entry.\n"
                    ".version 8.0\n.target sm_90\n.address_size 64\n\n"
                    ".visible .entry " +
                    name + "(\n";
  int index = 0;
  auto param = [&](const std::string &type) {
    ptx += std::string(index ? ",\n" : "") + "\t.param " + type + " " + name +
           "_param_" + std::to_string(index);
    ++index;
  };
  for (int i = 0; i < pointers; ++i)
    param(".u64 .ptr .global .align 16");
  for (int bits : sizes)
    param(".u" + std::to_string(bits));
  return ptx + "\n)\n.maxntid 128, 1, 1\n{\n\tret;\n}\n";
}

class MergeStatesLaunchTest : public testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(fake.load(GQA_TEST_FAKE_CUDA_LIBRARY)) << dlerror();
    ASSERT_EQ(
        gqa_runtime_create_with_driver(0, GQA_TEST_FAKE_CUDA_LIBRARY, &runtime),
        GQA_SUCCESS)
        << gqa_last_error_message();
    fake.reset();
  }
  void TearDown() override {
    for (gqa_kernel kernel : loaded)
      gqa_kernel_destroy(kernel);
    gqa_runtime_destroy(runtime);
  }

  gqa_kernel load(const std::string &ptx, std::string_view json) {
    gqa_kernel kernel = nullptr;
    EXPECT_EQ(gqa_kernel_load(runtime, ptx.data(), ptx.size(), json.data(),
                              json.size(), &kernel),
              GQA_SUCCESS)
        << gqa_last_error_message();
    loaded.push_back(kernel);
    documents[kernel] = std::string(json);
    return kernel;
  }
  gqa_kernel loadMerge() {
    return load(stubPtx("gqa_merge_states", 6, {64, 64}), kMergeExample);
  }

  /// Arguments of the contract's example (64 heads of 128 bf16 values)
  /// with every array allocated at its size.
  gqa_merge_args allocatedArgs(int64_t batch, int64_t seqQ) {
    gqa_merge_args args = {};
    args.batch = batch;
    args.seq_q = seqQ;
    args.heads = 64;
    args.head_dim_v = 128;
    args.dtype = GQA_DTYPE_BF16;
    args.layout = GQA_LAYOUT_BSHD;
    allocateMergeArrays(fake, args);
    return args;
  }
  static void *pointer(uint64_t address) {
    return reinterpret_cast<void *>(static_cast<uintptr_t>(address));
  }
  static uint64_t address(const void *pointer) {
    return reinterpret_cast<uintptr_t>(pointer);
  }

  /// Checks launch `index` against the metadata `kernel` was loaded with:
  /// the grid and block, and each parameter's width and value by name.
  void expectLaunch(int index, gqa_kernel kernel, const gqa_merge_args &args,
                    const std::array<unsigned, 3> &grid) {
    const gqa_fake_launch *launch = fake.launch(index);
    ASSERT_NE(launch, nullptr);
    KernelMetadata metadata;
    ASSERT_TRUE(parseKernelMetadata(documents.at(kernel), metadata).ok());
    const KernelSpec &spec = metadata.kernels[0];
    EXPECT_EQ(std::string(launch->kernel), spec.name);
    for (int d = 0; d < 3; ++d) {
      EXPECT_EQ(launch->grid[d], grid[d]) << "grid " << d;
      EXPECT_EQ(launch->block[d], spec.block[d]) << "block " << d;
    }
    const std::map<std::string, uint64_t> values =
        getMergeParameterValues(args);
    ASSERT_EQ(launch->num_params, static_cast<int>(spec.params.size()));
    for (size_t i = 0; i < spec.params.size(); ++i) {
      const KernelParam &param = spec.params[i];
      EXPECT_EQ(launch->param_bytes[i], param.type == ParamType::I32 ? 4 : 8)
          << param.name;
      EXPECT_EQ(launch->params[i], values.at(param.name)) << param.name;
    }
  }
  FakeDriver fake;
  gqa_runtime runtime = nullptr;
  std::vector<gqa_kernel> loaded;
  /// The metadata each kernel was loaded with.
  std::map<gqa_kernel, std::string> documents;
};

TEST_F(MergeStatesLaunchTest, LaunchesByNameAtThePtxPositions) {
  gqa_kernel kernel = loadMerge();
  gqa_kernel_set_kind kind = {};
  ASSERT_EQ(gqa_metadata_get_kind(gqa_kernel_metadata(kernel), &kind),
            GQA_SUCCESS);
  EXPECT_EQ(kind, GQA_KERNEL_SET_MERGE_STATES);

  gqa_merge_args args = allocatedArgs(2, 37);
  args.stream = pointer(0xabc0);
  ASSERT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  ASSERT_EQ(fake.launchCount(), 1);
  // ceil(37 * 64 / 4) CTAs of 4 rows, one row of them per batch entry.
  expectLaunch(0, kernel, args, {592, 1, 2});
  EXPECT_EQ(fake.launch(0)->stream, args.stream);
  EXPECT_EQ(fake.launch(0)->dynamic_shared_memory_bytes, 0u);
  // No workspace: nothing waited for or recorded.
  EXPECT_EQ(std::string(fake.streamLog()),
            "launch gqa_merge_states on stream 1\n");
}

TEST_F(MergeStatesLaunchTest, MergesInPlace) {
  gqa_kernel kernel = loadMerge();
  gqa_merge_args args = allocatedArgs(1, 5);
  args.out = const_cast<void *>(args.out_a);
  ASSERT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  expectLaunch(0, kernel, args, {80, 1, 1});
}

TEST_F(MergeStatesLaunchTest, HonoursI32Sizes) {
  std::string json(kMergeExample);
  for (const char *name : {"batch", "seq_q"}) {
    std::string from = std::string("\"name\": \"") + name + "\", \"type\": ";
    json.replace(json.find(from + "\"i64\""), from.size() + 5,
                 from + "\"i32\"");
  }
  gqa_kernel kernel = load(stubPtx("gqa_merge_states", 6, {32, 32}), json);
  gqa_merge_args args = allocatedArgs(3, 1);
  ASSERT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_SUCCESS)
      << gqa_last_error_message() << " / " << fake.violation();
  expectLaunch(0, kernel, args, {16, 1, 3});
  EXPECT_EQ(fake.launch(0)->param_bytes[7], 4);
}

TEST_F(MergeStatesLaunchTest, ChecksEverythingBeforeAnyDriverCall) {
  gqa_kernel kernel = loadMerge();
  gqa_merge_args args = allocatedArgs(2, 3);
  args.lse = const_cast<void *>(args.lse_b);
  EXPECT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(gqa_last_error_message()),
            "args.lse is args.lse_b: the merged log-sum-exps must not "
            "overwrite an input's (every thread of a row reads them)");
  args = allocatedArgs(2, 3);
  args.heads = 8;
  EXPECT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(gqa_last_error_message()),
            "args.heads is 8, but the kernel was compiled for config.heads = "
            "64");
  args = allocatedArgs(2, 3);
  args.out_b = nullptr;
  EXPECT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(gqa_last_error_message()), "args.out_b is NULL");
  EXPECT_EQ(fake.launchCount(), 0);
  EXPECT_EQ(std::string(fake.streamLog()), "");
}

TEST_F(MergeStatesLaunchTest, ReportsARefusedLaunch) {
  // Metadata that leaves out the entry's last parameter: the fake refuses
  // the launch, and the message names it and its shape.
  std::string json(kMergeExample);
  std::string last = ", { \"name\": \"seq_q\", \"type\": \"i64\" }";
  json.erase(json.find(last), last.size());
  gqa_kernel kernel = load(stubPtx("gqa_merge_states", 6, {64, 64}), json);
  gqa_merge_args args = allocatedArgs(1, 1);
  EXPECT_EQ(gqa_kernel_merge_states(kernel, &args), GQA_ERROR_CUDA);
  EXPECT_EQ(std::string(fake.violation()),
            "cuLaunchKernel('gqa_merge_states'): kernelParams[7] is NULL, but "
            "the entry takes 8 parameters");
  EXPECT_EQ(std::string(gqa_last_error_message())
                .rfind("cuLaunchKernel('gqa_merge_states', grid 16x1x1, block "
                       "128x1x1, 0 bytes of dynamic shared memory) failed: "
                       "CUDA_ERROR_INVALID_VALUE",
                       0),
            0u)
      << gqa_last_error_message();
}

TEST_F(MergeStatesLaunchTest, EachKindHasItsOwnEntryPoints) {
  gqa_kernel merge = loadMerge();
  gqa_kernel attention =
      load(stubPtx("gqa_attention_fwd", 4, {64, 64, 64}), kContractExample);
  gqa_kernel_set_kind kind = {};
  ASSERT_EQ(gqa_metadata_get_kind(gqa_kernel_metadata(attention), &kind),
            GQA_SUCCESS);
  EXPECT_EQ(kind, GQA_KERNEL_SET_ATTENTION);

  const std::string mergeRefusal =
      "a gqa.merge_states kernel set is launched with gqa_kernel_merge_states "
      "(and planned with gqa_plan_merge), not with gqa_launch_args";
  KernelMetadata attentionMetadata = parseValidMetadata(kContractExample);
  gqa_launch_args launchArgs = makeArgs(attentionMetadata, 1, 1, 1);
  EXPECT_EQ(gqa_kernel_launch(merge, &launchArgs), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(gqa_last_error_message(), mergeRefusal);
  gqa_launch_plan plan;
  EXPECT_EQ(gqa_kernel_plan(merge, &launchArgs, &plan),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(gqa_last_error_message(), mergeRefusal);
  uint64_t bytes = 1;
  EXPECT_EQ(gqa_kernel_workspace_bytes(merge, &launchArgs, &bytes),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(gqa_last_error_message(), mergeRefusal);
  EXPECT_EQ(bytes, 0u);

  gqa_merge_args args = allocatedArgs(1, 1);
  EXPECT_EQ(gqa_kernel_merge_states(attention, &args),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(gqa_last_error_message()),
            "an attention kernel set (gqa.kernel) is launched with "
            "gqa_kernel_launch (and planned with gqa_plan_launch), not with "
            "gqa_merge_args");
  EXPECT_EQ(gqa_kernel_merge_states(merge, nullptr),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(gqa_last_error_message()),
            "gqa_kernel_merge_states: args is NULL");
  EXPECT_EQ(fake.launchCount(), 0);
}

} // namespace
