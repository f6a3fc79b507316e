//===- TilesToGPU.cpp - Foralls of blocks to GPU kernels and launches -----===//
//
// convert-gqa-tiles-to-gpu: each `scf.forall` of blocks gqa-distribute made
// becomes a gpu.func (a CTA per block, its induction variables the block
// ids) in a gpu.module per attention op, and, in its place, the
// gpu.launch_func of it. The kernel's parameters are the captured memrefs,
// named by what the block does with them (q, k, v, out, kv_lens,
// block_table, partial_out, partial_lse), as bare pointers, then the launch
// sizes (batch, seq_q, seq_kv, num_pages, num_splits) of
// docs/kernel-metadata.md; inside, each memref is a flat view with its
// sizes (static, or a size parameter) and row-major strides, and each host
// scalar the block uses is recomputed from those sizes (a gqa.launch_size
// is the size parameter it names). The body is lowered
// by BlockLowering and the target of the tiles' element type.
//
//===----------------------------------------------------------------------===//

#include "TileLowering.h"
#include "gqa/Conversion/Passes.h"
#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::gqa {
#define GEN_PASS_DEF_CONVERTGQATILESTOGPU
#include "gqa/Conversion/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;

namespace {

/// The pointer parameters in the order of docs/kernel-metadata.md, of the
/// attention kernels and of the combine kernel.
constexpr StringLiteral kAttentionPointers[] = {"q",
                                                "k",
                                                "v",
                                                "out",
                                                "kv_lens",
                                                "block_table",
                                                "cu_seqlens_q",
                                                "cu_seqlens_k",
                                                "partial_out",
                                                "partial_lse",
                                                "sinks",
                                                "lse"};
constexpr StringLiteral kCombinePointers[] = {
    "partial_out", "partial_lse", "out", "cu_seqlens_q", "sinks", "lse"};
/// And of the merge kernel of gqa.merge_states.
constexpr StringLiteral kMergePointers[] = {"out_a", "lse_a", "out_b",
                                            "lse_b", "out",   "lse"};

/// Adds to `names` how the block uses `memref` or a view of it (a ragged
/// batch's sequence).
void collectNames(Value memref, Region &body,
                  llvm::SetVector<StringRef> &names) {
  for (OpOperand &use : memref.getUses()) {
    Operation *user = use.getOwner();
    if (!body.isAncestor(user->getParentRegion()))
      continue;
    if (isa<memref::SubViewOp, memref::ExpandShapeOp>(user)) {
      collectNames(user->getResult(0), body, names);
      continue;
    }
    StringRef role =
        llvm::TypeSwitch<Operation *, StringRef>(user)
            .Case([&](LoadQueryTileOp) { return "q"; })
            .Case([&](LoadKVTileOp load) -> StringRef {
              if (use.get() == load.getBlockTable())
                return "block_table";
              std::optional<bool> key = isKeyTile(load);
              return !key ? "" : *key ? "k" : "v";
            })
            .Case([&](StoreOutputTileOp) { return "out"; })
            .Case([&](StorePartialTileOp store) -> StringRef {
              return use.get() == store.getPartialOut() ? "partial_out"
                                                        : "partial_lse";
            })
            .Case([&](CombineSplitsOp combine) -> StringRef {
              if (use.get() == combine.getPartialOut())
                return "partial_out";
              if (use.get() == combine.getPartialLse())
                return "partial_lse";
              if (use.get() == combine.getOutput())
                return "out";
              return use.get() == combine.getSinks() ? "sinks" : "lse";
            })
            .Case([&](MergeRowsOp merge) -> StringRef {
              if (use.get() == merge.getOutput())
                return "out";
              if (use.get() == merge.getLse())
                return "lse";
              if (use.get() == merge.getOutA())
                return "out_a";
              if (use.get() == merge.getLseA())
                return "lse_a";
              return use.get() == merge.getOutB() ? "out_b" : "lse_b";
            })
            .Case([&](LoadSinkTileOp) { return "sinks"; })
            .Case([&](LoadSegmentOp segment) {
              return segment.getKeys() ? "cu_seqlens_k" : "cu_seqlens_q";
            })
            .Case([&](StoreLseTileOp) { return "lse"; })
            .Case([&](memref::LoadOp) { return "kv_lens"; })
            .Default([&](Operation *) { return ""; });
    if (!role.empty())
      names.insert(role);
  }
}

/// How the block uses a captured memref: its parameter names (K and V may
/// be one memref); none when no use tells (only its sizes are read).
SmallVector<StringRef> namesOf(Value memref, Region &body) {
  llvm::SetVector<StringRef> names;
  collectNames(memref, body, names);
  return names.takeVector();
}

/// A launch size as a parameter's dimension: `size / divisor + plus` (a
/// block table row has seq_kv / page_size pages, the cu_seqlens batch + 1
/// offsets).
struct LaunchDim {
  StringRef size;
  int64_t divisor = 1;
  int64_t plus = 0;
};

/// What the kernels of an op take: the forms of its tensors.
struct TensorForms {
  Layout layout;
  /// Tokens per page of a paged KV cache, or 0.
  int64_t pageSize = 0;
  /// Q, the output and the LSE are packed tokens (cu_seqlens_q); K and V
  /// too with packedKV (cu_seqlens_k).
  bool varlen = false, packedKV = false;
  /// The kernel is gqa.merge_states' (out_a, lse_a, out_b, lse_b, out,
  /// lse; packed tokens when varlen, launched as a batch of one).
  bool merge = false;
};

/// The launch size of dimension `dim` of parameter `name` of a merge
/// kernel: outputs [B, S, H, Dv] / [B, H, S, Dv] or packed [T, H, Dv], LSEs
/// [B, H, S] or packed [H, T] (the tokens are its seq_q).
std::optional<LaunchDim> sizeOfMergeDim(StringRef name, unsigned dim,
                                        const TensorForms &forms) {
  bool isLse = name.starts_with("lse");
  if (forms.varlen)
    return dim == (isLse ? 1u : 0u) ? std::optional(LaunchDim{"seq_q"})
                                    : std::nullopt;
  LayoutDims dims = getLayoutDims(forms.layout);
  if (dim == (isLse ? 0u : dims.batch))
    return LaunchDim{"batch"};
  if (dim == (isLse ? 2u : dims.seq))
    return LaunchDim{"seq_q"};
  return std::nullopt;
}

/// The launch size that dimension `dim` of parameter `name` has.
std::optional<LaunchDim> sizeOfDim(StringRef name, unsigned dim,
                                   const TensorForms &forms) {
  if (forms.merge)
    return sizeOfMergeDim(name, dim, forms);
  LayoutDims dims = getLayoutDims(forms.layout);
  if (name == "q" || name == "out") {
    if (forms.varlen)
      return dim == 0 ? std::optional(LaunchDim{"total_q"}) : std::nullopt;
    if (dim == dims.batch)
      return LaunchDim{"batch"};
    if (dim == dims.seq)
      return LaunchDim{"seq_q"};
  } else if (name == "k" || name == "v") {
    if (forms.pageSize)
      return dim == 0 ? std::optional(LaunchDim{"num_pages"}) : std::nullopt;
    if (forms.packedKV)
      return dim == 0 ? std::optional(LaunchDim{"total_kv"}) : std::nullopt;
    if (dim == dims.batch)
      return LaunchDim{"batch"};
    if (dim == dims.seq)
      return LaunchDim{"seq_kv"};
  } else if (name == "kv_lens") {
    return LaunchDim{"batch"};
  } else if (name == "cu_seqlens_q" || name == "cu_seqlens_k") {
    return LaunchDim{"batch", 1, 1};
  } else if (name == "block_table") {
    return dim == 0 ? LaunchDim{"batch"} : LaunchDim{"seq_kv", forms.pageSize};
  } else if (name == "partial_out" || name == "partial_lse") {
    if (dim == 0)
      return LaunchDim{"num_splits"};
    if (dim == 1)
      return LaunchDim{"batch"};
    if (dim == 3)
      return LaunchDim{"seq_q"};
  } else if (name == "lse") {
    if (forms.varlen)
      return dim == 1 ? std::optional(LaunchDim{"total_q"}) : std::nullopt;
    if (dim == 0)
      return LaunchDim{"batch"};
    if (dim == 2)
      return LaunchDim{"seq_q"};
  }
  return std::nullopt;
}

/// `{const = N}` and `{sym = S, mul = M, div = D}` (ceil(S * M / D)) of the
/// metadata's grid.
DictionaryAttr constantDim(Builder &b, int64_t value) {
  return b.getDictionaryAttr(
      {b.getNamedAttr("const", b.getI64IntegerAttr(value))});
}
DictionaryAttr symbolDim(Builder &b, StringRef symbol, int64_t mul = 1,
                         int64_t div = 1) {
  SmallVector<NamedAttribute> entries = {
      b.getNamedAttr("sym", b.getStringAttr(symbol))};
  if (mul != 1)
    entries.push_back(b.getNamedAttr("mul", b.getI64IntegerAttr(mul)));
  if (div != 1)
    entries.push_back(b.getNamedAttr("div", b.getI64IntegerAttr(div)));
  return b.getDictionaryAttr(entries);
}

/// The grid dimension (0 = x, 1 = y, 2 = z) of a forall's block mapping.
unsigned getBlockDimension(Attribute mapping) {
  auto id = cast<gpu::GPUBlockMappingAttr>(mapping).getBlock();
  return static_cast<int>(id) - static_cast<int>(gpu::MappingId::DimX);
}

/// One forall of blocks and what its kernel is made of.
struct Blocks {
  mutable scf::ForallOp forall;
  ScheduleAttr schedule;
  DictionaryAttr config;
  StringRef role;
  TensorForms forms;
  /// The captured memrefs with their parameter names, and the captured
  /// scalars.
  SmallVector<std::pair<Value, StringRef>> memrefs;
  SmallVector<Value> scalars;
  /// The host values of the launch sizes that gqa.launch_size ops name.
  llvm::StringMap<Value> namedSizes;

  bool configBool(StringRef key) const {
    return cast<BoolAttr>(config.get(key)).getValue();
  }
  int64_t configInt(StringRef key) const {
    return cast<IntegerAttr>(config.get(key)).getInt();
  }
};

FailureOr<Blocks> analyze(scf::ForallOp forall) {
  Blocks blocks;
  blocks.forall = forall;
  blocks.schedule = forall->getAttrOfType<ScheduleAttr>(kBlockScheduleAttrName);
  blocks.config = forall->getAttrOfType<DictionaryAttr>(kBlockConfigAttrName);
  auto role = forall->getAttrOfType<StringAttr>(kBlockRoleAttrName);
  // A merge of gqa.merge_states has no schedule: its block shape is fixed.
  bool merge = role && role.getValue() == "merge";
  if ((!blocks.schedule && !merge) || !blocks.config || !role)
    return forall.emitOpError()
           << "is not a forall of blocks of gqa-distribute (it needs "
           << kBlockScheduleAttrName << ", " << kBlockConfigAttrName << " and "
           << kBlockRoleAttrName << ")";
  blocks.role = role.getValue();
  auto layoutName = dyn_cast_or_null<StringAttr>(blocks.config.get("layout"));
  std::optional<Layout> layout =
      layoutName ? symbolizeLayout(layoutName.getValue()) : std::nullopt;
  if (!layout)
    return forall.emitOpError() << "has a config without a layout";
  Attribute pageSize = blocks.config.get("page_size");
  if (!merge && !isa_and_nonnull<IntegerAttr>(pageSize))
    return forall.emitOpError() << "has a config without an integer "
                                   "'page_size'";
  for (StringRef key : {"varlen", "packed_kv"})
    if ((!merge || key == "varlen") &&
        !isa_and_nonnull<BoolAttr>(blocks.config.get(key)))
      return forall.emitOpError()
             << "has a config without a boolean '" << key << "'";
  blocks.forms.layout = *layout;
  blocks.forms.merge = merge;
  blocks.forms.varlen = blocks.configBool("varlen");
  if (!merge) {
    blocks.forms.pageSize = blocks.configInt("page_size");
    blocks.forms.packedKV = blocks.configBool("packed_kv");
  }
  // Each K/V tile has one role (and a buffer of its own).
  WalkResult roles = forall.getBody()->walk([&](LoadKVTileOp load) {
    if (isKeyTile(load))
      return WalkResult::advance();
    load.emitOpError()
        << "must be either the key of a gqa.scores or the value of a "
           "gqa.accumulate (a key and value read by one load, as CSE makes "
           "of K = V, cannot share a buffer)";
    return WalkResult::interrupt();
  });
  if (roles.wasInterrupted())
    return failure();
  llvm::SetVector<Value> captured;
  getUsedValuesDefinedAbove(forall.getRegion(), captured);
  for (Value value : captured) {
    if (!isa<MemRefType>(value.getType())) {
      blocks.scalars.push_back(value);
      continue;
    }
    SmallVector<StringRef> names = namesOf(value, forall.getRegion());
    // K and V may be one memref, and a merge's output may be either part.
    auto isPair = [&](StringRef first, StringRef second) {
      return names.size() == 2 && llvm::is_contained(names, first) &&
             llvm::is_contained(names, second);
    };
    bool shared =
        isPair("k", "v") || isPair("out", "out_a") || isPair("out", "out_b");
    if (names.size() > 1 && !shared)
      return forall.emitOpError() << "uses one memref as both '" << names[0]
                                  << "' and '" << names[1] << "'";
    if (names.empty())
      return forall.emitOpError()
             << "uses a memref whose role the kernel cannot tell";
    if (!cast<MemRefType>(value.getType()).getLayout().isIdentity())
      return forall.emitOpError()
             << "uses a non-contiguous memref for '" << names[0]
             << "'; the kernels take contiguous tensors";
    for (StringRef name : names)
      blocks.memrefs.push_back({value, name});
  }
  // The named launch sizes the blocks (or their grid) are computed from.
  SmallVector<Value> roots(blocks.scalars);
  for (OpFoldResult bound : forall.getMixedUpperBound())
    if (auto value = dyn_cast<Value>(bound))
      roots.push_back(value);
  for (Value root : roots) {
    llvm::SetVector<Operation *> slice;
    (void)getBackwardSlice(root, &slice);
    // The slice leaves out the root's own definition.
    if (Operation *def = root.getDefiningOp())
      slice.insert(def);
    for (Operation *op : slice)
      if (auto size = dyn_cast<LaunchSizeOp>(op))
        blocks.namedSizes[size.getName()] = size.getValue();
  }
  return blocks;
}

/// The pointer parameters of `blocks`' kernel, in order, and its sizes.
std::pair<SmallVector<std::pair<StringRef, Value>>, SmallVector<StringRef>>
getParameters(const Blocks &blocks) {
  SmallVector<std::pair<StringRef, Value>> pointers;
  bool combine = blocks.role == "combine";
  ArrayRef<StringLiteral> order = kAttentionPointers;
  if (combine)
    order = kCombinePointers;
  else if (blocks.forms.merge)
    order = kMergePointers;
  for (StringRef name : order)
    for (auto [value, memrefName] : blocks.memrefs)
      if (memrefName == name)
        pointers.push_back({name, value});
  SmallVector<StringRef> sizes;
  if (blocks.forms.merge) {
    sizes = {"batch", "seq_q"};
  } else if (combine) {
    sizes = {"batch", "seq_q", "num_splits"};
    if (blocks.forms.varlen)
      sizes.push_back("total_q");
  } else {
    sizes = {"batch", "seq_q", "seq_kv"};
    if (blocks.forms.varlen)
      sizes.push_back("total_q");
    if (blocks.forms.packedKV)
      sizes.push_back("total_kv");
    if (blocks.forms.pageSize)
      sizes.push_back("num_pages");
    if (blocks.role == "split")
      sizes.push_back("num_splits");
  }
  return {pointers, sizes};
}

/// The kernel's target for the element type of the block's tiles (a merge
/// or combine, on the CUDA cores without tiles, uses none of it).
std::unique_ptr<TileTarget> createTarget(const Blocks &blocks) {
  auto dtype = cast<StringAttr>(blocks.config.get("dtype")).getValue();
  if (dtype == "f32" || blocks.forms.merge)
    return createSIMTTarget(blocks.schedule);
  return createTensorCoreTarget(blocks.schedule);
}

class KernelOutliner {
public:
  explicit KernelOutliner(ModuleOp module) : module(module) {}

  LogicalResult outline(scf::ForallOp forall) {
    FailureOr<Blocks> analyzed = analyze(forall);
    if (failed(analyzed))
      return failure();
    Blocks &blocks = *analyzed;
    OpBuilder builder(forall);
    Location loc = forall.getLoc();
    bool combine = blocks.role == "combine", merge = blocks.forms.merge;
    if (!combine || !gpuModule)
      createModule(builder, blocks);
    auto [pointers, sizeNames] = getParameters(blocks);

    // The kernel and its parameters.
    SmallVector<Type> types;
    SmallVector<Attribute> names;
    for (auto [name, value] : pointers) {
      types.push_back(MemRefType::get(
          {1}, cast<MemRefType>(value.getType()).getElementType()));
      names.push_back(builder.getStringAttr(name));
    }
    for (StringRef name : sizeNames) {
      types.push_back(builder.getI64Type());
      names.push_back(builder.getStringAttr(name));
    }
    StringRef kernelName = combine                  ? kCombineName
                           : merge                  ? kMergeName
                           : blocks.role == "split" ? kSplitName
                                                    : kMainName;
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(gpuModule.getBody());
    auto func = gpu::GPUFuncOp::create(
        builder, loc, kernelName,
        FunctionType::get(builder.getContext(), types, {}));
    func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                  builder.getUnitAttr());
    func->setAttr(kParamsAttr, builder.getArrayAttr(names));
    func->setAttr(kRoleAttr, builder.getStringAttr(blocks.role));
    builder.setInsertionPointToEnd(&func.getBody().front());
    auto returnOp = gpu::ReturnOp::create(builder, loc);

    ImplicitLocOpBuilder b(loc, builder);
    b.setInsertionPoint(returnOp);
    KernelBuilder k(b, func);
    std::unique_ptr<TileTarget> target = createTarget(blocks);
    BlockLowering lowering(k, *target, blocks.schedule);
    if (failed(mapParameters(lowering, blocks, pointers, sizeNames)))
      return failure();
    // The block ids.
    for (auto [iv, mapping] :
         llvm::zip_equal(forall.getInductionVars(), *forall.getMapping()))
      lowering.scalars.map(iv, k.blockId(static_cast<gpu::Dimension>(
                                   getBlockDimension(mapping))));
    int64_t threads = 0;
    if (combine) {
      CombineSplitsOp op;
      forall.getBody()->walk([&](CombineSplitsOp found) { op = found; });
      if (!op)
        return forall.emitOpError() << "combines nothing";
      threads = getCombineThreads(op);
      func->setAttr(kDynamicSharedMemoryAttr, builder.getI64IntegerAttr(0));
    } else if (merge) {
      MergeRowsOp op;
      forall.getBody()->walk([&](MergeRowsOp found) { op = found; });
      if (!op)
        return forall.emitOpError() << "merges nothing";
      threads = getMergeThreads(op);
      func->setAttr(kDynamicSharedMemoryAttr, builder.getI64IntegerAttr(0));
    } else {
      if (failed(target->prepare(lowering, forall)))
        return failure();
      threads = target->threads();
    }
    // Captured splat tiles, in the fragments of the target's layout.
    for (Value scalar : blocks.scalars)
      if (isa<RankedTensorType>(scalar.getType()))
        if (failed(lowering.lowerOp(scalar.getDefiningOp())))
          return failure();
    if (failed(lowering.lowerBody(*forall.getBody())))
      return failure();
    if (!combine && !merge)
      func->setAttr(kDynamicSharedMemoryAttr,
                    builder.getI64IntegerAttr(target->sharedMemoryBytes()));
    func.setKnownBlockSizeAttr(
        builder.getDenseI32ArrayAttr({static_cast<int32_t>(threads), 1, 1}));
    describeKernel(builder, func, blocks);
    launch(forall, func, blocks, pointers, sizeNames, threads);
    return success();
  }

private:
  void createModule(OpBuilder &builder, const Blocks &blocks) {
    OpBuilder::InsertionGuard guard(builder);
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    builder.getUnitAttr());
    std::string name = kModuleName.str();
    for (int suffix = 1; SymbolTable::lookupSymbolIn(module, name); ++suffix)
      name = (kModuleName + "_" + Twine(suffix)).str();
    builder.setInsertionPointToEnd(module.getBody());
    Location loc = blocks.forall.getLoc();
    gpuModule = gpu::GPUModuleOp::create(builder, loc, name);
    gpuModule->setAttr(kConfigAttr, blocks.config);
    if (blocks.schedule)
      gpuModule->setAttr(
          kSplitKVAttr,
          builder.getDictionaryAttr({builder.getNamedAttr(
              "max_splits",
              builder.getI64IntegerAttr(blocks.schedule.getMaxSplits()))}));
    builder.setInsertionPointToStart(gpuModule.getBody());
    // The extern dynamic shared array: `.extern .shared .align 16 .b8
    // gqa_smem[]` (gpu.dynamic_shared_memory would become a function-local
    // array).
    memref::GlobalOp::create(
        builder, loc, kSharedMemoryName, builder.getStringAttr("public"),
        MemRefType::get({0}, builder.getI8Type(), MemRefLayoutAttrInterface(),
                        builder.getI64IntegerAttr(3)),
        /*initial_value=*/Attribute(), /*constant=*/false,
        builder.getI64IntegerAttr(16));
  }

  /// The kernel's views of the captured memrefs, and its values of the
  /// captured scalars.
  LogicalResult mapParameters(BlockLowering &lowering, const Blocks &blocks,
                              ArrayRef<std::pair<StringRef, Value>> pointers,
                              ArrayRef<StringRef> sizeNames) {
    KernelBuilder &k = lowering.k;
    llvm::StringMap<Value> sizes;
    for (StringRef name : sizeNames)
      sizes[name] = k.cast(k.param(name), k.b.getIndexType());
    for (auto [name, memref] : pointers) {
      // K and V of one memref: one view.
      if (lowering.tensors.count(memref))
        continue;
      auto type = cast<MemRefType>(memref.getType());
      KernelTensor view;
      for (unsigned dim = 0; dim < type.getRank(); ++dim) {
        if (!type.isDynamicDim(dim)) {
          view.sizes.push_back(k.index(type.getDimSize(dim)));
          continue;
        }
        std::optional<LaunchDim> size = sizeOfDim(name, dim, blocks.forms);
        if (!size || !sizes.count(size->size))
          return blocks.forall.emitOpError()
                 << "uses '" << name << "' with a dynamic dimension " << dim
                 << " that no launch size gives";
        Value value = sizes[size->size];
        if (size->divisor != 1)
          value = k.divu(value, size->divisor);
        view.sizes.push_back(size->plus ? k.add(value, size->plus) : value);
      }
      view.strides.assign(type.getRank(), k.index(1));
      for (int dim = type.getRank() - 2; dim >= 0; --dim)
        view.strides[dim] = k.mul(view.strides[dim + 1], view.sizes[dim + 1]);
      Value elements =
          type.getRank() ? k.mul(view.strides[0], view.sizes[0]) : k.index(1);
      view.flat = k.globalView(k.param(name), elements);
      // A workspace allocated by the host is sized by host values: the
      // kernel's are its sizes.
      Value root = memref;
      while (auto cast = root.getDefiningOp<memref::CastOp>())
        root = cast.getSource();
      if (auto alloc = root.getDefiningOp<memref::AllocOp>()) {
        unsigned next = 0;
        for (unsigned dim = 0; dim < type.getRank(); ++dim)
          if (alloc.getType().isDynamicDim(dim))
            lowering.scalars.map(alloc.getDynamicSizes()[next++],
                                 view.sizes[dim]);
      }
      lowering.tensors[memref] = std::move(view);
    }
    for (Value scalar : blocks.scalars)
      if (failed(rematerialize(lowering, scalar, blocks, sizes)))
        return failure();
    return success();
  }

  /// Recomputes host scalar `value` in the kernel from the sizes.
  LogicalResult rematerialize(BlockLowering &lowering, Value value,
                              const Blocks &blocks,
                              const llvm::StringMap<Value> &sizes) {
    if (lowering.scalars.contains(value))
      return success();
    Operation *def = value.getDefiningOp();
    // A splat tile constant (an init of the loop state): lowered once the
    // target has laid out its fragments.
    if (isa<RankedTensorType>(value.getType()) && def &&
        isa<arith::ConstantOp>(def))
      return success();
    auto fail = [&] {
      return blocks.forall.emitOpError()
             << "uses a host value that its kernel cannot recompute from "
                "the launch sizes";
    };
    if (!def)
      return fail();
    if (auto size = dyn_cast<LaunchSizeOp>(def)) {
      auto it = sizes.find(size.getName());
      if (it == sizes.end())
        return blocks.forall.emitOpError()
               << "uses launch size '" << size.getName()
               << "', which its kernel does not take";
      lowering.scalars.map(value, it->second);
      return success();
    }
    if (auto dim = dyn_cast<memref::DimOp>(def)) {
      std::optional<int64_t> index = getConstantIntValue(dim.getIndex());
      auto it = lowering.tensors.find(dim.getSource());
      if (!index || it == lowering.tensors.end())
        return fail();
      lowering.scalars.map(value, it->second.sizes[*index]);
      return success();
    }
    if (def->getNumRegions() || !isMemoryEffectFree(def))
      return fail();
    for (Value operand : def->getOperands())
      if (failed(rematerialize(lowering, operand, blocks, sizes)))
        return failure();
    lowering.k.b.clone(*def, lowering.scalars);
    return success();
  }

  /// The launch attributes the metadata writer and gpusim read.
  void describeKernel(Builder &b, gpu::GPUFuncOp func, const Blocks &blocks) {
    if (blocks.forms.merge) {
      int64_t rows = getMergeRowsPerBlock(blocks.configInt("head_dim_v"));
      func->setAttr(kGridAttr,
                    b.getArrayAttr(
                        {symbolDim(b, "seq_q", blocks.configInt("heads"), rows),
                         constantDim(b, 1), symbolDim(b, "batch")}));
      return;
    }
    int64_t g = blocks.configInt("group_size");
    int64_t kvHeads = blocks.configInt("kv_heads");
    int64_t qHeads = blocks.configInt("q_heads");
    ScheduleAttr schedule = blocks.schedule;
    if (blocks.role == "combine") {
      int64_t rows = getMergeRowsPerBlock(blocks.configInt("head_dim_v"));
      func->setAttr(kGridAttr,
                    b.getArrayAttr({symbolDim(b, "seq_q", qHeads, rows),
                                    symbolDim(b, "batch"), constantDim(b, 1)}));
      return;
    }
    Attribute rowBlocks = symbolDim(b, "seq_q", g, schedule.getBlockM());
    Attribute heads = blocks.role == "split"
                          ? Attribute(symbolDim(b, "num_splits", kvHeads))
                          : Attribute(constantDim(b, kvHeads));
    func->setAttr(kGridAttr,
                  b.getArrayAttr({rowBlocks, heads, symbolDim(b, "batch")}));
    func->setAttr(kTileAttr, getTileAttr(b, getGPUTileConfig(schedule)));
    if (schedule.getMaxRegisters() > 0)
      func->setAttr("nvvm.maxnreg",
                    b.getI32IntegerAttr(schedule.getMaxRegisters()));
    if (schedule.getMinCtasPerSm() > 0)
      func->setAttr("nvvm.minctasm",
                    b.getI32IntegerAttr(schedule.getMinCtasPerSm()));
  }

  /// Replaces `forall` by the launch of `func` (none when the grid is
  /// empty).
  void launch(scf::ForallOp forall, gpu::GPUFuncOp func, const Blocks &blocks,
              ArrayRef<std::pair<StringRef, Value>> pointers,
              ArrayRef<StringRef> sizeNames, int64_t threads) {
    ImplicitLocOpBuilder b(forall.getLoc(), forall);
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, value);
    };
    // The grid: each forall dimension where its block mapping puts it.
    SmallVector<Value> grid(3, index(1));
    for (auto [bound, mapping] :
         llvm::zip_equal(forall.getMixedUpperBound(), *forall.getMapping()))
      grid[getBlockDimension(mapping)] =
          getValueOrCreateConstantIndexOp(b, b.getLoc(), bound);
    Value nonEmpty;
    for (Value size : grid) {
      Value positive =
          arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, size, index(0));
      nonEmpty =
          nonEmpty ? arith::AndIOp::create(b, nonEmpty, positive) : positive;
    }
    auto ifOp = scf::IfOp::create(b, nonEmpty, /*withElseRegion=*/false);
    b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    SmallVector<Value> operands;
    for (auto [name, memref] : pointers) {
      auto type = cast<MemRefType>(memref.getType());
      operands.push_back(memref::ReinterpretCastOp::create(
          b, MemRefType::get({1}, type.getElementType()), memref,
          OpFoldResult(b.getIndexAttr(0)),
          ArrayRef<OpFoldResult>{b.getIndexAttr(1)},
          ArrayRef<OpFoldResult>{b.getIndexAttr(1)}));
    }
    for (StringRef size : sizeNames)
      operands.push_back(arith::IndexCastOp::create(
          b, b.getI64Type(), hostSize(b, blocks, pointers, size)));
    int64_t sharedBytes =
        cast<IntegerAttr>(func->getAttr(kDynamicSharedMemoryAttr)).getInt();
    // On a stream of its own, awaited (the async forms are the ones
    // gpu-to-llvm lowers to the runtime's calls).
    Type token = b.getType<gpu::AsyncTokenType>();
    Value start = gpu::WaitOp::create(b, token, ValueRange{}).getAsyncToken();
    Value done = gpu::LaunchFuncOp::create(b, func, {grid[0], grid[1], grid[2]},
                                           {index(threads), index(1), index(1)},
                                           arith::ConstantIntOp::create(
                                               b, b.getI32Type(), sharedBytes),
                                           operands, token, ValueRange{start})
                     .getAsyncToken();
    gpu::WaitOp::create(b, Type(), ValueRange{done});
    forall.erase();
  }

  /// The host value of launch size `size`: the value a gqa.launch_size
  /// names, or a dimension of a parameter.
  Value hostSize(ImplicitLocOpBuilder &b, const Blocks &blocks,
                 ArrayRef<std::pair<StringRef, Value>> pointers,
                 StringRef size) {
    if (Value named = blocks.namedSizes.lookup(size))
      return named;
    for (auto [name, memref] : pointers) {
      auto type = cast<MemRefType>(memref.getType());
      for (unsigned dim = 0; dim < type.getRank(); ++dim) {
        std::optional<LaunchDim> found = sizeOfDim(name, dim, blocks.forms);
        if (!found || found->size != size)
          continue;
        Value value = memref::DimOp::create(b, memref, dim);
        if (found->plus)
          value = arith::SubIOp::create(
              b, value, arith::ConstantIndexOp::create(b, found->plus));
        if (found->divisor != 1)
          value = arith::MulIOp::create(
              b, value, arith::ConstantIndexOp::create(b, found->divisor));
        return value;
      }
    }
    // Not a size of any parameter the kernel takes: any value will do.
    return arith::ConstantIndexOp::create(b, 0);
  }

  ModuleOp module;
  /// The module of the attention op whose blocks were lowered last (a
  /// combine follows its split kernel).
  gpu::GPUModuleOp gpuModule;
};

/// The host's workspaces become device memory, freed when the function
/// returns.
void allocateWorkspacesOnDevice(func::FuncOp func) {
  SmallVector<memref::AllocOp> allocs;
  func.walk([&](memref::AllocOp alloc) { allocs.push_back(alloc); });
  for (memref::AllocOp alloc : allocs) {
    ImplicitLocOpBuilder b(alloc.getLoc(), alloc);
    Type token = b.getType<gpu::AsyncTokenType>();
    Value ready = gpu::WaitOp::create(b, token, ValueRange{}).getAsyncToken();
    auto device =
        gpu::AllocOp::create(b, alloc.getType(), token, ValueRange{ready},
                             alloc.getDynamicSizes(), ValueRange{});
    gpu::WaitOp::create(b, Type(), ValueRange{device.getAsyncToken()});
    alloc.replaceAllUsesWith(device.getMemref());
    alloc.erase();
    func.walk([&](func::ReturnOp ret) {
      b.setInsertionPoint(ret);
      Value start = gpu::WaitOp::create(b, token, ValueRange{}).getAsyncToken();
      Value freed = gpu::DeallocOp::create(b, token, ValueRange{start},
                                           device.getMemref())
                        .getAsyncToken();
      gpu::WaitOp::create(b, Type(), ValueRange{freed});
    });
  }
}

struct ConvertGQATilesToGPUPass
    : public gqa::impl::ConvertGQATilesToGPUBase<ConvertGQATilesToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (auto func : llvm::to_vector(module.getOps<func::FuncOp>())) {
      SmallVector<scf::ForallOp> foralls;
      func.walk<WalkOrder::PreOrder>([&](scf::ForallOp forall) {
        if (!forall->hasAttr(kBlockRoleAttrName))
          return WalkResult::advance();
        foralls.push_back(forall);
        return WalkResult::skip();
      });
      if (foralls.empty())
        continue;
      KernelOutliner outliner(module);
      for (scf::ForallOp forall : foralls)
        if (failed(outliner.outline(forall)))
          return signalPassFailure();
      allocateWorkspacesOnDevice(func);
    }
  }
};

} // namespace
