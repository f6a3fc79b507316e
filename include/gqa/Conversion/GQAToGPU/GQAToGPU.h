//===- GQAToGPU.h - gqa.attention to GPU kernels ----------------*- C++ -*-===//
//
// The lowering of bufferized gqa.attention ops to mma.sync FlashAttention-2
// kernels in a gpu.module plus their host-side launches, and the names of
// the attributes through which the kernels describe themselves to the
// metadata writer (gqa/Target/KernelMetadata.h).
//
//===----------------------------------------------------------------------===//

#ifndef GQA_CONVERSION_GQATOGPU_GQATOGPU_H
#define GQA_CONVERSION_GQATOGPU_GQATOGPU_H

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::gqa {

class AttentionOp;
class ScheduleAttr;

/// Tile settings a user may force; 0 leaves the choice to the head dim.
struct GPUTileOptions {
  /// Packed query rows per CTA (16 per warp).
  int64_t blockM = 0;
  /// Keys per KV tile.
  int64_t blockN = 0;
  /// Register cap per thread of the attention kernel (`nvvm.maxnreg`).
  int64_t maxRegisters = 0;
  /// The occupancy ptxas must allow: CTAs per SM (`nvvm.minctasm`).
  int64_t minCTAsPerSM = 0;
};

/// Options of the GQA-to-GPU conversion.
struct GQAToGPUOptions {
  GPUTileOptions tile;
  /// At most this many KV splits (Flash-Decoding); 0 disables split-KV.
  int64_t maxSplits = 0;
};

/// The tile configuration of one op's attention kernel.
struct GPUTileConfig {
  int64_t blockM = 64;
  int64_t blockN = 64;
  int64_t warps = 4;
  /// Shared-memory buffers per K and per V tile (the FA2 schedule overlaps
  /// the loads of single buffers).
  int64_t stages = 1;
  /// Whether the Q fragments stay in registers across the KV loop (else
  /// they are re-read from shared memory at every k-step).
  bool qInRegisters = true;
  /// `nvvm.maxnreg`, or 0 for none.
  int64_t maxRegisters = 0;
  /// `nvvm.minctasm` (PTX `.minnctapersm`): ptxas keeps the registers low
  /// enough for this many CTAs per SM. Without it, ptxas picks its own
  /// target and sometimes spills (16-32 bytes for some D = 128 variants on
  /// sm_80) to reach 3 CTAs.
  int64_t minCTAsPerSM = 2;

  int64_t threads() const { return 32 * warps; }
};

/// The options `op` compiles with: those of its schedule when it has one
/// (gqa-select-schedule), else `options`.
GQAToGPUOptions getEffectiveGPUOptions(AttentionOp op,
                                       const GQAToGPUOptions &options);

/// Why the GPU path cannot compile `op` with `options` (an empty string when
/// it can). The message names what is unsupported and its value.
std::string getGPUUnsupportedReason(AttentionOp op,
                                    const GQAToGPUOptions &options);

/// The tile configuration of `op`'s attention kernel: its schedule, or the
/// GPU schedule gqa-select-schedule would choose with the forced values of
/// `options`. Only meaningful
/// when getGPUUnsupportedReason(op, options) is empty.
/// The GPU tiles of a schedule.
GPUTileConfig getGPUTileConfig(ScheduleAttr schedule);

GPUTileConfig selectGPUTileConfig(AttentionOp op,
                                  const GPUTileOptions &options);

/// Bytes of dynamic shared memory of the attention kernel: the Q, K and V
/// tiles (BM x D, BN x D and BN x Dv elements of 2 bytes; of 4 bytes for
/// the f32 kernel, whose K rows have one element of padding).
int64_t getAttentionSharedMemoryBytes(const GPUTileConfig &tile,
                                      int64_t headDim, int64_t headDimV,
                                      bool f32 = false);

/// Adds the passes that take scheduled ops through the tiled form
/// into kernels: gqa-distribute, gqa-prefetch-keys,
/// convert-gqa-tiles-to-gpu, and the index math into arith.
void addTiledGPUPasses(OpPassManager &pm);

/// Names of the kernels and of the attributes the conversion attaches.
namespace gpu_kernel {
/// PTX entry names, per role.
constexpr llvm::StringLiteral kMainName = "gqa_attention_fwd";
constexpr llvm::StringLiteral kSplitName = "gqa_attention_fwd_split";
constexpr llvm::StringLiteral kCombineName = "gqa_attention_combine";
constexpr llvm::StringLiteral kMergeName = "gqa_merge_states";
/// The name of the first generated gpu.module (then `_1`, `_2`, ...).
constexpr llvm::StringLiteral kModuleName = "gqa_kernels";
/// The extern dynamic shared-memory array of every module.
constexpr llvm::StringLiteral kSharedMemoryName = "gqa_smem";

/// On the gpu.module: the configuration (a dictionary with the keys of the
/// metadata's `config`; `batch`, `seq_q`, `seq_kv` only where static).
constexpr llvm::StringLiteral kConfigAttr = "gqa.config";
/// On the gpu.module of an attention op: `{max_splits = N}`.
constexpr llvm::StringLiteral kSplitKVAttr = "gqa.split_kv";
/// On each gpu.func: `"main"`, `"split"` or `"combine"`.
constexpr llvm::StringLiteral kRoleAttr = "gqa.role";
/// On the attention gpu.func: the tile (`block_m`, `block_n`, `warps`,
/// `stages`, `pack_gqa`, `q_in_registers`, `max_registers`,
/// `min_ctas_per_sm`).
constexpr llvm::StringLiteral kTileAttr = "gqa.tile";
/// On each gpu.func: three grid dimensions, each `{const = N}` or
/// `{sym = "seq_q", mul = M, add = A, div = D}`.
constexpr llvm::StringLiteral kGridAttr = "gqa.grid";
/// On each gpu.func: the parameter names, in order.
constexpr llvm::StringLiteral kParamsAttr = "gqa.params";
/// On each gpu.func: bytes of dynamic shared memory at launch.
constexpr llvm::StringLiteral kDynamicSharedMemoryAttr =
    "gqa.dynamic_shared_memory_bytes";
} // namespace gpu_kernel

} // namespace mlir::gqa

#endif // GQA_CONVERSION_GQATOGPU_GQATOGPU_H
