// CPU kernels: LayerNormalization, BatchNormalization, BatchNormTraining and
// the backward ops LayerNormalizationGrad and BatchNormTrainingGrad.
//
// Statistics are accumulated in double. Saved statistics may have another
// float dtype than X (LayerNormalization's stash_type).
//
// BatchNormalization(training_mode=1) follows the ONNX reference: running
// statistics use the biased batch variance. BatchNormTraining (the op the
// autodiff pass rewrites training BatchNormalization into) follows PyTorch:
//   running_mean' = running_mean * momentum + mean * (1 - momentum)
//   running_var'  = running_var * momentum + var * M / (M - 1) * (1 - momentum)
// (M = elements per channel, the unbiased variance; the biased one when M = 1),
// written in place; saved_invstd = 1 / sqrt(biased var + epsilon).
// Backward (per channel or per normalized row, M elements, xhat = (x - mean) * invstd):
//   dB = sum dY,  dscale = sum dY * xhat,
//   BN: dX = scale * invstd / M * (M * dY - dB - xhat * dscale)
//   LN: g = dY * scale; dX = invstd * (g - mean(g) - xhat * mean(g * xhat))
#include <algorithm>
#include <cmath>

#include "runtime/cpu/nn_util.h"

namespace memplan::kernels::nn {

namespace {

// ---------------------------------------------------------------- layer norm

struct Rows {
  int64_t rows, D;
};

Rows ln_rows(const KernelArgs& a, const Shape& s) {
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t axis = attr_int(*a.node, "axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail(a, "axis out of range for rank " + std::to_string(r));
  return {prod(s, 0, static_cast<size_t>(axis)), prod(s, static_cast<size_t>(axis), s.size())};
}

/// Index into a scale / bias of `numel` elements broadcast over a row of D.
int64_t bidx(int64_t numel, int64_t j) {
  return numel == 1 ? 0 : j;
}

void check_param(const KernelArgs& a, const TensorArg& p, int64_t D, const char* what) {
  if (p.present() && p.numel != D && p.numel != 1)
    fail(a, std::string(what) + " of " + std::to_string(p.numel) +
                " elements does not broadcast over normalized size " + std::to_string(D));
}

void layer_norm(const KernelArgs& a) {
  const TensorArg &x = a.in[0], &sc = a.in[1];
  const TensorArg b = a.in.size() > 2 ? a.in[2] : TensorArg{};
  const TensorArg mean = a.out.size() > 1 ? a.out[1] : TensorArg{};
  const TensorArg inv = a.out.size() > 2 ? a.out[2] : TensorArg{};
  Rows r = ln_rows(a, x.shape);
  check_param(a, sc, r.D, "Scale");
  check_param(a, b, r.D, "B");
  const double eps = attr_float(*a.node, "epsilon", 1e-5);
  float_dispatch(a, x.dtype, [&]<class T>() {
    const T *xp = x.as<T>(), *s = sc.as<T>(), *bb = b.present() ? b.as<T>() : nullptr;
    T* y = a.out[0].as<T>();
    for (int64_t i = 0; i < r.rows; ++i) {
      const T* xr = xp + i * r.D;
      double m = 0, v = 0;
      for (int64_t j = 0; j < r.D; ++j)
        m += xr[j];
      m /= static_cast<double>(r.D);
      for (int64_t j = 0; j < r.D; ++j)
        v += (xr[j] - m) * (xr[j] - m);
      v /= static_cast<double>(r.D);
      const double is = 1.0 / std::sqrt(v + eps);
      for (int64_t j = 0; j < r.D; ++j) {
        double o = (xr[j] - m) * is * s[bidx(sc.numel, j)];
        if (bb) o += bb[bidx(b.numel, j)];
        y[i * r.D + j] = static_cast<T>(o);
      }
      if (mean.present()) store(mean, i, m);
      if (inv.present()) store(inv, i, is);
    }
  });
}

/// (dY, X, Scale, Mean, InvStdDev) -> (dX, dScale, dB)
void layer_norm_grad(const KernelArgs& a) {
  const TensorArg &dy = a.in[0], &x = a.in[1], &sc = a.in[2], &mean = a.in[3], &inv = a.in[4];
  Rows r = ln_rows(a, x.shape);
  check_param(a, sc, r.D, "Scale");
  float_dispatch(a, x.dtype, [&]<class T>() {
    const T *g = dy.as<T>(), *xp = x.as<T>(), *s = sc.as<T>();
    T* dx = a.out[0].present() ? a.out[0].as<T>() : nullptr;
    std::vector<double> ds(static_cast<size_t>(sc.numel), 0.0), db(ds.size(), 0.0);
    for (int64_t i = 0; i < r.rows; ++i) {
      const double m = load(mean, i), is = load(inv, i);
      double mg = 0, mgx = 0;
      for (int64_t j = 0; j < r.D; ++j) {
        const int64_t k = i * r.D + j;
        const double xh = (xp[k] - m) * is, gs = g[k] * s[bidx(sc.numel, j)];
        mg += gs;
        mgx += gs * xh;
        ds[static_cast<size_t>(bidx(sc.numel, j))] += g[k] * xh;
        db[static_cast<size_t>(bidx(sc.numel, j))] += g[k];
      }
      mg /= static_cast<double>(r.D);
      mgx /= static_cast<double>(r.D);
      if (!dx) continue;
      for (int64_t j = 0; j < r.D; ++j) {
        const int64_t k = i * r.D + j;
        const double xh = (xp[k] - m) * is;
        dx[k] = static_cast<T>(is * (g[k] * s[bidx(sc.numel, j)] - mg - xh * mgx));
      }
    }
    for (size_t k = 1; k < 3; ++k) {
      if (a.out.size() <= k || !a.out[k].present()) continue;
      const std::vector<double>& src = k == 1 ? ds : db;
      for (int64_t j = 0; j < a.out[k].numel; ++j)
        store(a.out[k], j, src[static_cast<size_t>(j)]);
    }
  });
}

// ---------------------------------------------------------------- batch norm

struct Channels {
  int64_t N, C, S;
  int64_t M() const { return N * S; }
};

Channels channels(const KernelArgs& a, const Shape& s) {
  if (s.size() < 2) fail(a, "X must have rank >= 2");
  return {s[0], s[1], prod(s, 2, s.size())};
}

/// Batch mean and biased variance of each channel.
template <class T>
void batch_stats(const Channels& c, const T* x, std::vector<double>& mean,
                 std::vector<double>& var) {
  mean.assign(static_cast<size_t>(c.C), 0.0);
  var.assign(static_cast<size_t>(c.C), 0.0);
  const double M = static_cast<double>(c.M());
  for (int64_t ch = 0; ch < c.C; ++ch) {
    double m = 0, v = 0;
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t s = 0; s < c.S; ++s)
        m += x[(n * c.C + ch) * c.S + s];
    m = M > 0 ? m / M : 0.0;
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t s = 0; s < c.S; ++s) {
        const double d = x[(n * c.C + ch) * c.S + s] - m;
        v += d * d;
      }
    mean[static_cast<size_t>(ch)] = m;
    var[static_cast<size_t>(ch)] = M > 0 ? v / M : 0.0;
  }
}

/// Y = scale * (X - mean) * invstd + B per channel.
template <class T>
void bn_apply(const Channels& c, const KernelArgs& a, const std::vector<double>& mean,
              const std::vector<double>& invstd) {
  const T* x = a.in[0].as<T>();
  T* y = a.out[0].as<T>();
  for (int64_t ch = 0; ch < c.C; ++ch) {
    const double k = load(a.in[1], ch) * invstd[static_cast<size_t>(ch)];
    const double b = load(a.in[2], ch), m = mean[static_cast<size_t>(ch)];
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t s = 0; s < c.S; ++s) {
        const int64_t i = (n * c.C + ch) * c.S + s;
        y[i] = static_cast<T>((x[i] - m) * k + b);
      }
  }
}

const TensorArg* out_slot(const KernelArgs& a, size_t k) {
  return a.out.size() > k && a.out[k].present() ? &a.out[k] : nullptr;
}

void batch_norm(const KernelArgs& a) {
  const Node& n = *a.node;
  const Channels c = channels(a, a.in[0].shape);
  const double eps = attr_float(n, "epsilon", 1e-5), mom = attr_float(n, "momentum", 0.9);
  const bool training = n.has_attr("training_mode") ? attr_int(n, "training_mode", 0) != 0
                                                    : (out_slot(a, 1) || out_slot(a, 3));
  float_dispatch(a, a.in[0].dtype, [&]<class T>() {
    std::vector<double> mean(static_cast<size_t>(c.C)), var(mean.size()), inv(mean.size());
    if (training) {
      batch_stats(c, a.in[0].as<T>(), mean, var);
    } else {
      for (int64_t ch = 0; ch < c.C; ++ch) {
        mean[static_cast<size_t>(ch)] = load(a.in[3], ch);
        var[static_cast<size_t>(ch)] = load(a.in[4], ch);
      }
    }
    for (size_t ch = 0; ch < inv.size(); ++ch)
      inv[ch] = 1.0 / std::sqrt(var[ch] + eps);
    bn_apply<T>(c, a, mean, inv);
    if (!training) return;
    // ONNX reference: running = running * momentum + batch * (1 - momentum), biased variance.
    for (int64_t ch = 0; ch < c.C; ++ch) {
      const size_t k = static_cast<size_t>(ch);
      if (auto* o = out_slot(a, 1)) store(*o, ch, load(a.in[3], ch) * mom + mean[k] * (1 - mom));
      if (auto* o = out_slot(a, 2)) store(*o, ch, load(a.in[4], ch) * mom + var[k] * (1 - mom));
      if (auto* o = out_slot(a, 3)) store(*o, ch, mean[k]);
      if (auto* o = out_slot(a, 4)) store(*o, ch, var[k]);
    }
  });
}

/// (X, scale, B, running_mean, running_var) -> (Y, running_mean', running_var',
/// saved_mean, saved_invstd); outputs 1 and 2 are in place on inputs 3 and 4.
void batch_norm_training(const KernelArgs& a) {
  const Node& n = *a.node;
  const Channels c = channels(a, a.in[0].shape);
  const double eps = attr_float(n, "epsilon", 1e-5), mom = attr_float(n, "momentum", 0.9);
  float_dispatch(a, a.in[0].dtype, [&]<class T>() {
    std::vector<double> mean, var;
    batch_stats(c, a.in[0].as<T>(), mean, var);
    std::vector<double> inv(mean.size());
    for (size_t ch = 0; ch < inv.size(); ++ch)
      inv[ch] = 1.0 / std::sqrt(var[ch] + eps);
    bn_apply<T>(c, a, mean, inv);
    const int64_t M = c.M();
    const double unbias = M > 1 ? static_cast<double>(M) / static_cast<double>(M - 1) : 1.0;
    for (int64_t ch = 0; ch < c.C; ++ch) {
      const size_t k = static_cast<size_t>(ch);
      // Read before write: out[1] / out[2] may be the same storage as in[3] / in[4].
      const double rm = load(a.in[3], ch), rv = load(a.in[4], ch);
      if (auto* o = out_slot(a, 1)) store(*o, ch, rm * mom + mean[k] * (1 - mom));
      if (auto* o = out_slot(a, 2)) store(*o, ch, rv * mom + var[k] * unbias * (1 - mom));
      if (auto* o = out_slot(a, 3)) store(*o, ch, mean[k]);
      if (auto* o = out_slot(a, 4)) store(*o, ch, inv[k]);
    }
  });
}

/// (dY, X, scale, saved_mean, saved_invstd) -> (dX, dscale, dB)
void batch_norm_training_grad(const KernelArgs& a) {
  const Channels c = channels(a, a.in[1].shape);
  float_dispatch(a, a.in[1].dtype, [&]<class T>() {
    const T *g = a.in[0].as<T>(), *x = a.in[1].as<T>();
    const double M = static_cast<double>(c.M());
    for (int64_t ch = 0; ch < c.C; ++ch) {
      const double m = load(a.in[3], ch), is = load(a.in[4], ch);
      double db = 0, ds = 0;
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t s = 0; s < c.S; ++s) {
          const int64_t i = (n * c.C + ch) * c.S + s;
          db += g[i];
          ds += g[i] * (x[i] - m) * is;
        }
      if (auto* o = out_slot(a, 1)) store(*o, ch, ds);
      if (auto* o = out_slot(a, 2)) store(*o, ch, db);
      auto* dxo = out_slot(a, 0);
      if (!dxo || M == 0) continue;
      T* dx = dxo->as<T>();
      const double k = load(a.in[2], ch) * is / M;
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t s = 0; s < c.S; ++s) {
          const int64_t i = (n * c.C + ch) * c.S + s;
          dx[i] = static_cast<T>(k * (M * g[i] - db - (x[i] - m) * is * ds));
        }
    }
  });
}

} // namespace

void register_norm(Table& t) {
  t["LayerNormalization"] = layer_norm;
  t["LayerNormalizationGrad"] = layer_norm_grad;
  t["BatchNormalization"] = batch_norm;
  t["BatchNormTraining"] = batch_norm_training;
  t["BatchNormTrainingGrad"] = batch_norm_training_grad;
}

} // namespace memplan::kernels::nn
