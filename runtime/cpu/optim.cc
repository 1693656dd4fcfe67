// CPU kernels: optimizer family and BatchSlice (op signatures in
// compiler/ops_optim.cc).
//
// Every kernel reads element i of its inputs before writing element i of its
// outputs, so it is correct both in place (output pointer == input pointer,
// as the runtime passes them) and out of place. Arithmetic follows
// torch.optim step by step; f32 parameters are updated with f32 arithmetic
// except for the scalar bias corrections, which are computed in double.
//
// Loss scaling: StepIncrement, SGDUpdate and AdamUpdate take an optional
// found_inf scalar (their last input); when it is nonzero they write each
// output as its input (nothing changes in place), which is what
// torch.cuda.amp.GradScaler.step does by not calling optimizer.step().
#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>

#include "runtime/kernels_internal.h"

namespace memplan::kernels {

namespace {

[[noreturn]] void unsupported(const KernelArgs& a, DType d) {
  throw Error(node_desc(*a.node) + ": no CPU kernel for dtype " + std::string(dtype_name(d)));
}

/// A float scalar input (f32 or f64) as double.
double scalar_in(const KernelArgs& a, size_t slot) {
  const TensorArg& t = a.in.at(slot);
  if (t.dtype == DType::f32) return static_cast<double>(*t.as<const float>());
  if (t.dtype == DType::f64) return *t.as<const double>();
  unsupported(a, t.dtype);
}

/// Optional clipping factor: 1 when the slot is absent.
double scale_in(const KernelArgs& a, size_t slot) {
  return slot < a.in.size() && a.in[slot].present() ? scalar_in(a, slot) : 1.0;
}

/// Calls f.template operator()<T>() for the dtype of input 0 (f32 / f64).
template <class F> void dispatch(const KernelArgs& a, F&& f) {
  switch (a.in.at(0).dtype) {
    case DType::f32:
      return f(float{});
    case DType::f64:
      return f(double{});
    default:
      unsupported(a, a.in.at(0).dtype);
  }
}

/// Loss scaling: true when the optional found_inf input at `slot` is set.
/// Then every output gets its aliased input's value (a no-op in place).
bool skipped(const KernelArgs& a, size_t slot, std::initializer_list<std::pair<size_t, size_t>> out_in) {
  if (!(slot < a.in.size() && a.in[slot].present() && scalar_in(a, slot) != 0.0)) return false;
  for (auto [o, i] : out_in)
    if (o < a.out.size() && a.out[o].present() && a.out[o].data != a.in[i].data)
      std::memcpy(a.out[o].data, a.in[i].data,
                  static_cast<size_t>(a.in[i].numel) * dtype_size(a.in[i].dtype));
  return true;
}

void step_increment(const KernelArgs& a) {
  if (skipped(a, 1, {{0, 0}})) return;
  dispatch(a, [&](auto tag) {
    using T = decltype(tag);
    *a.out[0].as<T>() = *a.in[0].as<const T>() + T(1);
  });
}

// torch.optim.SGD, one parameter:
//   g = scale * grad + weight_decay * p
//   momentum != 0: buf = g on step 1, else momentum * buf + (1 - dampening) * g;
//                  g = nesterov ? g + momentum * buf : buf
//   p -= lr * g
void sgd_update(const KernelArgs& a) {
  const Node& n = *a.node;
  const double lr = attr_float(n, "lr", 1e-3), momentum = attr_float(n, "momentum", 0.0);
  const double dampening = attr_float(n, "dampening", 0.0), wd = attr_float(n, "weight_decay", 0.0);
  const bool nesterov = attr_int(n, "nesterov", 0) != 0;
  const bool has_buf = a.in.size() > 2 && a.in[2].present();
  if (skipped(a, 5, {{0, 0}, {1, 2}})) return;
  if (momentum != 0.0 && !has_buf)
    throw Error(node_desc(n) + ": momentum needs a buffer (input 2)");
  const double scale = scale_in(a, 3);
  const bool first = has_buf && scalar_in(a, 4) <= 1.0; // the counter is already incremented
  dispatch(a, [&](auto tag) {
    using T = decltype(tag);
    const T* p = a.in[0].as<const T>();
    const T* gr = a.in[1].as<const T>();
    T* po = a.out[0].as<T>();
    const T* buf = has_buf ? a.in[2].as<const T>() : nullptr;
    T* bo = has_buf && a.out.size() > 1 && a.out[1].present() ? a.out[1].as<T>() : nullptr;
    if (has_buf && !bo) throw Error(node_desc(n) + ": the momentum buffer needs output 1");
    const T tlr = T(lr), tm = T(momentum), tdamp = T(1.0 - dampening), twd = T(wd), ts = T(scale);
    for (int64_t i = 0; i < a.in[0].numel; ++i) {
      T g = gr[i] * ts;
      if (wd != 0.0) g += twd * p[i];
      if (has_buf) {
        const T b = first ? g : tm * buf[i] + tdamp * g;
        bo[i] = b;
        g = nesterov ? g + tm * b : b;
      }
      po[i] = p[i] - tlr * g;
    }
  });
}

// torch.optim.Adam / AdamW (amsgrad off, maximize off), one parameter, with
// t = step (already incremented):
//   g = scale * grad;  Adam: g += weight_decay * p;  AdamW: p *= 1 - lr * weight_decay
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
void adam_update(const KernelArgs& a) {
  const Node& n = *a.node;
  const double lr = attr_float(n, "lr", 1e-3), b1 = attr_float(n, "beta1", 0.9),
               b2 = attr_float(n, "beta2", 0.999), eps = attr_float(n, "eps", 1e-8),
               wd = attr_float(n, "weight_decay", 0.0);
  const bool decoupled = attr_int(n, "decoupled", 0) != 0;
  if (skipped(a, 6, {{0, 0}, {1, 2}, {2, 3}})) return;
  const double t = scalar_in(a, 4);
  if (!(t >= 1.0))
    throw Error(node_desc(n) + ": step counter must be >= 1, got " + std::to_string(t));
  const double scale = scale_in(a, 5);
  const double step_size = lr / (1.0 - std::pow(b1, t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  dispatch(a, [&](auto tag) {
    using T = decltype(tag);
    const T* p = a.in[0].as<const T>();
    const T* gr = a.in[1].as<const T>();
    const T* m = a.in[2].as<const T>();
    const T* v = a.in[3].as<const T>();
    T* po = a.out[0].as<T>();
    T* mo = a.out[1].as<T>();
    T* vo = a.out[2].as<T>();
    const T tb1 = T(b1), tb2 = T(b2), tlr = T(lr), twd = T(wd), ts = T(scale), teps = T(eps);
    const T tss = T(step_size), tbc2 = T(bc2_sqrt), one = T(1);
    for (int64_t i = 0; i < a.in[0].numel; ++i) {
      T g = gr[i] * ts;
      T pi = p[i];
      if (wd != 0.0) {
        if (decoupled)
          pi *= one - tlr * twd;
        else
          g += twd * pi;
      }
      const T mi = tb1 * m[i] + (one - tb1) * g;
      const T vi = tb2 * v[i] + (one - tb2) * g * g;
      mo[i] = mi;
      vo[i] = vi;
      po[i] = pi - tss * mi / (std::sqrt(vi) / tbc2 + teps);
    }
  });
}

void grad_accumulate(const KernelArgs& a) {
  dispatch(a, [&](auto tag) {
    using T = decltype(tag);
    const T* acc = a.in[0].as<const T>();
    const T* g = a.in[1].as<const T>();
    T* o = a.out[0].as<T>();
    for (int64_t i = 0; i < a.in[0].numel; ++i)
      o[i] = acc[i] + g[i];
  });
}

// BatchSlice: part `index` of `count` equal parts of input 0 along axis 0 is
// contiguous in row-major order, so it is one memcpy. Inputs after the
// first only order the node (never read).
void batch_slice(const KernelArgs& a) {
  const int64_t index = attr_int(*a.node, "index", 0);
  const int64_t count = attr_int(*a.node, "count", 1);
  const TensorArg &x = a.in.at(0), &y = a.out.at(0);
  if (count < 1 || index < 0 || index >= count || y.numel * count != x.numel || y.dtype != x.dtype)
    throw Error(node_desc(*a.node) + ": output " + shape_str(y.shape) + " is not part " +
                std::to_string(index) + " of " + std::to_string(count) + " of input " +
                shape_str(x.shape));
  const size_t bytes = static_cast<size_t>(y.numel) * dtype_size(y.dtype);
  if (bytes) std::memcpy(y.data, static_cast<const char*>(x.data) + bytes * static_cast<size_t>(index), bytes);
}

// torch.nn.utils.clip_grad_norm_ (norm_type 2): total = sqrt(sum ||g||^2),
// scale = min(1, max_norm / (total + 1e-6)). Sums in double for every dtype.
void global_norm_scale(const KernelArgs& a) {
  double sum = 0.0;
  for (const TensorArg& t : a.in) {
    if (t.dtype == DType::f32) {
      for (int64_t i = 0; i < t.numel; ++i)
        sum += double(t.as<const float>()[i]) * t.as<const float>()[i];
    } else if (t.dtype == DType::f64) {
      for (int64_t i = 0; i < t.numel; ++i)
        sum += t.as<const double>()[i] * t.as<const double>()[i];
    } else {
      unsupported(a, t.dtype);
    }
  }
  const double max_norm = attr_float(*a.node, "max_norm", 1.0);
  *a.out[0].as<float>() = static_cast<float>(std::min(1.0, max_norm / (std::sqrt(sum) + 1e-6)));
}

// torch.cuda.amp.GradScaler.unscale_: found_inf = any(!isfinite(g_i)) (f32
// scalar 0/1, every gradient checked), then g_i *= 1 / scale in place (the
// reciprocal computed in double and rounded once, as torch multiplies by
// scale.reciprocal()).
void unscale_gradients(const KernelArgs& a) {
  const double inv = 1.0 / scalar_in(a, 0);
  bool inf = false;
  for (size_t k = 1; k < a.in.size(); ++k) {
    const TensorArg& g = a.in[k];
    const TensorArg& o = a.out.at(k);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      const T* x = g.as<const T>();
      T* y = o.as<T>();
      const T s = T(inv);
      for (int64_t i = 0; i < g.numel; ++i) {
        inf |= !std::isfinite(x[i]);
        y[i] = x[i] * s;
      }
    };
    if (g.dtype == DType::f32) run(float{});
    else if (g.dtype == DType::f64) run(double{});
    else unsupported(a, g.dtype);
  }
  *a.out[0].as<float>() = inf ? 1.0f : 0.0f;
}

// torch's _amp_update_scale_: on overflow scale *= backoff and the growth
// tracker resets; otherwise the tracker counts good steps and, on reaching
// growth_interval, scale *= growth and the tracker resets.
void loss_scale_update(const KernelArgs& a) {
  const Node& n = *a.node;
  const double growth = attr_float(n, "growth_factor", 2.0), backoff = attr_float(n, "backoff_factor", 0.5);
  const double interval = static_cast<double>(attr_int(n, "growth_interval", 2000));
  double scale = scalar_in(a, 0), tracker = scalar_in(a, 1);
  if (scalar_in(a, 2) != 0.0) {
    scale *= backoff;
    tracker = 0;
  } else if (++tracker >= interval) {
    if (std::isfinite(scale * growth)) scale *= growth;  // torch grows only to a finite scale
    tracker = 0;
  }
  dispatch(a, [&](auto tag) {
    using T = decltype(tag);
    *a.out[0].as<T>() = T(scale);
  });
  if (a.out[1].dtype == DType::f32) *a.out[1].as<float>() = static_cast<float>(tracker);
  else if (a.out[1].dtype == DType::f64) *a.out[1].as<double>() = tracker;
  else unsupported(a, a.out[1].dtype);
}

} // namespace

void register_optim(Table& t) {
  t["UnscaleGradients"] = unscale_gradients;
  t["LossScaleUpdate"] = loss_scale_update;
  t["StepIncrement"] = step_increment;
  t["SGDUpdate"] = sgd_update;
  t["AdamUpdate"] = adam_update;
  t["GradAccumulate"] = grad_accumulate;
  t["GlobalNormScale"] = global_norm_scale;
  t["BatchSlice"] = batch_slice;
}

} // namespace memplan::kernels
