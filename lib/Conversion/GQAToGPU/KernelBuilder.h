//===- KernelBuilder.h - Op-level helpers for the GPU kernels ---*- C++ -*-===//
//
// The small vocabulary the attention kernels are written in: each method
// creates one op (or a fixed sequence of two or three) on an implicit-location
// builder. Integer index arithmetic is on `index` (64-bit after lowering),
// shared-memory offsets and per-lane mask bounds on `i32`, softmax math on
// `f32`. Private to lib/Conversion/GQAToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_LIB_CONVERSION_GQATOGPU_KERNELBUILDER_H
#define GQA_LIB_CONVERSION_GQATOGPU_KERNELBUILDER_H

#include "gqa/Conversion/GQAToGPU/GQAToGPU.h"
#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "gqa/Dialect/GQA/Utils/BlockUtils.h"
#include "gqa/Dialect/GQA/Utils/MaskUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <optional>

namespace mlir::gqa::gpu_kernel {

/// The `tile` of docs/kernel-metadata.md, as an attribute.
DictionaryAttr getTileAttr(Builder &b, const GPUTileConfig &tile);

/// log2(e) and ln(2): the softmax runs in base 2.
constexpr double kLog2E = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

/// The op vocabulary of the kernels. Arithmetic folds as it is built
/// (createOrFold); constants are created at the insertion point and uniqued
/// by the canonicalizer that follows the conversion.
class KernelBuilder {
public:
  KernelBuilder(ImplicitLocOpBuilder &b, gpu::GPUFuncOp func);

  ImplicitLocOpBuilder &b;

  //===--------------------------------------------------------------------===//
  // Constants.
  //===--------------------------------------------------------------------===//
  Value constant(Type type, int64_t value);
  Value index(int64_t value) { return constant(b.getIndexType(), value); }
  Value i32(int64_t value) { return constant(b.getI32Type(), value); }
  Value f32(double value);

  //===--------------------------------------------------------------------===//
  // Integer arithmetic (index or i32; an int64_t operand becomes a constant
  // of the other operand's type). Unsigned division only on non-negative
  // values.
  //===--------------------------------------------------------------------===//
  Value add(Value x, Value y);
  Value add(Value x, int64_t y);
  Value sub(Value x, Value y);
  Value sub(Value x, int64_t y);
  Value mul(Value x, Value y);
  Value mul(Value x, int64_t y);
  Value divu(Value x, Value y);
  Value divu(Value x, int64_t y);
  Value remu(Value x, Value y);
  Value remu(Value x, int64_t y);
  Value andi(Value x, int64_t y);
  Value xori(Value x, Value y);
  Value xori(Value x, int64_t y);
  Value andb(Value x, Value y);
  Value mins(Value x, Value y);
  Value mins(Value x, int64_t y);
  Value maxs(Value x, Value y);
  Value maxs(Value x, int64_t y);
  Value cmp(arith::CmpIPredicate predicate, Value x, Value y);
  Value cmp(arith::CmpIPredicate predicate, Value x, int64_t y);
  Value select(Value condition, Value x, Value y);
  Value select(Value condition, int64_t x, int64_t y, Type type);
  /// index <-> iN, sign-extending.
  Value cast(Value x, Type type);
  /// A non-negative i32 to index (zero-extending).
  Value toIndex(Value x);

  //===--------------------------------------------------------------------===//
  // f32 arithmetic.
  //===--------------------------------------------------------------------===//
  Value fadd(Value x, Value y);
  Value fsub(Value x, Value y);
  Value fmul(Value x, Value y);
  Value fmul(Value x, double y);
  Value fdiv(Value x, Value y);
  /// max that ignores NaN (max.f32).
  Value fmax(Value x, Value y);
  Value fma(Value x, Value y, Value z);
  Value exp2(Value x);
  Value log2(Value x);
  Value tanh(Value x);
  Value fcmp(arith::CmpFPredicate predicate, Value x, double y);
  Value fselect(Value condition, Value x, Value y);
  Value fselect(Value condition, double x, Value y);
  Value fselect(Value condition, Value x, double y);

  //===--------------------------------------------------------------------===//
  // Threads.
  //===--------------------------------------------------------------------===//
  Value threadId();
  Value blockId(gpu::Dimension dimension);
  /// shfl.sync.bfly of an f32 across the warp.
  Value shuffleXor(Value x, int64_t mask);
  /// shfl.sync.idx: the f32 `x` of lane `lane` (i32).
  Value shuffleIdx(Value x, Value lane);
  void barrier();

  //===--------------------------------------------------------------------===//
  // Memory.
  //===--------------------------------------------------------------------===//
  /// A flat memref<?xT> view of a bare-pointer parameter memref<1xT>; `size`
  /// (index) only feeds the descriptor.
  Value globalView(Value pointer, Value size);
  /// 1-D views of the extern shared array, one per (byte offset, elements,
  /// element type).
  SmallVector<Value>
  sharedViews(int64_t totalBytes,
              ArrayRef<std::tuple<int64_t, int64_t, Type>> parts);
  Value load(Value view, Value index);
  void store(Value value, Value view, Value index);
  /// Loads 4 consecutive elements of the view's type as f32 (one 8- or
  /// 16-byte load).
  SmallVector<Value, 4> loadQuad(Value view, Value index);
  /// Stores two f32 as two elements of the view's type (one 4- or 8-byte
  /// store).
  void storePair(Value view, Value index, Value x, Value y);
  /// Stores four f32 as four elements of the view's type.
  void storeQuad(Value view, Value index, ArrayRef<Value> values);

  /// 16-byte cp.async.cg from global `src[srcIndex]` to shared
  /// `dst[dstOffset]` (i32); `srcElements` (index, 0 or 8) < 8 zero-fills.
  void copyAsync16(Value src, Value srcIndex, Value dst, Value dstOffset,
                   Value srcElements);
  void commitGroup();
  void waitAllGroups();
  /// ldmatrix.x4 at shared `view[offset]` (i32): four mma operand registers
  /// (i32 for bf16, vector<2xf16> for f16).
  SmallVector<Value, 4> loadMatrixX4(Value view, Value offset, bool transpose);
  /// D = A (16x16) B (16x8) + C with f32 accumulation.
  SmallVector<Value, 4> mma(ArrayRef<Value> a, ArrayRef<Value> bOperand,
                            ArrayRef<Value> c);
  /// Two f32 rounded into one mma operand register (cvt.rn.*x2.f32; `x` in
  /// the low half).
  Value pack(Value x, Value y);

  //===--------------------------------------------------------------------===//
  // Structured control flow.
  //===--------------------------------------------------------------------===//
  /// scf.for from `lower` to `upper` (step 1) carrying `inits`; `body`
  /// returns the values to yield.
  SmallVector<Value>
  forLoop(Value lower, Value upper, ValueRange inits,
          function_ref<SmallVector<Value>(Value, ValueRange)> body);
  /// The same with a constant step.
  SmallVector<Value>
  forLoop(Value lower, Value upper, int64_t step, ValueRange inits,
          function_ref<SmallVector<Value>(Value, ValueRange)> body);
  /// scf.if without results.
  void ifThen(Value condition, function_ref<void()> then);
  /// The argument named `name` in the function's kParamsAttr.
  Value param(StringRef name);

  /// The mma operand element type (bf16 or f16).
  void setElementType(Type type) { elementType = type; }

private:
  Value asOperand(Value pair);
  Value truncPair(Value x, Value y);

  gpu::GPUFuncOp func;
  Type elementType;
};

} // namespace mlir::gqa::gpu_kernel

#endif // GQA_LIB_CONVERSION_GQATOGPU_KERNELBUILDER_H
