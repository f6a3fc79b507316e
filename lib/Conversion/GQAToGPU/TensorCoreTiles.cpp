//===- TensorCoreTiles.cpp - The tile ops on mma.sync tensor cores --------===//
//
// The sm_80-class target of convert-gqa-tiles-to-gpu, for f16/bf16 tiles
// (FlashAttention-2's register layout):
//
//   32 * warps threads; warp w owns the packed rows [16w, 16w + 16) of the
//   block, lane l the rows 16w + l / 4 and 16w + l / 4 + 8 and, in each n8
//   tile of a row, the columns 2 (l % 4) and 2 (l % 4) + 1 (the mma C
//   layout). Shared memory (one extern array): Q [BM x D] | K [BN x D] |
//   V [BN x Dv], 16-byte chunks XOR-swizzled: (row, col) at
//   row * W + ((col / 8) ^ (row % 8)) * 8 + col % 8.
//
//   load_query_tile, load_kv_tile   cp.async of the rows (zero-filled past
//                                   their end) into their buffer
//   scores                          ldmatrix + mma.sync m16n8k16 (Q from
//                                   registers when the schedule keeps it)
//   mask_scores                     a select per element, from each lane
//                                   row's visible keys (emitVisibleKeys)
//   online_softmax                  quad shuffles for the row maximum; the
//                                   row sums stay per lane until finalize
//   accumulate                      O = alpha O + P V, P reused from
//                                   registers as the A operand
//   finalize, store_*               quad-reduced sums, paired stores
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

//===----------------------------------------------------------------------===//
// cp.async tile loader
//===----------------------------------------------------------------------===//

/// The cp.async plan of one [rows x width] tile into swizzled shared memory:
/// the 16-byte chunks of the tile are dealt to the threads in order (thread
/// t copies chunks t, t + T, t + 2T, ...). Every per-thread value is built
/// at the kernel's entry, so that copies issued inside loops and branches
/// only add immediates to it.
class TileLoader {
public:
  TileLoader(KernelBuilder &k, Value tid, Value tid32, int64_t threads,
             int64_t rows, int64_t width)
      : k(k) {
    int64_t chunksPerRow = width / 8;
    int64_t iterations = rows * chunksPerRow / threads;
    if (threads % chunksPerRow == 0) {
      // Each thread keeps its chunk and steps down `rowsPerPass` rows per
      // copy; only (row + step) % 8 changes the swizzle, so at most 8
      // shared-memory bases exist (2 for the usual shapes).
      int64_t rowsPerPass = threads / chunksPerRow;
      Value row = k.divu(tid, chunksPerRow);
      Value chunk8 = k.mul(k.remu(tid, chunksPerRow), 8);
      Value row32 = k.divu(tid32, chunksPerRow);
      Value chunk8x32 = k.mul(k.remu(tid32, chunksPerRow), 8);
      llvm::DenseMap<int64_t, Value> bases;
      for (int64_t it = 0; it < iterations; ++it) {
        int64_t step = it * rowsPerPass;
        Value &base = bases[step % 8];
        if (!base) {
          Value swizzle = k.mul(k.andi(k.add(row32, step % 8), 7), 8);
          base = k.add(k.mul(row32, width), k.xori(chunk8x32, swizzle));
        }
        copies.push_back({row, step, chunk8, base, step * width});
      }
      return;
    }
    // Otherwise each copy has its own row and chunk (e.g. D = 192: 24
    // chunks per row do not divide 128 threads).
    for (int64_t it = 0; it < iterations; ++it) {
      Value chunk = k.add(tid, it * threads);
      Value chunk32 = k.add(tid32, it * threads);
      Value row = k.divu(chunk, chunksPerRow);
      Value row32 = k.divu(chunk32, chunksPerRow);
      Value column32 = k.remu(chunk32, chunksPerRow);
      Value swizzled = k.xori(column32, k.andi(row32, 7));
      Value offset = k.add(k.mul(row32, width), k.mul(swizzled, 8));
      copies.push_back(
          {row, 0, k.mul(k.remu(chunk, chunksPerRow), 8), offset, 0});
    }
  }

  /// Issues the copies of one tile from `global` to `shared`. `rowSource`
  /// maps a tile row (index) to the global element offset of the row's
  /// first element and the number of elements to read from it (index: 8, or
  /// 0 to zero-fill a row out of range).
  void issue(Value global, Value shared,
             function_ref<std::pair<Value, Value>(Value)> rowSource) {
    for (const Copy &copy : copies) {
      auto [rowOffset, elements] = rowSource(k.add(copy.row, copy.rowStep));
      k.copyAsync16(global, k.add(rowOffset, copy.chunk8), shared,
                    k.add(copy.sharedBase, copy.sharedStep), elements);
    }
  }

private:
  struct Copy {
    Value row;
    int64_t rowStep;
    Value chunk8;
    Value sharedBase;
    int64_t sharedStep;
  };
  KernelBuilder &k;
  SmallVector<Copy> copies;
};

//===----------------------------------------------------------------------===//
// ldmatrix lane offsets
//===----------------------------------------------------------------------===//

/// Per-lane shared-memory offsets (i32) of ldmatrix.x4 with the swizzle
/// folded in. Lane l addresses row `rowOfLane` of a 16-row block and chunk
/// 2s + `chunkBit` at k-step s. The block starts at a multiple of 8 rows, so
/// row % 8 == l % 8 and (2s + bit) ^ (l % 8) == (2s & ~7) + ((2s & 7) ^ bit ^
/// (l % 8)): at most 4 per-lane bases, every step adds an immediate.
class FragmentOffsets {
public:
  FragmentOffsets(KernelBuilder &k, Value lane32, int64_t width,
                  Value rowOfLane, Value chunkBit, int64_t steps)
      : k(k) {
    Value lane8 = k.andi(lane32, 7);
    Value chunk8 = k.mul(k.xori(chunkBit, lane8), 8);
    Value rowBase = k.mul(rowOfLane, width);
    for (int64_t s = 0; s < steps; ++s) {
      int64_t low = (2 * s) & 7;
      Value &base = bases[low];
      if (!base)
        base = k.add(rowBase, k.xori(chunk8, low * 8));
    }
  }

  /// The offset of k-step `s`.
  Value operator()(int64_t s) {
    return k.add(bases.lookup((2 * s) & 7), ((2 * s) & ~int64_t(7)) * 8);
  }

private:
  KernelBuilder &k;
  llvm::DenseMap<int64_t, Value> bases;
};

/// Pairwise reduction of `values` with `combine`.
Value tree(ArrayRef<Value> values, function_ref<Value(Value, Value)> combine) {
  SmallVector<Value> level(values.begin(), values.end());
  while (level.size() > 1) {
    SmallVector<Value> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2)
      next.push_back(combine(level[i], level[i + 1]));
    if (level.size() % 2)
      next.push_back(level.back());
    level = std::move(next);
  }
  return level.front();
}

class TensorCoreTarget final : public RowTileTarget {
public:
  explicit TensorCoreTarget(ScheduleAttr schedule) : RowTileTarget(schedule) {}

  LogicalResult prepare(BlockLowering &block, Operation *body) override {
    KernelBuilder &k = block.k;
    FailureOr<BlockTiles> tiles = readBlockTiles(body);
    if (failed(tiles))
      return failure();
    elementType = tiles->elementType;
    int64_t T = threads();
    if (BM != 16 * schedule.getWarps() || BN % 16 || D % 16 || Dv % 16 ||
        (BM * D / 8) % T || (BN * D / 8) % T || (BN * Dv / 8) % T)
      return body->emitOpError()
             << "has tiles (" << BM << " rows, " << BN << " keys, head dims "
             << D << " and " << Dv << ") that " << schedule.getWarps()
             << " warps of mma.sync m16n8k16 cannot split evenly";
    k.setElementType(elementType);

    int64_t bytes = 2;
    int64_t offsetK = BM * D * bytes, offsetV = offsetK + BN * D * bytes;
    sharedBytes = offsetV + BN * Dv * bytes;
    SmallVector<Value> views =
        k.sharedViews(sharedBytes, {{0, BM * D, elementType},
                                    {offsetK, BN * D, elementType},
                                    {offsetV, BN * Dv, elementType}});
    sQ = views[0];
    sK = views[1];
    sV = views[2];

    Value tid = k.threadId();
    warp = k.divu(tid, 32);
    Value lane = k.remu(tid, 32);
    groupId = k.divu(lane, 4);
    threadInGroup = k.remu(lane, 4);
    for (int64_t h = 0; h < 2; ++h)
      heldRows.push_back(k.add(k.mul(warp, 16), k.add(groupId, 8 * h)));
    Value tid32 = k.cast(tid, k.b.getI32Type());
    loadQ.emplace(k, tid, tid32, T, BM, D);
    loadK.emplace(k, tid, tid32, T, BN, D);
    loadV.emplace(k, tid, tid32, T, BN, Dv);
    Value lane32 = k.remu(tid32, 32);
    Value warp32 = k.divu(tid32, 32);
    Value lane16 = k.remu(lane32, 16);
    Value half16 = k.divu(lane32, 16);
    Value quarter8 = k.remu(k.divu(lane32, 8), 2);
    fragQ.emplace(k, lane32, D, k.add(k.mul(warp32, 16), lane16), half16,
                  D / 16);
    fragK.emplace(k, lane32, D, k.add(k.mul(half16, 8), k.remu(lane32, 8)),
                  quarter8, D / 16);
    fragV.emplace(k, lane32, Dv, lane16, half16, Dv / 16);
    return success();
  }

  void beforeLoop(BlockLowering &block, Value query) override {
    if (!schedule.getQInRegisters() || !queryRegisters.empty())
      return;
    block.beforeRead(SharedBuffer::Query);
    for (int64_t kk = 0; kk < D / 16; ++kk)
      queryRegisters.push_back(block.k.loadMatrixX4(sQ, (*fragQ)(kk), false));
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
    auto source = [&](Value row) -> std::pair<Value, Value> {
      PackedRow packed =
          emitPackedRow(k, k.add(firstRow, row), packedRows, kvHead, g);
      SmallVector<Value, 4> at =
          dims.order(batch, packed.head, packed.position, Value());
      at.resize(3);
      // A row past the end reads 0 bytes of the last row.
      return {query.offset(k, at),
              k.select(packed.valid, 8, 0, k.b.getIndexType())};
    };
    block.beforeWrite(SharedBuffer::Query, /*asynchronous=*/true);
    loadQ->issue(query.flat, sQ, source);
    k.commitGroup();
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
    auto rowSource = [&](Value row) -> std::pair<Value, Value> {
      Value key = k.add(firstKey, row);
      Value valid = k.cmp(CmpIPredicate::slt, key, kvLen);
      // Rows past the end read 0 bytes from a clamped, valid address.
      Value clamped = k.maxs(k.mins(key, lastKey), 0);
      return {emitKVRowOffset(block, op, clamped),
              k.select(valid, 8, 0, key.getType())};
    };
    bool isKey = buffer == SharedBuffer::Key;
    block.beforeWrite(buffer, /*asynchronous=*/true);
    (isKey ? *loadK : *loadV).issue(source.flat, isKey ? sK : sV, rowSource);
    k.commitGroup();
    Fragment tile;
    tile.buffer = buffer;
    return tile;
  }

  FailureOr<Fragment> scores(BlockLowering &block, ScoresOp op) override {
    KernelBuilder &k = block.k;
    const int64_t NT = BN / 8;
    SmallVector<SmallVector<Value, 4>> S(NT,
                                         SmallVector<Value, 4>(4, k.f32(0.0)));
    bool fromRegisters = !queryRegisters.empty();
    if (!fromRegisters)
      block.beforeRead(SharedBuffer::Query);
    block.beforeRead(SharedBuffer::Key);
    for (int64_t kk = 0; kk < D / 16; ++kk) {
      SmallVector<Value, 4> a = fromRegisters
                                    ? queryRegisters[kk]
                                    : k.loadMatrixX4(sQ, (*fragQ)(kk), false);
      for (int64_t np = 0; np < BN / 16; ++np) {
        SmallVector<Value, 4> kb =
            k.loadMatrixX4(sK, k.add((*fragK)(kk), np * 16 * D), false);
        S[2 * np] = k.mma(a, ArrayRef<Value>(kb).take_front(2), S[2 * np]);
        S[2 * np + 1] =
            k.mma(a, ArrayRef<Value>(kb).drop_front(2), S[2 * np + 1]);
      }
    }
    Fragment scores;
    for (auto &t : S)
      scores.values.append(t.begin(), t.end());
    // log2(e) cap(scale s): with a softcap c, c log2(e) tanh(s scale / c).
    double scale = op.getScale().convertToDouble();
    if (std::optional<APFloat> softcap = op.getSoftcap()) {
      double cap = softcap->convertToDouble();
      for (Value &s : scores.values)
        s = k.tanh(k.fmul(s, scale / cap));
      scores.scale = cap * kLog2E;
    } else {
      scores.scale = scale * kLog2E;
    }
    return scores;
  }

  FailureOr<Fragment> mask(BlockLowering &block, MaskScoresOp op) override {
    KernelBuilder &k = block.k;
    Type i32 = k.b.getI32Type();
    Fragment masked = block.fragment(op.getScores());
    Value firstRow = block.scalar(op.getFirstRow()),
          firstKey = block.scalar(op.getFirstKey()),
          offset = block.scalar(op.getOffset()),
          kvLen = block.scalar(op.getKvLen());
    MaskAttr mask = op.getMask();
    int64_t g = op.getGroupSize();
    // The visible keys [begin, end) of this lane's rows, in i32, computed
    // once per block; a mask without a left window begins at key 0.
    bool hasBegin = mask.getWindowLeft() >= 0;
    auto visible = [&](int64_t h, bool end) {
      return block.hoisted({firstRow, offset, kvLen},
                           llvm::hash_combine(llvm::StringRef("visible"), h,
                                              end, firstRow, offset, kvLen),
                           [&] {
                             Value row = k.add(firstRow, heldRows[h]);
                             KeyRange keys = emitVisibleKeys(
                                 k.b, mask, k.divu(row, g), offset, kvLen);
                             return k.cast(end ? keys.end : keys.begin, i32);
                           });
    };
    // Column of element (nt = 0, e = 0) of this lane.
    Value column = k.cast(k.add(firstKey, k.mul(threadInGroup, 2)), i32);
    for (int64_t h = 0; h < 2; ++h) {
      // Element c = 8 nt + e is visible iff begin <= column + c < end.
      Value last = k.sub(k.sub(visible(h, true), column), 1);
      Value first = hasBegin ? k.sub(visible(h, false), column) : Value();
      for (int64_t nt = 0; nt < BN / 8; ++nt) {
        for (int64_t e = 0; e < 2; ++e) {
          int64_t c = 8 * nt + e;
          Value seen = k.cmp(CmpIPredicate::sle, k.i32(c), last);
          if (first)
            seen = k.andb(seen, k.cmp(CmpIPredicate::sge, k.i32(c), first));
          Value &s = masked.values[4 * nt + 2 * h + e];
          s = k.fselect(seen, s, -INFINITY);
        }
      }
    }
    return masked;
  }

  FailureOr<SmallVector<Fragment>> onlineSoftmax(BlockLowering &block,
                                                 OnlineSoftmaxOp op) override {
    KernelBuilder &k = block.k;
    const int64_t NT = BN / 8;
    const Fragment &S = block.fragment(op.getScores());
    const Fragment &m = block.fragment(op.getMax());
    const Fragment &l = block.fragment(op.getSum());
    Fragment P, newMax, newSum, rescale;
    P.values.resize(NT * 4);
    newSum.partialRows = true;
    Value scale2 = k.f32(S.scale);
    // A row's values are spread over the 4 lanes of a quad.
    for (int64_t h = 0; h < 2; ++h) {
      SmallVector<Value> row;
      for (int64_t nt = 0; nt < NT; ++nt)
        for (int64_t e = 0; e < 2; ++e)
          row.push_back(S.values[4 * nt + 2 * h + e]);
      Value rowMax = tree(row, [&](Value x, Value y) { return k.fmax(x, y); });
      rowMax = k.fmax(rowMax, k.shuffleXor(rowMax, 1));
      rowMax = k.fmax(rowMax, k.shuffleXor(rowMax, 2));
      SoftmaxRow step = emitSoftmaxRow(k, m.values[h], rowMax, S.scale);
      Value alpha = step.rescale, negM = step.negShift, mNew = step.newMax;
      SmallVector<Value> ps;
      for (int64_t nt = 0; nt < NT; ++nt) {
        for (int64_t e = 0; e < 2; ++e) {
          int64_t at = 4 * nt + 2 * h + e;
          Value p = k.exp2(k.fma(S.values[at], scale2, negM));
          P.values[at] = p;
          ps.push_back(p);
        }
      }
      newSum.values.push_back(
          k.fma(l.values[h], alpha,
                tree(ps, [&](Value x, Value y) { return k.fadd(x, y); })));
      newMax.values.push_back(mNew);
      rescale.values.push_back(alpha);
    }
    return SmallVector<Fragment>{P, newMax, newSum, rescale};
  }

  FailureOr<Fragment> accumulate(BlockLowering &block,
                                 AccumulateOp op) override {
    KernelBuilder &k = block.k;
    const Fragment &P = block.fragment(op.getProbabilities());
    const Fragment &alpha = block.fragment(op.getRescale());
    const int64_t NDT = Dv / 8;
    SmallVector<SmallVector<Value, 4>> O(NDT);
    const Fragment &acc = block.fragment(op.getAccumulator());
    for (int64_t d = 0; d < NDT; ++d)
      for (int64_t i = 0; i < 4; ++i)
        O[d].push_back(k.fmul(acc.values[4 * d + i], alpha.values[i / 2]));
    // P, in the C layout of two n8 tiles, is the A operand of the k16 step
    // (no shuffle, no shared memory).
    block.beforeRead(SharedBuffer::Value);
    for (int64_t kk = 0; kk < BN / 16; ++kk) {
      ArrayRef<Value> p = P.values;
      SmallVector<Value, 4> pa = {k.pack(p[8 * kk], p[8 * kk + 1]),
                                  k.pack(p[8 * kk + 2], p[8 * kk + 3]),
                                  k.pack(p[8 * kk + 4], p[8 * kk + 5]),
                                  k.pack(p[8 * kk + 6], p[8 * kk + 7])};
      for (int64_t dp = 0; dp < Dv / 16; ++dp) {
        SmallVector<Value, 4> vb =
            k.loadMatrixX4(sV, k.add((*fragV)(dp), kk * 16 * Dv), true);
        O[2 * dp] = k.mma(pa, ArrayRef<Value>(vb).take_front(2), O[2 * dp]);
        O[2 * dp + 1] =
            k.mma(pa, ArrayRef<Value>(vb).drop_front(2), O[2 * dp + 1]);
      }
    }
    Fragment result;
    for (auto &t : O)
      result.values.append(t.begin(), t.end());
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
    Fragment output, lse;
    output.values.resize(acc.values.size());
    for (int64_t h = 0; h < 2; ++h) {
      Value total = l.values[h];
      if (l.partialRows) {
        total = k.fadd(total, k.shuffleXor(total, 1));
        total = k.fadd(total, k.shuffleXor(total, 2));
      }
      FinalRow row = emitFinalRow(k, total, m.values[h],
                                  sinks ? sinks->values[h] : Value());
      Value inverse = row.factor;
      for (size_t d = 0; d < acc.values.size() / 4; ++d)
        for (int64_t e = 0; e < 2; ++e)
          output.values[4 * d + 2 * h + e] =
              k.fmul(acc.values[4 * d + 2 * h + e], inverse);
      lse.values.push_back(row.lse);
    }
    return SmallVector<Fragment>{output, lse};
  }

  /// Stores the lane's two columns of each n8 tile of row h of `tile` at
  /// `base` (the row's element 0) when `valid`.
  void storeRow(KernelBuilder &k, const Fragment &tile, int64_t h,
                const KernelTensor &to, Value base, Value valid) override {
    Value at = k.add(base, k.mul(threadInGroup, 2));
    k.ifThen(valid, [&] {
      for (size_t d = 0; d < tile.values.size() / 4; ++d)
        k.storePair(to.flat, k.add(at, d * 8), tile.values[4 * d + 2 * h],
                    tile.values[4 * d + 2 * h + 1]);
    });
  }

  Value leadsRow(KernelBuilder &k) override {
    return k.cmp(CmpIPredicate::eq, threadInGroup, 0);
  }

  FailureOr<Fragment> splat(BlockLowering &block, RankedTensorType type,
                            Value value) override {
    Fragment tile;
    int64_t count = type.getRank() == 1 ? 2 : type.getDimSize(1) / 8 * 4;
    tile.values.assign(count, value);
    return tile;
  }

private:
  Type elementType;
  Value sQ, sK, sV;
  Value warp, groupId, threadInGroup;
  std::optional<TileLoader> loadQ, loadK, loadV;
  std::optional<FragmentOffsets> fragQ, fragK, fragV;
  /// The Q tile's mma A operands, once the schedule has moved it into
  /// registers.
  SmallVector<SmallVector<Value, 4>> queryRegisters;
};

} // namespace

std::unique_ptr<TileTarget>
mlir::gqa::gpu_kernel::createTensorCoreTarget(ScheduleAttr schedule) {
  return std::make_unique<TensorCoreTarget>(schedule);
}
