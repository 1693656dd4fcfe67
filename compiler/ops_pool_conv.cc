// Convolution and pooling ops: Conv, ConvTranspose, MaxPool, AveragePool,
// GlobalAveragePool, GlobalMaxPool. Output sizes follow the ONNX spec,
// including auto_pad (SAME_UPPER / SAME_LOWER / VALID) and ceil_mode.
#include <cmath>

#include "compiler/ops_common.h"

namespace memplan::ops {

namespace {

/// Spatial window attributes of a conv / pool node, defaulted and checked.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad;
};

Window window(const InferCtx& c, const std::vector<int64_t>& kernel_dflt) {
  const Node& n = c.node();
  const size_t sp = static_cast<size_t>(c.rank(0) - 2);
  Window w;
  w.kernel = attr_ints(n, "kernel_shape", kernel_dflt);
  w.strides = attr_ints(n, "strides", std::vector<int64_t>(sp, 1));
  w.dilations = attr_ints(n, "dilations", std::vector<int64_t>(sp, 1));
  w.pads = attr_ints(n, "pads", std::vector<int64_t>(2 * sp, 0));
  w.auto_pad = attr_str(n, "auto_pad", "NOTSET");
  if (w.kernel.size() != sp) c.fail("kernel_shape must have " + std::to_string(sp) + " values");
  if (w.strides.size() != sp) c.fail("strides must have " + std::to_string(sp) + " values");
  if (w.dilations.size() != sp) c.fail("dilations must have " + std::to_string(sp) + " values");
  if (w.pads.size() != 2 * sp) c.fail("pads must have " + std::to_string(2 * sp) + " values");
  for (size_t i = 0; i < sp; ++i)
    if (w.strides[i] < 1 || w.dilations[i] < 1 || w.kernel[i] < 1)
      c.fail("kernel_shape, strides and dilations must be positive");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" &&
      w.auto_pad != "VALID")
    c.fail("unknown auto_pad '" + w.auto_pad + "'");
  return w;
}

/// Output spatial size of a forward window op (conv or pool) along axis i.
int64_t window_out(const InferCtx& c, const Window& w, size_t i, int64_t in, bool ceil_mode) {
  const int64_t s = w.strides[i];
  const int64_t ek = w.dilations[i] * (w.kernel[i] - 1) + 1;  // effective kernel
  if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") return (in + s - 1) / s;
  const size_t sp = w.kernel.size();
  const int64_t pb = w.auto_pad == "VALID" ? 0 : w.pads[i];
  const int64_t pe = w.auto_pad == "VALID" ? 0 : w.pads[i + sp];
  const int64_t span = in + pb + pe - ek;
  if (span < 0)
    c.fail("kernel extent " + std::to_string(ek) + " exceeds padded input size " +
           std::to_string(in + pb + pe) + " on spatial axis " + std::to_string(i));
  if (!ceil_mode) return span / s + 1;
  int64_t out = (span + s - 1) / s + 1;
  // The last window must start inside the input or left padding.
  if ((out - 1) * s >= in + pb) --out;
  return out;
}

Types conv(const InferCtx& c) {
  const Shape& x = c.shape(0);
  const Shape& wt = c.shape(1);
  if (x.size() < 3) c.fail("X must have rank >= 3, got " + shape_str(x));
  if (wt.size() != x.size())
    c.fail("W " + shape_str(wt) + " must have the rank of X " + shape_str(x));
  require_same_dtype(c, 0, 2);
  const int64_t group = attr_int(c.node(), "group", 1);
  if (group < 1 || x[1] != wt[1] * group || wt[0] % group != 0)
    c.fail("channels of X " + shape_str(x) + " do not match W " + shape_str(wt) + " with group " +
           std::to_string(group));
  if (c.has_input(2) && c.shape(2) != Shape{wt[0]})
    c.fail("B must have shape [" + std::to_string(wt[0]) + "], got " + shape_str(c.shape(2)));
  Window w = window(c, Shape(wt.begin() + 2, wt.end()));
  Shape out{x[0], wt[0]};
  for (size_t i = 0; i + 2 < x.size(); ++i) out.push_back(window_out(c, w, i, x[i + 2], false));
  return {{c.dtype(0), out}};
}

/// 2 * N * Cout * out_spatial * (Cin / group) * kernel: per output element,
/// one multiply-add over the weight slice W[co] of size prod(W.shape[1:]).
double conv_flops(const Graph& g, const Node& n) {
  const Tensor& w = g.tensor(n.inputs[1]);
  if (!w.shape_known || w.shape.empty()) return 0;
  const double per_out = static_cast<double>(w.numel()) / static_cast<double>(w.shape[0]);
  return 2 * per_out * out_elems(g, n);
}

Types conv_transpose(const InferCtx& c) {
  const Node& n = c.node();
  const Shape& x = c.shape(0);
  const Shape& wt = c.shape(1);
  if (x.size() < 3) c.fail("X must have rank >= 3, got " + shape_str(x));
  if (wt.size() != x.size())
    c.fail("W " + shape_str(wt) + " must have the rank of X " + shape_str(x));
  require_same_dtype(c, 0, 2);
  const int64_t group = attr_int(n, "group", 1);
  if (group < 1 || x[1] != wt[0])
    c.fail("channels of X " + shape_str(x) + " do not match W " + shape_str(wt));
  const int64_t cout = wt[1] * group;
  if (c.has_input(2) && c.shape(2) != Shape{cout})
    c.fail("B must have shape [" + std::to_string(cout) + "], got " + shape_str(c.shape(2)));
  Window w = window(c, Shape(wt.begin() + 2, wt.end()));
  const size_t sp = x.size() - 2;
  std::vector<int64_t> opad = attr_ints(n, "output_padding", std::vector<int64_t>(sp, 0));
  if (opad.size() != sp) c.fail("output_padding must have " + std::to_string(sp) + " values");
  Shape out{x[0], cout};
  if (n.has_attr("output_shape")) {
    std::vector<int64_t> os = attr_ints(n, "output_shape");
    if (os.size() == sp + 2) os.erase(os.begin(), os.begin() + 2);  // full shape given
    if (os.size() != sp) c.fail("output_shape must have " + std::to_string(sp) + " values");
    out.insert(out.end(), os.begin(), os.end());
    return {{c.dtype(0), out}};
  }
  for (size_t i = 0; i < sp; ++i) {
    const int64_t s = w.strides[i];
    int64_t o;
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      o = x[i + 2] * s;
    } else {
      const int64_t pads = w.auto_pad == "VALID" ? 0 : w.pads[i] + w.pads[i + sp];
      o = s * (x[i + 2] - 1) + opad[i] + (w.kernel[i] - 1) * w.dilations[i] + 1 - pads;
    }
    if (o < 1) c.fail("output spatial size " + std::to_string(o) + " is not positive");
    out.push_back(o);
  }
  return {{c.dtype(0), out}};
}

/// ConvTranspose does the same multiply-adds as the Conv it is the gradient
/// of: every input element meets W[ci] of size prod(W.shape[1:]).
double conv_transpose_flops(const Graph& g, const Node& n) {
  const Tensor& w = g.tensor(n.inputs[1]);
  if (!w.shape_known || w.shape.empty()) return 0;
  const double per_in = static_cast<double>(w.numel()) / static_cast<double>(w.shape[0]);
  return 2 * per_in * in_elems(g, n);
}

Types pool(const InferCtx& c) {
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.fail("X must have rank >= 3, got " + shape_str(x));
  if (!c.node().has_attr("kernel_shape")) c.fail("attribute 'kernel_shape' is required");
  Window w = window(c, {});
  const bool ceil_mode = attr_int(c.node(), "ceil_mode", 0) != 0;
  Shape out{x[0], x[1]};
  for (size_t i = 0; i + 2 < x.size(); ++i)
    out.push_back(window_out(c, w, i, x[i + 2], ceil_mode));
  return {{c.dtype(0), out}, {DType::i64, out}};
}

/// One operation per window element per output.
double pool_flops(const Graph& g, const Node& n) {
  double k = 1;
  for (int64_t d : attr_ints(n, "kernel_shape")) k *= static_cast<double>(d);
  return k * out_elems(g, n);
}

Types global_pool(const InferCtx& c) {
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.fail("X must have rank >= 3, got " + shape_str(x));
  Shape out = x;
  for (size_t i = 2; i < out.size(); ++i) out[i] = 1;
  return {{c.dtype(0), out}};
}

}  // namespace

void register_pool_conv(std::vector<OpDef>& t) {
  t.push_back({.name = "Conv", .min_inputs = 2, .max_inputs = 3,
               .attrs = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides",
                         "workspace_limit"},
               .infer = conv, .flops = conv_flops,
               .workspace = conv_workspace_bytes});
  t.push_back({.name = "ConvTranspose", .min_inputs = 2, .max_inputs = 3,
               .attrs = {"auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                         "output_shape", "pads", "strides", "workspace_limit"},
               .infer = conv_transpose, .flops = conv_transpose_flops,
               .workspace = conv_workspace_bytes});
  t.push_back({.name = "MaxPool", .max_outputs = 2,
               .attrs = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                         "storage_order", "strides"},
               .infer = pool, .flops = pool_flops});
  t.push_back({.name = "AveragePool",
               .attrs = {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                         "kernel_shape", "pads", "strides"},
               .infer = pool, .flops = pool_flops});
  for (std::string_view op : {"GlobalAveragePool", "GlobalMaxPool"})
    t.push_back({.name = op, .infer = global_pool, .flops = one_per_in});
}

}  // namespace memplan::ops
