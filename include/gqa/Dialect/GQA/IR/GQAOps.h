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

#define GET_OP_CLASSES
#include "gqa/Dialect/GQA/IR/GQAOps.h.inc"

#endif // GQA_DIALECT_GQA_IR_GQAOPS_H
