// CUDA ops, part 1: elementwise math and activation grads, Where, views and
// data movement (Reshape, Transpose, Expand, Concat, Split, Gather), sums
// (ReduceSum, GlobalAveragePool), Dropout, BatchSlice (micro-batching) and
// the optimizer family. Each
// Prepare mirrors the CPU kernel of the same op (runtime/cpu/*.cc) and calls
// the launchers of runtime/cuda/device.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "runtime/cuda/ops.h"

namespace memplan::cuda {

// ---------------------------------------------------------------- helpers

void fail(const KernelArgs& a, const std::string& msg) {
  throw Error(node_desc(*a.node) + ": " + msg);
}

bool has_in(const KernelArgs& a, size_t slot) {
  return a.in.size() > slot && a.in[slot].present();
}
bool has_out(const KernelArgs& a, size_t slot) {
  return a.out.size() > slot && a.out[slot].present();
}

std::optional<FloatType> float_type(DType d) {
  if (d == DType::f32) return FloatType::f32;
  if (d == DType::f16) return FloatType::f16;
  if (d == DType::bf16) return FloatType::bf16;
  return std::nullopt;
}

FloatType data_float_type(const KernelArgs& a, std::vector<int> in, std::vector<int> out,
                          std::vector<int> other_in, std::vector<int> other_out) {
  other_in.insert(other_in.end(), in.begin(), in.end());
  other_out.insert(other_out.end(), out.begin(), out.end());
  require_f32(a, other_in, other_out);
  const DType d = a.in[static_cast<size_t>(in.front())].dtype;
  auto same = [&](const std::vector<TensorArg>& v, int k) {
    return v.size() <= static_cast<size_t>(k) || !v[static_cast<size_t>(k)].present() ||
           v[static_cast<size_t>(k)].dtype == d;
  };
  bool ok = float_type(d).has_value();
  for (int k : in) ok = ok && same(a.in, k);
  for (int k : out) ok = ok && same(a.out, k);
  if (!ok)
    fail(a, "its data inputs and outputs must share one float dtype (f32, f16 or bf16), and the "
            "first is " + std::string(dtype_name(d)));
  return *float_type(d);
}

void require_f32(const KernelArgs& a, std::vector<int> skip_in, std::vector<int> skip_out) {
  auto check = [&](const std::vector<TensorArg>& v, const std::vector<int>& skip,
                   const char* what) {
    for (size_t k = 0; k < v.size(); ++k) {
      if (!v[k].present() || v[k].dtype == DType::f32) continue;
      if (std::find(skip.begin(), skip.end(), static_cast<int>(k)) != skip.end()) continue;
      fail(a, std::string("the CUDA backend supports only f32 here, but ") + what + " " +
                  std::to_string(k) + " is " + std::string(dtype_name(v[k].dtype)) +
                  "; run this plan with --device cpu");
    }
  };
  check(a.in, skip_in, "input");
  check(a.out, skip_out, "output");
}

namespace {
const Tensor& const_tensor(const KernelArgs& a, const Ctx& c, size_t slot) {
  if (slot >= a.node->inputs.size() || !a.node->inputs[slot].valid())
    fail(a, "input " + std::to_string(slot) + " is missing");
  const Tensor& t = c.graph->tensor(a.node->inputs[slot]);
  if (!t.data)
    fail(a, "input " + std::to_string(slot) + " ('" + t.name +
                "') must be a constant for the CUDA backend (its value is fixed when the step is "
                "captured); run this plan with --device cpu");
  return t;
}
} // namespace

std::vector<int64_t> const_ints(const KernelArgs& a, const Ctx& c, size_t slot) {
  const Tensor& t = const_tensor(a, c, slot);
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) {
    if (t.dtype == DType::i64)
      std::memcpy(&v[i], t.data->data() + 8 * i, 8);
    else if (t.dtype == DType::i32) {
      int32_t x;
      std::memcpy(&x, t.data->data() + 4 * i, 4);
      v[i] = x;
    } else
      fail(a, "input " + std::to_string(slot) + " must be i64 or i32");
  }
  return v;
}

double const_scalar(const KernelArgs& a, const Ctx& c, size_t slot) {
  const Tensor& t = const_tensor(a, c, slot);
  const uint8_t* p = t.data->data();
  switch (t.dtype) {
    case DType::f32: {
      float x;
      std::memcpy(&x, p, 4);
      return x;
    }
    case DType::f64: {
      double x;
      std::memcpy(&x, p, 8);
      return x;
    }
    case DType::boolean:
    case DType::u8:
      return p[0];
    case DType::i64: {
      int64_t x;
      std::memcpy(&x, p, 8);
      return static_cast<double>(x);
    }
    default:
      fail(a, "input " + std::to_string(slot) + " has an unsupported dtype");
  }
}

Walk make_walk(const KernelArgs& a, const Shape& out, const std::vector<Shape>& operands) {
  if (out.size() > static_cast<size_t>(kMaxDims))
    fail(a, "rank " + std::to_string(out.size()) + " exceeds the CUDA backend's " +
                std::to_string(kMaxDims));
  Walk w;
  w.rank = static_cast<int>(out.size());
  for (size_t d = 0; d < out.size(); ++d)
    w.shape[d] = out[d];
  for (size_t k = 0; k < operands.size(); ++k) {
    const Shape& in = operands[k];
    if (in.size() > out.size()) fail(a, "an operand has a higher rank than the output");
    const size_t lead = out.size() - in.size();
    int64_t stride = 1;
    for (size_t d = in.size(); d-- > 0;) {
      w.st[k][lead + d] = in[d] == 1 ? 0 : stride;
      stride *= in[d];
    }
  }
  return w;
}

Walk make_walk_strided(const KernelArgs& a, const Shape& shape, const std::vector<int64_t>& st) {
  Walk w = make_walk(a, shape, {});
  for (size_t d = 0; d < shape.size(); ++d)
    w.st[0][d] = st[d];
  return w;
}

void check_cuda(const KernelArgs& a, int err, const char* what) {
  if (err != 0)
    fail(a, std::string(what) + " failed: " + cudaGetErrorString(static_cast<cudaError_t>(err)));
}

namespace {

int64_t norm_axis(const KernelArgs& a, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    fail(a, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;)
    st[d - 1] = st[d] * s[d];
  return st;
}

// ---------------------------------------------------------------- elementwise

template <Unary op> Launch unary(const KernelArgs& a, Ctx&) {
  const FloatType t = data_float_type(a, {0}, {0});
  const void* x = a.in[0].data;
  void* y = a.out[0].data;
  const int64_t n = a.out[0].numel;
  return [=](Stream s) { launch_unary(op, x, y, t, n, s); };
}

template <Binary op> Launch binary(const KernelArgs& a, Ctx&) {
  const FloatType t = data_float_type(a, {0, 1}, {0});
  const Walk w = make_walk(a, a.out[0].shape, {a.in[0].shape, a.in[1].shape});
  const void *x = a.in[0].data, *z = a.in[1].data;
  void* y = a.out[0].data;
  const int64_t n = a.out[0].numel;
  return [=](Stream s) { launch_binary(op, x, z, y, t, w, n, s); };
}

template <ActGrad op> Launch act_grad(const KernelArgs& a, Ctx&) {
  const FloatType t = data_float_type(a, {0, 1}, {0});
  const void *dy = a.in[0].data, *v = a.in[1].data;
  void* dx = a.out[0].data;
  const int64_t n = a.out[0].numel;
  return [=](Stream s) { launch_act_grad(op, dy, v, dx, t, n, s); };
}

Launch where(const KernelArgs& a, Ctx&) {
  require_f32(a, {0});
  if (a.in[0].dtype != DType::boolean) fail(a, "the condition must be bool");
  const Walk w = make_walk(a, a.out[0].shape, {a.in[0].shape, a.in[1].shape, a.in[2].shape});
  const auto* c = static_cast<const uint8_t*>(a.in[0].data);
  const float *x = cf(a.in[1]), *z = cf(a.in[2]);
  float* y = f(a.out[0]);
  const int64_t n = a.out[0].numel;
  return [=](Stream s) { launch_where(c, x, z, y, w, n, s); };
}

/// Cast / CastLike between f32, f16 and bf16 (the output's dtype is the
/// target); a cast to the same dtype is a copy.
Launch cast(const KernelArgs& a, Ctx&) {
  auto ft = [&](DType d) {
    if (const auto t = float_type(d)) return *t;
    fail(a, "the CUDA backend casts only between f32, f16 and bf16, not " +
                std::string(dtype_name(d)) + "; run this plan with --device cpu");
  };
  const DType from = a.in[0].dtype, to = a.out[0].dtype;
  const void* x = a.in[0].data;
  void* y = a.out[0].data;
  const int64_t n = a.out[0].numel;
  if (from == to) {
    const size_t bytes = static_cast<size_t>(n) * dtype_size(to);
    return [=](Stream s) {
      if (x != y && bytes) cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, s);
    };
  }
  const FloatType f = ft(from), t = ft(to);
  return [=](Stream s) { launch_cast_float(x, f, y, t, n, s); };
}

// ---------------------------------------------------------------- data movement

/// Views: nothing to do when planned as a view (same pointer), else a copy.
Launch view(const KernelArgs& a, Ctx&) {
  if (a.in[0].numel != a.out[0].numel) fail(a, "view changes the element count");
  const void* x = a.in[0].data;
  void* y = a.out[0].data;
  const size_t bytes = static_cast<size_t>(a.in[0].numel) * dtype_size(a.in[0].dtype);
  if (x == y || bytes == 0) return [](Stream) {};
  return [=](Stream s) { cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, s); };
}

Launch strided(const KernelArgs& a, const std::vector<int64_t>& st) {
  const Walk w = make_walk_strided(a, a.out[0].shape, st);
  const void* x = a.in[0].data;
  void* y = a.out[0].data;
  const int elem = static_cast<int>(dtype_size(a.in[0].dtype));
  const int64_t n = a.out[0].numel;
  return [=](Stream s) { launch_strided_copy(x, y, elem, w, n, s); };
}

Launch transpose(const KernelArgs& a, Ctx&) {
  const Shape& in = a.in[0].shape;
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> perm(in.size());
  for (int64_t i = 0; i < r; ++i)
    perm[static_cast<size_t>(i)] = r - 1 - i;
  perm = attr_ints(*a.node, "perm", perm);
  if (static_cast<int64_t>(perm.size()) != r) fail(a, "perm does not match the input rank");
  const std::vector<int64_t> s = strides_of(in);
  std::vector<int64_t> st(perm.size());
  for (size_t d = 0; d < perm.size(); ++d)
    st[d] = s[static_cast<size_t>(norm_axis(a, perm[d], r))];
  return strided(a, st);
}

Launch expand(const KernelArgs& a, Ctx&) {
  Walk w = make_walk(a, a.out[0].shape, {a.in[0].shape});
  return strided(a, std::vector<int64_t>(w.st[0], w.st[0] + w.rank));
}

/// Concat / Split as 2-D copies: `outer` rows of `block` elements.
Launch concat_split(const KernelArgs& a, bool concat) {
  const TensorArg& whole = concat ? a.out[0] : a.in[0];
  const std::vector<TensorArg>& parts = concat ? a.in : a.out;
  const int64_t axis =
      norm_axis(a, attr_int(*a.node, "axis", 0), static_cast<int64_t>(whole.shape.size()));
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= whole.shape[static_cast<size_t>(d)];
  const size_t es = dtype_size(whole.dtype);
  const int64_t whole_block = outer ? whole.numel / outer : 0;
  struct Copy {
    uint8_t* part;
    int64_t col, block;
  };
  std::vector<Copy> copies;
  int64_t col = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    if (!parts[k].present() && parts[k].numel > 0)
      fail(a, "omitted Split outputs are not supported");
    if (parts[k].dtype != whole.dtype) fail(a, "inputs differ in dtype");
    const int64_t block = outer ? parts[k].numel / outer : 0;
    if (block > 0) copies.push_back({static_cast<uint8_t*>(parts[k].data), col, block});
    col += block;
  }
  auto* base = static_cast<uint8_t*>(whole.data);
  return [=](Stream s) {
    for (const Copy& c : copies) {
      const size_t wpitch = static_cast<size_t>(whole_block) * es,
                   ppitch = static_cast<size_t>(c.block) * es;
      uint8_t* w = base + static_cast<size_t>(c.col) * es;
      if (concat)
        cudaMemcpy2DAsync(w, wpitch, c.part, ppitch, ppitch, static_cast<size_t>(outer),
                          cudaMemcpyDeviceToDevice, s);
      else
        cudaMemcpy2DAsync(c.part, ppitch, w, wpitch, ppitch, static_cast<size_t>(outer),
                          cudaMemcpyDeviceToDevice, s);
    }
  };
}
Launch concat(const KernelArgs& a, Ctx&) {
  return concat_split(a, true);
}
Launch split(const KernelArgs& a, Ctx&) {
  return concat_split(a, false);
}

struct GatherDims {
  int64_t outer = 1, n = 0, inner = 1;
};
GatherDims gather_dims(const KernelArgs& a, const Shape& data) {
  const int64_t axis =
      norm_axis(a, attr_int(*a.node, "axis", 0), static_cast<int64_t>(data.size()));
  GatherDims g;
  for (size_t d = 0; d < data.size(); ++d) {
    if (static_cast<int64_t>(d) < axis) g.outer *= data[d];
    if (static_cast<int64_t>(d) > axis) g.inner *= data[d];
  }
  g.n = data[static_cast<size_t>(axis)];
  return g;
}

Launch gather(const KernelArgs& a, Ctx&) {
  if (a.in[1].dtype != DType::i64) fail(a, "the CUDA backend needs i64 indices");
  const GatherDims g = gather_dims(a, a.in[0].shape);
  const void* x = a.in[0].data;
  const auto* idx = static_cast<const int64_t*>(a.in[1].data);
  void* y = a.out[0].data;
  const int elem = static_cast<int>(dtype_size(a.in[0].dtype));
  const int64_t K = a.in[1].numel;
  return [=](Stream s) { launch_gather(x, idx, y, elem, g.outer, g.n, K, g.inner, s); };
}

Launch gather_grad(const KernelArgs& a, Ctx&) {
  require_f32(a, {1, 2});
  if (a.in[1].dtype != DType::i64) fail(a, "the CUDA backend needs i64 indices");
  const GatherDims g = gather_dims(a, a.out[0].shape);
  const float* dy = cf(a.in[0]);
  const auto* idx = static_cast<const int64_t*>(a.in[1].data);
  float* dx = f(a.out[0]);
  const int64_t K = a.in[1].numel;
  return [=](Stream s) { launch_gather_grad(dy, idx, dx, g.outer, g.n, K, g.inner, s); };
}

// ---------------------------------------------------------------- sums

/// Sum of x over `reduced` dims (flags per dim) into y, times scale.
Launch sum_over(const KernelArgs& a, const std::vector<char>& reduced, double scale,
                FloatType t) {
  const Shape& in = a.in[0].shape;
  const std::vector<int64_t> st = strides_of(in);
  Shape kept_shape, red_shape;
  std::vector<int64_t> kept_st, red_st;
  for (size_t d = 0; d < in.size(); ++d) {
    (reduced[d] ? red_shape : kept_shape).push_back(in[d]);
    (reduced[d] ? red_st : kept_st).push_back(st[d]);
  }
  const Walk kept = make_walk_strided(a, kept_shape, kept_st),
             red = make_walk_strided(a, red_shape, red_st);
  const int64_t n_out = num_elements(kept_shape), n_red = num_elements(red_shape);
  if (n_out != a.out[0].numel) fail(a, "output size does not match the reduction");
  const void* x = a.in[0].data;
  void* y = a.out[0].data;
  return [=](Stream s) { launch_reduce_sum(x, y, t, kept, n_out, red, n_red, scale, s); };
}

Launch reduce_sum(const KernelArgs& a, Ctx& c) {
  const FloatType t = data_float_type(a, {0}, {0}, {1});
  const int64_t r = static_cast<int64_t>(a.in[0].shape.size());
  std::vector<int64_t> axes;
  bool have = false;
  if (a.node->has_attr("axes")) {
    axes = attr_ints(*a.node, "axes");
    have = true;
  } else if (has_in(a, 1)) {
    axes = const_ints(a, c, 1);
    have = true;
  }
  std::vector<char> reduced(a.in[0].shape.size(), 0);
  if (have && !axes.empty()) {
    for (int64_t ax : axes)
      reduced[static_cast<size_t>(norm_axis(a, ax, r))] = 1;
  } else if (attr_int(*a.node, "noop_with_empty_axes", 0) == 0) {
    std::fill(reduced.begin(), reduced.end(), 1);
  }
  return sum_over(a, reduced, 1.0, t);
}

Launch global_avg_pool(const KernelArgs& a, Ctx&) {
  require_f32(a);
  std::vector<char> reduced(a.in[0].shape.size(), 1);
  reduced[0] = reduced[1] = 0;
  int64_t S = 1;
  for (size_t d = 2; d < a.in[0].shape.size(); ++d)
    S *= a.in[0].shape[d];
  return sum_over(a, reduced, S > 0 ? 1.0 / static_cast<double>(S) : 0.0, FloatType::f32);
}

Launch global_avg_pool_grad(const KernelArgs& a, Ctx&) {
  require_f32(a);
  const Shape& xs = a.out[0].shape;
  const int64_t planes = xs[0] * xs[1], S = planes ? a.out[0].numel / planes : 0;
  const float* dy = cf(a.in[0]);
  float* dx = f(a.out[0]);
  return [=](Stream s) { launch_broadcast_rows(dy, dx, planes, S, s); };
}

// ---------------------------------------------------------------- dropout

struct DropParams {
  double ratio;
  bool training;
};
DropParams drop_params(const KernelArgs& a, const Ctx& c, size_t r) {
  DropParams p{attr_float(*a.node, "ratio", 0.5), false};
  if (has_in(a, r)) p.ratio = const_scalar(a, c, r);
  if (has_in(a, r + 1)) p.training = const_scalar(a, c, r + 1) != 0;
  if (p.ratio < 0 || p.ratio >= 1)
    fail(a, "ratio must be in [0, 1), got " + std::to_string(p.ratio));
  return p;
}

Launch dropout(const KernelArgs& a, Ctx& c) {
  require_f32(a, {1, 2}, {1});
  const DropParams p = drop_params(a, c, 1);
  const float* x = cf(a.in[0]);
  float* y = f(a.out[0]);
  auto* mask = has_out(a, 1) ? static_cast<uint8_t*>(a.out[1].data) : nullptr;
  const int64_t n = a.out[0].numel;
  if (!p.training || p.ratio == 0) {
    return [=](Stream s) {
      if (y != x) cudaMemcpyAsync(y, x, static_cast<size_t>(n) * 4, cudaMemcpyDeviceToDevice, s);
      if (mask) cudaMemsetAsync(mask, 1, static_cast<size_t>(n), s);
    };
  }
  const unsigned long long seed = a.seed, key = a.rng_key;
  const Control* ctl = c.control;
  const double ratio = p.ratio;
  return [=](Stream s) { launch_dropout(x, y, mask, n, ratio, seed, key, ctl, s); };
}

Launch dropout_grad(const KernelArgs& a, Ctx& c) {
  require_f32(a, {1, 2, 3});
  if (a.in[1].dtype != DType::boolean) fail(a, "mask must be bool");
  const DropParams p = drop_params(a, c, 2);
  const float* dy = cf(a.in[0]);
  const auto* m = static_cast<const uint8_t*>(a.in[1].data);
  float* dx = f(a.out[0]);
  const int64_t n = a.out[0].numel;
  if (!p.training || p.ratio == 0)
    return [=](Stream s) {
      if (dx != dy)
        cudaMemcpyAsync(dx, dy, static_cast<size_t>(n) * 4, cudaMemcpyDeviceToDevice, s);
    };
  const double ratio = p.ratio;
  return [=](Stream s) { launch_dropout_grad(dy, m, dx, n, ratio, s); };
}

// ---------------------------------------------------------------- optimizer

Launch step_increment(const KernelArgs& a, Ctx&) {
  require_f32(a);
  const float* x = cf(a.in[0]);
  float* y = f(a.out[0]);
  return [=](Stream s) { launch_step_increment(x, y, s); };
}

Launch sgd_update(const KernelArgs& a, Ctx&) {
  require_f32(a);
  const Node& n = *a.node;
  const double lr = attr_float(n, "lr", 1e-3), momentum = attr_float(n, "momentum", 0.0);
  const double dampening = attr_float(n, "dampening", 0.0), wd = attr_float(n, "weight_decay", 0.0);
  const bool nesterov = attr_int(n, "nesterov", 0) != 0;
  const bool has_buf = has_in(a, 2);
  if (momentum != 0.0 && !has_buf) fail(a, "momentum needs a buffer (input 2)");
  if (has_buf && !has_out(a, 1)) fail(a, "the momentum buffer needs output 1");
  const float *p = cf(a.in[0]), *g = cf(a.in[1]), *buf = has_buf ? cf(a.in[2]) : nullptr;
  const float* scale = has_in(a, 3) ? cf(a.in[3]) : nullptr;
  const float* step = has_in(a, 4) ? cf(a.in[4]) : nullptr;
  float *po = f(a.out[0]), *bo = has_buf ? f(a.out[1]) : nullptr;
  const int64_t cnt = a.in[0].numel;
  return [=](Stream s) {
    launch_sgd(p, g, buf, po, bo, cnt, lr, momentum, dampening, wd, nesterov, scale, step, s);
  };
}

Launch adam_update(const KernelArgs& a, Ctx&) {
  require_f32(a);
  const Node& n = *a.node;
  const double lr = attr_float(n, "lr", 1e-3), b1 = attr_float(n, "beta1", 0.9),
               b2 = attr_float(n, "beta2", 0.999), eps = attr_float(n, "eps", 1e-8),
               wd = attr_float(n, "weight_decay", 0.0);
  const bool decoupled = attr_int(n, "decoupled", 0) != 0;
  if (!has_in(a, 4)) fail(a, "the step counter (input 4) is missing");
  const float *p = cf(a.in[0]), *g = cf(a.in[1]), *m = cf(a.in[2]), *v = cf(a.in[3]);
  const float* step = cf(a.in[4]);
  const float* scale = has_in(a, 5) ? cf(a.in[5]) : nullptr;
  float *po = f(a.out[0]), *mo = f(a.out[1]), *vo = f(a.out[2]);
  const int64_t cnt = a.in[0].numel;
  return [=](Stream s) {
    launch_adam(p, g, m, v, po, mo, vo, cnt, lr, b1, b2, eps, wd, decoupled, step, scale, s);
  };
}

/// Micro-batching: part `index` of `count` equal parts of the batch (a
/// contiguous byte range; later inputs only order the op).
Launch batch_slice(const KernelArgs& a, Ctx&) {
  const int64_t index = attr_int(*a.node, "index", 0), count = attr_int(*a.node, "count", 1);
  const TensorArg &x = a.in.at(0), &y = a.out.at(0);
  if (count < 1 || index < 0 || index >= count || y.numel * count != x.numel || y.dtype != x.dtype)
    fail(a, "output " + shape_str(y.shape) + " is not part " + std::to_string(index) + " of " +
                std::to_string(count) + " of input " + shape_str(x.shape));
  const size_t bytes = static_cast<size_t>(y.numel) * dtype_size(y.dtype);
  const auto* src = static_cast<const uint8_t*>(x.data) + bytes * static_cast<size_t>(index);
  void* dst = y.data;
  return [=](Stream s) {
    if (bytes) cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s);
  };
}

Launch global_norm_scale(const KernelArgs& a, Ctx&) {
  require_f32(a);
  std::vector<std::pair<const float*, int64_t>> ins;
  for (const TensorArg& t : a.in)
    ins.emplace_back(cf(t), t.numel);
  float* acc = f(a.out[0]);
  const double max_norm = attr_float(*a.node, "max_norm", 1.0);
  return [=](Stream s) {
    cudaMemsetAsync(acc, 0, sizeof(float), s);
    for (const auto& [x, n] : ins)
      launch_sumsq_accumulate(x, n, acc, s);
    launch_norm_scale_finish(acc, max_norm, s);
  };
}

} // namespace

void register_basic(std::map<std::string_view, Prepare>& t) {
  t["Relu"] = unary<Unary::relu>;
  t["Tanh"] = unary<Unary::tanh>;
  t["Erf"] = unary<Unary::erf>;
  t["Neg"] = unary<Unary::neg>;
  t["Exp"] = unary<Unary::exp>;
  t["Log"] = unary<Unary::log>;
  t["Sqrt"] = unary<Unary::sqrt>;
  t["Sigmoid"] = unary<Unary::sigmoid>;
  t["Abs"] = unary<Unary::abs>;
  t["Add"] = binary<Binary::add>;
  t["Sub"] = binary<Binary::sub>;
  t["Mul"] = binary<Binary::mul>;
  t["Div"] = binary<Binary::div>;
  t["Pow"] = binary<Binary::pow>;
  t["GradAccumulate"] = binary<Binary::add>;
  t["ReluGrad"] = act_grad<ActGrad::relu_y>;
  t["TanhGrad"] = act_grad<ActGrad::tanh_y>;
  t["ErfGrad"] = act_grad<ActGrad::erf_x>;
  t["SigmoidGrad"] = act_grad<ActGrad::sigmoid_y>;
  t["Where"] = where;
  t["Cast"] = cast;
  t["CastLike"] = cast;
  for (std::string_view v : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
    t[v] = view;
  t["Transpose"] = transpose;
  t["Expand"] = expand;
  t["Concat"] = concat;
  t["Split"] = split;
  t["Gather"] = gather;
  t["GatherGrad"] = gather_grad;
  t["ReduceSum"] = reduce_sum;
  t["GlobalAveragePool"] = global_avg_pool;
  t["GlobalAveragePoolGrad"] = global_avg_pool_grad;
  t["Dropout"] = dropout;
  t["DropoutGrad"] = dropout_grad;
  t["StepIncrement"] = step_increment;
  t["SGDUpdate"] = sgd_update;
  t["AdamUpdate"] = adam_update;
  t["GlobalNormScale"] = global_norm_scale;
  t["BatchSlice"] = batch_slice;
}

} // namespace memplan::cuda
