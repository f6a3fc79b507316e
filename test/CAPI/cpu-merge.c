/* gqa.merge_states on the CPU through the C API (gqa-c/CPU.h): attention
 * over the first and the last keys apart, each with its LSE, merged, equals
 * attention over all keys (cascade attention's identity), in each layout
 * and in place; a row with no key in either part is 0 with LSE -inf; the
 * merge also matches a double-precision loop written here; bad arguments
 * come back as messages. Exits nonzero on the first failed check. */

#include "gqa-c/CPU.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not multiples of any block: 3 batch entries of 5 queries, 8 heads over 2
 * KV heads, D = Dv = 12, 23 keys split after 9. */
enum { B = 3, HQ = 8, HKV = 2, SQ = 5, SKV = 23, SPLIT = 9, D = 12 };

static int failures = 0;

static void check(int condition, const char *what) {
  printf("%s: %s\n", condition ? "ok" : "FAIL", what);
  failures += !condition;
}

/* Element (b, h, s, d) of a [B, S, H, D] (bshd) or [B, H, S, D] tensor. */
static size_t at(int bshd, int b, int h, int s, int heads, int seq, int d) {
  return bshd ? (((size_t)b * seq + s) * heads + h) * D + d
              : (((size_t)b * heads + h) * seq + s) * D + d;
}

/* Attention over keys [first, first + count) of k/v with the LSE. */
static int attend(gqa_cpu_kernel *kernel, int bshd, const float *q,
                  const float *k, const float *v, int first, int count,
                  const int32_t *lens, float *out, float *lse) {
  static float kPart[B * SKV * HKV * D], vPart[B * SKV * HKV * D];
  int32_t partLens[B];
  for (int b = 0; b < B; ++b) {
    int32_t seen = lens[b] - first;
    partLens[b] = seen < 0 ? 0 : seen > count ? count : seen;
    for (int h = 0; h < HKV; ++h)
      for (int s = 0; s < count; ++s)
        for (int d = 0; d < D; ++d) {
          kPart[at(bshd, b, h, s, HKV, count, d)] =
              k[at(bshd, b, h, first + s, HKV, SKV, d)];
          vPart[at(bshd, b, h, s, HKV, count, d)] =
              v[at(bshd, b, h, first + s, HKV, SKV, d)];
        }
  }
  gqa_cpu_arguments arguments;
  memset(&arguments, 0, sizeof(arguments));
  arguments.batch = B;
  arguments.seq_q = SQ;
  arguments.seq_kv = count;
  arguments.query = q;
  arguments.key = kPart;
  arguments.value = vPart;
  arguments.kv_lens = partLens;
  arguments.output = out;
  arguments.lse = lse;
  char *error = NULL;
  int status = gqa_cpu_kernel_run(kernel, &arguments, &error);
  if (status)
    fprintf(stderr, "%s\n", error ? error : "(no message)");
  gqa_compiler_free(error);
  return status;
}

/* Largest |x - y| over n values, and whether the infinities agree. */
static double maxError(const float *x, const float *y, size_t n,
                       int *infinitiesAgree) {
  double worst = 0;
  *infinitiesAgree = 1;
  for (size_t i = 0; i < n; ++i) {
    if (isinf(x[i]) || isinf(y[i])) {
      *infinitiesAgree &= x[i] == y[i];
      continue;
    }
    double e = fabs((double)x[i] - (double)y[i]);
    worst = e > worst ? e : worst;
  }
  return worst;
}

static void checkLayout(int bshd) {
  enum { QN = B * SQ * HQ * D, KN = B * SKV * HKV * D, LN = B * HQ * SQ };
  static float q[QN], k[KN], v[KN], whole[QN], a[QN], b[QN], merged[QN];
  static float lseWhole[LN], lseA[LN], lseB[LN], lseMerged[LN];
  /* Every key, 4 keys (the second part sees none), and none. */
  int32_t lens[B] = {SKV, 4, 0};
  unsigned seed = bshd ? 777u : 4242u;
  float *arrays[] = {q, k, v};
  size_t sizes[] = {QN, KN, KN};
  for (int i = 0; i < 3; ++i)
    for (size_t j = 0; j < sizes[i]; ++j) {
      seed = seed * 1103515245u + 12345u;
      arrays[i][j] = (float)((seed >> 8) & 0xffff) / 16384.0f - 2.0f;
    }
  const char *layout = bshd ? "bshd" : "bhsd";
  char what[160];

  gqa_compiler_attention attention;
  memset(&attention, 0, sizeof(attention));
  attention.q_heads = HQ;
  attention.kv_heads = HKV;
  attention.head_dim = D;
  attention.dtype = "f32";
  attention.layout = layout;
  attention.window_left = -1;
  attention.window_right = -1;
  attention.kv_lens = 1;
  attention.return_lse = 1;
  gqa_cpu_options options = {NULL, 1, -1};
  gqa_cpu_kernel *kernel = NULL;
  char *error = NULL;
  if (gqa_cpu_kernel_create(&attention, &options, &kernel, &error)) {
    fprintf(stderr, "%s\n", error ? error : "(no message)");
    check(0, "compiles the attention");
    return;
  }
  gqa_compiler_merge_states merge = {HQ, D, "f32", layout, 0};
  gqa_cpu_merge_kernel *merger = NULL;
  snprintf(what, sizeof(what), "compiles the merge (%s)", layout);
  check(gqa_cpu_merge_kernel_create(&merge, &options, &merger, &error) == 0,
        what);
  if (!merger) {
    fprintf(stderr, "%s\n", error ? error : "(no message)");
    gqa_cpu_kernel_destroy(kernel);
    return;
  }
  check(attend(kernel, bshd, q, k, v, 0, SKV, lens, whole, lseWhole) == 0 &&
            attend(kernel, bshd, q, k, v, 0, SPLIT, lens, a, lseA) == 0 &&
            attend(kernel, bshd, q, k, v, SPLIT, SKV - SPLIT, lens, b, lseB) ==
                0,
        "attends to all keys and to each part");

  /* The double-precision merge of the parts, written here. */
  static float expected[QN], expectedLse[LN];
  for (int bb = 0; bb < B; ++bb)
    for (int h = 0; h < HQ; ++h)
      for (int s = 0; s < SQ; ++s) {
        size_t row = ((size_t)bb * HQ + h) * SQ + s;
        double la = lseA[row], lb = lseB[row];
        double m = la > lb ? la : lb;
        if (isinf(m))
          m = 0;
        double wa = exp(la - m), wb = exp(lb - m), total = wa + wb;
        expectedLse[row] = total > 0 ? (float)(m + log(total)) : -INFINITY;
        for (int d = 0; d < D; ++d) {
          size_t i = at(bshd, bb, h, s, HQ, SQ, d);
          expected[i] =
              total > 0 ? (float)((wa * a[i] + wb * b[i]) / total) : 0.0f;
        }
      }

  gqa_cpu_merge_arguments arguments = {B, SQ,   a,      lseA,
                                       b, lseB, merged, lseMerged};
  for (size_t i = 0; i < QN; ++i)
    merged[i] = NAN;
  for (size_t i = 0; i < LN; ++i)
    lseMerged[i] = NAN;
  check(gqa_cpu_merge_kernel_run(merger, &arguments, &error) == 0, "merges");
  int agree;
  double outError = maxError(merged, whole, QN, &agree);
  double lseError = maxError(lseMerged, lseWhole, LN, &agree);
  snprintf(what, sizeof(what),
           "the halves merged equal the whole (%s): out %.2g, lse %.2g", layout,
           outError, lseError);
  check(outError < 1e-5 && lseError < 1e-5 && agree, what);
  double refError = maxError(merged, expected, QN, &agree);
  double refLseError = maxError(lseMerged, expectedLse, LN, &agree);
  snprintf(what, sizeof(what),
           "and match the double-precision merge: out %.2g, lse %.2g", refError,
           refLseError);
  check(refError < 1e-5 && refLseError < 1e-5 && agree, what);
  /* Batch entry 2 sees no key: 0 and -inf. */
  int empty = 1;
  for (int h = 0; h < HQ; ++h)
    for (int s = 0; s < SQ; ++s) {
      empty &= isinf(lseMerged[(2 * HQ + h) * SQ + s]) &&
               lseMerged[(2 * HQ + h) * SQ + s] < 0;
      for (int d = 0; d < D; ++d)
        empty &= merged[at(bshd, 2, h, s, HQ, SQ, d)] == 0.0f;
    }
  check(empty, "a row no part saw is 0 with LSE -inf");

  /* In place: the merge into the first part. */
  arguments.output = a;
  check(gqa_cpu_merge_kernel_run(merger, &arguments, &error) == 0 &&
            memcmp(a, merged, sizeof(merged)) == 0,
        "merges in place into out_a, bit for bit");

  /* Bad arguments. */
  arguments.lse = lseA;
  check(gqa_cpu_merge_kernel_run(merger, &arguments, &error) != 0 && error &&
            strstr(error, "lse is lse_a"),
        "an LSE that overwrites a part's");
  gqa_compiler_free(error);
  error = NULL;
  arguments.lse = lseMerged;
  arguments.out_b = NULL;
  check(gqa_cpu_merge_kernel_run(merger, &arguments, &error) != 0 && error &&
            strstr(error, "out_b must not be NULL"),
        "a missing part");
  gqa_compiler_free(error);
  error = NULL;
  arguments.out_b = b;
  arguments.batch = 0;
  check(gqa_cpu_merge_kernel_run(merger, &arguments, &error) != 0 && error &&
            strstr(error, "batch must be positive"),
        "an empty batch");
  gqa_compiler_free(error);
  gqa_cpu_merge_kernel_destroy(merger);
  gqa_cpu_kernel_destroy(kernel);
}

int main(void) {
  checkLayout(1);
  checkLayout(0);
  gqa_compiler_merge_states bad = {HQ, D, "f32", "bhsd", 1};
  gqa_cpu_merge_kernel *merger = NULL;
  char *error = NULL;
  check(gqa_cpu_merge_kernel_create(&bad, NULL, &merger, &error) != 0 &&
            error && strstr(error, "the layout must be bshd"),
        "packed tokens in bhsd");
  gqa_compiler_free(error);
  return failures ? 1 : 0;
}
