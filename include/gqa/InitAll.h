//===- InitAll.h - Register everything gqa tools use ------------*- C++ -*-===//
//
// One place for tools and embedders to register the gqa dialect, its passes
// and the upstream dialects and passes its pipelines use.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_INITALL_H
#define GQA_INITALL_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::gqa {

/// Registers the gqa dialect with its interface models, the upstream dialects
/// that gqa's pipelines produce, and their bufferization, LLVM-conversion and
/// GPU-target interfaces.
void registerAllDialects(DialectRegistry &registry);

/// Registers gqa's passes and pass pipelines, and the upstream passes.
void registerAllPasses();

/// Registers gqa's own passes and pipelines only (a tool that registered
/// upstream's, such as mlir-opt loading gqa as a plugin).
void registerGQAOwnPasses();

} // namespace mlir::gqa

#endif // GQA_INITALL_H
