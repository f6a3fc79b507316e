//===- DeviceRuntime.h - A device, its context and its modules --*- C++ -*-===//
//
// The part of the runtime that talks to the driver: the context used on a
// device, the cache of loaded modules, the split-KV workspace, and launching.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_RUNTIME_DEVICERUNTIME_H
#define GQA_RUNTIME_DEVICERUNTIME_H

#include "CudaDriver.h"
#include "KernelMetadata.h"
#include "Status.h"

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gqa::runtime {

class DeviceRuntime;

/// A module loaded into a runtime's context. Kernels share it through
/// shared_ptr; the last one to go unloads it.
class LoadedModule {
public:
  LoadedModule(std::shared_ptr<DeviceRuntime> runtime, cuda::CUmodule handle)
      : runtime(std::move(runtime)), handle(handle) {}
  ~LoadedModule();
  LoadedModule(const LoadedModule &) = delete;
  LoadedModule &operator=(const LoadedModule &) = delete;

  DeviceRuntime &getRuntime() const { return *runtime; }
  cuda::CUmodule getHandle() const { return handle; }

private:
  friend class DeviceRuntime;

  std::shared_ptr<DeviceRuntime> runtime;
  cuda::CUmodule handle;
  /// The dynamic shared memory limit set on each function so far (guarded by
  /// the runtime's module mutex); it is only ever raised.
  std::unordered_map<std::string, uint32_t> dynamicSharedMemoryLimits;
};

/// The functions of one metadata file, looked up in their module.
struct LoadedKernel {
  std::shared_ptr<LoadedModule> module;
  /// functions[i] runs metadata.kernels[i].
  std::array<cuda::CUfunction, GQA_MAX_LAUNCH_KERNELS> functions = {};
};

/// A device and the context the runtime uses on it. Thread-safe.
class DeviceRuntime : public std::enable_shared_from_this<DeviceRuntime> {
public:
  /// Opens the driver (`driverLibrary`, see CudaDriver::load), initialises
  /// it, and picks the context: the calling thread's current one if it
  /// belongs to the device, else the device's retained primary context.
  static Status create(int32_t ordinal, const char *driverLibrary,
                       std::shared_ptr<DeviceRuntime> &runtime);
  ~DeviceRuntime();
  DeviceRuntime(const DeviceRuntime &) = delete;
  DeviceRuntime &operator=(const DeviceRuntime &) = delete;

  const gqa_device_info &getDeviceInfo() const { return deviceInfo; }
  const cuda::CudaDriver &getDriver() const { return driver; }
  cuda::CUcontext getContext() const { return context; }

  /// Loads `ptx` (or reuses the live module loaded from the same bytes) and
  /// looks up the functions `metadata` names, raising their dynamic shared
  /// memory limit where they need more than the default 48 KiB.
  Status loadKernel(std::string_view ptx, const KernelMetadata &metadata,
                    LoadedKernel &kernel);

  /// Checks `args` completely, then queues the planned kernels on
  /// args.stream, with the caller's workspace or the runtime's.
  Status launch(const KernelMetadata &metadata, const LoadedKernel &kernel,
                const gqa_launch_args &args);

  /// Checks `args` completely (planMerge, validateMergePointers), then queues
  /// the merge kernel of a merge_states kernel set on args.stream.
  Status mergeStates(const KernelMetadata &metadata, const LoadedKernel &kernel,
                     const gqa_merge_args &args);

private:
  DeviceRuntime() = default;

  /// Loads a module or finds it cached; the module mutex is held and the
  /// context current.
  Status loadModule(std::string_view ptx,
                    std::shared_ptr<LoadedModule> &module);

  /// Makes the runtime's workspace at least `bytes` large and orders
  /// `stream` after the launches that used it before. The workspace mutex is
  /// held and the context current.
  Status acquireWorkspace(uint64_t bytes, cuda::CUstream stream,
                          cuda::CUdeviceptr &workspace);

  Status launchKernels(const KernelMetadata &metadata,
                       const LoadedKernel &kernel, const gqa_launch_args &args,
                       const gqa_launch_plan &plan, uint64_t workspace) const;

  /// One cuLaunchKernel of `function` as `launch` says, on `stream`; the
  /// context is current.
  Status launchKernel(cuda::CUfunction function,
                      const gqa_kernel_launch_config &launch,
                      cuda::CUstream stream, void **params) const;

  cuda::CudaDriver driver;
  cuda::CUdevice device = 0;
  cuda::CUcontext context = nullptr;
  bool retainedPrimaryContext = false;
  gqa_device_info deviceInfo = {};

  /// Guards `modules` and the modules' shared memory limits.
  std::mutex moduleMutex;
  /// Modules by PTX text; entries whose module is gone are purged on load.
  std::unordered_map<std::string, std::weak_ptr<LoadedModule>> modules;

  /// Guards the workspace, from its acquisition to the event recorded after
  /// the launch.
  std::mutex workspaceMutex;
  /// The runtime's split-KV workspace and an event recorded after each
  /// launch that used it.
  cuda::CUdeviceptr workspace = 0;
  uint64_t workspaceBytes = 0;
  cuda::CUevent workspaceLastUse = nullptr;
};

} // namespace gqa::runtime

#endif // GQA_RUNTIME_DEVICERUNTIME_H
