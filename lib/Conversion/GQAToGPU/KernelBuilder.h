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
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <optional>

namespace mlir::gqa::gpu_kernel {

/// What one op's kernels are specialised for.
struct KernelSpec {
  int64_t qHeads = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  int64_t headDimV = 0;
  /// f16 or bf16: the element type of q, k, v and out.
  Type elementType;
  Layout layout = Layout::BHSD;
  MaskAttr mask;
  double scale = 1.0;
  std::optional<double> softcap;
  /// The element type of the KV lengths (i32 or index), or null without.
  Type kvLensType;
  /// Tokens per page of a paged KV cache (K/V pools [pages, P, Hkv, D] read
  /// through an i32 block table [B, Skv / P]); 0: contiguous K/V.
  int64_t pageSize = 0;
  GPUTileConfig tile;

  int64_t groupSize() const { return qHeads / kvHeads; }
};

/// The `tile` of docs/kernel-metadata.md, as an attribute.
DictionaryAttr getTileAttr(Builder &b, const GPUTileConfig &tile);

/// The kernels of a set, by role.
enum class KernelRole { Main, Split, Combine };

/// Threads per CTA and rows per CTA of the combine kernel: each thread
/// merges 4 consecutive Dv values of one row.
struct CombineShape {
  int64_t threadsPerRow;
  int64_t rowsPerCTA;
  int64_t threads() const { return threadsPerRow * rowsPerCTA; }
};
CombineShape getCombineShape(int64_t headDimV);

/// Creates the gpu.func of the `role` (`Main` or `Split`) attention kernel of
/// `spec`, whose tensors hold `tensorType`: the parameters of
/// docs/kernel-metadata.md in order (bare pointers as memref<1xT>, then i64
/// sizes), their names in kParamsAttr, `threads` threads per CTA and the
/// tile's register hints. The body holds only the terminator.
gpu::GPUFuncOp createAttentionKernelFunc(OpBuilder &builder, Location loc,
                                         const KernelSpec &spec,
                                         KernelRole role, Type tensorType,
                                         int64_t threads);

/// The parameters of an attention kernel as its body sees them.
struct AttentionKernelParams {
  /// Sizes, as index.
  Value batchSize, seqQ, seqKV;
  /// `Split` only.
  Value numSplits;
  /// Flat memref<?xT> views of the tensors.
  Value q, k, v;
  /// The output (the split kernel writes it when launched with one split).
  Value out;
  /// `Split` only: the workspace of docs/kernel-metadata.md.
  Value partialOut, partialLse;
  /// Only with KV lengths.
  Value kvLens;
  /// Only when paged: the block table [B, Skv / P] (flat) and the pages in
  /// the pools.
  Value blockTable, numPages;
};

/// What one CTA of an attention kernel (tensor-core or CUDA-core) works on:
/// both kernels share the grid, the packing of rows and the split partition.
struct AttentionCTAWork {
  /// From the grid: (row block, KV head [+ split], batch).
  Value rowBlock, kvHead, batch;
  /// `Split` only: the split index, and whether the launch has one split
  /// (num_splits == 1: the kernel writes the output, no combine follows).
  Value splitIndex, singleSplit;
  /// Packed rows of (query position, head of the group): Sq * g; the first
  /// one this CTA handles.
  Value packedRows, firstRow;
  /// The valid keys (kv_lens[b] clamped to [0, Skv], or Skv) and the
  /// bottom-right alignment offset kvLen - Sq.
  Value kvLen, offset;
  /// The KV tiles the CTA visits, cut to its split, and the keys all its
  /// rows see (emitBlockWork, as gqa-distribute computes them).
  BlockWork block;
};

/// log2(e) and ln(2): the softmax runs in base 2.
constexpr double kLog2E = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

/// Builds the f32 attention kernel (`Main` or `Split`) of `spec` on the CUDA
/// cores (no mma.sync), with the grid, parameters and split-KV partition of
/// the tensor-core kernel.
gpu::GPUFuncOp buildSIMTAttentionKernel(OpBuilder &builder, Location loc,
                                        const KernelSpec &spec,
                                        KernelRole role);

/// Builds the split-KV combine kernel of `spec`.
gpu::GPUFuncOp buildCombineKernel(OpBuilder &builder, Location loc,
                                  const KernelSpec &spec);

/// The op vocabulary of the kernels. Constants are created once, at the top
/// of the function's entry block, so that they dominate every region.
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
  Value ori(Value x, Value y);
  Value andb(Value x, Value y);
  Value mins(Value x, Value y);
  Value mins(Value x, int64_t y);
  Value maxs(Value x, Value y);
  Value maxs(Value x, int64_t y);
  /// ceil(x / y) of x >= 0.
  Value ceilDivu(Value x, int64_t y);
  Value ceilDivu(Value x, Value y);
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
  /// Loads 4 consecutive f32 (one 16-byte load).
  SmallVector<Value, 4> loadF32x4(Value view, Value index);
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
  /// scf.if with an else region, without results.
  void ifThenElse(Value condition, function_ref<void()> then,
                  function_ref<void()> otherwise);
  /// scf.if yielding `types`.
  SmallVector<Value> ifThenElse(Value condition, TypeRange types,
                                function_ref<SmallVector<Value>()> then,
                                function_ref<SmallVector<Value>()> otherwise);

  /// The argument named `name` in the function's kParamsAttr.
  Value param(StringRef name);
  /// The parameters of a kernel made by createAttentionKernelFunc.
  AttentionKernelParams attentionParams(const KernelSpec &spec,
                                        KernelRole role);

  /// The rows and KV tiles of this CTA, with `blockM` packed rows per CTA and
  /// `blockN` keys per tile.
  AttentionCTAWork attentionCTAWork(const KernelSpec &spec, KernelRole role,
                                    const AttentionKernelParams &params,
                                    int64_t blockM, int64_t blockN);

  /// The mma operand element type (bf16 or f16).
  void setElementType(Type type) { elementType = type; }

private:
  Value asOperand(Value pair);
  Value truncPair(Value x, Value y);

  gpu::GPUFuncOp func;
  Type elementType;
  llvm::DenseMap<std::pair<Type, int64_t>, Value> intConstants;
  llvm::DenseMap<uint64_t, Value> floatConstants;
};

/// Where the rows of one sequence's KV head lie in K and V: at base + key *
/// stride (the bases computed once, in front of the KV loop), or, paged, at
/// ((block_table[b, key / P] * P + key % P) * Hkv + kvHead) * width with the
/// page clamped into the pool (a bad entry reads a wrong page, never memory
/// outside the pool).
class KVRows {
public:
  KVRows(KernelBuilder &k, const KernelSpec &spec,
         const AttentionKernelParams &params, Value batch, Value kvHead);
  /// The element offset of key `key`'s row (head dim 0) in K, or in V when
  /// `ofValue`. `key` must be in [0, Skv).
  Value offset(Value key, bool ofValue) const;

private:
  KernelBuilder &k;
  const KernelSpec &spec;
  const AttentionKernelParams &params;
  Value batch, kvHead;
  /// Contiguous K/V only.
  Value kBase, vBase;
  int64_t kStride = 0, vStride = 0;
};

} // namespace mlir::gqa::gpu_kernel

#endif // GQA_LIB_CONVERSION_GQATOGPU_KERNELBUILDER_H
