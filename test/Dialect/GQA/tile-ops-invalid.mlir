// RUN: gqa-opt %s -split-input-file -verify-diagnostics

// Every rule of the tile-level ops' verifiers, each with a case that breaks it.

func.func @f(%query: memref<?x?x32x128xbf16>, %i: index) {
  // expected-error @+1 {{'gqa.load_query_tile' op expects heads(q_heads, kv_heads) with kv_heads >= 1 dividing q_heads, got heads(32, 5)}}
  %q = gqa.load_query_tile %query[%i, %i, %i] heads(32, 5) layout<bshd> : memref<?x?x32x128xbf16> -> tensor<64x128xbf16>
  return
}

// -----

func.func @f(%query: memref<?x?x32x128xbf16>, %i: index) {
  // expected-error @+1 {{expects 'query' to have q_heads = 16 heads, got 32}}
  %q = gqa.load_query_tile %query[%i, %i, %i] heads(16, 4) layout<bshd> : memref<?x?x32x128xbf16> -> tensor<64x128xbf16>
  return
}

// -----

func.func @f(%query: memref<?x?x32x128xbf16>, %i: index) {
  // expected-error @+1 {{expects dimension 1 of 'tile' (64) to equal dimension 3 of 'query' (128)}}
  %q = gqa.load_query_tile %query[%i, %i, %i] heads(32, 4) layout<bshd> : memref<?x?x32x128xbf16> -> tensor<64x64xbf16>
  return
}

// -----

func.func @f(%query: memref<?x?x32x128xbf16>, %i: index) {
  // expected-error @+1 {{expects 'tile' and 'query' to hold the same element type, got 'f16' and 'bf16'}}
  %q = gqa.load_query_tile %query[%i, %i, %i] heads(32, 4) layout<bshd> : memref<?x?x32x128xbf16> -> tensor<64x128xf16>
  return
}

// -----

func.func @f(%query: memref<?x?x32x128xbf16>, %i: index) {
  // expected-error @+1 {{expects a 'rows' operand exactly when the tile's row dimension is dynamic, got 'tensor<?x128xbf16>' without rows}}
  %q = gqa.load_query_tile %query[%i, %i, %i] heads(32, 4) layout<bshd> : memref<?x?x32x128xbf16> -> tensor<?x128xbf16>
  return
}

// -----

func.func @f(%query: memref<?x?x32xbf16>, %i: index) {
  // expected-error @+1 {{expects 'query' to be a memref of rank 4, got 'memref<?x?x32xbf16>'}}
  %q = gqa.load_query_tile %query[%i, %i, %i] heads(32, 4) layout<bshd> : memref<?x?x32xbf16> -> tensor<64x128xbf16>
  return
}

// -----

func.func @f(%key: memref<?x?x4x128xbf16>, %i: index) {
  // expected-error @+1 {{expects 'tile' to have a static size in dimension 0, got 'tensor<?x128xbf16>'}}
  %k = gqa.load_kv_tile %key[%i, %i, %i] kv_len(%i) layout<bshd> : memref<?x?x4x128xbf16> -> tensor<?x128xbf16>
  return
}

// -----

func.func @f(%pool: memref<?x16x4x64xbf16>, %table: memref<?x?xi64>, %i: index) {
  // expected-error @+1 {{expects 'block_table' to be a rank-2 memref of i32, got 'memref<?x?xi64>'}}
  %v = gqa.load_kv_tile %pool[%i, %i, %i] kv_len(%i) block_table(%table : memref<?x?xi64>) layout<bshd> : memref<?x16x4x64xbf16> -> tensor<32x64xbf16>
  return
}

// -----

func.func @f(%pool: memref<?x?x4x64xbf16>, %table: memref<?x?xi32>, %i: index) {
  // expected-error @+1 {{expects a static page size (dimension 1 of the paged 'source'), got 'memref<?x?x4x64xbf16>'}}
  %v = gqa.load_kv_tile %pool[%i, %i, %i] kv_len(%i) block_table(%table : memref<?x?xi32>) layout<bshd> : memref<?x?x4x64xbf16> -> tensor<32x64xbf16>
  return
}

// -----

func.func @f(%q: tensor<64x128xbf16>, %k: tensor<32x64xbf16>) {
  // expected-error @+1 {{expects dimension 1 of 'query' (128) to equal dimension 1 of 'key' (64)}}
  %s = gqa.scores %q, %k scale(1.0) : tensor<64x128xbf16>, tensor<32x64xbf16> -> tensor<64x32xf32>
  return
}

// -----

func.func @f(%q: tensor<64x128xbf16>, %k: tensor<32x128xbf16>) {
  // expected-error @+1 {{expects dimension 1 of 'scores' (64) to equal dimension 0 of 'key' (32)}}
  %s = gqa.scores %q, %k scale(1.0) : tensor<64x128xbf16>, tensor<32x128xbf16> -> tensor<64x64xf32>
  return
}

// -----

func.func @f(%q: tensor<64x128xbf16>, %k: tensor<32x128xf16>) {
  // expected-error @+1 {{expects 'query' and 'key' to hold the same element type, got 'bf16' and 'f16'}}
  %s = gqa.scores %q, %k scale(1.0) : tensor<64x128xbf16>, tensor<32x128xf16> -> tensor<64x32xf32>
  return
}

// -----

func.func @f(%q: tensor<64x128xbf16>, %k: tensor<32x128xbf16>) {
  // expected-error @+1 {{expects a finite, positive scale, got -1}}
  %s = gqa.scores %q, %k scale(-1.0) : tensor<64x128xbf16>, tensor<32x128xbf16> -> tensor<64x32xf32>
  return
}

// -----

func.func @f(%q: tensor<64x128xbf16>, %k: tensor<32x128xbf16>) {
  // expected-error @+1 {{expects a finite, positive softcap, got 0}}
  %s = gqa.scores %q, %k scale(1.0) softcap(0.0) : tensor<64x128xbf16>, tensor<32x128xbf16> -> tensor<64x32xf32>
  return
}

// -----

func.func @f(%s: tensor<64x32xf32>, %i: index) {
  // expected-error @+1 {{expects group >= 1, got 0}}
  %m = gqa.mask_scores %s rows(%i) keys(%i) offset(%i) kv_len(%i) group(0) mask<causal> : tensor<64x32xf32>
  return
}

// -----

func.func @f(%s: tensor<64x32xf32>, %m: tensor<32xf32>) {
  // expected-error @+1 {{expects dimension 0 of 'scores' (64) to equal dimension 0 of 'max' (32)}}
  %p, %m1, %l1, %a = gqa.online_softmax %s, %m, %m : tensor<64x32xf32>, tensor<32xf32> -> tensor<64x32xbf16>
  return
}

// -----

func.func @f(%s: tensor<64x32xf32>, %m: tensor<64xf32>) {
  // expected-error @+1 {{expects 'probabilities' to have the shape of 'scores', got 'tensor<64x16xbf16>' and 'tensor<64x32xf32>'}}
  %p, %m1, %l1, %a = gqa.online_softmax %s, %m, %m : tensor<64x32xf32>, tensor<64xf32> -> tensor<64x16xbf16>
  return
}

// -----

func.func @f(%p: tensor<64x32xbf16>, %v: tensor<16x64xbf16>, %acc: tensor<64x64xf32>, %a: tensor<64xf32>) {
  // expected-error @+1 {{expects dimension 1 of 'probabilities' (32) to equal dimension 0 of 'value' (16)}}
  %r = gqa.accumulate %p, %v, %acc, %a : tensor<64x32xbf16>, tensor<16x64xbf16>, tensor<64x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @f(%p: tensor<64x32xbf16>, %v: tensor<32x64xf16>, %acc: tensor<64x64xf32>, %a: tensor<64xf32>) {
  // expected-error @+1 {{expects 'probabilities' and 'value' to hold the same element type, got 'bf16' and 'f16'}}
  %r = gqa.accumulate %p, %v, %acc, %a : tensor<64x32xbf16>, tensor<32x64xf16>, tensor<64x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @f(%p: tensor<64x32xbf16>, %v: tensor<32x64xbf16>, %acc: tensor<64x128xf32>, %a: tensor<64xf32>) {
  // expected-error @+1 {{expects dimension 1 of 'accumulator' (128) to equal dimension 1 of 'value' (64)}}
  %r = gqa.accumulate %p, %v, %acc, %a : tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<64x128xf32>, tensor<64xf32>
  return
}

// -----

func.func @f(%acc: tensor<64x64xf32>, %m: tensor<32xf32>) {
  // expected-error @+1 {{expects dimension 0 of 'max' (32) to equal dimension 0 of 'accumulator' (64)}}
  %o, %lse = gqa.finalize %acc, %m, %m : tensor<64x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @f(%o: tensor<64x64xf32>, %out: memref<?x?x32x128xbf16>, %i: index) {
  // expected-error @+1 {{expects dimension 1 of 'tile' (64) to equal dimension 3 of 'output' (128)}}
  gqa.store_output_tile %o, %out[%i, %i, %i] heads(32, 4) layout<bshd> : tensor<64x64xf32>, memref<?x?x32x128xbf16>
  return
}

// -----

func.func @f(%o: tensor<64x64xf32>, %lse: tensor<64xf32>, %wo: memref<?x?x32x?xf32>, %wl: memref<?x?x32x?xf32>, %i: index) {
  // expected-error @+1 {{expects 'partial_out' to be an f32 memref [splits, B, Hq, Sq, Dv], got 'memref<?x?x32x?xf32>'}}
  gqa.store_partial_tile %o, %lse, %wo, %wl[%i, %i, %i, %i] group(8) : tensor<64x64xf32>, tensor<64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x?xf32>
  return
}

// -----

func.func @f(%o: tensor<64x64xf32>, %lse: tensor<32xf32>, %wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %i: index) {
  // expected-error @+1 {{expects dimension 0 of 'tile' (64) to equal dimension 0 of 'lse' (32)}}
  gqa.store_partial_tile %o, %lse, %wo, %wl[%i, %i, %i, %i] group(8) : tensor<64x64xf32>, tensor<32xf32>, memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>
  return
}

// -----

func.func @f(%wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %out: memref<?x?x16x64xbf16>, %i: index) {
  // expected-error @+1 {{expects dimension 2 of 'partial_out' (32) to equal dimension 2 of 'output' (16)}}
  gqa.combine_splits %wo, %wl, %out[%i, %i] splits(%i) rows(8) layout<bshd> : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x16x64xbf16>
  return
}

// -----

func.func @f(%wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %out: memref<?x?x32x64xbf16>, %i: index) {
  // expected-error @+1 {{expects rows >= 1, got 0}}
  gqa.combine_splits %wo, %wl, %out[%i, %i] splits(%i) rows(0) layout<bshd> : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
  return
}

// -----

// The rows of a partial block are dynamic in every tile or in none.
func.func @f(%q: tensor<4x8xf32>, %k: tensor<4x8xf32>) {
  // expected-error @+1 {{expects dimension 0 of 'scores' (?) to equal dimension 0 of 'query' (4)}}
  %s = gqa.scores %q, %k scale(1.0) : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
  return
}

// -----

// The workspaces' head count and head dim come from the output, statically.
func.func @f(%wo: memref<?x?x?x?x?xf32>, %wl: memref<?x?x?x?xf32>, %out: memref<?x?x32x64xbf16>, %i: index) {
  // expected-error @+1 {{expects dimension 2 of 'partial_out' (?) to equal dimension 2 of 'output' (32)}}
  gqa.combine_splits %wo, %wl, %out[%i, %i] splits(%i) rows(8) layout<bshd> : memref<?x?x?x?x?xf32>, memref<?x?x?x?xf32>, memref<?x?x32x64xbf16>
  return
}

// -----

func.func @f(%query: memref<?x?x?x128xbf16>, %i: index) {
  // expected-error @+1 {{expects 'query' to have a static head count and head dim (dims 2 and 3), got 'memref<?x?x?x128xbf16>'}}
  %q = gqa.load_query_tile %query[%i, %i, %i] heads(32, 4) layout<bshd> : memref<?x?x?x128xbf16> -> tensor<64x128xbf16>
  return
}

// -----

func.func @f(%sinks: memref<?xf32>, %i: index) {
  // expected-error @+1 {{expects 'sinks' to be an f32 memref [Hq] with static Hq, got 'memref<?xf32>'}}
  %s = gqa.load_sink_tile %sinks[%i, %i] group(8) : memref<?xf32> -> tensor<64xf32>
  return
}

// -----

func.func @f(%sinks: memref<12xf32>, %i: index) {
  // expected-error @+1 {{expects group >= 1 dividing the 12 sinks, got 8}}
  %s = gqa.load_sink_tile %sinks[%i, %i] group(8) : memref<12xf32> -> tensor<64xf32>
  return
}

// -----

func.func @f(%sinks: memref<16xf32>, %i: index) {
  // expected-error @+1 {{expects a 'rows' operand exactly when the tile's row dimension is dynamic, got 'tensor<?xf32>' without rows}}
  %s = gqa.load_sink_tile %sinks[%i, %i] group(8) : memref<16xf32> -> tensor<?xf32>
  return
}

// -----

func.func @f(%lse: tensor<64xf32>, %out: memref<?x?x32xf32>, %i: index) {
  // expected-error @+1 {{expects 'output' to be an f32 memref [B, Hq, Sq] with static Hq, got 'memref<?x?x32xf32>'}}
  gqa.store_lse_tile %lse, %out[%i, %i, %i] group(8) : tensor<64xf32>, memref<?x?x32xf32>
  return
}

// -----

func.func @f(%acc: tensor<64x64xf32>, %m: tensor<64xf32>, %s: tensor<32xf32>) {
  // expected-error @+1 {{expects dimension 0 of 'sinks' (32) to equal dimension 0 of 'max' (64)}}
  %o, %lse = gqa.finalize %acc, %m, %m sinks(%s : tensor<32xf32>) : tensor<64x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @f(%wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %out: memref<?x?x32x64xbf16>, %s: memref<16xf32>, %i: index) {
  // expected-error @+1 {{expects dimension 0 of 'sinks' (16) to equal dimension 2 of 'partial_out' (32)}}
  gqa.combine_splits %wo, %wl, %out[%i, %i] splits(%i) rows(8) layout<bshd> sinks(%s : memref<16xf32>) : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
  return
}

// -----

func.func @f(%wo: memref<?x?x32x?x64xf32>, %wl: memref<?x?x32x?xf32>, %out: memref<?x?x32x64xbf16>, %lse: memref<?x?x32xf32>, %i: index) {
  // expected-error @+1 {{expects 'lse' to be an f32 memref [B, Hq, Sq] with static Hq, got 'memref<?x?x32xf32>'}}
  gqa.combine_splits %wo, %wl, %out[%i, %i] splits(%i) rows(8) layout<bshd> lse(%lse : memref<?x?x32xf32>) : memref<?x?x32x?x64xf32>, memref<?x?x32x?xf32>, memref<?x?x32x64xbf16>
  return
}

// -----

func.func @f(%cq: memref<?xf32>, %i: index) {
  // expected-error @+1 {{expects 'offsets' to be a rank-1 memref of i32 or i64 (the B+1 cu_seqlens), got 'memref<?xf32>'}}
  %s, %l = gqa.load_segment %cq[%i] : memref<?xf32>
  return
}

// -----

func.func @f(%cq: memref<?x2xi32>, %i: index) {
  // expected-error @+1 {{expects 'offsets' to be a rank-1 memref of i32 or i64 (the B+1 cu_seqlens), got 'memref<?x2xi32>'}}
  %s, %l = gqa.load_segment %cq[%i] : memref<?x2xi32>
  return
}

// -----

func.func @f(%n: index) {
  // expected-error @+1 {{names launch size 'num_pages'; only 'seq_q', 'seq_kv' and 'batch' are given this way (the others are dimensions of the parameters)}}
  %s = gqa.launch_size "num_pages" %n
  return
}
