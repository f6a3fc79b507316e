//===- SIMTTiles.cpp - The tile ops on the CUDA cores (f32) ---------------===//
//
// The target of convert-gqa-tiles-to-gpu for f32 tiles, which have no
// mma.sync path:
//
//   32 * warps threads; warp w owns the block rows [w R, (w + 1) R), R =
//   block_m / warps; a KV tile has 32 keys, one per lane. A row's scores,
//   probabilities, maximum and sum are one value per lane (the lane's key;
//   the sum a partial over the lane's keys), an accumulator row the lane's
//   columns lane + 32 t. Shared memory (one extern array): Q [BM x D] |
//   K [32 x (D + 1)] (padded: conflict-free column reads; copied a row per
//   warp so that the copy is conflict-free too) | V [32 x Dv].
//
//   load_query_tile, load_kv_tile   every thread copies its share (zero past
//                                   the rows' end)
//   scores                          q . k[lane] over the head dim
//   mask_scores                     a select per lane, from each row's
//                                   visible keys (emitVisibleKeys)
//   online_softmax                  warp shuffles for the row maximum
//   accumulate                      O[c] = alpha O[c] + sum_j p_j V[j][c],
//                                   p_j broadcast from lane j by shuffles
//   finalize, store_*               warp-reduced sums, one store per column
//
//===----------------------------------------------------------------------===//

#include "TileLowering.h"
#include "gqa/Dialect/GQA/Utils/MaskUtils.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

using arith::CmpFPredicate;
using arith::CmpIPredicate;

namespace {

class SIMTTarget final : public RowTileTarget {
public:
  explicit SIMTTarget(ScheduleAttr schedule) : RowTileTarget(schedule) {}

  LogicalResult prepare(BlockLowering &block, Operation *body) override {
    KernelBuilder &k = block.k;
    FailureOr<BlockTiles> tiles = readBlockTiles(body);
    if (failed(tiles))
      return failure();
    int64_t warps = schedule.getWarps();
    if (BN != 32 || BM % warps)
      return body->emitOpError()
             << "has tiles of " << BM << " rows and " << BN
             << " keys; the CUDA-core kernel takes 32 keys (one per lane) "
                "and rows that "
             << warps << " warps share evenly";
    rowsPerWarp = BM / warps;
    k.setElementType(k.b.getF32Type());
    Type f32 = k.b.getF32Type();
    int64_t offsetK = BM * D * 4, offsetV = offsetK + BN * (D + 1) * 4;
    sharedBytes = offsetV + BN * Dv * 4;
    SmallVector<Value> views =
        k.sharedViews(sharedBytes, {{0, BM * D, f32},
                                    {offsetK, BN * (D + 1), f32},
                                    {offsetV, BN * Dv, f32}});
    sQ = views[0];
    sK = views[1];
    sV = views[2];
    tid = k.threadId();
    warp = k.divu(tid, 32);
    lane = k.remu(tid, 32);
    for (int64_t rr = 0; rr < rowsPerWarp; ++rr)
      heldRows.push_back(k.add(k.mul(warp, rowsPerWarp), rr));
    for (int64_t t = 0; t < columnSteps(Dv); ++t) {
      Value column = k.add(lane, 32 * t);
      columns.push_back(column);
      validColumns.push_back(k.cmp(CmpIPredicate::slt, column, Dv));
      // A clamped column is read but never stored.
      readColumns.push_back(k.mins(column, Dv - 1));
    }
    return success();
  }

  FailureOr<Fragment> loadQuery(BlockLowering &block,
                                LoadQueryTileOp op) override {
    KernelBuilder &k = block.k;
    const KernelTensor &query = block.tensor(op.getQuery());
    LayoutDims dims = getLayoutDims(op.getLayout());
    int64_t g = op.getQHeads() / op.getKvHeads();
    Value batch = block.scalar(op.getBatch()),
          kvHead = block.scalar(op.getKvHead()),
          firstRow = block.scalar(op.getFirstRow());
    Value packedRows = k.mul(query.sizes[dims.seq], g);
    block.beforeWrite(SharedBuffer::Query, /*asynchronous=*/false);
    // Element e = tid + T i of the tile; rows past the end read as 0.
    stridedLoop(k, BM * D, [&](Value e) {
      Value d = k.remu(e, D);
      PackedRow row = emitPackedRow(k, k.add(firstRow, k.divu(e, D)),
                                    packedRows, kvHead, g);
      SmallVector<Value, 4> at = dims.order(batch, row.head, row.position, d);
      Value x = k.load(query.flat, query.offset(k, at));
      k.store(k.fselect(row.valid, x, 0.0), sQ, e);
    });
    Fragment tile;
    tile.buffer = SharedBuffer::Query;
    return tile;
  }

  FailureOr<Fragment> loadKV(BlockLowering &block, LoadKVTileOp op,
                             SharedBuffer buffer) override {
    KernelBuilder &k = block.k;
    const KernelTensor &source = block.tensor(op.getSource());
    Value firstKey = block.scalar(op.getFirstKey()),
          kvLen = block.scalar(op.getKvLen());
    Value lastKey = k.sub(kvLen, 1);
    // The key of tile row j, clamped into [0, kv_len) (a row past the end
    // reads a valid key, then stores 0), and whether it exists.
    auto keyOf = [&](Value j) {
      Value key = k.add(firstKey, j);
      return std::pair(k.maxs(k.mins(key, lastKey), 0),
                       k.cmp(CmpIPredicate::slt, key, kvLen));
    };
    block.beforeWrite(buffer, /*asynchronous=*/false);
    if (buffer == SharedBuffer::Key) {
      // K rows are padded to D + 1 words, so a flat copy whose 32 elements
      // straddle two rows would store to one bank twice: each warp copies
      // whole rows instead, lane over d.
      k.forLoop(warp, k.index(BN), schedule.getWarps(), {},
                [&](Value j, ValueRange) -> SmallVector<Value> {
                  auto [key, valid] = keyOf(j);
                  Value row = emitKVRowOffset(block, op, key);
                  for (int64_t t = 0; t < columnSteps(D); ++t) {
                    Value d = k.add(lane, 32 * t);
                    auto copy = [&] {
                      Value x = k.load(source.flat, k.add(row, d));
                      k.store(k.fselect(valid, x, 0.0), sK,
                              k.add(k.mul(j, D + 1), d));
                    };
                    if (32 * (t + 1) > D)
                      k.ifThen(k.cmp(CmpIPredicate::slt, d, D), copy);
                    else
                      copy();
                  }
                  return {};
                });
    } else {
      // The V tile, flat (unpadded): element e = j * Dv + d.
      stridedLoop(k, BN * Dv, [&](Value e) {
        auto [key, valid] = keyOf(k.divu(e, Dv));
        Value x = k.load(source.flat,
                         k.add(emitKVRowOffset(block, op, key), k.remu(e, Dv)));
        k.store(k.fselect(valid, x, 0.0), sV, e);
      });
    }
    Fragment tile;
    tile.buffer = buffer;
    return tile;
  }

  FailureOr<Fragment> scores(BlockLowering &block, ScoresOp op) override {
    KernelBuilder &k = block.k;
    block.beforeRead(SharedBuffer::Query);
    block.beforeRead(SharedBuffer::Key);
    Value keyRow = k.mul(lane, D + 1);
    Fragment scores;
    double scale = op.getScale().convertToDouble();
    std::optional<APFloat> softcap = op.getSoftcap();
    for (Value local : heldRows) {
      // s = q . k[lane], over D.
      Value queryRow = k.mul(local, D);
      Value s = k.forLoop(k.index(0), k.index(D), 1, {k.f32(0.0)},
                          [&](Value d, ValueRange acc) -> SmallVector<Value> {
                            Value q = k.load(sQ, k.add(queryRow, d));
                            Value kd = k.load(sK, k.add(keyRow, d));
                            return {k.fma(q, kd, acc[0])};
                          })[0];
      if (softcap)
        s = k.tanh(k.fmul(s, scale / softcap->convertToDouble()));
      scores.values.push_back(s);
    }
    scores.scale = (softcap ? softcap->convertToDouble() : scale) * kLog2E;
    return scores;
  }

  FailureOr<Fragment> mask(BlockLowering &block, MaskScoresOp op) override {
    KernelBuilder &k = block.k;
    Fragment masked = block.fragment(op.getScores());
    Value firstRow = block.scalar(op.getFirstRow()),
          firstKey = block.scalar(op.getFirstKey()),
          offset = block.scalar(op.getOffset()),
          kvLen = block.scalar(op.getKvLen());
    MaskAttr mask = op.getMask();
    int64_t g = op.getGroupSize();
    bool hasBegin = mask.getWindowLeft() >= 0;
    Value key = k.add(firstKey, lane);
    for (auto [rr, local] : llvm::enumerate(heldRows)) {
      // The row's visible keys [begin, end), once per block.
      auto visible = [&, local = local](bool end) {
        return block.hoisted({firstRow, offset, kvLen},
                             llvm::hash_combine(llvm::StringRef("visible"), rr,
                                                end, firstRow, offset, kvLen),
                             [&] {
                               Value row = k.add(firstRow, local);
                               KeyRange keys = emitVisibleKeys(
                                   k.b, mask, k.divu(row, g), offset, kvLen);
                               return end ? keys.end : keys.begin;
                             });
      };
      Value seen = k.cmp(CmpIPredicate::slt, key, visible(true));
      if (hasBegin)
        seen = k.andb(seen, k.cmp(CmpIPredicate::sge, key, visible(false)));
      masked.values[rr] = k.fselect(seen, masked.values[rr], -INFINITY);
    }
    return masked;
  }

  FailureOr<SmallVector<Fragment>> onlineSoftmax(BlockLowering &block,
                                                 OnlineSoftmaxOp op) override {
    KernelBuilder &k = block.k;
    const Fragment &S = block.fragment(op.getScores());
    const Fragment &m = block.fragment(op.getMax());
    const Fragment &l = block.fragment(op.getSum());
    Fragment P, newMax, newSum, rescale;
    newSum.partialRows = true;
    Value scale2 = k.f32(S.scale);
    for (int64_t rr = 0; rr < rowsPerWarp; ++rr) {
      Value s = S.values[rr];
      Value rowMax = s;
      for (int64_t width = 16; width >= 1; width /= 2)
        rowMax = k.fmax(rowMax, k.shuffleXor(rowMax, width));
      SoftmaxRow step = emitSoftmaxRow(k, m.values[rr], rowMax, S.scale);
      Value alpha = step.rescale, mNew = step.newMax;
      Value p = k.exp2(k.fma(s, scale2, step.negShift));
      P.values.push_back(p);
      newMax.values.push_back(mNew);
      newSum.values.push_back(k.fma(l.values[rr], alpha, p));
      rescale.values.push_back(alpha);
    }
    return SmallVector<Fragment>{P, newMax, newSum, rescale};
  }

  FailureOr<Fragment> accumulate(BlockLowering &block,
                                 AccumulateOp op) override {
    KernelBuilder &k = block.k;
    const Fragment &P = block.fragment(op.getProbabilities());
    const Fragment &alpha = block.fragment(op.getRescale());
    const Fragment &acc = block.fragment(op.getAccumulator());
    int64_t steps = columnSteps(Dv);
    block.beforeRead(SharedBuffer::Value);
    Fragment result;
    for (int64_t rr = 0; rr < rowsPerWarp; ++rr) {
      SmallVector<Value> o;
      for (int64_t t = 0; t < steps; ++t)
        o.push_back(k.fmul(acc.values[rr * steps + t], alpha.values[rr]));
      // O[c] += sum_j p_j V[j][c], p_j from lane j.
      o = k.forLoop(
          k.index(0), k.index(BN), 1, o,
          [&](Value j, ValueRange sums) -> SmallVector<Value> {
            Value pj = k.shuffleIdx(P.values[rr], k.cast(j, k.b.getI32Type()));
            Value vRow = k.mul(j, Dv);
            SmallVector<Value> updated;
            for (int64_t t = 0; t < steps; ++t)
              updated.push_back(
                  k.fma(pj, k.load(sV, k.add(vRow, readColumns[t])), sums[t]));
            return updated;
          });
      result.values.append(o.begin(), o.end());
    }
    return result;
  }

  FailureOr<SmallVector<Fragment>> finalize(BlockLowering &block,
                                            FinalizeOp op) override {
    KernelBuilder &k = block.k;
    const Fragment &acc = block.fragment(op.getAccumulator());
    const Fragment &m = block.fragment(op.getMax());
    const Fragment &l = block.fragment(op.getSum());
    const Fragment *sinks =
        op.getSinks() ? &block.fragment(op.getSinks()) : nullptr;
    int64_t steps = acc.values.size() / rowsPerWarp;
    Fragment output, lse;
    for (int64_t rr = 0; rr < rowsPerWarp; ++rr) {
      Value total = l.values[rr];
      if (l.partialRows)
        for (int64_t width = 16; width >= 1; width /= 2)
          total = k.fadd(total, k.shuffleXor(total, width));
      FinalRow row = emitFinalRow(k, total, m.values[rr],
                                  sinks ? sinks->values[rr] : Value());
      Value inverse = row.factor;
      for (int64_t t = 0; t < steps; ++t)
        output.values.push_back(k.fmul(acc.values[rr * steps + t], inverse));
      lse.values.push_back(row.lse);
    }
    return SmallVector<Fragment>{output, lse};
  }

  /// Stores the lane's columns of row rr of `tile` at `base` (the row's
  /// element 0) when `valid`.
  void storeRow(KernelBuilder &k, const Fragment &tile, int64_t rr,
                const KernelTensor &to, Value base, Value valid) override {
    int64_t steps = tile.values.size() / rowsPerWarp;
    for (int64_t t = 0; t < steps; ++t) {
      Value store = valid;
      if (32 * (t + 1) > Dv)
        store = k.andb(store, validColumns[t]);
      k.ifThen(store, [&] {
        k.store(tile.values[rr * steps + t], to.flat, k.add(base, columns[t]));
      });
    }
  }

  Value leadsRow(KernelBuilder &k) override {
    return k.cmp(CmpIPredicate::eq, lane, 0);
  }

  FailureOr<Fragment> splat(BlockLowering &block, RankedTensorType type,
                            Value value) override {
    Fragment tile;
    int64_t perRow = type.getRank() == 1 ? 1 : columnSteps(type.getDimSize(1));
    tile.values.assign(rowsPerWarp * perRow, value);
    return tile;
  }

private:
  /// Columns lane + 32 t, t < columnSteps(width), cover a row.
  static int64_t columnSteps(int64_t width) { return (width + 31) / 32; }

  /// Copies `count` elements with every thread: element e = tid + T i.
  void stridedLoop(KernelBuilder &k, int64_t count,
                   function_ref<void(Value)> body) {
    k.forLoop(tid, k.index(count), threads(), {},
              [&](Value e, ValueRange) -> SmallVector<Value> {
                body(e);
                return {};
              });
  }

  int64_t rowsPerWarp = 0;
  Value sQ, sK, sV;
  Value tid, warp, lane;
  /// The lane's output columns, whether each exists, and the V column each
  /// reads (clamped into the row).
  SmallVector<Value> columns, validColumns, readColumns;
};

} // namespace

std::unique_ptr<TileTarget>
mlir::gqa::gpu_kernel::createSIMTTarget(ScheduleAttr schedule) {
  return std::make_unique<SIMTTarget>(schedule);
}
