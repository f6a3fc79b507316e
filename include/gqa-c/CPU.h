/*===- gqa-c/CPU.h - gqa's CPU path, in process -----------------*- C -*-===*\
|*                                                                            *|
|* Compiles one attention (or merge) configuration for the host CPU (the     *|
|* gqa-lower-to-cpu pipeline, JIT-compiled once) and runs it on the caller's *|
|* arrays, with no process started and nothing written to disk: what the     *|
|* Python package and its PyTorch op call for CPU tensors. Part of           *|
|* libgqa_compiler.so.                                                        *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef GQA_C_CPU_H
#define GQA_C_CPU_H

#include "gqa-c/Compiler.h"

#ifdef __cplusplus
extern "C" {
#endif

/// A configuration compiled for the host CPU; callable on any sizes, from
/// several threads at once.
typedef struct gqa_cpu_kernel gqa_cpu_kernel;

/// How the CPU runs it.
typedef struct gqa_cpu_options {
  /// Whose schedule: "cpu" (NULL), "sm_80" or "sm_90" (a GPU's tiles and
  /// split-KV, to check its numerics on the CPU).
  const char *schedule;
  /// Threads the blocks run on; 0: one per core.
  int64_t threads;
  /// Split-KV with at most this many splits; 0 disables it, a negative value
  /// takes the schedule's choice.
  int64_t max_splits;
} gqa_cpu_options;

/// The arrays of one call: contiguous, in the configuration's layout and
/// dtype (f16/bf16 as 16-bit patterns), host memory.
typedef struct gqa_cpu_arguments {
  int64_t batch;
  /// The query length (ignored when varlen: cu_seqlens_q gives each).
  int64_t seq_q;
  /// The K/V sequence length (ignored when paged: pages_per_sequence *
  /// page_size; when packed: cu_seqlens_k gives each).
  int64_t seq_kv;
  const void *query;
  /// K and V, or with a page size their pools [num_pages, page_size, Hkv, D].
  const void *key;
  const void *value;
  /// `batch` int32 lengths when the configuration has kv_lens (clamped into
  /// [0, seq_kv] by the kernel).
  const int32_t *kv_lens;
  /// Paged only: the int32 block table [batch, pages_per_sequence] (entries
  /// clamped into the pool) and the pool's page count.
  const int32_t *block_table;
  int64_t pages_per_sequence;
  int64_t num_pages;
  /// Hq f32 sink logits when the configuration has sinks.
  const float *sinks;
  /// Varlen: batch + 1 int32 offsets, from 0, non-decreasing, of each
  /// sequence's query tokens (and, packed, key tokens); T = cu_seqlens_q[B].
  const int32_t *cu_seqlens_q;
  const int32_t *cu_seqlens_k;
  void *output;
  /// The LSE when the configuration returns it: [B, Hq, seq_q] floats, or
  /// [Hq, T] when varlen.
  float *lse;
} gqa_cpu_arguments;

/// Compiles `attention` for the host. On success returns 0 and sets
/// `*kernel` (destroyed with gqa_cpu_kernel_destroy); on failure returns
/// nonzero and sets `*error` (when non-NULL; freed with gqa_compiler_free).
GQA_COMPILER_API int
gqa_cpu_kernel_create(const gqa_compiler_attention *attention,
                      const gqa_cpu_options *options, gqa_cpu_kernel **kernel,
                      char **error);

/// Runs `kernel` on `arguments` after checking them (every pointer the
/// configuration needs present, sizes positive and within 64-bit byte
/// counts); returns nonzero with `*error` set when they are not.
GQA_COMPILER_API int gqa_cpu_kernel_run(const gqa_cpu_kernel *kernel,
                                        const gqa_cpu_arguments *arguments,
                                        char **error);

GQA_COMPILER_API void gqa_cpu_kernel_destroy(gqa_cpu_kernel *kernel);

/// A merge of two partial attention results (gqa.merge_states) compiled for
/// the host CPU; callable on any sizes, from several threads at once.
typedef struct gqa_cpu_merge_kernel gqa_cpu_merge_kernel;

/// The arrays of one merge: contiguous host memory. The outputs are
/// [batch, heads, seq_q, head_dim_v] in the configuration's layout and dtype
/// (packed [seq_q, heads, head_dim_v] tokens when varlen, `batch` then
/// unused), the log-sum-exps f32 [batch, heads, seq_q] ([heads, seq_q]).
/// `output` may be `out_a` or `out_b`; `lse` must be neither `lse_a` nor
/// `lse_b`.
typedef struct gqa_cpu_merge_arguments {
  int64_t batch;
  int64_t seq_q;
  const void *out_a;
  const float *lse_a;
  const void *out_b;
  const float *lse_b;
  void *output;
  float *lse;
} gqa_cpu_merge_arguments;

/// Compiles `merge` for the host (only `options->threads` applies); as
/// gqa_cpu_kernel_create.
GQA_COMPILER_API int
gqa_cpu_merge_kernel_create(const gqa_compiler_merge_states *merge,
                            const gqa_cpu_options *options,
                            gqa_cpu_merge_kernel **kernel, char **error);

/// Runs `kernel` on `arguments` after checking them (every pointer present,
/// `lse` none of the parts', sizes positive and within 64-bit byte counts).
GQA_COMPILER_API int
gqa_cpu_merge_kernel_run(const gqa_cpu_merge_kernel *kernel,
                         const gqa_cpu_merge_arguments *arguments,
                         char **error);

GQA_COMPILER_API void
gqa_cpu_merge_kernel_destroy(gqa_cpu_merge_kernel *kernel);

#ifdef __cplusplus
}
#endif

#endif /* GQA_C_CPU_H */
