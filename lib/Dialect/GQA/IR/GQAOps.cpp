//===- GQAOps.cpp - Operations of the gqa dialect -------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

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
      : op(op), layout(op.getLayout()), dims(getLayoutDims(layout)),
        kvDims(op.getKVLayoutDims()), paged(op.isPaged()) {}

  LogicalResult verify() {
    if (failed(verifyKinds()) || failed(verifyRanksAndElementTypes()) ||
        failed(verifyGrouping()) || failed(verifyStaticDims()) ||
        failed(verifyShapes()) || failed(verifyKVLens()) ||
        failed(verifyBlockTable()) || failed(verifySinks()) ||
        failed(verifyLseInit()) || failed(verifyScalars()))
      return failure();
    return success();
  }

private:
  struct NamedOperand {
    StringRef name;
    ShapedType type;
    /// Key and value of a paged cache are (page, slot, head, head dim).
    bool isPagedCache;
  };

  SmallVector<NamedOperand> attentionTensors() {
    return {{"query", op.getQueryType(), false},
            {"key", op.getKeyType(), paged},
            {"value", op.getValueType(), paged},
            {"init", op.getInitType(), false}};
  }

  const LayoutDims &dimsOf(const NamedOperand &operand) {
    return operand.isPagedCache ? kvDims : dims;
  }

  StringRef dimName(const NamedOperand &operand, unsigned dim) {
    const LayoutDims &at = dimsOf(operand);
    if (dim == at.batch)
      return operand.isPagedCache ? "page count" : "batch";
    if (dim == at.heads)
      return "head count";
    if (dim == at.seq)
      return operand.isPagedCache ? "page size" : "sequence length";
    return "head dim";
  }

  /// Prints "'key' head count (dim 1 of bhsd)".
  InFlightDiagnostic emitDimError(const NamedOperand &operand, unsigned dim) {
    InFlightDiagnostic diag = op.emitOpError() << "'" << operand.name << "' "
                                               << dimName(operand, dim)
                                               << " (dim " << dim << " of ";
    if (operand.isPagedCache)
      diag << "the paged cache [pages, page size, H, D])";
    else
      diag << stringifyLayout(layout) << ")";
    return diag;
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
      ValueRange inits = op.getDpsInits();
      if (op.getResult().size() != inits.size())
        return op.emitOpError()
               << "on tensors the op must have one result per init ("
               << inits.size() << "), got " << op.getResult().size();
      for (auto [index, result, init] : llvm::enumerate(op.getResult(), inits))
        if (result.getType() != init.getType())
          return op.emitOpError()
                 << (index == 0 ? "result" : "LSE result") << " type "
                 << result.getType() << " differs from '"
                 << (index == 0 ? "init" : "lse_init") << "' type "
                 << init.getType();
    } else if (!op.getResult().empty()) {
      return op.emitOpError()
             << "on memrefs the op writes 'init' and has no result, got "
             << op.getResult().size();
    }
    return success();
  }

  LogicalResult verifyRanksAndElementTypes() {
    Type elementType = op.getElementType();
    for (const NamedOperand &operand : attentionTensors()) {
      if (operand.type.getRank() == 4)
        continue;
      InFlightDiagnostic diag = op.emitOpError() << "'" << operand.name
                                                 << "' must have rank 4 (";
      if (operand.isPagedCache)
        diag << "pages, page size, H, D with a block_table";
      else
        diag << (layout == Layout::BHSD ? "B, H, S, D" : "B, S, H, D")
             << " in layout " << stringifyLayout(layout);
      return diag << "), got rank " << operand.type.getRank();
    }
    if (!isa<Float16Type, BFloat16Type, Float32Type>(elementType))
      return op.emitOpError()
             << "'query' element type must be f16, bf16 or f32, got "
             << elementType;
    for (const NamedOperand &operand : attentionTensors()) {
      if (operand.type.getElementType() != elementType)
        return op.emitOpError()
               << "'" << operand.name << "' element type "
               << operand.type.getElementType()
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

  /// Head counts and head dims are static: they shape the generated code. So
  /// is the page size of a paged cache.
  LogicalResult verifyStaticDims() {
    for (const NamedOperand &operand : attentionTensors()) {
      const LayoutDims &at = dimsOf(operand);
      SmallVector<unsigned, 3> staticDims = {at.heads, at.headDim};
      if (operand.isPagedCache)
        staticDims.push_back(at.seq);
      for (unsigned dim : staticDims) {
        if (operand.type.isDynamicDim(dim))
          return emitDimError(operand, dim) << " must be static";
        if (operand.type.getDimSize(dim) == 0)
          return emitDimError(operand, dim) << " must be positive, got 0";
      }
      // Every lowering indexes elements and bytes in 64 bits. An absurd
      // static shape (2^62 heads) is refused here; the sizes known only at
      // run time are checked by the runtime and the tools.
      int64_t bytes = operand.type.getElementTypeBitWidth() / 8;
      for (int64_t size : operand.type.getShape()) {
        if (ShapedType::isDynamic(size))
          continue;
        if (llvm::MulOverflow(bytes, size, bytes) || bytes > kMaxStaticBytes)
          return op.emitOpError()
                 << "'" << operand.name << "' of type " << operand.type
                 << " has more than 2^48 bytes in its static dimensions: "
                    "offsets into it could overflow 64-bit indices";
      }
    }
    return success();
  }

  /// The most bytes the static dimensions of one operand may span (2^48, a
  /// quarter of a petabyte), leaving 2^15 for the product of its dynamic
  /// sizes before a 64-bit byte offset could overflow.
  static constexpr int64_t kMaxStaticBytes = int64_t{1} << 48;

  /// `what` of `operand` must equal `expected` (`expectedWhat`) when both
  /// are static.
  LogicalResult expectDim(const NamedOperand &operand, unsigned dim,
                          int64_t expected, StringRef expectedWhat) {
    int64_t actual = operand.type.getDimSize(dim);
    if (ShapedType::isDynamic(actual) || ShapedType::isDynamic(expected) ||
        actual == expected)
      return success();
    return emitDimError(operand, dim) << " is " << actual << ", but "
                                      << expectedWhat << " is " << expected;
  }

  LogicalResult verifyShapes() {
    SmallVector<NamedOperand> tensors = attentionTensors();
    const NamedOperand &query = tensors[0], &key = tensors[1],
                       &value = tensors[2], &init = tensors[3];
    int64_t qHeads = op.getQHeads(), kvHeads = op.getKvHeads();
    // The grouping.
    if (failed(expectDim(query, dims.heads, qHeads, "q_heads")) ||
        failed(expectDim(init, dims.heads, qHeads, "q_heads")) ||
        failed(expectDim(key, kvDims.heads, kvHeads, "kv_heads")) ||
        failed(expectDim(value, kvDims.heads, kvHeads, "kv_heads")))
      return failure();
    // Head dims: D is shared by query and key, Dv by value and init.
    if (failed(expectDim(key, kvDims.headDim,
                         query.type.getDimSize(dims.headDim),
                         "the 'query' head dim")) ||
        failed(expectDim(init, dims.headDim,
                         value.type.getDimSize(kvDims.headDim),
                         "the 'value' head dim")))
      return failure();
    // Sequence lengths: Skv (or the page size) is shared by key and value,
    // Sq by query and init.
    if (failed(expectDim(value, kvDims.seq, key.type.getDimSize(kvDims.seq),
                         paged ? "the 'key' page size"
                               : "the 'key' sequence length")) ||
        failed(expectDim(init, dims.seq, query.type.getDimSize(dims.seq),
                         "the 'query' sequence length")))
      return failure();
    // One batch; a paged cache has one page count instead.
    int64_t batch = query.type.getDimSize(dims.batch);
    if (failed(expectDim(init, dims.batch, batch, "the 'query' batch")))
      return failure();
    if (paged)
      return expectDim(value, kvDims.batch, key.type.getDimSize(kvDims.batch),
                       "the 'key' page count");
    for (const NamedOperand &operand : {key, value})
      if (failed(expectDim(operand, dims.batch, batch, "the 'query' batch")))
        return failure();
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

  LogicalResult verifyBlockTable() {
    Value blockTable = op.getBlockTable();
    if (!blockTable)
      return success();
    auto type = cast<ShapedType>(blockTable.getType());
    if (type.getRank() != 2)
      return op.emitOpError()
             << "'block_table' must have rank 2 (shape [B, max pages]), got "
                "rank "
             << type.getRank();
    if (!type.getElementType().isInteger(32))
      return op.emitOpError() << "'block_table' element type must be i32, got "
                              << type.getElementType();
    int64_t batch = op.getQueryType().getDimSize(dims.batch);
    int64_t rows = type.getDimSize(0);
    if (!ShapedType::isDynamic(batch) && !ShapedType::isDynamic(rows) &&
        batch != rows)
      return op.emitOpError() << "'block_table' dim 0 is " << rows
                              << ", but the 'query' batch is " << batch;
    if (type.getDimSize(1) == 0)
      return op.emitOpError()
             << "'block_table' must give each sequence at least one page, got "
                "shape ["
             << rows << ", 0]";
    return success();
  }

  /// `sinks`: one f32 logit per query head.
  LogicalResult verifySinks() {
    Value sinks = op.getSinks();
    if (!sinks)
      return success();
    auto type = cast<ShapedType>(sinks.getType());
    if (type.getRank() != 1)
      return op.emitOpError()
             << "'sinks' must have rank 1 (shape [Hq]), got rank "
             << type.getRank();
    if (!type.getElementType().isF32())
      return op.emitOpError() << "'sinks' element type must be f32, got "
                              << type.getElementType();
    if (type.getDimSize(0) != op.getQHeads())
      return op.emitOpError()
             << "'sinks' dim 0 must be q_heads (" << op.getQHeads() << "), got "
             << (type.isDynamicDim(0) ? std::string("?")
                                      : std::to_string(type.getDimSize(0)));
    return success();
  }

  /// `lse_init`: f32 [B, Hq, Sq], whatever the layout.
  LogicalResult verifyLseInit() {
    ShapedType type = op.getLseInitType();
    if (!type)
      return success();
    if (type.getRank() != 3)
      return op.emitOpError()
             << "'lse_init' must have rank 3 (shape [B, Hq, Sq]), got rank "
             << type.getRank();
    if (!type.getElementType().isF32())
      return op.emitOpError() << "'lse_init' element type must be f32, got "
                              << type.getElementType();
    if (type.getDimSize(1) != op.getQHeads())
      return op.emitOpError()
             << "'lse_init' dim 1 must be q_heads (" << op.getQHeads()
             << "), got "
             << (type.isDynamicDim(1) ? std::string("?")
                                      : std::to_string(type.getDimSize(1)));
    ShapedType query = op.getQueryType();
    for (auto [dim, queryDim, what] :
         {std::tuple<unsigned, unsigned, StringRef>{0, dims.batch, "batch"},
          {2, dims.seq, "sequence length"}}) {
      int64_t actual = type.getDimSize(dim),
              expected = query.getDimSize(queryDim);
      if (!ShapedType::isDynamic(actual) && !ShapedType::isDynamic(expected) &&
          actual != expected)
        return op.emitOpError()
               << "'lse_init' dim " << dim << " is " << actual
               << ", but the 'query' " << what << " is " << expected;
    }
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
  /// Of query and init; of key and value (the layout's unless paged).
  LayoutDims dims, kvDims;
  bool paged;
};

} // namespace

LogicalResult AttentionOp::verify() {
  return AttentionVerifier(*this).verify();
}
