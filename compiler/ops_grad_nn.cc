// Op definitions: backward ops of the nn family and BatchNormTraining.
//
//   ConvGradInput(dY, W) -> dX            attrs: Conv's + input_shape
//   ConvGradWeight(dY, X) -> dW           attrs: Conv's + weight_shape
//   MaxPoolGrad(dY, X) -> dX              attrs: MaxPool's (argmax recomputed from X)
//   AveragePoolGrad(dY) -> dX             attrs: AveragePool's + input_shape
//   GlobalAveragePoolGrad(dY) -> dX       attrs: input_shape
//   MatMulTrans(A, B) -> Y                MatMul with transA / transB on the last two dims;
//                                         batch_shape: Y's batch dims (other batches summed)
//   SoftmaxGrad(dY, Y), LogSoftmaxGrad(dY, Y) -> dX      attr axis
//   LayerNormalizationGrad(dY, X, Scale, Mean, InvStdDev) -> (dX, dScale, dB)   attr axis
//   BatchNormTraining(X, scale, B, running_mean, running_var)
//       -> (Y, running_mean', running_var', saved_mean, saved_invstd)
//       outputs 1, 2 in place on inputs 3, 4 (compiler/ir.cc alias table)
//   BatchNormTrainingGrad(dY, X, scale, saved_mean, saved_invstd) -> (dX, dscale, dB)
//   DropoutGrad(dY, mask, ratio?, training_mode?) -> dX   attr ratio
//   SoftmaxCrossEntropyLossGrad(dL, log_prob, labels, weights?) -> dScores
//   NegativeLogLikelihoodLossGrad(dL, labels, weights?) -> dX   attr input_shape
//
// The im2col ops (Conv, ConvTranspose, ConvGradInput, ConvGradWeight) ask
// for a workspace holding a tile of the column matrix: C/g * prod(kernel)
// rows by T output positions, T = prod(conv output spatial) capped so the
// tile stays within kIm2colTileBytes (but at least one column); none for a
// pointwise window. The kernels (runtime/cpu/conv.cc) derive T from the
// workspace they are given, so the two sides agree by construction.
#include <algorithm>

#include "compiler/ops_common.h"

namespace memplan::ops {

/// Upper bound of an im2col tile: 2 MiB keeps the arena growth of a conv
/// net small (VGG-16's largest full column matrix is 110 MiB) while each
/// tile GEMM still has >= 100 columns for C/g * K up to 4608 (512 x 3x3) in f32.
constexpr int64_t kIm2colTileBytes = int64_t{2} << 20;

int64_t conv_workspace_bytes(const Graph& g, const Node& n) {
  if (n.inputs.size() < 2 || n.outputs.empty() || !n.outputs[0].valid()) return 0;
  const Tensor& in0 = g.tensor(n.inputs[0]);
  const Tensor& in1 = g.tensor(n.inputs[1]);
  const Tensor& out = g.tensor(n.outputs[0]);
  if (!in0.shape_known || !in1.shape_known || !out.shape_known) return 0;
  // Spatial sizes of the underlying Conv's input and output, and the weight.
  Shape w, conv_in, conv_out;
  if (n.op == "Conv") {
    w = in1.shape, conv_in = in0.shape, conv_out = out.shape;
  } else if (n.op == "ConvTranspose") {
    w = in1.shape, conv_in = out.shape, conv_out = in0.shape;
  } else if (n.op == "ConvGradInput") {
    w = in1.shape, conv_in = out.shape, conv_out = in0.shape;
  } else if (n.op == "ConvGradWeight") {
    w = out.shape, conv_in = in1.shape, conv_out = in0.shape;
  } else {
    return 0;
  }
  if (w.size() < 3 || conv_in.size() != w.size() || conv_out.size() != w.size()) return 0;
  bool pointwise =
      Shape(conv_in.begin() + 2, conv_in.end()) == Shape(conv_out.begin() + 2, conv_out.end());
  for (size_t i = 2; i < w.size(); ++i)
    pointwise = pointwise && w[i] == 1;
  for (int64_t s : attr_ints(n, "strides"))
    pointwise = pointwise && s == 1;
  for (int64_t p : attr_ints(n, "pads"))
    pointwise = pointwise && p == 0;
  // Bytes of one column; f16/bf16 convolutions run in f32 on staged copies.
  int64_t column = static_cast<int64_t>(std::max<size_t>(dtype_size(out.dtype), 4));
  for (size_t i = 1; i < w.size(); ++i)
    column *= w[i];
  int64_t positions = 1;
  for (size_t i = 2; i < conv_out.size(); ++i)
    positions *= conv_out[i];
  if (column == 0 || positions == 0) return 0;
  const int64_t tile =
      pointwise ? 0 : column * std::min(positions, std::max<int64_t>(1, kIm2colTileBytes / column));
  // --conv-workspace (attr workspace_limit, set by the pipeline): reserve up
  // to the op's whole im2col matrix for a GPU library's faster algorithms.
  const int64_t limit = attr_int(n, "workspace_limit", 0);
  if (limit <= 0) return tile;
  const int64_t full = column * positions * std::max<int64_t>(conv_out[0], 1);
  return std::max(tile, std::min(limit, full));
}

namespace {

Shape attr_shape(const InferCtx& c, const char* attr) {
  if (!c.node().has_attr(attr)) c.fail(std::string("attribute '") + attr + "' is required");
  Shape s = attr_ints(c.node(), attr);
  for (int64_t d : s)
    if (d < 0) c.fail(std::string("attribute '") + attr + "' has a negative dim");
  return s;
}

Types conv_grad_input(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  return {{c.dtype(0), attr_shape(c, "input_shape")}};
}
Types conv_grad_weight(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  return {{c.dtype(0), attr_shape(c, "weight_shape")}};
}
/// 2 * elements(dY) * prod(W.shape[1:]): the multiply-adds of the forward Conv.
double conv_grad_flops(const Graph& g, const Node& n) {
  const Tensor& w = g.tensor(n.op == "ConvGradInput" ? n.inputs[1] : n.outputs[0]);
  if (!w.shape_known || w.shape.empty() || w.shape[0] == 0) return 0;
  return 2 * static_cast<double>(w.numel()) / static_cast<double>(w.shape[0]) * in_elems(g, n, 0);
}

Types max_pool_grad(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  return {{c.dtype(1), c.shape(1)}};
}
Types from_input_shape(const InferCtx& c) {
  return {{c.dtype(0), attr_shape(c, "input_shape")}};
}
double pool_grad_flops(const Graph& g, const Node& n) {
  double k = 1;
  for (int64_t d : attr_ints(n, "kernel_shape"))
    k *= static_cast<double>(d);
  return k * in_elems(g, n, 0);
}

Types matmul_trans(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  Shape a = c.shape(0), b = c.shape(1);
  if (a.size() < 2 || b.size() < 2)
    c.fail("operands must have rank >= 2, got " + shape_str(a) + " and " + shape_str(b));
  const bool ta = attr_int(c.node(), "transA", 0) != 0, tb = attr_int(c.node(), "transB", 0) != 0;
  const int64_t m = ta ? a.back() : a[a.size() - 2], k = ta ? a[a.size() - 2] : a.back();
  const int64_t kb = tb ? b.back() : b[b.size() - 2], nn = tb ? b[b.size() - 2] : b.back();
  if (k != kb) c.fail("inner dimensions differ: " + shape_str(a) + " x " + shape_str(b));
  Shape out = broadcast(c, Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
  if (c.node().has_attr("batch_shape")) {
    // The other broadcast batches are summed: each kept dim is the broadcast
    // one or 1, and leading dims may be dropped.
    Shape yb = attr_ints(c.node(), "batch_shape");
    bool ok = yb.size() <= out.size();
    for (size_t i = 0; ok && i < yb.size(); ++i) {
      const int64_t full = out[out.size() - yb.size() + i];
      ok = yb[i] == full || yb[i] == 1;
    }
    if (!ok) c.fail("batch_shape " + shape_str(yb) + " is not a reduction of " + shape_str(out));
    out = yb;
  }
  out.push_back(m);
  out.push_back(nn);
  return {{c.dtype(0), out}};
}
double matmul_trans_flops(const Graph& g, const Node& n) {
  const Shape& a = g.tensor(n.inputs[0]).shape;
  if (a.size() < 2) return 0;
  const bool ta = attr_int(n, "transA", 0) != 0;
  // Every broadcast batch is multiplied, also those summed into one output.
  const Shape& b = g.tensor(n.inputs[1]).shape;
  if (b.size() < 2) return 0;
  const bool tb = attr_int(n, "transB", 0) != 0;
  const double m = static_cast<double>(ta ? a.back() : a[a.size() - 2]);
  const double nn = static_cast<double>(tb ? b[b.size() - 2] : b.back());
  double batches = 1;
  for (size_t i = 0; i + 2 < std::max(a.size(), b.size()); ++i) {
    const size_t ia = i + a.size(), ib = i + b.size(), r = std::max(a.size(), b.size());
    const int64_t da = ia >= r ? a[ia - r] : 1, db = ib >= r ? b[ib - r] : 1;
    batches *= static_cast<double>(std::max(da, db));
  }
  return 2 * static_cast<double>(ta ? a[a.size() - 2] : a.back()) * m * nn * batches;
}

Types same_as_input1(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  if (c.shape(0) != c.shape(1))
    c.fail("dY " + shape_str(c.shape(0)) + " and the saved tensor " + shape_str(c.shape(1)) +
           " differ");
  norm_axis(c, attr_int(c.node(), "axis", -1), c.rank(1));
  return {{c.dtype(1), c.shape(1)}};
}

Types layer_norm_grad(const InferCtx& c) {
  require_same_dtype(c, 0, 2);
  if (c.shape(0) != c.shape(1)) c.fail("dY and X shapes differ");
  norm_axis(c, attr_int(c.node(), "axis", -1), c.rank(1));
  TensorType p{c.dtype(2), c.shape(2)};
  return {{c.dtype(1), c.shape(1)}, p, p};
}

Types batch_norm_training(const InferCtx& c) {
  if (c.rank(0) < 2) c.fail("X must have rank >= 2, got " + shape_str(c.shape(0)));
  const int64_t ch = c.shape(0)[1];
  for (size_t i = 1; i < 5; ++i)
    if (c.shape(i) != Shape{ch})
      c.fail("input " + std::to_string(i) + " must have shape [" + std::to_string(ch) + "], got " +
             shape_str(c.shape(i)));
  TensorType stat{c.dtype(3), {ch}};
  return {{c.dtype(0), c.shape(0)}, stat, stat, stat, stat};
}

Types batch_norm_training_grad(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  if (c.shape(0) != c.shape(1)) c.fail("dY and X shapes differ");
  if (c.rank(1) < 2) c.fail("X must have rank >= 2");
  const int64_t ch = c.shape(1)[1];
  for (size_t i = 2; i < 5; ++i)
    if (c.shape(i) != Shape{ch}) c.fail("input " + std::to_string(i) + " must have shape [C]");
  TensorType p{c.dtype(2), {ch}};
  return {{c.dtype(1), c.shape(1)}, p, p};
}

Types dropout_grad(const InferCtx& c) {
  if (c.shape(0) != c.shape(1)) c.fail("dY and mask shapes differ");
  if (c.dtype(1) != DType::boolean) c.fail("mask must be bool");
  return {{c.dtype(0), c.shape(0)}};
}

Types sce_loss_grad(const InferCtx& c) {
  if (c.rank(1) < 2) c.fail("log_prob must have rank >= 2");
  if (!is_integer(c.dtype(2))) c.fail("labels must have an integer dtype");
  return {{c.dtype(1), c.shape(1)}};
}

Types nll_loss_grad(const InferCtx& c) {
  if (!is_integer(c.dtype(1))) c.fail("labels must have an integer dtype");
  Shape s = attr_shape(c, "input_shape");
  if (s.size() < 2) c.fail("input_shape must have rank >= 2");
  return {{c.dtype(0), s}};
}

double five_per_out0(const Graph& g, const Node& n) {
  return 5 * out_elems(g, n, 0);
}

} // namespace

void register_grad_nn(std::vector<OpDef>& t) {
  const std::vector<std::string_view> conv_attrs = {
      "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", "workspace_limit"};
  auto with = [](std::vector<std::string_view> v, std::string_view extra) {
    v.push_back(extra);
    return v;
  };
  t.push_back({.name = "ConvGradInput",
               .min_inputs = 2,
               .max_inputs = 2,
               .attrs = with(conv_attrs, "input_shape"),
               .infer = conv_grad_input,
               .flops = conv_grad_flops,
               .workspace = conv_workspace_bytes});
  t.push_back({.name = "ConvGradWeight",
               .min_inputs = 2,
               .max_inputs = 2,
               .attrs = with(conv_attrs, "weight_shape"),
               .infer = conv_grad_weight,
               .flops = conv_grad_flops,
               .workspace = conv_workspace_bytes});
  t.push_back({.name = "MaxPoolGrad",
               .min_inputs = 2,
               .max_inputs = 2,
               .attrs = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                         "storage_order", "strides"},
               .infer = max_pool_grad,
               .flops = pool_grad_flops});
  t.push_back({.name = "AveragePoolGrad",
               .attrs = {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "input_shape",
                         "kernel_shape", "pads", "strides"},
               .infer = from_input_shape,
               .flops = pool_grad_flops});
  t.push_back(
      {.name = "GlobalAveragePoolGrad", .attrs = {"input_shape"}, .infer = from_input_shape});
  t.push_back({.name = "MatMulTrans",
               .min_inputs = 2,
               .max_inputs = 2,
               .attrs = {"batch_shape", "transA", "transB"},
               .infer = matmul_trans,
               .flops = matmul_trans_flops});
  for (std::string_view op : {"SoftmaxGrad", "LogSoftmaxGrad"})
    t.push_back({.name = op,
                 .min_inputs = 2,
                 .max_inputs = 2,
                 .attrs = {"axis"},
                 .infer = same_as_input1,
                 .flops = five_per_out0});
  t.push_back({.name = "LayerNormalizationGrad",
               .min_inputs = 5,
               .max_inputs = 5,
               .max_outputs = 3,
               .attrs = {"axis"},
               .infer = layer_norm_grad,
               .flops = five_per_out0});
  t.push_back({.name = "BatchNormTraining",
               .min_inputs = 5,
               .max_inputs = 5,
               .min_outputs = 3,
               .max_outputs = 5,
               .attrs = {"epsilon", "momentum"},
               .infer = batch_norm_training,
               .flops = five_per_out0});
  t.push_back({.name = "BatchNormTrainingGrad",
               .min_inputs = 5,
               .max_inputs = 5,
               .max_outputs = 3,
               .infer = batch_norm_training_grad,
               .flops = five_per_out0});
  t.push_back({.name = "DropoutGrad",
               .min_inputs = 2,
               .max_inputs = 4,
               .attrs = {"ratio"},
               .infer = dropout_grad});
  t.push_back({.name = "SoftmaxCrossEntropyLossGrad",
               .min_inputs = 3,
               .max_inputs = 4,
               .attrs = {"ignore_index", "reduction"},
               .infer = sce_loss_grad,
               .flops = five_per_out0});
  t.push_back({.name = "NegativeLogLikelihoodLossGrad",
               .min_inputs = 2,
               .max_inputs = 3,
               .attrs = {"ignore_index", "input_shape", "reduction"},
               .infer = nll_loss_grad});
}

} // namespace memplan::ops
