//===- KernelBuilder.cpp - Op-level helpers for the GPU kernels -----------===//

#include "KernelBuilder.h"
#include "gqa/Conversion/GQAToGPU/GQAToGPU.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

/// The address space of CTA-shared memory in NVVM.
static constexpr unsigned kSharedMemorySpace = 3;

KernelBuilder::KernelBuilder(ImplicitLocOpBuilder &b, gpu::GPUFuncOp func)
    : b(b), func(func) {}

Value KernelBuilder::param(StringRef name) {
  auto names = func->getAttrOfType<ArrayAttr>(kParamsAttr);
  for (auto [index, attr] : llvm::enumerate(names))
    if (llvm::cast<StringAttr>(attr).getValue() == name)
      return func.getArgument(index);
  llvm_unreachable("unknown kernel parameter");
}

//===----------------------------------------------------------------------===//
// Constants and integer arithmetic
//===----------------------------------------------------------------------===//
// Each op is built with createOrFold, so that arithmetic on constants (and
// x + 0, x * 1, ...) folds as it is built; constants are created where they
// are used and the canonicalizer after the conversion hoists and uniques them.

Value KernelBuilder::constant(Type type, int64_t value) {
  return arith::ConstantOp::create(b, type, b.getIntegerAttr(type, value));
}

Value KernelBuilder::f32(double value) {
  return arith::ConstantFloatOp::create(b, b.getF32Type(),
                                        APFloat(static_cast<float>(value)));
}

Value KernelBuilder::add(Value x, Value y) {
  return b.createOrFold<arith::AddIOp>(x, y);
}
Value KernelBuilder::add(Value x, int64_t y) {
  return add(x, constant(x.getType(), y));
}
Value KernelBuilder::sub(Value x, Value y) {
  return b.createOrFold<arith::SubIOp>(x, y);
}
Value KernelBuilder::sub(Value x, int64_t y) {
  return sub(x, constant(x.getType(), y));
}
Value KernelBuilder::mul(Value x, Value y) {
  return b.createOrFold<arith::MulIOp>(x, y);
}
Value KernelBuilder::mul(Value x, int64_t y) {
  return mul(x, constant(x.getType(), y));
}
Value KernelBuilder::divu(Value x, Value y) {
  return b.createOrFold<arith::DivUIOp>(x, y);
}
Value KernelBuilder::divu(Value x, int64_t y) {
  return divu(x, constant(x.getType(), y));
}
Value KernelBuilder::remu(Value x, Value y) {
  return b.createOrFold<arith::RemUIOp>(x, y);
}
Value KernelBuilder::remu(Value x, int64_t y) {
  return remu(x, constant(x.getType(), y));
}
Value KernelBuilder::andi(Value x, int64_t y) {
  return andb(x, constant(x.getType(), y));
}
Value KernelBuilder::xori(Value x, Value y) {
  return b.createOrFold<arith::XOrIOp>(x, y);
}
Value KernelBuilder::xori(Value x, int64_t y) {
  return xori(x, constant(x.getType(), y));
}
Value KernelBuilder::andb(Value x, Value y) {
  return b.createOrFold<arith::AndIOp>(x, y);
}
Value KernelBuilder::mins(Value x, Value y) {
  return b.createOrFold<arith::MinSIOp>(x, y);
}
Value KernelBuilder::mins(Value x, int64_t y) {
  return mins(x, constant(x.getType(), y));
}
Value KernelBuilder::maxs(Value x, Value y) {
  return b.createOrFold<arith::MaxSIOp>(x, y);
}
Value KernelBuilder::maxs(Value x, int64_t y) {
  return maxs(x, constant(x.getType(), y));
}
Value KernelBuilder::cmp(arith::CmpIPredicate predicate, Value x, Value y) {
  return b.createOrFold<arith::CmpIOp>(predicate, x, y);
}
Value KernelBuilder::cmp(arith::CmpIPredicate predicate, Value x, int64_t y) {
  return cmp(predicate, x, constant(x.getType(), y));
}
Value KernelBuilder::select(Value condition, Value x, Value y) {
  return b.createOrFold<arith::SelectOp>(condition, x, y);
}
Value KernelBuilder::select(Value condition, int64_t x, int64_t y, Type type) {
  return select(condition, constant(type, x), constant(type, y));
}
Value KernelBuilder::cast(Value x, Type type) {
  if (x.getType() == type)
    return x;
  return b.createOrFold<arith::IndexCastOp>(type, x);
}
Value KernelBuilder::toIndex(Value x) {
  if (x.getType().isIndex())
    return x;
  return b.createOrFold<arith::IndexCastUIOp>(b.getIndexType(), x);
}

//===----------------------------------------------------------------------===//
// f32 arithmetic
//===----------------------------------------------------------------------===//

Value KernelBuilder::fadd(Value x, Value y) {
  return b.createOrFold<arith::AddFOp>(x, y);
}
Value KernelBuilder::fsub(Value x, Value y) {
  return b.createOrFold<arith::SubFOp>(x, y);
}
Value KernelBuilder::fmul(Value x, Value y) {
  return b.createOrFold<arith::MulFOp>(x, y);
}
Value KernelBuilder::fmul(Value x, double y) { return fmul(x, f32(y)); }
Value KernelBuilder::fdiv(Value x, Value y) {
  return b.createOrFold<arith::DivFOp>(x, y);
}
Value KernelBuilder::fmax(Value x, Value y) {
  return b.createOrFold<arith::MaxNumFOp>(x, y);
}
Value KernelBuilder::fma(Value x, Value y, Value z) {
  // llvm.intr.fma, not math.fma: convert-gpu-to-nvvm makes the latter a
  // libdevice call.
  return LLVM::FMAOp::create(b, x, y, z);
}
// exp2, log2 and tanh are built from the MUFU approximations, as intrinsics:
// convert-gpu-to-nvvm would turn math.exp2 & co. into libdevice calls, which
// need a CUDA toolkit at compile time (and stay unresolved without one).

Value KernelBuilder::exp2(Value x) {
  // ex2.approx.f32, what libdevice's __nv_exp2f is; ex2.approx(-inf) = +0.
  return LLVM::CallIntrinsicOp::create(
             b, b.getF32Type(), b.getStringAttr("llvm.nvvm.ex2.approx.f32"),
             ValueRange{x})
      ->getResult(0);
}

Value KernelBuilder::log2(Value x) {
  // lg2.approx.f32 (at most 2^-22 absolute error); lg2.approx(0) = -inf.
  return LLVM::CallIntrinsicOp::create(
             b, b.getF32Type(), b.getStringAttr("llvm.nvvm.lg2.approx.f"),
             ValueRange{x})
      ->getResult(0);
}

Value KernelBuilder::tanh(Value x) {
  // tanh(x) = 1 - 2 / (2^(2 x log2(e)) + 1): exact at +-inf (the exponential
  // saturates to inf or 0), an absolute error of a few ulp of 1 elsewhere.
  constexpr double twoLog2E = 2.8853900817779268;
  Value e = exp2(fmul(x, twoLog2E));
  Value inverse =
      NVVM::RcpApproxFtzF32Op::create(b, b.getF32Type(), fadd(e, f32(1.0)));
  return fma(inverse, f32(-2.0), f32(1.0));
}
Value KernelBuilder::fcmp(arith::CmpFPredicate predicate, Value x, double y) {
  return b.createOrFold<arith::CmpFOp>(predicate, x, f32(y));
}
Value KernelBuilder::fselect(Value condition, Value x, Value y) {
  return select(condition, x, y);
}
Value KernelBuilder::fselect(Value condition, double x, Value y) {
  return fselect(condition, f32(x), y);
}
Value KernelBuilder::fselect(Value condition, Value x, double y) {
  return fselect(condition, x, f32(y));
}

//===----------------------------------------------------------------------===//
// Threads
//===----------------------------------------------------------------------===//

Value KernelBuilder::threadId() {
  return gpu::ThreadIdOp::create(b, gpu::Dimension::x);
}
Value KernelBuilder::blockId(gpu::Dimension dimension) {
  return gpu::BlockIdOp::create(b, dimension);
}
Value KernelBuilder::shuffleXor(Value x, int64_t mask) {
  auto shuffle =
      gpu::ShuffleOp::create(b, x, i32(mask), i32(32), gpu::ShuffleMode::XOR);
  return shuffle.getShuffleResult();
}
Value KernelBuilder::shuffleIdx(Value x, Value lane) {
  auto shuffle =
      gpu::ShuffleOp::create(b, x, lane, i32(32), gpu::ShuffleMode::IDX);
  return shuffle.getShuffleResult();
}
void KernelBuilder::barrier() { gpu::BarrierOp::create(b); }

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

Value KernelBuilder::globalView(Value pointer, Value size) {
  auto type = llvm::cast<MemRefType>(pointer.getType());
  auto flat = MemRefType::get({ShapedType::kDynamic}, type.getElementType());
  return memref::ReinterpretCastOp::create(
      b, flat, pointer, /*offset=*/OpFoldResult(b.getIndexAttr(0)),
      /*sizes=*/ArrayRef<OpFoldResult>{size},
      /*strides=*/ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
}

SmallVector<Value>
KernelBuilder::sharedViews(int64_t totalBytes,
                           ArrayRef<std::tuple<int64_t, int64_t, Type>> parts) {
  Attribute space = b.getI64IntegerAttr(kSharedMemorySpace);
  auto externType =
      MemRefType::get({0}, b.getI8Type(), MemRefLayoutAttrInterface(), space);
  auto bytesType = MemRefType::get({totalBytes}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), space);
  Value base = memref::GetGlobalOp::create(b, externType, kSharedMemoryName);
  Value bytes = memref::ReinterpretCastOp::create(
      b, bytesType, base, OpFoldResult(b.getIndexAttr(0)),
      ArrayRef<OpFoldResult>{b.getIndexAttr(totalBytes)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
  SmallVector<Value> views;
  for (auto [byteOffset, elements, type] : parts) {
    auto viewType =
        MemRefType::get({elements}, type, MemRefLayoutAttrInterface(), space);
    views.push_back(memref::ViewOp::create(b, viewType, bytes,
                                           index(byteOffset), ValueRange{}));
  }
  return views;
}

Value KernelBuilder::load(Value view, Value index) {
  return memref::LoadOp::create(b, view, ValueRange{index});
}

void KernelBuilder::store(Value value, Value view, Value index) {
  memref::StoreOp::create(b, value, view, ValueRange{index});
}

SmallVector<Value, 4> KernelBuilder::loadQuad(Value view, Value index) {
  Type type = llvm::cast<MemRefType>(view.getType()).getElementType();
  unsigned bytes = 4 * type.getIntOrFloatBitWidth() / 8;
  Value quad = vector::LoadOp::create(
      b, VectorType::get({4}, type), view, ValueRange{index},
      /*nontemporal=*/false, llvm::MaybeAlign(bytes));
  if (type != b.getF32Type())
    quad = arith::ExtFOp::create(b, VectorType::get({4}, b.getF32Type()), quad);
  SmallVector<Value, 4> values;
  for (int64_t k = 0; k < 4; ++k)
    values.push_back(vector::ExtractOp::create(b, quad, ArrayRef<int64_t>{k}));
  return values;
}

void KernelBuilder::storePair(Value view, Value index, Value x, Value y) {
  Type type = llvm::cast<MemRefType>(view.getType()).getElementType();
  Value pair = vector::FromElementsOp::create(
      b, VectorType::get({2}, b.getF32Type()), ValueRange{x, y});
  if (type != b.getF32Type())
    pair = arith::TruncFOp::create(b, VectorType::get({2}, type), pair);
  unsigned bytes = 2 * type.getIntOrFloatBitWidth() / 8;
  vector::StoreOp::create(b, pair, view, ValueRange{index},
                          /*nontemporal=*/false, llvm::MaybeAlign(bytes));
}

void KernelBuilder::storeQuad(Value view, Value index, ArrayRef<Value> values) {
  Type type = llvm::cast<MemRefType>(view.getType()).getElementType();
  Value quad = vector::FromElementsOp::create(
      b, VectorType::get({4}, b.getF32Type()), values);
  if (type != b.getF32Type())
    quad = arith::TruncFOp::create(b, VectorType::get({4}, type), quad);
  unsigned bytes = 4 * type.getIntOrFloatBitWidth() / 8;
  vector::StoreOp::create(b, quad, view, ValueRange{index},
                          /*nontemporal=*/false, llvm::MaybeAlign(bytes));
}

void KernelBuilder::copyAsync16(Value src, Value srcIndex, Value dst,
                                Value dstOffset, Value srcElements) {
  // The token is not used: groups are committed and awaited with the NVVM
  // ops, which need no SSA token across the regions of the pipeline.
  nvgpu::DeviceAsyncCopyOp::create(b, dst, ValueRange{toIndex(dstOffset)}, src,
                                   ValueRange{srcIndex}, b.getIndexAttr(8),
                                   srcElements, b.getUnitAttr());
}

void KernelBuilder::commitGroup() { NVVM::CpAsyncCommitGroupOp::create(b); }

void KernelBuilder::waitAllGroups() { NVVM::CpAsyncWaitGroupOp::create(b, 0); }

Value KernelBuilder::asOperand(Value pair) {
  // nvvm.mma.sync takes bf16 pairs as i32 registers and f16 pairs as
  // vector<2xf16>.
  if (elementType.isF16())
    return pair;
  Value word =
      vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), pair);
  return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
}

SmallVector<Value, 4> KernelBuilder::loadMatrixX4(Value view, Value offset,
                                                  bool transpose) {
  auto type = VectorType::get({4, 2}, elementType);
  Value tiles = nvgpu::LdMatrixOp::create(
      b, type, view, ValueRange{toIndex(offset)}, transpose, /*numTiles=*/4);
  SmallVector<Value, 4> operands;
  for (int64_t q = 0; q < 4; ++q)
    operands.push_back(
        asOperand(vector::ExtractOp::create(b, tiles, ArrayRef<int64_t>{q})));
  return operands;
}

SmallVector<Value, 4> KernelBuilder::mma(ArrayRef<Value> a,
                                         ArrayRef<Value> bOperand,
                                         ArrayRef<Value> c) {
  Type f32Type = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(
      b.getContext(), {f32Type, f32Type, f32Type, f32Type});
  NVVM::MMATypes ptxType =
      elementType.isF16() ? NVVM::MMATypes::f16 : NVVM::MMATypes::bf16;
  Value result = NVVM::MmaOp::create(
      b, resultType, a, bOperand, c, ArrayRef<int64_t>{16, 8, 16}, std::nullopt,
      std::nullopt, std::array<NVVM::MMATypes, 2>{ptxType, ptxType},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value, 4> d;
  for (int64_t k = 0; k < 4; ++k)
    d.push_back(LLVM::ExtractValueOp::create(b, result, ArrayRef<int64_t>{k}));
  return d;
}

Value KernelBuilder::truncPair(Value x, Value y) {
  Value pair = vector::FromElementsOp::create(
      b, VectorType::get({2}, b.getF32Type()), ValueRange{x, y});
  return arith::TruncFOp::create(b, VectorType::get({2}, elementType), pair);
}

Value KernelBuilder::pack(Value x, Value y) {
  return asOperand(truncPair(x, y));
}

//===----------------------------------------------------------------------===//
// Structured control flow
//===----------------------------------------------------------------------===//

SmallVector<Value> KernelBuilder::forLoop(
    Value lower, Value upper, ValueRange inits,
    function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  return forLoop(lower, upper, 1, inits, body);
}

SmallVector<Value> KernelBuilder::forLoop(
    Value lower, Value upper, int64_t step, ValueRange inits,
    function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto loop = scf::ForOp::create(
      b, lower, upper, index(step), inits,
      [&](OpBuilder &nested, Location loc, Value iv, ValueRange iterArgs) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nested.getInsertionBlock(),
                            nested.getInsertionPoint());
        scf::YieldOp::create(b, body(iv, iterArgs));
      });
  return SmallVector<Value>(loop.getResults());
}

void KernelBuilder::ifThen(Value condition, function_ref<void()> then) {
  scf::IfOp::create(b, condition, [&](OpBuilder &nested, Location loc) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
    then();
    scf::YieldOp::create(b);
  });
}
