//===- TileLowering.cpp - The block of the tiled form, in a kernel --------===//
//
// BlockLowering walks the body of one forall of blocks in order and builds
// the kernel's code for it: scalars are cloned, tile ops go to the target,
// and scf.for / scf.if are rebuilt with every tile flattened into the
// registers of its fragment (a tile in shared memory has none). Which
// fragment form a loop-carried tile has is found by lowering the loop body
// and, where a splat init (any form) meets a yielded form, lowering it again
// in that form.
//
// Shared memory is ordered by a small state machine over the buffers: a
// copy into a buffer that a thread may still read waits behind a barrier,
// and a read of a buffer whose copy may be in flight waits for the copies
// and a barrier. A loop is entered and left in the state "anything may be
// in flight and read", so its first access synchronises; a branch that
// starts with a copy into a read buffer synchronises before the branch, so
// that both sides share the barrier.
//
//===----------------------------------------------------------------------===//

#include "TileLowering.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

TileTarget::~TileTarget() = default;

Value KernelTensor::offset(KernelBuilder &k, ArrayRef<Value> indices) const {
  Value total = base;
  for (auto [index, stride] : llvm::zip_equal(indices, strides)) {
    Value term = k.mul(index, stride);
    total = total ? k.add(total, term) : term;
  }
  return total ? total : k.index(0);
}

PackedRow mlir::gqa::gpu_kernel::emitPackedRow(KernelBuilder &k, Value packed,
                                               Value packedRows, Value kvHead,
                                               int64_t groupSize) {
  Value clamped = k.mins(packed, k.sub(packedRows, 1));
  return {k.cmp(arith::CmpIPredicate::slt, packed, packedRows),
          k.add(k.mul(kvHead, groupSize), k.remu(clamped, groupSize)),
          k.divu(clamped, groupSize)};
}

Value mlir::gqa::gpu_kernel::emitKVRowOffset(BlockLowering &block,
                                             LoadKVTileOp load, Value key) {
  KernelBuilder &k = block.k;
  const KernelTensor &source = block.tensor(load.getSource());
  Value batch = block.scalar(load.getBatch()),
        kvHead = block.scalar(load.getKvHead());
  if (load.isPaged()) {
    const KernelTensor &table = block.tensor(load.getBlockTable());
    int64_t pageSize =
        cast<MemRefType>(load.getSource().getType()).getDimSize(1);
    Value entry = table.offset(k, {batch, k.divu(key, pageSize)});
    Value page = k.cast(k.load(table.flat, entry), k.b.getIndexType());
    page = k.mins(k.maxs(page, 0), k.sub(source.sizes[0], 1));
    return source.offset(k, {page, k.remu(key, pageSize), kvHead});
  }
  LayoutDims dims = getLayoutDims(load.getLayout());
  SmallVector<Value, 3> operands = {batch, kvHead};
  if (source.base)
    operands.push_back(source.base);
  Value base =
      block.hoisted(operands,
                    llvm::hash_combine(llvm::StringRef("kv-base"), source.flat,
                                       source.base, batch, kvHead),
                    [&] {
                      SmallVector<Value, 4> at =
                          dims.order(batch, kvHead, k.index(0), Value());
                      at.resize(3);
                      return source.offset(k, at);
                    });
  return k.add(base, k.mul(key, source.strides[dims.seq]));
}

SoftmaxRow mlir::gqa::gpu_kernel::emitSoftmaxRow(KernelBuilder &k, Value max,
                                                 Value rowMax, double scale) {
  Value newMax = k.fmax(max, k.fmul(rowMax, scale));
  Value shift = k.fselect(k.fcmp(arith::CmpFPredicate::OEQ, newMax, -INFINITY),
                          0.0, newMax);
  return {newMax, k.exp2(k.fsub(max, shift)), k.fsub(k.f32(0.0), shift)};
}

FinalRow mlir::gqa::gpu_kernel::emitFinalRow(KernelBuilder &k, Value total,
                                             Value max, Value sink) {
  Value weight;
  if (sink) {
    // The sink joins the denominator as one more key without a value.
    // A row with no key and a sink of -inf shifts by 0, not by -inf (whose
    // exp2(-inf - -inf) would be NaN): it is then empty.
    Value logit = k.fmul(sink, kLog2E);
    Value joined = k.fmax(max, logit);
    Value shift = k.fselect(
        k.fcmp(arith::CmpFPredicate::OEQ, joined, -INFINITY), 0.0, joined);
    weight = k.exp2(k.fsub(max, shift));
    total = k.fma(total, weight, k.exp2(k.fsub(logit, shift)));
    max = shift;
  }
  Value empty = k.fcmp(arith::CmpFPredicate::OEQ, total, 0.0);
  Value factor = k.fselect(empty, 0.0, k.fdiv(k.f32(1.0), total));
  if (weight)
    factor = k.fmul(factor, weight);
  return {factor, k.fselect(empty, -INFINITY,
                            k.fmul(k.fadd(max, k.log2(total)), kLn2))};
}

FailureOr<BlockTiles> mlir::gqa::gpu_kernel::findBlockTiles(Operation *body) {
  LoadQueryTileOp query;
  LoadKVTileOp key, value;
  body->walk([&](Operation *op) {
    if (auto load = dyn_cast<LoadQueryTileOp>(op))
      query = load;
    if (auto load = dyn_cast<LoadKVTileOp>(op)) {
      std::optional<bool> isKey = isKeyTile(load);
      (isKey && *isKey ? key : value) = load;
    }
  });
  if (!query || !key || !value)
    return body->emitOpError()
           << "holds no query, key and value tiles to lower";
  auto shape = [](Value tile) {
    return cast<RankedTensorType>(tile.getType()).getShape();
  };
  BlockTiles tiles;
  tiles.blockM = shape(query.getTile())[0];
  tiles.headDim = shape(query.getTile())[1];
  tiles.blockN = shape(key.getTile())[0];
  tiles.headDimV = shape(value.getTile())[1];
  tiles.elementType = query.getTile().getType().getElementType();
  return tiles;
}

//===----------------------------------------------------------------------===//
// Rows between memory and registers
//===----------------------------------------------------------------------===//

FailureOr<BlockTiles> RowTileTarget::readBlockTiles(Operation *body) {
  FailureOr<BlockTiles> tiles = findBlockTiles(body);
  if (succeeded(tiles)) {
    BM = tiles->blockM;
    BN = tiles->blockN;
    D = tiles->headDim;
    Dv = tiles->headDimV;
  }
  return tiles;
}

PackedRow RowTileTarget::heldRow(BlockLowering &block, int64_t row,
                                 Value firstRow, Value kvHead,
                                 int64_t groupSize, Value seqQ) {
  KernelBuilder &k = block.k;
  return emitPackedRow(k, k.add(block.scalar(firstRow), heldRows[row]),
                       k.mul(seqQ, groupSize), block.scalar(kvHead), groupSize);
}

void RowTileTarget::storeRowLse(KernelBuilder &k, Value lse,
                                const KernelTensor &to, Value at, Value valid) {
  k.ifThen(k.andb(valid, leadsRow(k)), [&] { k.store(lse, to.flat, at); });
}

FailureOr<Fragment> RowTileTarget::loadSinks(BlockLowering &block,
                                             LoadSinkTileOp op) {
  KernelBuilder &k = block.k;
  const KernelTensor &sinks = block.tensor(op.getSinks());
  int64_t g = op.getGroupSize();
  Value kvHead = block.scalar(op.getKvHead()),
        firstRow = block.scalar(op.getFirstRow());
  Fragment rows;
  for (Value held : heldRows) {
    Value row = k.add(firstRow, held);
    rows.values.push_back(
        k.load(sinks.flat, k.add(k.mul(kvHead, g), k.remu(row, g))));
  }
  return rows;
}

LogicalResult RowTileTarget::storeOutput(BlockLowering &block,
                                         StoreOutputTileOp op) {
  KernelBuilder &k = block.k;
  const KernelTensor &out = block.tensor(op.getOutput());
  LayoutDims dims = getLayoutDims(op.getLayout());
  int64_t g = op.getQHeads() / op.getKvHeads();
  Value batch = block.scalar(op.getBatch());
  for (size_t r = 0; r < heldRows.size(); ++r) {
    PackedRow row = heldRow(block, r, op.getFirstRow(), op.getKvHead(), g,
                            out.sizes[dims.seq]);
    SmallVector<Value, 4> at =
        dims.order(batch, row.head, row.position, Value());
    at.resize(3);
    storeRow(k, block.fragment(op.getTile()), r, out, out.offset(k, at),
             row.valid);
  }
  return success();
}

LogicalResult RowTileTarget::storePartial(BlockLowering &block,
                                          StorePartialTileOp op) {
  KernelBuilder &k = block.k;
  const KernelTensor &partialOut = block.tensor(op.getPartialOut());
  const KernelTensor &partialLse = block.tensor(op.getPartialLse());
  Value split = block.scalar(op.getSplit()),
        batch = block.scalar(op.getBatch());
  const Fragment &lse = block.fragment(op.getLse());
  for (size_t r = 0; r < heldRows.size(); ++r) {
    PackedRow row = heldRow(block, r, op.getFirstRow(), op.getKvHead(),
                            op.getGroupSize(), partialOut.sizes[3]);
    SmallVector<Value> at = {split, batch, row.head, row.position};
    storeRow(k, block.fragment(op.getTile()), r, partialOut,
             partialOut.offset(k, at), row.valid);
    storeRowLse(k, lse.values[r], partialLse, partialLse.offset(k, at),
                row.valid);
  }
  return success();
}

LogicalResult RowTileTarget::storeLse(BlockLowering &block, StoreLseTileOp op) {
  KernelBuilder &k = block.k;
  const KernelTensor &to = block.tensor(op.getOutput());
  Value batch = block.scalar(op.getBatch());
  for (size_t r = 0; r < heldRows.size(); ++r) {
    PackedRow row = heldRow(block, r, op.getFirstRow(), op.getKvHead(),
                            op.getGroupSize(), to.sizes[2]);
    storeRowLse(k, block.fragment(op.getLse()).values[r], to,
                to.offset(k, {batch, row.head, row.position}), row.valid);
  }
  return success();
}

const Fragment &BlockLowering::fragment(Value tile) const {
  auto it = fragments.find(tile);
  assert(it != fragments.end() && "a tile used before its definition");
  return it->second;
}

const KernelTensor &BlockLowering::tensor(Value memref) const {
  auto it = tensors.find(memref);
  assert(it != tensors.end() && "a memref the kernel has no view of");
  return it->second;
}

//===----------------------------------------------------------------------===//
// Shared memory
//===----------------------------------------------------------------------===//

void BlockLowering::beforeWrite(SharedBuffer buffer, bool asynchronous) {
  int slot = static_cast<int>(buffer);
  if (shared.read[slot])
    synchronize();
  shared.pending[slot] = true;
  shared.asyncInFlight |= asynchronous;
}

void BlockLowering::beforeRead(SharedBuffer buffer) {
  int slot = static_cast<int>(buffer);
  if (shared.pending[slot])
    synchronize();
  shared.read[slot] = true;
}

void BlockLowering::synchronize() {
  if (shared.asyncInFlight)
    k.waitAllGroups();
  k.barrier();
  shared = SharedState();
}

void BlockLowering::drain() {
  if (shared.asyncInFlight)
    k.waitAllGroups();
  shared.asyncInFlight = false;
}

/// The state at the entry and exit of a loop: anything.
static void assumeAnything(bool (&flags)[kSharedBuffers]) {
  for (bool &flag : flags)
    flag = true;
}

//===----------------------------------------------------------------------===//
// Hoisting
//===----------------------------------------------------------------------===//

Value BlockLowering::hoisted(ArrayRef<Value> operands, llvm::hash_code key,
                             function_ref<Value()> build) {
  OpBuilder &b = k.b;
  Block *entry = b.getInsertionBlock();
  Operation *anchor = nullptr;
  // The outermost op of the kernel's body that encloses the insertion point.
  for (Operation *parent = entry->getParentOp();
       parent && !isa<gpu::GPUFuncOp>(parent); parent = parent->getParentOp()) {
    anchor = parent;
    entry = parent->getBlock();
  }
  if (!anchor)
    return build();
  for (Value operand : operands) {
    if (operand.getParentBlock() != entry)
      return build();
    if (Operation *def = operand.getDefiningOp();
        def && !def->isBeforeInBlock(anchor))
      return build();
  }
  Value &cached = hoistedValues[key];
  if (!cached) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(anchor);
    cached = build();
  }
  return cached;
}

//===----------------------------------------------------------------------===//
// The walk
//===----------------------------------------------------------------------===//

LogicalResult BlockLowering::lowerBody(Block &body) {
  if (failed(lowerBlock(body)))
    return failure();
  drain();
  return success();
}

LogicalResult BlockLowering::lowerBlock(Block &block) {
  for (Operation &op : block.without_terminator())
    if (failed(lowerOp(&op)))
      return failure();
  return success();
}

std::optional<bool> mlir::gqa::gpu_kernel::isKeyTile(LoadKVTileOp load) {
  SmallVector<Value> worklist = {load.getResult()};
  llvm::SmallPtrSet<Value, 8> seen;
  bool key = false, value = false;
  while (!worklist.empty()) {
    Value tile = worklist.pop_back_val();
    if (!seen.insert(tile).second)
      continue;
    for (OpOperand &use : tile.getUses()) {
      Operation *user = use.getOwner();
      if (auto scores = dyn_cast<ScoresOp>(user))
        key |= use.get() == scores.getKey();
      if (auto accumulate = dyn_cast<AccumulateOp>(user))
        value |= use.get() == accumulate.getValue();
      unsigned number = use.getOperandNumber();
      if (isa<scf::YieldOp>(user)) {
        Operation *parent = user->getParentOp();
        worklist.push_back(parent->getResult(number));
        if (auto loop = dyn_cast<scf::ForOp>(parent))
          worklist.push_back(loop.getRegionIterArgs()[number]);
      } else if (auto loop = dyn_cast<scf::ForOp>(user)) {
        if (number >= loop.getNumControlOperands())
          worklist.push_back(
              loop.getRegionIterArgs()[number - loop.getNumControlOperands()]);
      }
    }
  }
  // One tile in one role: K and V live in buffers of their own.
  if (key == value)
    return std::nullopt;
  return key;
}

LogicalResult BlockLowering::lowerOp(Operation *op) {
  if (op->getDialect() && isa<GQADialect>(op->getDialect()))
    return lowerTileOp(op);
  if (auto loop = dyn_cast<scf::ForOp>(op))
    return lowerFor(loop);
  if (auto branch = dyn_cast<scf::IfOp>(op))
    return lowerIf(branch);
  if (auto dim = dyn_cast<memref::DimOp>(op)) {
    std::optional<int64_t> index = getConstantIntValue(dim.getIndex());
    auto it = tensors.find(dim.getSource());
    if (!index || it == tensors.end())
      return op->emitOpError() << "is not a size of a kernel parameter";
    scalars.map(dim.getResult(), it->second.sizes[*index]);
    return success();
  }
  if (isa<memref::SubViewOp, memref::ExpandShapeOp>(op))
    return lowerView(op);
  if (auto load = dyn_cast<memref::LoadOp>(op)) {
    auto it = tensors.find(load.getMemRef());
    if (it == tensors.end())
      return op->emitOpError() << "reads a memref the kernel has no view of";
    SmallVector<Value> indices;
    for (Value index : load.getIndices())
      indices.push_back(scalar(index));
    scalars.map(load.getResult(),
                k.load(it->second.flat, it->second.offset(k, indices)));
    return success();
  }
  // A splat tile: an init of the loop's state.
  auto splatOf = [&](Value result, Value element) -> LogicalResult {
    FailureOr<Fragment> splat =
        target.splat(*this, cast<RankedTensorType>(result.getType()), element);
    if (failed(splat))
      return op->emitOpError() << "has no fragment on this target";
    splat->uniform = true;
    fragments[result] = std::move(*splat);
    return success();
  };
  if (auto splat = dyn_cast<tensor::SplatOp>(op))
    return splatOf(splat.getResult(), scalar(splat.getInput()));
  if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
    if (auto dense = dyn_cast<SplatElementsAttr>(constant.getValue())) {
      auto element = cast<FloatAttr>(dense.getSplatValue<Attribute>());
      return splatOf(constant.getResult(), k.f32(element.getValueAsDouble()));
    }
  }
  if (isa<tensor::EmptyOp>(op)) {
    // Stands for a tile that is never read (the K tile of a block without
    // KV tiles).
    Fragment undefined;
    undefined.uniform = true;
    fragments[op->getResult(0)] = undefined;
    return success();
  }
  // Scalar code of the block: cloned.
  bool scalarOnly =
      op->getNumRegions() == 0 && isMemoryEffectFree(op) &&
      llvm::none_of(op->getOperandTypes(), llvm::IsaPred<ShapedType>) &&
      llvm::none_of(op->getResultTypes(), llvm::IsaPred<ShapedType>);
  if (!scalarOnly)
    return op->emitOpError() << "cannot be lowered into a GPU kernel";
  for (Value operand : op->getOperands())
    if (!scalars.contains(operand))
      return op->emitOpError() << "uses a value the kernel does not have";
  k.b.clone(*op, scalars);
  return success();
}

LogicalResult BlockLowering::lowerView(Operation *op) {
  Value source = op->getOperand(0);
  auto it = tensors.find(source);
  if (it == tensors.end())
    return op->emitOpError() << "views a memref the kernel has no view of";
  KernelTensor view = it->second;
  if (auto subview = dyn_cast<memref::SubViewOp>(op)) {
    // A unit-stride window: the base moves by the offsets, the sizes are
    // the window's.
    if (!llvm::all_of(subview.getMixedStrides(), isOneInteger))
      return op->emitOpError() << "has a stride other than 1";
    SmallVector<Value> offsets, sizes;
    for (OpFoldResult offset : subview.getMixedOffsets())
      offsets.push_back(kernelValue(offset));
    for (OpFoldResult size : subview.getMixedSizes())
      sizes.push_back(kernelValue(size));
    view.base = it->second.offset(k, offsets);
    view.sizes = sizes;
    if (!subview.getDroppedDims().none())
      return op->emitOpError() << "drops a dimension";
  } else {
    // Each group of the expansion splits one dimension: its innermost
    // keeps the stride, the outer ones step over the inner sizes.
    auto expand = cast<memref::ExpandShapeOp>(op);
    SmallVector<Value> sizes, strides;
    for (OpFoldResult size : expand.getMixedOutputShape())
      sizes.push_back(kernelValue(size));
    strides.resize(sizes.size());
    for (auto [dim, group] :
         llvm::enumerate(expand.getReassociationIndices())) {
      Value stride = it->second.strides[dim];
      for (int64_t expanded : llvm::reverse(group)) {
        strides[expanded] = stride;
        stride = k.mul(stride, sizes[expanded]);
      }
    }
    view.sizes = sizes;
    view.strides = strides;
  }
  tensors[op->getResult(0)] = std::move(view);
  return success();
}

Value BlockLowering::kernelValue(OpFoldResult value) {
  if (auto attr = dyn_cast<Attribute>(value))
    return k.index(cast<IntegerAttr>(attr).getInt());
  return scalar(cast<Value>(value));
}

LogicalResult BlockLowering::lowerTileOp(Operation *op) {
  auto bindOne = [&](FailureOr<Fragment> result) -> LogicalResult {
    if (failed(result))
      return failure();
    fragments[op->getResult(0)] = std::move(*result);
    return success();
  };
  auto bindAll = [&](FailureOr<SmallVector<Fragment>> results) {
    if (failed(results))
      return failure();
    for (auto [value, result] : llvm::zip_equal(op->getResults(), *results))
      fragments[value] = std::move(result);
    return success();
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](LoadQueryTileOp load) {
        return bindOne(target.loadQuery(*this, load));
      })
      .Case([&](LoadKVTileOp load) {
        // One role per load: convert-gqa-tiles-to-gpu checked it.
        return bindOne(target.loadKV(*this, load,
                                     *isKeyTile(load) ? SharedBuffer::Key
                                                      : SharedBuffer::Value));
      })
      .Case([&](LoadSinkTileOp load) {
        return bindOne(target.loadSinks(*this, load));
      })
      .Case([&](LoadSegmentOp segment) {
        const KernelTensor &offsets = tensor(segment.getOffsets());
        Value sequence = scalar(segment.getSequence());
        auto at = [&](Value index) {
          return k.cast(k.load(offsets.flat, offsets.offset(k, {index})),
                        k.b.getIndexType());
        };
        Value start = at(sequence);
        scalars.map(segment.getStart(), start);
        scalars.map(segment.getLength(), k.sub(at(k.add(sequence, 1)), start));
        return success();
      })
      .Case([&](ScoresOp scores) {
        return bindOne(target.scores(*this, scores));
      })
      .Case(
          [&](MaskScoresOp mask) { return bindOne(target.mask(*this, mask)); })
      .Case([&](OnlineSoftmaxOp softmax) {
        return bindAll(target.onlineSoftmax(*this, softmax));
      })
      .Case([&](AccumulateOp accumulate) {
        return bindOne(target.accumulate(*this, accumulate));
      })
      .Case([&](FinalizeOp finalize) {
        return bindAll(target.finalize(*this, finalize));
      })
      .Case([&](StoreOutputTileOp store) {
        return target.storeOutput(*this, store);
      })
      .Case([&](StorePartialTileOp store) {
        return target.storePartial(*this, store);
      })
      .Case([&](StoreLseTileOp store) { return target.storeLse(*this, store); })
      .Case([&](CombineSplitsOp combine) {
        return lowerCombineSplits(*this, combine);
      })
      .Case([&](MergeRowsOp merge) { return lowerMergeRows(*this, merge); })
      .Default([&](Operation *other) {
        return other->emitOpError()
               << "has no lowering into an attention kernel";
      });
}

SmallVector<Value> BlockLowering::flatten(ValueRange values,
                                          SmallVectorImpl<Fragment> *forms) {
  SmallVector<Value> flat;
  for (Value value : values) {
    if (isa<RankedTensorType>(value.getType())) {
      const Fragment &form = fragment(value);
      flat.append(form.values.begin(), form.values.end());
      if (forms)
        forms->push_back(form);
      continue;
    }
    flat.push_back(scalar(value));
    if (forms)
      forms->push_back(Fragment());
  }
  return flat;
}

void BlockLowering::bind(ValueRange originals, ValueRange flat,
                         ArrayRef<Fragment> forms) {
  size_t at = 0;
  for (auto [original, form] : llvm::zip_equal(originals, forms)) {
    if (!isa<RankedTensorType>(original.getType())) {
      scalars.map(original, flat[at++]);
      continue;
    }
    Fragment bound = form;
    bound.uniform = false;
    for (Value &value : bound.values)
      value = flat[at++];
    fragments[original] = std::move(bound);
  }
}

/// The form two fragments of one value share: a splat or an undefined
/// tile takes the other's form (its registers hold the same constant in
/// any of them); failure when they disagree.
static FailureOr<Fragment> joinForms(const Fragment &a, const Fragment &b) {
  if (a.sameForm(b) && a.uniform == b.uniform)
    return a;
  auto adopts = [](const Fragment &uniform, const Fragment &other) {
    // A splat keeps its registers; only the unscaled forms admit it.
    return uniform.uniform && other.scale == 1.0 &&
           uniform.values.size() == other.values.size();
  };
  if (adopts(a, b))
    return b;
  if (adopts(b, a))
    return a;
  return failure();
}

/// `form` with the registers of `values`.
static Fragment withRegisters(const Fragment &form, ValueRange values) {
  Fragment result = form;
  result.values.assign(values.begin(), values.end());
  return result;
}

LogicalResult BlockLowering::lowerFor(scf::ForOp op) {
  // Tiles read in the loop but defined before it may move into registers.
  op.getBody()->walk([&](ScoresOp scores) {
    if (op.isDefinedOutsideOfLoop(scores.getQuery()))
      target.beforeLoop(*this, scores.getQuery());
  });
  SmallVector<Fragment> forms;
  SmallVector<Value> inits = flatten(op.getInitArgs(), &forms);
  Value lower = scalar(op.getLowerBound()), upper = scalar(op.getUpperBound()),
        step = scalar(op.getStep());
  SharedState before = shared;
  // A splat init takes the form the body yields: at most one more try.
  for (int attempt = 0; attempt < 2; ++attempt) {
    shared = before;
    assumeAnything(shared.pending);
    assumeAnything(shared.read);
    shared.asyncInFlight = true;
    auto loop = scf::ForOp::create(k.b, lower, upper, step, inits);
    SmallVector<Fragment> yielded;
    {
      OpBuilder::InsertionGuard guard(k.b);
      Block *body = loop.getBody();
      k.b.setInsertionPointToEnd(body);
      scalars.map(op.getInductionVar(), loop.getInductionVar());
      bind(op.getRegionIterArgs(), loop.getRegionIterArgs(), forms);
      if (failed(lowerBlock(*op.getBody())))
        return failure();
      auto yield = cast<scf::YieldOp>(op.getBody()->getTerminator());
      SmallVector<Value> results = flatten(yield.getOperands(), &yielded);
      scf::YieldOp::create(k.b, results);
    }
    bool agree = true;
    for (auto [form, result] : llvm::zip_equal(forms, yielded)) {
      if (form.sameForm(result))
        continue;
      FailureOr<Fragment> joined = joinForms(form, result);
      if (failed(joined) || !form.uniform)
        return op.emitOpError()
               << "carries a tile whose form changes across iterations";
      form = withRegisters(*joined, {});
      form.values.assign(result.values.size(), Value());
      agree = false;
    }
    if (!agree) {
      loop.erase();
      continue;
    }
    bind(op.getResults(), loop.getResults(), forms);
    assumeAnything(shared.pending);
    assumeAnything(shared.read);
    shared.asyncInFlight = true;
    return success();
  }
  return op.emitOpError() << "carries a tile whose form is not settled";
}

/// The buffer the first copy of `block` writes, if it starts with one.
static SharedBuffer firstCopy(Block &block) {
  for (Operation &op : block) {
    if (isa<LoadQueryTileOp>(op))
      return SharedBuffer::Query;
    if (auto load = dyn_cast<LoadKVTileOp>(op)) {
      std::optional<bool> key = isKeyTile(load);
      return key && *key ? SharedBuffer::Key : SharedBuffer::Value;
    }
    if (op.getDialect() && isa<GQADialect>(op.getDialect()))
      return SharedBuffer::None;
  }
  return SharedBuffer::None;
}

LogicalResult BlockLowering::lowerIf(scf::IfOp op) {
  // A branch that starts by overwriting a buffer still being read shares
  // the barrier with the other branch.
  SharedBuffer copied = firstCopy(*op.thenBlock());
  if (copied != SharedBuffer::None && shared.read[static_cast<int>(copied)])
    synchronize();

  Value condition = scalar(op.getCondition());
  bool hasElse = !op.getElseRegion().empty();
  auto branches = scf::IfOp::create(k.b, TypeRange{}, condition,
                                    /*withElseRegion=*/hasElse);
  SharedState before = shared, after;
  SmallVector<SmallVector<Fragment>> forms(2);
  SmallVector<SmallVector<Value>> yields(2);
  for (int side = 0; side < (hasElse ? 2 : 1); ++side) {
    shared = before;
    Block *original = side == 0 ? op.thenBlock() : op.elseBlock();
    Block *lowered = side == 0 ? branches.thenBlock() : branches.elseBlock();
    OpBuilder::InsertionGuard guard(k.b);
    k.b.setInsertionPoint(lowered->getTerminator());
    if (failed(lowerBlock(*original)))
      return failure();
    yields[side] =
        flatten(original->getTerminator()->getOperands(), &forms[side]);
    for (int slot = 0; slot < kSharedBuffers; ++slot) {
      after.pending[slot] |= shared.pending[slot];
      after.read[slot] |= shared.read[slot];
    }
    after.asyncInFlight |= shared.asyncInFlight;
  }
  if (!hasElse)
    for (int slot = 0; slot < kSharedBuffers; ++slot) {
      after.pending[slot] |= before.pending[slot];
      after.read[slot] |= before.read[slot];
      after.asyncInFlight |= before.asyncInFlight;
    }
  shared = after;
  if (op.getNumResults() == 0)
    return success();
  // The results' forms, then the branches moved into an scf.if that
  // yields their registers.
  SmallVector<Fragment> joined;
  for (auto [then, otherwise] : llvm::zip_equal(forms[0], forms[1])) {
    FailureOr<Fragment> form = joinForms(then, otherwise);
    if (failed(form) || then.values.size() != otherwise.values.size())
      return op.emitOpError() << "yields tiles of different forms";
    joined.push_back(*form);
  }
  SmallVector<Type> types;
  for (Value value : yields[0])
    types.push_back(value.getType());
  auto result =
      scf::IfOp::create(k.b, types, condition, /*withElseRegion=*/true);
  for (int side = 0; side < 2; ++side) {
    Region &from =
        side == 0 ? branches.getThenRegion() : branches.getElseRegion();
    Region &to = side == 0 ? result.getThenRegion() : result.getElseRegion();
    to.takeBody(from);
    Block &block = to.front();
    block.getTerminator()->erase();
    OpBuilder::InsertionGuard guard(k.b);
    k.b.setInsertionPointToEnd(&block);
    scf::YieldOp::create(k.b, yields[side]);
  }
  branches.erase();
  bind(op.getResults(), result.getResults(), joined);
  return success();
}
