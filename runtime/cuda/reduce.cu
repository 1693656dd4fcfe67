// CUDA kernels: sums over axes (ReduceSum, GlobalAveragePool and its grad),
// Gather / GatherGrad, and the global gradient norm of GlobalNormScale.
// Semantics: runtime/cpu/reduce.cc, pool.cc, index.cc, optim.cc. Sums are
// accumulated in double like the CPU's; GatherGrad and the gradient norm
// add with float atomics (order-dependent rounding, well within 1e-4).
#include "runtime/cuda/common.cuh"

namespace memplan::cuda {

namespace {

__global__ void reduce_sum_k(const void* x, void* y, FloatType t, Walk kept, int64_t n_out,
                             Walk red, int64_t n_red, double scale) {
  for (int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    int64_t base[1];
    walk_offsets<1>(kept, o, base);
    double acc = 0;
    for (int64_t r = threadIdx.x; r < n_red; r += blockDim.x) {
      int64_t off[1];
      walk_offsets<1>(red, r, off);
      acc += load_float(x, t, base[0] + off[0]);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) store_float(y, t, o, static_cast<float>(acc * scale));
    __syncthreads();
  }
}

__global__ void broadcast_rows_k(const float* dy, float* dx, int64_t planes, int64_t S) {
  MEMPLAN_GRID_LOOP(i, planes * S) dx[i] = dy[i / S] / static_cast<float>(S);
}

__device__ inline int64_t wrap_index(int64_t j, int64_t N) {
  j = j < 0 ? j + N : j;
  return j < 0 ? 0 : (j >= N ? N - 1 : j); // out of range: clamped (the CPU fails)
}

template <class E>
__global__ void gather_k(const E* x, const int64_t* idx, E* y, int64_t outer, int64_t N, int64_t K,
                         int64_t inner) {
  MEMPLAN_GRID_LOOP(i, outer * K * inner) {
    const int64_t e = i % inner, j = (i / inner) % K, o = i / (inner * K);
    y[i] = x[(o * N + wrap_index(idx[j], N)) * inner + e];
  }
}

__global__ void gather_grad_k(const float* dy, const int64_t* idx, float* dx, int64_t outer,
                              int64_t N, int64_t K, int64_t inner) {
  MEMPLAN_GRID_LOOP(i, outer * K * inner) {
    const int64_t e = i % inner, j = (i / inner) % K, o = i / (inner * K);
    atomicAdd(&dx[(o * N + wrap_index(idx[j], N)) * inner + e], dy[i]);
  }
}

__global__ void sumsq_k(const float* x, int64_t n, float* acc) {
  double s = 0;
  MEMPLAN_GRID_LOOP(i, n) s += double(x[i]) * x[i];
  s = block_sum(s);
  if (threadIdx.x == 0) atomicAdd(acc, static_cast<float>(s));
}

__global__ void norm_scale_finish_k(float* acc, double max_norm) {
  const double total = sqrt(static_cast<double>(*acc));
  *acc = static_cast<float>(fmin(1.0, max_norm / (total + 1e-6)));
}

} // namespace

void launch_reduce_sum(const void* x, void* y, FloatType t, const Walk& kept, int64_t n_out,
                       const Walk& red, int64_t n_red, double scale, Stream s) {
  if (n_out <= 0) return;
  const unsigned b = static_cast<unsigned>(n_out < 65535 * 16 ? n_out : 65535 * 16);
  reduce_sum_k<<<b, kThreads, 0, s>>>(x, y, t, kept, n_out, red, n_red, scale);
}

void launch_broadcast_rows(const float* dy, float* dx, int64_t planes, int64_t S, Stream s) {
  if (planes * S > 0)
    broadcast_rows_k<<<blocks_for(planes * S), kThreads, 0, s>>>(dy, dx, planes, S);
}

void launch_gather(const void* x, const int64_t* idx, void* y, int elem, int64_t outer, int64_t N,
                   int64_t K, int64_t inner, Stream s) {
  const int64_t n = outer * K * inner;
  if (n <= 0) return;
  const unsigned b = blocks_for(n);
  switch (elem) {
    case 1:
      gather_k<<<b, kThreads, 0, s>>>(static_cast<const uint8_t*>(x), idx, static_cast<uint8_t*>(y),
                                      outer, N, K, inner);
      break;
    case 2:
      gather_k<<<b, kThreads, 0, s>>>(static_cast<const uint16_t*>(x), idx,
                                      static_cast<uint16_t*>(y), outer, N, K, inner);
      break;
    case 4:
      gather_k<<<b, kThreads, 0, s>>>(static_cast<const uint32_t*>(x), idx,
                                      static_cast<uint32_t*>(y), outer, N, K, inner);
      break;
    default:
      gather_k<<<b, kThreads, 0, s>>>(static_cast<const uint64_t*>(x), idx,
                                      static_cast<uint64_t*>(y), outer, N, K, inner);
      break;
  }
}

void launch_gather_grad(const float* dy, const int64_t* idx, float* dx, int64_t outer, int64_t N,
                        int64_t K, int64_t inner, Stream s) {
  cudaMemsetAsync(dx, 0, static_cast<size_t>(outer * N * inner) * sizeof(float), s);
  const int64_t n = outer * K * inner;
  if (n > 0) gather_grad_k<<<blocks_for(n), kThreads, 0, s>>>(dy, idx, dx, outer, N, K, inner);
}

void launch_sumsq_accumulate(const float* x, int64_t n, float* acc, Stream s) {
  if (n <= 0) return;
  const unsigned b = blocks_for(n) < 1024 ? blocks_for(n) : 1024;
  sumsq_k<<<b, kThreads, 0, s>>>(x, n, acc);
}

void launch_norm_scale_finish(float* acc, double max_norm, Stream s) {
  norm_scale_finish_k<<<1, 1, 0, s>>>(acc, max_norm);
}

} // namespace memplan::cuda
