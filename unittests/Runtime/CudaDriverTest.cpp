//===- CudaDriverTest.cpp - Opening the driver and describing errors ------===//

#include "CudaDriver.h"
#include "DeviceRuntime.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <cstdlib>

using namespace gqa::runtime;
using namespace gqa::runtime::cuda;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

TEST(CudaDriverTest, ReportsAMissingLibrary) {
  CudaDriver driver;
  Status status = driver.load("/nonexistent/libcuda.so.1");
  EXPECT_EQ(status.getCode(), GQA_ERROR_DRIVER_UNAVAILABLE);
  EXPECT_TRUE(contains(status.getMessage(),
                       "cannot load the CUDA driver library "
                       "'/nonexistent/libcuda.so.1' ("))
      << status.getMessage();
  EXPECT_TRUE(contains(status.getMessage(), "No such file or directory"))
      << status.getMessage();
  EXPECT_TRUE(contains(status.getMessage(), "is an NVIDIA driver installed?"));
}

TEST(CudaDriverTest, ReadsTheLibraryFromTheEnvironment) {
  ASSERT_EQ(setenv(GQA_CUDA_DRIVER_LIBRARY_ENV, "/nonexistent/libcuda-env.so",
                   /*overwrite=*/1),
            0);
  CudaDriver driver;
  Status status = driver.load(nullptr);
  unsetenv(GQA_CUDA_DRIVER_LIBRARY_ENV);
  EXPECT_EQ(status.getCode(), GQA_ERROR_DRIVER_UNAVAILABLE);
  EXPECT_EQ(driver.libraryName, "/nonexistent/libcuda-env.so");
  EXPECT_TRUE(contains(status.getMessage(), "'/nonexistent/libcuda-env.so'"));
}

TEST(CudaDriverTest, DefaultsToLibcudaSo1) {
  unsetenv(GQA_CUDA_DRIVER_LIBRARY_ENV);
  CudaDriver driver;
  (void)driver.load(nullptr);
  EXPECT_EQ(driver.libraryName, "libcuda.so.1");
}

TEST(CudaDriverTest, ReportsALibraryThatIsNoDriver) {
  CudaDriver driver;
  Status status = driver.load("libm.so.6");
  EXPECT_EQ(status.getCode(), GQA_ERROR_DRIVER_UNAVAILABLE);
  EXPECT_EQ(status.getMessage(),
            "the CUDA driver library 'libm.so.6' lacks the entry point cuInit "
            "(the driver is too old, or it is not a CUDA driver)");
}

TEST(CudaDriverTest, DescribesErrorsWithoutADriver) {
  CudaDriver driver; // Not loaded: only the built-in names are known.
  EXPECT_EQ(driver.describe(CUDA_ERROR_NO_DEVICE),
            "CUDA_ERROR_NO_DEVICE (CUresult 100)");
  EXPECT_EQ(driver.describe(CUDA_ERROR_STUB_LIBRARY),
            "CUDA_ERROR_STUB_LIBRARY (CUresult 34)");
  EXPECT_EQ(driver.describe(12345), "CUresult 12345");
}

TEST(CudaDriverTest, ChecksResults) {
  CudaDriver driver;
  EXPECT_TRUE(driver.check(CUDA_SUCCESS, "cuInit").ok());
  Status status = driver.check(CUDA_ERROR_NO_DEVICE, "cuDeviceGet(0)");
  EXPECT_EQ(status.getCode(), GQA_ERROR_CUDA);
  EXPECT_EQ(status.getMessage(),
            "cuDeviceGet(0) failed: CUDA_ERROR_NO_DEVICE (CUresult 100)");
  status = driver.check(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc");
  EXPECT_EQ(status.getCode(), GQA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(status.getMessage(),
            "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (CUresult 2)");
}

TEST(CudaDriverTest, RuntimeNeedsADriver) {
  std::shared_ptr<DeviceRuntime> runtime;
  Status status =
      DeviceRuntime::create(0, "/nonexistent/libcuda.so.1", runtime);
  EXPECT_EQ(status.getCode(), GQA_ERROR_DRIVER_UNAVAILABLE);
  EXPECT_EQ(runtime, nullptr);
  status = DeviceRuntime::create(-1, nullptr, runtime);
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(status.getMessage(), "the device ordinal must be >= 0, not -1");
}

#ifdef GQA_TEST_CUDA_STUB_LIBRARY
// The toolkit's stub libcuda has every entry point, and every call fails with
// CUDA_ERROR_STUB_LIBRARY, even cuGetErrorName: a machine without a GPU seen
// through a driver that loads. The stub's soname is libcuda.so.1 and a loaded
// driver stays loaded, so it runs in a child process: a later
// dlopen("libcuda.so.1") in this one must find the real driver.
TEST(CudaDriverTest, ReportsTheStubLibrary) {
  EXPECT_EXIT(
      {
        CudaDriver driver;
        Status status = driver.load(GQA_TEST_CUDA_STUB_LIBRARY);
        if (!status.ok()) {
          std::fprintf(stderr, "load: %s\n", status.getMessage().c_str());
          std::exit(1);
        }
        std::fprintf(
            stderr, "check: %s\n",
            driver.check(driver.cuInit(0), "cuInit").getMessage().c_str());
        std::shared_ptr<DeviceRuntime> runtime;
        status = DeviceRuntime::create(0, GQA_TEST_CUDA_STUB_LIBRARY, runtime);
        std::fprintf(stderr, "create: %d %s %s\n", status.getCode(),
                     status.getMessage().c_str(), runtime ? "runtime" : "none");
        std::exit(0);
      },
      testing::ExitedWithCode(0),
      "check: cuInit failed: CUDA_ERROR_STUB_LIBRARY \\(CUresult 34\\)\n"
      "create: 5 cuInit failed: CUDA_ERROR_STUB_LIBRARY \\(CUresult 34\\) "
      "none");
}
#endif

} // namespace
