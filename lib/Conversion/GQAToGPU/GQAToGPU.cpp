//===- GQAToGPU.cpp - gqa.attention to GPU kernels and launches -----------===//
//
// Rewrites each bufferized gqa.attention into a gpu.module holding its
// kernels (written directly as gpu.func with bare-pointer parameters, see
// AttentionKernel.cpp and CombineKernel.cpp) and, in place of the op, the
// host code that launches them with gpu.launch_func.
//
// Why gpu.func and not gpu.launch + outlining: outlining turns the captured
// memrefs into full descriptors with dynamic shapes, which the bare-pointer
// calling convention cannot pass; writing the kernel as a gpu.func fixes the
// parameter list (pointers, then i64 sizes) to the one docs/kernel-metadata.md
// describes. Nothing here needs outlining (no TMA descriptors).
//
//===----------------------------------------------------------------------===//

#include "gqa/Conversion/GQAToGPU/GQAToGPU.h"
#include "KernelBuilder.h"
#include "gqa/Conversion/Passes.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"
#include "gqa/Dialect/GQA/Utils/BlockUtils.h"
#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::gqa {
#define GEN_PASS_DEF_CONVERTGQATOGPU
#include "gqa/Conversion/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

namespace {

//===----------------------------------------------------------------------===//
// Attributes for the metadata writer
//===----------------------------------------------------------------------===//

/// `{const = N}`.
DictionaryAttr constantDim(Builder &b, int64_t value) {
  return b.getDictionaryAttr(
      {b.getNamedAttr("const", b.getI64IntegerAttr(value))});
}

/// `{sym = S, mul = M, div = D}` (ceil(S * M / D)); defaults left out.
DictionaryAttr symbolDim(Builder &b, StringRef symbol, int64_t mul = 1,
                         int64_t div = 1) {
  SmallVector<NamedAttribute> entries = {
      b.getNamedAttr("sym", b.getStringAttr(symbol))};
  if (mul != 1)
    entries.push_back(b.getNamedAttr("mul", b.getI64IntegerAttr(mul)));
  if (div != 1)
    entries.push_back(b.getNamedAttr("div", b.getI64IntegerAttr(div)));
  return b.getDictionaryAttr(entries);
}

//===----------------------------------------------------------------------===//
// The rewrite
//===----------------------------------------------------------------------===//

/// Rewrites one bufferized gqa.attention into its kernels and launches.
struct AttentionToGPUPattern : public OpRewritePattern<AttentionOp> {
  AttentionToGPUPattern(MLIRContext *context, GQAToGPUOptions options)
      : OpRewritePattern(context), passOptions(options) {}

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getElementType().isF32())
      return rewriter.notifyMatchFailure(
          op, "f16 and bf16 go through the tiled form");
    std::string reason = getGPUUnsupportedReason(op, passOptions);
    if (!reason.empty())
      return rewriter.notifyMatchFailure(op, reason);
    auto module = op->getParentOfType<ModuleOp>();
    if (!module)
      return rewriter.notifyMatchFailure(op, "not inside a builtin.module");

    KernelSpec spec;
    spec.qHeads = op.getQHeads();
    spec.kvHeads = op.getKvHeads();
    spec.headDim = op.getHeadDim();
    spec.headDimV = op.getHeadDimV();
    spec.elementType = op.getElementType();
    spec.layout = op.getLayout();
    spec.mask = op.getMask();
    spec.scale = op.getScaleOrDefault();
    if (std::optional<APFloat> softcap = op.getSoftcap())
      spec.softcap = softcap->convertToDouble();
    if (Value lens = op.getKvLens())
      spec.kvLensType = cast<MemRefType>(lens.getType()).getElementType();
    spec.pageSize = op.getPageSize();
    const GQAToGPUOptions options = getEffectiveGPUOptions(op, passOptions);
    spec.tile = selectGPUTileConfig(op, options.tile);
    bool split = options.maxSplits > 0;

    gpu::GPUModuleOp gpuModule =
        buildKernels(rewriter, op, module, spec, options.maxSplits);
    auto kernel = [&](StringRef name) {
      return gpuModule.lookupSymbol<gpu::GPUFuncOp>(name);
    };

    // The host side: sizes from the memrefs, pointers as memref<1xT>.
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    b.setInsertionPoint(op);
    LayoutDims dims = op.getLayoutDims();
    Type i64 = b.getI64Type();
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, value);
    };
    auto ceilDiv = [&](Value x, Value y) -> Value {
      return arith::CeilDivUIOp::create(b, x, y);
    };
    Value batch = memref::DimOp::create(b, op.getQuery(), dims.batch);
    Value seqQ = memref::DimOp::create(b, op.getQuery(), dims.seq);
    Value seqKV =
        op.isPaged()
            ? arith::MulIOp::create(
                  b, memref::DimOp::create(b, op.getBlockTable(), 1),
                  index(spec.pageSize))
                  .getResult()
            : memref::DimOp::create(b, op.getKey(), dims.seq).getResult();
    auto pointer = [&](Value memref) -> Value {
      auto type = cast<MemRefType>(memref.getType());
      return memref::ReinterpretCastOp::create(
          b, MemRefType::get({1}, type.getElementType()), memref,
          OpFoldResult(b.getIndexAttr(0)),
          ArrayRef<OpFoldResult>{b.getIndexAttr(1)},
          ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
    };
    auto asI64 = [&](Value value) -> Value {
      return arith::IndexCastOp::create(b, i64, value);
    };

    // Nothing to launch for an empty batch or no queries (a grid dimension
    // would be 0).
    Value nonEmpty = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, batch, index(0)),
        arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, seqQ, index(0)));
    auto ifOp = scf::IfOp::create(b, nonEmpty, /*withElseRegion=*/false);
    b.setInsertionPoint(ifOp.thenBlock()->getTerminator());

    SmallVector<Value> tensors = {pointer(op.getQuery()), pointer(op.getKey()),
                                  pointer(op.getValue())};
    Value out = pointer(op.getInit());
    Value kvLens = op.getKvLens() ? pointer(op.getKvLens()) : Value();
    Value blockTable = op.isPaged() ? pointer(op.getBlockTable()) : Value();
    // The sizes the attention kernels take: B, Sq, Skv [, pages in the pool].
    SmallVector<Value> sizes = {asI64(batch), asI64(seqQ), asI64(seqKV)};
    if (op.isPaged())
      sizes.push_back(asI64(memref::DimOp::create(b, op.getKey(), 0)));
    // ceil(Sq * g / BM) CTAs of packed rows.
    Value rowBlocks =
        ceilDiv(arith::MulIOp::create(b, seqQ, index(spec.groupSize())),
                index(spec.tile.blockM));
    // Launches `func`; on the stream of `token` when given (then returns the
    // launch's token).
    auto launch = [&](gpu::GPUFuncOp func, gpu::KernelDim3 grid,
                      int64_t threads, ValueRange operands,
                      Value token = Value()) -> Value {
      int64_t sharedBytes =
          cast<IntegerAttr>(func->getAttr(kDynamicSharedMemoryAttr)).getInt();
      gpu::KernelDim3 block{index(threads), index(1), index(1)};
      Value shared =
          arith::ConstantIntOp::create(b, b.getI32Type(), sharedBytes);
      if (!token) {
        gpu::LaunchFuncOp::create(b, func, grid, block, shared, operands);
        return Value();
      }
      return gpu::LaunchFuncOp::create(b, func, grid, block, shared, operands,
                                       b.getType<gpu::AsyncTokenType>(),
                                       ValueRange{token})
          .getAsyncToken();
    };

    if (!split) {
      SmallVector<Value> operands = tensors;
      operands.push_back(out);
      if (kvLens)
        operands.push_back(kvLens);
      if (blockTable)
        operands.push_back(blockTable);
      operands.append(sizes);
      launch(kernel(kMainName), {rowBlocks, index(spec.kvHeads), batch},
             spec.tile.threads(), operands);
      rewriter.eraseOp(op);
      return success();
    }

    // Split-KV: this host code takes min(max-splits, T) splits of the T KV
    // tiles, evened out so that none is empty (the runtime makes its own
    // choice from the device's SM count, see docs/kernel-metadata.md).
    Value numSplits =
        emitSplitCount(b, seqKV, spec.tile.blockN, options.maxSplits);
    // The workspace: f32 [NS, B, Hq, Sq, Dv] and [NS, B, Hq, Sq].
    Value rows = arith::MulIOp::create(
        b,
        arith::MulIOp::create(b, arith::MulIOp::create(b, numSplits, batch),
                              seqQ),
        index(spec.qHeads));
    Value outElements = arith::MulIOp::create(b, rows, index(spec.headDimV));
    // One stream: allocate, split, combine, free, then wait (the async
    // forms are the ones gpu-to-llvm lowers to the runtime's calls).
    auto flatF32 = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
    Type tokenType = b.getType<gpu::AsyncTokenType>();
    Value token =
        gpu::WaitOp::create(b, tokenType, ValueRange{}).getAsyncToken();
    auto allocate = [&](Value elements) {
      auto alloc =
          gpu::AllocOp::create(b, flatF32, tokenType, ValueRange{token},
                               ValueRange{elements}, ValueRange{});
      token = alloc.getAsyncToken();
      return alloc.getMemref();
    };
    Value partialOut = allocate(outElements);
    Value partialLse = allocate(rows);
    Value workspaceOut = pointer(partialOut);
    Value workspaceLse = pointer(partialLse);
    Value numSplits64 = asI64(numSplits);

    SmallVector<Value> splitOperands = tensors;
    splitOperands.push_back(out);
    if (kvLens)
      splitOperands.push_back(kvLens);
    if (blockTable)
      splitOperands.push_back(blockTable);
    splitOperands.append({workspaceOut, workspaceLse});
    splitOperands.append(sizes);
    splitOperands.push_back(numSplits64);
    Value splitGridY = arith::MulIOp::create(b, numSplits, index(spec.kvHeads));
    token = launch(kernel(kSplitName), {rowBlocks, splitGridY, batch},
                   spec.tile.threads(), splitOperands, token);

    CombineShape shape = getCombineShape(spec.headDimV);
    Value combineBlocks =
        ceilDiv(arith::MulIOp::create(b, seqQ, index(spec.qHeads)),
                index(shape.rowsPerCTA));
    token = launch(
        kernel(kCombineName), {combineBlocks, batch, index(1)}, shape.threads(),
        {workspaceOut, workspaceLse, out, sizes[0], sizes[1], numSplits64},
        token);
    for (Value workspace : {partialOut, partialLse})
      token = gpu::DeallocOp::create(b, tokenType, ValueRange{token}, workspace)
                  .getAsyncToken();
    gpu::WaitOp::create(b, Type(), ValueRange{token});
    rewriter.eraseOp(op);
    return success();
  }

  /// Creates the gpu.module of `op`'s kernels at the end of `module`.
  gpu::GPUModuleOp buildKernels(PatternRewriter &rewriter, AttentionOp op,
                                ModuleOp module, const KernelSpec &spec,
                                int64_t maxSplits) const {
    OpBuilder::InsertionGuard guard(rewriter);
    Location loc = op.getLoc();
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    rewriter.getUnitAttr());
    std::string name = kModuleName.str();
    for (int suffix = 1; SymbolTable::lookupSymbolIn(module, name); ++suffix)
      name = (kModuleName + "_" + Twine(suffix)).str();

    rewriter.setInsertionPointToEnd(module.getBody());
    auto gpuModule = gpu::GPUModuleOp::create(rewriter, loc, name);
    gpuModule->setAttr(kConfigAttr, op.getKernelConfig());
    gpuModule->setAttr(
        kSplitKVAttr,
        rewriter.getDictionaryAttr({rewriter.getNamedAttr(
            "max_splits", rewriter.getI64IntegerAttr(maxSplits))}));
    rewriter.setInsertionPointToStart(gpuModule.getBody());
    // The extern dynamic shared array: `.extern .shared .align 16 .b8
    // gqa_smem[]` (gpu.dynamic_shared_memory would become a function-local
    // array).
    memref::GlobalOp::create(
        rewriter, loc, kSharedMemoryName, rewriter.getStringAttr("public"),
        MemRefType::get({0}, rewriter.getI8Type(), MemRefLayoutAttrInterface(),
                        rewriter.getI64IntegerAttr(3)),
        /*initial_value=*/Attribute(), /*constant=*/false,
        rewriter.getI64IntegerAttr(16));

    const int64_t g = spec.groupSize();
    auto rowBlocks = symbolDim(rewriter, "seq_q", g, spec.tile.blockM);
    auto attentionKernel = buildSIMTAttentionKernel;
    if (maxSplits == 0) {
      gpu::GPUFuncOp main =
          attentionKernel(rewriter, loc, spec, KernelRole::Main);
      main->setAttr(kRoleAttr, rewriter.getStringAttr("main"));
      main->setAttr(kTileAttr, getTileAttr(rewriter, spec.tile));
      main->setAttr(
          kGridAttr,
          rewriter.getArrayAttr({rowBlocks, constantDim(rewriter, spec.kvHeads),
                                 symbolDim(rewriter, "batch")}));
    } else {
      gpu::GPUFuncOp split =
          attentionKernel(rewriter, loc, spec, KernelRole::Split);
      split->setAttr(kRoleAttr, rewriter.getStringAttr("split"));
      split->setAttr(kTileAttr, getTileAttr(rewriter, spec.tile));
      split->setAttr(
          kGridAttr,
          rewriter.getArrayAttr(
              {rowBlocks, symbolDim(rewriter, "num_splits", spec.kvHeads),
               symbolDim(rewriter, "batch")}));
      gpu::GPUFuncOp combine = buildCombineKernel(rewriter, loc, spec);
      combine->setAttr(kRoleAttr, rewriter.getStringAttr("combine"));
      CombineShape shape = getCombineShape(spec.headDimV);
      combine->setAttr(
          kGridAttr,
          rewriter.getArrayAttr(
              {symbolDim(rewriter, "seq_q", spec.qHeads, shape.rowsPerCTA),
               symbolDim(rewriter, "batch"), constantDim(rewriter, 1)}));
    }
    return gpuModule;
  }

  /// The pass's options; an op's schedule overrides them.
  GQAToGPUOptions passOptions;
};

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertGQAToGPUPass
    : public gqa::impl::ConvertGQAToGPUBase<ConvertGQAToGPUPass> {
  using Base::Base;

  void runOnOperation() override {
    GQAToGPUOptions options;
    options.tile = {blockM, blockN, maxRegisters, minCTAsPerSM};
    options.maxSplits = maxSplits;
    // Report every op the GPU path cannot compile, then convert the rest.
    bool unsupported = false;
    getOperation()->walk([&](AttentionOp op) {
      std::string reason = getGPUUnsupportedReason(op, options);
      if (reason.empty())
        return;
      op.emitOpError() << reason;
      unsupported = true;
    });
    if (unsupported)
      return signalPassFailure();
    // f32: the CUDA-core kernel built from the op.
    RewritePatternSet patterns(&getContext());
    populateGQAToGPUPatterns(patterns, options);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    // The rest through the tiled form: each op with its schedule (the pass
    // options choose it for an op without one).
    WalkResult unscheduled = getOperation()->walk([&](AttentionOp op) {
      if (op.getScheduleAttr())
        return WalkResult::advance();
      ScheduleOptions choice;
      choice.target = "sm_90";
      choice.blockM = blockM;
      choice.blockN = blockN;
      choice.maxSplits = maxSplits;
      choice.maxRegisters = maxRegisters;
      choice.minCTAsPerSM = minCTAsPerSM;
      ScheduleAttr schedule = selectSchedule(op, choice);
      if (!schedule)
        return WalkResult::interrupt();
      op.setScheduleAttr(schedule);
      return WalkResult::advance();
    });
    if (unscheduled.wasInterrupted())
      return signalPassFailure();
    OpPassManager pipeline(ModuleOp::getOperationName());
    addTiledGPUPasses(pipeline);
    if (failed(runPipeline(pipeline, getOperation())))
      signalPassFailure();
  }
};

} // namespace

void mlir::gqa::addTiledGPUPasses(OpPassManager &pm) {
  pm.addPass(createGQADistribute());
  // No CSE here: it would merge the K and V loads of an op whose key and
  // value are one memref, which need buffers of their own.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createGQAPrefetchKeys());
  pm.addPass(createConvertGQATilesToGPU());
  // The blocks' affine index math, in arith: the sign tests of the
  // expansion of floordiv and mod on block ids fold away, and what is
  // non-negative becomes unsigned.
  pm.addPass(createLowerAffinePass());
  pm.addPass(arith::createIntRangeOptimizationsPass());
  pm.addPass(arith::createArithUnsignedWhenEquivalentPass());
}

void mlir::gqa::populateGQAToGPUPatterns(RewritePatternSet &patterns,
                                         const GQAToGPUOptions &options) {
  patterns.add<AttentionToGPUPattern>(patterns.getContext(), options);
}
