//===- SpecOptions.h - Command-line flags of an attention spec --*- C++ -*-===//
//
// The flags that gqa-run and gqa-compile share to describe one attention
// configuration: --q-heads, --kv-heads, --head-dim, --head-dim-v, --dtype,
// --layout, --causal, --window, --softcap, --scale, --page-size, --sinks,
// --return-lse.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_TOOLS_SPECOPTIONS_H
#define GQA_TOOLS_SPECOPTIONS_H

#include "gqa/Tools/AttentionSpec.h"
#include "llvm/Support/CommandLine.h"

#include <string>

namespace mlir::gqa {

/// Registers the spec flags on construction (construct before
/// llvm::cl::ParseCommandLineOptions).
class SpecOptions {
public:
  explicit SpecOptions(llvm::cl::OptionCategory &category);

  /// The spec the flags describe, or a one-line error in `error`.
  AttentionSpec toSpec(bool hasKVLens, std::string &error) const;
  /// The merge the flags describe: --q-heads heads of --head-dim-v (default
  /// --head-dim) values, --dtype, --layout; an error names any flag of the
  /// attention alone that is given.
  MergeStatesSpec toMergeSpec(bool varlen, std::string &error) const;

private:
  llvm::cl::opt<int64_t> qHeads, kvHeads, headDim, headDimV, pageSize;
  llvm::cl::opt<std::string> dtype, layout, window;
  llvm::cl::opt<bool> causal, sinks, returnLse;
  llvm::cl::opt<double> softcap, scale;
};

/// Parses the command line of tool `tool`. On bad arguments prints one line,
/// "<tool>: error: <what>", to stderr and returns false (exit with 2).
bool parseToolCommandLine(int argc, char **argv, llvm::StringRef tool,
                          llvm::StringRef overview);

/// Parses "a,b,c" into integers; returns false on anything else.
bool parseIntegerList(const std::string &text, std::vector<int64_t> &values);

} // namespace mlir::gqa

#endif // GQA_TOOLS_SPECOPTIONS_H
