/* gqa through MLIR's C API, from C: registers the dialect (by its handle and
 * with every dialect its pipelines use) and gqa's passes, parses and
 * verifies a gqa module, refuses a bad one, and lowers it with
 * gqa-lower-to-cpu. Exits nonzero on the first failed check. */

#include "gqa-c/Dialects.h"
#include "mlir-c/Diagnostics.h"
#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#include <stdio.h>
#include <string.h>

static int failures = 0;

static void check(int condition, const char *what) {
  printf("%s: %s\n", condition ? "ok" : "FAIL", what);
  failures += !condition;
}

static const char *module =
    "func.func @f(%q: memref<?x?x8x64xf32>, %k: memref<?x?x2x64xf32>,\n"
    "             %o: memref<?x?x8x64xf32>) {\n"
    "  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf32>, "
    "memref<?x?x2x64xf32>, memref<?x?x2x64xf32>)\n"
    "    outs(%o : memref<?x?x8x64xf32>) heads(8, 2) layout<bshd> "
    "mask<causal>\n"
    "  return\n"
    "}\n";

static MlirLogicalResult countDiagnostic(MlirDiagnostic diagnostic,
                                         void *userData) {
  (void)diagnostic;
  ++*(int *)userData;
  return mlirLogicalResultSuccess();
}

int main(void) {
  MlirDialectHandle gqa = mlirGetDialectHandle__gqa__();
  MlirStringRef name = mlirDialectHandleGetNamespace(gqa);
  check(name.length == 3 && strncmp(name.data, "gqa", 3) == 0,
        "the handle names the gqa dialect");

  MlirDialectRegistry registry = mlirDialectRegistryCreate();
  mlirGQARegisterAllDialects(registry);
  MlirContext context = mlirContextCreateWithRegistry(registry, false);
  mlirDialectRegistryDestroy(registry);
  mlirDialectHandleLoadDialect(gqa, context);
  check(!mlirDialectIsNull(mlirContextGetOrLoadDialect(
            context, mlirStringRefCreateFromCString("gqa"))),
        "the dialect is loaded");

  MlirModule parsed =
      mlirModuleCreateParse(context, mlirStringRefCreateFromCString(module));
  check(!mlirModuleIsNull(parsed), "a gqa module parses");
  check(mlirOperationVerify(mlirModuleGetOperation(parsed)), "and verifies");

  /* heads(8, 3): the verifier's diagnostic, and no module. */
  char bad[1024];
  snprintf(bad, sizeof(bad), "%s", module);
  char *heads = strstr(bad, "heads(8, 2)");
  heads[9] = '3';
  int diagnostics = 0;
  MlirDiagnosticHandlerID handler = mlirContextAttachDiagnosticHandler(
      context, countDiagnostic, &diagnostics, NULL);
  MlirModule refused =
      mlirModuleCreateParse(context, mlirStringRefCreateFromCString(bad));
  mlirContextDetachDiagnosticHandler(context, handler);
  check(mlirModuleIsNull(refused) && diagnostics > 0,
        "heads(8, 3) is refused with a diagnostic");

  mlirGQARegisterPasses();
  MlirPassManager pm = mlirPassManagerCreate(context);
  MlirLogicalResult pipeline = mlirParsePassPipeline(
      mlirPassManagerGetAsOpPassManager(pm),
      mlirStringRefCreateFromCString("builtin.module(gqa-lower-to-cpu)"), NULL,
      NULL);
  check(mlirLogicalResultIsSuccess(pipeline),
        "gqa-lower-to-cpu parses as a pipeline");
  check(mlirLogicalResultIsSuccess(
            mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(parsed))),
        "and lowers the module");
  MlirOperation first = mlirBlockGetFirstOperation(mlirModuleGetBody(parsed));
  MlirStringRef firstName = mlirIdentifierStr(mlirOperationGetName(first));
  check(firstName.length == 9 && strncmp(firstName.data, "llvm.func", 9) == 0,
        "to the LLVM dialect");

  mlirPassManagerDestroy(pm);
  mlirModuleDestroy(parsed);
  mlirContextDestroy(context);
  return failures != 0;
}
