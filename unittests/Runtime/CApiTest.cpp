//===- CApiTest.cpp - The C ABI without a GPU -----------------------------===//

#include "gqa/Runtime/Runtime.h"

#include "TestMetadata.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

using namespace gqa::runtime;
using namespace gqa::runtime::test;

namespace {

std::string lastError() { return gqa_last_error_message(); }

gqa_metadata parseMetadata(std::string_view json) {
  gqa_metadata metadata = nullptr;
  EXPECT_EQ(gqa_metadata_parse(json.data(), json.size(), &metadata),
            GQA_SUCCESS)
      << lastError();
  return metadata;
}

TEST(CApiTest, NamesEveryStatus) {
  EXPECT_STREQ(gqa_status_name(GQA_SUCCESS), "GQA_SUCCESS");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_INVALID_ARGUMENT),
               "GQA_ERROR_INVALID_ARGUMENT");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_INVALID_METADATA),
               "GQA_ERROR_INVALID_METADATA");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_IO), "GQA_ERROR_IO");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_DRIVER_UNAVAILABLE),
               "GQA_ERROR_DRIVER_UNAVAILABLE");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_CUDA), "GQA_ERROR_CUDA");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_UNSUPPORTED_DEVICE),
               "GQA_ERROR_UNSUPPORTED_DEVICE");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_OUT_OF_MEMORY),
               "GQA_ERROR_OUT_OF_MEMORY");
  EXPECT_STREQ(gqa_status_name(GQA_ERROR_INTERNAL), "GQA_ERROR_INTERNAL");
  EXPECT_STREQ(gqa_status_name(static_cast<gqa_status>(99)),
               "GQA_STATUS_UNKNOWN");
}

TEST(CApiTest, ReportsTheAbiVersion) {
  EXPECT_EQ(gqa_runtime_abi_version(), GQA_RUNTIME_ABI_VERSION);
  // 4: merge_states kernel sets (gqa_merge_args, gqa_kernel_merge_states).
  EXPECT_EQ(gqa_runtime_abi_version(), 4);
}

TEST(CApiTest, LastErrorIsPerThreadAndResetByEachCall) {
  gqa_metadata metadata = nullptr;
  EXPECT_EQ(gqa_metadata_parse("{", 1, &metadata), GQA_ERROR_INVALID_METADATA);
  EXPECT_EQ(metadata, nullptr);
  std::string message = lastError();
  EXPECT_EQ(message, "metadata: line 1, column 2: syntax error while parsing "
                     "object key - unexpected end of input; expected string "
                     "literal");

  std::string otherThreadMessage = "unset";
  std::thread([&] { otherThreadMessage = gqa_last_error_message(); }).join();
  EXPECT_EQ(otherThreadMessage, "");
  EXPECT_EQ(lastError(), message);

  metadata = parseMetadata(kContractExample);
  EXPECT_EQ(lastError(), "");
  gqa_metadata_destroy(metadata);
}

TEST(CApiTest, RejectsNullArguments) {
  gqa_metadata metadata = nullptr;
  gqa_kernel_config config;
  gqa_kernel_tiling tiling;
  gqa_launch_args args = {};
  gqa_launch_plan plan;
  gqa_device_info info;
  gqa_kernel kernel = nullptr;
  void *handle = nullptr;
  uint64_t bytes = 0;
  struct Case {
    std::function<gqa_status()> call;
    const char *message;
  };
  const Case cases[] = {
      {[&] { return gqa_metadata_parse(nullptr, 0, &metadata); },
       "gqa_metadata_parse: json is NULL"},
      {[&] { return gqa_metadata_parse("{}", 2, nullptr); },
       "gqa_metadata_parse: metadata is NULL"},
      {[&] { return gqa_metadata_get_config(nullptr, &config); },
       "gqa_metadata_get_config: metadata is NULL"},
      {[&] { return gqa_metadata_get_tiling(nullptr, &tiling); },
       "gqa_metadata_get_tiling: metadata is NULL"},
      {[&] { return gqa_plan_launch(nullptr, &args, 1, &plan); },
       "gqa_plan_launch: metadata is NULL"},
      {[&] { return gqa_runtime_create(0, nullptr); },
       "gqa_runtime_create: runtime is NULL"},
      {[&] { return gqa_runtime_get_device_info(nullptr, &info); },
       "gqa_runtime_get_device_info: runtime is NULL"},
      {[&] { return gqa_runtime_get_context(nullptr, &handle); },
       "gqa_runtime_get_context: runtime is NULL"},
      {[&] { return gqa_kernel_load(nullptr, "", 0, "", 0, &kernel); },
       "gqa_kernel_load: runtime is NULL"},
      {[&] {
         return gqa_kernel_load_files(nullptr, nullptr, "x.json", &kernel);
       },
       "gqa_kernel_load_files: runtime is NULL"},
      {[&] { return gqa_kernel_get_module(nullptr, &handle); },
       "gqa_kernel_get_module: kernel is NULL"},
      {[&] { return gqa_kernel_plan(nullptr, &args, &plan); },
       "gqa_kernel_plan: kernel is NULL"},
      {[&] { return gqa_kernel_workspace_bytes(nullptr, &args, &bytes); },
       "gqa_kernel_plan: kernel is NULL"},
      {[&] { return gqa_kernel_workspace_bytes(nullptr, &args, nullptr); },
       "gqa_kernel_workspace_bytes: workspace_bytes is NULL"},
      {[&] { return gqa_kernel_launch(nullptr, &args); },
       "gqa_kernel_launch: kernel is NULL"},
  };
  for (const Case &c : cases) {
    EXPECT_EQ(c.call(), GQA_ERROR_INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(lastError(), c.message);
  }
  EXPECT_EQ(metadata, nullptr);
  EXPECT_EQ(kernel, nullptr);

  // Destroying NULL is a no-op, and borrowed accessors tolerate NULL.
  gqa_metadata_destroy(nullptr);
  gqa_runtime_destroy(nullptr);
  gqa_kernel_destroy(nullptr);
  EXPECT_EQ(gqa_kernel_metadata(nullptr), nullptr);
  EXPECT_STREQ(gqa_metadata_chip(nullptr), "");
  EXPECT_STREQ(gqa_metadata_ptx_file(nullptr), "");
}

TEST(CApiTest, ExposesTheMetadata) {
  gqa_metadata metadata = parseMetadata(kSplitKVExample);
  ASSERT_NE(metadata, nullptr);
  EXPECT_STREQ(gqa_metadata_chip(metadata), "sm_90");
  EXPECT_STREQ(gqa_metadata_ptx_file(metadata), "decode.ptx");

  gqa_kernel_config config;
  ASSERT_EQ(gqa_metadata_get_config(metadata, &config), GQA_SUCCESS);
  EXPECT_EQ(config.q_heads, 32);
  EXPECT_EQ(config.kv_heads, 4);
  EXPECT_EQ(config.group_size, 8);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.head_dim_v, 64);
  EXPECT_EQ(config.dtype, GQA_DTYPE_F16);
  EXPECT_EQ(config.layout, GQA_LAYOUT_BHSD);
  EXPECT_EQ(config.mask, GQA_MASK_NONE);
  EXPECT_EQ(config.window_left, -1);
  EXPECT_EQ(config.window_right, -1);
  EXPECT_DOUBLE_EQ(config.scale, 0.125);
  EXPECT_DOUBLE_EQ(config.softcap, 30.0);
  EXPECT_EQ(config.kv_lens, GQA_KV_LENS_I32);
  EXPECT_EQ(config.batch, 0);
  EXPECT_EQ(config.seq_q, 1);
  EXPECT_EQ(config.seq_kv, 0);

  gqa_kernel_tiling tiling;
  ASSERT_EQ(gqa_metadata_get_tiling(metadata, &tiling), GQA_SUCCESS);
  EXPECT_EQ(tiling.block_m, 16);
  EXPECT_EQ(tiling.block_n, 128);
  EXPECT_EQ(tiling.warps, 4);
  EXPECT_EQ(tiling.stages, 2);
  EXPECT_EQ(tiling.pack_gqa, 1);
  EXPECT_EQ(tiling.max_splits, 16);
  gqa_metadata_destroy(metadata);
}

TEST(CApiTest, ParsesOnlyTheGivenBytes) {
  // The size bounds the text: a valid document cut short is malformed.
  gqa_metadata metadata = nullptr;
  EXPECT_EQ(gqa_metadata_parse(kContractExample.data(),
                               kContractExample.size() - 1, &metadata),
            GQA_ERROR_INVALID_METADATA);
  EXPECT_NE(lastError().find("unexpected end of input; expected '}'"),
            std::string::npos)
      << lastError();
}

TEST(CApiTest, RejectsInvalidMetadataNamingTheKey) {
  std::string json(kContractExample);
  json.replace(json.find("\"head_dim\": 128"), 15, "\"head_dim\": 12.8");
  gqa_metadata metadata = nullptr;
  EXPECT_EQ(gqa_metadata_parse(json.data(), json.size(), &metadata),
            GQA_ERROR_INVALID_METADATA);
  EXPECT_EQ(metadata, nullptr);
  EXPECT_EQ(lastError(),
            "metadata: key 'config.head_dim' must be an integer, not a number");
}

TEST(CApiTest, PlansWithoutAGpu) {
  gqa_metadata metadata = parseMetadata(kSplitKVExample);
  gqa_kernel_config config;
  ASSERT_EQ(gqa_metadata_get_config(metadata, &config), GQA_SUCCESS);
  gqa_launch_args args = {};
  args.batch = 8;
  args.seq_q = 1;
  args.seq_kv = 8192;
  args.q_heads = config.q_heads;
  args.kv_heads = config.kv_heads;
  args.head_dim = config.head_dim;
  args.head_dim_v = config.head_dim_v;
  args.dtype = config.dtype;
  args.layout = config.layout;
  gqa_launch_plan plan;
  ASSERT_EQ(gqa_plan_launch(metadata, &args, 132, &plan), GQA_SUCCESS)
      << lastError();
  EXPECT_EQ(plan.num_kernels, 2);
  EXPECT_EQ(plan.num_splits, 8);
  EXPECT_EQ(plan.workspace_bytes, 532480u);
  EXPECT_STREQ(plan.kernels[1].name, "gqa_decode_combine");

  args.head_dim = 64;
  EXPECT_EQ(gqa_plan_launch(metadata, &args, 132, &plan),
            GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "args.head_dim is 64, but the kernel was compiled "
                         "for config.head_dim = 128");
  gqa_metadata_destroy(metadata);
}

TEST(CApiTest, ReportsAMissingDriver) {
  gqa_runtime runtime = nullptr;
  EXPECT_EQ(
      gqa_runtime_create_with_driver(0, "/nonexistent/libcuda.so.1", &runtime),
      GQA_ERROR_DRIVER_UNAVAILABLE);
  EXPECT_EQ(runtime, nullptr);
  std::string message = lastError();
  EXPECT_EQ(message.rfind("creating the runtime for device 0: cannot load the "
                          "CUDA driver library '/nonexistent/libcuda.so.1' (",
                          0),
            0u)
      << message;
}

TEST(CApiTest, ReadsTheDriverLibraryFromTheEnvironment) {
  ASSERT_EQ(setenv(GQA_CUDA_DRIVER_LIBRARY_ENV,
                   "/nonexistent/libcuda-from-env.so.1", /*overwrite=*/1),
            0);
  gqa_runtime runtime = nullptr;
  gqa_status status = gqa_runtime_create(0, &runtime);
  unsetenv(GQA_CUDA_DRIVER_LIBRARY_ENV);
  EXPECT_EQ(status, GQA_ERROR_DRIVER_UNAVAILABLE);
  EXPECT_EQ(runtime, nullptr);
  EXPECT_NE(lastError().find("'/nonexistent/libcuda-from-env.so.1'"),
            std::string::npos)
      << lastError();
}

TEST(CApiTest, RejectsANegativeDeviceOrdinal) {
  gqa_runtime runtime = nullptr;
  EXPECT_EQ(gqa_runtime_create(-1, &runtime), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "creating the runtime for device -1: the device "
                         "ordinal must be >= 0, not -1");
}

#ifdef GQA_TEST_CUDA_STUB_LIBRARY
// In a child process: see CudaDriverTest.ReportsTheStubLibrary.
TEST(CApiTest, ReportsTheStubLibrary) {
  EXPECT_EXIT(
      {
        gqa_runtime runtime = nullptr;
        gqa_status status = gqa_runtime_create_with_driver(
            0, GQA_TEST_CUDA_STUB_LIBRARY, &runtime);
        std::fprintf(stderr, "%s: %s\n", gqa_status_name(status),
                     gqa_last_error_message());
        std::exit(runtime ? 1 : 0);
      },
      testing::ExitedWithCode(0),
      "GQA_ERROR_CUDA: creating the runtime for device 0: cuInit failed: "
      "CUDA_ERROR_STUB_LIBRARY \\(CUresult 34\\)");
}
#endif

} // namespace
