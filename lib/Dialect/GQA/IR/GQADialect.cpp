//===- GQADialect.cpp - The gqa dialect -----------------------------------===//

#include "gqa/Dialect/GQA/IR/GQADialect.h"
#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"

using namespace mlir;
using namespace mlir::gqa;

#include "gqa/Dialect/GQA/IR/GQADialect.cpp.inc"

void GQADialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "gqa/Dialect/GQA/IR/GQAOps.cpp.inc"
      >();
}
