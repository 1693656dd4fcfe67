// CUDA kernels: elementwise math with numpy broadcasting, Where, activation
// gradients, strided copies (Transpose), Dropout, and the executor's control
// block (step counter for Dropout, NaN flag). Semantics: runtime/cpu/
// elementwise.cc, data.cc, dropout.cc. f32 math in float, like the CPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>

#include "runtime/cuda/common.cuh"
#include "runtime/rng.h"

namespace memplan::cuda {

namespace {

__device__ Control g_control[kControlSlots];

__global__ void advance_step_k(Control* c) {
  c->step += 1;
}

__global__ void nan_check_k(const void* x, FloatType t, int64_t n, int op, int out, Control* c) {
  MEMPLAN_GRID_LOOP(i, n) {
    if (isnan(load_float(x, t, i))) {
      // Ops run in order, so the smallest op index is the first bad op.
      if (atomicMin(&c->bad_op, op) >= op) {
        c->bad_out = out;
        c->bad_elem = i;
      }
      return;
    }
  }
}

__device__ float unary_op(Unary op, float x) {
  switch (op) {
    case Unary::relu:
      return x > 0.f ? x : 0.f;
    case Unary::tanh:
      return tanhf(x);
    case Unary::erf:
      return erff(x);
    case Unary::neg:
      return -x;
    case Unary::exp:
      return expf(x);
    case Unary::log:
      return logf(x);
    case Unary::sqrt:
      return sqrtf(x);
    case Unary::sigmoid:
      return 1.f / (1.f + expf(-x));
    case Unary::abs:
      return fabsf(x);
  }
  return x;
}

__device__ float binary_op(Binary op, float a, float b) {
  switch (op) {
    case Binary::add:
      return a + b;
    case Binary::sub:
      return a - b;
    case Binary::mul:
      return a * b;
    case Binary::div:
      return a / b;
    case Binary::pow:
      return powf(a, b);
    case Binary::max:
      return fmaxf(a, b);
    case Binary::min:
      return fminf(a, b);
  }
  return a;
}

__global__ void unary_k(Unary op, const void* x, void* y, FloatType t, int64_t n) {
  MEMPLAN_GRID_LOOP(i, n) store_float(y, t, i, unary_op(op, load_float(x, t, i)));
}

__global__ void binary_k(Binary op, const void* a, const void* b, void* y, FloatType t, Walk w,
                         int64_t n) {
  MEMPLAN_GRID_LOOP(i, n) {
    int64_t off[2];
    walk_offsets<2>(w, i, off);
    store_float(y, t, i, binary_op(op, load_float(a, t, off[0]), load_float(b, t, off[1])));
  }
}

__global__ void where_k(const uint8_t* c, const float* a, const float* b, float* y, Walk w,
                        int64_t n) {
  MEMPLAN_GRID_LOOP(i, n) {
    int64_t off[3];
    walk_offsets<3>(w, i, off);
    y[i] = c[off[0]] ? a[off[1]] : b[off[2]];
  }
}

__device__ float act_grad_op(ActGrad op, float g, float x) {
  switch (op) {
    case ActGrad::relu_y:
      return x > 0.f ? g : 0.f;
    case ActGrad::tanh_y:
      return g * (1.f - x * x);
    case ActGrad::erf_x:
      return g * 1.1283791670955126f * expf(-x * x);
    case ActGrad::sigmoid_y:
      return g * x * (1.f - x);
  }
  return g;
}

__global__ void act_grad_k(ActGrad op, const void* dy, const void* v, void* dx, FloatType t,
                           int64_t n) {
  MEMPLAN_GRID_LOOP(i, n) {
    store_float(dx, t, i, act_grad_op(op, load_float(dy, t, i), load_float(v, t, i)));
  }
}

template <class E> __global__ void strided_copy_k(const E* in, E* out, Walk w, int64_t n) {
  MEMPLAN_GRID_LOOP(i, n) {
    int64_t off[1];
    walk_offsets<1>(w, i, off);
    out[i] = in[off[0]];
  }
}

__global__ void cast_float_k(const void* x, FloatType from, void* y, FloatType to, int64_t n) {
  MEMPLAN_GRID_LOOP(i, n) store_float(y, to, i, load_float(x, from, i));
}

__global__ void channel_bias_add_k(void* y, const void* bias, FloatType t, int64_t n,
                                   int64_t channels, int64_t inner) {
  MEMPLAN_GRID_LOOP(i, n) {
    store_float(y, t, i, load_float(y, t, i) + load_float(bias, t, (i / inner) % channels));
  }
}

__global__ void dropout_k(const float* x, float* y, uint8_t* mask, int64_t n, double ratio,
                          unsigned long long seed, unsigned long long key, const Control* c) {
  const uint64_t stream = rng_stream(seed, c->step, key);
  const float scale = static_cast<float>(1.0 / (1.0 - ratio));
  MEMPLAN_GRID_LOOP(i, n) {
    const bool keep = rng_uniform(stream, static_cast<uint64_t>(i)) >= ratio;
    y[i] = keep ? x[i] * scale : 0.f;
    if (mask) mask[i] = keep;
  }
}

__global__ void dropout_grad_k(const float* dy, const uint8_t* m, float* dx, int64_t n,
                               float scale) {
  MEMPLAN_GRID_LOOP(i, n) dx[i] = m[i] ? dy[i] * scale : 0.f;
}

} // namespace

Control* control_slot(int slot) {
  void* p = nullptr;
  cudaGetSymbolAddress(&p, g_control);
  return static_cast<Control*>(p) + slot;
}

void launch_advance_step(Control* c, Stream s) {
  advance_step_k<<<1, 1, 0, s>>>(c);
}

void launch_nan_check(const void* x, FloatType t, int64_t n, int op, int out, Control* c,
                      Stream s) {
  if (n > 0) nan_check_k<<<blocks_for(n), kThreads, 0, s>>>(x, t, n, op, out, c);
}

void launch_unary(Unary op, const void* x, void* y, FloatType t, int64_t n, Stream s) {
  if (n > 0) unary_k<<<blocks_for(n), kThreads, 0, s>>>(op, x, y, t, n);
}

void launch_binary(Binary op, const void* a, const void* b, void* y, FloatType t, const Walk& w,
                   int64_t n, Stream s) {
  if (n > 0) binary_k<<<blocks_for(n), kThreads, 0, s>>>(op, a, b, y, t, w, n);
}

void launch_where(const uint8_t* c, const float* a, const float* b, float* y, const Walk& w,
                  int64_t n, Stream s) {
  if (n > 0) where_k<<<blocks_for(n), kThreads, 0, s>>>(c, a, b, y, w, n);
}

void launch_act_grad(ActGrad op, const void* dy, const void* v, void* dx, FloatType t, int64_t n,
                     Stream s) {
  if (n > 0) act_grad_k<<<blocks_for(n), kThreads, 0, s>>>(op, dy, v, dx, t, n);
}

void launch_strided_copy(const void* in, void* out, int elem, const Walk& w, int64_t n, Stream s) {
  if (n <= 0) return;
  const unsigned b = blocks_for(n);
  switch (elem) {
    case 1:
      strided_copy_k<<<b, kThreads, 0, s>>>(static_cast<const uint8_t*>(in),
                                            static_cast<uint8_t*>(out), w, n);
      break;
    case 2:
      strided_copy_k<<<b, kThreads, 0, s>>>(static_cast<const uint16_t*>(in),
                                            static_cast<uint16_t*>(out), w, n);
      break;
    case 4:
      strided_copy_k<<<b, kThreads, 0, s>>>(static_cast<const uint32_t*>(in),
                                            static_cast<uint32_t*>(out), w, n);
      break;
    default:
      strided_copy_k<<<b, kThreads, 0, s>>>(static_cast<const uint64_t*>(in),
                                            static_cast<uint64_t*>(out), w, n);
      break;
  }
}

void launch_cast_float(const void* x, FloatType from, void* y, FloatType to, int64_t n, Stream s) {
  if (n > 0) cast_float_k<<<blocks_for(n), kThreads, 0, s>>>(x, from, y, to, n);
}

void launch_channel_bias_add(void* y, const void* bias, FloatType t, int64_t n, int64_t channels,
                             int64_t inner, Stream s) {
  if (n > 0 && channels > 0 && inner > 0)
    channel_bias_add_k<<<blocks_for(n), kThreads, 0, s>>>(y, bias, t, n, channels, inner);
}

void launch_dropout(const float* x, float* y, uint8_t* mask, int64_t n, double ratio,
                    unsigned long long seed, unsigned long long key, const Control* c, Stream s) {
  if (n > 0) dropout_k<<<blocks_for(n), kThreads, 0, s>>>(x, y, mask, n, ratio, seed, key, c);
}

void launch_dropout_grad(const float* dy, const uint8_t* mask, float* dx, int64_t n, double ratio,
                         Stream s) {
  if (n > 0)
    dropout_grad_k<<<blocks_for(n), kThreads, 0, s>>>(dy, mask, dx, n,
                                                      static_cast<float>(1.0 / (1.0 - ratio)));
}

} // namespace memplan::cuda
