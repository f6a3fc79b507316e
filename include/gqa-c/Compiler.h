/*===- gqa-c/Compiler.h - The gqa compiler as a C library -------*- C -*-===*\
|*                                                                            *|
|* Embeds gqa's compiler in another compiler or runtime: compiles one         *|
|* attention configuration, or every gqa.attention of an MLIR module, to PTX  *|
|* and the kernel metadata JSON of docs/kernel-metadata.md, in memory. The    *|
|* library (libgqa_compiler.so) links MLIR; the runtime *|
|* (gqa/Runtime/Runtime.h) loads what it returns.                             *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef GQA_C_COMPILER_H
#define GQA_C_COMPILER_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define GQA_COMPILER_API __attribute__((visibility("default")))
#else
#define GQA_COMPILER_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// One attention configuration: the attributes of a gqa.attention op.
typedef struct gqa_compiler_attention {
  int64_t q_heads;
  int64_t kv_heads;
  int64_t head_dim;
  /// Head dim of V and the output; 0 means head_dim.
  int64_t head_dim_v;
  /// "f16", "bf16" or "f32".
  const char *dtype;
  /// "bhsd" or "bshd".
  const char *layout;
  /// Nonzero: causal, aligned bottom-right.
  int32_t causal;
  /// The sliding window; -1 leaves a side unbounded (both -1: no window).
  int64_t window_left;
  int64_t window_right;
  /// The score scale; 0 means 1/sqrt(head_dim).
  double scale;
  /// The softcap c (s = c * tanh(s / c)); 0 means none.
  double softcap;
  /// Nonzero: the kernel takes per-sequence KV lengths (int32).
  int32_t kv_lens;
  /// Tokens per page of a paged KV cache (K/V are page pools read through an
  /// int32 block table, docs/kernel-metadata.md); 0: contiguous K/V.
  int64_t page_size;
  /// Nonzero: one f32 attention-sink logit per query head joins each row's
  /// softmax denominator (CPU path only, for now).
  int32_t sinks;
  /// Nonzero: also return each row's natural-log log-sum-exp, f32
  /// [B, Hq, Sq] (CPU path only, for now).
  int32_t return_lse;
  /// Nonzero: a ragged batch; the query and output are packed bshd tokens
  /// [T, Hq, D] split by int32 cu_seqlens_q offsets (the layout must be
  /// "bshd"; CPU path only, for now).
  int32_t varlen;
  /// Nonzero (with varlen): K and V are packed tokens [Tk, Hkv, D] split by
  /// int32 cu_seqlens_k offsets.
  int32_t packed_kv;
} gqa_compiler_attention;

/// Where the kernels run.
typedef struct gqa_compiler_target {
  /// "sm_80" or "sm_90"; NULL means "sm_90".
  const char *chip;
  /// Split-KV (Flash-Decoding) with at most this many splits; 0 disables it,
  /// a negative value takes gqa-compile's default.
  int64_t max_splits;
} gqa_compiler_target;

/// The kernels of one gqa.attention op. Both strings are NUL-terminated and
/// owned by the caller (gqa_compiler_free).
typedef struct gqa_compiler_kernel {
  char *ptx;
  char *metadata_json;
} gqa_compiler_kernel;

/// Compiles one configuration. On success returns 0 and fills `*kernel`; the
/// metadata's "ptx" names `ptx_file_name` (the file the caller will write the
/// PTX to; NULL: "kernel.ptx"). On failure returns nonzero and sets `*error`
/// (when non-NULL) to a message naming what is wrong.
GQA_COMPILER_API int gqa_compiler_compile_attention(
    const gqa_compiler_attention *attention, const gqa_compiler_target *target,
    const char *ptx_file_name, gqa_compiler_kernel *kernel, char **error);

/// One merge_states configuration: the shape of the two partial attention
/// results (and of the merged one) that its kernel merges by their
/// log-sum-exps (docs/kernel-metadata.md, "gqa.merge_states").
typedef struct gqa_compiler_merge_states {
  int64_t heads;
  int64_t head_dim_v;
  /// "f16", "bf16" or "f32": the outputs' element type (the log-sum-exps
  /// are f32).
  const char *dtype;
  /// "bhsd" or "bshd".
  const char *layout;
  /// Nonzero: packed tokens [T, heads, head_dim_v] with log-sum-exps
  /// [heads, T] (flash_attn's varlen shapes; the layout must be "bshd").
  int32_t varlen;
} gqa_compiler_merge_states;

/// Compiles the merge kernel of one configuration, with
/// gqa_compiler_compile_attention's conventions: its metadata (format
/// "gqa.merge_states") names `ptx_file_name` (NULL: "kernel.ptx"); the
/// target's max_splits is not used. The head dim must be a multiple of 4.
GQA_COMPILER_API int gqa_compiler_compile_merge_states(
    const gqa_compiler_merge_states *merge, const gqa_compiler_target *target,
    const char *ptx_file_name, gqa_compiler_kernel *kernel, char **error);

/// Compiles every gqa.attention op of the MLIR module `source` (`size`
/// bytes) into `*kernels` (an array of `*count`, in module order, freed with
/// gqa_compiler_free_kernels). The metadata of op i names
/// "<ptx_file_stem>.ptx" for one op, "<ptx_file_stem>.<i>.ptx" for more.
GQA_COMPILER_API int gqa_compiler_compile_module(
    const char *source, size_t size, const gqa_compiler_target *target,
    const char *ptx_file_stem, gqa_compiler_kernel **kernels, size_t *count,
    char **error);

/// Frees a string returned by the library.
GQA_COMPILER_API void gqa_compiler_free(char *string);

/// Frees an array of kernels returned by gqa_compiler_compile_module.
GQA_COMPILER_API void gqa_compiler_free_kernels(gqa_compiler_kernel *kernels,
                                                size_t count);

#ifdef __cplusplus
}
#endif

#endif /* GQA_C_COMPILER_H */
