//===- GQAOps.cpp - Operations of the gqa dialect -------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;

#define GET_OP_CLASSES
#include "gqa/Dialect/GQA/IR/GQAOps.cpp.inc"

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

double AttentionOp::getScaleOrDefault() {
  if (std::optional<APFloat> scale = getScale())
    return scale->convertToDouble();
  return 1.0 / std::sqrt(static_cast<double>(getHeadDim()));
}

void AttentionOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // On tensors the op is pure; on memrefs it reads its inputs and writes
  // (never reads) its init.
  for (OpOperand &operand : getOperation()->getOpOperands()) {
    if (!isa<MemRefType>(operand.get().getType()))
      continue;
    if (isDpsInit(&operand))
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
    else
      effects.emplace_back(MemoryEffects::Read::get(), &operand,
                           SideEffects::DefaultResource::get());
  }
}

namespace {

/// Checks the operands of an attention op against each other and against its
/// attributes, naming the operand, the dimension and both values in every
/// diagnostic.
class AttentionVerifier {
public:
  explicit AttentionVerifier(AttentionOp op)
      : op(op), layout(op.getLayout()), dims(getLayoutDims(layout)) {}

  LogicalResult verify() {
    if (failed(verifyKinds()) || failed(verifyRanksAndElementTypes()) ||
        failed(verifyGrouping()) || failed(verifyStaticDims()) ||
        failed(verifyShapes()) || failed(verifyKVLens()) ||
        failed(verifyScalars()))
      return failure();
    return success();
  }

private:
  struct NamedOperand {
    StringRef name;
    ShapedType type;
  };

  SmallVector<NamedOperand> attentionTensors() {
    return {{"query", op.getQueryType()},
            {"key", op.getKeyType()},
            {"value", op.getValueType()},
            {"init", op.getInitType()}};
  }

  StringRef dimName(unsigned dim) {
    if (dim == dims.batch)
      return "batch";
    if (dim == dims.heads)
      return "head count";
    if (dim == dims.seq)
      return "sequence length";
    return "head dim";
  }

  /// Prints "'key' head count (dim 1 of bhsd)".
  InFlightDiagnostic emitDimError(StringRef operand, unsigned dim) {
    return op.emitOpError()
           << "'" << operand << "' " << dimName(dim) << " (dim " << dim
           << " of " << stringifyLayout(layout) << ")";
  }

  /// Both operands are all tensors or all memrefs, and the results follow.
  LogicalResult verifyKinds() {
    bool onTensors = isa<RankedTensorType>(op.getQuery().getType());
    for (Value operand : op->getOperands()) {
      if (isa<RankedTensorType>(operand.getType()) != onTensors)
        return op.emitOpError()
               << "operands must be all tensors or all memrefs, but 'query' is "
               << op.getQuery().getType() << " and an operand is "
               << operand.getType();
    }
    if (onTensors) {
      if (op.getResult().size() != 1)
        return op.emitOpError() << "on tensors the op must have one result, "
                                   "got "
                                << op.getResult().size();
      if (op.getResult()[0].getType() != op.getInit().getType())
        return op.emitOpError()
               << "result type " << op.getResult()[0].getType()
               << " differs from 'init' type " << op.getInit().getType();
    } else if (!op.getResult().empty()) {
      return op.emitOpError()
             << "on memrefs the op writes 'init' and has no result, got "
             << op.getResult().size();
    }
    return success();
  }

  LogicalResult verifyRanksAndElementTypes() {
    Type elementType = op.getElementType();
    for (auto [name, type] : attentionTensors()) {
      if (type.getRank() != 4)
        return op.emitOpError()
               << "'" << name << "' must have rank 4 ("
               << (layout == Layout::BHSD ? "B, H, S, D" : "B, S, H, D")
               << " in layout " << stringifyLayout(layout) << "), got rank "
               << type.getRank();
    }
    if (!isa<Float16Type, BFloat16Type, Float32Type>(elementType))
      return op.emitOpError()
             << "'query' element type must be f16, bf16 or f32, got "
             << elementType;
    for (auto [name, type] : attentionTensors()) {
      if (type.getElementType() != elementType)
        return op.emitOpError()
               << "'" << name << "' element type " << type.getElementType()
               << " differs from 'query' element type " << elementType;
    }
    return success();
  }

  LogicalResult verifyGrouping() {
    int64_t qHeads = op.getQHeads(), kvHeads = op.getKvHeads();
    if (qHeads <= 0)
      return op.emitOpError() << "q_heads must be positive, got " << qHeads;
    if (kvHeads <= 0)
      return op.emitOpError() << "kv_heads must be positive, got " << kvHeads;
    if (qHeads % kvHeads != 0)
      return op.emitOpError()
             << "q_heads (" << qHeads << ") is not a multiple of kv_heads ("
             << kvHeads << "): query heads must split into equal groups";
    return success();
  }

  /// Head counts and head dims are static: they shape the generated code.
  LogicalResult verifyStaticDims() {
    for (auto [name, type] : attentionTensors()) {
      for (unsigned dim : {dims.heads, dims.headDim}) {
        if (type.isDynamicDim(dim))
          return emitDimError(name, dim) << " must be static";
        if (type.getDimSize(dim) == 0)
          return emitDimError(name, dim) << " must be positive, got 0";
      }
    }
    return success();
  }

  /// `what` of `operand` must equal `expected` (`expectedWhat`) when both
  /// are static.
  LogicalResult expectDim(StringRef operand, ShapedType type, unsigned dim,
                          int64_t expected, StringRef expectedWhat) {
    int64_t actual = type.getDimSize(dim);
    if (ShapedType::isDynamic(actual) || ShapedType::isDynamic(expected) ||
        actual == expected)
      return success();
    return emitDimError(operand, dim) << " is " << actual << ", but "
                                      << expectedWhat << " is " << expected;
  }

  LogicalResult verifyShapes() {
    ShapedType query = op.getQueryType(), key = op.getKeyType(),
               value = op.getValueType(), init = op.getInitType();
    int64_t qHeads = op.getQHeads(), kvHeads = op.getKvHeads();
    // The grouping.
    if (failed(expectDim("query", query, dims.heads, qHeads, "q_heads")) ||
        failed(expectDim("init", init, dims.heads, qHeads, "q_heads")) ||
        failed(expectDim("key", key, dims.heads, kvHeads, "kv_heads")) ||
        failed(expectDim("value", value, dims.heads, kvHeads, "kv_heads")))
      return failure();
    // Head dims: D is shared by query and key, Dv by value and init.
    if (failed(expectDim("key", key, dims.headDim,
                         query.getDimSize(dims.headDim),
                         "the 'query' head dim")) ||
        failed(expectDim("init", init, dims.headDim,
                         value.getDimSize(dims.headDim),
                         "the 'value' head dim")))
      return failure();
    // Sequence lengths: Skv is shared by key and value, Sq by query and init.
    if (failed(expectDim("value", value, dims.seq, key.getDimSize(dims.seq),
                         "the 'key' sequence length")) ||
        failed(expectDim("init", init, dims.seq, query.getDimSize(dims.seq),
                         "the 'query' sequence length")))
      return failure();
    // One batch.
    int64_t batch = query.getDimSize(dims.batch);
    for (auto [name, type] : ArrayRef(attentionTensors()).drop_front()) {
      if (failed(expectDim(name, type, dims.batch, batch, "the 'query' batch")))
        return failure();
    }
    return success();
  }

  LogicalResult verifyKVLens() {
    Value kvLens = op.getKvLens();
    if (!kvLens)
      return success();
    auto type = cast<ShapedType>(kvLens.getType());
    if (type.getRank() != 1)
      return op.emitOpError()
             << "'kv_lens' must have rank 1 (shape [B]), got rank "
             << type.getRank();
    Type elementType = type.getElementType();
    if (!elementType.isInteger(32) && !elementType.isIndex())
      return op.emitOpError()
             << "'kv_lens' element type must be i32 or index, got "
             << elementType;
    int64_t batch = op.getQueryType().getDimSize(dims.batch);
    int64_t length = type.getDimSize(0);
    if (!ShapedType::isDynamic(batch) && !ShapedType::isDynamic(length) &&
        batch != length)
      return op.emitOpError() << "'kv_lens' dim 0 is " << length
                              << ", but the 'query' batch is " << batch;
    return success();
  }

  LogicalResult verifyScalars() {
    auto checkPositive = [&](std::optional<APFloat> value,
                             StringRef name) -> LogicalResult {
      if (!value)
        return success();
      double number = value->convertToDouble();
      if (!(number > 0.0) || !std::isfinite(number))
        return op.emitOpError()
               << name << " must be positive and finite, got " << number;
      return success();
    };
    return success(succeeded(checkPositive(op.getScale(), "scale")) &&
                   succeeded(checkPositive(op.getSoftcap(), "softcap")));
  }

  AttentionOp op;
  Layout layout;
  LayoutDims dims;
};

} // namespace

LogicalResult AttentionOp::verify() {
  return AttentionVerifier(*this).verify();
}
