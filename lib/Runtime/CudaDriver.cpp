//===- CudaDriver.cpp - The CUDA driver API, opened at run time -----------===//

#include "CudaDriver.h"

#include <cstdlib>
#include <dlfcn.h>

namespace gqa::runtime::cuda {

namespace {

/// Looks `symbol` up in `library` into `function`; false if it is missing.
template <typename Function>
bool resolve(void *library, const char *symbol, Function &function) {
  function = reinterpret_cast<Function>(dlsym(library, symbol));
  return function != nullptr;
}

/// The names of the codes a driver that cannot work (a stub library, no
/// device) returns even from cuGetErrorName.
const char *getFallbackErrorName(CUresult result) {
  switch (result) {
  case CUDA_ERROR_OUT_OF_MEMORY:
    return "CUDA_ERROR_OUT_OF_MEMORY";
  case CUDA_ERROR_NOT_INITIALIZED:
    return "CUDA_ERROR_NOT_INITIALIZED";
  case CUDA_ERROR_STUB_LIBRARY:
    return "CUDA_ERROR_STUB_LIBRARY";
  case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
    return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
  case CUDA_ERROR_NO_DEVICE:
    return "CUDA_ERROR_NO_DEVICE";
  case CUDA_ERROR_INVALID_DEVICE:
    return "CUDA_ERROR_INVALID_DEVICE";
  default:
    return nullptr;
  }
}

} // namespace

Status CudaDriver::load(const char *library) {
  if (!library)
    library = std::getenv(GQA_CUDA_DRIVER_LIBRARY_ENV);
  if (!library || !*library)
    library = kDefaultDriverLibrary;
  libraryName = library;
  void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *reason = dlerror();
    return Status::failure(GQA_ERROR_DRIVER_UNAVAILABLE,
                           "cannot load the CUDA driver library '" +
                               libraryName + "' (" +
                               (reason ? reason : "unknown reason") +
                               "); is an NVIDIA driver installed?");
  }
  struct EntryPoint {
    const char *symbol;
    bool resolved;
  };
  const EntryPoint entryPoints[] = {
#define GQA_CUDA_ENTRY_POINT(member, symbol, parameters)                       \
  {symbol, resolve(handle, symbol, member)},
#include "CudaDriverSymbols.def"
  };
  for (const EntryPoint &entryPoint : entryPoints) {
    if (entryPoint.resolved)
      continue;
    dlclose(handle);
    return Status::failure(GQA_ERROR_DRIVER_UNAVAILABLE,
                           "the CUDA driver library '" + libraryName +
                               "' lacks the entry point " + entryPoint.symbol +
                               " (the driver is too old, or it is not a "
                               "CUDA driver)");
  }
  return Status::success();
}

std::string CudaDriver::describe(CUresult result) const {
  const char *name = nullptr, *text = nullptr;
  if (cuGetErrorName && cuGetErrorName(result, &name) != CUDA_SUCCESS)
    name = nullptr;
  if (cuGetErrorString && cuGetErrorString(result, &text) != CUDA_SUCCESS)
    text = nullptr;
  if (!name)
    name = getFallbackErrorName(result);
  std::string description =
      name ? std::string(name) : "CUresult " + std::to_string(result);
  if (text)
    description += " (" + std::string(text) + ")";
  else if (name)
    description += " (CUresult " + std::to_string(result) + ")";
  return description;
}

Status CudaDriver::check(CUresult result, std::string_view call) const {
  if (result == CUDA_SUCCESS)
    return Status::success();
  return Status::failure(result == CUDA_ERROR_OUT_OF_MEMORY
                             ? GQA_ERROR_OUT_OF_MEMORY
                             : GQA_ERROR_CUDA,
                         std::string(call) + " failed: " + describe(result));
}

ScopedContext::ScopedContext(const CudaDriver &driver, CUcontext context)
    : driver(driver) {
  CUcontext current = nullptr;
  result = driver.cuCtxGetCurrent(&current);
  if (result != CUDA_SUCCESS) {
    failedCall = "cuCtxGetCurrent";
    return;
  }
  if (current == context)
    return;
  result = driver.cuCtxPushCurrent(context);
  failedCall = "cuCtxPushCurrent";
  pushed = result == CUDA_SUCCESS;
}

ScopedContext::~ScopedContext() {
  if (!pushed)
    return;
  CUcontext popped;
  (void)driver.cuCtxPopCurrent(&popped);
}

} // namespace gqa::runtime::cuda
