//===- BufferizableOpInterfaceImpl.h - Bufferizing gqa ops ------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
#define GQA_DIALECT_GQA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::gqa {

/// Attaches the bufferization interface to `gqa.attention`, so that
/// one-shot bufferization turns it into its memref form, writing the result
/// into the buffer of its `outs` init in place.
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

} // namespace mlir::gqa

#endif // GQA_DIALECT_GQA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
