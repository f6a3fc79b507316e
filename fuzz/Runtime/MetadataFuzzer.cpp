//===- MetadataFuzzer.cpp - libFuzzer target: the metadata reader ---------===//
//
// Feeds the runtime a metadata document (the whole input): it must end in a
// status, never a crash, a sanitizer report or an assertion. The document
// is parsed through the C API and the internal reader; one that decodes is
// planned with sizes that fit it, its pointers checked and its parameters
// bound (FuzzLaunch.h). The corpus (fuzz/corpus/runtime-metadata) is
// gqa-compile's metadata of each kernel kind.
//
//===----------------------------------------------------------------------===//

#include "FuzzLaunch.h"
#include "gqa/Runtime/Runtime.h"

#include <string_view>

using namespace gqa::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  // The C API: a status and a message, never an exception across it.
  gqa_metadata handle = nullptr;
  if (gqa_metadata_parse(text.data(), text.size(), &handle) == GQA_SUCCESS) {
    if (!gqa_metadata_chip(handle) || !gqa_metadata_ptx_file(handle))
      std::abort();
  } else if (handle || !gqa_last_error_message()[0]) {
    std::abort(); // A failure returns no handle and says why.
  }
  gqa_metadata_destroy(handle);

  KernelMetadata metadata;
  if (!parseKernelMetadata(text, metadata).ok())
    return 0;
  FuzzedDataProvider noSizes(nullptr, 0);
  fuzz::planAndBind(metadata, noSizes);
  return 0;
}
