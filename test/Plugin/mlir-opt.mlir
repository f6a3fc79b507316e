// gqa loaded into a stock mlir-opt as a dialect and pass plugin: it parses
// and verifies gqa IR, and runs gqa's passes and pipelines (plugin passes are
// named in --pass-pipeline, as mlir-opt parses its pass flags before loading
// plugins).

// RUN: %mlir_opt --load-dialect-plugin=%gqa_plugin %s | FileCheck %s --check-prefix=ROUNDTRIP
// RUN: %mlir_opt --load-dialect-plugin=%gqa_plugin --load-pass-plugin=%gqa_plugin %s \
// RUN:   --pass-pipeline='builtin.module(gqa-select-schedule{target=sm_90})' | FileCheck %s --check-prefix=SCHEDULE
// RUN: %mlir_opt --load-dialect-plugin=%gqa_plugin --load-pass-plugin=%gqa_plugin %s \
// RUN:   --pass-pipeline='builtin.module(gqa-lower-to-cpu)' | FileCheck %s --check-prefix=CPU
// RUN: %mlir_opt --load-dialect-plugin=%gqa_plugin --load-pass-plugin=%gqa_plugin %s \
// RUN:   --pass-pipeline='builtin.module(gqa-lower-to-ptx{chip=sm_90})' | FileCheck %s --check-prefix=PTX
// Without the plugin the dialect is unknown; a bad op is refused by gqa's verifier.
// RUN: not %mlir_opt %s 2>&1 | FileCheck %s --check-prefix=NOPLUGIN
// RUN: not %mlir_opt --load-dialect-plugin=%gqa_plugin %S/Inputs/bad-heads.mlir 2>&1 | FileCheck %s --check-prefix=VERIFY

// ROUNDTRIP: gqa.attention ins({{.*}}) outs({{.*}}) heads(8, 2) layout<bshd> mask<causal>
// SCHEDULE: gqa.attention {{.*}} {schedule = #gqa.schedule<target = "sm_90"
// CPU: llvm.func @gqa_attention
// CPU-NOT: gqa.
// PTX: gpu.binary @gqa_kernels
// NOPLUGIN: Dialect `gqa' not found for custom op 'gqa.attention'
// VERIFY: error: 'gqa.attention' op q_heads (8) is not a multiple of kv_heads (3)

func.func @gqa_attention(%q: memref<?x?x8x64xf32>, %k: memref<?x?x2x64xf32>, %o: memref<?x?x8x64xf32>) {
  gqa.attention ins(%q, %k, %k : memref<?x?x8x64xf32>, memref<?x?x2x64xf32>, memref<?x?x2x64xf32>)
    outs(%o : memref<?x?x8x64xf32>) heads(8, 2) layout<bshd> mask<causal>
  return
}
