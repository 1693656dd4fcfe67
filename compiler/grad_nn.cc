// Gradient rules: nn family (conv, pools, Gemm, MatMul, softmax, norms,
// dropout, losses). Backward ops are defined in compiler/ops_grad_nn.cc.
//
// Rules never keep references to graph tensors across emit() / ensure_output()
// (both add tensors); they copy the shapes they need first.
//
// Not differentiated: integer inputs (labels), loss weights, Dropout's ratio
// and training_mode, BatchNormTraining's running statistics, and
// BatchNormalization itself (autodiff rewrites training BatchNormalization
// into BatchNormTraining; inference BatchNormalization has no rule).
#include <algorithm>

#include "compiler/grad_internal.h"

namespace memplan::grads {

namespace {

/// The node's attributes whose names are in `keep`.
Attrs pick(const Node& n, std::initializer_list<const char*> keep) {
  Attrs r;
  for (const char* k : keep)
    if (auto it = n.attrs.find(k); it != n.attrs.end()) r.emplace(k, it->second);
  return r;
}

Shape shape_of(const GradCtx& c, TensorId t) {
  return c.tensor(t).shape;
}

void set_if(GradCtx& c, size_t i, TensorId g) {
  if (c.needs_input_grad(i) && g.valid()) c.set_input_grad(i, g);
}

/// ReduceSum of dY over every axis except 1 (bias gradient of conv ops).
TensorId bias_grad(GradCtx& c, TensorId dy) {
  std::vector<int64_t> axes{0};
  for (int64_t a = 2; a < static_cast<int64_t>(shape_of(c, dy).size()); ++a)
    axes.push_back(a);
  return c.emit1("ReduceSum", {dy, c.ints(axes)}, {{"keepdims", int64_t{0}}});
}

// ---------------------------------------------------------------- conv

void conv(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const Node& n = c.node();
  Attrs at = pick(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const TensorId x = c.input(0), w = c.input(1);
  if (c.needs_input_grad(0)) {
    Attrs a = at;
    a["input_shape"] = shape_of(c, x);
    c.set_input_grad(0, c.emit1("ConvGradInput", {dy, w}, a));
  }
  if (c.needs_input_grad(1)) {
    Attrs a = at;
    a["weight_shape"] = shape_of(c, w);
    c.set_input_grad(1, c.emit1("ConvGradWeight", {dy, x}, a));
  }
  if (c.num_inputs() > 2 && c.needs_input_grad(2)) c.set_input_grad(2, bias_grad(c, dy));
}

/// Explicit pads (begins then ends) of a ConvTranspose node such that a Conv
/// with them maps Y's spatial size back to X's (the same rules as the kernel:
/// runtime/cpu/nn.cc make_transpose_window).
std::vector<int64_t> conv_transpose_pads(const Node& n, const Shape& x, const Shape& y,
                                         const Shape& w) {
  const size_t sp = x.size() - 2;
  const std::vector<int64_t> strides = attr_ints(n, "strides", std::vector<int64_t>(sp, 1));
  const std::vector<int64_t> dil = attr_ints(n, "dilations", std::vector<int64_t>(sp, 1));
  const std::vector<int64_t> opad = attr_ints(n, "output_padding", std::vector<int64_t>(sp, 0));
  const std::string ap = attr_str(n, "auto_pad", "NOTSET");
  std::vector<int64_t> pads(2 * sp, 0);
  for (size_t d = 0; d < sp; ++d) {
    const int64_t ek = (w[d + 2] - 1) * dil[d] + 1, xs = x[d + 2], ys = y[d + 2];
    int64_t pb = 0;
    if (ap == "NOTSET" && !n.has_attr("output_shape")) {
      pb = attr_ints(n, "pads", std::vector<int64_t>(2 * sp, 0)).at(d);
    } else if (ap != "VALID") {
      const int64_t total = std::max<int64_t>(0, strides[d] * (xs - 1) + opad.at(d) + ek - ys);
      pb = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
    }
    pads[d] = pb;
    pads[d + sp] = (xs - 1) * strides[d] + ek - ys - pb;
  }
  return pads;
}

void conv_transpose(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const Node& n = c.node();
  const TensorId x = c.input(0), w = c.input(1);
  Attrs at = pick(n, {"dilations", "group", "strides"});
  at["pads"] = conv_transpose_pads(n, shape_of(c, x), shape_of(c, dy), shape_of(c, w));
  // ConvTranspose(X, W) is the adjoint of Conv(., W) in X: dX = Conv(dY, W)
  // and dW = ConvGradWeight with X as that Conv's output gradient.
  if (c.needs_input_grad(0)) c.set_input_grad(0, c.emit1("Conv", {dy, w}, at));
  if (c.needs_input_grad(1)) {
    Attrs a = at;
    a["weight_shape"] = shape_of(c, w);
    c.set_input_grad(1, c.emit1("ConvGradWeight", {x, dy}, a));
  }
  if (c.num_inputs() > 2 && c.needs_input_grad(2)) c.set_input_grad(2, bias_grad(c, dy));
}

// ---------------------------------------------------------------- pools

void max_pool(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  Attrs a = pick(c.node(), {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                            "storage_order", "strides"});
  c.set_input_grad(0, c.emit1("MaxPoolGrad", {dy, c.input(0)}, a));
}

void global_max_pool(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  Shape x = shape_of(c, c.input(0));
  Attrs a{{"kernel_shape", std::vector<int64_t>(x.begin() + 2, x.end())}};
  c.set_input_grad(0, c.emit1("MaxPoolGrad", {dy, c.input(0)}, a));
}

void average_pool(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  Attrs a = pick(c.node(), {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                            "kernel_shape", "pads", "strides"});
  a["input_shape"] = shape_of(c, c.input(0));
  c.set_input_grad(0, c.emit1("AveragePoolGrad", {dy}, a));
}

void global_average_pool(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  Attrs a{{"input_shape", shape_of(c, c.input(0))}};
  c.set_input_grad(0, c.emit1("GlobalAveragePoolGrad", {dy}, a));
}

// ---------------------------------------------------------------- matmul

/// Y = alpha * op(A) op(B) + beta * C.
///   dA = alpha * dY op(B)^T   (transA: alpha * op(B) dY^T)
///   dB = alpha * op(A)^T dY   (transB: alpha * dY^T op(A))
///   dC = beta * unbroadcast(dY)
void gemm(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const Node& n = c.node();
  const int64_t ta = attr_int(n, "transA", 0) != 0, tb = attr_int(n, "transB", 0) != 0;
  const double alpha = attr_float(n, "alpha", 1.0), beta = attr_float(n, "beta", 1.0);
  const TensorId A = c.input(0), B = c.input(1);
  auto g = [&](TensorId l, TensorId r, int64_t tl, int64_t tr) {
    return c.emit1("Gemm", {l, r},
                   {{"transA", tl}, {"transB", tr}, {"alpha", alpha}, {"beta", 1.0}});
  };
  if (c.needs_input_grad(0)) c.set_input_grad(0, ta ? g(B, dy, tb, 1) : g(dy, B, 0, 1 - tb));
  if (c.needs_input_grad(1)) c.set_input_grad(1, tb ? g(dy, A, 1, ta) : g(A, dy, 1 - ta, 0));
  if (c.num_inputs() > 2 && c.needs_input_grad(2)) {
    const TensorId C = c.input(2);
    const DType dt = c.tensor(C).dtype;
    TensorId dc = c.unbroadcast(dy, shape_of(c, C));
    if (beta != 1.0) dc = c.emit1("Mul", {dc, c.scalar(beta, dt)});
    c.set_input_grad(2, dc);
  }
}

TensorId reshape(GradCtx& c, TensorId t, const Shape& s) {
  if (shape_of(c, t) == s) return t;
  return c.emit1("Reshape", {t, c.ints(s)});
}

/// Y = A @ B with numpy batch broadcasting; 1-D operands are made 2-D
/// ([K] -> [1, K] for A, [K] -> [K, 1] for B) by views.
///   dA = dY @ B^T,  dB = A^T @ dY
/// each summed over the batches its operand was broadcast along, inside
/// MatMulTrans (batch_shape), so no [batch, K, N] intermediate is made.
void matmul(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const TensorId A = c.input(0), B = c.input(1);
  const Shape as = shape_of(c, A), bs = shape_of(c, B);
  Shape as2 = as, bs2 = bs, ys2 = shape_of(c, dy);
  if (as.size() == 1) {
    as2.insert(as2.begin(), 1);
    ys2.insert(ys2.end() - (bs.size() == 1 ? 0 : 1), 1);
  }
  if (bs.size() == 1) {
    bs2.push_back(1);
    ys2.push_back(1);
  }
  auto batch = [](const Shape& s) { return std::vector<int64_t>(s.begin(), s.end() - 2); };
  const TensorId dy2 = reshape(c, dy, ys2);
  if (c.needs_input_grad(0)) {
    TensorId d = c.emit1("MatMulTrans", {dy2, reshape(c, B, bs2)},
                         {{"transB", int64_t{1}}, {"batch_shape", batch(as2)}});
    c.set_input_grad(0, reshape(c, d, as));
  }
  if (c.needs_input_grad(1)) {
    TensorId d = c.emit1("MatMulTrans", {reshape(c, A, as2), dy2},
                         {{"transA", int64_t{1}}, {"batch_shape", batch(bs2)}});
    c.set_input_grad(1, reshape(c, d, bs));
  }
}

// ---------------------------------------------------------------- softmax

template <const char* Op> void softmax_like(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  c.set_input_grad(0, c.emit1(Op, {dy, c.output(0)}, pick(c.node(), {"axis"})));
}
constexpr char kSoftmaxGrad[] = "SoftmaxGrad";
constexpr char kLogSoftmaxGrad[] = "LogSoftmaxGrad";

// ---------------------------------------------------------------- norms

void layer_norm(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const TensorId mean = c.ensure_output(1), inv = c.ensure_output(2);
  std::vector<TensorId> g =
      c.emit("LayerNormalizationGrad", {dy, c.input(0), c.input(1), mean, inv},
             pick(c.node(), {"axis"}), 3);
  for (size_t i = 0; i < 3; ++i)
    if (i < c.num_inputs()) set_if(c, i, g[i]);
}

void batch_norm_training(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const TensorId mean = c.ensure_output(3), inv = c.ensure_output(4);
  std::vector<TensorId> g =
      c.emit("BatchNormTrainingGrad", {dy, c.input(0), c.input(1), mean, inv}, {}, 3);
  for (size_t i = 0; i < 3; ++i)
    set_if(c, i, g[i]);
}

// ---------------------------------------------------------------- dropout

void dropout(GradCtx& c) {
  TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  const TensorId mask = c.ensure_output(1);
  std::vector<TensorId> in{dy, mask};
  for (size_t i = 1; i < c.num_inputs(); ++i)
    in.push_back(c.input(i));
  while (in.size() > 2 && !in.back().valid())
    in.pop_back();
  c.set_input_grad(0, c.emit1("DropoutGrad", in, pick(c.node(), {"ratio"})));
}

// ---------------------------------------------------------------- losses

void sce_loss(GradCtx& c) {
  TensorId dl = c.output_grad(0);
  if (!dl.valid() || !c.needs_input_grad(0)) return;
  const TensorId lp = c.ensure_output(1);
  std::vector<TensorId> in{dl, lp, c.input(1)};
  if (c.num_inputs() > 2 && c.input(2).valid()) in.push_back(c.input(2));
  c.set_input_grad(
      0, c.emit1("SoftmaxCrossEntropyLossGrad", in, pick(c.node(), {"ignore_index", "reduction"})));
}

void nll_loss(GradCtx& c) {
  TensorId dl = c.output_grad(0);
  if (!dl.valid() || !c.needs_input_grad(0)) return;
  std::vector<TensorId> in{dl, c.input(1)};
  if (c.num_inputs() > 2 && c.input(2).valid()) in.push_back(c.input(2));
  Attrs a = pick(c.node(), {"ignore_index", "reduction"});
  a["input_shape"] = shape_of(c, c.input(0));
  c.set_input_grad(0, c.emit1("NegativeLogLikelihoodLossGrad", in, a));
}

} // namespace

void register_nn(Table& t) {
  t["Conv"] = conv;
  t["ConvTranspose"] = conv_transpose;
  t["MaxPool"] = max_pool;
  t["GlobalMaxPool"] = global_max_pool;
  t["AveragePool"] = average_pool;
  t["GlobalAveragePool"] = global_average_pool;
  t["Gemm"] = gemm;
  t["MatMul"] = matmul;
  t["Softmax"] = softmax_like<kSoftmaxGrad>;
  t["LogSoftmax"] = softmax_like<kLogSoftmaxGrad>;
  t["LayerNormalization"] = layer_norm;
  t["BatchNormTraining"] = batch_norm_training;
  t["Dropout"] = dropout;
  t["SoftmaxCrossEntropyLoss"] = sce_loss;
  t["NegativeLogLikelihoodLoss"] = nll_loss;
}

} // namespace memplan::grads
