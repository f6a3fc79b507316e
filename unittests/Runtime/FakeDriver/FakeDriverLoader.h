//===- FakeDriverLoader.h - The fake driver's inspection calls --*- C++ -*-===//
//
// The entry points of libgqa-fake-cuda.so that say what it saw
// (FakeCudaDriver.h), looked up in the library the runtime loads as its
// driver: dlopen of the same path hands back the same instance.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_UNITTESTS_RUNTIME_FAKEDRIVERLOADER_H
#define GQA_UNITTESTS_RUNTIME_FAKEDRIVERLOADER_H

#include "FakeCudaDriver.h"
#include "gqa/Runtime/Runtime.h"

#include <dlfcn.h>

#include <cstdint>
#include <map>
#include <string>

namespace gqa::runtime::test {

struct FakeDriver {
  decltype(&gqa_fake_cuda_launch_count) launchCount = nullptr;
  decltype(&gqa_fake_cuda_launch) launch = nullptr;
  decltype(&gqa_fake_cuda_violation) violation = nullptr;
  decltype(&gqa_fake_cuda_stream_log) streamLog = nullptr;
  decltype(&gqa_fake_cuda_reset) reset = nullptr;
  decltype(&gqa_fake_cuda_alloc) alloc = nullptr;
  decltype(&gqa_fake_cuda_bytes_from) bytesFrom = nullptr;

  /// Opens the library at `path` and resolves every entry point.
  bool load(const char *path) {
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    return library &&
           resolve(library, "gqa_fake_cuda_launch_count", launchCount) &&
           resolve(library, "gqa_fake_cuda_launch", launch) &&
           resolve(library, "gqa_fake_cuda_violation", violation) &&
           resolve(library, "gqa_fake_cuda_stream_log", streamLog) &&
           resolve(library, "gqa_fake_cuda_reset", reset) &&
           resolve(library, "gqa_fake_cuda_alloc", alloc) &&
           resolve(library, "gqa_fake_cuda_bytes_from", bytesFrom);
  }
  template <typename F>
  static bool resolve(void *library, const char *name, F &function) {
    function = reinterpret_cast<F>(dlsym(library, name));
    return function != nullptr;
  }
};

/// Allocates every array of the merge `args` in the fake at the size its
/// fields give (batch * seq_q * heads rows).
inline void allocateMergeArrays(FakeDriver &fake, gqa_merge_args &args) {
  uint64_t rows = args.batch * args.seq_q * args.heads;
  uint64_t outBytes =
      rows * args.head_dim_v * (args.dtype == GQA_DTYPE_F32 ? 4 : 2);
  auto allocate = [&](uint64_t bytes) {
    return reinterpret_cast<void *>(static_cast<uintptr_t>(fake.alloc(bytes)));
  };
  args.out_a = allocate(outBytes);
  args.lse_a = allocate(rows * 4);
  args.out_b = allocate(outBytes);
  args.lse_b = allocate(rows * 4);
  args.out = allocate(outBytes);
  args.lse = allocate(rows * 4);
}

/// The values a merge kernel's launch of `args` passes, by parameter name.
inline std::map<std::string, uint64_t>
getMergeParameterValues(const gqa_merge_args &args) {
  auto address = [](const void *pointer) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pointer));
  };
  return {{"out_a", address(args.out_a)},  {"lse_a", address(args.lse_a)},
          {"out_b", address(args.out_b)},  {"lse_b", address(args.lse_b)},
          {"out", address(args.out)},      {"lse", address(args.lse)},
          {"batch", uint64_t(args.batch)}, {"seq_q", uint64_t(args.seq_q)}};
}

} // namespace gqa::runtime::test

#endif // GQA_UNITTESTS_RUNTIME_FAKEDRIVERLOADER_H
