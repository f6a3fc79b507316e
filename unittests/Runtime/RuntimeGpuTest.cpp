//===- RuntimeGpuTest.cpp - Loading and launching on a real GPU -----------===//
//
// These tests need a CUDA driver and device 0; without them they skip, unless
// GQA_REQUIRE_GPU=1 makes a missing GPU a failure (for runs on GPU machines).
// The kernels are the probes of Inputs/probe.cu, which record what they were
// given.
//
//===----------------------------------------------------------------------===//

#include "gqa/Runtime/Runtime.h"

#include "CudaDriver.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace gqa::runtime::cuda;

namespace {

const std::string kInputs = GQA_TEST_INPUTS_DIR;

/// The split-KV probe: gqa_probe_split runs one CTA per split and
/// gqa_probe_combine sums what they wrote; with one split, gqa_probe_split
/// writes the sums itself. 16-row KV tiles, up to 8 splits.
constexpr std::string_view kSplitProbeMetadata = R"json({
  "format": "gqa.kernel", "version": 3, "chip": "sm_75", "ptx": "probe.ptx",
  "config": {
    "q_heads": 4, "kv_heads": 2, "group_size": 2, "head_dim": 8,
    "head_dim_v": 8, "dtype": "f32", "layout": "bhsd", "mask": "none",
    "window_left": -1, "window_right": -1, "scale": 0.35355339059327373,
    "softcap": 0.0, "kv_lens": "none", "page_size": 0, "sinks": false, "lse": false, "varlen": false, "packed_kv": false, "batch": null, "seq_q": null,
    "seq_kv": null
  },
  "tile": { "block_m": 4, "block_n": 16, "warps": 1, "stages": 1,
            "pack_gqa": false },
  "split_kv": { "max_splits": 8 },
  "kernels": [
    { "name": "gqa_probe_split", "role": "split", "block": [32, 1, 1],
      "dynamic_shared_memory_bytes": 0, "static_shared_memory_bytes": 0,
      "grid": [ { "sym": "num_splits" }, { "const": 1 }, { "const": 1 } ],
      "params": [ { "name": "q", "type": "ptr" }, { "name": "k", "type": "ptr" },
                  { "name": "v", "type": "ptr" },
                  { "name": "out", "type": "ptr" },
                  { "name": "partial_out", "type": "ptr" },
                  { "name": "partial_lse", "type": "ptr" },
                  { "name": "num_splits", "type": "i32" } ] },
    { "name": "gqa_probe_combine", "role": "combine", "block": [32, 1, 1],
      "dynamic_shared_memory_bytes": 0, "static_shared_memory_bytes": 0,
      "grid": [ { "const": 1 }, { "const": 1 }, { "const": 1 } ],
      "params": [ { "name": "partial_out", "type": "ptr" },
                  { "name": "partial_lse", "type": "ptr" },
                  { "name": "out", "type": "ptr" },
                  { "name": "num_splits", "type": "i64" } ] }
  ]
})json";

bool isGpuRequired() {
  const char *value = std::getenv("GQA_REQUIRE_GPU");
  return value && *value && std::strcmp(value, "0") != 0;
}

std::string readInput(const std::string &name) {
  std::ifstream file(kInputs + "/" + name, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::string lastError() { return gqa_last_error_message(); }

/// The driver calls the tests make themselves: memory and streams.
struct TestDriver {
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxPushCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxPopCurrent)(CUcontext *) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t) = nullptr;
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t) = nullptr;
  CUresult (*cuStreamCreate)(CUstream *, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream) = nullptr;

  bool load() {
    const char *name = std::getenv(GQA_CUDA_DRIVER_LIBRARY_ENV);
    void *library =
        dlopen(name && *name ? name : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    return library &&
           resolve(library, "cuDevicePrimaryCtxRetain",
                   cuDevicePrimaryCtxRetain) &&
           resolve(library, "cuDevicePrimaryCtxRelease_v2",
                   cuDevicePrimaryCtxRelease) &&
           resolve(library, "cuCtxPushCurrent_v2", cuCtxPushCurrent) &&
           resolve(library, "cuCtxPopCurrent_v2", cuCtxPopCurrent) &&
           resolve(library, "cuCtxSynchronize", cuCtxSynchronize) &&
           resolve(library, "cuMemAlloc_v2", cuMemAlloc) &&
           resolve(library, "cuMemFree_v2", cuMemFree) &&
           resolve(library, "cuMemsetD8_v2", cuMemsetD8) &&
           resolve(library, "cuMemcpyDtoH_v2", cuMemcpyDtoH) &&
           resolve(library, "cuStreamCreate", cuStreamCreate) &&
           resolve(library, "cuStreamDestroy_v2", cuStreamDestroy);
  }

  template <typename Function>
  static bool resolve(void *library, const char *symbol, Function &function) {
    function = reinterpret_cast<Function>(dlsym(library, symbol));
    return function != nullptr;
  }
};

class RuntimeGpuTest : public testing::Test {
protected:
  void SetUp() override {
    if (gqa_runtime_create(0, &runtime) != GQA_SUCCESS) {
      std::string reason = lastError();
      runtime = nullptr;
      if (isGpuRequired())
        FAIL() << "GQA_REQUIRE_GPU is set, but: " << reason;
      GTEST_SKIP() << "no GPU: " << reason;
    }
    ASSERT_TRUE(driver.load());
    // Hold the primary context for the whole test, which may release the
    // runtime before its allocations, and make it current for them.
    CUcontext primary = nullptr;
    ASSERT_EQ(driver.cuDevicePrimaryCtxRetain(&primary, 0), CUDA_SUCCESS);
    retainedPrimaryContext = true;
    void *context = nullptr;
    ASSERT_EQ(gqa_runtime_get_context(runtime, &context), GQA_SUCCESS);
    ASSERT_EQ(context, static_cast<void *>(primary));
    ASSERT_EQ(driver.cuCtxPushCurrent(primary), CUDA_SUCCESS);
    contextPushed = true;
  }

  void TearDown() override {
    for (CUdeviceptr allocation : allocations)
      (void)driver.cuMemFree(allocation);
    if (contextPushed) {
      CUcontext popped;
      (void)driver.cuCtxPopCurrent(&popped);
    }
    gqa_runtime_destroy(runtime);
    if (retainedPrimaryContext)
      (void)driver.cuDevicePrimaryCtxRelease(0);
  }

  /// Zeroed device memory, freed at the end of the test.
  CUdeviceptr allocate(size_t bytes) {
    CUdeviceptr pointer = 0;
    EXPECT_EQ(driver.cuMemAlloc(&pointer, bytes), CUDA_SUCCESS);
    EXPECT_EQ(driver.cuMemsetD8(pointer, 0, bytes), CUDA_SUCCESS);
    allocations.push_back(pointer);
    return pointer;
  }

  template <typename T> std::vector<T> download(CUdeviceptr pointer, size_t n) {
    EXPECT_EQ(driver.cuCtxSynchronize(), CUDA_SUCCESS);
    std::vector<T> values(n);
    EXPECT_EQ(driver.cuMemcpyDtoH(values.data(), pointer, n * sizeof(T)),
              CUDA_SUCCESS);
    return values;
  }

  gqa_kernel loadMainProbe() {
    gqa_kernel kernel = nullptr;
    std::string path = kInputs + "/probe_main.json";
    EXPECT_EQ(gqa_kernel_load_files(runtime, nullptr, path.c_str(), &kernel),
              GQA_SUCCESS)
        << lastError();
    return kernel;
  }

  gqa_kernel loadSplitProbe() {
    gqa_kernel kernel = nullptr;
    std::string ptx = readInput("probe.ptx");
    EXPECT_EQ(gqa_kernel_load(runtime, ptx.data(), ptx.size(),
                              kSplitProbeMetadata.data(),
                              kSplitProbeMetadata.size(), &kernel),
              GQA_SUCCESS)
        << lastError();
    return kernel;
  }

  /// Arguments for the probes' config: f32, bhsd, 4 query and 2 KV heads of
  /// dim 8; q, k and v 256 bytes apart in one allocation.
  gqa_launch_args makeArgs(int64_t batch, int64_t seqQ, int64_t seqKV,
                           CUdeviceptr out) {
    CUdeviceptr tensors = allocate(3 * 256);
    gqa_launch_args args = {};
    args.q = reinterpret_cast<const void *>(tensors);
    args.k = reinterpret_cast<const void *>(tensors + 256);
    args.v = reinterpret_cast<const void *>(tensors + 512);
    args.out = reinterpret_cast<void *>(out);
    args.batch = batch;
    args.seq_q = seqQ;
    args.seq_kv = seqKV;
    args.q_heads = 4;
    args.kv_heads = 2;
    args.head_dim = 8;
    args.head_dim_v = 8;
    args.dtype = GQA_DTYPE_F32;
    args.layout = GQA_LAYOUT_BHSD;
    return args;
  }

  /// Launches the split probe and checks what the combine kernel summed.
  void expectSplitLaunch(gqa_kernel kernel, gqa_launch_args args,
                         int64_t expectedSplits) {
    gqa_launch_plan plan;
    ASSERT_EQ(gqa_kernel_plan(kernel, &args, &plan), GQA_SUCCESS)
        << lastError();
    ASSERT_EQ(plan.num_splits, expectedSplits);
    // One split: the split kernel alone, without workspace.
    ASSERT_EQ(plan.num_kernels, expectedSplits == 1 ? 1 : 2);
    ASSERT_EQ(plan.workspace_bytes == 0, expectedSplits == 1);
    ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS) << lastError();
    std::vector<float> out =
        download<float>(reinterpret_cast<CUdeviceptr>(args.out), 3);
    float n = static_cast<float>(expectedSplits);
    EXPECT_EQ(out[0], n * (n + 1) / 2); // partial_lse: 1 + 2 + ... + n
    EXPECT_EQ(out[1], n * (n + 1));     // partial_out: 2 + 4 + ... + 2n
    EXPECT_EQ(out[2], n);               // num_splits
  }

  gqa_runtime runtime = nullptr;
  TestDriver driver;
  bool retainedPrimaryContext = false;
  bool contextPushed = false;
  std::vector<CUdeviceptr> allocations;
};

TEST_F(RuntimeGpuTest, DescribesTheDevice) {
  gqa_device_info info;
  ASSERT_EQ(gqa_runtime_get_device_info(runtime, &info), GQA_SUCCESS);
  EXPECT_EQ(info.ordinal, 0);
  EXPECT_GT(info.sm_count, 0);
  EXPECT_GE(info.compute_capability_major, 7);
}

TEST_F(RuntimeGpuTest, LaunchesOneKernelWithItsParameters) {
  gqa_kernel kernel = loadMainProbe();
  ASSERT_NE(kernel, nullptr);
  // grid = (ceil(10 / 4), 3, 2): 18 CTAs, each writing 8 int64 values.
  const int64_t ctas = 3 * 3 * 2;
  CUdeviceptr out = allocate(ctas * 8 * sizeof(int64_t));
  gqa_launch_args args = makeArgs(2, 10, 77, out);
  gqa_launch_plan plan;
  ASSERT_EQ(gqa_kernel_plan(kernel, &args, &plan), GQA_SUCCESS) << lastError();
  EXPECT_EQ(plan.kernels[0].grid[0] * plan.kernels[0].grid[1] *
                plan.kernels[0].grid[2],
            ctas);
  // 64 KiB of dynamic shared memory: the runtime must have raised the limit.
  ASSERT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS) << lastError();

  std::vector<int64_t> records = download<int64_t>(out, ctas * 8);
  for (int64_t cta = 0; cta < ctas; ++cta) {
    const int64_t *record = &records[cta * 8];
    EXPECT_EQ(record[0], 2) << "batch, CTA " << cta;
    EXPECT_EQ(record[1], 10) << "seq_q, CTA " << cta;
    EXPECT_EQ(record[2], 77) << "seq_kv (i32), CTA " << cta;
    EXPECT_EQ(record[3], 256) << "k - q, CTA " << cta;
    EXPECT_EQ(record[4], 512) << "v - q, CTA " << cta;
    EXPECT_EQ(record[5], cta + 1) << "shared memory, CTA " << cta;
    EXPECT_EQ(record[6], 64) << "block, CTA " << cta;
  }
  gqa_kernel_destroy(kernel);
}

TEST_F(RuntimeGpuTest, LaunchesSplitAndCombine) {
  gqa_kernel kernel = loadSplitProbe();
  ASSERT_NE(kernel, nullptr);
  CUdeviceptr out = allocate(3 * sizeof(float));
  // 1024 keys are 64 tiles; a handful of CTAs never fills the GPU, so the
  // plan takes max_splits.
  expectSplitLaunch(kernel, makeArgs(1, 1, 1024, out), 8);
  // 20 keys are 2 tiles: 2 splits, in the workspace already allocated.
  expectSplitLaunch(kernel, makeArgs(1, 1, 20, out), 2);
  // 10 keys are 1 tile: the split kernel alone writes the output.
  expectSplitLaunch(kernel, makeArgs(1, 1, 10, out), 1);

  // On a stream of the caller's.
  CUstream stream = nullptr;
  ASSERT_EQ(driver.cuStreamCreate(&stream, 0), CUDA_SUCCESS);
  gqa_launch_args onStream = makeArgs(1, 1, 100, out); // 7 tiles
  onStream.stream = stream;
  expectSplitLaunch(kernel, onStream, 7);

  // With a workspace of the caller's.
  gqa_launch_args withWorkspace = makeArgs(1, 1, 1024, out);
  uint64_t bytes = 0;
  ASSERT_EQ(gqa_kernel_workspace_bytes(kernel, &withWorkspace, &bytes),
            GQA_SUCCESS);
  EXPECT_GT(bytes, 0u);
  withWorkspace.workspace = reinterpret_cast<void *>(allocate(bytes));
  withWorkspace.workspace_bytes = bytes;
  withWorkspace.stream = stream;
  expectSplitLaunch(kernel, withWorkspace, 8);
  EXPECT_EQ(driver.cuStreamDestroy(stream), CUDA_SUCCESS);
  gqa_kernel_destroy(kernel);
}

TEST_F(RuntimeGpuTest, SharesTheModuleOfTheSamePtx) {
  gqa_kernel main = loadMainProbe();
  gqa_kernel split = loadSplitProbe();
  ASSERT_NE(main, nullptr);
  ASSERT_NE(split, nullptr);
  void *mainModule = nullptr, *splitModule = nullptr;
  ASSERT_EQ(gqa_kernel_get_module(main, &mainModule), GQA_SUCCESS);
  ASSERT_EQ(gqa_kernel_get_module(split, &splitModule), GQA_SUCCESS);
  EXPECT_NE(mainModule, nullptr);
  EXPECT_EQ(mainModule, splitModule);
  gqa_kernel_destroy(main);
  gqa_kernel_destroy(split);

  // Unloaded with its last kernel, and loaded again on demand.
  gqa_kernel again = loadMainProbe();
  ASSERT_NE(again, nullptr);
  CUdeviceptr out = allocate(8 * sizeof(int64_t) * 3);
  gqa_launch_args args = makeArgs(1, 1, 1, out);
  EXPECT_EQ(gqa_kernel_launch(again, &args), GQA_SUCCESS) << lastError();
  EXPECT_EQ(download<int64_t>(out, 1)[0], 1);
  gqa_kernel_destroy(again);
}

TEST_F(RuntimeGpuTest, KernelsOutliveTheRuntimeHandle) {
  gqa_kernel kernel = loadMainProbe();
  ASSERT_NE(kernel, nullptr);
  gqa_runtime_destroy(runtime);
  runtime = nullptr;
  CUdeviceptr out = allocate(8 * sizeof(int64_t) * 3);
  gqa_launch_args args = makeArgs(1, 3, 5, out);
  EXPECT_EQ(gqa_kernel_launch(kernel, &args), GQA_SUCCESS) << lastError();
  EXPECT_EQ(download<int64_t>(out, 3)[1], 3);
  gqa_kernel_destroy(kernel);
}

TEST_F(RuntimeGpuTest, ReportsJitErrorsWithTheLog) {
  const std::string ptx = ".version 7.0\n"
                          ".target sm_75\n"
                          ".address_size 64\n"
                          ".visible .entry gqa_probe_main()\n"
                          "{\n"
                          "  bogus.instruction %r1;\n"
                          "  ret;\n"
                          "}\n";
  std::string json = readInput("probe_main.json");
  gqa_kernel kernel = nullptr;
  EXPECT_EQ(gqa_kernel_load(runtime, ptx.data(), ptx.size(), json.data(),
                            json.size(), &kernel),
            GQA_ERROR_CUDA);
  EXPECT_EQ(kernel, nullptr);
  std::string message = lastError();
  EXPECT_EQ(
      message.rfind("cuModuleLoadDataEx failed: CUDA_ERROR_INVALID_PTX", 0), 0u)
      << message;
  EXPECT_NE(message.find("line 6"), std::string::npos) << message;
}

TEST_F(RuntimeGpuTest, ReportsMissingFunctions) {
  std::string json(kSplitProbeMetadata);
  json.replace(json.find("gqa_probe_combine"), 17, "gqa_probe_missing");
  std::string ptx = readInput("probe.ptx");
  gqa_kernel kernel = nullptr;
  EXPECT_EQ(gqa_kernel_load(runtime, ptx.data(), ptx.size(), json.data(),
                            json.size(), &kernel),
            GQA_ERROR_CUDA);
  EXPECT_EQ(lastError().rfind("cuModuleGetFunction('gqa_probe_missing') "
                              "failed: CUDA_ERROR_NOT_FOUND",
                              0),
            0u)
      << lastError();
}

TEST_F(RuntimeGpuTest, RefusesChipsTheDeviceCannotRun) {
  std::string json(kSplitProbeMetadata);
  json.replace(json.find("sm_75"), 5, "sm_990");
  std::string ptx = readInput("probe.ptx");
  gqa_kernel kernel = nullptr;
  EXPECT_EQ(gqa_kernel_load(runtime, ptx.data(), ptx.size(), json.data(),
                            json.size(), &kernel),
            GQA_ERROR_UNSUPPORTED_DEVICE);
  EXPECT_NE(lastError().find("the kernel was compiled for sm_990"),
            std::string::npos)
      << lastError();
}

TEST_F(RuntimeGpuTest, ReportsUnreadableFiles) {
  gqa_kernel kernel = nullptr;
  EXPECT_EQ(
      gqa_kernel_load_files(runtime, nullptr, "/nonexistent/k.json", &kernel),
      GQA_ERROR_IO);
  EXPECT_EQ(lastError(),
            "cannot read '/nonexistent/k.json': No such file or directory");
  std::string json = kInputs + "/probe_main.json";
  EXPECT_EQ(gqa_kernel_load_files(runtime, "/nonexistent/k.ptx", json.c_str(),
                                  &kernel),
            GQA_ERROR_IO);
  EXPECT_EQ(lastError(),
            "cannot read '/nonexistent/k.ptx': No such file or directory");
}

TEST_F(RuntimeGpuTest, ChecksArgumentsBeforeLaunching) {
  gqa_kernel kernel = loadMainProbe();
  ASSERT_NE(kernel, nullptr);
  CUdeviceptr out = allocate(64);
  gqa_launch_args args = makeArgs(1, 1, 1, out);
  args.q = nullptr;
  EXPECT_EQ(gqa_kernel_launch(kernel, &args), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "args.q is NULL");
  args = makeArgs(1, 1, 1, out);
  args.kv_heads = 4;
  EXPECT_EQ(gqa_kernel_launch(kernel, &args), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lastError(), "args.kv_heads is 4, but the kernel was compiled for "
                         "config.kv_heads = 2");
  gqa_kernel_destroy(kernel);
}

TEST_F(RuntimeGpuTest, AdoptsTheCurrentContext) {
  // The fixture made the runtime's (primary) context current; a second
  // runtime for the same device uses it too.
  gqa_runtime second = nullptr;
  ASSERT_EQ(gqa_runtime_create(0, &second), GQA_SUCCESS) << lastError();
  void *first = nullptr, *other = nullptr;
  ASSERT_EQ(gqa_runtime_get_context(runtime, &first), GQA_SUCCESS);
  ASSERT_EQ(gqa_runtime_get_context(second, &other), GQA_SUCCESS);
  EXPECT_EQ(first, other);
  gqa_runtime_destroy(second);
}

} // namespace
