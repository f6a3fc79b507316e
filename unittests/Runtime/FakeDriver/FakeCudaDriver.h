//===- FakeCudaDriver.h - What the fake CUDA driver saw ---------*- C++ -*-===//
//
// libgqa-fake-cuda.so implements, in host memory, the CUDA driver entry
// points the runtime resolves (lib/Runtime/CudaDriverSymbols.def), so that
// the runtime loads it exactly as libcuda ($GQA_CUDA_DRIVER_LIBRARY). It
// reads each loaded PTX's `.entry` signatures and checks every
// cuLaunchKernel against them: the parameter count and widths, every `.ptr`
// parameter NULL or inside a live allocation, the grid and block within
// CUDA's limits and the entry's .maxntid, the dynamic shared memory within
// the limit set for the function, a current context, no `extra`. A launch
// that breaks one fails with CUDA_ERROR_INVALID_VALUE and says why
// (gqa_fake_cuda_violation); every call's effect on a stream is logged.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_UNITTESTS_RUNTIME_FAKECUDADRIVER_H
#define GQA_UNITTESTS_RUNTIME_FAKECUDADRIVER_H

#include <cstdint>

extern "C" {

/// One accepted cuLaunchKernel.
struct gqa_fake_launch {
  const char *kernel;
  unsigned grid[3], block[3], dynamic_shared_memory_bytes;
  void *stream;
  int num_params;
  /// Each parameter's value (a 4-byte parameter zero-extended) and width.
  uint64_t params[32];
  int param_bytes[32];
};

/// Runs an accepted launch (a simulator executing the kernel on the
/// launch's real parameter values, e.g. utils/gpusim/fake_gpu.py); nonzero
/// makes cuLaunchKernel fail with CUDA_ERROR_LAUNCH_FAILED.
typedef int (*gqa_fake_launch_hook)(const gqa_fake_launch *launch, void *user);
/// Calls `hook` after each accepted launch, synchronously (NULL: none).
void gqa_fake_cuda_set_launch_hook(gqa_fake_launch_hook hook, void *user);

/// The launches accepted since the last reset, in order.
int gqa_fake_cuda_launch_count(void);
const gqa_fake_launch *gqa_fake_cuda_launch(int index);
/// Why the last refused launch was refused ("" if none was).
const char *gqa_fake_cuda_violation(void);
/// What the calls did to streams, one line each, in order: "wait <event>
/// on <stream>", "launch <kernel> on <stream>", "record <event> on
/// <stream>" (events and streams as small numbers in order of first use;
/// stream 0 the default).
const char *gqa_fake_cuda_stream_log(void);
/// Forgets the launches, the violation and the log.
void gqa_fake_cuda_reset(void);
/// Device memory of `bytes` (host memory in truth), as cuMemAlloc gives.
uint64_t gqa_fake_cuda_alloc(uint64_t bytes);
/// The bytes of the live allocation that holds `address` from it to its
/// end, or 0 when none does.
uint64_t gqa_fake_cuda_bytes_from(uint64_t address);
}

#endif // GQA_UNITTESTS_RUNTIME_FAKECUDADRIVER_H
