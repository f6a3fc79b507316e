/* A stand-in for libgqa_runtime.so that needs no GPU: it implements the C ABI
 * of include/gqa/Runtime/Runtime.h (compiled against that header, so the
 * compiler checks every signature) and records what python/gqa passes.
 * Only the entry points python/gqa/_runtime.py binds are here; its metadata "parser" accepts
 * merge_states documents only (enough for gqa_plan_merge). */
#include "gqa/Runtime/Runtime.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static char last_error[256] = "";
static gqa_launch_args last_args;
static gqa_merge_args last_merge_args;
static int merges = 0;
static int loads = 0, creates = 0, last_ordinal = -1;
static struct gqa_runtime_s { int ordinal; } runtimes[8];
static struct gqa_kernel_s { int id; } kernels[64];

static gqa_status fail(gqa_status status, const char *message) {
  snprintf(last_error, sizeof last_error, "%s", message);
  return status;
}

const char *gqa_status_name(gqa_status status) {
  switch (status) {
  case GQA_SUCCESS: return "GQA_SUCCESS";
  case GQA_ERROR_INVALID_ARGUMENT: return "GQA_ERROR_INVALID_ARGUMENT";
  case GQA_ERROR_CUDA: return "GQA_ERROR_CUDA";
  default: return "GQA_STATUS_UNKNOWN";
  }
}
const char *gqa_last_error_message(void) { return last_error; }
int32_t gqa_runtime_abi_version(void) { return GQA_RUNTIME_ABI_VERSION; }

/* Metadata: the stub "parses" only merge_states documents (it looks for their format string), so that
 * gqa_plan_merge can be called through the binding; attention documents are refused. */
static struct gqa_metadata_s { int kind; } merge_metadata = {GQA_KERNEL_SET_MERGE_STATES};

gqa_status gqa_metadata_parse(const char *json, size_t size, gqa_metadata *metadata) {
  last_error[0] = 0;
  if (!json || !metadata) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: NULL");
  char text[4096];
  size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
  memcpy(text, json, n);
  text[n] = 0;
  if (!strstr(text, "\"gqa.merge_states\"")) return fail(GQA_ERROR_INTERNAL, "stub: no metadata parser");
  *metadata = &merge_metadata;
  return GQA_SUCCESS;
}
void gqa_metadata_destroy(gqa_metadata metadata) { (void)metadata; }
gqa_status gqa_metadata_get_config(gqa_metadata metadata, gqa_kernel_config *config) {
  (void)metadata; (void)config;
  return fail(GQA_ERROR_INTERNAL, "stub");
}
gqa_status gqa_metadata_get_kind(gqa_metadata metadata, gqa_kernel_set_kind *kind) {
  last_error[0] = 0;
  if (!metadata || !kind) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: NULL");
  *kind = (gqa_kernel_set_kind)metadata->kind;
  return GQA_SUCCESS;
}
gqa_status gqa_metadata_get_merge_config(gqa_metadata metadata, gqa_merge_config *config) {
  last_error[0] = 0;
  if (!metadata || !config) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: NULL");
  memset(config, 0, sizeof *config);
  config->heads = 64;
  config->head_dim_v = 128;
  config->dtype = GQA_DTYPE_BF16;
  config->layout = GQA_LAYOUT_BSHD;
  config->varlen = 1;
  config->batch = 1;
  config->seq_q = 7; /* the fields behind the int32 varlen read right too */
  return GQA_SUCCESS;
}
gqa_status gqa_plan_launch(gqa_metadata metadata, const gqa_launch_args *args, int32_t sm_count,
                           gqa_launch_plan *plan) {
  (void)metadata; (void)args; (void)sm_count; (void)plan;
  return fail(GQA_ERROR_INTERNAL, "stub");
}

/* The stub's merge plan: 128 threads of 4 values each, 512 / head_dim_v rows per CTA, as the contract's
 * kernel; the shape facts must be those of a whole tensor. */
gqa_status gqa_plan_merge(gqa_metadata metadata, const gqa_merge_args *args, gqa_kernel_launch_config *launch) {
  last_error[0] = 0;
  if (!metadata || !args || !launch) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: NULL");
  if (args->batch < 1 || args->seq_q < 1 || args->heads < 1 || args->head_dim_v < 1 || !args->dtype ||
      !args->layout)
    return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: gqa_plan_merge: unset shape facts");
  if (args->batch == 13) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: batch 13 is unlucky");
  int64_t rows_per_cta = 512 / args->head_dim_v ? 512 / args->head_dim_v : 1;
  memset(launch, 0, sizeof *launch);
  launch->name = "gqa_merge_states";
  launch->role = GQA_KERNEL_ROLE_MERGE;
  launch->grid[0] = (uint32_t)((args->seq_q * args->heads + rows_per_cta - 1) / rows_per_cta);
  launch->grid[1] = 1;
  launch->grid[2] = (uint32_t)args->batch;
  launch->block[0] = 128;
  launch->block[1] = launch->block[2] = 1;
  return GQA_SUCCESS;
}

gqa_status gqa_runtime_create(int32_t ordinal, gqa_runtime *runtime) {
  last_error[0] = 0;
  if (ordinal < 0 || ordinal >= 8) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: bad ordinal");
  runtimes[ordinal].ordinal = ordinal;
  *runtime = &runtimes[ordinal];
  ++creates;
  return GQA_SUCCESS;
}
void gqa_runtime_destroy(gqa_runtime runtime) { (void)runtime; }
gqa_status gqa_runtime_get_device_info(gqa_runtime runtime, gqa_device_info *info) {
  memset(info, 0, sizeof *info);
  info->ordinal = runtime->ordinal;
  info->sm_count = 132;
  info->compute_capability_major = 9;
  return GQA_SUCCESS;
}

gqa_status gqa_kernel_load(gqa_runtime runtime, const char *ptx, size_t ptx_size, const char *json,
                           size_t json_size, gqa_kernel *kernel) {
  last_error[0] = 0;
  (void)json;
  if (!runtime || !ptx || !json || ptx_size == 0 || json_size == 0)
    return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: gqa_kernel_load: empty argument");
  if (strstr(json, "fail-load"))
    return fail(GQA_ERROR_CUDA, "stub: cuModuleLoadData failed: fail-load");
  if (loads >= 64) return fail(GQA_ERROR_OUT_OF_MEMORY, "stub: too many kernels");
  kernels[loads].id = loads;
  *kernel = &kernels[loads++];
  last_ordinal = runtime->ordinal;
  return GQA_SUCCESS;
}
void gqa_kernel_destroy(gqa_kernel kernel) { (void)kernel; }

gqa_status gqa_kernel_launch(gqa_kernel kernel, const gqa_launch_args *args) {
  last_error[0] = 0;
  if (!kernel || !args) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: NULL");
  last_args = *args;
  if (args->batch == 13) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: batch 13 is unlucky");
  return GQA_SUCCESS;
}

gqa_status gqa_kernel_merge_states(gqa_kernel kernel, const gqa_merge_args *args) {
  last_error[0] = 0;
  if (!kernel || !args) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: NULL");
  last_merge_args = *args;
  ++merges;
  if (args->lse == args->lse_a || args->lse == args->lse_b)
    return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: args.lse is args.lse_a or args.lse_b");
  if (args->batch == 13) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: batch 13 is unlucky");
  return GQA_SUCCESS;
}

static uint64_t workspace_bytes;
gqa_status gqa_kernel_workspace_bytes(gqa_kernel kernel, const gqa_launch_args *args, uint64_t *bytes) {
  last_error[0] = 0;
  if (!kernel || !args || !bytes) return fail(GQA_ERROR_INVALID_ARGUMENT, "stub: NULL");
  *bytes = workspace_bytes;
  return GQA_SUCCESS;
}

/* Inspection helpers for the tests. */
void stub_set_workspace_bytes(uint64_t bytes) { workspace_bytes = bytes; }
void stub_last_args(gqa_launch_args *dst) { *dst = last_args; }
void stub_last_merge_args(gqa_merge_args *dst) { *dst = last_merge_args; }
int stub_merges(void) { return merges; }
int stub_loads(void) { return loads; }
int stub_creates(void) { return creates; }
int stub_last_ordinal(void) { return last_ordinal; }

/* The header's struct layouts, for comparison with the ctypes mirrors of gqa/_runtime.py:
 * sizeof, then the offset of each named field (-1 for a name the stub does not know). */
#define FIELD(type, name) if (!strcmp(field, #name)) return (long)offsetof(type, name)
long stub_launch_args_offset(const char *field) {
  if (!field) return (long)sizeof(gqa_launch_args);
  FIELD(gqa_launch_args, q); FIELD(gqa_launch_args, k); FIELD(gqa_launch_args, v);
  FIELD(gqa_launch_args, out); FIELD(gqa_launch_args, kv_lens); FIELD(gqa_launch_args, block_table);
  FIELD(gqa_launch_args, num_pages); FIELD(gqa_launch_args, batch); FIELD(gqa_launch_args, seq_q);
  FIELD(gqa_launch_args, seq_kv); FIELD(gqa_launch_args, q_heads); FIELD(gqa_launch_args, kv_heads);
  FIELD(gqa_launch_args, head_dim); FIELD(gqa_launch_args, head_dim_v); FIELD(gqa_launch_args, dtype);
  FIELD(gqa_launch_args, layout); FIELD(gqa_launch_args, stream); FIELD(gqa_launch_args, workspace);
  FIELD(gqa_launch_args, workspace_bytes); FIELD(gqa_launch_args, sinks); FIELD(gqa_launch_args, lse);
  FIELD(gqa_launch_args, cu_seqlens_q); FIELD(gqa_launch_args, total_q); FIELD(gqa_launch_args, cu_seqlens_k);
  FIELD(gqa_launch_args, total_kv);
  return -1;
}
long stub_kernel_config_offset(const char *field) {
  if (!field) return (long)sizeof(gqa_kernel_config);
  FIELD(gqa_kernel_config, q_heads); FIELD(gqa_kernel_config, kv_heads); FIELD(gqa_kernel_config, group_size);
  FIELD(gqa_kernel_config, head_dim); FIELD(gqa_kernel_config, head_dim_v); FIELD(gqa_kernel_config, dtype);
  FIELD(gqa_kernel_config, layout); FIELD(gqa_kernel_config, mask); FIELD(gqa_kernel_config, window_left);
  FIELD(gqa_kernel_config, window_right); FIELD(gqa_kernel_config, scale); FIELD(gqa_kernel_config, softcap);
  FIELD(gqa_kernel_config, kv_lens); FIELD(gqa_kernel_config, page_size); FIELD(gqa_kernel_config, sinks);
  FIELD(gqa_kernel_config, lse); FIELD(gqa_kernel_config, varlen); FIELD(gqa_kernel_config, packed_kv);
  FIELD(gqa_kernel_config, batch);
  FIELD(gqa_kernel_config, seq_q); FIELD(gqa_kernel_config, seq_kv);
  return -1;
}
long stub_merge_args_offset(const char *field) {
  if (!field) return (long)sizeof(gqa_merge_args);
  FIELD(gqa_merge_args, out_a); FIELD(gqa_merge_args, lse_a); FIELD(gqa_merge_args, out_b);
  FIELD(gqa_merge_args, lse_b); FIELD(gqa_merge_args, out); FIELD(gqa_merge_args, lse);
  FIELD(gqa_merge_args, batch); FIELD(gqa_merge_args, seq_q); FIELD(gqa_merge_args, heads);
  FIELD(gqa_merge_args, head_dim_v); FIELD(gqa_merge_args, dtype); FIELD(gqa_merge_args, layout);
  FIELD(gqa_merge_args, stream);
  return -1;
}
long stub_merge_config_offset(const char *field) {
  if (!field) return (long)sizeof(gqa_merge_config);
  FIELD(gqa_merge_config, heads); FIELD(gqa_merge_config, head_dim_v); FIELD(gqa_merge_config, dtype);
  FIELD(gqa_merge_config, layout); FIELD(gqa_merge_config, varlen); FIELD(gqa_merge_config, batch);
  FIELD(gqa_merge_config, seq_q);
  return -1;
}
long stub_kernel_launch_config_offset(const char *field) {
  if (!field) return (long)sizeof(gqa_kernel_launch_config);
  FIELD(gqa_kernel_launch_config, name); FIELD(gqa_kernel_launch_config, role);
  FIELD(gqa_kernel_launch_config, grid); FIELD(gqa_kernel_launch_config, block);
  FIELD(gqa_kernel_launch_config, dynamic_shared_memory_bytes);
  return -1;
}
#undef FIELD
