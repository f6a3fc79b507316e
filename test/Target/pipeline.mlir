// RUN: gqa-opt %s --gqa-lower-to-ptx="chip=sm_80 max-splits=4" | FileCheck %s
// RUN: gqa-opt %s --gqa-lower-to-ptx | FileCheck %s --check-prefix=SM90

// The named pipeline takes gqa.attention on tensors all the way to a
// gpu.binary holding the PTX of its kernels, with a host function in the
// LLVM dialect that launches them.

// CHECK:     llvm.func @decode(
// CHECK:       llvm.call @mgpuMemAlloc
// CHECK:       gpu.launch_func <%{{.*}} : !llvm.ptr> @gqa_kernels::@gqa_attention_fwd_split
// CHECK:       gpu.launch_func <%{{.*}} : !llvm.ptr> @gqa_kernels::@gqa_attention_combine
// CHECK:       llvm.call @mgpuMemFree
// CHECK:     gpu.binary @gqa_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_80", features = "+ptx80">, properties = {{{.*}}}, assembly = "{{.*}}.target sm_80{{.*}}.visible .entry gqa_attention_fwd_split({{.*}}.visible .entry gqa_attention_combine({{.*}}">]
// SM90:      gpu.binary @gqa_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, properties = {{{.*}}}, assembly = "{{.*}}.target sm_90{{.*}}.visible .entry gqa_attention_fwd({{.*}}">]
func.func @decode(%q: tensor<?x1x8x64xbf16>, %k: tensor<?x?x2x64xbf16>,
                  %v: tensor<?x?x2x64xbf16>, %init: tensor<?x1x8x64xbf16>)
    -> tensor<?x1x8x64xbf16> {
  %o = gqa.attention ins(%q, %k, %v : tensor<?x1x8x64xbf16>, tensor<?x?x2x64xbf16>, tensor<?x?x2x64xbf16>)
         outs(%init : tensor<?x1x8x64xbf16>) heads(8, 2) layout<bshd> mask<causal>
         -> tensor<?x1x8x64xbf16>
  return %o : tensor<?x1x8x64xbf16>
}
