//===- gqa-run.cpp - Compile, run and check one attention config ----------===//
//
// Compiles one attention configuration through gqa's CPU pipeline, JIT-runs
// it on seeded random inputs, checks it against a float64 reference and
// prints one JSON line. Exit status: 0 when within the dtype's tolerance,
// 1 when not (or when compilation fails), 2 on bad arguments.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"
#include "gqa/Tools/CPURunner.h"
#include "gqa/Tools/HostTensor.h"
#include "gqa/Tools/PagedKVCache.h"
#include "gqa/Tools/Reference.h"
#include "gqa/Tools/SpecOptions.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unistd.h>

using namespace mlir::gqa;
namespace cl = llvm::cl;
namespace json = llvm::json;

namespace {

cl::OptionCategory runCategory("gqa-run options");
cl::opt<std::string> target("target", cl::desc("Where to run: cpu"),
                            cl::init("cpu"), cl::cat(runCategory));
cl::opt<int64_t> batch("batch", cl::desc("Batch size B"), cl::init(1),
                       cl::cat(runCategory));
cl::opt<int64_t> seqQ("seq-q", cl::desc("Query length Sq"), cl::init(0),
                      cl::cat(runCategory));
cl::opt<int64_t> seqKV("seq-kv", cl::desc("Key/value length Skv"), cl::init(0),
                       cl::cat(runCategory));
cl::opt<std::string>
    kvLens("kv-lens",
           cl::desc("Per-sequence KV lengths L0,L1,... (one per batch)"),
           cl::init(""), cl::cat(runCategory));
cl::opt<std::string>
    qLens("q-lens",
          cl::desc("Ragged queries (varlen): the query count of each sequence "
                   "L0,L1,... (the batch); Q and the output are packed tokens "
                   "[T, Hq, D] (bshd) split by cu_seqlens_q"),
          cl::init(""), cl::cat(runCategory));
cl::opt<bool> packedKV(
    "packed-kv",
    cl::desc("With --q-lens: K/V packed as tokens [Tk, Hkv, D] split by "
             "cu_seqlens_k, --kv-lens giving each sequence's keys (instead "
             "of a [B, Skv, Hkv, D] cache)"),
    cl::init(false), cl::cat(runCategory));
cl::opt<uint64_t> seed("seed", cl::desc("Seed of the random inputs"),
                       cl::init(0), cl::cat(runCategory));
cl::opt<std::string> saveDir("save",
                             cl::desc("Write q/k/v/out.bin and meta.json "
                                      "into this directory"),
                             cl::init(""), cl::cat(runCategory));
cl::opt<std::string> schedule(
    "schedule",
    cl::desc("Whose schedule to run: cpu, or sm_80 / sm_90 (the GPU's tiles, "
             "row packing and split-KV, to prove their numerics)"),
    cl::init("cpu"), cl::cat(runCategory));
cl::opt<int64_t> tileQ("tile-q",
                       cl::desc("Query positions per block (times the group "
                                "size in packed rows; default: the "
                                "schedule's)"),
                       cl::init(0), cl::cat(runCategory));
cl::opt<int64_t> tileKV("tile-kv",
                        cl::desc("Keys per KV tile (default: the schedule's)"),
                        cl::init(0), cl::cat(runCategory));
cl::opt<int64_t> maxSplits("max-splits",
                           cl::desc("Split-KV with at most this many splits "
                                    "(0: off; default: the schedule's)"),
                           cl::init(-1), cl::cat(runCategory));
cl::opt<int64_t> threads(
    "cpu-threads",
    cl::desc("Run the blocks as this many parallel tasks on MLIR's async "
             "runtime, whose pool has a thread per core (0: one per core, "
             "the default; 1: in one loop, no runtime)"),
    cl::init(0), cl::cat(runCategory));
cl::opt<int64_t> repeat("repeat",
                        cl::desc("Timed runs; time_ms is their median"),
                        cl::init(1), cl::cat(runCategory));

int badArguments(const std::string &message) {
  llvm::errs() << "gqa-run: error: " << message << "\n";
  return 2;
}

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

/// The tasks the blocks run as: --cpu-threads, or one per core.
int64_t cpuThreads() {
  return threads > 0
             ? threads.getValue()
             : std::max<int64_t>(1, std::thread::hardware_concurrency());
}

/// The configuration and sizes, as JSON (printed and saved in meta.json).
json::Object describe(const AttentionSpec &spec, const AttentionSizes &sizes) {
  json::Object object{
      {"target", target.getValue()},
      {"schedule", schedule.getValue()},
      {"threads", cpuThreads()},
      {"batch", sizes.batch},
      {"q_heads", spec.qHeads},
      {"kv_heads", spec.kvHeads},
      {"group_size", spec.groupSize()},
      {"seq_q", sizes.seqQ},
      {"seq_kv", sizes.seqKV},
      {"head_dim", spec.headDim},
      {"head_dim_v", spec.valueHeadDim()},
      {"dtype", elementTypeName(spec.elementType)},
      {"layout", spec.layoutName()},
      {"causal", spec.causal},
      {"window", json::Array{spec.windowLeft, spec.windowRight}},
      {"scale", spec.resolvedScale()},
      {"softcap", spec.softcap ? json::Value(*spec.softcap) : nullptr},
      {"seed", static_cast<int64_t>(seed.getValue())},
  };
  if (spec.hasKVLens)
    object["kv_lens"] = json::Array(sizes.kvLens);
  if (spec.isPaged())
    object["page_size"] = spec.pageSize;
  object["sinks"] = spec.hasSinks;
  object["return_lse"] = spec.returnLse;
  if (spec.varlen) {
    object["q_lens"] = json::Array(sizes.qLens);
    object["packed_kv"] = spec.packedKV;
    if (spec.packedKV)
      object["kv_lens"] = json::Array(sizes.kvLens);
  }
  return object;
}

/// The shape of a (B, heads, S, dim) tensor in the spec's layout.
json::Array layoutShape(const AttentionSpec &spec, int64_t batchSize,
                        int64_t heads, int64_t seq, int64_t dim) {
  if (spec.bshd)
    return json::Array{batchSize, seq, heads, dim};
  return json::Array{batchSize, heads, seq, dim};
}

/// Writes the inputs, output and meta.json of a run into `directory`.
std::string save(const std::string &directory, const AttentionSpec &spec,
                 const AttentionSizes &sizes, json::Object meta,
                 const HostTensor &query, const HostTensor &key,
                 const HostTensor &value, const HostTensor &output,
                 const std::vector<int32_t> &lengths,
                 const std::vector<float> &sinks,
                 const std::vector<float> &lse) {
  if (std::error_code error = llvm::sys::fs::create_directories(directory))
    return "cannot create " + directory + ": " + error.message();
  auto path = [&](const char *file) {
    llvm::SmallString<256> joined(directory);
    llvm::sys::path::append(joined, file);
    return std::string(joined);
  };
  for (auto [file, tensor] : {std::pair{"q.bin", &query},
                              {"k.bin", &key},
                              {"v.bin", &value},
                              {"out.bin", &output}}) {
    std::string error = tensor->writeRaw(path(file));
    if (!error.empty())
      return error;
  }
  json::Object files{
      {"q", "q.bin"}, {"k", "k.bin"}, {"v", "v.bin"}, {"out", "out.bin"}};
  const char *dtype = elementTypeName(spec.elementType);
  json::Object dtypes{{"q", dtype}, {"k", dtype}, {"v", dtype}, {"out", dtype}};
  int64_t dv = spec.valueHeadDim();
  int64_t tokens = sizes.totalQueries(), keyTokens = sizes.totalKeys(spec);
  auto queries = [&](int64_t dim) {
    return spec.varlen
               ? json::Array{tokens, spec.qHeads, dim}
               : layoutShape(spec, sizes.batch, spec.qHeads, sizes.seqQ, dim);
  };
  auto keys = [&](int64_t dim) {
    return spec.packedKV
               ? json::Array{keyTokens, spec.kvHeads, dim}
               : layoutShape(spec, sizes.batch, spec.kvHeads, sizes.seqKV, dim);
  };
  json::Object shapes{{"q", queries(spec.headDim)},
                      {"k", keys(spec.headDim)},
                      {"v", keys(dv)},
                      {"out", queries(dv)}};
  // The 4-byte arrays, when the run has them.
  auto writeWords = [&](const char *name, const char *file, const void *data,
                        size_t count, const char *type, json::Array shape) {
    if (!count)
      return;
    std::ofstream stream(path(file), std::ios::binary);
    stream.write(static_cast<const char *>(data), count * 4);
    files[name] = file;
    dtypes[name] = type;
    shapes[name] = std::move(shape);
  };
  if (spec.hasKVLens)
    writeWords("kv_lens", "kv_lens.bin", lengths.data(), lengths.size(), "i32",
               json::Array{sizes.batch});
  writeWords("sinks", "sinks.bin", sinks.data(), sinks.size(), "f32",
             json::Array{spec.qHeads});
  writeWords("lse", "lse.bin", lse.data(), lse.size(), "f32",
             spec.varlen ? json::Array{spec.qHeads, tokens}
                         : json::Array{sizes.batch, spec.qHeads, sizes.seqQ});
  if (spec.varlen) {
    std::vector<int32_t> cuQ = AttentionSizes::offsets(sizes.qLens);
    writeWords("cu_seqlens_q", "cu_seqlens_q.bin", cuQ.data(), cuQ.size(),
               "i32", json::Array{sizes.batch + 1});
  }
  if (spec.packedKV) {
    std::vector<int32_t> cuK = AttentionSizes::offsets(sizes.kvLens);
    writeWords("cu_seqlens_k", "cu_seqlens_k.bin", cuK.data(), cuK.size(),
               "i32", json::Array{sizes.batch + 1});
  }
  meta["files"] = std::move(files);
  meta["dtypes"] = std::move(dtypes);
  meta["shapes"] = std::move(shapes);
  meta["byte_order"] = "little";
  std::error_code error;
  llvm::raw_fd_ostream metaFile(path("meta.json"), error);
  if (error)
    return "cannot write meta.json: " + error.message();
  metaFile << json::Value(std::move(meta)) << "\n";
  return "";
}

} // namespace

/// The bytes a run holds at once: the inputs and the output in their dtype,
/// their float64 copies and the float64 reference (each array is validated
/// to have a 64-bit byte count; the sum may still overflow).
std::optional<uint64_t> runBytes(const AttentionSpec &spec,
                                 const AttentionSizes &sizes) {
  uint64_t total = 0, element = elementBytes(spec.elementType);
  for (int64_t elements :
       {sizes.queryElements(spec), sizes.keyElements(spec),
        sizes.valueElements(spec), sizes.outputElements(spec)}) {
    uint64_t bytes;
    if (__builtin_mul_overflow(static_cast<uint64_t>(elements),
                               element + sizeof(double), &bytes) ||
        __builtin_add_overflow(total, bytes, &total))
      return std::nullopt;
  }
  return total;
}

int runTool(int argc, char **argv) {
  SpecOptions specOptions(runCategory);
  cl::HideUnrelatedOptions(runCategory);
  if (!parseToolCommandLine(
          argc, argv, "gqa-run",
          "gqa-run: compile one attention configuration, run it on the CPU "
          "and check it against a float64 reference\n"))
    return 2;

  if (target != "cpu")
    return badArguments("unknown target '" + target +
                        "' (gqa-run runs on: cpu)");
  std::string error;
  AttentionSpec spec = specOptions.toSpec(!kvLens.empty(), error);
  if (!error.empty())
    return badArguments(error);
  AttentionSizes sizes{batch, seqQ, seqKV, {}};
  if (!kvLens.empty() && !parseIntegerList(kvLens, sizes.kvLens))
    return badArguments("kv-lens must be integers L0,L1,..., got '" + kvLens +
                        "'");
  // A ragged batch: as many sequences as query lengths, the longest sizing
  // the checks; packed K/V are as long as their lengths.
  auto longest = [](const std::vector<int64_t> &lengths) {
    int64_t most = 1;
    for (int64_t length : lengths)
      most = std::max(most, length);
    return most;
  };
  if (!qLens.empty()) {
    if (!parseIntegerList(qLens, sizes.qLens))
      return badArguments("q-lens must be integers L0,L1,..., got '" + qLens +
                          "'");
    if (batch.getNumOccurrences() || seqQ.getNumOccurrences())
      return badArguments("with --q-lens the batch and the query lengths are "
                          "the q-lens; leave --batch and --seq-q out");
    spec.varlen = true;
    sizes.batch = static_cast<int64_t>(sizes.qLens.size());
    sizes.seqQ = longest(sizes.qLens);
  }
  if (packedKV) {
    if (sizes.kvLens.empty() || seqKV.getNumOccurrences())
      return badArguments("--packed-kv takes each sequence's keys from "
                          "--kv-lens (and no --seq-kv)");
    spec.packedKV = true;
    spec.hasKVLens = false;
    sizes.seqKV = longest(sizes.kvLens);
  }
  error = spec.validate();
  if (!error.empty())
    return badArguments(error);
  // A paged run always passes lengths (Skv each unless given): the block
  // table spans whole pages, ceil(Skv / P) * P keys.
  if (spec.isPaged() && !spec.hasKVLens && sizes.batch > 0) {
    spec.hasKVLens = true;
    sizes.kvLens.assign(sizes.batch, sizes.seqKV);
  }
  error = sizes.validate(spec);
  if (!error.empty())
    return badArguments(error);
  if ((tileQ.getNumOccurrences() && tileQ < 1) ||
      (tileKV.getNumOccurrences() && tileKV < 1) || repeat < 1)
    return badArguments("tile-q, tile-kv and repeat must be positive");
  if (!isScheduleTarget(schedule))
    return badArguments("--schedule must be cpu, sm_80 or sm_90, got '" +
                        schedule + "'");
  if (threads < 0)
    return badArguments("--cpu-threads must be >= 0");
  if (maxSplits < -1)
    return badArguments("--max-splits must be >= 0 (or -1: the schedule's)");
  int64_t blockM = 0;
  if (llvm::MulOverflow(tileQ.getValue(), spec.groupSize(), blockM) ||
      blockM > ScheduleAttr::kMaxTileSize ||
      tileKV > ScheduleAttr::kMaxTileSize)
    return badArguments("tile-q times the group size, and tile-kv, must be at "
                        "most " +
                        std::to_string(ScheduleAttr::kMaxTileSize));
  // Refuse what cannot fit before compiling or allocating anything.
  uint64_t memory = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                    static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  std::optional<uint64_t> needed = runBytes(spec, sizes);
  if (!needed || *needed > memory)
    return badArguments(
        "these sizes need " +
        (needed ? std::to_string(*needed) + " bytes" : "more than 2^64 bytes") +
        " for the inputs, the output and their float64 copies; this machine "
        "has " +
        std::to_string(memory));

  CPUSchedule choice;
  choice.target = schedule;
  choice.blockM = blockM;
  choice.blockN = tileKV;
  choice.maxSplits = maxSplits;
  choice.threads =
      threads > 0 ? threads
                  : std::max<int64_t>(1, std::thread::hardware_concurrency());
  auto compileStart = std::chrono::steady_clock::now();
  auto kernel = CPUKernel::compile(spec, choice);
  if (!kernel) {
    llvm::errs() << "gqa-run: error: " << llvm::toString(kernel.takeError())
                 << "\n";
    return 1;
  }
  double compileMs = millisecondsSince(compileStart);

  std::mt19937_64 generator(seed);
  ElementType type = spec.elementType;
  HostTensor query =
      HostTensor::random(type, sizes.queryElements(spec), generator);
  HostTensor key = HostTensor::random(type, sizes.keyElements(spec), generator);
  HostTensor value =
      HostTensor::random(type, sizes.valueElements(spec), generator);
  HostTensor output(type, sizes.outputElements(spec));
  std::vector<int32_t> lengths(sizes.kvLens.begin(), sizes.kvLens.end());
  std::optional<PagedKVCache> paged;
  if (spec.isPaged())
    paged = PagedKVCache::scatter(spec, sizes, key, value, generator);
  // Sink logits of the size of the scaled scores, some above them.
  std::vector<float> sinks;
  std::normal_distribution<float> sinkLogits(0.5f, 1.5f);
  if (spec.hasSinks)
    for (int64_t h = 0; h < spec.qHeads; ++h)
      sinks.push_back(sinkLogits(generator));
  std::vector<float> lse(spec.returnLse ? sizes.lseElements(spec) : 0);
  std::vector<int32_t> cuSeqlensQ = AttentionSizes::offsets(sizes.qLens);
  std::vector<int32_t> cuSeqlensK = AttentionSizes::offsets(sizes.kvLens);
  CPUOperands operands;
  operands.cuSeqlensQ = spec.varlen ? cuSeqlensQ.data() : nullptr;
  operands.cuSeqlensK = spec.packedKV ? cuSeqlensK.data() : nullptr;
  operands.query = query.data();
  operands.key = paged ? paged->key.data() : key.data();
  operands.value = paged ? paged->value.data() : value.data();
  operands.kvLens = lengths.empty() ? nullptr : lengths.data();
  if (paged) {
    operands.blockTable = paged->blockTable.data();
    operands.numPages = paged->numPages;
    operands.pagesPerSequence = paged->pagesPerSequence;
  }
  operands.sinks = sinks.empty() ? nullptr : sinks.data();
  operands.output = output.data();
  operands.lse = lse.empty() ? nullptr : lse.data();

  std::vector<double> times;
  for (int64_t run = 0; run < repeat; ++run) {
    // Poison the output: an element the kernel fails to write stays NaN.
    output.fill(NAN);
    std::fill(lse.begin(), lse.end(), NAN);
    auto start = std::chrono::steady_clock::now();
    (*kernel)->run(sizes, operands);
    times.push_back(millisecondsSince(start));
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2,
                   times.end());

  // Paged or not, the reference reads the contiguous K and V.
  std::vector<double> referenceLse;
  std::vector<double> reference = referenceAttention(
      spec, sizes, query.toDoubles(), key.toDoubles(), value.toDoubles(),
      std::vector<double>(sinks.begin(), sinks.end()),
      spec.returnLse ? &referenceLse : nullptr);
  Comparison comparison = compareToReference(output.toDoubles(), reference);
  double tolerance = relL2Tolerance(type);
  bool ok = comparison.nonFinite == 0 && comparison.relL2Error <= tolerance;
  std::optional<Comparison> lseComparison;
  if (spec.returnLse) {
    lseComparison = compareLseToReference(
        std::vector<double>(lse.begin(), lse.end()), referenceLse);
    ok = ok && lseComparison->nonFinite == 0 &&
         lseComparison->maxAbsError <= lseTolerance(type);
  }

  json::Object report = describe(spec, sizes);
  report["max_abs_err"] = comparison.maxAbsError;
  report["rel_l2_err"] = comparison.relL2Error;
  report["tolerance"] = tolerance;
  report["non_finite"] = comparison.nonFinite;
  if (lseComparison) {
    report["lse_max_abs_err"] = lseComparison->maxAbsError;
    report["lse_tolerance"] = lseTolerance(type);
    report["lse_mismatched"] = lseComparison->nonFinite;
  }
  report["ok"] = ok;
  report["compile_ms"] = compileMs;
  report["time_ms"] = times[times.size() / 2];
  if (!saveDir.empty()) {
    error = save(saveDir, spec, sizes, report, query, key, value, output,
                 lengths, sinks, lse);
    if (!error.empty()) {
      llvm::errs() << "gqa-run: error: " << error << "\n";
      return 1;
    }
  }
  llvm::outs() << json::Value(std::move(report)) << "\n";
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  // A size can pass every check and still not be allocatable while others
  // hold memory: say so instead of aborting.
  try {
    return runTool(argc, argv);
  } catch (const std::bad_alloc &) {
    return badArguments("out of memory allocating the inputs, the output or "
                        "the reference of these sizes");
  } catch (const std::length_error &) {
    return badArguments("an array of these sizes is larger than a vector can "
                        "hold");
  }
}
