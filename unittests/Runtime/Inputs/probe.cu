// Probe kernels for RuntimeGpuTest: they record what the runtime passed them
// (sizes, pointers, grid, dynamic shared memory) instead of computing
// attention. probe.ptx is generated from this file:
//   nvcc -arch=compute_75 -ptx probe.cu -o probe.ptx
//   sed -i 's/^\.version .*/.version 7.0/' probe.ptx
// (PTX ISA 7.0 so that any driver since CUDA 11.0 can JIT it).

extern "C" __global__ void gqa_probe_main(const char *q, const char *k, const char *v, long long *out,
                                          long long batch, long long seq_q, int seq_kv) {
  extern __shared__ long long scratch[];
  unsigned cta = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  // Touch the last dynamic shared word so the launch needs all of it.
  if (threadIdx.x == 0) {
    scratch[(64 * 1024) / 8 - 1] = cta + 1;
    long long *record = out + 8 * cta;
    record[0] = batch;
    record[1] = seq_q;
    record[2] = seq_kv;
    record[3] = k - q;
    record[4] = v - q;
    record[5] = scratch[(64 * 1024) / 8 - 1];
    record[6] = blockDim.x;
  }
}

extern "C" __global__ void gqa_probe_split(const char *q, const char *k, const char *v, float *out,
                                           float *partial_out, float *partial_lse, int num_splits) {
  // One split: write what the combine kernel would (the runtime does not launch it, and passes no workspace).
  if (num_splits == 1) {
    if (threadIdx.x == 0) {
      out[0] = 1.0f;
      out[1] = 2.0f + (float)(gridDim.x - 1);
      out[2] = 1.0f;
    }
    return;
  }
  if (threadIdx.x == 0) {
    partial_lse[blockIdx.x] = blockIdx.x + 1.0f;
    partial_out[blockIdx.x] = 2.0f * (blockIdx.x + 1.0f) + (float)(gridDim.x - num_splits);
  }
}

extern "C" __global__ void gqa_probe_combine(const float *partial_out, const float *partial_lse,
                                             float *out, long long num_splits) {
  if (threadIdx.x == 0) {
    float lse = 0, acc = 0;
#pragma unroll 1
    for (long long s = 0; s < num_splits; ++s) {
      lse += partial_lse[s];
      acc += partial_out[s];
    }
    out[0] = lse;
    out[1] = acc;
    out[2] = (float)num_splits;
  }
}
