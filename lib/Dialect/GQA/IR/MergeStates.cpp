//===- MergeStates.cpp - gqa.merge_states ---------------------------------===//
//
// The merge of two partial attention results by their log-sum-exps: its
// verifier and its kernel configuration.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// "?" for a dynamic size.
std::string printSize(int64_t size) {
  return ShapedType::isDynamic(size) ? "?" : std::to_string(size);
}

/// Checks the three outputs and the three log-sum-exps of a merge against
/// each other, naming the operand, the dimension and both sizes.
class MergeStatesVerifier {
public:
  explicit MergeStatesVerifier(MergeStatesOp op) : op(op) {}

  LogicalResult verify() {
    if (failed(verifyTensorsOrMemRefs(op, op->getOperands(), "out_a",
                                      {"init", "lse_init"})))
      return failure();
    auto outA = cast<ShapedType>(op.getOutA().getType());
    int64_t rank = outA.getRank();
    if (rank != 3 && rank != 4)
      return op.emitOpError()
             << "expects 'out_a' of rank 4 ([B, S, H, Dv] or [B, H, S, Dv] "
                "as the layout orders it) or 3 (packed tokens [T, H, Dv]), "
                "got "
             << outA;
    if (rank == 3 && op.getLayout() != Layout::BSHD)
      return op.emitOpError()
             << "packed tokens [T, H, Dv] need layout bshd, got layout "
             << stringifyLayout(op.getLayout());
    Type element = outA.getElementType();
    if (!element.isF16() && !element.isBF16() && !element.isF32())
      return op.emitOpError()
             << "expects 'out_a' to hold f16, bf16 or f32, got " << element;
    // Dimension positions of the outputs: batch, seq, heads, head dim (-1:
    // none).
    LayoutDims layout = getLayoutDims(op.getLayout());
    outputDims =
        rank == 3 ? std::array<int, 4>{-1, 0, 1, 2}
                  : std::array<int, 4>{int(layout.batch), int(layout.seq),
                                       int(layout.heads), int(layout.headDim)};
    if (outA.isDynamicDim(outputDims[2]) || outA.isDynamicDim(outputDims[3]))
      return op.emitOpError()
             << "expects a static head count and head dim in 'out_a', got "
             << outA;
    for (auto [value, name] :
         {std::pair(op.getOutB(), "out_b"), std::pair(op.getInit(), "init")})
      if (failed(verifyOutput(value, name, outA)))
        return failure();
    // The log-sum-exps: [B, H, S], or [H, T].
    lseDims = rank == 3 ? std::array<int, 4>{-1, 1, 0, -1}
                        : std::array<int, 4>{0, 2, 1, -1};
    for (auto [value, name] :
         {std::pair(op.getLseA(), "lse_a"), std::pair(op.getLseB(), "lse_b"),
          std::pair(op.getLseInit(), "lse_init")})
      if (failed(verifyLse(value, name, outA)))
        return failure();
    return success();
  }

private:
  LogicalResult verifyOutput(Value value, StringRef name, ShapedType outA) {
    auto type = cast<ShapedType>(value.getType());
    if (type.getRank() != outA.getRank() ||
        type.getElementType() != outA.getElementType())
      return op.emitOpError()
             << "expects '" << name << "' of the rank and element type of "
             << "'out_a' (" << outA << "), got " << type;
    for (int dim = 0; dim < outA.getRank(); ++dim)
      if (failed(verifySameSize(type, dim, name, outA, dim, "out_a", dim)))
        return failure();
    return success();
  }

  LogicalResult verifyLse(Value value, StringRef name, ShapedType outA) {
    auto type = cast<ShapedType>(value.getType());
    int64_t rank = outA.getRank() - 1;
    if (type.getRank() != rank || !type.getElementType().isF32())
      return op.emitOpError()
             << "expects '" << name << "' to be f32 "
             << (rank == 2 ? "[H, T]" : "[B, H, S]") << ", got " << type;
    for (int role = 0; role < 3; ++role)
      if (lseDims[role] >= 0 &&
          failed(verifySameSize(type, lseDims[role], name, outA,
                                outputDims[role], "out_a", role)))
        return failure();
    return success();
  }

  /// Dimension `dim` of `type` (`name`) equals dimension `otherDim` of
  /// `other` unless either is dynamic; `role` names it (0 batch, 1
  /// sequence, 2 head count, 3 head dim).
  LogicalResult verifySameSize(ShapedType type, int dim, StringRef name,
                               ShapedType other, int otherDim,
                               StringRef otherName, int role) {
    int64_t size = type.getDimSize(dim), expected = other.getDimSize(otherDim);
    if (ShapedType::isDynamic(size) || ShapedType::isDynamic(expected) ||
        size == expected)
      return success();
    static const char *const kRoles[] = {"batch", "sequence length",
                                         "head count", "head dim"};
    StringRef what =
        other.getRank() == 3 && role == 1 ? "token count" : kRoles[role];
    return op.emitOpError() << "'" << name << "' " << what << " (dim " << dim
                            << ") is " << printSize(size) << ", but '"
                            << otherName << "' has " << printSize(expected);
  }

  MergeStatesOp op;
  std::array<int, 4> outputDims = {}, lseDims = {};
};

} // namespace

LogicalResult MergeStatesOp::verify() {
  return MergeStatesVerifier(*this).verify();
}

void MergeStatesOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  getDestinationStyleEffects(*this, effects);
}

DictionaryAttr MergeStatesOp::getKernelConfig() {
  Builder b(getContext());
  ShapedType output = getOutputType();
  SmallVector<NamedAttribute> entries = {
      b.getNamedAttr("heads", b.getI64IntegerAttr(getHeads())),
      b.getNamedAttr("head_dim_v", b.getI64IntegerAttr(getHeadDimV())),
      b.getNamedAttr("dtype", b.getStringAttr(
                                  getElementTypeName(output.getElementType()))),
      b.getNamedAttr("layout", b.getStringAttr(stringifyLayout(getLayout()))),
      b.getNamedAttr("varlen", b.getBoolAttr(isVarlen()))};
  // Sizes fixed by static shapes (packed tokens are a batch of one).
  LayoutDims dims = getLayoutDims(getLayout());
  if (isVarlen()) {
    entries.push_back(b.getNamedAttr("batch", b.getI64IntegerAttr(1)));
    if (!output.isDynamicDim(0))
      entries.push_back(
          b.getNamedAttr("seq_q", b.getI64IntegerAttr(output.getDimSize(0))));
  } else {
    if (!output.isDynamicDim(dims.batch))
      entries.push_back(b.getNamedAttr(
          "batch", b.getI64IntegerAttr(output.getDimSize(dims.batch))));
    if (!output.isDynamicDim(dims.seq))
      entries.push_back(b.getNamedAttr(
          "seq_q", b.getI64IntegerAttr(output.getDimSize(dims.seq))));
  }
  return b.getDictionaryAttr(entries);
}
