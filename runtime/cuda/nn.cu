// CUDA kernels: Softmax / LogSoftmax and grads, LayerNormalization and
// BatchNormTraining with their grads, SoftmaxCrossEntropyLoss and its grad,
// MaxPool and MaxPoolGrad. Semantics (formulas in their banners):
// runtime/cpu/softmax.cc, norm.cc, loss.cc, pool.cc. One block per lane /
// row / channel / sample; statistics accumulate in double like the CPU's.
#include "runtime/cuda/common.cuh"

namespace memplan::cuda {

namespace {

// ---------------------------------------------------------------- softmax

__global__ void softmax_k(const float* x, float* y, int64_t outer, int64_t L, int64_t inner,
                          bool log) {
  for (int64_t lane = blockIdx.x; lane < outer * inner; lane += gridDim.x) {
    const int64_t b = (lane / inner) * L * inner + lane % inner;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x)
      mx = fmaxf(mx, x[b + j * inner]);
    mx = static_cast<float>(block_max(mx));
    double sum = 0;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x)
      sum += expf(x[b + j * inner] - mx);
    const float s = static_cast<float>(block_sum(sum));
    const float ls = logf(s);
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
      const float v = x[b + j * inner] - mx;
      y[b + j * inner] = log ? v - ls : expf(v) / s;
    }
    __syncthreads();
  }
}

__global__ void softmax_grad_k(const float* dy, const float* y, float* dx, int64_t outer, int64_t L,
                               int64_t inner, bool log) {
  for (int64_t lane = blockIdx.x; lane < outer * inner; lane += gridDim.x) {
    const int64_t b = (lane / inner) * L * inner + lane % inner;
    double dot = 0;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
      const int64_t i = b + j * inner;
      dot += log ? dy[i] : dy[i] * y[i];
    }
    const float d = static_cast<float>(block_sum(dot));
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
      const int64_t i = b + j * inner;
      dx[i] = log ? dy[i] - expf(y[i]) * d : y[i] * (dy[i] - d);
    }
    __syncthreads();
  }
}

// ---------------------------------------------------------------- layer norm

__device__ inline int64_t bidx(int64_t n, int64_t j) {
  return n == 1 ? 0 : j;
}

__global__ void layer_norm_k(const float* x, const float* sc, int64_t sn, const float* bias,
                             int64_t bn, float* y, float* mean, float* inv, int64_t rows, int64_t D,
                             double eps) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * D;
    double m = 0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
      m += xr[j];
    m = block_sum(m) / static_cast<double>(D);
    double v = 0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
      v += (xr[j] - m) * (xr[j] - m);
    v = block_sum(v) / static_cast<double>(D);
    const double is = 1.0 / sqrt(v + eps);
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      double o = (xr[j] - m) * is * sc[bidx(sn, j)];
      if (bias) o += bias[bidx(bn, j)];
      y[r * D + j] = static_cast<float>(o);
    }
    if (threadIdx.x == 0) {
      if (mean) mean[r] = static_cast<float>(m);
      if (inv) inv[r] = static_cast<float>(is);
    }
    __syncthreads();
  }
}

__global__ void layer_norm_dx_k(const float* g, const float* x, const float* sc, int64_t sn,
                                const float* mean, const float* inv, float* dx, int64_t rows,
                                int64_t D) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const double m = mean[r], is = inv[r];
    double mg = 0, mgx = 0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      const int64_t k = r * D + j;
      const double xh = (x[k] - m) * is, gs = double(g[k]) * sc[bidx(sn, j)];
      mg += gs;
      mgx += gs * xh;
    }
    mg = block_sum(mg) / static_cast<double>(D);
    mgx = block_sum(mgx) / static_cast<double>(D);
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      const int64_t k = r * D + j;
      const double xh = (x[k] - m) * is;
      dx[k] = static_cast<float>(is * (double(g[k]) * sc[bidx(sn, j)] - mg - xh * mgx));
    }
    __syncthreads();
  }
}

/// dScale / dB: column j sums over rows (scale of D elements) or everything (1 element).
__global__ void layer_norm_dparam_k(const float* g, const float* x, const float* mean,
                                    const float* inv, float* ds, float* db, int64_t rows, int64_t D,
                                    int64_t sn) {
  for (int64_t j = blockIdx.x; j < sn; j += gridDim.x) {
    double s = 0, b = 0;
    const int64_t total = sn == 1 ? rows * D : rows;
    for (int64_t t = threadIdx.x; t < total; t += blockDim.x) {
      const int64_t k = sn == 1 ? t : t * D + j, r = k / D;
      s += double(g[k]) * (x[k] - mean[r]) * inv[r];
      b += g[k];
    }
    s = block_sum(s);
    b = block_sum(b);
    if (threadIdx.x == 0) {
      if (ds) ds[j] = static_cast<float>(s);
      if (db) db[j] = static_cast<float>(b);
    }
    __syncthreads();
  }
}

// ---------------------------------------------------------------- batch norm

__global__ void batch_norm_train_k(const void* x, void* y, FloatType xt, const float* sc,
                                   const float* bias, const float* rm_in, const float* rv_in,
                                   float* rm, float* rv, float* sm, float* sinv, int64_t N,
                                   int64_t C, int64_t S, double eps, double mom) {
  const int64_t M = N * S;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double m = 0;
    for (int64_t t = threadIdx.x; t < M; t += blockDim.x)
      m += load_float(x, xt, ((t / S) * C + c) * S + t % S);
    m = M > 0 ? block_sum(m) / double(M) : 0.0;
    double v = 0;
    for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
      const double d = load_float(x, xt, ((t / S) * C + c) * S + t % S) - m;
      v += d * d;
    }
    v = M > 0 ? block_sum(v) / double(M) : 0.0;
    const double is = 1.0 / sqrt(v + eps), k = sc[c] * is, b = bias[c];
    for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
      const int64_t i = ((t / S) * C + c) * S + t % S;
      store_float(y, xt, i, static_cast<float>((load_float(x, xt, i) - m) * k + b));
    }
    if (threadIdx.x == 0) {
      const double unbias = M > 1 ? double(M) / double(M - 1) : 1.0;
      const double r_m = rm_in[c], r_v = rv_in[c]; // read before write: in place
      if (rm) rm[c] = static_cast<float>(r_m * mom + m * (1 - mom));
      if (rv) rv[c] = static_cast<float>(r_v * mom + v * unbias * (1 - mom));
      if (sm) sm[c] = static_cast<float>(m);
      if (sinv) sinv[c] = static_cast<float>(is);
    }
    __syncthreads();
  }
}

__global__ void batch_norm_train_grad_k(const void* g, const void* x, void* dx, FloatType xt,
                                        const float* sc, const float* mean, const float* inv,
                                        float* ds, float* db, int64_t N, int64_t C, int64_t S) {
  const int64_t M = N * S;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double m = mean[c], is = inv[c];
    double sb = 0, ss = 0;
    for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
      const int64_t i = ((t / S) * C + c) * S + t % S;
      const double gi = load_float(g, xt, i);
      sb += gi;
      ss += gi * (load_float(x, xt, i) - m) * is;
    }
    sb = block_sum(sb);
    ss = block_sum(ss);
    if (threadIdx.x == 0) {
      if (ds) ds[c] = static_cast<float>(ss);
      if (db) db[c] = static_cast<float>(sb);
    }
    if (dx && M > 0) {
      const double k = sc[c] * is / double(M);
      for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
        const int64_t i = ((t / S) * C + c) * S + t % S;
        const double gi = load_float(g, xt, i), xh = (load_float(x, xt, i) - m) * is;
        store_float(dx, xt, i, static_cast<float>(k * (double(M) * gi - sb - xh * ss)));
      }
    }
    __syncthreads();
  }
}

// ---------------------------------------------------------------- cross-entropy

struct Sce {
  const int64_t* labels;
  const float* weights;
  int64_t N, C, D;
  bool has_ignore;
  int64_t ignore;
  /// Label of sample i, -1 when ignored (out-of-range labels count as ignored:
  /// a kernel cannot fail; the CPU runtime reports them).
  __device__ int64_t label(int64_t i) const {
    const int64_t l = labels[i];
    if ((has_ignore && l == ignore) || l < 0 || l >= C) return -1;
    return l;
  }
  __device__ double weight(int64_t i) const {
    const int64_t l = label(i);
    return l < 0 ? 0.0 : (weights ? double(weights[l]) : 1.0);
  }
};

/// log_prob rows: one block per sample (n, j).
__global__ void sce_log_prob_k(const float* x, float* lp, Sce p) {
  for (int64_t i = blockIdx.x; i < p.N * p.D; i += gridDim.x) {
    const int64_t n = i / p.D, j = i % p.D;
    const float* base = x + n * p.C * p.D + j;
    double mx = -INFINITY;
    for (int64_t c = threadIdx.x; c < p.C; c += blockDim.x)
      mx = fmax(mx, double(base[c * p.D]));
    mx = block_max(mx);
    double s = 0;
    for (int64_t c = threadIdx.x; c < p.C; c += blockDim.x)
      s += exp(base[c * p.D] - mx);
    const double lse = mx + log(block_sum(s));
    for (int64_t c = threadIdx.x; c < p.C; c += blockDim.x)
      lp[n * p.C * p.D + c * p.D + j] = static_cast<float>(base[c * p.D] - lse);
    __syncthreads();
  }
}

/// The sum (reduction 1) or weighted mean (2) of the per-thread partial
/// loss sums over the block, written by thread 0.
__device__ void reduce_loss(double total, double wsum, float* loss, int reduction) {
  total = block_sum(total);
  wsum = block_sum(wsum);
  if (threadIdx.x == 0)
    *loss = static_cast<float>(reduction == 2 ? (wsum != 0 ? total / wsum : 0.0) : total);
}

/// With log_prob (written by sce_log_prob_k before), loss_i = -w_i *
/// log_prob[label_i]: one thread per sample, N * D reads instead of N * C * D.
__global__ void sce_loss_from_lp_k(const float* lp, float* loss, Sce p, int reduction) {
  double total = 0, wsum = 0;
  for (int64_t i = threadIdx.x; i < p.N * p.D; i += blockDim.x) {
    const int64_t n = i / p.D, j = i % p.D, l = p.label(i);
    const double li = l < 0 ? 0.0 : -p.weight(i) * lp[(n * p.C + l) * p.D + j];
    if (reduction == 0) {
      loss[i] = static_cast<float>(li);
    } else {
      total += li;
      wsum += p.weight(i);
    }
  }
  if (reduction != 0) reduce_loss(total, wsum, loss, reduction);
}

/// Without log_prob: one block, each warp takes samples and recomputes lse.
__global__ void sce_loss_k(const float* x, float* loss, Sce p, int reduction) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  double total = 0, wsum = 0;
  for (int64_t i = warp; i < p.N * p.D; i += nw) {
    const int64_t n = i / p.D, j = i % p.D, l = p.label(i);
    const float* base = x + n * p.C * p.D + j;
    double mx = -INFINITY, s = 0;
    for (int64_t c = lane; c < p.C; c += 32)
      mx = fmax(mx, double(base[c * p.D]));
    for (int o = 16; o > 0; o >>= 1)
      mx = fmax(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    for (int64_t c = lane; c < p.C; c += 32)
      s += exp(base[c * p.D] - mx);
    for (int o = 16; o > 0; o >>= 1)
      s += __shfl_xor_sync(0xffffffffu, s, o);
    const double li = l < 0 ? 0.0 : -p.weight(i) * (base[l * p.D] - (mx + log(s)));
    if (reduction == 0) {
      if (lane == 0) loss[i] = static_cast<float>(li);
    } else if (lane == 0) {
      total += li;
      wsum += p.weight(i);
    }
  }
  if (reduction != 0) reduce_loss(total, wsum, loss, reduction);
}

__global__ void sce_grad_k(const float* dl, const float* lp, float* dx, Sce p, int reduction) {
  __shared__ double inv_wsum;
  if (reduction == 2) {
    double w = 0;
    for (int64_t i = threadIdx.x; i < p.N * p.D; i += blockDim.x)
      w += p.weight(i);
    w = block_sum(w);
    if (threadIdx.x == 0) inv_wsum = w != 0 ? 1.0 / w : 0.0;
    __syncthreads();
  }
  for (int64_t i = blockIdx.x; i < p.N * p.D; i += gridDim.x) {
    const int64_t n = i / p.D, j = i % p.D, l = p.label(i);
    double coef = p.weight(i) * (reduction == 0 ? dl[i] : dl[0]);
    if (reduction == 2) coef *= inv_wsum;
    for (int64_t c = threadIdx.x; c < p.C; c += blockDim.x) {
      const int64_t e = (n * p.C + c) * p.D + j;
      dx[e] = static_cast<float>(coef * (exp(double(lp[e])) - (c == l ? 1.0 : 0.0)));
    }
  }
}

// ---------------------------------------------------------------- max pool

/// Window of output position o (flat over g.out): calls f(input offset) for
/// every in-bounds kernel position, in row-major kernel order.
template <class F> __device__ void for_window(const PoolGeom& g, int64_t o, F&& f) {
  int64_t oc[3], rem = o;
  for (int d = 2; d >= 0; --d) {
    oc[d] = rem % g.out[d];
    rem /= g.out[d];
  }
  for (int64_t k0 = 0; k0 < g.kernel[0]; ++k0) {
    const int64_t i0 = oc[0] * g.stride[0] - g.pad[0] + k0 * g.dilation[0];
    if (i0 < 0 || i0 >= g.in[0]) continue;
    for (int64_t k1 = 0; k1 < g.kernel[1]; ++k1) {
      const int64_t i1 = oc[1] * g.stride[1] - g.pad[1] + k1 * g.dilation[1];
      if (i1 < 0 || i1 >= g.in[1]) continue;
      for (int64_t k2 = 0; k2 < g.kernel[2]; ++k2) {
        const int64_t i2 = oc[2] * g.stride[2] - g.pad[2] + k2 * g.dilation[2];
        if (i2 < 0 || i2 >= g.in[2]) continue;
        f((i0 * g.in[1] + i1) * g.in[2] + i2);
      }
    }
  }
}

__global__ void max_pool_k(const void* x, void* y, FloatType t, int64_t* idx, int64_t planes,
                           PoolGeom g) {
  const int64_t OS = g.out[0] * g.out[1] * g.out[2], IS = g.in[0] * g.in[1] * g.in[2];
  MEMPLAN_GRID_LOOP(i, planes * OS) {
    const int64_t pl = i / OS, o = i % OS;
    float best = -INFINITY;
    int64_t arg = -1;
    for_window(g, o, [&](int64_t r) {
      const float v = load_float(x, t, pl * IS + r);
      if (arg < 0 || v > best) best = v, arg = r; // ties: first position
    });
    store_float(y, t, i, best);
    if (idx) idx[i] = arg < 0 ? -1 : pl * IS + arg;
  }
}

/// One thread per input element r: the sum, in f32 and in increasing output
/// order like the CPU's scatter, of dY over the windows whose first maximum
/// is r; no atomics, so the result is deterministic and rounded once.
__global__ void max_pool_grad_k(const void* dy, const void* x, void* dx, FloatType t,
                                int64_t planes, PoolGeom g) {
  const int64_t OS = g.out[0] * g.out[1] * g.out[2], IS = g.in[0] * g.in[1] * g.in[2];
  MEMPLAN_GRID_LOOP(i, planes * IS) {
    const int64_t pl = i / IS, r = i % IS;
    int64_t rc[3], rem = r;
    for (int d = 2; d >= 0; --d) {
      rc[d] = rem % g.in[d];
      rem /= g.in[d];
    }
    // Output coordinate along dim d whose window puts kernel tap k on rc[d]; -1 if none.
    auto out_of = [&](int d, int64_t k) -> int64_t {
      const int64_t num = rc[d] + g.pad[d] - k * g.dilation[d];
      if (num < 0 || num % g.stride[d] != 0) return -1;
      return num / g.stride[d] < g.out[d] ? num / g.stride[d] : -1;
    };
    float acc = 0.f;
    for (int64_t k0 = g.kernel[0] - 1; k0 >= 0; --k0) { // taps descending: outputs ascending
      const int64_t o0 = out_of(0, k0);
      if (o0 < 0) continue;
      for (int64_t k1 = g.kernel[1] - 1; k1 >= 0; --k1) {
        const int64_t o1 = out_of(1, k1);
        if (o1 < 0) continue;
        for (int64_t k2 = g.kernel[2] - 1; k2 >= 0; --k2) {
          const int64_t o2 = out_of(2, k2);
          if (o2 < 0) continue;
          const int64_t o = (o0 * g.out[1] + o1) * g.out[2] + o2;
          int64_t arg = -1;
          float best = 0.f;
          for_window(g, o, [&](int64_t q) {
            const float v = load_float(x, t, pl * IS + q);
            if (arg < 0 || v > best) best = v, arg = q;
          });
          if (arg == r) acc += load_float(dy, t, pl * OS + o);
        }
      }
    }
    store_float(dx, t, i, acc);
  }
}

unsigned grid_of(int64_t n) {
  return static_cast<unsigned>(n < 65535 * 16 ? (n > 0 ? n : 1) : 65535 * 16);
}

} // namespace

void launch_softmax(const float* x, float* y, int64_t outer, int64_t L, int64_t inner, bool log,
                    Stream s) {
  if (outer * inner > 0)
    softmax_k<<<grid_of(outer * inner), kThreads, 0, s>>>(x, y, outer, L, inner, log);
}

void launch_softmax_grad(const float* dy, const float* y, float* dx, int64_t outer, int64_t L,
                         int64_t inner, bool log, Stream s) {
  if (outer * inner > 0)
    softmax_grad_k<<<grid_of(outer * inner), kThreads, 0, s>>>(dy, y, dx, outer, L, inner, log);
}

void launch_layer_norm(const float* x, const float* scale, int64_t scale_n, const float* bias,
                       int64_t bias_n, float* y, float* mean, float* invstd, int64_t rows,
                       int64_t D, double eps, Stream s) {
  if (rows > 0)
    layer_norm_k<<<grid_of(rows), kThreads, 0, s>>>(x, scale, scale_n, bias, bias_n, y, mean,
                                                    invstd, rows, D, eps);
}

void launch_layer_norm_grad(const float* dy, const float* x, const float* scale, int64_t scale_n,
                            const float* mean, const float* invstd, float* dx, float* dscale,
                            float* dbias, int64_t rows, int64_t D, Stream s) {
  if (rows <= 0) return;
  if (dx)
    layer_norm_dx_k<<<grid_of(rows), kThreads, 0, s>>>(dy, x, scale, scale_n, mean, invstd, dx,
                                                       rows, D);
  if (dscale || dbias)
    layer_norm_dparam_k<<<grid_of(scale_n), kThreads, 0, s>>>(dy, x, mean, invstd, dscale, dbias,
                                                              rows, D, scale_n);
}

void launch_batch_norm_train(const void* x, void* y, FloatType xt, const float* scale,
                             const float* bias, const float* rmean_in, const float* rvar_in,
                             float* rmean, float* rvar, float* saved_mean, float* saved_invstd,
                             int64_t N, int64_t C, int64_t S, double eps, double momentum,
                             Stream s) {
  if (C > 0)
    batch_norm_train_k<<<grid_of(C), kThreads, 0, s>>>(x, y, xt, scale, bias, rmean_in, rvar_in,
                                                       rmean, rvar, saved_mean, saved_invstd, N, C,
                                                       S, eps, momentum);
}

void launch_batch_norm_train_grad(const void* dy, const void* x, void* dx, FloatType xt,
                                  const float* scale, const float* mean, const float* invstd,
                                  float* dscale, float* dbias, int64_t N, int64_t C, int64_t S,
                                  Stream s) {
  if (C > 0)
    batch_norm_train_grad_k<<<grid_of(C), kThreads, 0, s>>>(dy, x, dx, xt, scale, mean, invstd,
                                                            dscale, dbias, N, C, S);
}

void launch_sce_loss(const float* x, const int64_t* labels, const float* weights, float* loss,
                     float* log_prob, int64_t N, int64_t C, int64_t D, int reduction,
                     bool has_ignore, int64_t ignore, Stream s) {
  const Sce p{labels, weights, N, C, D, has_ignore, ignore};
  if (N * D <= 0) return;
  if (log_prob) {
    sce_log_prob_k<<<grid_of(N * D), kThreads, 0, s>>>(x, log_prob, p);
    sce_loss_from_lp_k<<<1, 1024, 0, s>>>(log_prob, loss, p, reduction);
  } else {
    sce_loss_k<<<1, 1024, 0, s>>>(x, loss, p, reduction);
  }
}

void launch_sce_loss_grad(const float* dl, const float* log_prob, const int64_t* labels,
                          const float* weights, float* dx, int64_t N, int64_t C, int64_t D,
                          int reduction, bool has_ignore, int64_t ignore, Stream s) {
  const Sce p{labels, weights, N, C, D, has_ignore, ignore};
  if (N * D > 0) sce_grad_k<<<grid_of(N * D), kThreads, 0, s>>>(dl, log_prob, dx, p, reduction);
}

void launch_max_pool(const void* x, void* y, FloatType t, int64_t* indices, int64_t planes,
                     const PoolGeom& g, Stream s) {
  const int64_t n = planes * g.out[0] * g.out[1] * g.out[2];
  if (n > 0) max_pool_k<<<blocks_for(n), kThreads, 0, s>>>(x, y, t, indices, planes, g);
}

void launch_max_pool_grad(const void* dy, const void* x, void* dx, FloatType t, int64_t planes,
                          const PoolGeom& g, Stream s) {
  const int64_t n = planes * g.in[0] * g.in[1] * g.in[2];
  if (n > 0) max_pool_grad_k<<<blocks_for(n), kThreads, 0, s>>>(dy, x, dx, t, planes, g);
}

} // namespace memplan::cuda
