/* A stand-in for libgqa_compiler.so that needs no LLVM: compiled against gqa-c/CPU.h (and so
 * gqa-c/Compiler.h), it implements gqa_compiler_compile_merge_states, writing the metadata of
 * docs/kernel-metadata.md's "gqa.merge_states" example for the configuration it is given, and records
 * what python/gqa passes. The other entry points python/gqa/_compiler_lib.py binds refuse. */
#include "gqa-c/CPU.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int calls = 0, mode = 0;
static gqa_compiler_merge_states last;
static char last_dtype[16], last_layout[16], last_chip[16], last_ptx_file[256];

static char *copy(const char *text) {
  size_t n = strlen(text) + 1;
  char *out = malloc(n);
  if (out) memcpy(out, text, n);
  return out;
}

static int fail(char **error, const char *message) {
  if (error) *error = copy(message);
  return 1;
}

static void keep(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : "(null)"); }

int gqa_compiler_compile_merge_states(const gqa_compiler_merge_states *merge, const gqa_compiler_target *target,
                                      const char *ptx_file_name, gqa_compiler_kernel *kernel, char **error) {
  if (!merge || !kernel) return fail(error, "stub: NULL");
  ++calls;
  last = *merge;
  keep(last_dtype, sizeof last_dtype, merge->dtype);
  keep(last_layout, sizeof last_layout, merge->layout);
  keep(last_chip, sizeof last_chip, target && target->chip ? target->chip : "sm_90");
  keep(last_ptx_file, sizeof last_ptx_file, ptx_file_name ? ptx_file_name : "kernel.ptx");
  last.dtype = last_dtype;
  last.layout = last_layout;
  if (merge->head_dim_v == 7) return fail(error, "stub: head_dim_v 7 is not supported by the merge kernel");
  int64_t heads = mode == 2 ? merge->heads + 1 : merge->heads; /* mode 2: metadata of another config */
  int64_t rows_per_cta = merge->head_dim_v < 512 ? 512 / merge->head_dim_v : 1;
  char json[2048];
  snprintf(json, sizeof json,
           "{\"format\": \"gqa.merge_states\", \"version\": %d, \"chip\": \"%s\", \"ptx\": \"%s\",\n"
           " \"config\": {\"heads\": %lld, \"head_dim_v\": %lld, \"dtype\": \"%s\", \"layout\": \"%s\",\n"
           "            \"varlen\": %s, \"batch\": null, \"seq_q\": null},\n"
           " \"kernels\": [{\"name\": \"gqa_merge_states\", \"role\": \"merge\", \"block\": [128, 1, 1],\n"
           "   \"dynamic_shared_memory_bytes\": 0, \"static_shared_memory_bytes\": 0,\n"
           "   \"grid\": [{\"sym\": \"seq_q\", \"mul\": %lld, \"div\": %lld}, {\"const\": 1}, {\"sym\": \"batch\"}],\n"
           "   \"params\": [{\"name\": \"out_a\", \"type\": \"ptr\"}, {\"name\": \"lse_a\", \"type\": \"ptr\"},\n"
           "     {\"name\": \"out_b\", \"type\": \"ptr\"}, {\"name\": \"lse_b\", \"type\": \"ptr\"},\n"
           "     {\"name\": \"out\", \"type\": \"ptr\"}, {\"name\": \"lse\", \"type\": \"ptr\"},\n"
           "     {\"name\": \"batch\", \"type\": \"i64\"}, {\"name\": \"seq_q\", \"type\": \"i64\"}]}]}\n",
           mode == 1 ? 99 : 1, last_chip, last_ptx_file, (long long)heads, (long long)merge->head_dim_v,
           last_dtype, last_layout, merge->varlen ? "true" : "false", (long long)heads, (long long)rows_per_cta);
  char ptx[128];
  snprintf(ptx, sizeof ptx, "// stub merge PTX\n.version 8.0\n.target %s\n", last_chip);
  kernel->ptx = copy(ptx);
  kernel->metadata_json = copy(json);
  return 0;
}

int gqa_compiler_compile_attention(const gqa_compiler_attention *attention, const gqa_compiler_target *target,
                                   const char *ptx_file_name, gqa_compiler_kernel *kernel, char **error) {
  (void)attention; (void)target; (void)ptx_file_name; (void)kernel;
  return fail(error, "stub: no attention compiler");
}
int gqa_cpu_kernel_create(const gqa_compiler_attention *attention, const gqa_cpu_options *options,
                          gqa_cpu_kernel **kernel, char **error) {
  (void)attention; (void)options; (void)kernel;
  return fail(error, "stub: no CPU path");
}
int gqa_cpu_kernel_run(const gqa_cpu_kernel *kernel, const gqa_cpu_arguments *arguments, char **error) {
  (void)kernel; (void)arguments;
  return fail(error, "stub: no CPU path");
}
void gqa_cpu_kernel_destroy(gqa_cpu_kernel *kernel) { (void)kernel; }
void gqa_compiler_free(char *string) { free(string); }

/* Inspection helpers for the tests. */
int stub_compiler_calls(void) { return calls; }
void stub_compiler_set_mode(int value) { mode = value; }
void stub_compiler_last(gqa_compiler_merge_states *dst) { *dst = last; }
const char *stub_compiler_last_chip(void) { return last_chip; }
const char *stub_compiler_last_ptx_file(void) { return last_ptx_file; }
long stub_merge_states_offset(const char *field) {
#define FIELD(name) if (!strcmp(field, #name)) return (long)offsetof(gqa_compiler_merge_states, name)
  if (!field) return (long)sizeof(gqa_compiler_merge_states);
  FIELD(heads); FIELD(head_dim_v); FIELD(dtype); FIELD(layout); FIELD(varlen);
  return -1;
#undef FIELD
}
