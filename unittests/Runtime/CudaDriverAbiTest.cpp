//===- CudaDriverAbiTest.cpp - CudaDriver.h against cuda.h ----------------===//
//
// Built only where a CUDA toolkit provides cuda.h: the driver types and
// constants the runtime declares itself must be the toolkit's.
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"

#include <cuda.h>

#include "gtest/gtest.h"

#include <type_traits>

namespace ours = gqa::runtime::cuda;

static_assert(sizeof(ours::CUresult) == sizeof(::CUresult));
static_assert(std::is_same_v<ours::CUdevice, ::CUdevice>);
static_assert(std::is_same_v<ours::CUdeviceptr, ::CUdeviceptr>);
static_assert(sizeof(ours::CUjit_option) == sizeof(::CUjit_option));
static_assert(sizeof(ours::CUdevice_attribute) == sizeof(::CUdevice_attribute));
static_assert(sizeof(ours::CUfunction_attribute) ==
              sizeof(::CUfunction_attribute));

static_assert(ours::CUDA_SUCCESS == ::CUDA_SUCCESS);
static_assert(ours::CUDA_ERROR_OUT_OF_MEMORY == ::CUDA_ERROR_OUT_OF_MEMORY);
static_assert(ours::CUDA_ERROR_NOT_INITIALIZED == ::CUDA_ERROR_NOT_INITIALIZED);
static_assert(ours::CUDA_ERROR_STUB_LIBRARY == ::CUDA_ERROR_STUB_LIBRARY);
static_assert(ours::CUDA_ERROR_SYSTEM_DRIVER_MISMATCH ==
              ::CUDA_ERROR_SYSTEM_DRIVER_MISMATCH);
static_assert(ours::CUDA_ERROR_NO_DEVICE == ::CUDA_ERROR_NO_DEVICE);
static_assert(ours::CUDA_ERROR_INVALID_DEVICE == ::CUDA_ERROR_INVALID_DEVICE);

static_assert(ours::CU_JIT_INFO_LOG_BUFFER == ::CU_JIT_INFO_LOG_BUFFER);
static_assert(ours::CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES ==
              ::CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES);
static_assert(ours::CU_JIT_ERROR_LOG_BUFFER == ::CU_JIT_ERROR_LOG_BUFFER);
static_assert(ours::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES ==
              ::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES);

static_assert(ours::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT ==
              ::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
static_assert(ours::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ==
              ::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
static_assert(ours::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ==
              ::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
static_assert(ours::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES ==
              ::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
static_assert(ours::CU_EVENT_DISABLE_TIMING == ::CU_EVENT_DISABLE_TIMING);

namespace {

TEST(CudaDriverAbiTest, MatchesCudaH) {
  // The checks are the static_asserts above; this records that they ran.
  SUCCEED() << "checked against CUDA " << CUDA_VERSION;
}

} // namespace
