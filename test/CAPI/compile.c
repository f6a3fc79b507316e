/* The C API of the compiler, used from C: compiles the Llama-3-70B layer, a
 * merge of partial results and a two-op module to PTX + metadata in memory,
 * and reports bad input as messages. Exits nonzero on the first failed check. */

#include "gqa-c/Compiler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

static void check(int condition, const char *what) {
  if (!condition) {
    fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  } else {
    printf("ok: %s\n", what);
  }
}

static gqa_compiler_attention llama3_70b(void) {
  gqa_compiler_attention attention;
  memset(&attention, 0, sizeof(attention));
  attention.q_heads = 64;
  attention.kv_heads = 8;
  attention.head_dim = 128;
  attention.dtype = "bf16";
  attention.layout = "bshd";
  attention.causal = 1;
  attention.window_left = -1;
  attention.window_right = -1;
  return attention;
}

static const char *two_layers =
    "func.func @two(%q: memref<?x?x8x64xf16>, %k: memref<?x?x2x64xf16>,\n"
    "               %o: memref<?x?x8x64xf16>) {\n"
    "  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, "
    "memref<?x?x2x64xf16>, memref<?x?x2x64xf16>)\n"
    "    outs(%o : memref<?x?x8x64xf16>) heads(8, 2) layout<bshd> "
    "mask<causal>\n"
    "  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf16>, "
    "memref<?x?x2x64xf16>, memref<?x?x2x64xf16>)\n"
    "    outs(%o : memref<?x?x8x64xf16>) heads(8, 2) layout<bshd> "
    "mask<none>\n"
    "  return\n"
    "}\n";

int main(void) {
  gqa_compiler_kernel kernel;
  char *error = NULL;

  /* The Llama-3-70B layer for decode: split-KV by default. */
  gqa_compiler_attention attention = llama3_70b();
  gqa_compiler_target target = {"sm_90", -1};
  int status = gqa_compiler_compile_attention(&attention, &target, "l70b.ptx",
                                              &kernel, &error);
  check(status == 0 && error == NULL, "compiles the Llama-3-70B layer");
  if (status == 0) {
    check(strstr(kernel.ptx, "mma.sync.aligned.m16n8k16") != NULL,
          "its PTX uses mma.sync");
    check(strstr(kernel.ptx, ".entry gqa_attention_fwd_split") != NULL &&
              strstr(kernel.ptx, ".entry gqa_attention_combine") != NULL,
          "the default target splits KV (split + combine kernels)");
    check(strstr(kernel.metadata_json, "\"format\": \"gqa.kernel\"") != NULL,
          "its metadata is a gqa.kernel document");
    check(strstr(kernel.metadata_json, "\"ptx\": \"l70b.ptx\"") != NULL,
          "its metadata names the PTX file");
    gqa_compiler_free(kernel.ptx);
    gqa_compiler_free(kernel.metadata_json);
  }

  /* Without split-KV: one kernel, for sm_80. */
  gqa_compiler_target ampere = {"sm_80", 0};
  status = gqa_compiler_compile_attention(&attention, &ampere, NULL, &kernel,
                                          &error);
  check(status == 0, "compiles for sm_80 without split-KV");
  if (status == 0) {
    check(strstr(kernel.ptx, ".target sm_80") != NULL &&
              strstr(kernel.ptx, ".entry gqa_attention_fwd(") != NULL &&
              strstr(kernel.ptx, "_split") == NULL,
          "one sm_80 kernel");
    check(strstr(kernel.metadata_json, "\"ptx\": \"kernel.ptx\"") != NULL,
          "the default PTX name");
    gqa_compiler_free(kernel.ptx);
    gqa_compiler_free(kernel.metadata_json);
  }

  /* Decode against a paged KV cache of 16-token pages. */
  attention.kv_lens = 1;
  attention.page_size = 16;
  status = gqa_compiler_compile_attention(&attention, &target, NULL, &kernel,
                                          &error);
  check(status == 0, "compiles decode against a paged KV cache");
  if (status == 0) {
    check(strstr(kernel.metadata_json, "\"page_size\": 16") != NULL &&
              strstr(kernel.metadata_json, "\"block_table\"") != NULL &&
              strstr(kernel.metadata_json, "\"num_pages\"") != NULL,
          "its metadata has the page size, the block table and the pool size");
    gqa_compiler_free(kernel.ptx);
    gqa_compiler_free(kernel.metadata_json);
  }
  attention.page_size = -1;
  status = gqa_compiler_compile_attention(&attention, &target, NULL, &kernel,
                                          &error);
  check(status != 0 && error && strstr(error, "page-size must be positive"),
        "a negative page size");
  gqa_compiler_free(error);
  error = NULL;
  attention = llama3_70b();

  /* Bad input is a message, not a crash. */
  attention.kv_heads = 6;
  status = gqa_compiler_compile_attention(&attention, &target, NULL, &kernel,
                                          &error);
  check(status != 0 && error && strstr(error, "not a multiple of kv-heads"),
        "heads that do not divide");
  gqa_compiler_free(error);
  error = NULL;

  attention = llama3_70b();
  attention.head_dim = 96;
  status = gqa_compiler_compile_attention(&attention, &target, NULL, &kernel,
                                          &error);
  check(status != 0 && error && strstr(error, "head dim"),
        "a head dim the GPU path does not support");
  if (error)
    printf("   (%s)\n", error);
  gqa_compiler_free(error);
  error = NULL;

  attention = llama3_70b();
  attention.dtype = "f64";
  status = gqa_compiler_compile_attention(&attention, &target, NULL, &kernel,
                                          &error);
  check(status != 0 && error && strstr(error, "unknown dtype 'f64'"),
        "an unknown dtype");
  gqa_compiler_free(error);
  error = NULL;

  gqa_compiler_target unknown = {"sm_75", -1};
  attention = llama3_70b();
  status = gqa_compiler_compile_attention(&attention, &unknown, NULL, &kernel,
                                          &error);
  check(status != 0 && error && strstr(error, "unknown chip 'sm_75'"),
        "an unknown chip");
  gqa_compiler_free(error);
  error = NULL;

  /* The merge of two partial results (cascade attention, context
   * parallelism): one kernel, a gqa.merge_states document. */
  gqa_compiler_merge_states merge = {64, 128, "bf16", "bshd", 0};
  status = gqa_compiler_compile_merge_states(&merge, &target, "merge.ptx",
                                             &kernel, &error);
  check(status == 0 && error == NULL, "compiles a merge of 64 x 128 rows");
  if (status == 0) {
    check(strstr(kernel.ptx, ".entry gqa_merge_states(") != NULL,
          "its PTX has the merge kernel");
    check(strstr(kernel.metadata_json,
                 "\"format\": \"gqa.merge_states\"") != NULL &&
              strstr(kernel.metadata_json, "\"ptx\": \"merge.ptx\"") != NULL &&
              strstr(kernel.metadata_json, "\"role\": \"merge\"") != NULL,
          "its metadata is a gqa.merge_states document naming the PTX");
    gqa_compiler_free(kernel.ptx);
    gqa_compiler_free(kernel.metadata_json);
  }
  gqa_compiler_merge_states packed = {8, 64, "f16", "bshd", 1};
  status = gqa_compiler_compile_merge_states(&packed, NULL, NULL, &kernel,
                                             &error);
  check(status == 0, "compiles a merge of packed tokens");
  if (status == 0) {
    check(strstr(kernel.metadata_json, "\"varlen\": true") != NULL,
          "its metadata says varlen");
    gqa_compiler_free(kernel.ptx);
    gqa_compiler_free(kernel.metadata_json);
  }
  packed.layout = "bhsd";
  status = gqa_compiler_compile_merge_states(&packed, NULL, NULL, &kernel,
                                             &error);
  check(status != 0 && error && strstr(error, "the layout must be bshd"),
        "packed tokens in bhsd");
  gqa_compiler_free(error);
  error = NULL;
  merge.head_dim_v = 62;
  status = gqa_compiler_compile_merge_states(&merge, &target, NULL, &kernel,
                                             &error);
  check(status != 0 && error && strstr(error, "multiple of 4"),
        "a merge head dim the kernel cannot take");
  gqa_compiler_free(error);
  error = NULL;
  merge.head_dim_v = 128;
  merge.dtype = NULL;
  status = gqa_compiler_compile_merge_states(&merge, &target, NULL, &kernel,
                                             &error);
  check(status != 0 && error && strstr(error, "unknown dtype '(null)'"),
        "a merge without a dtype");
  gqa_compiler_free(error);
  error = NULL;
  status = gqa_compiler_compile_merge_states(NULL, &target, NULL, &kernel,
                                             &error);
  check(status != 0 && error && strstr(error, "must not be NULL"),
        "no merge configuration");
  gqa_compiler_free(error);
  error = NULL;

  /* A module with two ops: two kernel sets, named in module order. */
  gqa_compiler_kernel *kernels = NULL;
  size_t count = 0;
  status = gqa_compiler_compile_module(two_layers, strlen(two_layers), &target,
                                       "model", &kernels, &count, &error);
  check(status == 0 && count == 2, "compiles a two-op module");
  if (status == 0 && count == 2) {
    check(strstr(kernels[0].metadata_json, "\"ptx\": \"model.0.ptx\"") &&
              strstr(kernels[1].metadata_json, "\"ptx\": \"model.1.ptx\""),
          "names each op's PTX");
    check(strstr(kernels[0].metadata_json, "\"mask\": \"causal\"") &&
              strstr(kernels[1].metadata_json, "\"mask\": \"none\""),
          "in module order");
  }
  gqa_compiler_free_kernels(kernels, count);

  status = gqa_compiler_compile_module("func.func @f(", 12, &target, NULL,
                                       &kernels, &count, &error);
  check(status != 0 && error && strstr(error, "module:1:"),
        "malformed MLIR gives a located message");
  gqa_compiler_free(error);

  return failures ? 1 : 0;
}
