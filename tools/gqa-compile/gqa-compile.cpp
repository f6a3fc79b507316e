//===- gqa-compile.cpp - Compile attention to PTX and kernel metadata -----===//
//
// Compiles gqa.attention ops, from an .mlir file or from the shape flags
// gqa-run takes, through the GPU pipeline to PTX, and writes each op's PTX
// with its metadata JSON (docs/kernel-metadata.md):
//
//   gqa-compile --q-heads 64 --kv-heads 8 --head-dim 128 --dtype bf16 \
//     --layout bshd --causal -o l70b.ptx           # l70b.ptx, l70b.json
//   gqa-compile --merge-states --q-heads 64 --head-dim 128 -o merge.ptx
//                                                  # gqa.merge_states' kernel
//   gqa-compile model.mlir -o model.ptx            # one op: model.ptx/.json
//                                                  # N ops: model.<i>.ptx/.json
//   gqa-compile ... --emit gpu                     # print the IR of a stage
//   gqa-compile ... --emit-stages DIR -o out.ptx   # and keep every stage
//
// Outputs are written to temporary files and renamed at the end: on any
// error nothing is written (exit 1; 2 for bad arguments).
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/InitAll.h"
#include "gqa/Target/PTXCompiler.h"
#include "gqa/Tools/AttentionModule.h"
#include "gqa/Tools/SpecOptions.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::gqa;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory compileCategory("gqa-compile options");
cl::opt<std::string> inputFile(cl::Positional,
                               cl::desc("[input.mlir with gqa.attention ops]"),
                               cl::init(""), cl::cat(compileCategory));
cl::opt<std::string>
    outputFile("o",
               cl::desc("Output: the PTX file (its metadata goes beside it, "
                        "as .json); with --emit of an IR stage, the IR file "
                        "(default: stdout)"),
               cl::value_desc("file"), cl::init(""), cl::cat(compileCategory));
cl::opt<bool> kvLens("kv-lens",
                     cl::desc("The kernel takes per-sequence KV lengths "
                              "(int32, device memory)"),
                     cl::init(false), cl::cat(compileCategory));
cl::opt<bool>
    varlen("varlen",
           cl::desc("A ragged batch: Q and the output are packed "
                    "tokens [T, Hq, D] split by cu_seqlens_q "
                    "(int32 [B+1]; layout bshd); K/V a cache (or --packed-kv)"),
           cl::init(false), cl::cat(compileCategory));
cl::opt<bool> packedKV("packed-kv",
                       cl::desc("With --varlen: K/V are packed tokens "
                                "[Tk, Hkv, D] split by cu_seqlens_k (int32 "
                                "[B+1]), the launch giving max_seqlen_k"),
                       cl::init(false), cl::cat(compileCategory));
cl::opt<bool> mergeStates(
    "merge-states",
    cl::desc("Compile gqa.merge_states instead: the merge of two partial "
             "attention results of --q-heads heads of --head-dim-v (default "
             "--head-dim) values by their log-sum-exps (--dtype, --layout, "
             "--varlen: packed tokens)"),
    cl::init(false), cl::cat(compileCategory));
cl::opt<std::string> chip("chip", cl::desc("Target GPU: sm_80 or sm_90"),
                          cl::init("sm_90"), cl::cat(compileCategory));
cl::opt<std::string>
    emit("emit",
         cl::desc("What to produce: ptx (PTX + metadata, the default), or the "
                  "IR after a stage: bufferized, scheduled, tiled (the tiled "
                  "form of the schedule), gpu, nvvm, llvm, binary"),
         cl::init("ptx"), cl::cat(compileCategory));
cl::opt<std::string>
    emitStages("emit-stages",
               cl::desc("Also write the IR after each stage into this "
                        "directory (00-input.mlir ... 06-binary.mlir)"),
               cl::value_desc("dir"), cl::init(""), cl::cat(compileCategory));
cl::opt<int64_t> maxSplits(
    "max-splits",
    cl::desc("Split-KV (Flash-Decoding) with at most N KV splits; the "
             "runtime picks how many per launch. 0: one kernel, no split"),
    cl::init(kDefaultMaxSplits), cl::cat(compileCategory));
cl::opt<int64_t> blockM("block-m",
                        cl::desc("Packed query rows per CTA (0: by head dim)"),
                        cl::init(0), cl::cat(compileCategory));
cl::opt<int64_t> blockN("block-n",
                        cl::desc("Keys per KV tile (0: by head dim)"),
                        cl::init(0), cl::cat(compileCategory));
cl::opt<int64_t>
    minCTAsPerSM("min-ctas-per-sm",
                 cl::desc("CTAs per SM ptxas keeps room for (0: by head dim)"),
                 cl::init(0), cl::cat(compileCategory));
cl::opt<int64_t>
    maxRegisters("max-registers",
                 cl::desc("Register cap per thread (nvvm.maxnreg; 0: none)"),
                 cl::init(0), cl::cat(compileCategory));

int badArguments(const llvm::Twine &message) {
  llvm::errs() << "gqa-compile: error: " << message << "\n";
  return 2;
}

int failure(const llvm::Twine &message) {
  llvm::errs() << "gqa-compile: error: " << message << "\n";
  return 1;
}

/// A file written under a temporary name and renamed into place at the end,
/// or, for a path that exists and is not a regular file (/dev/null, a pipe),
/// written in place at the end: renaming onto it would replace the device.
struct PendingFile {
  std::string path;
  /// The temporary file, or empty when `contents` goes straight to `path`.
  std::string temporary;
  std::string contents;
};

/// Whether `path` names something other than a regular file.
bool isSpecialFile(const std::string &path) {
  llvm::sys::fs::file_status status;
  return !llvm::sys::fs::status(path, status) &&
         llvm::sys::fs::exists(status) &&
         !llvm::sys::fs::is_regular_file(status);
}

/// Writes `contents` to `path` directly.
llvm::Error writeFile(const std::string &path, llvm::StringRef contents) {
  std::error_code error;
  llvm::raw_fd_ostream os(path, error);
  if (!error) {
    os << contents;
    os.close();
    error = os.error();
  }
  if (error)
    return llvm::createStringError(error, "cannot write '" + path +
                                              "': " + error.message());
  return llvm::Error::success();
}

/// Writes `contents` to a temporary file next to `path` (or keeps it for a
/// special file).
llvm::Expected<PendingFile> writeTemporary(const std::string &path,
                                           llvm::StringRef contents) {
  if (isSpecialFile(path))
    return PendingFile{path, "", contents.str()};
  llvm::SmallString<256> model(path);
  model += ".tmp-%%%%%%";
  int fd;
  llvm::SmallString<256> temporary;
  if (std::error_code error =
          llvm::sys::fs::createUniqueFile(model, fd, temporary))
    return llvm::createStringError(error, "cannot create a file next to '" +
                                              path + "': " + error.message());
  llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
  os << contents;
  os.close();
  if (os.has_error()) {
    llvm::sys::fs::remove(temporary);
    return llvm::createStringError(os.error(),
                                   "cannot write '" + temporary +
                                       "': " + os.error().message());
  }
  return PendingFile{path, std::string(temporary), ""};
}

/// The output paths of kernel set `index` of `count`: `out.ptx` and
/// `out.json` for one, `out.<index>.ptx` and `out.<index>.json` for more.
std::pair<std::string, std::string> outputPaths(llvm::StringRef output,
                                                size_t index, size_t count) {
  llvm::SmallString<256> stem(output);
  llvm::sys::path::replace_extension(stem, "");
  llvm::SmallString<256> ptx(getKernelSetPTXPath(stem, index, count));
  llvm::SmallString<256> json(ptx);
  llvm::sys::path::replace_extension(json, "json");
  return {std::string(ptx), std::string(json)};
}

} // namespace

int main(int argc, char **argv) {
  SpecOptions specOptions(compileCategory);
  cl::HideUnrelatedOptions(compileCategory);
  if (!parseToolCommandLine(
          argc, argv, "gqa-compile",
          "gqa-compile: compile grouped-query attention to PTX and kernel "
          "metadata\n"))
    return 2;

  if (!isSupportedGPUChip(chip))
    return badArguments("unknown chip '" + chip +
                        "' (expected sm_80 or sm_90)");
  std::optional<GPUPipelineStage> lastStage = GPUPipelineStage::Binary;
  bool writePTX = emit == "ptx";
  // The tiled form of the chip's schedule: gqa-distribute after the
  // scheduled stage (what gqa-run --schedule runs on the CPU).
  bool emitTiled = emit == "tiled";
  if (emitTiled) {
    lastStage = GPUPipelineStage::Scheduled;
  } else if (!writePTX) {
    lastStage = parseGPUPipelineStage(emit);
    if (!lastStage)
      return badArguments("unknown --emit '" + emit +
                          "' (expected ptx, bufferized, scheduled, tiled, gpu, "
                          "nvvm, llvm or binary)");
  }
  if (writePTX && outputFile.empty())
    return badArguments("give the PTX file to write with -o (its metadata "
                        "goes beside it as .json)");
  if (writePTX && (outputFile == "-"))
    return badArguments("-o - is not possible with --emit ptx: the PTX and "
                        "its metadata are two files");
  if (maxSplits < 0)
    return badArguments("max-splits must be >= 0, got " +
                        llvm::Twine(maxSplits.getValue()));
  auto &options = cl::getRegisteredOptions();
  bool hasShapeFlags = options["q-heads"]->getNumOccurrences() > 0;
  if (!inputFile.empty() && hasShapeFlags)
    return badArguments("give an input file or the shape flags (--q-heads "
                        "...), not both");
  if (!inputFile.empty() && kvLens)
    return badArguments("--kv-lens describes the shape flags' op; an input "
                        "file states its kv_lens operand itself");
  if (!inputFile.empty() && mergeStates)
    return badArguments("--merge-states describes the shape flags' op; an "
                        "input file's gqa.merge_states ops compile as they "
                        "are");
  if (mergeStates && (kvLens || packedKV))
    return badArguments(llvm::Twine("--") + (kvLens ? "kv-lens" : "packed-kv") +
                        " describes attention, not a merge of its results");

  DialectRegistry registry;
  registerAllDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  // Diagnostics name the op and the problem; the op's generic form is noise.
  context.printOpOnDiagnostic(false);

  // The input: a parsed file (diagnostics point into it), or one op built
  // from the shape flags (diagnostics are prefixed with the tool's name).
  llvm::SourceMgr sourceMgr;
  std::optional<SourceMgrDiagnosticHandler> fileDiagnostics;
  std::optional<ScopedDiagnosticHandler> flagDiagnostics;
  OwningOpRef<ModuleOp> module;
  if (!inputFile.empty()) {
    fileDiagnostics.emplace(sourceMgr, &context);
    std::string error;
    auto buffer = openInputFile(inputFile, &error);
    if (!buffer)
      return failure(error);
    sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
    if (!module)
      return 1;
  } else {
    flagDiagnostics.emplace(&context, [](Diagnostic &diagnostic) {
      if (diagnostic.getSeverity() == DiagnosticSeverity::Error)
        llvm::errs() << "gqa-compile: error: " << diagnostic << "\n";
      else if (diagnostic.getSeverity() == DiagnosticSeverity::Warning)
        llvm::errs() << "gqa-compile: warning: " << diagnostic << "\n";
      return success();
    });
    std::string error;
    if (mergeStates) {
      MergeStatesSpec spec = specOptions.toMergeSpec(varlen, error);
      if (!error.empty())
        return badArguments(error);
      module = buildMergeStatesModule(context, spec, "gqa_merge_states");
    } else {
      AttentionSpec spec = specOptions.toSpec(kvLens, error);
      if (error.empty() && (varlen || packedKV)) {
        spec.varlen = varlen;
        spec.packedKV = packedKV;
        error = spec.validate();
      }
      if (!error.empty())
        return badArguments(error);
      module = buildAttentionModule(context, spec, "gqa_attention");
    }
    if (!module)
      return 1;
  }

  GPUPipelineOptions pipeline;
  pipeline.chip = chip;
  pipeline.blockM = blockM;
  pipeline.blockN = blockN;
  pipeline.maxRegisters = maxRegisters;
  pipeline.minCTAsPerSM = minCTAsPerSM;
  pipeline.maxSplits = maxSplits;

  // Stage dumps (diagnostics: written as the stages complete).
  auto dumpStage = [&](llvm::StringRef name, int number,
                       ModuleOp op) -> LogicalResult {
    if (emitStages.empty())
      return success();
    if (std::error_code error = llvm::sys::fs::create_directories(emitStages))
      return op.emitError()
             << "cannot create '" << emitStages << "': " << error.message();
    llvm::SmallString<256> path(emitStages);
    llvm::sys::path::append(path, (number < 10 ? "0" : "") +
                                      std::to_string(number) + "-" + name +
                                      ".mlir");
    std::error_code error;
    llvm::raw_fd_ostream os(path, error);
    if (error)
      return op.emitError()
             << "cannot write '" << path << "': " << error.message();
    op.print(os);
    return success();
  };
  if (failed(dumpStage("input", 0, *module)))
    return 1;
  FailureOr<std::vector<CompiledKernelSet>> compiled = compileToPTX(
      *module, pipeline, *lastStage, [&](GPUPipelineStage stage, ModuleOp op) {
        return dumpStage(getGPUPipelineStageName(stage),
                         static_cast<int>(stage) + 1, op);
      });
  if (failed(compiled))
    return 1;
  if (emitTiled) {
    PassManager pm(&context);
    pm.addPass(createGQADistribute());
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    if (failed(pm.run(*module)))
      return 1;
  }

  std::vector<PendingFile> pending;
  auto discard = [&] {
    for (const PendingFile &file : pending)
      if (!file.temporary.empty())
        llvm::sys::fs::remove(file.temporary);
  };
  if (!writePTX) {
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    if (outputFile.empty() || outputFile == "-") {
      llvm::outs() << text;
      return 0;
    }
    llvm::Expected<PendingFile> file = writeTemporary(outputFile, text);
    if (!file)
      return failure(llvm::toString(file.takeError()));
    pending.push_back(*file);
  } else {
    size_t count = compiled->size();
    for (size_t index = 0; index < count; ++index) {
      const CompiledKernelSet &set = (*compiled)[index];
      auto [ptxPath, jsonPath] = outputPaths(outputFile, index, count);
      std::string json;
      llvm::raw_string_ostream jsonStream(json);
      writeKernelMetadata(jsonStream, set.metadata, chip,
                          llvm::sys::path::filename(ptxPath));
      for (auto [path, contents] :
           {std::pair<std::string, llvm::StringRef>{ptxPath, set.ptx},
            {jsonPath, json}}) {
        llvm::Expected<PendingFile> file = writeTemporary(path, contents);
        if (!file) {
          discard();
          return failure(llvm::toString(file.takeError()));
        }
        pending.push_back(*file);
      }
    }
  }
  for (const PendingFile &file : pending) {
    if (file.temporary.empty()) {
      if (llvm::Error error = writeFile(file.path, file.contents)) {
        discard();
        return failure(llvm::toString(std::move(error)));
      }
      continue;
    }
    if (std::error_code error =
            llvm::sys::fs::rename(file.temporary, file.path)) {
      discard();
      return failure("cannot write '" + file.path + "': " + error.message());
    }
  }
  return 0;
}
