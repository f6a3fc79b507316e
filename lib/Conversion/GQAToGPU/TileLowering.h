//===- TileLowering.h - The tiled form to GPU kernels -----------*- C++ -*-===//
//
// convert-gqa-tiles-to-gpu turns each `scf.forall` of blocks that
// gqa-distribute made into a gpu.func (one CTA per block) and its launch.
// The pass itself (TileLowering.cpp) does what is the same for every
// target: the kernel's parameters (docs/kernel-metadata.md), views of the
// captured memrefs, the block's scalar code, the structured control flow
// with tiles flattened into per-lane registers, and the ordering of the
// shared-memory tiles (cp.async groups and barriers). A `TileTarget` maps
// each tile op onto one kind of hardware: the tensor cores (mma.sync,
// TensorCoreTiles.cpp) or the CUDA cores (f32, SIMTTiles.cpp). No target
// derives a mask, a softmax step or a split of its own: it implements the
// tile op in front of it.
//
// Private to lib/Conversion/GQAToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_LIB_CONVERSION_GQATOGPU_TILELOWERING_H
#define GQA_LIB_CONVERSION_GQATOGPU_TILELOWERING_H

#include "KernelBuilder.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"

#include <functional>
#include <memory>

namespace mlir::gqa::gpu_kernel {

/// The shared-memory buffers a block's tiles live in.
enum class SharedBuffer { None, Query, Key, Value };
constexpr int kSharedBuffers = 4;

/// Where the kernel holds one tile of the tiled form.
struct Fragment {
  /// This lane's registers (none for a tile in shared memory).
  SmallVector<Value> values;
  /// The buffer of a tile in shared memory.
  SharedBuffer buffer = SharedBuffer::None;
  /// The tile's elements are `scale * values`: scores stay unscaled until
  /// the softmax folds the scale into its exp2.
  double scale = 1.0;
  /// Row sums held as this lane's partial sums (reduced in finalize).
  bool partialRows = false;
  /// Every element is the same constant (a splat): it stands for any of
  /// the forms above.
  bool uniform = false;

  /// Whether two fragments of one value (the branches of an scf.if, a loop
  /// and its iteration) agree on what their registers mean.
  bool sameForm(const Fragment &other) const {
    return buffer == other.buffer && scale == other.scale &&
           partialRows == other.partialRows &&
           values.size() == other.values.size();
  }
};

/// A captured memref inside the kernel: a flat view of its parameter and
/// its sizes and row-major strides (index values).
struct KernelTensor {
  Value flat;
  SmallVector<Value> sizes, strides;
  /// Where a view of a parameter (a ragged batch's sequence) starts in
  /// `flat`, in elements; null for the parameter itself.
  Value base;

  /// The element offset of `indices` (index values, one per dimension).
  Value offset(KernelBuilder &k, ArrayRef<Value> indices) const;
};

class BlockLowering;

/// What packed row `packed` of a block is (see gqa.load_query_tile):
/// whether it exists (< `packedRows` = Sq * g), and the query head and
/// position of the row, clamped to the last row when it does not.
struct PackedRow {
  Value valid, head, position;
};
PackedRow emitPackedRow(KernelBuilder &k, Value packed, Value packedRows,
                        Value kvHead, int64_t groupSize);

/// The element offset of the row of key `key` (in [0, Skv)) that `load`
/// reads: base + key * stride (the base once per block), or, paged, through
/// the block table with the page clamped into the pool.
Value emitKVRowOffset(BlockLowering &block, LoadKVTileOp load, Value key);

/// One kind of hardware's implementation of the tile ops. Each method
/// lowers one op at the builder's insertion point, reading its operands'
/// fragments and scalars through `block` and returning its results'
/// fragments.
class TileTarget {
public:
  virtual ~TileTarget();

  /// Threads per CTA.
  virtual int64_t threads() const = 0;
  /// Lays out shared memory and builds the per-thread values the target
  /// needs at the kernel's entry, from the tile types of the block.
  virtual LogicalResult prepare(BlockLowering &block, Operation *body) = 0;
  /// Dynamic shared memory, in bytes (known after `prepare`).
  virtual int64_t sharedMemoryBytes() const = 0;

  /// Before a loop whose body reads `query` (a tile defined outside it):
  /// the target may move it into registers once.
  virtual void beforeLoop(BlockLowering &block, Value query) {}

  virtual FailureOr<Fragment> loadQuery(BlockLowering &block,
                                        LoadQueryTileOp op) = 0;
  virtual FailureOr<Fragment> loadKV(BlockLowering &block, LoadKVTileOp op,
                                     SharedBuffer buffer) = 0;
  virtual FailureOr<Fragment> loadSinks(BlockLowering &block,
                                        LoadSinkTileOp op) = 0;
  virtual FailureOr<Fragment> scores(BlockLowering &block, ScoresOp op) = 0;
  virtual FailureOr<Fragment> mask(BlockLowering &block, MaskScoresOp op) = 0;
  /// Returns the probabilities, new max, new sum and rescale.
  virtual FailureOr<SmallVector<Fragment>>
  onlineSoftmax(BlockLowering &block, OnlineSoftmaxOp op) = 0;
  virtual FailureOr<Fragment> accumulate(BlockLowering &block,
                                         AccumulateOp op) = 0;
  /// Returns the output and the LSE.
  virtual FailureOr<SmallVector<Fragment>> finalize(BlockLowering &block,
                                                    FinalizeOp op) = 0;
  virtual LogicalResult storeOutput(BlockLowering &block,
                                    StoreOutputTileOp op) = 0;
  virtual LogicalResult storePartial(BlockLowering &block,
                                     StorePartialTileOp op) = 0;
  virtual LogicalResult storeLse(BlockLowering &block, StoreLseTileOp op) = 0;
  /// The registers of a splat of `value` of type `type`.
  virtual FailureOr<Fragment> splat(BlockLowering &block, RankedTensorType type,
                                    Value value) = 0;
};

/// One row of gqa.online_softmax once its maximum over the tile is known
/// (`rowMax`, of unscaled scores whose scale is `scale`): the new maximum
/// m', the rescale alpha = exp2(m - u) and -u (u = m', or 0 for a row that
/// saw no key yet, so that alpha and p are 0, never NaN); a probability is
/// then exp2(fma(s, scale, -u)).
struct SoftmaxRow {
  Value newMax, rescale, negShift;
};
SoftmaxRow emitSoftmaxRow(KernelBuilder &k, Value max, Value rowMax,
                          double scale);

/// One row of gqa.finalize from its whole sum `total`, maximum `max` and
/// sink logit (or null): the factor of the accumulator (0 without keys)
/// and the natural-log LSE (-inf without keys and sink).
struct FinalRow {
  Value factor, lse;
};
FinalRow emitFinalRow(KernelBuilder &k, Value total, Value max, Value sink);

/// The tiles of a block: its Q, K and V loads and their shapes.
struct BlockTiles {
  int64_t blockM = 0, blockN = 0, headDim = 0, headDimV = 0;
  Type elementType;
};
/// Finds them in the body of a forall of blocks.
FailureOr<BlockTiles> findBlockTiles(Operation *body);

/// What both targets share: each lane holds whole rows' values (one per
/// held row of a row tile), so that the ops that move rows between memory
/// and registers (the sink loads, the output, partial and LSE stores) are
/// the same over the lane's rows; a target says which rows it holds, how
/// it stores one row of an output tile and which lane writes a row's
/// scalar.
class RowTileTarget : public TileTarget {
public:
  explicit RowTileTarget(ScheduleAttr schedule) : schedule(schedule) {}

  int64_t threads() const override { return 32 * schedule.getWarps(); }
  int64_t sharedMemoryBytes() const override { return sharedBytes; }

  FailureOr<Fragment> loadSinks(BlockLowering &block,
                                LoadSinkTileOp op) override;
  LogicalResult storeOutput(BlockLowering &block,
                            StoreOutputTileOp op) override;
  LogicalResult storePartial(BlockLowering &block,
                             StorePartialTileOp op) override;
  LogicalResult storeLse(BlockLowering &block, StoreLseTileOp op) override;

protected:
  /// findBlockTiles, keeping the block's tile sizes in BM, BN, D and Dv.
  FailureOr<BlockTiles> readBlockTiles(Operation *body);

  /// Stores this lane's part of held row `row` of `tile` at `base` (the
  /// row's element 0) of `to` when `valid`.
  virtual void storeRow(KernelBuilder &k, const Fragment &tile, int64_t row,
                        const KernelTensor &to, Value base, Value valid) = 0;
  /// Whether this lane writes the scalars of its rows (one lane per row).
  virtual Value leadsRow(KernelBuilder &k) = 0;

  ScheduleAttr schedule;
  /// The block's packed rows, keys per KV tile, and head dims.
  int64_t BM = 0, BN = 0, D = 0, Dv = 0;
  int64_t sharedBytes = 0;
  /// The rows of the block this lane holds, in fragment order.
  SmallVector<Value> heldRows;

private:
  /// Held row `row` of the block rows from `firstRow` of KV head `kvHead`.
  PackedRow heldRow(BlockLowering &block, int64_t row, Value firstRow,
                    Value kvHead, int64_t groupSize, Value seqQ);
  void storeRowLse(KernelBuilder &k, Value lse, const KernelTensor &to,
                   Value at, Value valid);
};

/// The tensor-core (mma.sync m16n8k16) target for f16/bf16 tiles.
std::unique_ptr<TileTarget> createTensorCoreTarget(ScheduleAttr schedule);
/// The CUDA-core target for f32 tiles.
std::unique_ptr<TileTarget> createSIMTTarget(ScheduleAttr schedule);

/// Whether the result of `load` is the key of a `gqa.scores` (true) or the
/// value of a `gqa.accumulate` (false), followed through loops and
/// branches; none when it is both or neither.
std::optional<bool> isKeyTile(LoadKVTileOp load);

/// The split-KV merge of `op` on the CUDA cores (CombineTiles.cpp): each
/// thread merges 4 consecutive values of one row.
LogicalResult lowerCombineSplits(BlockLowering &block, CombineSplitsOp op);
/// Threads of the kernel of a combine forall.
int64_t getCombineThreads(CombineSplitsOp op);
/// The merge of two partial results of `op` (CombineTiles.cpp), in the
/// combine's rows and threads.
LogicalResult lowerMergeRows(BlockLowering &block, MergeRowsOp op);
/// Threads of the kernel of a merge forall.
int64_t getMergeThreads(MergeRowsOp op);

/// Lowers the body of one forall of blocks into a kernel: the state a
/// target's methods read and the synchronisation of shared memory.
class BlockLowering {
public:
  BlockLowering(KernelBuilder &k, TileTarget &target, ScheduleAttr schedule)
      : k(k), target(target), schedule(schedule) {}

  KernelBuilder &k;
  TileTarget &target;
  ScheduleAttr schedule;

  /// The kernel's value of a scalar (index, integer, float) of the block.
  Value scalar(Value original) const { return scalars.lookup(original); }
  /// The fragment of a tile of the block.
  const Fragment &fragment(Value tile) const;
  /// The kernel's view of a memref the block reads or writes.
  const KernelTensor &tensor(Value memref) const;

  /// Orders the accesses of shared memory: call before issuing a copy
  /// into `buffer`, and before reading it. A copy is `asynchronous`
  /// (cp.async, awaited before the next barrier) or not (plain stores).
  void beforeWrite(SharedBuffer buffer, bool asynchronous);
  void beforeRead(SharedBuffer buffer);
  /// A barrier (waiting for every copy in flight first).
  void synchronize();
  /// Waits for the copies still in flight (before the kernel returns).
  void drain();

  /// Builds `build` where its operands allow it outside every loop and
  /// branch of the kernel (once per key), else here: per-lane values that
  /// depend only on the block, not on the KV tile.
  Value hoisted(ArrayRef<Value> operands, llvm::hash_code key,
                function_ref<Value()> build);

  /// The lowering of the forall's body into the kernel at `k`'s insertion
  /// point, once `tensors` holds the captured memrefs' views and `scalars`
  /// the captured scalars' kernel values (and the block ids).
  LogicalResult lowerBody(Block &body);
  /// Lowers one op of the block (or a constant it captures).
  LogicalResult lowerOp(Operation *op);

  /// The kernel's values of the block's scalars.
  IRMapping scalars;
  /// The kernel's views of the block's memrefs.
  llvm::DenseMap<Value, KernelTensor> tensors;

private:
  LogicalResult lowerBlock(Block &block);
  LogicalResult lowerTileOp(Operation *op);
  /// A view (memref.subview, memref.expand_shape) of a memref the kernel
  /// has: the same flat memory, its base, sizes and strides.
  LogicalResult lowerView(Operation *op);
  /// The kernel value of an index, constant or a block scalar.
  Value kernelValue(OpFoldResult value);
  LogicalResult lowerFor(scf::ForOp op);
  LogicalResult lowerIf(scf::IfOp op);
  /// The kernel values of `values` (fragments flattened) and their forms.
  SmallVector<Value> flatten(ValueRange values,
                             SmallVectorImpl<Fragment> *forms = nullptr);
  /// Binds `originals` to `flat` in the forms of `forms`.
  void bind(ValueRange originals, ValueRange flat, ArrayRef<Fragment> forms);

  llvm::DenseMap<Value, Fragment> fragments;
  llvm::DenseMap<llvm::hash_code, Value> hoistedValues;
  /// Per buffer: a copy into it may be in flight or unsynchronised, and a
  /// thread may have read it since the last barrier.
  struct SharedState {
    bool pending[kSharedBuffers] = {};
    bool read[kSharedBuffers] = {};
    bool asyncInFlight = false;
  } shared;
};

} // namespace mlir::gqa::gpu_kernel

#endif // GQA_LIB_CONVERSION_GQATOGPU_TILELOWERING_H
