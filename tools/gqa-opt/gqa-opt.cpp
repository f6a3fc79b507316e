//===- gqa-opt.cpp - The gqa optimizer driver -----------------------------===//
//
// mlir-opt for gqa: parses, verifies, runs passes and prints MLIR holding
// gqa ops.
//
//===----------------------------------------------------------------------===//

#include "gqa/InitAll.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::gqa::registerAllDialects(registry);
  mlir::gqa::registerAllPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "gqa optimizer driver\n", registry));
}
