/*===- gqa_runtime_smoke.c - The runtime's C ABI, used from C -------------===*\
|*                                                                            *|
|* Usage: gqa-runtime-smoke [KERNEL.json]                                     *|
|*                                                                            *|
|* Parses a metadata document and plans a launch (no GPU needed), then opens  *|
|* device 0. Without a driver or a GPU it says why and still succeeds. With   *|
|* one and a KERNEL.json from gqa-compile, it loads that kernel (the PTX      *|
|* named in the JSON, beside it) and prints the plan on this device.          *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#include "gqa/Runtime/Runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The example of docs/kernel-metadata.md. */
static const char kMetadata[] =
    "{\"format\": \"gqa.kernel\", \"version\": 3, \"chip\": \"sm_90\","
    " \"ptx\": \"l70b.ptx\","
    " \"config\": {\"q_heads\": 64, \"kv_heads\": 8, \"group_size\": 8,"
    "  \"head_dim\": 128, \"head_dim_v\": 128, \"dtype\": \"bf16\","
    "  \"layout\": \"bshd\", \"mask\": \"causal\", \"window_left\": -1,"
    "  \"window_right\": -1, \"scale\": 0.08838834764831845, \"softcap\": 0.0,"
    "  \"kv_lens\": \"none\", \"page_size\": 0, \"sinks\": false, \"lse\": "
    "false, \"varlen\": false, \"packed_kv\": false, \"batch\": null,"
    "  \"seq_q\": null,"
    "  \"seq_kv\": null},"
    " \"tile\": {\"block_m\": 64, \"block_n\": 64, \"warps\": 4, \"stages\": 2,"
    "  \"pack_gqa\": true},"
    " \"split_kv\": {\"max_splits\": 0},"
    " \"kernels\": [{\"name\": \"gqa_attention_fwd\", \"role\": \"main\","
    "  \"block\": [128, 1, 1], \"dynamic_shared_memory_bytes\": 0,"
    "  \"static_shared_memory_bytes\": 49152,"
    "  \"grid\": [{\"sym\": \"seq_q\", \"mul\": 8, \"div\": 64},"
    "           {\"const\": 8}, {\"sym\": \"batch\"}],"
    "  \"params\": [{\"name\": \"q\", \"type\": \"ptr\"},"
    "             {\"name\": \"k\", \"type\": \"ptr\"},"
    "             {\"name\": \"v\", \"type\": \"ptr\"},"
    "             {\"name\": \"out\", \"type\": \"ptr\"},"
    "             {\"name\": \"batch\", \"type\": \"i64\"},"
    "             {\"name\": \"seq_q\", \"type\": \"i64\"},"
    "             {\"name\": \"seq_kv\", \"type\": \"i64\"}]}]}";

static int report(const char *what, gqa_status status) {
  fprintf(stderr, "%s: %s: %s\n", what, gqa_status_name(status),
          gqa_last_error_message());
  return 1;
}

static void printPlan(const gqa_launch_plan *plan) {
  int32_t i;
  for (i = 0; i < plan->num_kernels; ++i) {
    const gqa_kernel_launch_config *kernel = &plan->kernels[i];
    printf("  %s: grid %ux%ux%u, block %ux%ux%u, %u bytes of dynamic shared "
           "memory\n",
           kernel->name, kernel->grid[0], kernel->grid[1], kernel->grid[2],
           kernel->block[0], kernel->block[1], kernel->block[2],
           kernel->dynamic_shared_memory_bytes);
  }
  printf("  num_splits %" PRId64 ", workspace %" PRIu64 " bytes\n",
         plan->num_splits, plan->workspace_bytes);
}

/* The Llama-3.1-70B shape the example metadata was compiled for. */
static gqa_launch_args makeArgs(const gqa_kernel_config *config) {
  gqa_launch_args args;
  memset(&args, 0, sizeof(args));
  args.batch = 2;
  args.seq_q = 1000;
  args.seq_kv = 1000;
  args.q_heads = config->q_heads;
  args.kv_heads = config->kv_heads;
  args.head_dim = config->head_dim;
  args.head_dim_v = config->head_dim_v;
  args.dtype = config->dtype;
  args.layout = config->layout;
  return args;
}

int main(int argc, char **argv) {
  gqa_metadata metadata = NULL;
  gqa_kernel_config config;
  gqa_launch_args args;
  gqa_launch_plan plan;
  gqa_runtime runtime = NULL;
  gqa_device_info device;
  gqa_status status;

  if (gqa_runtime_abi_version() != GQA_RUNTIME_ABI_VERSION) {
    fprintf(stderr, "libgqa_runtime ABI %d, header ABI %d\n",
            (int)gqa_runtime_abi_version(), GQA_RUNTIME_ABI_VERSION);
    return 1;
  }

  status = gqa_metadata_parse(kMetadata, strlen(kMetadata), &metadata);
  if (status != GQA_SUCCESS)
    return report("gqa_metadata_parse", status);
  status = gqa_metadata_get_config(metadata, &config);
  if (status != GQA_SUCCESS)
    return report("gqa_metadata_get_config", status);
  printf("metadata: chip %s, %" PRId64 " query heads over %" PRId64
         " KV heads, head dim %" PRId64 "\n",
         gqa_metadata_chip(metadata), config.q_heads, config.kv_heads,
         config.head_dim);

  args = makeArgs(&config);
  status = gqa_plan_launch(metadata, &args, /*sm_count=*/132, &plan);
  if (status != GQA_SUCCESS)
    return report("gqa_plan_launch", status);
  printf("plan for batch 2, seq 1000 on 132 SMs:\n");
  printPlan(&plan);

  /* A mistaken belief about the kernel is caught before any GPU work. */
  args.kv_heads = 4;
  status = gqa_plan_launch(metadata, &args, 132, &plan);
  if (status != GQA_ERROR_INVALID_ARGUMENT)
    return report("gqa_plan_launch with kv_heads 4 should fail", status);
  printf("rejected as expected: %s\n", gqa_last_error_message());
  gqa_metadata_destroy(metadata);

  status = gqa_runtime_create(0, &runtime);
  if (status != GQA_SUCCESS) {
    printf("no GPU runtime here (%s): %s\n", gqa_status_name(status),
           gqa_last_error_message());
    return 0;
  }
  status = gqa_runtime_get_device_info(runtime, &device);
  if (status != GQA_SUCCESS)
    return report("gqa_runtime_get_device_info", status);
  printf("device %d: %d SMs, compute capability %d.%d\n", (int)device.ordinal,
         (int)device.sm_count, (int)device.compute_capability_major,
         (int)device.compute_capability_minor);

  if (argc > 1) {
    gqa_kernel kernel = NULL;
    status = gqa_kernel_load_files(runtime, NULL, argv[1], &kernel);
    if (status != GQA_SUCCESS)
      return report("gqa_kernel_load_files", status);
    status = gqa_metadata_get_config(gqa_kernel_metadata(kernel), &config);
    if (status != GQA_SUCCESS)
      return report("gqa_metadata_get_config", status);
    args = makeArgs(&config);
    if (config.batch)
      args.batch = config.batch;
    if (config.seq_q)
      args.seq_q = config.seq_q;
    if (config.seq_kv)
      args.seq_kv = config.seq_kv;
    status = gqa_kernel_plan(kernel, &args, &plan);
    if (status != GQA_SUCCESS)
      return report("gqa_kernel_plan", status);
    printf("%s on this device:\n", argv[1]);
    printPlan(&plan);
    gqa_kernel_destroy(kernel);
  }
  gqa_runtime_destroy(runtime);
  return 0;
}
