/*===- gqa-c/Dialects.h - The gqa dialect in MLIR's C API -------*- C -*-===*\
|*                                                                            *|
|* MLIR's C API convention for a dialect: a handle that registers and loads  *|
|* gqa into an MlirContext, the registration of every dialect, interface and *|
|* translation gqa's pipelines use, and of gqa's passes and pipelines, so     *|
|* that a compiler driving MLIR through its C API (or Python bindings built  *|
|* on it) parses, verifies and lowers gqa IR. Part of libgqa_compiler.so;    *|
|* the caller links MLIR's C API (libMLIRCAPIIR) of the same MLIR.           *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef GQA_C_DIALECTS_H
#define GQA_C_DIALECTS_H

#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(GQA, gqa);

/// Inserts gqa and every dialect, interface and translation its pipelines
/// (gqa-lower-to-cpu, gqa-lower-to-ptx) use into `registry`.
MLIR_CAPI_EXPORTED void
mlirGQARegisterAllDialects(MlirDialectRegistry registry);

/// Registers gqa's passes and pipelines (not upstream's) with MLIR's pass
/// registry, for mlirParsePassPipeline.
MLIR_CAPI_EXPORTED void mlirGQARegisterPasses(void);

#ifdef __cplusplus
}
#endif

#endif /* GQA_C_DIALECTS_H */
