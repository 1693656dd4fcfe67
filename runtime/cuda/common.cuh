// Shared device helpers of the .cu files: grid sizing and the output walk.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "runtime/cuda/device.h"

namespace memplan::cuda {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b > 65535 * 16 ? 65535 * 16 : b); // grid-stride loops cover the rest
}

#define MEMPLAN_GRID_LOOP(i, n)                                                                    \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n);                        \
       i += int64_t(blockDim.x) * gridDim.x)

/// Element i of an f32 / f16 / bf16 array as float, and stored from float
/// (round to nearest even).
__device__ inline float load_float(const void* p, FloatType t, int64_t i) {
  switch (t) {
    case FloatType::f16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case FloatType::bf16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ inline void store_float(void* p, FloatType t, int64_t i, float v) {
  switch (t) {
    case FloatType::f16:
      static_cast<__half*>(p)[i] = __float2half_rn(v);
      break;
    case FloatType::bf16:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
      break;
    default:
      static_cast<float*>(p)[i] = v;
      break;
  }
}

/// Offsets of output element i in up to three operands (Walk strides).
template <int K> __device__ inline void walk_offsets(const Walk& w, int64_t i, int64_t (&off)[K]) {
  for (int k = 0; k < K; ++k)
    off[k] = 0;
  for (int d = w.rank - 1; d >= 0; --d) {
    const int64_t c = i % w.shape[d];
    i /= w.shape[d];
    for (int k = 0; k < K; ++k)
      off[k] += c * w.st[k][d];
  }
}

/// Block-wide sum of a double (blockDim.x a multiple of 32, <= 1024); every
/// thread gets the result.
__device__ inline double block_sum(double v) {
  __shared__ double part[32];
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  double t = lane < nw ? part[lane] : 0.0;
  for (int o = 16; o > 0; o >>= 1)
    t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

__device__ inline double block_max(double v) {
  __shared__ double part[32];
  for (int o = 16; o > 0; o >>= 1)
    v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  double t = lane < nw ? part[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1)
    t = fmax(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

} // namespace memplan::cuda
