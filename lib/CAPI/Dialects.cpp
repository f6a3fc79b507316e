//===- Dialects.cpp - The gqa dialect in MLIR's C API ---------------------===//

#include "gqa-c/Dialects.h"
#include "gqa/Dialect/GQA/IR/GQADialect.h"
#include "gqa/InitAll.h"
#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Registration.h"

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(GQA, gqa, mlir::gqa::GQADialect)

void mlirGQARegisterAllDialects(MlirDialectRegistry registry) {
  mlir::gqa::registerAllDialects(*unwrap(registry));
}

void mlirGQARegisterPasses(void) { mlir::gqa::registerGQAOwnPasses(); }
