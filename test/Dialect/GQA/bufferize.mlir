// RUN: gqa-opt %s --one-shot-bufferize="bufferize-function-boundaries" | FileCheck %s

// The op bufferizes in destination-passing style: it writes the buffer of its
// init in place (no allocation, no copy: the init is never read).

// CHECK-LABEL: func.func @in_place
// CHECK-SAME: (%[[Q:.*]]: memref<2x8x17x64xf16{{.*}}>, %[[K:.*]]: memref<2x2x40x64xf16{{.*}}>, %[[V:.*]]: memref<2x2x40x64xf16{{.*}}>, %[[INIT:.*]]: memref<2x8x17x64xf16{{.*}}>)
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.copy
// CHECK: gqa.attention ins(%[[Q]], %[[K]], %[[V]] : {{.*}}) outs(%[[INIT]] : {{.*}}) heads(8, 2) layout<bhsd> mask<causal>{{$}}
// CHECK-NEXT: return %[[INIT]]
func.func @in_place(%q: tensor<2x8x17x64xf16>, %k: tensor<2x2x40x64xf16>, %v: tensor<2x2x40x64xf16>,
                    %init: tensor<2x8x17x64xf16>) -> tensor<2x8x17x64xf16> {
  %o = gqa.attention ins(%q, %k, %v : tensor<2x8x17x64xf16>, tensor<2x2x40x64xf16>, tensor<2x2x40x64xf16>)
         outs(%init : tensor<2x8x17x64xf16>) heads(8, 2) layout<bhsd> mask<causal> -> tensor<2x8x17x64xf16>
  return %o : tensor<2x8x17x64xf16>
}

// A fresh tensor.empty init becomes a plain allocation of the output.
// CHECK-LABEL: func.func @empty_init
// CHECK: %[[ALLOC:.*]] = memref.alloc() {{.*}} : memref<1x5x4x32xbf16>
// CHECK: gqa.attention {{.*}} kv_lens(%{{.*}} : memref<1xi32{{.*}}>) outs(%[[ALLOC]] : memref<1x5x4x32xbf16>)
func.func @empty_init(%q: tensor<1x5x4x32xbf16>, %k: tensor<1x9x1x32xbf16>, %v: tensor<1x9x1x32xbf16>,
                      %lens: tensor<1xi32>) -> tensor<1x5x4x32xbf16> {
  %init = tensor.empty() : tensor<1x5x4x32xbf16>
  %o = gqa.attention ins(%q, %k, %v : tensor<1x5x4x32xbf16>, tensor<1x9x1x32xbf16>, tensor<1x9x1x32xbf16>)
         kv_lens(%lens : tensor<1xi32>) outs(%init : tensor<1x5x4x32xbf16>)
         heads(4, 1) layout<bshd> mask<none> -> tensor<1x5x4x32xbf16>
  return %o : tensor<1x5x4x32xbf16>
}

// With sinks and the LSE: both inits are written in place.
// CHECK-LABEL: func.func @sinks_lse
// CHECK-SAME: (%{{.*}}: memref<{{.*}}>, %{{.*}}: memref<{{.*}}>, %[[S:.*]]: memref<8xf32{{.*}}>, %[[INIT:.*]]: memref<2x8x17x64xf16{{.*}}>, %[[LSE:.*]]: memref<2x8x17xf32{{.*}}>)
// CHECK-NOT: memref.alloc
// CHECK: gqa.attention {{.*}} sinks(%[[S]] : {{.*}}) outs(%[[INIT]] : {{.*}}, %[[LSE]] : {{.*}})
// CHECK-NEXT: return %[[INIT]], %[[LSE]]
func.func @sinks_lse(%q: tensor<2x8x17x64xf16>, %k: tensor<2x2x40x64xf16>, %s: tensor<8xf32>,
                     %init: tensor<2x8x17x64xf16>, %lse0: tensor<2x8x17xf32>) -> (tensor<2x8x17x64xf16>, tensor<2x8x17xf32>) {
  %o, %lse = gqa.attention ins(%q, %k, %k : tensor<2x8x17x64xf16>, tensor<2x2x40x64xf16>, tensor<2x2x40x64xf16>)
         sinks(%s : tensor<8xf32>) outs(%init : tensor<2x8x17x64xf16>, %lse0 : tensor<2x8x17xf32>)
         heads(8, 2) layout<bhsd> mask<causal> -> tensor<2x8x17x64xf16>, tensor<2x8x17xf32>
  return %o, %lse : tensor<2x8x17x64xf16>, tensor<2x8x17xf32>
}
