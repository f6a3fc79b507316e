//===- SpecOptions.cpp - Command-line flags of an attention spec ----------===//

#include "gqa/Tools/SpecOptions.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir::gqa;
namespace cl = llvm::cl;

SpecOptions::SpecOptions(cl::OptionCategory &category)
    : qHeads("q-heads", cl::desc("Query heads (Hq)"), cl::init(0),
             cl::cat(category)),
      kvHeads("kv-heads", cl::desc("Key/value heads (Hkv); Hq % Hkv == 0"),
              cl::init(0), cl::cat(category)),
      headDim("head-dim", cl::desc("Head dim D of query and key"), cl::init(0),
              cl::cat(category)),
      headDimV("head-dim-v",
               cl::desc("Head dim Dv of value and output (default: D)"),
               cl::init(0), cl::cat(category)),
      pageSize("page-size",
               cl::desc("Paged KV cache: tokens per page (K/V are page pools "
                        "[pages, P, Hkv, D] read through a block table); 0: "
                        "contiguous K/V"),
               cl::init(0), cl::cat(category)),
      dtype("dtype", cl::desc("Element type: f16, bf16 or f32"),
            cl::init("bf16"), cl::cat(category)),
      layout("layout", cl::desc("Tensor layout: bhsd or bshd"),
             cl::init("bhsd"), cl::cat(category)),
      window("window",
             cl::desc("Sliding window LEFT,RIGHT (-1 = unbounded side)"),
             cl::init(""), cl::cat(category)),
      causal("causal", cl::desc("Causal mask, aligned bottom-right"),
             cl::init(false), cl::cat(category)),
      softcap("softcap", cl::desc("Softcap C: s = C * tanh(s / C)"),
              cl::init(0.0), cl::cat(category)),
      scale("scale", cl::desc("Score scale (default 1/sqrt(D))"), cl::init(0.0),
            cl::cat(category)),
      sinks("sinks",
            cl::desc("Attention sinks: one logit per query head (f32 [Hq]) "
                     "joins each row's softmax denominator"),
            cl::init(false), cl::cat(category)),
      returnLse("return-lse",
                cl::desc("Also return each row's natural-log log-sum-exp (f32 "
                         "[B, Hq, Sq], or [Hq, T] when ragged)"),
                cl::init(false), cl::cat(category)) {}

/// The first argument that names no option of the tool, or "". llvm::cl
/// would read some of them as single-letter options with a glued value
/// (`--heads 3` as `-h` plus "eads", printing the help and succeeding); a
/// value after an option that takes one (`--scale -1`) is not a name.
static llvm::StringRef findUnknownOption(int argc, char **argv) {
  auto &options = cl::getRegisteredOptions();
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef arg = argv[i];
    if (arg == "--")
      return "";
    // `-h` is llvm::cl's short form of --help.
    if (!arg.starts_with("-") || arg == "-" || arg == "-h")
      continue;
    llvm::StringRef name = arg.ltrim('-');
    bool hasValue = name.contains('=');
    name = name.split('=').first;
    auto it = options.find(name);
    if (it == options.end())
      return arg;
    if (!hasValue && it->second->getValueExpectedFlag() == cl::ValueRequired)
      ++i;
  }
  return "";
}

bool mlir::gqa::parseToolCommandLine(int argc, char **argv,
                                     llvm::StringRef tool,
                                     llvm::StringRef overview) {
  if (llvm::StringRef unknown = findUnknownOption(argc, argv);
      !unknown.empty()) {
    llvm::errs() << tool << ": error: unknown option '" << unknown
                 << "' (see --help)\n";
    return false;
  }
  std::string errors;
  llvm::raw_string_ostream errorStream(errors);
  if (cl::ParseCommandLineOptions(argc, argv, overview, &errorStream))
    return true;
  // Some errors (a malformed value) are already printed, as one line.
  llvm::StringRef firstLine = llvm::StringRef(errors).trim().split('\n').first;
  firstLine.consume_front((tool + ": ").str());
  if (!firstLine.empty())
    llvm::errs() << tool << ": error: " << firstLine << "\n";
  return false;
}

bool mlir::gqa::parseIntegerList(const std::string &text,
                                 std::vector<int64_t> &values) {
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(text).split(parts, ',');
  for (llvm::StringRef part : parts) {
    int64_t value;
    if (part.trim().getAsInteger(10, value))
      return false;
    values.push_back(value);
  }
  return !values.empty();
}

MergeStatesSpec SpecOptions::toMergeSpec(bool varlen,
                                         std::string &error) const {
  MergeStatesSpec spec;
  for (const cl::Option *option : std::initializer_list<const cl::Option *>{
           &kvHeads, &pageSize, &window, &causal, &softcap, &scale, &sinks,
           &returnLse})
    if (option->getNumOccurrences()) {
      error = ("--" + option->ArgStr +
               " describes attention, not a merge of its results")
                  .str();
      return spec;
    }
  if (qHeads <= 0 || (headDim <= 0 && headDimV <= 0)) {
    error = "a merge needs --q-heads (the outputs' heads) and --head-dim or "
            "--head-dim-v (their values per head), both positive";
    return spec;
  }
  spec.heads = qHeads;
  spec.headDimV = headDimV ? headDimV : headDim;
  spec.varlen = varlen;
  error = spec.setElementType(dtype);
  if (error.empty())
    error = spec.setLayout(layout);
  if (error.empty())
    error = spec.validate();
  return spec;
}

AttentionSpec SpecOptions::toSpec(bool hasKVLens, std::string &error) const {
  AttentionSpec spec;
  spec.qHeads = qHeads;
  spec.kvHeads = kvHeads;
  spec.headDim = headDim;
  spec.headDimV = headDimV;
  spec.causal = causal;
  spec.hasKVLens = hasKVLens;
  spec.pageSize = pageSize;
  spec.hasSinks = sinks;
  spec.returnLse = returnLse;
  error = spec.setElementType(dtype);
  if (error.empty())
    error = spec.setLayout(layout);
  if (!error.empty())
    return spec;
  if (!window.empty()) {
    std::vector<int64_t> bounds;
    if (!parseIntegerList(window, bounds) || bounds.size() != 2) {
      error = "window must be LEFT,RIGHT, got '" + window + "'";
      return spec;
    }
    spec.windowLeft = bounds[0];
    spec.windowRight = bounds[1];
    if (!spec.hasWindow()) {
      error = "window " + window + " bounds no key; leave it out";
      return spec;
    }
  }
  if (softcap.getNumOccurrences())
    spec.softcap = softcap;
  if (scale.getNumOccurrences())
    spec.scale = scale;
  error = spec.validate();
  return spec;
}
