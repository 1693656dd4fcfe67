// Neural-network ops other than conv/pool: Gemm, MatMul, normalizations,
// Softmax family, Dropout and the training losses.
#include "compiler/ops_common.h"

namespace memplan::ops {

namespace {

// ---------------------------------------------------------------- matmul

Types gemm(const InferCtx& c) {
  if (c.rank(0) != 2 || c.rank(1) != 2)
    c.fail("A and B must be 2-D, got " + shape_str(c.shape(0)) + " and " + shape_str(c.shape(1)));
  require_same_dtype(c, 0, 2);
  const Node& n = c.node();
  const Shape& a = c.shape(0);
  const Shape& b = c.shape(1);
  const bool ta = attr_int(n, "transA", 0) != 0, tb = attr_int(n, "transB", 0) != 0;
  const int64_t m = ta ? a[1] : a[0], k = ta ? a[0] : a[1];
  const int64_t kb = tb ? b[1] : b[0], nn = tb ? b[0] : b[1];
  if (k != kb)
    c.fail("inner dimensions differ: A " + shape_str(a) + (ta ? " (transposed)" : "") + ", B " +
           shape_str(b) + (tb ? " (transposed)" : ""));
  Shape out{m, nn};
  if (c.has_input(2) && broadcast(c, c.shape(2), out) != out)
    c.fail("C " + shape_str(c.shape(2)) + " does not broadcast to " + shape_str(out));
  return {{c.dtype(0), out}};
}

double gemm_flops(const Graph& g, const Node& n) {
  const Shape& a = g.tensor(n.inputs[0]).shape;
  if (a.size() != 2) return 0;
  const double k = static_cast<double>(attr_int(n, "transA", 0) ? a[0] : a[1]);
  return 2 * k * out_elems(g, n);
}

Types matmul(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  Shape a = c.shape(0), b = c.shape(1);
  if (a.empty() || b.empty()) c.fail("MatMul inputs must not be scalars");
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  const int64_t k = a.back(), kb = b[b.size() - 2];
  if (k != kb)
    c.fail("inner dimensions differ: " + shape_str(c.shape(0)) + " x " + shape_str(c.shape(1)));
  Shape out = broadcast(c, Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
  if (!a1) out.push_back(a[a.size() - 2]);
  if (!b1) out.push_back(b.back());
  return {{c.dtype(0), out}};
}

double matmul_flops(const Graph& g, const Node& n) {
  const Shape& a = g.tensor(n.inputs[0]).shape;
  if (a.empty()) return 0;
  return 2 * static_cast<double>(a.back()) * out_elems(g, n);
}

// ---------------------------------------------------------------- norms

Types batchnorm(const InferCtx& c) {
  if (c.rank(0) < 2) c.fail("X must have rank >= 2, got " + shape_str(c.shape(0)));
  const int64_t ch = c.shape(0)[1];
  for (size_t i = 1; i < 5; ++i)
    if (c.shape(i) != Shape{ch})
      c.fail("input " + std::to_string(i) + " must have shape [" + std::to_string(ch) + "], got " +
             shape_str(c.shape(i)));
  if (c.num_outputs() > 1 && c.node().has_attr("training_mode") &&
      attr_int(c.node(), "training_mode", 0) == 0)
    c.fail("running statistics outputs require training_mode=1");
  // Y, running_mean, running_var (opset 14+), saved_mean, saved_var (opset 9-13).
  TensorType stat{c.dtype(3), {ch}};
  return {{c.dtype(0), c.shape(0)}, stat, stat, stat, stat};
}

Types layernorm(const InferCtx& c) {
  const int64_t r = c.rank(0);
  const int64_t axis = norm_axis(c, attr_int(c.node(), "axis", -1), r);
  DType stash = attr_dtype(c, "stash_type", DType::f32);
  Shape stat(c.shape(0).begin(), c.shape(0).begin() + axis);
  stat.resize(static_cast<size_t>(r), 1);
  return {{c.dtype(0), c.shape(0)}, {stash, stat}, {stash, stat}};
}

Types softmax(const InferCtx& c) {
  // Opset 13 semantics: one axis (default -1); older opsets coerce to 2-D,
  // which has the same output shape.
  norm_axis(c, attr_int(c.node(), "axis", -1), c.rank(0));
  return {{c.dtype(0), c.shape(0)}};
}

// ---------------------------------------------------------------- dropout

Types dropout(const InferCtx& c) {
  for (size_t i = 1; i < 3; ++i)
    if (c.has_input(i) && !c.shape(i).empty())
      c.fail("input " + std::to_string(i) + " must be a scalar, got " + shape_str(c.shape(i)));
  return {{c.dtype(0), c.shape(0)}, {DType::boolean, c.shape(0)}};
}

// ---------------------------------------------------------------- losses

/// Checks reduction and target shape [N, d1...] against scores [N, C, d1...];
/// returns the loss shape.
Shape loss_shape(const InferCtx& c) {
  const std::string red = attr_str(c.node(), "reduction", "mean");
  if (red != "none" && red != "mean" && red != "sum")
    c.fail("reduction must be none, mean or sum, got '" + red + "'");
  const Shape& x = c.shape(0);
  if (x.size() < 2) c.fail("scores must have rank >= 2, got " + shape_str(x));
  Shape target = x;
  target.erase(target.begin() + 1);
  if (c.shape(1) != target)
    c.fail("target shape " + shape_str(c.shape(1)) + " does not match " + shape_str(target) +
           " for input " + shape_str(x));
  if (!is_integer(c.dtype(1))) c.fail("target must have an integer dtype");
  if (c.has_input(2) && c.shape(2) != Shape{x[1]})
    c.fail("weights must have shape [" + std::to_string(x[1]) + "], got " + shape_str(c.shape(2)));
  return red == "none" ? target : Shape{};
}

Types sce_loss(const InferCtx& c) {
  return {{c.dtype(0), loss_shape(c)}, {c.dtype(0), c.shape(0)}};
}

Types nll_loss(const InferCtx& c) { return {{c.dtype(0), loss_shape(c)}}; }

double five_per_in(const Graph& g, const Node& n) { return 5 * in_elems(g, n, 0); }

}  // namespace

void register_nn(std::vector<OpDef>& t) {
  t.push_back({.name = "Gemm", .min_inputs = 2, .max_inputs = 3,
               .attrs = {"alpha", "beta", "transA", "transB"},
               .infer = gemm, .flops = gemm_flops});
  t.push_back({.name = "MatMul", .min_inputs = 2, .max_inputs = 2, .infer = matmul,
               .flops = matmul_flops});
  t.push_back({.name = "BatchNormalization", .min_inputs = 5, .max_inputs = 5, .max_outputs = 5,
               .attrs = {"epsilon", "momentum", "training_mode", "spatial"}, .infer = batchnorm,
               .flops = five_per_out});
  t.push_back({.name = "LayerNormalization", .min_inputs = 2, .max_inputs = 3, .max_outputs = 3,
               .attrs = {"axis", "epsilon", "stash_type"}, .infer = layernorm,
               .flops = five_per_out});
  for (std::string_view op : {"Softmax", "LogSoftmax"})
    t.push_back({.name = op, .attrs = {"axis"}, .infer = softmax, .flops = five_per_out});
  t.push_back({.name = "Dropout", .max_inputs = 3, .max_outputs = 2,
               .attrs = {"ratio", "seed", "is_test", "rng_key", "rng_offset"}, .infer = dropout});
  t.push_back({.name = "SoftmaxCrossEntropyLoss", .min_inputs = 2, .max_inputs = 3,
               .max_outputs = 2, .attrs = {"ignore_index", "reduction"}, .infer = sce_loss,
               .flops = five_per_in});
  t.push_back({.name = "NegativeLogLikelihoodLoss", .min_inputs = 2, .max_inputs = 3,
               .attrs = {"ignore_index", "reduction"}, .infer = nll_loss, .flops = one_per_in});
}

}  // namespace memplan::ops
