//===- GQADialect.h - The gqa dialect ---------------------------*- C++ -*-===//

#ifndef GQA_DIALECT_GQA_IR_GQADIALECT_H
#define GQA_DIALECT_GQA_IR_GQADIALECT_H

#include "mlir/IR/Dialect.h"

#include "gqa/Dialect/GQA/IR/GQADialect.h.inc"

#endif // GQA_DIALECT_GQA_IR_GQADIALECT_H
