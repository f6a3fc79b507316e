// RUN: gqa-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

// Every rule of the #gqa.schedule verifier.

func.func @f() {
  // expected-error @+1 {{schedule target must be cpu, sm_80 or sm_90, got 'sm_75'}}
  "test.op"() {s = #gqa.schedule<target = "sm_75", block_m = 64, block_n = 64, max_splits = 0, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>} : () -> ()
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{schedule block_m and block_n must be positive, got 0 and 64}}
  "test.op"() {s = #gqa.schedule<target = "cpu", block_m = 0, block_n = 64, max_splits = 0, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>} : () -> ()
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{schedule max_splits must be >= 0 (0: no split-KV), got -1}}
  "test.op"() {s = #gqa.schedule<target = "cpu", block_m = 16, block_n = 64, max_splits = -1, warps = 4, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>} : () -> ()
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{schedule warps and stages must be positive, got 0 and 1}}
  "test.op"() {s = #gqa.schedule<target = "sm_80", block_m = 16, block_n = 64, max_splits = 0, warps = 0, stages = 1, q_in_registers = true, min_ctas_per_sm = 2, max_registers = 0>} : () -> ()
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{schedule min_ctas_per_sm and max_registers must be >= 0, got -1 and 0}}
  "test.op"() {s = #gqa.schedule<target = "sm_80", block_m = 16, block_n = 64, max_splits = 0, warps = 1, stages = 1, q_in_registers = true, min_ctas_per_sm = -1, max_registers = 0>} : () -> ()
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{schedule block_m = 16384 and block_n = 2048 are too large (each at most 16384, a score tile at most 16777216 elements)}}
  "test.op"() {s = #gqa.schedule<target = "cpu", block_m = 16384, block_n = 2048, max_splits = 0, warps = 1, stages = 1, q_in_registers = false, min_ctas_per_sm = 0, max_registers = 0>} : () -> ()
  return
}
