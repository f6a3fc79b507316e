//===- GQAOps.h - Operations of the gqa dialect -----------------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_IR_GQAOPS_H
#define GQA_DIALECT_GQA_IR_GQAOPS_H

#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "gqa/Dialect/GQA/IR/GQADialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/TilingInterface.h"

namespace mlir::gqa {
/// The name of a kernel element type in the metadata ("f16", "bf16",
/// "f32").
StringRef getElementTypeName(Type type);
/// The memory effects of a gqa op in destination-passing style: none on
/// tensors; on memrefs, reads of its inputs and writes (never reads) of its
/// inits.
void getDestinationStyleEffects(
    DestinationStyleOpInterface op,
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects);
/// Checks that `operands` are all tensors or all memrefs (`firstName`
/// naming the first in the message), and that the op has one result per
/// init of the init's type on tensors and none on memrefs (`initNames`
/// naming the inits).
LogicalResult verifyTensorsOrMemRefs(DestinationStyleOpInterface op,
                                     ValueRange operands, StringRef firstName,
                                     ArrayRef<StringRef> initNames);
} // namespace mlir::gqa

#define GET_OP_CLASSES
#include "gqa/Dialect/GQA/IR/GQAOps.h.inc"

#endif // GQA_DIALECT_GQA_IR_GQAOPS_H
