//===- SIMTKernel.cpp - The f32 attention kernel on CUDA cores ------------===//
//
// f32 inputs have no mma.sync path here, so they get a plain FlashAttention
// kernel on the CUDA cores, with the same grid, packed GQA rows, KV-tile
// range, split-KV partition and parameters as the tensor-core kernel:
//
//   grid (ceil(Sq*g / 16), Hkv [* num_splits], B), 128 threads (4 warps).
//   Warp w owns packed rows 4w .. 4w+3 of the CTA's 16; a KV tile has 32
//   keys, one per lane. Shared memory (one extern array):
//     Q [16 x D] | K [32 x (D + 1)] (padded: conflict-free column reads;
//     copied a row per warp so that the copy is conflict-free too)
//     | V [32 x Dv].
//   per KV tile: every thread copies its share of K and V (zero past the
//   KV length); barrier; per row: s = q . k[lane] (scaled, softcapped,
//   masked through emitVisibleKeys), warp max by shuffles, online softmax
//   with a lane-partial sum, O[c] for c = lane + 32 t: O = alpha O +
//   sum_j p_j V[j][c] with p_j broadcast by shuffles; barrier.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "gqa/Dialect/GQA/Utils/MaskUtils.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Matchers.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

using arith::CmpFPredicate;
using arith::CmpIPredicate;

gpu::GPUFuncOp mlir::gqa::gpu_kernel::buildSIMTAttentionKernel(
    OpBuilder &builder, Location loc, const KernelSpec &spec, KernelRole role) {
  const bool split = role == KernelRole::Split;
  const GPUTileConfig &tile = spec.tile;
  const int64_t D = spec.headDim, Dv = spec.headDimV;
  const int64_t BM = tile.blockM, BN = tile.blockN, T = tile.threads();
  const int64_t rowsPerWarp = BM / tile.warps;
  const int64_t g = spec.groupSize(), Hq = spec.qHeads;
  // Output columns per lane: lane + 32 t, t < columnSteps.
  const int64_t columnSteps = (Dv + 31) / 32;
  const int64_t kStride = D + 1;
  Type f32 = builder.getF32Type();

  auto func = createAttentionKernelFunc(builder, loc, spec, role, f32, T);
  ImplicitLocOpBuilder b(loc, builder);
  b.setInsertionPoint(func.getBody().front().getTerminator());
  KernelBuilder k(b, func);
  k.setElementType(f32);
  AttentionKernelParams params = k.attentionParams(spec, role);
  Value batchSize = params.batchSize, seqQ = params.seqQ, gQ = params.q,
        gK = params.k, gV = params.v, gOut = params.out,
        gPartialOut = params.partialOut, gPartialLse = params.partialLse;

  int64_t offsetK = BM * D * 4, offsetV = offsetK + BN * kStride * 4;
  int64_t sharedBytes = offsetV + BN * Dv * 4;
  SmallVector<Value> shared =
      k.sharedViews(sharedBytes, {{0, BM * D, f32},
                                  {offsetK, BN * kStride, f32},
                                  {offsetV, BN * Dv, f32}});
  Value sQ = shared[0], sK = shared[1], sV = shared[2];
  func->setAttr(kDynamicSharedMemoryAttr,
                builder.getI64IntegerAttr(sharedBytes));

  Value tid = k.threadId();
  Value warp = k.divu(tid, 32);
  Value lane = k.remu(tid, 32);
  AttentionCTAWork work = k.attentionCTAWork(spec, role, params, BM, BN);
  Value batch = work.batch, kvHead = work.kvHead, splitIndex = work.splitIndex,
        packedRows = work.packedRows, firstRow = work.firstRow,
        kvLen = work.kvLen, offset = work.offset,
        tileBegin = work.block.tileBegin, tileEnd = work.block.tileEnd;
  MaskAttr mask = spec.mask;

  // The warp's rows: packed row, query position, head, visible keys.
  struct Row {
    Value packed, valid, position, head, begin, end;
  };
  SmallVector<Row> rows;
  for (int64_t rr = 0; rr < rowsPerWarp; ++rr) {
    Row row;
    Value local = k.add(k.mul(warp, rowsPerWarp), rr);
    row.packed = k.add(firstRow, local);
    row.valid = k.cmp(CmpIPredicate::slt, row.packed, packedRows);
    Value clamped = k.mins(row.packed, k.sub(packedRows, 1));
    row.position = k.divu(clamped, g);
    row.head = k.add(k.mul(kvHead, g), k.remu(clamped, g));
    KeyRange keys =
        emitVisibleKeys(b, mask, k.divu(row.packed, g), offset, kvLen);
    row.begin = keys.begin;
    row.end = keys.end;
    rows.push_back(row);
  }
  auto rowOffset = [&](Value head, Value position, int64_t width) {
    if (spec.layout == Layout::BSHD)
      return k.mul(k.add(k.mul(k.add(k.mul(batch, seqQ), position), Hq), head),
                   width);
    return k.mul(k.add(k.mul(k.add(k.mul(batch, Hq), head), seqQ), position),
                 width);
  };
  KVRows kvRows(k, spec, params, batch, kvHead);

  // Copies count elements with every thread, element e = tid + T * i.
  auto stridedLoop = [&](int64_t count, function_ref<void(Value)> body) {
    k.forLoop(tid, k.index(count), T, {},
              [&](Value e, ValueRange) -> SmallVector<Value> {
                body(e);
                return {};
              });
  };
  // The Q tile; rows past the packed rows read as 0.
  stridedLoop(BM * D, [&](Value e) {
    Value r = k.divu(e, D), d = k.remu(e, D);
    Value packed = k.add(firstRow, r);
    Value valid = k.cmp(CmpIPredicate::slt, packed, packedRows);
    Value clamped = k.select(valid, packed, k.index(0));
    Value position = k.divu(clamped, g);
    Value head = k.add(k.mul(kvHead, g), k.remu(clamped, g));
    Value x = k.load(gQ, k.add(rowOffset(head, position, D), d));
    k.store(k.fselect(valid, x, 0.0), sQ, e);
  });

  double scale2 = spec.softcap ? *spec.softcap * kLog2E : spec.scale * kLog2E;
  const double negInf = -INFINITY;
  const int64_t stateSize = 2 + columnSteps; // m, lane-partial l, O columns
  SmallVector<Value> inits;
  for (int64_t rr = 0; rr < rowsPerWarp; ++rr) {
    inits.push_back(k.f32(negInf));
    inits.push_back(k.f32(0.0));
    inits.append(columnSteps, k.f32(0.0));
  }
  // The V column of each of the lane's output columns (clamped to Dv - 1;
  // a clamped one is never stored).
  SmallVector<Value> columns, validColumns;
  for (int64_t t = 0; t < columnSteps; ++t) {
    Value column = k.add(lane, 32 * t);
    columns.push_back(column);
    validColumns.push_back(k.cmp(CmpIPredicate::slt, column, Dv));
  }
  SmallVector<Value> readColumns;
  for (Value column : columns)
    readColumns.push_back(k.mins(column, Dv - 1));

  auto body = [&](Value n, ValueRange args) -> SmallVector<Value> {
    Value firstKey = k.mul(n, BN);
    // Every warp is done with the previous K and V tiles.
    k.barrier();
    Value lastKey = k.sub(kvLen, 1);
    // K rows are padded to D + 1 words, so a flat copy whose 32 elements
    // straddle two rows would store to one bank twice: each warp copies
    // whole rows instead, lane over d.
    k.forLoop(warp, k.index(BN), tile.warps, {},
              [&](Value j, ValueRange) -> SmallVector<Value> {
                Value key = k.add(firstKey, j);
                Value valid = k.cmp(CmpIPredicate::slt, key, kvLen);
                Value row = kvRows.offset(k.maxs(k.mins(key, lastKey), 0),
                                          /*ofValue=*/false);
                for (int64_t t = 0; t < (D + 31) / 32; ++t) {
                  Value d = k.add(lane, 32 * t);
                  auto copy = [&] {
                    Value x = k.load(gK, k.add(row, d));
                    k.store(k.fselect(valid, x, 0.0), sK,
                            k.add(k.mul(j, kStride), d));
                  };
                  if (32 * (t + 1) > D)
                    k.ifThen(k.cmp(CmpIPredicate::slt, d, D), copy);
                  else
                    copy();
                }
                return {};
              });
    // The V tile, flat (unpadded): element e = j * Dv + d.
    stridedLoop(BN * Dv, [&](Value e) {
      Value j = k.divu(e, Dv), d = k.remu(e, Dv);
      Value key = k.add(firstKey, j);
      Value valid = k.cmp(CmpIPredicate::slt, key, kvLen);
      Value clamped = k.maxs(k.mins(key, lastKey), 0);
      Value x = k.load(gV, k.add(kvRows.offset(clamped, /*ofValue=*/true), d));
      k.store(k.fselect(valid, x, 0.0), sV, e);
    });
    k.barrier();

    Value key = k.add(firstKey, lane);
    Value keyRow = k.mul(lane, kStride);
    SmallVector<Value> next;
    for (int64_t rr = 0; rr < rowsPerWarp; ++rr) {
      ValueRange state = args.slice(rr * stateSize, stateSize);
      Value m = state[0], l = state[1];
      SmallVector<Value> o(state.begin() + 2, state.end());
      // s = q . k[lane], over D.
      Value queryRow = k.mul(k.add(k.mul(warp, rowsPerWarp), rr), D);
      Value s = k.forLoop(k.index(0), k.index(D), 1, {k.f32(0.0)},
                          [&](Value d, ValueRange acc) -> SmallVector<Value> {
                            Value q = k.load(sQ, k.add(queryRow, d));
                            Value kd = k.load(sK, k.add(keyRow, d));
                            return {k.fma(q, kd, acc[0])};
                          })[0];
      if (spec.softcap)
        s = k.tanh(k.fmul(s, spec.scale / *spec.softcap));
      // The key of this lane is visible iff begin <= key < end.
      const Row &row = rows[rr];
      Value visible = k.cmp(CmpIPredicate::slt, key, row.end);
      if (!matchPattern(row.begin, m_Zero()))
        visible = k.andb(visible, k.cmp(CmpIPredicate::sge, key, row.begin));
      s = k.fselect(visible, s, negInf);
      Value rowMax = s;
      for (int64_t width = 16; width >= 1; width /= 2)
        rowMax = k.fmax(rowMax, k.shuffleXor(rowMax, width));
      Value mNew = k.fmax(m, k.fmul(rowMax, scale2));
      Value mUse =
          k.fselect(k.fcmp(CmpFPredicate::OEQ, mNew, negInf), 0.0, mNew);
      Value alpha = k.exp2(k.fsub(m, mUse));
      Value p = k.exp2(k.fma(s, k.f32(scale2), k.fsub(k.f32(0.0), mUse)));
      Value lNew = k.fma(l, alpha, p);
      for (Value &value : o)
        value = k.fmul(value, alpha);
      // O[c] += sum_j p_j V[j][c], p_j from lane j.
      o = k.forLoop(
          k.index(0), k.index(BN), 1, o,
          [&](Value j, ValueRange acc) -> SmallVector<Value> {
            Value pj = k.shuffleIdx(p, k.cast(j, b.getI32Type()));
            Value vRow = k.mul(j, Dv);
            SmallVector<Value> updated;
            for (int64_t t = 0; t < columnSteps; ++t)
              updated.push_back(
                  k.fma(pj, k.load(sV, k.add(vRow, readColumns[t])), acc[t]));
            return updated;
          });
      next.push_back(mNew);
      next.push_back(lNew);
      next.append(o.begin(), o.end());
    }
    return next;
  };
  SmallVector<Value> results = k.forLoop(tileBegin, tileEnd, inits, body);

  // Epilogue: the warp's sum of l, O / l (0 for rows that saw no key).
  for (int64_t rr = 0; rr < rowsPerWarp; ++rr) {
    ArrayRef<Value> state =
        ArrayRef<Value>(results).slice(rr * stateSize, stateSize);
    Value m = state[0], l = state[1];
    for (int64_t width = 16; width >= 1; width /= 2)
      l = k.fadd(l, k.shuffleXor(l, width));
    Value empty = k.fcmp(CmpFPredicate::OEQ, l, 0.0);
    Value inverse = k.fselect(empty, 0.0, k.fdiv(k.f32(1.0), l));
    const Row &row = rows[rr];
    auto storeRow = [&](Value view, Value base) {
      for (int64_t t = 0; t < columnSteps; ++t) {
        Value value = k.fmul(state[2 + t], inverse);
        Value store = row.valid;
        if (32 * (t + 1) > Dv)
          store = k.andb(store, validColumns[t]);
        k.ifThen(store, [&] { k.store(value, view, k.add(base, columns[t])); });
      }
    };
    auto storeOutput = [&] {
      storeRow(gOut, rowOffset(row.head, row.position, Dv));
    };
    if (!split) {
      storeOutput();
      continue;
    }
    // Split-KV: the output itself when launched with one split, else the
    // partial output and its natural-log log-sum-exp.
    auto storePartial = [&] {
      Value partialRow = k.add(
          k.mul(k.add(k.mul(k.add(k.mul(splitIndex, batchSize), batch), Hq),
                      row.head),
                seqQ),
          row.position);
      storeRow(gPartialOut, k.mul(partialRow, Dv));
      Value lse = k.fselect(empty, negInf, k.fmul(k.fadd(m, k.log2(l)), kLn2));
      k.ifThen(k.andb(row.valid, k.cmp(CmpIPredicate::eq, lane, 0)),
               [&] { k.store(lse, gPartialLse, partialRow); });
    };
    k.ifThenElse(work.singleSplit, storeOutput, storePartial);
  }
  return func;
}
