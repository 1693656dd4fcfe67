// CUDA kernels: optimizer family (runtime/cpu/optim.cc, torch.optim step by
// step). The step counter and the clipping scale are read from device memory
// by every launch, so one captured graph serves every step. Element i is
// read before it is written, so in-place updates (the planned case) are safe.
#include "runtime/cuda/common.cuh"

namespace memplan::cuda {

namespace {

__global__ void step_increment_k(const float* in, float* out) {
  *out = *in + 1.f;
}

__global__ void sgd_k(const float* p, const float* gr, const float* buf, float* po, float* bo,
                      int64_t n, float lr, float momentum, float damp, float wd, bool nesterov,
                      const float* scale, const float* step) {
  const float s = scale ? *scale : 1.f;
  const bool first = buf && step && *step <= 1.f; // the counter is already incremented
  MEMPLAN_GRID_LOOP(i, n) {
    float g = gr[i] * s;
    if (wd != 0.f) g += wd * p[i];
    if (buf) {
      const float b = first ? g : momentum * buf[i] + damp * g;
      bo[i] = b;
      g = nesterov ? g + momentum * b : b;
    }
    po[i] = p[i] - lr * g;
  }
}

__global__ void adam_k(const float* p, const float* gr, const float* m, const float* v, float* po,
                       float* mo, float* vo, int64_t n, double lr, double b1, double b2, double eps,
                       double wd, bool decoupled, const float* step, const float* scale) {
  const double t = static_cast<double>(*step);
  // Bias corrections in double, as the CPU kernel computes them.
  const float ss = static_cast<float>(lr / (1.0 - pow(b1, t)));
  const float bc2 = static_cast<float>(sqrt(1.0 - pow(b2, t)));
  const float s = scale ? *scale : 1.f;
  const float tb1 = float(b1), tb2 = float(b2), tlr = float(lr), twd = float(wd), te = float(eps);
  MEMPLAN_GRID_LOOP(i, n) {
    float g = gr[i] * s;
    float pi = p[i];
    if (wd != 0.0) {
      if (decoupled)
        pi *= 1.f - tlr * twd;
      else
        g += twd * pi;
    }
    const float mi = tb1 * m[i] + (1.f - tb1) * g;
    const float vi = tb2 * v[i] + (1.f - tb2) * g * g;
    mo[i] = mi;
    vo[i] = vi;
    po[i] = pi - ss * mi / (sqrtf(vi) / bc2 + te);
  }
}

} // namespace

void launch_step_increment(const float* in, float* out, Stream s) {
  step_increment_k<<<1, 1, 0, s>>>(in, out);
}

void launch_sgd(const float* p, const float* g, const float* buf, float* po, float* bo, int64_t n,
                double lr, double momentum, double dampening, double wd, bool nesterov,
                const float* scale, const float* step, Stream s) {
  if (n > 0)
    sgd_k<<<blocks_for(n), kThreads, 0, s>>>(p, g, buf, po, bo, n, float(lr), float(momentum),
                                             float(1.0 - dampening), float(wd), nesterov, scale,
                                             step);
}

void launch_adam(const float* p, const float* g, const float* m, const float* v, float* po,
                 float* mo, float* vo, int64_t n, double lr, double b1, double b2, double eps,
                 double wd, bool decoupled, const float* step, const float* scale, Stream s) {
  if (n > 0)
    adam_k<<<blocks_for(n), kThreads, 0, s>>>(p, g, m, v, po, mo, vo, n, lr, b1, b2, eps, wd,
                                              decoupled, step, scale);
}

} // namespace memplan::cuda
