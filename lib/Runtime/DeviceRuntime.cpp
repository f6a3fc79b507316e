//===- DeviceRuntime.cpp - A device, its context and its modules ----------===//

#include "DeviceRuntime.h"
#include "LaunchPlan.h"

namespace gqa::runtime {

using namespace cuda;

namespace {

/// The size of each JIT log buffer.
constexpr size_t kJitLogBytes = 16 * 1024;

/// The runtime's workspace grows in steps of this.
constexpr uint64_t kWorkspaceGranularity = 1 << 20;

/// A JIT log without its trailing NULs and white space.
std::string_view trimLog(const char *log, size_t size) {
  std::string_view text(log, size);
  text = text.substr(0, text.find('\0'));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' ||
                           text.back() == '\r' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

} // namespace

LoadedModule::~LoadedModule() {
  const CudaDriver &driver = runtime->getDriver();
  ScopedContext scope(driver, runtime->getContext());
  if (scope.isCurrent())
    (void)driver.cuModuleUnload(handle);
}

Status DeviceRuntime::create(int32_t ordinal, const char *driverLibrary,
                             std::shared_ptr<DeviceRuntime> &runtime) {
  if (ordinal < 0)
    return Status::failure(GQA_ERROR_INVALID_ARGUMENT,
                           "the device ordinal must be >= 0, not " +
                               std::to_string(ordinal));
  std::shared_ptr<DeviceRuntime> created(new DeviceRuntime());
  CudaDriver &driver = created->driver;
  if (Status status = driver.load(driverLibrary); !status.ok())
    return status;
  if (Status status = driver.check(driver.cuInit(0), "cuInit"); !status.ok())
    return status;
  if (Status status =
          driver.check(driver.cuDeviceGet(&created->device, ordinal),
                       "cuDeviceGet(" + std::to_string(ordinal) + ")");
      !status.ok())
    return status;

  gqa_device_info &info = created->deviceInfo;
  info.ordinal = ordinal;
  struct Attribute {
    CUdevice_attribute attribute;
    const char *name;
    int32_t &value;
  };
  for (const Attribute &attribute :
       {Attribute{CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                  "MULTIPROCESSOR_COUNT", info.sm_count},
        Attribute{CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                  "COMPUTE_CAPABILITY_MAJOR", info.compute_capability_major},
        Attribute{CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                  "COMPUTE_CAPABILITY_MINOR", info.compute_capability_minor}})
    if (Status status = driver.check(
            driver.cuDeviceGetAttribute(&attribute.value, attribute.attribute,
                                        created->device),
            std::string("cuDeviceGetAttribute(") + attribute.name + ")");
        !status.ok())
      return status;

  CUcontext current = nullptr;
  if (Status status =
          driver.check(driver.cuCtxGetCurrent(&current), "cuCtxGetCurrent");
      !status.ok())
    return status;
  if (current) {
    CUdevice currentDevice;
    if (Status status = driver.check(driver.cuCtxGetDevice(&currentDevice),
                                     "cuCtxGetDevice");
        !status.ok())
      return status;
    if (currentDevice == created->device)
      created->context = current;
  }
  if (!created->context) {
    if (Status status = driver.check(
            driver.cuDevicePrimaryCtxRetain(&created->context, created->device),
            "cuDevicePrimaryCtxRetain");
        !status.ok())
      return status;
    created->retainedPrimaryContext = true;
  }
  runtime = std::move(created);
  return Status::success();
}

DeviceRuntime::~DeviceRuntime() {
  if (workspace || workspaceLastUse) {
    ScopedContext scope(driver, context);
    if (scope.isCurrent()) {
      if (workspaceLastUse)
        (void)driver.cuEventSynchronize(workspaceLastUse);
      if (workspace)
        (void)driver.cuMemFree(workspace);
      if (workspaceLastUse)
        (void)driver.cuEventDestroy(workspaceLastUse);
    }
  }
  if (retainedPrimaryContext)
    (void)driver.cuDevicePrimaryCtxRelease(device);
}

Status DeviceRuntime::loadModule(std::string_view ptx,
                                 std::shared_ptr<LoadedModule> &module) {
  for (auto it = modules.begin(); it != modules.end();) {
    if (it->second.expired())
      it = modules.erase(it);
    else
      ++it;
  }
  std::string image(ptx); // NUL-terminated, as the driver wants it.
  if (auto it = modules.find(image); it != modules.end()) {
    module = it->second.lock();
    return Status::success();
  }

  std::string errorLog(kJitLogBytes, '\0'), infoLog(kJitLogBytes, '\0');
  CUjit_option options[] = {
      CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
      CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
  void *optionValues[] = {
      errorLog.data(), reinterpret_cast<void *>(uintptr_t{kJitLogBytes}),
      infoLog.data(), reinterpret_cast<void *>(uintptr_t{kJitLogBytes})};
  CUmodule handle = nullptr;
  CUresult result = driver.cuModuleLoadDataEx(
      &handle, image.c_str(), sizeof(options) / sizeof(options[0]), options,
      optionValues);
  if (result != CUDA_SUCCESS) {
    Status status = driver.check(result, "cuModuleLoadDataEx");
    std::string message = status.getMessage();
    if (std::string_view log = trimLog(errorLog.data(), kJitLogBytes);
        !log.empty())
      message += ": " + std::string(log);
    if (std::string_view log = trimLog(infoLog.data(), kJitLogBytes);
        !log.empty())
      message += " (JIT info log: " + std::string(log) + ")";
    return Status::failure(status.getCode(), std::move(message));
  }
  module = std::make_shared<LoadedModule>(shared_from_this(), handle);
  modules.emplace(std::move(image), module);
  return Status::success();
}

Status DeviceRuntime::loadKernel(std::string_view ptx,
                                 const KernelMetadata &metadata,
                                 LoadedKernel &kernel) {
  if (Status status =
          checkChipSupported(metadata.chip, deviceInfo.compute_capability_major,
                             deviceInfo.compute_capability_minor);
      !status.ok())
    return std::move(status).withContext("device " +
                                         std::to_string(deviceInfo.ordinal));
  std::lock_guard<std::mutex> lock(moduleMutex);
  ScopedContext scope(driver, context);
  if (!scope.isCurrent())
    return scope.getStatus();
  if (Status status = loadModule(ptx, kernel.module); !status.ok())
    return status;

  for (size_t i = 0; i < metadata.kernels.size(); ++i) {
    const KernelSpec &spec = metadata.kernels[i];
    CUfunction &function = kernel.functions[i];
    if (Status status = driver.check(
            driver.cuModuleGetFunction(&function, kernel.module->handle,
                                       spec.name.c_str()),
            "cuModuleGetFunction('" + spec.name + "')");
        !status.ok())
      return status;
    uint32_t &limit = kernel.module->dynamicSharedMemoryLimits[spec.name];
    if (spec.dynamicSharedMemoryBytes <= kDefaultMaxDynamicSharedMemoryBytes ||
        spec.dynamicSharedMemoryBytes <= limit)
      continue;
    if (Status status = driver.check(
            driver.cuFuncSetAttribute(
                function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                static_cast<int>(spec.dynamicSharedMemoryBytes)),
            "cuFuncSetAttribute('" + spec.name +
                "', MAX_DYNAMIC_SHARED_SIZE_BYTES, " +
                std::to_string(spec.dynamicSharedMemoryBytes) + ")");
        !status.ok())
      return status;
    limit = spec.dynamicSharedMemoryBytes;
  }
  return Status::success();
}

Status DeviceRuntime::acquireWorkspace(uint64_t bytes, CUstream stream,
                                       CUdeviceptr &address) {
  if (!workspaceLastUse)
    if (Status status = driver.check(
            driver.cuEventCreate(&workspaceLastUse, CU_EVENT_DISABLE_TIMING),
            "cuEventCreate");
        !status.ok())
      return status;
  if (workspaceBytes < bytes) {
    if (workspace) {
      // Launches still queued may use the old workspace: let them finish.
      if (Status status =
              driver.check(driver.cuEventSynchronize(workspaceLastUse),
                           "cuEventSynchronize");
          !status.ok())
        return status;
      if (Status status =
              driver.check(driver.cuMemFree(workspace), "cuMemFree");
          !status.ok())
        return status;
      workspace = 0;
      workspaceBytes = 0;
    }
    uint64_t grownBytes = (bytes + kWorkspaceGranularity - 1) /
                          kWorkspaceGranularity * kWorkspaceGranularity;
    if (Status status =
            driver.check(driver.cuMemAlloc(&workspace, grownBytes),
                         "cuMemAlloc(" + std::to_string(grownBytes) +
                             " bytes of split-KV workspace)");
        !status.ok())
      return status;
    workspaceBytes = grownBytes;
  }
  address = workspace;
  return driver.check(driver.cuStreamWaitEvent(stream, workspaceLastUse, 0),
                      "cuStreamWaitEvent");
}

Status DeviceRuntime::launchKernel(CUfunction function,
                                   const gqa_kernel_launch_config &launch,
                                   CUstream stream, void **params) const {
  CUresult result = driver.cuLaunchKernel(
      function, launch.grid[0], launch.grid[1], launch.grid[2], launch.block[0],
      launch.block[1], launch.block[2], launch.dynamic_shared_memory_bytes,
      stream, params, nullptr);
  if (result == CUDA_SUCCESS)
    return Status::success();
  return driver.check(result,
                      "cuLaunchKernel('" + std::string(launch.name) +
                          "', grid " + std::to_string(launch.grid[0]) + "x" +
                          std::to_string(launch.grid[1]) + "x" +
                          std::to_string(launch.grid[2]) + ", block " +
                          std::to_string(launch.block[0]) + "x" +
                          std::to_string(launch.block[1]) + "x" +
                          std::to_string(launch.block[2]) + ", " +
                          std::to_string(launch.dynamic_shared_memory_bytes) +
                          " bytes of dynamic shared memory)");
}

Status DeviceRuntime::launchKernels(const KernelMetadata &metadata,
                                    const LoadedKernel &kernel,
                                    const gqa_launch_args &args,
                                    const gqa_launch_plan &plan,
                                    uint64_t workspace) const {
  auto stream = static_cast<CUstream>(args.stream);
  for (int32_t i = 0; i < plan.num_kernels; ++i) {
    KernelParamValues params;
    bindKernelParams(metadata.kernels[i], args, plan, workspace, params);
    if (Status status = launchKernel(kernel.functions[i], plan.kernels[i],
                                     stream, params.pointers.data());
        !status.ok())
      return status;
  }
  return Status::success();
}

Status DeviceRuntime::launch(const KernelMetadata &metadata,
                             const LoadedKernel &kernel,
                             const gqa_launch_args &args) {
  gqa_launch_plan plan;
  if (Status status = planLaunch(metadata, args, deviceInfo.sm_count, plan);
      !status.ok())
    return status;
  if (Status status = validateLaunchPointers(metadata, args, plan);
      !status.ok())
    return status;
  ScopedContext scope(driver, context);
  if (!scope.isCurrent())
    return scope.getStatus();
  if (plan.workspace_bytes == 0 || args.workspace)
    return launchKernels(metadata, kernel, args, plan,
                         reinterpret_cast<uintptr_t>(args.workspace));

  std::lock_guard<std::mutex> lock(workspaceMutex);
  auto stream = static_cast<CUstream>(args.stream);
  CUdeviceptr address;
  if (Status status = acquireWorkspace(plan.workspace_bytes, stream, address);
      !status.ok())
    return status;
  Status launched = launchKernels(metadata, kernel, args, plan, address);
  Status recorded = driver.check(driver.cuEventRecord(workspaceLastUse, stream),
                                 "cuEventRecord");
  return launched.ok() ? recorded : launched;
}

Status DeviceRuntime::mergeStates(const KernelMetadata &metadata,
                                  const LoadedKernel &kernel,
                                  const gqa_merge_args &args) {
  gqa_kernel_launch_config launch;
  if (Status status = planMerge(metadata, args, launch); !status.ok())
    return status;
  if (Status status = validateMergePointers(args); !status.ok())
    return status;
  ScopedContext scope(driver, context);
  if (!scope.isCurrent())
    return scope.getStatus();
  KernelParamValues params;
  bindMergeParams(metadata.kernels.front(), args, params);
  return launchKernel(kernel.functions.front(), launch,
                      static_cast<CUstream>(args.stream),
                      params.pointers.data());
}

} // namespace gqa::runtime
