// Parses a gqa module, verifies it and lowers it with gqa's CPU pipeline and
// its PTX pipeline's first stages, through the installed package.
#include "gqa/InitAll.h"
#include "gqa/Pipelines/Pipelines.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <cstdio>

static const char *kModule = R"mlir(
func.func @f(%q: memref<?x?x8x64xf32>, %k: memref<?x?x2x64xf32>, %o: memref<?x?x8x64xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf32>, memref<?x?x2x64xf32>, memref<?x?x2x64xf32>)
    outs(%o : memref<?x?x8x64xf32>) heads(8, 2) layout<bshd> mask<causal>
  return
}
)mlir";

int main() {
  mlir::DialectRegistry registry;
  mlir::gqa::registerAllDialects(registry);
  mlir::gqa::registerAllPasses();
  mlir::MLIRContext context(registry);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(kModule, &context);
  if (!module)
    return 1;
  mlir::PassManager pm(&context);
  mlir::gqa::CPUPipelineOptions options;
  mlir::gqa::buildGQAToLLVMCPUPipeline(pm, options);
  if (mlir::failed(pm.run(*module)))
    return 1;
  std::printf("consumer: lowered to the LLVM dialect\n");
  return 0;
}
