// CUDA ops, part 2: Softmax / LogSoftmax and grads, LayerNormalization,
// BatchNormTraining, SoftmaxCrossEntropyLoss and their grads, MaxPool and
// MaxPoolGrad. Shapes and attributes are resolved here exactly as the CPU
// kernels resolve them (runtime/cpu/softmax.cc, norm.cc, loss.cc, pool.cc);
// the pool window comes from the CPU's own make_window.
#include "runtime/cpu/nn_util.h"
#include "runtime/cuda/ops.h"

namespace memplan::cuda {

namespace {

using kernels::nn::prod;

size_t axis_of(const KernelArgs& a, const Shape& s, int64_t dflt) {
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t axis = attr_int(*a.node, "axis", dflt);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail(a, "axis out of range for rank " + std::to_string(r));
  return static_cast<size_t>(axis);
}

Launch softmax_impl(const KernelArgs& a, bool log) {
  require_f32(a);
  const Shape& s = a.in[0].shape;
  const size_t ax = axis_of(a, s, -1);
  const int64_t outer = prod(s, 0, ax), L = s[ax], inner = prod(s, ax + 1, s.size());
  const float* x = cf(a.in[0]);
  float* y = f(a.out[0]);
  return [=](Stream st) { launch_softmax(x, y, outer, L, inner, log, st); };
}
Launch softmax(const KernelArgs& a, Ctx&) {
  return softmax_impl(a, false);
}
Launch log_softmax(const KernelArgs& a, Ctx&) {
  return softmax_impl(a, true);
}

Launch softmax_grad_impl(const KernelArgs& a, bool log) {
  require_f32(a);
  const Shape& s = a.in[1].shape;
  const size_t ax = axis_of(a, s, -1);
  const int64_t outer = prod(s, 0, ax), L = s[ax], inner = prod(s, ax + 1, s.size());
  const float *dy = cf(a.in[0]), *y = cf(a.in[1]);
  float* dx = f(a.out[0]);
  return [=](Stream st) { launch_softmax_grad(dy, y, dx, outer, L, inner, log, st); };
}
Launch softmax_grad(const KernelArgs& a, Ctx&) {
  return softmax_grad_impl(a, false);
}
Launch log_softmax_grad(const KernelArgs& a, Ctx&) {
  return softmax_grad_impl(a, true);
}

void check_param(const KernelArgs& a, const TensorArg& p, int64_t D, const char* what) {
  if (p.present() && p.numel != D && p.numel != 1)
    fail(a, std::string(what) + " of " + std::to_string(p.numel) +
                " elements does not broadcast over normalized size " + std::to_string(D));
}

Launch layer_norm(const KernelArgs& a, Ctx&) {
  require_f32(a); // saved statistics in another dtype (stash_type) are not supported
  const Shape& s = a.in[0].shape;
  const size_t ax = axis_of(a, s, -1);
  const int64_t rows = prod(s, 0, ax), D = prod(s, ax, s.size());
  const TensorArg b = has_in(a, 2) ? a.in[2] : TensorArg{};
  check_param(a, a.in[1], D, "Scale");
  check_param(a, b, D, "B");
  const double eps = attr_float(*a.node, "epsilon", 1e-5);
  const float *x = cf(a.in[0]), *sc = cf(a.in[1]), *bias = b.present() ? cf(b) : nullptr;
  const int64_t sn = a.in[1].numel, bn = b.numel;
  float* y = f(a.out[0]);
  float* mean = has_out(a, 1) ? f(a.out[1]) : nullptr;
  float* inv = has_out(a, 2) ? f(a.out[2]) : nullptr;
  return [=](Stream st) { launch_layer_norm(x, sc, sn, bias, bn, y, mean, inv, rows, D, eps, st); };
}

Launch layer_norm_grad(const KernelArgs& a, Ctx&) {
  require_f32(a);
  const Shape& s = a.in[1].shape;
  const size_t ax = axis_of(a, s, -1);
  const int64_t rows = prod(s, 0, ax), D = prod(s, ax, s.size());
  check_param(a, a.in[2], D, "Scale");
  const float *dy = cf(a.in[0]), *x = cf(a.in[1]), *sc = cf(a.in[2]), *mean = cf(a.in[3]),
              *inv = cf(a.in[4]);
  const int64_t sn = a.in[2].numel;
  float* dx = has_out(a, 0) ? f(a.out[0]) : nullptr;
  float* ds = has_out(a, 1) ? f(a.out[1]) : nullptr;
  float* db = has_out(a, 2) ? f(a.out[2]) : nullptr;
  return
      [=](Stream st) { launch_layer_norm_grad(dy, x, sc, sn, mean, inv, dx, ds, db, rows, D, st); };
}

struct Channels {
  int64_t N, C, S;
};
Channels channels(const KernelArgs& a, const Shape& s) {
  if (s.size() < 2) fail(a, "X must have rank >= 2");
  return {s[0], s[1], prod(s, 2, s.size())};
}

Launch batch_norm_training(const KernelArgs& a, Ctx&) {
  const FloatType xt = data_float_type(a, {0}, {0});
  const Channels c = channels(a, a.in[0].shape);
  const double eps = attr_float(*a.node, "epsilon", 1e-5),
               mom = attr_float(*a.node, "momentum", 0.9);
  const void* x = a.in[0].data;
  const float *sc = cf(a.in[1]), *b = cf(a.in[2]), *rm_in = cf(a.in[3]), *rv_in = cf(a.in[4]);
  void* y = a.out[0].data;
  float* rm = has_out(a, 1) ? f(a.out[1]) : nullptr;
  float* rv = has_out(a, 2) ? f(a.out[2]) : nullptr;
  float* sm = has_out(a, 3) ? f(a.out[3]) : nullptr;
  float* si = has_out(a, 4) ? f(a.out[4]) : nullptr;
  return [=](Stream st) {
    launch_batch_norm_train(x, y, xt, sc, b, rm_in, rv_in, rm, rv, sm, si, c.N, c.C, c.S, eps, mom,
                            st);
  };
}

Launch batch_norm_training_grad(const KernelArgs& a, Ctx&) {
  const FloatType xt = data_float_type(a, {0, 1}, {0});
  const Channels c = channels(a, a.in[1].shape);
  const void *dy = a.in[0].data, *x = a.in[1].data;
  const float *sc = cf(a.in[2]), *m = cf(a.in[3]), *inv = cf(a.in[4]);
  void* dx = has_out(a, 0) ? a.out[0].data : nullptr;
  float* ds = has_out(a, 1) ? f(a.out[1]) : nullptr;
  float* db = has_out(a, 2) ? f(a.out[2]) : nullptr;
  return [=](Stream st) {
    launch_batch_norm_train_grad(dy, x, dx, xt, sc, m, inv, ds, db, c.N, c.C, c.S, st);
  };
}

int reduction(const KernelArgs& a) {
  const std::string r = attr_str(*a.node, "reduction", "mean");
  if (r == "none") return 0;
  if (r == "sum") return 1;
  if (r == "mean") return 2;
  fail(a, "unknown reduction '" + r + "'");
}

struct LossDims {
  int64_t N, C, D;
};
LossDims loss_dims(const KernelArgs& a, const Shape& s) {
  if (s.size() < 2) fail(a, "scores must have rank >= 2");
  return {s[0], s[1], prod(s, 2, s.size())};
}

Launch sce_loss(const KernelArgs& a, Ctx&) {
  require_f32(a, {1});
  if (a.in[1].dtype != DType::i64) fail(a, "the CUDA backend needs i64 labels");
  const LossDims d = loss_dims(a, a.in[0].shape);
  const int red = reduction(a);
  const bool has_ignore = a.node->has_attr("ignore_index");
  const int64_t ignore = attr_int(*a.node, "ignore_index", 0);
  const float* x = cf(a.in[0]);
  const auto* labels = static_cast<const int64_t*>(a.in[1].data);
  const float* w = has_in(a, 2) ? cf(a.in[2]) : nullptr;
  float* loss = f(a.out[0]);
  float* lp = has_out(a, 1) ? f(a.out[1]) : nullptr;
  return [=](Stream st) {
    launch_sce_loss(x, labels, w, loss, lp, d.N, d.C, d.D, red, has_ignore, ignore, st);
  };
}

Launch sce_loss_grad(const KernelArgs& a, Ctx&) {
  require_f32(a, {2});
  if (a.in[2].dtype != DType::i64) fail(a, "the CUDA backend needs i64 labels");
  const LossDims d = loss_dims(a, a.in[1].shape);
  const int red = reduction(a);
  const bool has_ignore = a.node->has_attr("ignore_index");
  const int64_t ignore = attr_int(*a.node, "ignore_index", 0);
  const float *dl = cf(a.in[0]), *lp = cf(a.in[1]);
  const auto* labels = static_cast<const int64_t*>(a.in[2].data);
  const float* w = has_in(a, 3) ? cf(a.in[3]) : nullptr;
  float* dx = f(a.out[0]);
  return [=](Stream st) {
    launch_sce_loss_grad(dl, lp, labels, w, dx, d.N, d.C, d.D, red, has_ignore, ignore, st);
  };
}

PoolGeom pool_geom(const KernelArgs& a, const Shape& x, const Shape& y) {
  if (attr_int(*a.node, "storage_order", 0) != 0) fail(a, "storage_order=1 is not supported");
  if (x.size() < 3 || x.size() > 5) fail(a, "the CUDA backend supports 1 to 3 spatial dims");
  const std::vector<int64_t> in(x.begin() + 2, x.end()), out(y.begin() + 2, y.end());
  const kernels::nn::Window w =
      kernels::nn::make_window(a, in, out, attr_ints(*a.node, "kernel_shape"));
  PoolGeom g;
  g.nd = static_cast<int>(in.size());
  const size_t off = 3 - in.size(); // right-align into 3 dims
  for (size_t d = 0; d < in.size(); ++d) {
    g.in[off + d] = w.in[d];
    g.out[off + d] = w.out[d];
    g.kernel[off + d] = w.kernel[d];
    g.stride[off + d] = w.strides[d];
    g.dilation[off + d] = w.dilations[d];
    g.pad[off + d] = w.pad_begin[d];
  }
  return g;
}

Launch max_pool(const KernelArgs& a, Ctx&) {
  const FloatType t = data_float_type(a, {0}, {0}, {}, {1});
  const PoolGeom g = pool_geom(a, a.in[0].shape, a.out[0].shape);
  const int64_t planes = a.in[0].shape[0] * a.in[0].shape[1];
  const void* x = a.in[0].data;
  void* y = a.out[0].data;
  auto* idx = has_out(a, 1) ? static_cast<int64_t*>(a.out[1].data) : nullptr;
  return [=](Stream st) { launch_max_pool(x, y, t, idx, planes, g, st); };
}

Launch max_pool_grad(const KernelArgs& a, Ctx&) {
  const FloatType t = data_float_type(a, {0, 1}, {0});
  const PoolGeom g = pool_geom(a, a.in[1].shape, a.in[0].shape);
  const int64_t planes = a.in[1].shape[0] * a.in[1].shape[1];
  const void *dy = a.in[0].data, *x = a.in[1].data;
  void* dx = a.out[0].data;
  return [=](Stream st) { launch_max_pool_grad(dy, x, dx, t, planes, g, st); };
}

} // namespace

void register_nn(std::map<std::string_view, Prepare>& t) {
  t["Softmax"] = softmax;
  t["LogSoftmax"] = log_softmax;
  t["SoftmaxGrad"] = softmax_grad;
  t["LogSoftmaxGrad"] = log_softmax_grad;
  t["LayerNormalization"] = layer_norm;
  t["LayerNormalizationGrad"] = layer_norm_grad;
  t["BatchNormTraining"] = batch_norm_training;
  t["BatchNormTrainingGrad"] = batch_norm_training_grad;
  t["SoftmaxCrossEntropyLoss"] = sce_loss;
  t["SoftmaxCrossEntropyLossGrad"] = sce_loss_grad;
  t["MaxPool"] = max_pool;
  t["MaxPoolGrad"] = max_pool_grad;
}

const std::map<std::string_view, Prepare>& op_table() {
  static const std::map<std::string_view, Prepare> t = [] {
    std::map<std::string_view, Prepare> m;
    register_basic(m);
    register_nn(m);
    register_lib(m);
    return m;
  }();
  return t;
}

} // namespace memplan::cuda
