// CPU kernels: Softmax, LogSoftmax (opset 13 semantics: one axis, default
// -1; max-subtracted, so stable for large inputs) and their backward ops
//   SoftmaxGrad(dY, Y):    dX = Y * (dY - sum_axis(dY * Y))
//   LogSoftmaxGrad(dY, Y): dX = dY - exp(Y) * sum_axis(dY)
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/cpu/nn_util.h"

namespace memplan::kernels::nn {

namespace {

/// [outer, L, inner] view of a tensor around `axis`.
struct Lanes {
  int64_t outer, L, inner;
};

Lanes lanes(const KernelArgs& a, const Shape& s) {
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t axis = attr_int(*a.node, "axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail(a, "axis out of range for rank " + std::to_string(r));
  const size_t ax = static_cast<size_t>(axis);
  return {prod(s, 0, ax), s[ax], prod(s, ax + 1, s.size())};
}

/// Calls f(base, stride) for every lane of length L.
template <class F> void for_lanes(const Lanes& l, F&& f) {
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t i = 0; i < l.inner; ++i)
      f(o * l.L * l.inner + i, l.inner);
}

void softmax_impl(const KernelArgs& a, bool log) {
  const TensorArg &x = a.in[0], &y = a.out[0];
  Lanes l = lanes(a, x.shape);
  float_dispatch(a, x.dtype, [&]<class T>() {
    const T* xp = x.as<T>();
    T* yp = y.as<T>();
    for_lanes(l, [&](int64_t b, int64_t s) {
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < l.L; ++j)
        mx = std::max(mx, xp[b + j * s]);
      T sum = 0;
      for (int64_t j = 0; j < l.L; ++j)
        sum += std::exp(xp[b + j * s] - mx);
      if (log) {
        // (x - max) - log(sum), not x - (max + log(sum)): for large x the
        // sum max + log(sum) rounds away log(sum)'s low bits (ONNX's
        // test_logsoftmax_large_number, x ~ 1e4 in f32, was off by 2.4e-4).
        const T ls = std::log(sum);
        for (int64_t j = 0; j < l.L; ++j)
          yp[b + j * s] = (xp[b + j * s] - mx) - ls;
      } else {
        for (int64_t j = 0; j < l.L; ++j)
          yp[b + j * s] = std::exp(xp[b + j * s] - mx) / sum;
      }
    });
  });
}

void softmax(const KernelArgs& a) {
  softmax_impl(a, false);
}
void log_softmax(const KernelArgs& a) {
  softmax_impl(a, true);
}

void softmax_grad_impl(const KernelArgs& a, bool log) { // (dY, Y) -> dX
  const TensorArg &dy = a.in[0], &y = a.in[1], &dx = a.out[0];
  Lanes l = lanes(a, y.shape);
  float_dispatch(a, y.dtype, [&]<class T>() {
    const T *g = dy.as<T>(), *yp = y.as<T>();
    T* d = dx.as<T>();
    for_lanes(l, [&](int64_t b, int64_t s) {
      T dot = 0;
      for (int64_t j = 0; j < l.L; ++j)
        dot += log ? g[b + j * s] : g[b + j * s] * yp[b + j * s];
      for (int64_t j = 0; j < l.L; ++j) {
        const int64_t i = b + j * s;
        d[i] = log ? g[i] - std::exp(yp[i]) * dot : yp[i] * (g[i] - dot);
      }
    });
  });
}

void softmax_grad(const KernelArgs& a) {
  softmax_grad_impl(a, false);
}
void log_softmax_grad(const KernelArgs& a) {
  softmax_grad_impl(a, true);
}

} // namespace

void register_softmax(Table& t) {
  t["Softmax"] = softmax;
  t["LogSoftmax"] = log_softmax;
  t["SoftmaxGrad"] = softmax_grad;
  t["LogSoftmaxGrad"] = log_softmax_grad;
}

} // namespace memplan::kernels::nn
