//===- FakeCudaDriver.cpp - The CUDA driver in host memory, checking -----===//
//
// See FakeCudaDriver.h. Entry points keep the driver's names (the `_v2`
// symbols where cuda.h maps a name to one) and C linkage.
//
//===----------------------------------------------------------------------===//

#include "FakeCudaDriver.h"

#include "CudaDriver.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using namespace gqa::runtime::cuda;

namespace {

constexpr CUresult kInvalidValue = 1;
constexpr CUresult kInvalidContext = 201;
constexpr CUresult kInvalidPtx = 218;
constexpr CUresult kInvalidHandle = 400;
constexpr CUresult kNotFound = 500;
constexpr CUresult kLaunchFailed = 719;

/// A parameter of an `.entry`, as its PTX declares it.
struct EntryParam {
  int bytes;
  bool pointer;
};

struct FakeFunction {
  std::string name;
  std::vector<EntryParam> params;
  /// .maxntid, or 0s.
  unsigned maxThreads[3] = {0, 0, 0};
  int maxDynamicSharedBytes = 48 * 1024;
};

struct FakeModule {
  std::vector<std::unique_ptr<FakeFunction>> functions;
};

struct State {
  std::mutex mutex;
  std::map<uint64_t, uint64_t> allocations; // base -> bytes
  std::vector<std::unique_ptr<FakeModule>> modules;
  std::vector<gqa_fake_launch> launches;
  std::vector<std::unique_ptr<std::string>> launchNames;
  std::string violation;
  std::string log;
  std::map<const void *, int> eventIds, streamIds;
};

State &state() {
  static State *instance = new State;
  return *instance;
}

thread_local std::vector<CUcontext> contextStack;
int primaryContextTag;
CUcontext primaryContext() {
  return reinterpret_cast<CUcontext>(&primaryContextTag);
}

/// A small number for `handle`, in order of first use (0 for NULL streams).
int idOf(std::map<const void *, int> &ids, const void *handle) {
  if (!handle)
    return 0;
  auto [it, inserted] = ids.try_emplace(handle, ids.size() + 1);
  return it->second;
}

/// The `.entry` functions of a PTX text: names, parameter widths and
/// `.ptr`, and .maxntid.
std::vector<std::unique_ptr<FakeFunction>>
parseEntries(const std::string &ptx) {
  std::vector<std::unique_ptr<FakeFunction>> functions;
  size_t at = 0;
  while ((at = ptx.find(".entry ", at)) != std::string::npos) {
    auto function = std::make_unique<FakeFunction>();
    size_t open = ptx.find('(', at), close = ptx.find(')', open);
    if (open == std::string::npos || close == std::string::npos)
      break;
    std::istringstream name(ptx.substr(at + 7, open - at - 7));
    name >> function->name;
    std::string list = ptx.substr(open + 1, close - open - 1);
    std::istringstream params(list);
    std::string param;
    while (std::getline(params, param, ',')) {
      if (param.find(".param") == std::string::npos)
        continue;
      // The width from the type token (.u64, .b32, ...); 0 for anything else
      // (an array or struct parameter), which a launch refuses.
      std::istringstream tokens(param);
      std::string token;
      int bytes = 0;
      while (tokens >> token)
        if (token.size() >= 3 && token[0] == '.' &&
            std::string_view("usbf").find(token[1]) != std::string::npos &&
            std::all_of(token.begin() + 2, token.end(), ::isdigit))
          bytes = std::stoi(token.substr(2)) / 8;
      function->params.push_back(
          {bytes, param.find(".ptr") != std::string::npos});
    }
    size_t body = ptx.find('{', close);
    size_t maxntid = ptx.find(".maxntid", close);
    if (maxntid != std::string::npos && maxntid < body) {
      std::istringstream dims(ptx.substr(maxntid + 8, body - maxntid - 8));
      char comma;
      dims >> function->maxThreads[0] >> comma >> function->maxThreads[1] >>
          comma >> function->maxThreads[2];
    }
    functions.push_back(std::move(function));
    at = close;
  }
  return functions;
}

bool insideAllocation(State &s, uint64_t address) {
  auto it = s.allocations.upper_bound(address);
  if (it == s.allocations.begin())
    return false;
  --it;
  return address < it->first + it->second;
}

CUresult refuse(State &s, const std::string &why) {
  s.violation = why;
  return kInvalidValue;
}

} // namespace

extern "C" {

CUresult cuInit(unsigned) { return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *version) {
  *version = 13000;
  return CUDA_SUCCESS;
}
CUresult cuGetErrorName(CUresult error, const char **name) {
  *name = error == CUDA_SUCCESS      ? "CUDA_SUCCESS"
          : error == kInvalidValue   ? "CUDA_ERROR_INVALID_VALUE"
          : error == kInvalidContext ? "CUDA_ERROR_INVALID_CONTEXT"
          : error == kLaunchFailed   ? "CUDA_ERROR_LAUNCH_FAILED"
                                     : "CUDA_ERROR_UNKNOWN";
  return CUDA_SUCCESS;
}
CUresult cuGetErrorString(CUresult error, const char **text) {
  *text = error == kInvalidValue ? "invalid argument (fake driver)"
                                 : "fake driver error";
  return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  if (ordinal != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attribute,
                              CUdevice) {
  switch (attribute) {
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    *value = 132;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *value = 9;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *value = 0;
    return CUDA_SUCCESS;
  }
  return kInvalidValue;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext *context, CUdevice) {
  *context = primaryContext();
  return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return CUDA_SUCCESS; }
CUresult cuCtxGetCurrent(CUcontext *context) {
  *context = contextStack.empty() ? nullptr : contextStack.back();
  return CUDA_SUCCESS;
}
CUresult cuCtxGetDevice(CUdevice *device) {
  if (contextStack.empty())
    return kInvalidContext;
  *device = 0;
  return CUDA_SUCCESS;
}
CUresult cuCtxPushCurrent_v2(CUcontext context) {
  contextStack.push_back(context);
  return CUDA_SUCCESS;
}
CUresult cuCtxPopCurrent_v2(CUcontext *context) {
  if (contextStack.empty())
    return kInvalidContext;
  if (context)
    *context = contextStack.back();
  contextStack.pop_back();
  return CUDA_SUCCESS;
}

CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned,
                            CUjit_option *, void **) {
  if (contextStack.empty())
    return kInvalidContext;
  auto loaded = std::make_unique<FakeModule>();
  loaded->functions = parseEntries(static_cast<const char *>(image));
  if (loaded->functions.empty())
    return kInvalidPtx;
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  *module = reinterpret_cast<CUmodule>(loaded.get());
  s.modules.push_back(std::move(loaded));
  return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule) { return CUDA_SUCCESS; }
CUresult cuModuleGetFunction(CUfunction *function, CUmodule module,
                             const char *name) {
  for (auto &candidate : reinterpret_cast<FakeModule *>(module)->functions)
    if (candidate->name == name) {
      *function = reinterpret_cast<CUfunction>(candidate.get());
      return CUDA_SUCCESS;
    }
  return kNotFound;
}
CUresult cuFuncSetAttribute(CUfunction function, CUfunction_attribute attribute,
                            int value) {
  if (attribute != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES ||
      value < 0 || value > 227 * 1024)
    return kInvalidValue;
  reinterpret_cast<FakeFunction *>(function)->maxDynamicSharedBytes = value;
  return CUDA_SUCCESS;
}

/// cuLaunchKernel's checks; an accepted launch is recorded.
static CUresult checkAndRecordLaunch(CUfunction function, unsigned gridX,
                                     unsigned gridY, unsigned gridZ,
                                     unsigned blockX, unsigned blockY,
                                     unsigned blockZ, unsigned sharedMemBytes,
                                     CUstream stream, void **kernelParams,
                                     void **extra) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto *f = reinterpret_cast<FakeFunction *>(function);
  if (!f)
    return kInvalidHandle;
  std::string where = "cuLaunchKernel('" + f->name + "'): ";
  if (contextStack.empty())
    return refuse(s, where + "no current context");
  if (extra)
    return refuse(s, where + "extra is set");
  if (!f->params.empty() && !kernelParams)
    return refuse(s, where + "kernelParams is NULL");
  unsigned grid[3] = {gridX, gridY, gridZ}, block[3] = {blockX, blockY, blockZ};
  const unsigned gridLimit[3] = {0x7fffffffu, 65535u, 65535u};
  for (int d = 0; d < 3; ++d) {
    if (grid[d] == 0 || grid[d] > gridLimit[d])
      return refuse(s, where + "grid dimension " + std::to_string(d) + " is " +
                           std::to_string(grid[d]));
    if (block[d] == 0 || (f->maxThreads[d] && block[d] > f->maxThreads[d]))
      return refuse(s, where + "block dimension " + std::to_string(d) + " is " +
                           std::to_string(block[d]) +
                           ", the entry's .maxntid " +
                           std::to_string(f->maxThreads[d]));
  }
  if (uint64_t{blockX} * blockY * blockZ > 1024)
    return refuse(s, where + "more than 1024 threads per block");
  if (sharedMemBytes > static_cast<unsigned>(f->maxDynamicSharedBytes))
    return refuse(s, where + std::to_string(sharedMemBytes) +
                         " bytes of dynamic shared memory, above the " +
                         std::to_string(f->maxDynamicSharedBytes) +
                         " the function allows");
  if (f->params.size() > 32)
    return refuse(s, where + "more than 32 parameters");
  gqa_fake_launch launch = {};
  for (size_t i = 0; i < f->params.size(); ++i) {
    // The runtime's parameter array is NULL past what it bound: the entry
    // takes more parameters than the launch gives.
    if (!kernelParams[i])
      return refuse(s, where + "kernelParams[" + std::to_string(i) +
                           "] is NULL, but the entry takes " +
                           std::to_string(f->params.size()) + " parameters");
    if (f->params[i].bytes != 4 && f->params[i].bytes != 8)
      return refuse(s, where + "parameter " + std::to_string(i) +
                           " is neither 4 nor 8 bytes wide");
    uint64_t value = 0;
    std::memcpy(&value, kernelParams[i], f->params[i].bytes);
    if (f->params[i].pointer && value && !insideAllocation(s, value))
      return refuse(s, where + "parameter " + std::to_string(i) + " (.ptr) = " +
                           std::to_string(value) + " is in no allocation");
    launch.params[i] = value;
    launch.param_bytes[i] = f->params[i].bytes;
  }
  s.launchNames.push_back(std::make_unique<std::string>(f->name));
  launch.kernel = s.launchNames.back()->c_str();
  std::memcpy(launch.grid, grid, sizeof grid);
  std::memcpy(launch.block, block, sizeof block);
  launch.dynamic_shared_memory_bytes = sharedMemBytes;
  launch.stream = stream;
  launch.num_params = static_cast<int>(f->params.size());
  s.launches.push_back(launch);
  s.log += "launch " + f->name + " on stream " +
           std::to_string(idOf(s.streamIds, stream)) + "\n";
  return CUDA_SUCCESS;
}

static gqa_fake_launch_hook launchHook = nullptr;
static void *launchHookUser = nullptr;

void gqa_fake_cuda_set_launch_hook(gqa_fake_launch_hook hook, void *user) {
  launchHook = hook;
  launchHookUser = user;
}

CUresult cuLaunchKernel(CUfunction function, unsigned gridX, unsigned gridY,
                        unsigned gridZ, unsigned blockX, unsigned blockY,
                        unsigned blockZ, unsigned sharedMemBytes,
                        CUstream stream, void **kernelParams, void **extra) {
  CUresult result =
      checkAndRecordLaunch(function, gridX, gridY, gridZ, blockX, blockY,
                           blockZ, sharedMemBytes, stream, kernelParams, extra);
  if (result != CUDA_SUCCESS || !launchHook)
    return result;
  // The hook runs the kernel (it may call back in): outside the lock, on a
  // copy of the record.
  State &s = state();
  gqa_fake_launch launch;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    launch = s.launches.back();
  }
  return launchHook(&launch, launchHookUser) == 0 ? CUDA_SUCCESS
                                                  : kLaunchFailed;
}

CUresult cuMemAlloc_v2(CUdeviceptr *pointer, size_t bytes) {
  if (contextStack.empty())
    return kInvalidContext;
  *pointer = gqa_fake_cuda_alloc(bytes);
  return *pointer ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
CUresult cuMemFree_v2(CUdeviceptr pointer) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.allocations.erase(pointer))
    return kInvalidValue;
  std::free(reinterpret_cast<void *>(pointer));
  return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent *event, unsigned) {
  *event = reinterpret_cast<CUevent>(new char);
  return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent event, CUstream stream) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.log += "record event " + std::to_string(idOf(s.eventIds, event)) +
           " on stream " + std::to_string(idOf(s.streamIds, stream)) + "\n";
  return CUDA_SUCCESS;
}
CUresult cuEventSynchronize(CUevent) { return CUDA_SUCCESS; }
CUresult cuEventDestroy_v2(CUevent event) {
  delete reinterpret_cast<char *>(event);
  return CUDA_SUCCESS;
}
CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.log += "wait event " + std::to_string(idOf(s.eventIds, event)) +
           " on stream " + std::to_string(idOf(s.streamIds, stream)) + "\n";
  return CUDA_SUCCESS;
}

int gqa_fake_cuda_launch_count(void) {
  std::lock_guard<std::mutex> lock(state().mutex);
  return static_cast<int>(state().launches.size());
}
const gqa_fake_launch *gqa_fake_cuda_launch(int index) {
  std::lock_guard<std::mutex> lock(state().mutex);
  if (index < 0 || index >= static_cast<int>(state().launches.size()))
    return nullptr;
  return &state().launches[index];
}
const char *gqa_fake_cuda_violation(void) { return state().violation.c_str(); }
const char *gqa_fake_cuda_stream_log(void) { return state().log.c_str(); }
void gqa_fake_cuda_reset(void) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.launches.clear();
  s.launchNames.clear();
  s.violation.clear();
  s.log.clear();
  s.eventIds.clear();
  s.streamIds.clear();
}
uint64_t gqa_fake_cuda_alloc(uint64_t bytes) {
  void *memory = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!memory)
    return 0;
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.allocations[reinterpret_cast<uint64_t>(memory)] = bytes;
  return reinterpret_cast<uint64_t>(memory);
}
uint64_t gqa_fake_cuda_bytes_from(uint64_t address) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.allocations.upper_bound(address);
  if (it == s.allocations.begin())
    return 0;
  --it;
  return address < it->first + it->second ? it->first + it->second - address
                                          : 0;
}

} // extern "C"
