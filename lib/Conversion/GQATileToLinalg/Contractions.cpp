//===- Contractions.cpp - Q·Kᵀ and P·V of the CPU tile lowering -----------===//
//
// The two contractions of the tile form, `gqa.scores` (S = Q Kᵀ, scaled) and
// `gqa.accumulate` (A = A rescale + P V), as register-blocked vector loops:
// the CPU's counterpart of the GPU's mma fragments. Each keeps a block of
// rows x column vectors of its result in vector registers over the whole
// contraction, so that every element of the left operand is broadcast once
// per step and every vector of the right operand is loaded once for all the
// rows of the step. Q·Kᵀ contracts over the head dim, which is innermost in
// both Q and K: it runs on a transposed copy of the K tile (made once per
// tile, for all the block's rows) when the block has enough rows to pay for
// it, and as dot products reduced once per key otherwise (decode).
//
//===----------------------------------------------------------------------===//

#include "TileBuilder.h"
#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::tile_lowering;

namespace {

/// Lanes of the vectors of the register-blocked products (one AVX-512
/// register of f32).
constexpr int64_t kLanes = 16;
/// Rows of the left operand per step of a register-blocked product.
constexpr int64_t kRowsPerStep = 4;
/// Blocks with fewer rows than this compute Q·Kᵀ as dot products rather
/// than transpose the K tile.
constexpr int64_t kMinRowsForTransposedKeys = 16;

/// Where a step of `blockedProduct` starts from: the accumulator vector of
/// `kLanes` columns from `column` of `row`, given the product so far.
using ProductStart =
    function_ref<Value(TileBuilder &, Value product, Value row, Value column)>;
/// What a step stores of its accumulator vector.
using ProductFinish = function_ref<Value(ImplicitLocOpBuilder &, Value sum)>;

/// The number of vectors of `kLanes` columns per step (at most 4) that
/// divides `columns`, or 0 when `kLanes` does not.
int64_t vectorsPerStepFor(int64_t columns) {
  if (columns % kLanes)
    return 0;
  for (int64_t vectors : {4, 2})
    if ((columns / kLanes) % vectors == 0)
      return vectors;
  return 1;
}

/// product[r, n : n + kLanes] =
///     finish(start(r, n) + sum_k lhs[r, k] rhs[k, n : n + kLanes])
/// for every row r of `lhs` and every vector n of the columns of `rhs` (a
/// multiple of kLanes), written into `product` (f32, lhs's rows by rhs's
/// columns). `kRowsPerStep` rows (then one at a time for the rest) by up to
/// four column vectors accumulate in registers over k:
///   for r0 step 4, for n0 step 4 x 16: acc[i][j] = start(r0 + i, n0 + 16 j)
///     for k: b_j = rhs[k, n0 + 16 j :]; a_i = broadcast lhs[r0 + i, k]
///            acc[i][j] = fma(a_i, b_j, acc[i][j])
///     product[r0 + i, n0 + 16 j :] = finish(acc[i][j])
Value blockedProduct(TileBuilder &t, Value lhs, Value rhs, Value product,
                     ProductStart start, ProductFinish finish) {
  auto rhsType = cast<RankedTensorType>(rhs.getType());
  int64_t depth = rhsType.getDimSize(0), columns = rhsType.getDimSize(1);
  int64_t vectors = vectorsPerStepFor(columns);
  auto vectorType = VectorType::get({kLanes}, t.f32);
  // One step: `rowsPerStep` rows from `firstRow` by `vectors` vectors from
  // `firstColumn`.
  auto step = [&](TileBuilder &st, Value firstRow, Value firstColumn,
                  int64_t rowsPerStep, Value current) -> Value {
    ImplicitLocOpBuilder &b = st.b;
    SmallVector<Value, 4> rowsAt, columnsAt;
    for (int64_t i = 0; i < rowsPerStep; ++i)
      rowsAt.push_back(st.apply(st.dim(0) + i, {firstRow}));
    for (int64_t j = 0; j < vectors; ++j)
      columnsAt.push_back(st.apply(st.dim(0) + j * kLanes, {firstColumn}));
    SmallVector<Value, 16> inits;
    for (Value row : rowsAt)
      for (Value column : columnsAt)
        inits.push_back(start(st, current, row, column));
    ValueRange sums = st.iterate(
        st.index(0), st.index(depth), st.index(1), inits,
        [&](ImplicitLocOpBuilder &b, Value k, ValueRange acc) {
          TileBuilder kt(b);
          SmallVector<Value, 4> rhsVectors;
          for (Value column : columnsAt)
            rhsVectors.push_back(kt.readF32(rhs, {k, column}, kLanes));
          SmallVector<Value> next;
          for (Value row : rowsAt) {
            // A one-lane read, not tensor.extract: the canonicalizer would
            // fold an extract of a gathered tile into the gather's body.
            Value lhsVector = vector::BroadcastOp::create(
                b, vectorType, kt.readF32(lhs, {row, k}, 1));
            for (Value rhsVector : rhsVectors)
              next.push_back(vector::FMAOp::create(b, lhsVector, rhsVector,
                                                   acc[next.size()]));
          }
          return next;
        });
    for (auto [i, row] : llvm::enumerate(rowsAt))
      for (auto [j, column] : llvm::enumerate(columnsAt))
        current = vector::TransferWriteOp::create(
                      b, finish(b, sums[i * vectors + j]), current,
                      ValueRange{row, column}, ArrayRef<bool>{true})
                      .getResult();
    return current;
  };
  // Rows `from` to `to`, `rowsPerStep` at a time.
  auto rowSteps = [&](Value from, Value to, int64_t rowsPerStep,
                      Value current) -> Value {
    return t.iterate(
        from, to, t.index(rowsPerStep), current,
        [&](ImplicitLocOpBuilder &b, Value firstRow, ValueRange rowProduct) {
          TileBuilder rt(b);
          return SmallVector<Value>{rt.iterate(
              rt.index(0), rt.index(columns), rt.index(vectors * kLanes),
              rowProduct,
              [&](ImplicitLocOpBuilder &b, Value firstColumn,
                  ValueRange columnProduct) {
                TileBuilder st(b);
                return SmallVector<Value>{step(st, firstRow, firstColumn,
                                               rowsPerStep, columnProduct[0])};
              })[0]};
        })[0];
  };
  Value rows = t.rowsOf(lhs);
  Value fullSteps =
      t.apply(t.dim(0).floorDiv(kRowsPerStep) * kRowsPerStep, {rows});
  product = rowSteps(t.index(0), fullSteps, kRowsPerStep, product);
  return rowSteps(fullSteps, rows, 1, product);
}

/// The most rows the tiles of `op` (whose rows are `rows`) can have: a
/// constant count, else the `block_m` of the schedule of the enclosing
/// blocks, else unknown (INT64_MAX).
int64_t maxRowsOf(Operation *op, Value rows) {
  if (std::optional<int64_t> constant = getConstantIntValue(rows))
    return *constant;
  for (Operation *parent = op->getParentOp(); parent;
       parent = parent->getParentOp())
    if (auto schedule =
            parent->getAttrOfType<ScheduleAttr>(kBlockScheduleAttrName))
      return schedule.getBlockM();
  return INT64_MAX;
}

/// The widest vector of f32 (at most 32 lanes, at least 8) that divides
/// `width`, or 0.
int64_t vectorWidthFor(int64_t width) {
  for (int64_t lanes : {32, 16, 8})
    if (width % lanes == 0)
      return lanes;
  return 0;
}

struct ScoresLowering : public TilePattern<ScoresOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, ScoresOp op) const override {
    auto type = cast<RankedTensorType>(op.getScores().getType());
    auto keyType = cast<RankedTensorType>(op.getKey().getType());
    int64_t keys = keyType.getDimSize(0), headDim = keyType.getDimSize(1);
    if (vectorsPerStepFor(keys) &&
        maxRowsOf(op, t.rowsOf(op.getQuery())) >= kMinRowsForTransposedKeys)
      return {scoresOnTransposedKeys(t, op, type)};
    if (int64_t lanes = std::min<int64_t>(vectorWidthFor(headDim), 16);
        lanes && keys % kKeysPerStep == 0)
      return {scoresAsDotProducts(t, op, type, keys, headDim, lanes)};
    MLIRContext *context = op.getContext();
    AffineExpr r = t.dim(0), c = t.dim(1), d = t.dim(2);
    auto fastmath = t.reassociate();
    // <q_r, k_c> over (r, c, d).
    Value dot = t.generic({op.getQuery(), op.getKey()}, {t.filled(type, 0.0)},
                          {AffineMap::get(3, 0, {r, d}, context),
                           AffineMap::get(3, 0, {c, d}, context),
                           AffineMap::get(3, 0, {r, c}, context)},
                          {kParallel, kParallel, kReduction},
                          [&](ImplicitLocOpBuilder &b, ValueRange args) {
                            return SmallVector<Value>{
                                TileBuilder::multiplyAdd(b, args, fastmath)};
                          })[0];
    return {t.generic({dot}, {t.empty(type)}, {t.identity2(), t.identity2()},
                      {kParallel, kParallel},
                      [&](ImplicitLocOpBuilder &b, ValueRange args) {
                        return SmallVector<Value>{scaled(b, op, args[0])};
                      })[0]};
  }

  /// log2(e) * cap(scale * dot), of a scalar or a vector of dot products.
  static Value scaled(ImplicitLocOpBuilder &b, ScoresOp op, Value dot) {
    Type type = dot.getType();
    double scale = op.getScale().convertToDouble();
    std::optional<APFloat> softcap = op.getSoftcap();
    if (!softcap)
      return arith::MulFOp::create(
          b, dot, TileBuilder::f32Like(b, type, scale * M_LOG2E));
    double cap = softcap->convertToDouble();
    Value inside = arith::MulFOp::create(
        b, dot, TileBuilder::f32Like(b, type, scale / cap));
    return arith::MulFOp::create(b, math::TanhOp::create(b, inside),
                                 TileBuilder::f32Like(b, type, cap * M_LOG2E));
  }

  /// S = scaled(Q Kᵀ) as a register-blocked product with Kᵀ (head dim x
  /// keys, f32), transposed once for all the block's rows.
  static Value scoresOnTransposedKeys(TileBuilder &t, ScoresOp op,
                                      RankedTensorType type) {
    auto keyType = cast<RankedTensorType>(op.getKey().getType());
    auto transposedType = RankedTensorType::get(
        {keyType.getDimSize(1), keyType.getDimSize(0)}, t.f32);
    Value transposed = t.generic(
        {op.getKey()}, {t.empty(transposedType)},
        {AffineMap::get(2, 0, {t.dim(1), t.dim(0)}, op.getContext()),
         t.identity2()},
        {kParallel, kParallel}, [&](ImplicitLocOpBuilder &b, ValueRange args) {
          return SmallVector<Value>{TileBuilder::toF32(b, args[0])};
        })[0];
    Value zeros =
        TileBuilder::f32Like(t.b, VectorType::get({kLanes}, t.f32), 0.0);
    return blockedProduct(
        t, op.getQuery(), transposed, t.empty(type),
        [&](TileBuilder &, Value, Value, Value) { return zeros; },
        [&](ImplicitLocOpBuilder &b, Value sum) { return scaled(b, op, sum); });
  }

  /// Keys whose dot products with one query row accumulate together.
  static constexpr int64_t kKeysPerStep = 4;

  /// The dot products of a query row with `kKeysPerStep` keys accumulate in
  /// as many vectors of `lanes` lanes, each reduced once at the end:
  ///   for r, for c0 step 4: a_j = 0; for d0 step lanes:
  ///     q = Q[r, d0:]; a_j += q * K[c0 + j, d0:];   S[r, c0 + j] = sum(a_j)
  static Value scoresAsDotProducts(TileBuilder &t, ScoresOp op,
                                   RankedTensorType type, int64_t keys,
                                   int64_t headDim, int64_t lanes) {
    Value zeros =
        TileBuilder::f32Like(t.b, VectorType::get({lanes}, t.f32), 0.0);
    Value scores = t.empty(type);
    auto fastmath = t.reassociate();
    return t.iterate(
        t.index(0), t.rowsOf(op.getQuery()), t.index(1), scores,
        [&](ImplicitLocOpBuilder &b, Value row, ValueRange rowScores) {
          TileBuilder rt(b);
          return SmallVector<Value>{rt.iterate(
              rt.index(0), rt.index(keys), rt.index(kKeysPerStep), rowScores,
              [&](ImplicitLocOpBuilder &b, Value firstKey, ValueRange step) {
                TileBuilder kt(b);
                SmallVector<Value> inits(kKeysPerStep, zeros);
                ValueRange sums = kt.iterate(
                    kt.index(0), kt.index(headDim), kt.index(lanes), inits,
                    [&](ImplicitLocOpBuilder &b, Value column, ValueRange acc) {
                      TileBuilder dt(b);
                      Value q = dt.readF32(op.getQuery(), {row, column}, lanes);
                      SmallVector<Value> next;
                      for (int64_t j = 0; j < kKeysPerStep; ++j) {
                        Value key = dt.apply(dt.dim(0) + j, {firstKey});
                        Value k = dt.readF32(op.getKey(), {key, column}, lanes);
                        next.push_back(vector::FMAOp::create(b, q, k, acc[j]));
                      }
                      return next;
                    });
                Value out = step[0];
                for (int64_t j = 0; j < kKeysPerStep; ++j) {
                  Value dot = vector::ReductionOp::create(
                      b, vector::CombiningKind::ADD, sums[j], Value(),
                      fastmath.getValue());
                  Value key = kt.apply(kt.dim(0) + j, {firstKey});
                  out = tensor::InsertOp::create(b, scaled(b, op, dot), out,
                                                 ValueRange{row, key});
                }
                return SmallVector<Value>{out};
              })[0]};
        })[0];
  }
};

struct AccumulateLowering : public TilePattern<AccumulateOp> {
  using TilePattern::TilePattern;
  SmallVector<Value> build(TileBuilder &t, AccumulateOp op) const override {
    auto valueType = cast<RankedTensorType>(op.getValue().getType());
    if (vectorsPerStepFor(valueType.getDimSize(1)))
      return {accumulateInRegisters(t, op)};
    MLIRContext *context = op.getContext();
    auto fastmath = t.reassociate();
    // A * rescale, over A.
    Value rescaled = t.generic(
        {op.getRescale()}, {op.getAccumulator()}, {t.rows2(), t.identity2()},
        {kParallel, kParallel}, [&](ImplicitLocOpBuilder &b, ValueRange args) {
          return SmallVector<Value>{arith::MulFOp::create(b, args[1], args[0])};
        })[0];
    // A[r, e] += P[r, c] V[c, e] over (r, c, e): the innermost loop runs
    // along rows of V and A.
    AffineExpr r = t.dim(0), c = t.dim(1), e = t.dim(2);
    return {t.generic({op.getProbabilities(), op.getValue()}, {rescaled},
                      {AffineMap::get(3, 0, {r, c}, context),
                       AffineMap::get(3, 0, {c, e}, context),
                       AffineMap::get(3, 0, {r, e}, context)},
                      {kParallel, kReduction, kParallel},
                      [&](ImplicitLocOpBuilder &b, ValueRange args) {
                        return SmallVector<Value>{
                            TileBuilder::multiplyAdd(b, args, fastmath)};
                      })[0]};
  }

  /// A = A rescale + P V as a register-blocked product, each accumulator
  /// vector starting from its columns of A (read before they are written)
  /// times the row's rescale.
  static Value accumulateInRegisters(TileBuilder &t, AccumulateOp op) {
    auto vectorType = VectorType::get({kLanes}, t.f32);
    return blockedProduct(
        t, op.getProbabilities(), op.getValue(), op.getAccumulator(),
        [&](TileBuilder &st, Value current, Value row, Value column) {
          Value rescale = vector::BroadcastOp::create(
              st.b, vectorType,
              tensor::ExtractOp::create(st.b, op.getRescale(),
                                        ValueRange{row}));
          return arith::MulFOp::create(
              st.b, st.readF32(current, {row, column}, kLanes), rescale);
        },
        [](ImplicitLocOpBuilder &, Value sum) { return sum; });
  }
};

} // namespace

void mlir::gqa::tile_lowering::populateContractionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<ScoresLowering, AccumulateLowering>(patterns.getContext());
}
