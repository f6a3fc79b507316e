/*===- gqa/Runtime/Runtime.h - Load and launch gqa kernels ------*- C -*-===*\
|*                                                                            *|
|* The C ABI of the gqa runtime: it loads the PTX and metadata JSON that      *|
|* gqa-compile emits (docs/kernel-metadata.md) and launches the kernels on a  *|
|* caller's CUDA stream through the CUDA driver API, which it opens with      *|
|* dlopen at run time. The header is plain C; it needs neither cuda.h nor     *|
|* anything of LLVM or MLIR.                                                  *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef GQA_RUNTIME_RUNTIME_H
#define GQA_RUNTIME_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define GQA_RUNTIME_API __attribute__((visibility("default")))
#else
#define GQA_RUNTIME_API
#endif

/// Declares an enumeration whose underlying type is int in C++ too, as it is
/// in C: any int a C or ctypes caller passes is then a value of the type.
#ifdef __cplusplus
#define GQA_INT_ENUM_BASE : int
#else
#define GQA_INT_ENUM_BASE
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// The version of this ABI. It changes whenever a declaration below changes
/// incompatibly; bindings (python/gqa) compare it with
/// gqa_runtime_abi_version() before using the library.
#define GQA_RUNTIME_ABI_VERSION 4

/// The environment variable naming the CUDA driver library to dlopen when
/// gqa_runtime_create_with_driver is given NULL (default: "libcuda.so.1").
#define GQA_CUDA_DRIVER_LIBRARY_ENV "GQA_CUDA_DRIVER_LIBRARY"

//===----------------------------------------------------------------------===//
// Status and errors
//===----------------------------------------------------------------------===//

/// The outcome of every call that can fail. On failure the call also sets a
/// message for the calling thread (gqa_last_error_message) naming what was
/// being done and why it failed.
typedef enum gqa_status GQA_INT_ENUM_BASE {
  GQA_SUCCESS = 0,
  /// A handle or pointer is NULL, or the launch arguments contradict the
  /// kernel's metadata or each other.
  GQA_ERROR_INVALID_ARGUMENT = 1,
  /// The metadata JSON is malformed or breaks docs/kernel-metadata.md.
  GQA_ERROR_INVALID_METADATA = 2,
  /// A file could not be read.
  GQA_ERROR_IO = 3,
  /// The CUDA driver library could not be opened, or lacks an entry point.
  GQA_ERROR_DRIVER_UNAVAILABLE = 4,
  /// A CUDA driver call failed; the message names the call and the CUresult.
  GQA_ERROR_CUDA = 5,
  /// The kernel was compiled for a chip the device cannot run.
  GQA_ERROR_UNSUPPORTED_DEVICE = 6,
  /// Host or device memory ran out.
  GQA_ERROR_OUT_OF_MEMORY = 7,
  /// A bug in the runtime (an unexpected C++ exception was caught).
  GQA_ERROR_INTERNAL = 8
} gqa_status;

/// The enumerator's name ("GQA_ERROR_CUDA"), or "GQA_STATUS_UNKNOWN".
GQA_RUNTIME_API const char *gqa_status_name(gqa_status status);

/// The message of the calling thread's most recent failed call, or "" when
/// the most recent call succeeded. Every call that returns a gqa_status
/// resets it. The string stays valid until the thread's next such call.
GQA_RUNTIME_API const char *gqa_last_error_message(void);

/// GQA_RUNTIME_ABI_VERSION of the library actually loaded.
GQA_RUNTIME_API int32_t gqa_runtime_abi_version(void);

//===----------------------------------------------------------------------===//
// Enumerations shared with the metadata
//===----------------------------------------------------------------------===//

/// The element type of q, k, v and out (metadata config.dtype). Zero is left
/// unused so that a zero-initialised gqa_launch_args is detectably unset.
typedef enum gqa_dtype GQA_INT_ENUM_BASE {
  GQA_DTYPE_F16 = 1,
  GQA_DTYPE_BF16 = 2,
  GQA_DTYPE_F32 = 3
} gqa_dtype;

/// The layout of all four tensors (metadata config.layout); zero is unused.
typedef enum gqa_layout GQA_INT_ENUM_BASE {
  GQA_LAYOUT_BHSD = 1, ///< (batch, heads, seq, dim): PyTorch SDPA.
  GQA_LAYOUT_BSHD = 2  ///< (batch, seq, heads, dim): FlashAttention.
} gqa_layout;

/// The mask the kernel applies (metadata config.mask).
typedef enum gqa_mask GQA_INT_ENUM_BASE {
  GQA_MASK_NONE = 0,
  GQA_MASK_CAUSAL = 1,
  GQA_MASK_WINDOW = 2
} gqa_mask;

/// Whether the kernel takes per-batch KV lengths, and their element type
/// (metadata config.kv_lens).
typedef enum gqa_kv_lens_type GQA_INT_ENUM_BASE {
  GQA_KV_LENS_NONE = 0,
  GQA_KV_LENS_I32 = 1,
  GQA_KV_LENS_I64 = 2
} gqa_kv_lens_type;

/// The role of one kernel of a launch (metadata kernels[i].role).
typedef enum gqa_kernel_role GQA_INT_ENUM_BASE {
  GQA_KERNEL_ROLE_MAIN = 1,
  GQA_KERNEL_ROLE_SPLIT = 2,
  GQA_KERNEL_ROLE_COMBINE = 3,
  /// The one kernel of a merge_states set (gqa_kernel_merge_states).
  GQA_KERNEL_ROLE_MERGE = 4
} gqa_kernel_role;

/// What a kernel set computes (the metadata's "format"): attention
/// ("gqa.kernel"), or the merge of two partial attention results by their
/// log-sum-exps ("gqa.merge_states").
typedef enum gqa_kernel_set_kind GQA_INT_ENUM_BASE {
  GQA_KERNEL_SET_ATTENTION = 1,
  GQA_KERNEL_SET_MERGE_STATES = 2
} gqa_kernel_set_kind;

//===----------------------------------------------------------------------===//
// Parsed metadata (no GPU needed)
//===----------------------------------------------------------------------===//

/// Parsed and checked kernel metadata (docs/kernel-metadata.md).
typedef struct gqa_metadata_s *gqa_metadata;

/// The metadata's "config" object: what the kernel computes.
typedef struct gqa_kernel_config {
  int64_t q_heads;
  int64_t kv_heads;
  int64_t group_size;
  int64_t head_dim;
  int64_t head_dim_v;
  gqa_dtype dtype;
  gqa_layout layout;
  gqa_mask mask;
  int64_t window_left;  ///< -1 = unbounded.
  int64_t window_right; ///< -1 = unbounded.
  double scale;
  double softcap; ///< 0 = none.
  gqa_kv_lens_type kv_lens;
  /// Tokens per page of a paged KV cache (k and v are page pools read through
  /// a block table); 0: contiguous k and v.
  int64_t page_size;
  /// 1 when the kernels take one attention-sink logit per query head (launch
  /// argument `sinks`), else 0.
  int32_t sinks;
  /// 1 when the kernels also write each row's log-sum-exp (launch argument
  /// `lse`), else 0.
  int32_t lse;
  /// 1 for a ragged batch: q, out and lse are packed tokens split by
  /// cu_seqlens_q (layout bshd); else 0.
  int32_t varlen;
  /// 1 when k and v are packed tokens split by cu_seqlens_k too; else 0.
  int32_t packed_kv;
  int64_t batch;  ///< Fixed at compile time, or 0 (JSON null): given at launch.
  int64_t seq_q;  ///< Likewise.
  int64_t seq_kv; ///< Likewise.
} gqa_kernel_config;

/// The metadata's "tile" and "split_kv" objects.
typedef struct gqa_kernel_tiling {
  int64_t block_m;
  int64_t block_n;
  int64_t warps;
  int64_t stages;
  int32_t pack_gqa;   ///< 0 or 1.
  int64_t max_splits; ///< 0: the kernel does not split KV.
} gqa_kernel_tiling;

/// The "config" object of a merge_states kernel set: the shape of the two
/// partial results it merges and of its result.
typedef struct gqa_merge_config {
  int64_t heads;
  int64_t head_dim_v;
  gqa_dtype dtype;
  gqa_layout layout;
  /// 1: the outputs are packed tokens [seq_q, heads, head_dim_v] and the
  /// log-sum-exps [heads, seq_q] (flash_attn's varlen shapes; layout bshd,
  /// batch 1); else 0.
  int32_t varlen;
  int64_t batch; ///< Fixed at compile time, or 0 (JSON null): given at launch.
  int64_t seq_q; ///< Likewise.
} gqa_merge_config;

/// Parses and checks metadata JSON text (`json_size` bytes; no terminating
/// NUL needed). Every key of the contract is required, unknown keys are
/// rejected, and messages name the offending key ("config.head_dim").
GQA_RUNTIME_API gqa_status gqa_metadata_parse(const char *json,
                                              size_t json_size,
                                              gqa_metadata *metadata);

/// Releases metadata from gqa_metadata_parse; NULL is ignored. Never pass the
/// borrowed handle of gqa_kernel_metadata.
GQA_RUNTIME_API void gqa_metadata_destroy(gqa_metadata metadata);

/// Copies the "config" object.
GQA_RUNTIME_API gqa_status gqa_metadata_get_config(gqa_metadata metadata,
                                                   gqa_kernel_config *config);

/// Which kind of kernel set the metadata describes.
GQA_RUNTIME_API gqa_status gqa_metadata_get_kind(gqa_metadata metadata,
                                                 gqa_kernel_set_kind *kind);

/// Copies the "config" object of a merge_states kernel set (fails with
/// GQA_ERROR_INVALID_ARGUMENT for an attention set, as gqa_metadata_get_config
/// and gqa_metadata_get_tiling do for a merge_states set).
GQA_RUNTIME_API gqa_status gqa_metadata_get_merge_config(
    gqa_metadata metadata, gqa_merge_config *config);

/// Copies the "tile" and "split_kv" objects.
GQA_RUNTIME_API gqa_status gqa_metadata_get_tiling(gqa_metadata metadata,
                                                   gqa_kernel_tiling *tiling);

/// The "chip" string ("sm_90"), valid as long as the metadata.
GQA_RUNTIME_API const char *gqa_metadata_chip(gqa_metadata metadata);

/// The "ptx" file name, valid as long as the metadata.
GQA_RUNTIME_API const char *gqa_metadata_ptx_file(gqa_metadata metadata);

//===----------------------------------------------------------------------===//
// Launch arguments and plans (no GPU needed)
//===----------------------------------------------------------------------===//

/// Everything one attention call needs. Zero-initialise it, then fill it in.
/// The shape facts (q_heads ... layout) state what the caller believes its
/// tensors are; they are checked against the metadata before any driver call.
typedef struct gqa_launch_args {
  /// Device pointers to contiguous tensors in `layout`: q is [batch, q_heads,
  /// seq_q, head_dim] (bhsd order), k [batch, kv_heads, seq_kv, head_dim],
  /// v [batch, kv_heads, seq_kv, head_dim_v], out [batch, q_heads, seq_q,
  /// head_dim_v]. With a paged kernel (config.page_size > 0), k and v are
  /// page pools [num_pages, page_size, kv_heads, head_dim(_v)] whatever the
  /// layout. Each must be 16-byte aligned.
  const void *q;
  const void *k;
  const void *v;
  void *out;
  /// Device array of `batch` KV lengths typed as config.kv_lens; required iff
  /// the kernel takes it, else NULL.
  const void *kv_lens;
  /// Paged kernels only (else NULL and 0): the device array of int32 page
  /// indices [batch, seq_kv / page_size], and the pages in each pool.
  const void *block_table;
  int64_t num_pages;
  int64_t batch;
  int64_t seq_q;
  int64_t seq_kv; ///< The KV tensors' sequence extent (the cache capacity
                  ///< when kv_lens is given; max pages * page_size when
                  ///< paged).
  int64_t q_heads;
  int64_t kv_heads;
  int64_t head_dim;
  int64_t head_dim_v;
  gqa_dtype dtype;
  gqa_layout layout;
  /// A CUstream of the runtime's context, or NULL for the legacy default
  /// stream. All kernels of the launch are queued on it, in order.
  void *stream;
  /// Optional split-KV workspace owned by the caller (device memory, 16-byte
  /// aligned, at least gqa_launch_plan.workspace_bytes). When NULL the
  /// runtime uses its own (see gqa_kernel_launch). Ignored by kernels that
  /// do not split KV.
  void *workspace;
  uint64_t workspace_bytes;
  /// Device array of q_heads f32 attention-sink logits (natural log, compared
  /// with the scaled scores): required iff config.sinks, else NULL.
  const void *sinks;
  /// Device array f32 [batch, q_heads, seq_q] that receives each row's
  /// natural-log log-sum-exp (the sink included): required iff config.lse,
  /// else NULL. [q_heads, total_q] with config.varlen.
  void *lse;
  /// A ragged batch (config.varlen), else NULL and 0: the device array of
  /// batch + 1 int32 offsets of each sequence's queries in q and out (packed
  /// [total_q, q_heads, head_dim(_v)]), and total_q. seq_q is then the
  /// longest sequence's query count (flash_attn's max_seqlen_q): it sizes
  /// the grid and the workspace. It must be at least every sequence's query
  /// count, as flash_attn requires of max_seqlen_q: the rows of a longer
  /// sequence past it may be left unwritten (never written outside out or
  /// the workspace).
  const void *cu_seqlens_q;
  int64_t total_q;
  /// With config.packed_kv, else NULL and 0: the offsets of each sequence's
  /// keys in k and v (packed [total_kv, kv_heads, head_dim(_v)]), and
  /// total_kv; seq_kv is then the longest (max_seqlen_k).
  const void *cu_seqlens_k;
  int64_t total_kv;
} gqa_launch_args;

/// The number of kernels a launch can consist of (split + combine).
#define GQA_MAX_LAUNCH_KERNELS 2

/// How one kernel of a launch is started.
typedef struct gqa_kernel_launch_config {
  const char *name; ///< The kernel's entry name; valid as long as the metadata.
  gqa_kernel_role role;
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t dynamic_shared_memory_bytes;
} gqa_kernel_launch_config;

/// What a launch does, computed from the metadata, the arguments and the
/// device's SM count alone.
typedef struct gqa_launch_plan {
  /// Kernels to launch, in order: 1 (main, or split alone when num_splits is
  /// 1) or 2 (split then combine).
  int32_t num_kernels;
  gqa_kernel_launch_config kernels[GQA_MAX_LAUNCH_KERNELS];
  /// KV splits (1 for kernels that do not split KV).
  int64_t num_splits;
  /// Split-KV workspace: partial_out (f32 [num_splits, batch, q_heads, seq_q,
  /// head_dim_v]) at offset 0, partial_lse (f32 [num_splits, batch, q_heads,
  /// seq_q]) at partial_lse_offset (a multiple of 256). Both 0 without split
  /// and with one split.
  uint64_t workspace_bytes;
  uint64_t partial_lse_offset;
} gqa_launch_plan;

/// Checks the shape facts and sizes of `args` against `metadata` and computes
/// the plan for a device with `sm_count` multiprocessors. Pointers and the
/// stream are not looked at. Needs no GPU.
GQA_RUNTIME_API gqa_status gqa_plan_launch(gqa_metadata metadata,
                                           const gqa_launch_args *args,
                                           int32_t sm_count,
                                           gqa_launch_plan *plan);

/// One merge of two partial attention results over disjoint keys, by their
/// log-sum-exps (docs/kernel-metadata.md, "gqa.merge_states"):
///
///   M = max(lse_a, lse_b), w_x = exp(lse_x - M) (0 when lse_x = -inf),
///   out = (w_a out_a + w_b out_b) / (w_a + w_b), lse = M + log(w_a + w_b),
///
/// and a row neither part saw (both -inf) gets out = 0 and lse = -inf.
/// Zero-initialise it, then fill it in.
typedef struct gqa_merge_args {
  /// Device pointers, contiguous: the outputs [batch, heads, seq_q,
  /// head_dim_v] in `layout` (bhsd order here; [seq_q, heads, head_dim_v]
  /// with config.varlen), dtype-typed, 16-byte aligned; the log-sum-exps f32
  /// [batch, heads, seq_q] whatever the layout ([heads, seq_q] with varlen),
  /// 4-byte aligned. `out` may be `out_a` or `out_b` (each value is read
  /// before it is written, by the same thread); `lse` must be neither
  /// `lse_a` nor `lse_b`.
  const void *out_a;
  const void *lse_a;
  const void *out_b;
  const void *lse_b;
  void *out;
  void *lse;
  /// With config.varlen, batch is 1 and seq_q the packed tokens.
  int64_t batch;
  int64_t seq_q;
  int64_t heads;
  int64_t head_dim_v;
  gqa_dtype dtype;
  gqa_layout layout;
  /// A CUstream of the runtime's context, or NULL for the legacy default
  /// stream.
  void *stream;
} gqa_merge_args;

/// Checks `args` against the metadata of a merge_states kernel set and
/// computes how its kernel is started (pointers and the stream are not
/// looked at). Needs no GPU.
GQA_RUNTIME_API gqa_status gqa_plan_merge(gqa_metadata metadata,
                                          const gqa_merge_args *args,
                                          gqa_kernel_launch_config *launch);

//===----------------------------------------------------------------------===//
// Runtime: a device, its context and its module cache
//===----------------------------------------------------------------------===//

/// A device, the context the runtime uses on it, its loaded modules and its
/// split-KV workspace. Safe to use from several threads.
typedef struct gqa_runtime_s *gqa_runtime;

/// Facts about the runtime's device.
typedef struct gqa_device_info {
  int32_t ordinal;
  int32_t sm_count;
  int32_t compute_capability_major;
  int32_t compute_capability_minor;
} gqa_device_info;

/// Opens the CUDA driver ("libcuda.so.1", or $GQA_CUDA_DRIVER_LIBRARY when
/// set) and sets up device `device_ordinal`. If a context of that device is
/// current on the calling thread, the runtime uses it (the caller keeps it
/// alive); otherwise it retains the device's primary context, the one
/// PyTorch and the CUDA runtime use. Driver calls are made with that context
/// pushed and popped again, so the caller's current context is left alone.
GQA_RUNTIME_API gqa_status gqa_runtime_create(int32_t device_ordinal,
                                              gqa_runtime *runtime);

/// gqa_runtime_create with the driver library to dlopen named explicitly
/// (NULL: as gqa_runtime_create).
GQA_RUNTIME_API gqa_status gqa_runtime_create_with_driver(
    int32_t device_ordinal, const char *driver_library, gqa_runtime *runtime);

/// Releases the handle; NULL is ignored. Kernels loaded through it stay
/// usable: the device state goes when the last of them is destroyed too.
/// Errors while releasing driver resources are ignored (at process exit the
/// driver may already be gone).
GQA_RUNTIME_API void gqa_runtime_destroy(gqa_runtime runtime);

/// Facts about the runtime's device.
GQA_RUNTIME_API gqa_status gqa_runtime_get_device_info(gqa_runtime runtime,
                                                       gqa_device_info *info);

/// The CUcontext (as void *) the runtime uses, for callers that make driver
/// calls of their own in it (allocations, streams).
GQA_RUNTIME_API gqa_status gqa_runtime_get_context(gqa_runtime runtime,
                                                   void **cu_context);

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

/// A loaded kernel: its module and its parsed metadata.
typedef struct gqa_kernel_s *gqa_kernel;

/// Parses `metadata_json`, checks that the device can run its chip, and loads
/// `ptx` (`ptx_size` bytes, no terminating NUL needed). Loading the same PTX
/// bytes again through the same runtime reuses the loaded module; the module
/// is unloaded when no kernel uses it any more. JIT errors carry the JIT log.
GQA_RUNTIME_API gqa_status gqa_kernel_load(gqa_runtime runtime, const char *ptx,
                                           size_t ptx_size,
                                           const char *metadata_json,
                                           size_t metadata_json_size,
                                           gqa_kernel *kernel);

/// gqa_kernel_load from files. When `ptx_path` is NULL, the PTX is the file
/// the metadata's "ptx" key names, relative to the JSON file's directory.
GQA_RUNTIME_API gqa_status gqa_kernel_load_files(gqa_runtime runtime,
                                                 const char *ptx_path,
                                                 const char *metadata_path,
                                                 gqa_kernel *kernel);

/// Releases a kernel; NULL is ignored. Launches already queued are not
/// affected by the handle going, but the module is unloaded when this was its
/// last kernel, so synchronise first if kernels may still be running.
GQA_RUNTIME_API void gqa_kernel_destroy(gqa_kernel kernel);

/// The kernel's metadata, borrowed: valid while the kernel is.
GQA_RUNTIME_API gqa_metadata gqa_kernel_metadata(gqa_kernel kernel);

/// The CUmodule (as void *) the kernel's functions come from; kernels loaded
/// from the same PTX through one runtime share it.
GQA_RUNTIME_API gqa_status gqa_kernel_get_module(gqa_kernel kernel,
                                                 void **cu_module);

/// gqa_plan_launch with the SM count of the kernel's device.
GQA_RUNTIME_API gqa_status gqa_kernel_plan(gqa_kernel kernel,
                                           const gqa_launch_args *args,
                                           gqa_launch_plan *plan);

/// The split-KV workspace `args` needs (0 if the kernel does not split KV):
/// the size to allocate when passing gqa_launch_args.workspace.
GQA_RUNTIME_API gqa_status gqa_kernel_workspace_bytes(
    gqa_kernel kernel, const gqa_launch_args *args, uint64_t *workspace_bytes);

/// Validates `args` completely (shape facts, sizes, pointers, workspace)
/// before any driver call, then queues the kernel(s) on args->stream.
///
/// Split-KV kernels are launched as split then combine; when the plan picks a
/// single split, the split kernel alone writes the output and no workspace is
/// used (prefill through a split-KV kernel costs nothing extra). Without
/// args->workspace the runtime uses its own
/// workspace, grown on demand (growing waits for the launches still using
/// it); launches through one runtime are ordered on it with an event, so
/// launches on different streams never share it concurrently. Pass a
/// workspace of your own to avoid that ordering or the growth (for instance
/// under CUDA graph capture, where allocating is not allowed).
GQA_RUNTIME_API gqa_status gqa_kernel_launch(gqa_kernel kernel,
                                             const gqa_launch_args *args);

/// Validates `args` completely (gqa_plan_merge, then the pointers: non-NULL,
/// aligned, `lse` distinct from `lse_a` and `lse_b`) before any driver call,
/// then queues the merge kernel of a merge_states kernel set on
/// args->stream. gqa_kernel_launch refuses a merge_states set, and this an
/// attention set.
GQA_RUNTIME_API gqa_status gqa_kernel_merge_states(
    gqa_kernel kernel, const gqa_merge_args *args);

#ifdef __cplusplus
}
#endif

#endif // GQA_RUNTIME_RUNTIME_H
