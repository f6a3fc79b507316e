//===- LaunchFuzzer.cpp - libFuzzer target: launch sizes ------------------===//
//
// Feeds the runtime's launch checks what a caller controls: the first byte
// picks one of the valid metadata documents of $GQA_FUZZ_METADATA_DIR (the
// runtime-metadata corpus: every kernel kind), the rest are the launch's
// sizes (FuzzLaunch.h: batch, lengths, packed token counts, pages, heads,
// types, the SM count, a caller's workspace). Every input must end in a
// status or a plan that keeps its invariants, never a crash, an overflow or
// a sanitizer report.
//
//===----------------------------------------------------------------------===//

#include "FuzzLaunch.h"

#include <algorithm>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace gqa::runtime;

namespace {

/// The documents, in file-name order.
std::vector<KernelMetadata> documents;

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  const char *dir = std::getenv("GQA_FUZZ_METADATA_DIR");
  if (!dir) {
    std::fprintf(stderr, "set GQA_FUZZ_METADATA_DIR to a directory of kernel "
                         "metadata (fuzz/corpus/runtime-metadata)\n");
    std::exit(2);
  }
  std::vector<std::string> names;
  if (DIR *listing = opendir(dir)) {
    while (dirent *entry = readdir(listing))
      if (std::string_view(entry->d_name).size() > 5 &&
          std::string_view(entry->d_name)
                  .substr(std::string_view(entry->d_name).size() - 5) ==
              ".json")
        names.push_back(entry->d_name);
    closedir(listing);
  }
  std::sort(names.begin(), names.end());
  for (const std::string &name : names) {
    std::ifstream file(std::string(dir) + "/" + name);
    std::stringstream text;
    text << file.rdbuf();
    KernelMetadata metadata;
    if (parseKernelMetadata(text.str(), metadata).ok())
      documents.push_back(std::move(metadata));
    else
      std::fprintf(stderr, "skipping %s: not valid metadata\n", name.c_str());
  }
  if (documents.empty()) {
    std::fprintf(stderr, "no valid metadata in %s\n", dir);
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const KernelMetadata &metadata = documents[data[0] % documents.size()];
  FuzzedDataProvider sizes(data + 1, size - 1);
  fuzz::planAndBind(metadata, sizes);
  return 0;
}
