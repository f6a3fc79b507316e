/* The CPU path of the C API (gqa-c/CPU.h), used from C: compiles a GQA
 * configuration with attention sinks and the LSE for the host, runs it on
 * seeded inputs against a naive double-precision loop written here, and
 * checks that bad arguments come back as messages. Exits nonzero on the
 * first failed check. */

#include "gqa-c/CPU.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, HQ = 4, HKV = 2, SQ = 3, SKV = 11, D = 8 };

static int failures = 0;

static void check(int condition, const char *what) {
  printf("%s: %s\n", condition ? "ok" : "FAIL", what);
  failures += !condition;
}

/* bshd index. */
static size_t at(int b, int s, int h, int heads, int seq, int d) {
  return (((size_t)b * seq + s) * heads + h) * D + d;
}

int main(void) {
  static float q[B * SQ * HQ * D], k[B * SKV * HKV * D], v[B * SKV * HKV * D];
  static float out[B * SQ * HQ * D], lse[B * HQ * SQ], sinks[HQ];
  int32_t lens[B] = {SKV, 4};
  unsigned seed = 12345;
  float *arrays[] = {q, k, v};
  size_t sizes[] = {sizeof(q) / 4, sizeof(k) / 4, sizeof(v) / 4};
  for (int a = 0; a < 3; ++a)
    for (size_t i = 0; i < sizes[a]; ++i) {
      seed = seed * 1103515245u + 12345u;
      arrays[a][i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
  for (int h = 0; h < HQ; ++h)
    sinks[h] = 0.5f * (float)h - 0.7f;

  gqa_compiler_attention attention;
  memset(&attention, 0, sizeof(attention));
  attention.q_heads = HQ;
  attention.kv_heads = HKV;
  attention.head_dim = D;
  attention.dtype = "f32";
  attention.layout = "bshd";
  attention.causal = 1;
  attention.window_left = -1;
  attention.window_right = -1;
  attention.kv_lens = 1;
  attention.sinks = 1;
  attention.return_lse = 1;
  gqa_cpu_options options = {NULL, 1, -1};
  gqa_cpu_kernel *kernel = NULL;
  char *error = NULL;
  check(gqa_cpu_kernel_create(&attention, &options, &kernel, &error) == 0,
        "compiles for the host");
  if (!kernel) {
    fprintf(stderr, "%s\n", error ? error : "(no message)");
    return 1;
  }

  gqa_cpu_arguments arguments;
  memset(&arguments, 0, sizeof(arguments));
  arguments.batch = B;
  arguments.seq_q = SQ;
  arguments.seq_kv = SKV;
  arguments.query = q;
  arguments.key = k;
  arguments.value = v;
  arguments.kv_lens = lens;
  arguments.sinks = sinks;
  arguments.output = out;
  arguments.lse = lse;
  check(gqa_cpu_kernel_run(kernel, &arguments, &error) == 0, "runs");

  /* The naive loop: causal aligned bottom-right, the sink in the sum. */
  double worst = 0, worstLse = 0;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < HQ; ++h)
      for (int i = 0; i < SQ; ++i) {
        int kvh = h / (HQ / HKV), last = i + lens[b] - SQ;
        double scores[SKV], m = sinks[h], sum = 0;
        for (int j = 0; j < lens[b] && j <= last; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d)
            dot += q[at(b, i, h, HQ, SQ, d)] * k[at(b, j, kvh, HKV, SKV, d)];
          scores[j] = dot / sqrt((double)D);
          m = fmax(m, scores[j]);
        }
        for (int j = 0; j < lens[b] && j <= last; ++j)
          sum += exp(scores[j] - m);
        sum += exp(sinks[h] - m);
        for (int d = 0; d < D; ++d) {
          double o = 0;
          for (int j = 0; j < lens[b] && j <= last; ++j)
            o += exp(scores[j] - m) * v[at(b, j, kvh, HKV, SKV, d)];
          worst = fmax(worst, fabs(o / sum - out[at(b, i, h, HQ, SQ, d)]));
        }
        worstLse =
            fmax(worstLse, fabs(m + log(sum) - lse[(b * HQ + h) * SQ + i]));
      }
  printf("max |out - naive| = %g, max |lse - naive| = %g\n", worst, worstLse);
  check(worst < 1e-5, "the output matches the naive loop");
  check(worstLse < 1e-5, "the LSE matches the naive loop");

  /* The same batch as a ragged one: the dense bshd arrays are packed tokens
   * [B * SQ, H, D] already, split at multiples of SQ and SKV, and kv_lens
   * clamp each key segment as before. Output and LSE ([Hq, T]) must match. */
  static float ragged[B * SQ * HQ * D], raggedLse[HQ * B * SQ];
  attention.varlen = 1;
  attention.packed_kv = 1;
  gqa_cpu_kernel *varlen = NULL;
  check(gqa_cpu_kernel_create(&attention, &options, &varlen, &error) == 0,
        "compiles a ragged batch with packed K/V");
  int32_t cuQ[B + 1] = {0, SQ, 2 * SQ}, cuK[B + 1] = {0, SKV, 2 * SKV};
  gqa_cpu_arguments packed = arguments;
  packed.cu_seqlens_q = cuQ;
  packed.cu_seqlens_k = cuK;
  packed.output = ragged;
  packed.lse = raggedLse;
  check(varlen && gqa_cpu_kernel_run(varlen, &packed, &error) == 0, "runs it");
  double apart = 0;
  for (size_t i = 0; i < sizeof(out) / 4; ++i)
    apart = fmax(apart, fabs(ragged[i] - out[i]));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < HQ; ++h)
      for (int i = 0; i < SQ; ++i)
        apart = fmax(apart, fabs(raggedLse[h * B * SQ + b * SQ + i] -
                                 lse[(b * HQ + h) * SQ + i]));
  check(apart < 1e-6, "and equals the dense batch");
  cuQ[1] = 4;
  cuQ[2] = 3;
  check(varlen && gqa_cpu_kernel_run(varlen, &packed, &error) != 0 && error &&
            strstr(error, "cu_seqlens_q must not decrease"),
        "decreasing offsets are refused");
  gqa_compiler_free(error);
  cuQ[0] = 1;
  check(varlen && gqa_cpu_kernel_run(varlen, &packed, &error) != 0 && error &&
            strstr(error, "cu_seqlens_q[0] must be 0"),
        "offsets not from 0 are refused");
  gqa_compiler_free(error);
  gqa_cpu_kernel_destroy(varlen);
  attention.varlen = attention.packed_kv = 0;

  arguments.sinks = NULL;
  check(gqa_cpu_kernel_run(kernel, &arguments, &error) != 0 && error &&
            strstr(error, "sinks must not be NULL"),
        "a missing array is named");
  gqa_compiler_free(error);
  arguments.sinks = sinks;
  arguments.batch = 0;
  check(gqa_cpu_kernel_run(kernel, &arguments, &error) != 0 && error &&
            strstr(error, "batch must be positive"),
        "a bad size is refused");
  gqa_compiler_free(error);
  gqa_cpu_kernel_destroy(kernel);

  attention.head_dim = 0;
  check(gqa_cpu_kernel_create(&attention, &options, &kernel, &error) != 0 &&
            error != NULL,
        "a bad configuration is refused with a message");
  gqa_compiler_free(error);
  attention.head_dim = D;
  options.schedule = "sm_70";
  check(gqa_cpu_kernel_create(&attention, &options, &kernel, &error) != 0 &&
            error && strstr(error, "schedule must be cpu, sm_80 or sm_90"),
        "an unknown schedule is refused");
  gqa_compiler_free(error);
  return failures != 0;
}
