//===- CudaDriver.h - The CUDA driver API, opened at run time ---*- C++ -*-===//
//
// The runtime links nothing of CUDA: it dlopens the driver library and looks
// up the entry points it uses. The few driver types and constants it needs
// are declared here (values from cuda.h; a unit test checks them against
// cuda.h where one is installed), so it builds without the CUDA toolkit.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_RUNTIME_CUDADRIVER_H
#define GQA_RUNTIME_CUDADRIVER_H

#include "Status.h"

#include <string>
#include <string_view>

namespace gqa::runtime::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;
using CUjit_option = int;
using CUdevice_attribute = int;
using CUfunction_attribute = int;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr CUresult CUDA_ERROR_NOT_INITIALIZED = 3;
constexpr CUresult CUDA_ERROR_STUB_LIBRARY = 34;
constexpr CUresult CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_INVALID_DEVICE = 101;

constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER = 3;
constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

constexpr CUfunction_attribute CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES =
    8;

constexpr unsigned CU_EVENT_DISABLE_TIMING = 0x2;

/// Dynamic shared memory above this needs
/// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES raised first.
constexpr unsigned kDefaultMaxDynamicSharedMemoryBytes = 48 * 1024;

/// The driver library dlopened when neither the caller nor
/// $GQA_CUDA_DRIVER_LIBRARY names one.
constexpr const char *kDefaultDriverLibrary = "libcuda.so.1";

/// The entry points the runtime uses, resolved from an opened driver library
/// (the `_v2` symbols where cuda.h maps a name to one). The library stays
/// loaded for the life of the process, as the CUDA runtime's does.
struct CudaDriver {
  /// dlopens `library` (nullptr: $GQA_CUDA_DRIVER_LIBRARY, else
  /// kDefaultDriverLibrary) and resolves every entry point. Fails with
  /// GQA_ERROR_DRIVER_UNAVAILABLE naming the library and the reason.
  Status load(const char *library);

  /// "CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed)"; for a code the
  /// driver cannot describe, "CUresult 34", with the name where known.
  std::string describe(CUresult result) const;

  /// Success for CUDA_SUCCESS; otherwise "<call> failed: <describe>", as
  /// GQA_ERROR_OUT_OF_MEMORY for CUDA_ERROR_OUT_OF_MEMORY, else
  /// GQA_ERROR_CUDA.
  Status check(CUresult result, std::string_view call) const;

  std::string libraryName;

  // The entry points (CudaDriverSymbols.def).
#define GQA_CUDA_ENTRY_POINT(member, symbol, parameters)                       \
  CUresult(*member) parameters = nullptr;
#include "CudaDriverSymbols.def"
};

/// Makes a context current on the calling thread for a scope, pushing it only
/// if it is not current already, and restores the previous one at the end.
/// It allocates nothing unless asked for its status, so destructors can use
/// it.
class ScopedContext {
public:
  ScopedContext(const CudaDriver &driver, CUcontext context);
  ~ScopedContext();
  ScopedContext(const ScopedContext &) = delete;
  ScopedContext &operator=(const ScopedContext &) = delete;

  /// Whether the context is current.
  bool isCurrent() const { return result == CUDA_SUCCESS; }
  /// Why it is not, as a Status.
  Status getStatus() const { return driver.check(result, failedCall); }

private:
  const CudaDriver &driver;
  bool pushed = false;
  CUresult result = CUDA_SUCCESS;
  const char *failedCall = "";
};

} // namespace gqa::runtime::cuda

#endif // GQA_RUNTIME_CUDADRIVER_H
