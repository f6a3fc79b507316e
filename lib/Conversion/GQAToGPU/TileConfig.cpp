//===- TileConfig.cpp - What the GPU path supports, and its tiles ---------===//

#include "KernelBuilder.h"
#include "gqa/Conversion/GQAToGPU/GQAToGPU.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Transforms.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::gqa;

/// The most dynamic shared memory a CTA may opt into on sm_80 (163 KiB), the
/// smaller of the two chips the kernels are built for.
static constexpr int64_t kMaxSharedMemoryBytes = 163 * 1024;
/// CUDA's limit on grid dimensions y and z.
static constexpr int64_t kMaxGridYZ = 65535;

int64_t mlir::gqa::getAttentionSharedMemoryBytes(const GPUTileConfig &tile,
                                                 int64_t headDim,
                                                 int64_t headDimV, bool f32) {
  if (f32) // K rows padded by one element.
    return 4 * (tile.blockM * headDim + tile.blockN * (headDim + 1) +
                tile.blockN * headDimV);
  return 2 * (tile.blockM * headDim + tile.blockN * headDim +
              tile.blockN * headDimV);
}

GQAToGPUOptions
mlir::gqa::getEffectiveGPUOptions(AttentionOp op,
                                  const GQAToGPUOptions &options) {
  ScheduleAttr schedule = op.getScheduleAttr();
  if (!schedule)
    return options;
  GQAToGPUOptions effective;
  effective.tile = {schedule.getBlockM(), schedule.getBlockN(),
                    schedule.getMaxRegisters(), schedule.getMinCtasPerSm()};
  effective.maxSplits = schedule.getMaxSplits();
  return effective;
}

GPUTileConfig mlir::gqa::getGPUTileConfig(ScheduleAttr schedule) {
  GPUTileConfig tile;
  tile.blockM = schedule.getBlockM();
  tile.blockN = schedule.getBlockN();
  tile.warps = schedule.getWarps();
  tile.stages = schedule.getStages();
  tile.qInRegisters = schedule.getQInRegisters();
  tile.maxRegisters = schedule.getMaxRegisters();
  tile.minCTAsPerSM = schedule.getMinCtasPerSm();
  return tile;
}

DictionaryAttr mlir::gqa::gpu_kernel::getTileAttr(Builder &b,
                                                  const GPUTileConfig &tile) {
  return b.getDictionaryAttr({
      b.getNamedAttr("block_m", b.getI64IntegerAttr(tile.blockM)),
      b.getNamedAttr("block_n", b.getI64IntegerAttr(tile.blockN)),
      b.getNamedAttr("warps", b.getI64IntegerAttr(tile.warps)),
      b.getNamedAttr("stages", b.getI64IntegerAttr(tile.stages)),
      b.getNamedAttr("pack_gqa", b.getBoolAttr(true)),
      b.getNamedAttr("q_in_registers", b.getBoolAttr(tile.qInRegisters)),
      b.getNamedAttr("max_registers", b.getI64IntegerAttr(tile.maxRegisters)),
      b.getNamedAttr("min_ctas_per_sm", b.getI64IntegerAttr(tile.minCTAsPerSM)),
  });
}

GPUTileConfig mlir::gqa::selectGPUTileConfig(AttentionOp op,
                                             const GPUTileOptions &options) {
  // The schedule on the op, or the one gqa-select-schedule would choose for
  // the GPU with these options (the sm_80 and sm_90 choices are the same).
  ScheduleAttr schedule = op.getScheduleAttr();
  if (!schedule) {
    ScheduleOptions choice;
    choice.target = "sm_90";
    choice.blockM = options.blockM;
    choice.blockN = options.blockN;
    choice.maxSplits = 0;
    choice.maxRegisters = options.maxRegisters;
    choice.minCTAsPerSM = options.minCTAsPerSM;
    schedule = selectSchedule(op, choice);
    // Only out-of-range forced sizes give none, and getGPUUnsupportedReason
    // refuses those first.
    if (!schedule)
      return GPUTileConfig();
  }
  return getGPUTileConfig(schedule);
}

std::string mlir::gqa::getGPUUnsupportedReason(AttentionOp op,
                                               const GQAToGPUOptions &given) {
  std::string reason;
  llvm::raw_string_ostream os(reason);
  if (!op.hasPureBufferSemantics()) {
    os << "the GPU path expects gqa.attention on memrefs; run "
          "one-shot-bufferize first";
    return reason;
  }
  if (ScheduleAttr schedule = op.getScheduleAttr();
      schedule && schedule.getTarget() == "cpu") {
    os << "the op's schedule is for the cpu; the GPU path needs a schedule "
          "for sm_80 or sm_90 (gqa-select-schedule target=sm_90)";
    return reason;
  }
  // The longest sequences of a ragged batch size the grid and the split
  // partition: the host cannot read them from offsets in device memory.
  for (auto [offsets, longest, offsetsName, longestName] :
       {std::tuple<Value, Value, StringRef, StringRef>{
            op.getCuSeqlensQ(), op.getMaxSeqlenQ(), "cu_seqlens_q",
            "max_seqlen_q"},
        {op.getCuSeqlensK(), op.getMaxSeqlenK(), "cu_seqlens_k",
         "max_seqlen_k"}}) {
    if (offsets && !longest) {
      os << "a ragged batch on the GPU needs '" << longestName << "' with '"
         << offsetsName
         << "': the longest sequence sizes the grid and the split partition, "
            "and the host cannot read it from offsets in device memory";
      return reason;
    }
  }
  const GQAToGPUOptions options = getEffectiveGPUOptions(op, given);
  bool f32 = op.getElementType().isF32();
  for (auto [what, dim] :
       {std::pair<StringRef, int64_t>{"head dim D", op.getHeadDim()},
        {"value head dim Dv", op.getHeadDimV()}}) {
    if (f32 && (dim % 4 != 0 || dim > 256)) {
      os << what << " = " << dim
         << " is not supported by the f32 GPU path (it must be a multiple of "
            "4 and at most 256)";
      return reason;
    }
    if (!f32 && (dim % 64 != 0 || dim > 256)) {
      os << what << " = " << dim
         << " is not supported by the GPU path (it must be a multiple of 64 "
            "and at most 256)";
      return reason;
    }
  }

  SmallVector<std::pair<StringRef, Value>> operands = {{"query", op.getQuery()},
                                                       {"key", op.getKey()},
                                                       {"value", op.getValue()},
                                                       {"init", op.getInit()}};
  if (op.getKvLens())
    operands.push_back({"kv_lens", op.getKvLens()});
  if (op.getBlockTable())
    operands.push_back({"block_table", op.getBlockTable()});
  if (op.getSinks())
    operands.push_back({"sinks", op.getSinks()});
  if (op.getLseInit())
    operands.push_back({"lse", op.getLseInit()});
  if (op.getCuSeqlensQ())
    operands.push_back({"cu_seqlens_q", op.getCuSeqlensQ()});
  for (auto [name, value] : operands) {
    auto type = cast<MemRefType>(value.getType());
    if (!type.getLayout().isIdentity()) {
      os << "'" << name
         << "' must be a contiguous row-major memref (identity layout) on "
            "the GPU path, got "
         << type;
      return reason;
    }
    Attribute space = type.getMemorySpace();
    auto gpuSpace = dyn_cast_or_null<gpu::AddressSpaceAttr>(space);
    if (space &&
        !(gpuSpace && gpuSpace.getValue() == gpu::AddressSpace::Global)) {
      os << "'" << name
         << "' must be in the default (global) memory space on the GPU path, "
            "got "
         << type;
      return reason;
    }
  }
  LayoutDims dims = op.getLayoutDims();
  SmallVector<std::tuple<StringRef, ShapedType, unsigned, StringRef>> sizes;
  if (op.isVarlen()) {
    if (cast<ShapedType>(op.getCuSeqlensQ().getType()).getDimSize(0) == 1) {
      os << "'cu_seqlens_q' has a static size of 1 (a batch of 0); the GPU "
            "kernels need at least 1 sequence";
      return reason;
    }
  } else {
    sizes.push_back({"query", op.getQueryType(), dims.batch, "batch size"});
    sizes.push_back({"query", op.getQueryType(), dims.seq, "sequence length"});
  }
  if (!op.isPaged())
    sizes.push_back({"key", op.getKeyType(), dims.seq, "sequence length"});
  for (auto [name, type, dim, what] : sizes) {
    if (type.getDimSize(dim) == 0) {
      os << "'" << name << "' has a static " << what
         << " of 0; the GPU kernels need at least 1";
      return reason;
    }
  }

  if (options.maxSplits < 0) {
    os << "max-splits must be >= 0 (0 disables split-KV), got "
       << options.maxSplits;
    return reason;
  }
  if (options.maxSplits * op.getKvHeads() > kMaxGridYZ) {
    os << "max-splits = " << options.maxSplits
       << " times kv_heads = " << op.getKvHeads() << " exceeds the "
       << kMaxGridYZ << " CTAs that grid dimension y may have";
    return reason;
  }
  const GPUTileOptions &tileOptions = options.tile;
  if (tileOptions.blockM < 0 || tileOptions.blockM % 16 != 0 ||
      tileOptions.blockM > 128) {
    os << "block-m = " << tileOptions.blockM
       << " is not supported (16, 32, 48, ..., 128 rows: 16 per warp; 0 "
          "chooses)";
    return reason;
  }
  if (tileOptions.blockN < 0 || tileOptions.blockN % 16 != 0 ||
      tileOptions.blockN > 128) {
    os << "block-n = " << tileOptions.blockN
       << " is not supported (a multiple of 16, at most 128; 0 chooses)";
    return reason;
  }
  if (tileOptions.maxRegisters != 0 &&
      (tileOptions.maxRegisters < 64 || tileOptions.maxRegisters > 255)) {
    os << "max-registers = " << tileOptions.maxRegisters
       << " is not supported (64 to 255; 0 leaves it to ptxas)";
    return reason;
  }
  if (tileOptions.minCTAsPerSM < 0 || tileOptions.minCTAsPerSM > 16) {
    os << "min-ctas-per-sm = " << tileOptions.minCTAsPerSM
       << " is not supported (1 to 16; 0 chooses by head dim)";
    return reason;
  }
  GPUTileConfig tile = selectGPUTileConfig(op, tileOptions);
  if (f32 && (tile.blockM != 16 || tile.blockN != 32)) {
    os << "block-m and block-n are fixed at 16 and 32 on the f32 path, got "
       << tile.blockM << " and " << tile.blockN;
    return reason;
  }
  int64_t warps = f32 ? 4 : tile.blockM / 16;
  if (tile.warps != warps || tile.stages != 1) {
    os << "the schedule's warps = " << tile.warps
       << " and stages = " << tile.stages
       << " are not supported (the kernel runs " << warps
       << " warps for block-m = " << tile.blockM << ", one stage)";
    return reason;
  }
  for (auto [what, rows, width] : {std::tuple<StringRef, int64_t, int64_t>{
                                       "Q", tile.blockM, op.getHeadDim()},
                                   {"K", tile.blockN, op.getHeadDim()},
                                   {"V", tile.blockN, op.getHeadDimV()}}) {
    int64_t chunks = rows * width / 8;
    if (!f32 && chunks % tile.threads() != 0) {
      os << "block-m = " << tile.blockM << " and block-n = " << tile.blockN
         << " give a " << what << " tile of " << chunks
         << " 16-byte chunks, not a multiple of the " << tile.threads()
         << " threads that copy it";
      return reason;
    }
  }
  int64_t sharedBytes = getAttentionSharedMemoryBytes(tile, op.getHeadDim(),
                                                      op.getHeadDimV(), f32);
  if (sharedBytes > kMaxSharedMemoryBytes) {
    os << "block-m = " << tile.blockM << " and block-n = " << tile.blockN
       << " need " << sharedBytes << " bytes of shared memory, more than the "
       << kMaxSharedMemoryBytes << " an sm_80 CTA may have";
    return reason;
  }
  return reason;
}
