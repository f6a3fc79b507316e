//===- GQAPlugin.cpp - gqa as a dialect and pass plugin of mlir-opt -------===//
//
// Loaded into a stock mlir-opt (`--load-dialect-plugin=libGQAPlugin.so
// --load-pass-plugin=libGQAPlugin.so`), this library registers the gqa
// dialect with the interfaces and translations its pipelines need, and
// gqa's passes and pipelines (gqa-lower-to-cpu, gqa-lower-to-ptx). It links
// the same libMLIR.so as mlir-opt, so both share one set of registries;
// mlir-opt's own passes are already registered and are not registered again.
//
//===----------------------------------------------------------------------===//

#include "gqa/InitAll.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/Plugins/DialectPlugin.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/Compiler.h"

using namespace mlir;

extern "C" LLVM_ATTRIBUTE_WEAK DialectPluginLibraryInfo
mlirGetDialectPluginInfo() {
  return {
      MLIR_PLUGIN_API_VERSION, "GQA", LLVM_VERSION_STRING,
      [](DialectRegistry *registry) { gqa::registerAllDialects(*registry); }};
}

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "GQA", LLVM_VERSION_STRING,
          [] { gqa::registerGQAOwnPasses(); }};
}
