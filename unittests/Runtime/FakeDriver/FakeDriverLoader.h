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

#include <dlfcn.h>

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

} // namespace gqa::runtime::test

#endif // GQA_UNITTESTS_RUNTIME_FAKEDRIVERLOADER_H
