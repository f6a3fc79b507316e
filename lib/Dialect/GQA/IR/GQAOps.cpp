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

StringRef mlir::gqa::getElementTypeName(Type type) {
  if (type.isF16())
    return "f16";
  if (type.isBF16())
    return "bf16";
  return "f32";
}

DictionaryAttr AttentionOp::getKernelConfig() {
  Builder b(getContext());
  MaskAttr mask = getMask();
  int64_t left = mask.getWindowLeft(), right = mask.getEffectiveRight();
  StringRef maskName = left == -1 && right == -1  ? "none"
                       : left == -1 && right == 0 ? "causal"
                                                  : "window";
  StringRef kvLens = "none";
  if (Value lens = getKvLens())
    kvLens = cast<ShapedType>(lens.getType()).getElementType().isInteger(32)
                 ? "i32"
                 : "i64";
  double softcap = getSoftcap() ? getSoftcap()->convertToDouble() : 0.0;
  SmallVector<NamedAttribute> entries = {
      b.getNamedAttr("q_heads", b.getI64IntegerAttr(getQHeads())),
      b.getNamedAttr("kv_heads", b.getI64IntegerAttr(getKvHeads())),
      b.getNamedAttr("group_size", b.getI64IntegerAttr(getGroupSize())),
      b.getNamedAttr("head_dim", b.getI64IntegerAttr(getHeadDim())),
      b.getNamedAttr("head_dim_v", b.getI64IntegerAttr(getHeadDimV())),
      b.getNamedAttr("dtype",
                     b.getStringAttr(getElementTypeName(getElementType()))),
      b.getNamedAttr("layout", b.getStringAttr(stringifyLayout(getLayout()))),
      b.getNamedAttr("mask", b.getStringAttr(maskName)),
      b.getNamedAttr("window_left", b.getI64IntegerAttr(left)),
      b.getNamedAttr("window_right", b.getI64IntegerAttr(right)),
      b.getNamedAttr("scale", b.getF64FloatAttr(getScaleOrDefault())),
      b.getNamedAttr("softcap", b.getF64FloatAttr(softcap)),
      b.getNamedAttr("kv_lens", b.getStringAttr(kvLens)),
      b.getNamedAttr("page_size", b.getI64IntegerAttr(getPageSize())),
      b.getNamedAttr("sinks", b.getBoolAttr(static_cast<bool>(getSinks()))),
      b.getNamedAttr("lse", b.getBoolAttr(static_cast<bool>(getLseInit()))),
      b.getNamedAttr("varlen", b.getBoolAttr(isVarlen())),
      b.getNamedAttr("packed_kv", b.getBoolAttr(hasPackedKV()))};
  // Sizes fixed by static shapes (a paged Skv is the block table's pages
  // times the page size).
  LayoutDims dims = getLayoutDims();
  auto [kvType, kvDim, kvScale] =
      isPaged() ? std::tuple(cast<ShapedType>(getBlockTable().getType()), 1u,
                             getPageSize())
                : std::tuple(getKeyType(), dims.seq, int64_t{1});
  SmallVector<std::tuple<StringRef, ShapedType, unsigned, int64_t>> fixed = {
      {"seq_kv", kvType, kvDim, kvScale}};
  // A ragged batch has B+1 offsets and queries of many lengths; K/V packed
  // by cu_seqlens_k have none of their own either.
  if (isVarlen()) {
    auto offsets = cast<ShapedType>(getCuSeqlensQ().getType());
    if (!offsets.isDynamicDim(0))
      entries.push_back(b.getNamedAttr(
          "batch", b.getI64IntegerAttr(offsets.getDimSize(0) - 1)));
    if (hasPackedKV())
      fixed.clear();
  } else {
    fixed.push_back({"batch", getQueryType(), dims.batch, 1});
    fixed.push_back({"seq_q", getQueryType(), dims.seq, 1});
  }
  for (auto [name, type, dim, scale] : fixed) {
    if (!type.isDynamicDim(dim))
      entries.push_back(b.getNamedAttr(
          name, b.getI64IntegerAttr(type.getDimSize(dim) * scale)));
  }
  return b.getDictionaryAttr(entries);
}

void AttentionOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  getDestinationStyleEffects(*this, effects);
}

void mlir::gqa::getDestinationStyleEffects(
    DestinationStyleOpInterface op,
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // On tensors the op is pure; on memrefs it reads its inputs and writes
  // (never reads) its inits.
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isa<MemRefType>(operand.get().getType()))
      continue;
    if (op.isDpsInit(&operand))
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
    else
      effects.emplace_back(MemoryEffects::Read::get(), &operand,
                           SideEffects::DefaultResource::get());
  }
}

LogicalResult mlir::gqa::verifyTensorsOrMemRefs(DestinationStyleOpInterface op,
                                                ValueRange operands,
                                                StringRef firstName,
                                                ArrayRef<StringRef> initNames) {
  Value first = operands.front();
  bool onTensors = isa<RankedTensorType>(first.getType());
  for (Value operand : operands) {
    if (isa<RankedTensorType>(operand.getType()) != onTensors)
      return op->emitOpError()
             << "operands must be all tensors or all memrefs, but '"
             << firstName << "' is " << first.getType() << " and an operand is "
             << operand.getType();
  }
  ValueRange inits = op.getDpsInits();
  if (!onTensors) {
    if (op->getNumResults() != 0)
      return op->emitOpError()
             << "on memrefs the op writes '" << initNames[0]
             << "' and has no result, got " << op->getNumResults();
    return success();
  }
  if (op->getNumResults() != inits.size())
    return op->emitOpError()
           << "on tensors the op must have one result per init ("
           << inits.size() << "), got " << op->getNumResults();
  for (auto [index, result, init] : llvm::enumerate(op->getResults(), inits))
    if (result.getType() != init.getType())
      return op->emitOpError()
             << (index == 0 ? "result" : "LSE result") << " type "
             << result.getType() << " differs from '" << initNames[index]
             << "' type " << init.getType();
  return success();
}

namespace {

/// A dimension's size, "?" when dynamic.
std::string printSize(int64_t size) {
  return ShapedType::isDynamic(size) ? "?" : std::to_string(size);
}

/// Checks the operands of an attention op against each other and against its
/// attributes, naming the operand, the dimension and both values in every
/// diagnostic.
class AttentionVerifier {
public:
  explicit AttentionVerifier(AttentionOp op)
      : op(op), layout(op.getLayout()), dims(getLayoutDims(layout)),
        paged(op.isPaged()), varlen(op.isVarlen()), packedKV(op.hasPackedKV()) {
  }

  LogicalResult verify() {
    if (failed(verifyKinds()) || failed(verifyVarlen()) ||
        failed(verifyRanksAndElementTypes()) || failed(verifyGrouping()) ||
        failed(verifyStaticDims()) || failed(verifyShapes()) ||
        failed(verifyKVLens()) || failed(verifyBlockTable()) ||
        failed(verifySinks()) || failed(verifyLseInit()) ||
        failed(verifyScalars()))
      return failure();
    return success();
  }

private:
  /// How an operand's dimensions are laid out.
  enum class Form {
    /// (B, H, S, D) in the op's layout.
    Layout,
    /// A page pool (pages, page size, H, D), whatever the layout.
    PagedCache,
    /// Packed tokens of a ragged batch (T, H, D).
    Packed,
  };
  struct NamedOperand {
    StringRef name;
    ShapedType type;
    Form form;
  };

  SmallVector<NamedOperand> attentionTensors() {
    Form queries = varlen ? Form::Packed : Form::Layout;
    Form keys = paged      ? Form::PagedCache
                : packedKV ? Form::Packed
                           : Form::Layout;
    return {{"query", op.getQueryType(), queries},
            {"key", op.getKeyType(), keys},
            {"value", op.getValueType(), keys},
            {"init", op.getInitType(), queries}};
  }

  /// The dimensions of a packed operand: no batch.
  static constexpr LayoutDims kPackedDims = {/*batch=*/~0u, /*heads=*/1,
                                             /*seq=*/0, /*headDim=*/2};

  LayoutDims dimsOf(const NamedOperand &operand) {
    switch (operand.form) {
    case Form::Layout:
      return dims;
    case Form::PagedCache:
      return getLayoutDims(Layout::BSHD);
    case Form::Packed:
      return kPackedDims;
    }
    return dims;
  }

  StringRef dimName(const NamedOperand &operand, unsigned dim) {
    LayoutDims at = dimsOf(operand);
    bool pagedCache = operand.form == Form::PagedCache;
    if (dim == at.batch)
      return pagedCache ? "page count" : "batch";
    if (dim == at.heads)
      return "head count";
    if (dim == at.seq)
      return pagedCache                     ? "page size"
             : operand.form == Form::Packed ? "token count"
                                            : "sequence length";
    return "head dim";
  }

  /// Prints "'key' head count (dim 1 of bhsd)".
  InFlightDiagnostic emitDimError(const NamedOperand &operand, unsigned dim) {
    InFlightDiagnostic diag = op.emitOpError() << "'" << operand.name << "' "
                                               << dimName(operand, dim)
                                               << " (dim " << dim << " of ";
    if (operand.form == Form::PagedCache)
      diag << "the paged cache [pages, page size, H, D])";
    else if (operand.form == Form::Packed)
      diag << "the packed tokens [T, H, D])";
    else
      diag << stringifyLayout(layout) << ")";
    return diag;
  }

  /// The number of sequences: the query's batch, or one less than the
  /// offsets of a ragged batch (dynamic when not static).
  int64_t batchSize() {
    if (!varlen)
      return op.getQueryType().getDimSize(dims.batch);
    int64_t offsets =
        cast<ShapedType>(op.getCuSeqlensQ().getType()).getDimSize(0);
    return ShapedType::isDynamic(offsets) ? offsets : offsets - 1;
  }
  StringRef batchName() {
    return varlen ? "the batch (the size of 'cu_seqlens_q' - 1)"
                  : "the 'query' batch";
  }

  LogicalResult verifyKinds() {
    SmallVector<Value> shaped;
    for (Value operand : op->getOperands())
      if (!operand.getType().isIndex())
        shaped.push_back(operand);
    return verifyTensorsOrMemRefs(op, shaped, "query", {"init", "lse_init"});
  }

  LogicalResult verifyRanksAndElementTypes() {
    Type elementType = op.getElementType();
    for (const NamedOperand &operand : attentionTensors()) {
      int64_t rank = operand.form == Form::Packed ? 3 : 4;
      if (operand.type.getRank() == rank)
        continue;
      InFlightDiagnostic diag = op.emitOpError()
                                << "'" << operand.name << "' must have rank "
                                << rank << " (";
      if (operand.form == Form::PagedCache)
        diag << "pages, page size, H, D with a block_table";
      else if (operand.form == Form::Packed)
        diag << "T, H, D: tokens packed by "
             << (operand.name == "key" || operand.name == "value"
                     ? "cu_seqlens_k"
                     : "cu_seqlens_q");
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
      LayoutDims at = dimsOf(operand);
      SmallVector<unsigned, 3> staticDims = {at.heads, at.headDim};
      if (operand.form == Form::PagedCache)
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
    LayoutDims qDims = dimsOf(query), kvDims = dimsOf(key);
    int64_t qHeads = op.getQHeads(), kvHeads = op.getKvHeads();
    // The grouping.
    if (failed(expectDim(query, qDims.heads, qHeads, "q_heads")) ||
        failed(expectDim(init, qDims.heads, qHeads, "q_heads")) ||
        failed(expectDim(key, kvDims.heads, kvHeads, "kv_heads")) ||
        failed(expectDim(value, kvDims.heads, kvHeads, "kv_heads")))
      return failure();
    // Head dims: D is shared by query and key, Dv by value and init.
    if (failed(expectDim(key, kvDims.headDim,
                         query.type.getDimSize(qDims.headDim),
                         "the 'query' head dim")) ||
        failed(expectDim(init, qDims.headDim,
                         value.type.getDimSize(kvDims.headDim),
                         "the 'value' head dim")))
      return failure();
    // Sequence lengths: Skv (the page size, the tokens) is shared by key and
    // value, Sq (the tokens) by query and init.
    StringRef keySeq = paged      ? "the 'key' page size"
                       : packedKV ? "the 'key' token count"
                                  : "the 'key' sequence length";
    if (failed(expectDim(value, kvDims.seq, key.type.getDimSize(kvDims.seq),
                         keySeq)) ||
        failed(expectDim(init, qDims.seq, query.type.getDimSize(qDims.seq),
                         varlen ? "the 'query' token count"
                                : "the 'query' sequence length")))
      return failure();
    // One batch; a paged cache has one page count instead, packed tokens
    // none.
    if (!varlen &&
        failed(expectDim(init, dims.batch, batchSize(), "the 'query' batch")))
      return failure();
    if (paged)
      return expectDim(value, kvDims.batch, key.type.getDimSize(kvDims.batch),
                       "the 'key' page count");
    if (packedKV)
      return success();
    for (const NamedOperand &operand : {key, value})
      if (failed(expectDim(operand, dims.batch, batchSize(), batchName())))
        return failure();
    return success();
  }

  /// A ragged batch: `cu_seqlens_q` (and `cu_seqlens_k`) are i32 [B+1]
  /// offsets into packed bshd tokens.
  LogicalResult verifyVarlen() {
    Value cuQ = op.getCuSeqlensQ(), cuK = op.getCuSeqlensK();
    for (auto [name, longest, offsets, offsetsName] :
         {std::tuple<StringRef, Value, Value, StringRef>{
              "max_seqlen_q", op.getMaxSeqlenQ(), cuQ, "cu_seqlens_q"},
          {"max_seqlen_k", op.getMaxSeqlenK(), cuK, "cu_seqlens_k"}}) {
      if (!longest)
        continue;
      if (!offsets)
        return op.emitOpError()
               << "'" << name << "' is the longest sequence of a ragged "
               << "batch; it needs '" << offsetsName << "'";
      std::optional<int64_t> known = getConstantIntValue(longest);
      if (known && *known < 0)
        return op.emitOpError()
               << "'" << name << "' must be >= 0, got " << *known;
    }
    if (!cuQ) {
      if (cuK)
        return op.emitOpError()
               << "'cu_seqlens_k' needs 'cu_seqlens_q': packed keys come with "
                  "packed queries";
      return success();
    }
    for (auto [name, offsets] :
         {std::pair<StringRef, Value>{"cu_seqlens_q", cuQ},
          {"cu_seqlens_k", cuK}}) {
      if (!offsets)
        continue;
      auto type = cast<ShapedType>(offsets.getType());
      if (type.getRank() != 1 || !type.getElementType().isInteger(32))
        return op.emitOpError() << "'" << name
                                << "' must be a rank-1 i32 array of B+1 "
                                   "offsets, got "
                                << type;
      if (type.getDimSize(0) == 0)
        return op.emitOpError()
               << "'" << name << "' must hold B+1 >= 1 offsets, got 0";
    }
    if (layout != Layout::BSHD)
      return op.emitOpError()
             << "packed queries (cu_seqlens_q) are tokens [T, Hq, D]: the "
                "layout must be bshd, got "
             << stringifyLayout(layout);
    if (cuK) {
      if (paged)
        return op.emitOpError() << "'cu_seqlens_k' packs K/V by sequence; it "
                                   "cannot be combined with a block_table";
      int64_t q = cast<ShapedType>(cuQ.getType()).getDimSize(0);
      int64_t k = cast<ShapedType>(cuK.getType()).getDimSize(0);
      if (!ShapedType::isDynamic(q) && !ShapedType::isDynamic(k) && q != k)
        return op.emitOpError()
               << "'cu_seqlens_k' has " << k << " offsets, but 'cu_seqlens_q' "
               << q << ": both have B+1";
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
    int64_t batch = batchSize();
    int64_t length = type.getDimSize(0);
    if (!ShapedType::isDynamic(batch) && !ShapedType::isDynamic(length) &&
        batch != length)
      return op.emitOpError() << "'kv_lens' dim 0 is " << length << ", but "
                              << batchName() << " is " << batch;
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
    int64_t batch = batchSize();
    int64_t rows = type.getDimSize(0);
    if (!ShapedType::isDynamic(batch) && !ShapedType::isDynamic(rows) &&
        batch != rows)
      return op.emitOpError() << "'block_table' dim 0 is " << rows << ", but "
                              << batchName() << " is " << batch;
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
    if (type.getDimSize(0) != static_cast<int64_t>(op.getQHeads()))
      return op.emitOpError()
             << "'sinks' dim 0 must be q_heads (" << op.getQHeads() << "), got "
             << printSize(type.getDimSize(0));
    return success();
  }

  /// `lse_init`: f32 [B, Hq, Sq], whatever the layout; [Hq, T] for a
  /// ragged batch.
  LogicalResult verifyLseInit() {
    ShapedType type = op.getLseInitType();
    if (!type)
      return success();
    int64_t rank = varlen ? 2 : 3;
    StringRef shape = varlen ? "[Hq, T]" : "[B, Hq, Sq]";
    if (type.getRank() != rank)
      return op.emitOpError()
             << "'lse_init' must have rank " << rank << " (shape " << shape
             << "), got rank " << type.getRank();
    if (!type.getElementType().isF32())
      return op.emitOpError() << "'lse_init' element type must be f32, got "
                              << type.getElementType();
    unsigned headsDim = varlen ? 0 : 1;
    if (type.getDimSize(headsDim) != static_cast<int64_t>(op.getQHeads()))
      return op.emitOpError()
             << "'lse_init' dim " << headsDim << " must be q_heads ("
             << op.getQHeads() << "), got "
             << printSize(type.getDimSize(headsDim));
    ShapedType query = op.getQueryType();
    SmallVector<std::tuple<unsigned, int64_t, StringRef>, 2> matches;
    if (varlen)
      matches.push_back({1, query.getDimSize(0), "token count"});
    else
      matches.append({{0, query.getDimSize(dims.batch), "batch"},
                      {2, query.getDimSize(dims.seq), "sequence length"}});
    for (auto [dim, expected, what] : matches) {
      int64_t actual = type.getDimSize(dim);
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
  /// The op's layout's dimensions.
  LayoutDims dims;
  bool paged, varlen, packedKV;
};

} // namespace

LogicalResult AttentionOp::verify() {
  return AttentionVerifier(*this).verify();
}
