//===- AttentionModule.cpp - Build IR for one attention spec --------------===//

#include "gqa/Tools/AttentionModule.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;
using namespace mlir::gqa;

namespace {

Type getMLIRType(Builder &builder, ElementType type) {
  switch (type) {
  case ElementType::F16:
    return builder.getF16Type();
  case ElementType::BF16:
    return builder.getBF16Type();
  case ElementType::F32:
    break;
  }
  return builder.getF32Type();
}

/// An empty module for the one function `name`, `builder` inserting into
/// it.
OwningOpRef<ModuleOp> createModule(MLIRContext &context, OpBuilder &builder,
                                   StringRef name) {
  context
      .loadDialect<gqa::GQADialect, func::FuncDialect, memref::MemRefDialect>();
  OwningOpRef<ModuleOp> module =
      ModuleOp::create(NameLoc::get(builder.getStringAttr(name)));
  builder.setInsertionPointToEnd(module->getBody());
  return module;
}

/// The function `name` of `module` with arguments of `types`, its entry
/// block the builder's insertion point.
func::FuncOp createFunction(OpBuilder &builder, Location loc, StringRef name,
                            TypeRange types) {
  auto function = func::FuncOp::create(builder, loc, name,
                                       builder.getFunctionType(types, {}));
  function->setAttr("llvm.emit_c_interface", builder.getUnitAttr());
  builder.setInsertionPointToStart(function.addEntryBlock());
  return function;
}

/// Ends the function and verifies the module (null when it fails).
OwningOpRef<ModuleOp> finish(OpBuilder &builder, Location loc,
                             OwningOpRef<ModuleOp> module) {
  func::ReturnOp::create(builder, loc);
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> mlir::gqa::buildAttentionModule(MLIRContext &context,
                                                      const AttentionSpec &spec,
                                                      StringRef name) {
  OpBuilder builder(&context);
  OwningOpRef<ModuleOp> module = createModule(context, builder, name);
  Location loc = module->getLoc();
  Type elementType = getMLIRType(builder, spec.elementType);
  Layout layout = spec.bshd ? Layout::BSHD : Layout::BHSD;
  LayoutDims dims = getLayoutDims(layout);
  int64_t dynamic = ShapedType::kDynamic;
  auto tensorType = [&](int64_t heads, int64_t headDim) {
    return MemRefType::get(
        dims.order<int64_t>(dynamic, heads, dynamic, headDim), elementType);
  };
  // Packed tokens of a ragged batch are [T, H, D].
  auto tokensType = [&](int64_t heads, int64_t headDim) {
    return MemRefType::get({dynamic, heads, headDim}, elementType);
  };
  auto queryType = [&](int64_t headDim) {
    return spec.varlen ? tokensType(spec.qHeads, headDim)
                       : tensorType(spec.qHeads, headDim);
  };
  // A paged K/V pool is [pages, page size, Hkv, D] whatever the layout.
  auto cacheType = [&](int64_t headDim) {
    if (spec.packedKV)
      return tokensType(spec.kvHeads, headDim);
    if (!spec.isPaged())
      return tensorType(spec.kvHeads, headDim);
    return MemRefType::get(
        {ShapedType::kDynamic, spec.pageSize, spec.kvHeads, headDim},
        elementType);
  };
  SmallVector<Type> argumentTypes = {queryType(spec.headDim),
                                     cacheType(spec.headDim),
                                     cacheType(spec.valueHeadDim())};
  if (spec.hasKVLens)
    argumentTypes.push_back(
        MemRefType::get({ShapedType::kDynamic}, builder.getI32Type()));
  if (spec.isPaged())
    argumentTypes.push_back(MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic}, builder.getI32Type()));
  Type f32 = builder.getF32Type();
  if (spec.hasSinks)
    argumentTypes.push_back(MemRefType::get({spec.qHeads}, f32));
  auto offsetsType = MemRefType::get({dynamic}, builder.getI32Type());
  if (spec.varlen)
    argumentTypes.push_back(offsetsType);
  if (spec.packedKV)
    argumentTypes.push_back(offsetsType);
  // The longest sequences (flash_attn's max_seqlen_q/k): the GPU's grid.
  if (spec.varlen)
    argumentTypes.push_back(builder.getIndexType());
  if (spec.packedKV)
    argumentTypes.push_back(builder.getIndexType());
  argumentTypes.push_back(queryType(spec.valueHeadDim()));
  if (spec.returnLse)
    argumentTypes.push_back(
        spec.varlen ? MemRefType::get({spec.qHeads, dynamic}, f32)
                    : MemRefType::get({dynamic, spec.qHeads, dynamic}, f32));

  func::FuncOp function = createFunction(builder, loc, name, argumentTypes);
  Block *body = &function.getBody().front();
  // q, k, v, [kv_lens], [block_table], [sinks], [cu_seqlens_q],
  // [cu_seqlens_k], [max_seqlen_q], [max_seqlen_k], out, [lse].
  ValueRange arguments = body->getArguments();
  unsigned next = 3;
  auto optional = [&](bool present) {
    return present ? arguments[next++] : Value();
  };
  Value kvLens = optional(spec.hasKVLens);
  Value blockTable = optional(spec.isPaged());
  Value sinks = optional(spec.hasSinks);
  Value cuSeqlensQ = optional(spec.varlen);
  Value cuSeqlensK = optional(spec.packedKV);
  Value maxSeqlenQ = optional(spec.varlen);
  Value maxSeqlenK = optional(spec.packedKV);
  Value output = arguments[next++];
  Value lse = optional(spec.returnLse);
  FloatAttr scale =
      spec.scale ? builder.getF32FloatAttr(*spec.scale) : FloatAttr();
  FloatAttr softcap =
      spec.softcap ? builder.getF32FloatAttr(*spec.softcap) : FloatAttr();
  AttentionOp::create(
      builder, loc, TypeRange(), arguments[0], arguments[1], arguments[2],
      kvLens, blockTable, sinks, cuSeqlensQ, cuSeqlensK, maxSeqlenQ, maxSeqlenK,
      output, lse, builder.getI64IntegerAttr(spec.qHeads),
      builder.getI64IntegerAttr(spec.kvHeads),
      LayoutAttr::get(&context, layout),
      MaskAttr::get(&context, spec.causal, spec.windowLeft, spec.windowRight),
      scale, softcap, /*schedule=*/ScheduleAttr());
  return finish(builder, loc, std::move(module));
}

OwningOpRef<ModuleOp>
mlir::gqa::buildMergeStatesModule(MLIRContext &context,
                                  const MergeStatesSpec &spec, StringRef name) {
  OpBuilder builder(&context);
  OwningOpRef<ModuleOp> module = createModule(context, builder, name);
  Location loc = module->getLoc();
  Type elementType = getMLIRType(builder, spec.elementType);
  Layout layout = spec.bshd ? Layout::BSHD : Layout::BHSD;
  int64_t dynamic = ShapedType::kDynamic;
  // [B, S, H, Dv] / [B, H, S, Dv] and [B, H, S]; packed [T, H, Dv], [H, T].
  Type outType = MemRefType::get(
      spec.varlen ? SmallVector<int64_t, 4>{dynamic, spec.heads, spec.headDimV}
                  : getLayoutDims(layout).order<int64_t>(
                        dynamic, spec.heads, dynamic, spec.headDimV),
      elementType);
  Type lseType = MemRefType::get(
      spec.varlen ? SmallVector<int64_t, 3>{spec.heads, dynamic}
                  : SmallVector<int64_t, 3>{dynamic, spec.heads, dynamic},
      builder.getF32Type());
  func::FuncOp function =
      createFunction(builder, loc, name,
                     {outType, lseType, outType, lseType, outType, lseType});
  ValueRange arguments = function.getArguments();
  MergeStatesOp::create(builder, loc, TypeRange(), arguments[0], arguments[1],
                        arguments[2], arguments[3], arguments[4], arguments[5],
                        LayoutAttr::get(&context, layout));
  return finish(builder, loc, std::move(module));
}
