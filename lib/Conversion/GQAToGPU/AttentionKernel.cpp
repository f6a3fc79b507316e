//===- AttentionKernel.cpp - The FlashAttention-2 GQA kernel --------------===//
//
// Builds the attention kernel (the `main` kernel, or the `split` kernel of
// split-KV) as a gpu.func. It is the C++ port of the prototype's
// gqa_kernels.py `build_fwd`, one builder call per op:
//
//   grid (ceil(Sq*g / BM), Hkv [* num_splits], B), 32 * warps threads.
//   Packed row r of a (batch b, KV head kvh) is query position r / g of
//   query head kvh * g + r % g. Warp w owns rows [16w, 16w + 16).
//   Shared memory (one extern array): Q [BM x D] | K [BN x D] | V [BN x Dv],
//   16-byte chunks XOR-swizzled: (row, col) at
//   row * W + ((col / 8) ^ (row % 8)) * 8 + col % 8.
//
//   prologue: cp.async Q; commit; if (lo < hi) { cp.async K(lo); commit }
//             [Q in registers: wait; barrier; ldmatrix Q once]
//   for n in [lo, hi):          O, m, l as iter_args (registers)
//     wait; barrier             K(n) landed; all warps done with V(n-1)
//     cp.async V(n); commit     overlaps S = Q K^T
//     S = Q K(n)^T              ldmatrix + mma.sync m16n8k16
//     wait; barrier             V(n) landed; all warps done with K(n)
//     if (n+1 < hi) { cp.async K(n+1); commit }   overlaps the rest
//     [softcap: S = tanh(S * scale / c)]
//     if (boundary tile) S = mask(S)              CTA-uniform branch
//     online softmax (base 2, quad shuffles); O = alpha O + P V(n)
//   epilogue: O / l (0 for rows that saw no key), store rows < Sq * g
//
// The tile range [lo, hi) of a CTA, the boundary test and the element-wise
// test all come from emitVisibleKeys (gqa/Dialect/GQA/Utils/MaskUtils.h), the
// mask arithmetic the CPU lowering uses too.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "gqa/Dialect/GQA/Utils/MaskUtils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Matchers.h"

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
/// at function level, so that copies issued inside loops and branches only
/// add immediates to it.
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

/// The element offset of row (b, head, position) of a [B, S, H, W] (bshd) or
/// [B, H, S, W] (bhsd) tensor.
Value rowOffset(KernelBuilder &k, Layout layout, Value batch, Value head,
                Value position, Value seq, int64_t heads, int64_t width) {
  if (layout == Layout::BSHD)
    return k.mul(k.add(k.mul(k.add(k.mul(batch, seq), position), heads), head),
                 width);
  return k.mul(k.add(k.mul(k.add(k.mul(batch, heads), head), seq), position),
               width);
}

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

} // namespace

gpu::GPUFuncOp mlir::gqa::gpu_kernel::buildAttentionKernel(
    OpBuilder &builder, Location loc, const KernelSpec &spec, KernelRole role) {
  const bool split = role == KernelRole::Split;
  const GPUTileConfig &tile = spec.tile;
  const int64_t D = spec.headDim, Dv = spec.headDimV;
  const int64_t BM = tile.blockM, BN = tile.blockN, T = tile.threads();
  const int64_t g = spec.groupSize(), Hq = spec.qHeads;
  const int64_t NT = BN / 8;  // n8 tiles of S
  const int64_t NDT = Dv / 8; // n8 tiles of O
  Type elementType = spec.elementType, f32 = builder.getF32Type(),
       i32 = builder.getI32Type(), indexType = builder.getIndexType();

  auto func =
      createAttentionKernelFunc(builder, loc, spec, role, elementType, T);
  ImplicitLocOpBuilder b(loc, builder);
  b.setInsertionPoint(func.getBody().front().getTerminator());
  KernelBuilder k(b, func);
  k.setElementType(elementType);
  AttentionKernelParams params = k.attentionParams(spec, role);
  Value batchSize = params.batchSize, seqQ = params.seqQ, gQ = params.q,
        gK = params.k, gV = params.v, gOut = params.out,
        gPartialOut = params.partialOut, gPartialLse = params.partialLse;

  // Shared memory: Q | K | V.
  int64_t bytes = 2;
  int64_t offsetK = BM * D * bytes, offsetV = offsetK + BN * D * bytes;
  int64_t sharedBytes = offsetV + BN * Dv * bytes;
  SmallVector<Value> shared =
      k.sharedViews(sharedBytes, {{0, BM * D, elementType},
                                  {offsetK, BN * D, elementType},
                                  {offsetV, BN * Dv, elementType}});
  Value sQ = shared[0], sK = shared[1], sV = shared[2];
  func->setAttr(kDynamicSharedMemoryAttr,
                builder.getI64IntegerAttr(sharedBytes));

  //===--------------------------------------------------------------------===//
  // Threads, the CTA's rows and its KV tiles.
  //===--------------------------------------------------------------------===//
  Value tid = k.threadId();
  Value warp = k.divu(tid, 32);
  Value lane = k.remu(tid, 32);
  Value groupId = k.divu(lane, 4);       // mma rows gid and gid + 8
  Value threadInGroup = k.remu(lane, 4); // mma columns 2 tig, 2 tig + 1
  AttentionCTAWork work = k.attentionCTAWork(spec, role, params, BM, BN);
  Value batch = work.batch, kvHead = work.kvHead, splitIndex = work.splitIndex,
        packedRows = work.packedRows, firstRow = work.firstRow,
        kvLen = work.kvLen, offset = work.offset,
        tileBegin = work.block.tileBegin, tileEnd = work.block.tileEnd;
  MaskAttr mask = spec.mask;
  // Only a tile that some row of the CTA does not see whole is masked.
  Value fullBegin = work.block.fullBegin, fullEnd = work.block.fullEnd;

  // The visible keys of this lane's two rows (16 w + gid + 8 h), in i32
  // for the element-wise test of boundary tiles.
  SmallVector<Value, 2> rowEnd, rowBegin;
  for (int64_t h = 0; h < 2; ++h) {
    Value row = k.add(firstRow, k.add(k.mul(warp, 16), k.add(groupId, 8 * h)));
    KeyRange keys = emitVisibleKeys(b, mask, k.divu(row, g), offset, kvLen);
    rowEnd.push_back(k.cast(keys.end, i32));
    // A begin of constant 0 needs no test (no key is negative).
    if (!matchPattern(keys.begin, m_Zero()))
      rowBegin.push_back(k.cast(keys.begin, i32));
  }

  // Global rows of K and V.
  KVRows kvRows(k, spec, params, batch, kvHead);
  Value lastKey = k.sub(kvLen, 1);
  auto kvSource = [&](Value firstKey, bool ofValue) {
    return [&, firstKey, ofValue](Value row) -> std::pair<Value, Value> {
      Value key = k.add(firstKey, row);
      Value valid = k.cmp(CmpIPredicate::slt, key, kvLen);
      // Rows past the end read 0 bytes from a clamped, valid address.
      Value clamped = k.maxs(k.mins(key, lastKey), 0);
      return {kvRows.offset(clamped, ofValue),
              k.select(valid, 8, 0, key.getType())};
    };
  };
  auto querySource = [&](Value row) -> std::pair<Value, Value> {
    Value packed = k.add(firstRow, row);
    Value valid = k.cmp(CmpIPredicate::slt, packed, packedRows);
    Value clamped = k.select(valid, packed, k.index(0));
    Value position = k.divu(clamped, g);
    Value head = k.add(k.mul(kvHead, g), k.remu(clamped, g));
    return {rowOffset(k, spec.layout, batch, head, position, seqQ, Hq, D),
            k.select(valid, 8, 0, indexType)};
  };

  // Per-thread cp.async and ldmatrix offsets (i32), all at function level.
  Value tid32 = k.cast(tid, i32);
  TileLoader loadQ(k, tid, tid32, T, BM, D);
  TileLoader loadK(k, tid, tid32, T, BN, D);
  TileLoader loadV(k, tid, tid32, T, BN, Dv);
  Value lane32 = k.remu(tid32, 32);
  Value warp32 = k.divu(tid32, 32);
  Value lane16 = k.remu(lane32, 16);
  Value half16 = k.divu(lane32, 16);
  Value quarter8 = k.remu(k.divu(lane32, 8), 2);
  FragmentOffsets fragQ(k, lane32, D, k.add(k.mul(warp32, 16), lane16), half16,
                        D / 16);
  FragmentOffsets fragK(k, lane32, D,
                        k.add(k.mul(half16, 8), k.remu(lane32, 8)), quarter8,
                        D / 16);
  FragmentOffsets fragV(k, lane32, Dv, lane16, half16, Dv / 16);

  //===--------------------------------------------------------------------===//
  // Prologue: Q and the first K tile in flight.
  //===--------------------------------------------------------------------===//
  loadQ.issue(gQ, sQ, querySource);
  k.commitGroup();
  Value hasWork = k.cmp(CmpIPredicate::slt, tileBegin, tileEnd);
  auto issueFirstK = [&] {
    loadK.issue(gK, sK, kvSource(k.mul(tileBegin, BN), /*ofValue=*/false));
    k.commitGroup();
  };
  if (tile.qInRegisters) {
    k.ifThen(hasWork, issueFirstK);
  } else {
    // Q in shared memory is waited for in the KV loop; a CTA without a KV
    // tile (kv_len 0, causal Sq > Skv, an empty split) must still drain its
    // copy before it exits.
    k.ifThenElse(hasWork, issueFirstK, [&] { k.waitAllGroups(); });
  }
  SmallVector<SmallVector<Value, 4>> qFragments;
  if (tile.qInRegisters) {
    k.waitAllGroups();
    k.barrier();
    for (int64_t kk = 0; kk < D / 16; ++kk)
      qFragments.push_back(k.loadMatrixX4(sQ, fragQ(kk), false));
  }

  // Softmax in base 2: p = exp2(s * scale2 - m). With a softcap c the
  // scores become tanh(s * scale / c) and scale2 = c * log2(e).
  double scale2 = spec.softcap ? *spec.softcap * kLog2E : spec.scale * kLog2E;
  const double negInf = -INFINITY;

  SmallVector<Value> inits(4 * NDT, k.f32(0.0));
  inits.append(2, k.f32(negInf));
  inits.append(2, k.f32(0.0));

  //===--------------------------------------------------------------------===//
  // The KV loop.
  //===--------------------------------------------------------------------===//
  auto body = [&](Value n, ValueRange args) -> SmallVector<Value> {
    SmallVector<SmallVector<Value, 4>> O(NDT);
    for (int64_t d = 0; d < NDT; ++d)
      O[d].assign(args.begin() + 4 * d, args.begin() + 4 * d + 4);
    SmallVector<Value, 2> m(args.begin() + 4 * NDT, args.begin() + 4 * NDT + 2);
    SmallVector<Value, 2> l(args.begin() + 4 * NDT + 2,
                            args.begin() + 4 * NDT + 4);

    Value firstKey = k.mul(n, BN);
    // K(n) landed; every warp is done with V(n - 1).
    k.waitAllGroups();
    k.barrier();
    loadV.issue(gV, sV, kvSource(firstKey, /*ofValue=*/true));
    k.commitGroup();

    // S = Q K^T: 16 x BN per warp, NT n8 tiles of 4 f32 per lane.
    SmallVector<SmallVector<Value, 4>> S(NT,
                                         SmallVector<Value, 4>(4, k.f32(0.0)));
    for (int64_t kk = 0; kk < D / 16; ++kk) {
      SmallVector<Value, 4> a = tile.qInRegisters
                                    ? qFragments[kk]
                                    : k.loadMatrixX4(sQ, fragQ(kk), false);
      for (int64_t np = 0; np < BN / 16; ++np) {
        SmallVector<Value, 4> kb =
            k.loadMatrixX4(sK, k.add(fragK(kk), np * 16 * D), false);
        S[2 * np] = k.mma(a, ArrayRef<Value>(kb).take_front(2), S[2 * np]);
        S[2 * np + 1] =
            k.mma(a, ArrayRef<Value>(kb).drop_front(2), S[2 * np + 1]);
      }
    }

    // V(n) landed; every warp is done with K(n): prefetch K(n + 1).
    k.waitAllGroups();
    k.barrier();
    Value next = k.add(n, 1);
    k.ifThen(k.cmp(CmpIPredicate::slt, next, tileEnd), [&] {
      loadK.issue(gK, sK, kvSource(k.mul(next, BN), /*ofValue=*/false));
      k.commitGroup();
    });

    SmallVector<Value> flatS;
    for (auto &t : S)
      flatS.append(t.begin(), t.end());
    // Softcap, before the mask.
    if (spec.softcap) {
      double inner = spec.scale / *spec.softcap;
      for (Value &s : flatS)
        s = k.tanh(k.fmul(s, inner));
    }

    // Mask only tiles that some row of the CTA does not see entirely.
    Value boundary =
        k.ori(k.cmp(CmpIPredicate::slt, firstKey, fullBegin),
              k.cmp(CmpIPredicate::sgt, k.add(firstKey, BN), fullEnd));
    SmallVector<Type> scoreTypes(flatS.size(), f32);
    flatS = k.ifThenElse(
        boundary, scoreTypes,
        [&]() -> SmallVector<Value> {
          // Column of element (nt = 0, e = 0) of this lane.
          Value column = k.cast(k.add(firstKey, k.mul(threadInGroup, 2)), i32);
          SmallVector<Value> masked(flatS);
          for (int64_t h = 0; h < 2; ++h) {
            // Element c = 8 nt + e is visible iff begin <= column + c < end.
            Value last = k.sub(k.sub(rowEnd[h], column), 1);
            Value first =
                rowBegin.empty() ? Value() : k.sub(rowBegin[h], column);
            for (int64_t nt = 0; nt < NT; ++nt) {
              for (int64_t e = 0; e < 2; ++e) {
                int64_t c = 8 * nt + e;
                Value visible = k.cmp(CmpIPredicate::sle, k.i32(c), last);
                if (first)
                  visible = k.andb(visible,
                                   k.cmp(CmpIPredicate::sge, k.i32(c), first));
                int64_t at = 4 * nt + 2 * h + e;
                masked[at] = k.fselect(visible, flatS[at], negInf);
              }
            }
          }
          return masked;
        },
        [&]() -> SmallVector<Value> { return flatS; });
    for (int64_t t = 0; t < NT; ++t)
      S[t].assign(flatS.begin() + 4 * t, flatS.begin() + 4 * t + 4);

    // Online softmax; a row's values are spread over the 4 lanes of a quad.
    SmallVector<SmallVector<Value, 4>> P(NT, SmallVector<Value, 4>(4));
    SmallVector<Value> newM, newL;
    for (int64_t h = 0; h < 2; ++h) {
      SmallVector<Value> row;
      for (int64_t nt = 0; nt < NT; ++nt)
        for (int64_t e = 0; e < 2; ++e)
          row.push_back(S[nt][2 * h + e]);
      Value rowMax = tree(row, [&](Value x, Value y) { return k.fmax(x, y); });
      rowMax = k.fmax(rowMax, k.shuffleXor(rowMax, 1));
      rowMax = k.fmax(rowMax, k.shuffleXor(rowMax, 2));
      Value mNew = k.fmax(m[h], k.fmul(rowMax, scale2));
      // A row that has seen no key yet keeps m = -inf: use 0 instead, so
      // that alpha and p are 0, never NaN.
      Value mUse =
          k.fselect(k.fcmp(CmpFPredicate::OEQ, mNew, negInf), 0.0, mNew);
      Value alpha = k.exp2(k.fsub(m[h], mUse));
      Value negM = k.fsub(k.f32(0.0), mUse);
      SmallVector<Value> ps;
      for (int64_t nt = 0; nt < NT; ++nt) {
        for (int64_t e = 0; e < 2; ++e) {
          Value p = k.exp2(k.fma(S[nt][2 * h + e], k.f32(scale2), negM));
          P[nt][2 * h + e] = p;
          ps.push_back(p);
        }
      }
      newL.push_back(k.fma(l[h], alpha, tree(ps, [&](Value x, Value y) {
                             return k.fadd(x, y);
                           })));
      newM.push_back(mNew);
      for (int64_t d = 0; d < NDT; ++d)
        for (int64_t e = 0; e < 2; ++e)
          O[d][2 * h + e] = k.fmul(O[d][2 * h + e], alpha);
    }

    // O += P V: P, in the C layout of two n8 tiles, is the A operand of
    // the k16 step (no shuffle, no shared memory).
    for (int64_t kk = 0; kk < BN / 16; ++kk) {
      SmallVector<Value, 4> pa = {k.pack(P[2 * kk][0], P[2 * kk][1]),
                                  k.pack(P[2 * kk][2], P[2 * kk][3]),
                                  k.pack(P[2 * kk + 1][0], P[2 * kk + 1][1]),
                                  k.pack(P[2 * kk + 1][2], P[2 * kk + 1][3])};
      for (int64_t dp = 0; dp < Dv / 16; ++dp) {
        SmallVector<Value, 4> vb =
            k.loadMatrixX4(sV, k.add(fragV(dp), kk * 16 * Dv), true);
        O[2 * dp] = k.mma(pa, ArrayRef<Value>(vb).take_front(2), O[2 * dp]);
        O[2 * dp + 1] =
            k.mma(pa, ArrayRef<Value>(vb).drop_front(2), O[2 * dp + 1]);
      }
    }
    SmallVector<Value> yielded;
    for (auto &t : O)
      yielded.append(t.begin(), t.end());
    yielded.append(newM.begin(), newM.end());
    yielded.append(newL.begin(), newL.end());
    return yielded;
  };
  SmallVector<Value> results = k.forLoop(tileBegin, tileEnd, inits, body);

  //===--------------------------------------------------------------------===//
  // Epilogue: reduce l over the quad, normalise, store rows < Sq * g.
  //===--------------------------------------------------------------------===//
  Value column = k.mul(threadInGroup, 2);
  for (int64_t h = 0; h < 2; ++h) {
    Value m = results[4 * NDT + h];
    Value l = results[4 * NDT + 2 + h];
    Value total = k.fadd(l, k.shuffleXor(l, 1));
    total = k.fadd(total, k.shuffleXor(total, 2));
    Value empty = k.fcmp(CmpFPredicate::OEQ, total, 0.0);
    Value inverse = k.fselect(empty, 0.0, k.fdiv(k.f32(1.0), total));
    Value row = k.add(firstRow, k.add(k.mul(warp, 16), k.add(groupId, 8 * h)));
    Value valid = k.cmp(CmpIPredicate::slt, row, packedRows);
    Value clamped = k.mins(row, k.sub(packedRows, 1));
    Value position = k.divu(clamped, g);
    Value head = k.add(k.mul(kvHead, g), k.remu(clamped, g));
    SmallVector<std::pair<Value, Value>> values;
    for (int64_t d = 0; d < NDT; ++d)
      values.push_back({k.fmul(results[4 * d + 2 * h], inverse),
                        k.fmul(results[4 * d + 2 * h + 1], inverse)});
    auto storeOutput = [&] {
      Value base =
          k.add(rowOffset(k, spec.layout, batch, head, position, seqQ, Hq, Dv),
                column);
      k.ifThen(valid, [&] {
        for (int64_t d = 0; d < NDT; ++d)
          k.storePair(gOut, k.add(base, d * 8), values[d].first,
                      values[d].second);
      });
    };
    if (!split) {
      storeOutput();
      continue;
    }
    // Split-KV: launched with one split, this CTA saw all its keys and
    // writes the output (no combine follows). Else the normalised partial
    // output and the natural-log log-sum-exp (m is in the log2 domain),
    // -inf for a row with no key.
    auto storePartial = [&] {
      Value partialRow = k.add(
          k.mul(k.add(k.mul(k.add(k.mul(splitIndex, batchSize), batch), Hq),
                      head),
                seqQ),
          position);
      Value base = k.add(k.mul(partialRow, Dv), column);
      k.ifThen(valid, [&] {
        for (int64_t d = 0; d < NDT; ++d)
          k.storePair(gPartialOut, k.add(base, d * 8), values[d].first,
                      values[d].second);
      });
      Value lse =
          k.fselect(empty, negInf, k.fmul(k.fadd(m, k.log2(total)), kLn2));
      k.ifThen(k.andb(valid, k.cmp(CmpIPredicate::eq, threadInGroup, 0)),
               [&] { k.store(lse, gPartialLse, partialRow); });
    };
    k.ifThenElse(work.singleSplit, storeOutput, storePartial);
  }
  return func;
}
