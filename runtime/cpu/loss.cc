// CPU kernels: SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss and their
// backward ops.
//
// Scores are [N, C, d...] (element (n, c, j) at (n * C + c) * D + j, D =
// prod(d...)) and labels [N, d...] (element i = n * D + j). Sample i has
// weight w_i = 0 if its label equals ignore_index, else weights[label] (1
// without weights), and loss_i = -w_i * log_prob[n, label, j]. Reductions:
// none -> loss_i; sum -> sum_i loss_i; mean -> sum_i loss_i / sum_i w_i (0
// when every sample is ignored, where ONNX's formula would divide by zero).
//
// Backward ops (coef_i = dL_i * w_i, divided by sum_i w_i for mean):
//   SoftmaxCrossEntropyLossGrad(dL, log_prob, labels, weights?) -> dScores
//       dScores[n, c, j] = coef_i * (exp(log_prob[n, c, j]) - [c == label_i])
//   NegativeLogLikelihoodLossGrad(dL, labels, weights?) -> dX (attr input_shape)
//       dX[n, label_i, j] = -coef_i, zero elsewhere
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/cpu/nn_util.h"

namespace memplan::kernels::nn {

namespace {

struct Samples {
  int64_t N, C, D;
  std::vector<int64_t> label; // -1: ignored
  std::vector<double> w;      // weight of each sample (0 when ignored)
  double wsum = 0;
};

/// Labels and sample weights; `labels` / `weights` are the input slots.
Samples samples(const KernelArgs& a, const Shape& scores, size_t labels, size_t weights) {
  if (scores.size() < 2) fail(a, "scores must have rank >= 2");
  Samples s{scores[0], scores[1], prod(scores, 2, scores.size()), {}, {}, 0};
  const bool has_ignore = a.node->has_attr("ignore_index");
  const int64_t ignore = attr_int(*a.node, "ignore_index", 0);
  const TensorArg& t = a.in[labels];
  const TensorArg* wt = a.in.size() > weights && a.in[weights].present() ? &a.in[weights] : nullptr;
  s.label.resize(static_cast<size_t>(s.N * s.D));
  s.w.resize(s.label.size());
  for (size_t i = 0; i < s.label.size(); ++i) {
    const int64_t l = load_int(t, static_cast<int64_t>(i));
    if (has_ignore && l == ignore) {
      s.label[i] = -1;
      s.w[i] = 0;
      continue;
    }
    if (l < 0 || l >= s.C)
      fail(a, "label " + std::to_string(l) + " is outside [0, " + std::to_string(s.C) + ")");
    s.label[i] = l;
    s.w[i] = wt ? load(*wt, l) : 1.0;
    s.wsum += s.w[i];
  }
  return s;
}

enum class Red { none, sum, mean };
Red reduction(const KernelArgs& a) {
  const std::string r = attr_str(*a.node, "reduction", "mean");
  if (r == "none") return Red::none;
  if (r == "sum") return Red::sum;
  if (r == "mean") return Red::mean;
  fail(a, "unknown reduction '" + r + "'");
}

/// Writes per-sample losses (none) or their reduction to out.
void write_loss(const KernelArgs& a, const Samples& s, const std::vector<double>& loss) {
  const TensorArg& out = a.out[0];
  const Red red = reduction(a);
  if (red == Red::none) {
    for (size_t i = 0; i < loss.size(); ++i)
      store(out, static_cast<int64_t>(i), loss[i]);
    return;
  }
  double total = 0;
  for (double l : loss)
    total += l;
  if (red == Red::mean) total = s.wsum != 0 ? total / s.wsum : 0.0;
  store(out, 0, total);
}

/// coef_i = dL_i * w_i (/ sum w for mean).
std::vector<double> coefs(const KernelArgs& a, const Samples& s, const TensorArg& dl) {
  const Red red = reduction(a);
  std::vector<double> c(s.w.size());
  const double scale = red == Red::mean ? (s.wsum != 0 ? 1.0 / s.wsum : 0.0) : 1.0;
  for (size_t i = 0; i < c.size(); ++i)
    c[i] = s.w[i] * scale * (red == Red::none ? load(dl, static_cast<int64_t>(i)) : load(dl, 0));
  return c;
}

void sce_loss(const KernelArgs& a) {
  const TensorArg& x = a.in[0];
  Samples s = samples(a, x.shape, 1, 2);
  const TensorArg* lp = a.out.size() > 1 && a.out[1].present() ? &a.out[1] : nullptr;
  std::vector<double> loss(s.label.size(), 0.0);
  float_dispatch(a, x.dtype, [&]<class T>() {
    const T* xp = x.as<T>();
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t j = 0; j < s.D; ++j) {
        const T* base = xp + n * s.C * s.D + j;
        double mx = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t c = 0; c < s.C; ++c)
          mx = std::max(mx, static_cast<double>(base[c * s.D]));
        for (int64_t c = 0; c < s.C; ++c)
          sum += std::exp(base[c * s.D] - mx);
        const double lse = mx + std::log(sum);
        if (lp)
          for (int64_t c = 0; c < s.C; ++c)
            lp->as<T>()[n * s.C * s.D + c * s.D + j] = static_cast<T>(base[c * s.D] - lse);
        const size_t i = static_cast<size_t>(n * s.D + j);
        if (s.label[i] >= 0) loss[i] = -s.w[i] * (base[s.label[i] * s.D] - lse);
      }
  });
  write_loss(a, s, loss);
}

void nll_loss(const KernelArgs& a) {
  const TensorArg& x = a.in[0];
  Samples s = samples(a, x.shape, 1, 2);
  std::vector<double> loss(s.label.size(), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t j = 0; j < s.D; ++j) {
      const size_t i = static_cast<size_t>(n * s.D + j);
      if (s.label[i] >= 0) loss[i] = -s.w[i] * load(x, (n * s.C + s.label[i]) * s.D + j);
    }
  write_loss(a, s, loss);
}

/// (dL, log_prob, labels, weights?) -> dScores
void sce_loss_grad(const KernelArgs& a) {
  const TensorArg &dl = a.in[0], &lp = a.in[1], &dx = a.out[0];
  Samples s = samples(a, lp.shape, 2, 3);
  std::vector<double> c = coefs(a, s, dl);
  float_dispatch(a, lp.dtype, [&]<class T>() {
    const T* l = lp.as<T>();
    T* d = dx.as<T>();
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t j = 0; j < s.D; ++j) {
        const size_t i = static_cast<size_t>(n * s.D + j);
        for (int64_t k = 0; k < s.C; ++k) {
          const int64_t e = (n * s.C + k) * s.D + j;
          d[e] = static_cast<T>(c[i] * (std::exp(l[e]) - (k == s.label[i] ? 1.0 : 0.0)));
        }
      }
  });
}

/// (dL, labels, weights?) -> dX of shape attr input_shape
void nll_loss_grad(const KernelArgs& a) {
  const TensorArg &dl = a.in[0], &dx = a.out[0];
  Samples s = samples(a, dx.shape, 1, 2);
  std::vector<double> c = coefs(a, s, dl);
  float_dispatch(a, dx.dtype, [&]<class T>() {
    T* d = dx.as<T>();
    std::fill(d, d + dx.numel, T(0));
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t j = 0; j < s.D; ++j) {
        const size_t i = static_cast<size_t>(n * s.D + j);
        if (s.label[i] >= 0) d[(n * s.C + s.label[i]) * s.D + j] = static_cast<T>(-c[i]);
      }
  });
}

} // namespace

void register_loss(Table& t) {
  t["SoftmaxCrossEntropyLoss"] = sce_loss;
  t["NegativeLogLikelihoodLoss"] = nll_loss;
  t["SoftmaxCrossEntropyLossGrad"] = sce_loss_grad;
  t["NegativeLogLikelihoodLossGrad"] = nll_loss_grad;
}

} // namespace memplan::kernels::nn
