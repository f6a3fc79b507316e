/* The installed C API and runtime, from C: compile a configuration to PTX
 * and parse its metadata with the runtime. */
#include "gqa-c/Compiler.h"
#include "gqa/Runtime/Runtime.h"

#include <stdio.h>
#include <string.h>

int main(void) {
  gqa_compiler_attention attention;
  memset(&attention, 0, sizeof(attention));
  attention.q_heads = 8;
  attention.kv_heads = 2;
  attention.head_dim = 64;
  attention.dtype = "bf16";
  attention.layout = "bshd";
  attention.causal = 1;
  attention.window_left = attention.window_right = -1;
  gqa_compiler_kernel kernel;
  char *error = NULL;
  if (gqa_compiler_compile_attention(&attention, NULL, NULL, &kernel, &error)) {
    fprintf(stderr, "%s\n", error);
    return 1;
  }
  printf("consumer_c: %zu bytes of PTX, runtime ABI %d\n", strlen(kernel.ptx),
         (int)gqa_runtime_abi_version());
  gqa_compiler_free(kernel.ptx);
  gqa_compiler_free(kernel.metadata_json);
  return 0;
}
