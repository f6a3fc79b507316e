//===- TileBuilder.h - What the CPU tile lowering builds --------*- C++ -*-===//
//
// The small vocabulary of the CPU lowering of the tile ops (private to
// lib/Conversion/GQATileToLinalg): linalg.generic, filled and empty
// tensors, scf loops and vector reads, on an implicit-location builder.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_LIB_CONVERSION_GQATILETOLINALG_TILEBUILDER_H
#define GQA_LIB_CONVERSION_GQATILETOLINALG_TILEBUILDER_H

#include "gqa/Dialect/GQA/Utils/IndexUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"

namespace mlir::gqa::tile_lowering {

using utils::IteratorType;
constexpr IteratorType kParallel = IteratorType::parallel;
constexpr IteratorType kReduction = IteratorType::reduction;

/// The ops the patterns build, on an implicit-location builder.
class TileBuilder : public IndexBuilder {
public:
  TileBuilder(ImplicitLocOpBuilder &b) : IndexBuilder(b), f32(b.getF32Type()) {}

  Type f32;

  Value f32Constant(double value) {
    return arith::ConstantFloatOp::create(b, b.getF32Type(),
                                          APFloat(static_cast<float>(value)));
  }

  /// The f32 constant `value`, as a scalar or a splat of the vector `type`.
  static Value f32Like(ImplicitLocOpBuilder &b, Type type, double value) {
    return createScalarOrSplatConstant(b, b.getLoc(), type,
                                       APFloat(static_cast<float>(value)));
  }

  /// The rows of the tiles of the op being lowered, for those whose row
  /// dimension is dynamic (a partial block).
  Value rows;

  /// An uninitialised tensor of `type` (its dynamic rows: `rows`).
  Value empty(RankedTensorType type) {
    SmallVector<Value, 1> dynamicSizes;
    if (type.isDynamicDim(0))
      dynamicSizes.push_back(rows);
    return tensor::EmptyOp::create(b, type, dynamicSizes);
  }
  /// A tensor of `type` filled with `value`.
  Value filled(RankedTensorType type, double value) {
    return linalg::FillOp::create(b, ValueRange{f32Constant(value)},
                                  ValueRange{empty(type)})
        .getResult(0);
  }
  /// The number of rows of `tile`.
  Value rowsOf(Value tile) { return b.createOrFold<tensor::DimOp>(tile, 0); }

  /// A linalg.generic over `rank` loops whose body (on an implicit-location
  /// builder, given the block arguments) returns what it yields.
  ValueRange
  generic(ValueRange inputs, ValueRange outputs, ArrayRef<AffineMap> maps,
          ArrayRef<IteratorType> iterators,
          function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, ValueRange)>
              body) {
    auto op = linalg::GenericOp::create(
        b, TypeRange(outputs), inputs, outputs, maps, iterators,
        [&](OpBuilder &nested, Location loc, ValueRange args) {
          ImplicitLocOpBuilder inner(loc, nested);
          linalg::YieldOp::create(inner, body(inner, args));
        });
    return op.getResults();
  }

  /// Maps of a 2-D domain: (r, c) -> (r, c) and (r, c) -> (r).
  AffineMap identity2() { return b.getMultiDimIdentityMap(2); }
  AffineMap rows2() { return AffineMap::get(2, 0, {dim(0)}, b.getContext()); }
  AffineMap identity1() { return b.getMultiDimIdentityMap(1); }

  static Value toF32(ImplicitLocOpBuilder &b, Value x) {
    if (x.getType().isF32())
      return x;
    return arith::ExtFOp::create(b, b.getF32Type(), x);
  }
  static Value fromF32(ImplicitLocOpBuilder &b, Value x, Type type) {
    if (type.isF32())
      return x;
    return arith::TruncFOp::create(b, type, x);
  }
  /// The body of a contraction: args[2] + f32(args[0]) * f32(args[1]).
  static Value multiplyAdd(ImplicitLocOpBuilder &b, ValueRange args,
                           arith::FastMathFlagsAttr fastmath) {
    Value product = arith::MulFOp::create(b, toF32(b, args[0]),
                                          toF32(b, args[1]), fastmath);
    return arith::AddFOp::create(b, args[2], product, fastmath);
  }
  /// `lanes` consecutive elements of row `at[0]` of the 2-D `tile` from
  /// column `at[1]`, as f32.
  Value readF32(Value tile, ArrayRef<Value> at, int64_t lanes) {
    Type elementType = getElementTypeOrSelf(tile.getType());
    Value padding = arith::ConstantOp::create(b, b.getZeroAttr(elementType));
    Value read =
        vector::TransferReadOp::create(b, VectorType::get({lanes}, elementType),
                                       tile, at, padding, ArrayRef<bool>{true});
    if (elementType.isF32())
      return read;
    return arith::ExtFOp::create(b, VectorType::get({lanes}, f32), read);
  }
  /// Reassociation and contraction for the sums of products, as the GPU's
  /// mma and fma do.
  arith::FastMathFlagsAttr reassociate() {
    return arith::FastMathFlagsAttr::get(b.getContext(),
                                         arith::FastMathFlags::reassoc |
                                             arith::FastMathFlags::contract);
  }

  /// `scf.for %iv = lower to upper step 1` running `body(%iv)`.
  void forEach(Value lower, Value upper,
               function_ref<void(ImplicitLocOpBuilder &, Value)> body) {
    iterate(lower, upper, index(1), ValueRange{},
            [&](ImplicitLocOpBuilder &inner, Value iv, ValueRange) {
              body(inner, iv);
              return SmallVector<Value>();
            });
  }
  /// `scf.for %iv = lower to upper step step` carrying `inits`; `body`
  /// returns what the iteration yields.
  ValueRange iterate(Value lower, Value upper, Value step, ValueRange inits,
                     function_ref<SmallVector<Value>(ImplicitLocOpBuilder &,
                                                     Value, ValueRange)>
                         body) {
    return scf::ForOp::create(
               b, lower, upper, step, inits,
               [&](OpBuilder &nested, Location loc, Value iv, ValueRange args) {
                 ImplicitLocOpBuilder inner(loc, nested);
                 scf::YieldOp::create(inner, body(inner, iv, args));
               })
        .getResults();
  }
  /// `scf.for` from `lower` to `upper` folding `body(%iv, acc)` over `init`.
  Value reduce(Value lower, Value upper, Value init,
               function_ref<Value(ImplicitLocOpBuilder &, Value, Value)> body) {
    return iterate(lower, upper, index(1), init,
                   [&](ImplicitLocOpBuilder &inner, Value iv, ValueRange acc) {
                     return SmallVector<Value>{body(inner, iv, acc[0])};
                   })[0];
  }
};

/// Builds a TileBuilder at `op` and replaces `op` with what `build` returns.
template <typename OpTy> struct TilePattern : public OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    b.setInsertionPoint(op);
    TileBuilder t(b);
    // The rows of a partial block come with the first tile operand.
    for (Value operand : op->getOperands())
      if (auto type = dyn_cast<RankedTensorType>(operand.getType());
          type && type.isDynamicDim(0)) {
        t.rows = t.rowsOf(operand);
        break;
      }
    SmallVector<Value> results = build(t, op);
    rewriter.replaceOp(op, results);
    return success();
  }

  virtual SmallVector<Value> build(TileBuilder &t, OpTy op) const = 0;
};

/// The lowerings of the contractions, gqa.scores and gqa.accumulate
/// (Contractions.cpp).
void populateContractionPatterns(RewritePatternSet &patterns);
/// The lowerings of the merges by log-sum-exp, gqa.combine_splits and
/// gqa.merge_rows (Merges.cpp).
void populateMergePatterns(RewritePatternSet &patterns);

} // namespace mlir::gqa::tile_lowering

#endif // GQA_LIB_CONVERSION_GQATILETOLINALG_TILEBUILDER_H
