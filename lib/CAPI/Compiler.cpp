//===- Compiler.cpp - The gqa compiler as a C library ---------------------===//

#include "gqa-c/Compiler.h"
#include "CAPIUtils.h"
#include "gqa/InitAll.h"
#include "gqa/Target/PTXCompiler.h"
#include "gqa/Tools/AttentionModule.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>
#include <string>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::capi;

namespace {

/// A context with everything the pipeline needs, collecting its diagnostics
/// into one message.
class CompilerContext {
public:
  CompilerContext() : context(makeRegistry()) {
    context.loadAllAvailableDialects();
    context.printOpOnDiagnostic(false);
    handler.emplace(&context, [this](Diagnostic &diagnostic) {
      if (diagnostic.getSeverity() != DiagnosticSeverity::Error)
        return success();
      if (!diagnostics.empty())
        diagnostics += "\n";
      llvm::raw_string_ostream os(diagnostics);
      Location loc = diagnostic.getLocation();
      if (auto file = dyn_cast<FileLineColLoc>(loc))
        os << file.getFilename().getValue() << ":" << file.getLine() << ":"
           << file.getColumn() << ": ";
      else if (auto name = dyn_cast<NameLoc>(loc))
        os << name.getName().getValue() << ": ";
      os << diagnostic;
      return success();
    });
  }

  MLIRContext context;
  std::string diagnostics;

private:
  static DialectRegistry makeRegistry() {
    DialectRegistry registry;
    registerAllDialects(registry);
    return registry;
  }

  std::optional<ScopedDiagnosticHandler> handler;
};

/// The pipeline options of `target`, or a message.
std::string toPipelineOptions(const gqa_compiler_target *target,
                              GPUPipelineOptions &options) {
  std::string chip = target && target->chip ? target->chip : "sm_90";
  if (!isSupportedGPUChip(chip))
    return "unknown chip '" + chip + "' (expected sm_80 or sm_90)";
  options.chip = chip;
  options.maxSplits = target && target->max_splits >= 0 ? target->max_splits
                                                        : kDefaultMaxSplits;
  return "";
}

/// Compiles `module` and returns each op's kernels, named under `stem`.
int compile(CompilerContext &compiler, ModuleOp module,
            const GPUPipelineOptions &options, llvm::StringRef stem,
            std::vector<gqa_compiler_kernel> &kernels, char **error) {
  FailureOr<std::vector<CompiledKernelSet>> sets =
      compileToPTX(module, options);
  if (failed(sets))
    return fail(error, compiler.diagnostics.empty() ? "compilation failed"
                                                    : compiler.diagnostics);
  for (auto [index, set] : llvm::enumerate(*sets)) {
    std::string json;
    llvm::raw_string_ostream os(json);
    writeKernelMetadata(os, set.metadata, options.chip,
                        getKernelSetPTXPath(stem, index, sets->size()));
    kernels.push_back({copyToC(set.ptx), copyToC(json)});
  }
  return 0;
}

/// Compiles the one op of `module` (built by the library, so that its
/// diagnostics are the only ones) into `*kernel`.
int compileOne(CompilerContext &compiler, ModuleOp module,
               const GPUPipelineOptions &options, const char *ptxFileName,
               gqa_compiler_kernel *kernel, char **error) {
  llvm::StringRef name = ptxFileName ? ptxFileName : "kernel.ptx";
  std::vector<gqa_compiler_kernel> kernels;
  if (int status = compile(compiler, module, options,
                           name.drop_back(name.ends_with(".ptx") ? 4 : 0),
                           kernels, error))
    return status;
  *kernel = kernels.front();
  return 0;
}

} // namespace

extern "C" int gqa_compiler_compile_attention(
    const gqa_compiler_attention *attention, const gqa_compiler_target *target,
    const char *ptx_file_name, gqa_compiler_kernel *kernel, char **error) {
  if (error)
    *error = nullptr;
  if (!attention || !kernel)
    return fail(error, "attention and kernel must not be NULL");
  GPUPipelineOptions options;
  std::string message = toPipelineOptions(target, options);
  if (!message.empty())
    return fail(error, message);
  AttentionSpec spec = toSpec(*attention, message);
  if (!message.empty())
    return fail(error, message);

  CompilerContext compiler;
  OwningOpRef<ModuleOp> module =
      buildAttentionModule(compiler.context, spec, "gqa_attention");
  if (!module)
    return fail(error, compiler.diagnostics);
  return compileOne(compiler, *module, options, ptx_file_name, kernel, error);
}

extern "C" int gqa_compiler_compile_merge_states(
    const gqa_compiler_merge_states *merge, const gqa_compiler_target *target,
    const char *ptx_file_name, gqa_compiler_kernel *kernel, char **error) {
  if (error)
    *error = nullptr;
  if (!merge || !kernel)
    return fail(error, "merge and kernel must not be NULL");
  GPUPipelineOptions options;
  std::string message = toPipelineOptions(target, options);
  if (!message.empty())
    return fail(error, message);
  MergeStatesSpec spec = toSpec(*merge, message);
  if (!message.empty())
    return fail(error, message);

  CompilerContext compiler;
  OwningOpRef<ModuleOp> module =
      buildMergeStatesModule(compiler.context, spec, "gqa_merge_states");
  if (!module)
    return fail(error, compiler.diagnostics);
  return compileOne(compiler, *module, options, ptx_file_name, kernel, error);
}

extern "C" int gqa_compiler_compile_module(const char *source, size_t size,
                                           const gqa_compiler_target *target,
                                           const char *ptx_file_stem,
                                           gqa_compiler_kernel **kernels,
                                           size_t *count, char **error) {
  if (error)
    *error = nullptr;
  if (!source || !kernels || !count)
    return fail(error, "source, kernels and count must not be NULL");
  GPUPipelineOptions options;
  std::string message = toPipelineOptions(target, options);
  if (!message.empty())
    return fail(error, message);

  CompilerContext compiler;
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      llvm::StringRef(source, size), &compiler.context, "module");
  if (!module)
    return fail(error, compiler.diagnostics);
  std::vector<gqa_compiler_kernel> compiled;
  if (int status =
          compile(compiler, *module, options,
                  ptx_file_stem ? ptx_file_stem : "kernel", compiled, error))
    return status;
  *kernels = static_cast<gqa_compiler_kernel *>(
      std::malloc(compiled.size() * sizeof(gqa_compiler_kernel)));
  if (!*kernels) {
    gqa_compiler_kernel *owned = compiled.data();
    for (size_t i = 0; i < compiled.size(); ++i) {
      std::free(owned[i].ptx);
      std::free(owned[i].metadata_json);
    }
    return fail(error, "out of memory");
  }
  std::memcpy(*kernels, compiled.data(),
              compiled.size() * sizeof(gqa_compiler_kernel));
  *count = compiled.size();
  return 0;
}

extern "C" void gqa_compiler_free(char *string) { std::free(string); }

extern "C" void gqa_compiler_free_kernels(gqa_compiler_kernel *kernels,
                                          size_t count) {
  if (!kernels)
    return;
  for (size_t i = 0; i < count; ++i) {
    std::free(kernels[i].ptx);
    std::free(kernels[i].metadata_json);
  }
  std::free(kernels);
}
