// Gradient rules: data family. Data movement is linear, so each backward is
// the adjoint movement:
//   Reshape/Flatten/Squeeze/Unsqueeze  Reshape(dY, shape(X))
//   Identity                           dY
//   Transpose(perm)                    Transpose(dY, inverse perm)
//   Concat                             Split(dY) at the input sizes
//   Split                              Concat(dY_k), zeros for missing dY_k
//   Slice                              SliceGrad (zeros, dY at the slice)
//   Gather / GatherElements            GatherGrad / GatherElementsGrad (scatter-add)
//   Expand                             unbroadcast(dY)
//   Tile                               dY as [r0, d0, r1, d1, ...], summed over the r axes
//   Pad (constant mode)                Pad(dY, -pads): negative pads crop
//   Trilu                              Trilu(dY) (the same mask)
//   Where(C, X, Y)                     dX = Where(C, dY, 0), dY' = Where(C, 0, dY)
//   Cast (float -> float)              Cast(dY) back to X's dtype
// Reductions broadcast dY (reshaped to keepdims form) back over X:
//   Sum: dY; Mean: dY / n; SumSquare: 2 X dY; L2: X dY / Y;
//   Max/Min: dY * (X == Y) (ties each receive the full gradient).
#include <algorithm>

#include "compiler/grad_internal.h"
#include "compiler/op_registry.h"

namespace memplan::grads {

namespace {

/// A copy: emitting nodes adds tensors, which may move the graph's storage.
Shape shape_of(const GradCtx& c, TensorId t) { return c.tensor(t).shape; }
std::string dtype_str(DType d) { return std::string(dtype_name(d)); }

TensorId reshape_to(GradCtx& c, TensorId t, const Shape& s) {
  if (shape_of(c, t) == s) return t;
  return c.emit1("Reshape", {t, c.ints(s)});
}

/// Integer values of the forward node's attribute `attr`, else of its
/// constant input `slot`, else nullopt. Error if the input is not constant.
std::optional<std::vector<int64_t>> attr_or_const(const GradCtx& c, const char* attr, size_t slot) {
  const Node& n = c.node();
  if (n.has_attr(attr)) return attr_ints(n, attr);
  if (slot >= n.inputs.size() || !n.inputs[slot].valid()) return std::nullopt;
  const Tensor& t = c.tensor(n.inputs[slot]);
  if (!t.data)
    throw Error(node_desc(n) + ": input " + std::to_string(slot) +
                " must be a compile-time constant for the gradient");
  return tensor_ints(t);
}

int64_t norm(const GradCtx& c, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    throw Error(node_desc(c.node()) + ": axis " + std::to_string(axis) + " out of range");
  return axis < 0 ? axis + rank : axis;
}

#define MEMPLAN_GRAD_PROLOGUE                                 \
  const TensorId dy = c.output_grad(0);                       \
  if (!dy.valid() || !c.needs_input_grad(0)) return;          \
  const Shape xs = shape_of(c, c.input(0));                  \
  (void)xs;

void reshape_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  c.set_input_grad(0, reshape_to(c, dy, xs));
}

void identity_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  c.set_input_grad(0, dy);
}

void transpose_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  const int64_t r = static_cast<int64_t>(xs.size());
  std::vector<int64_t> perm(xs.size());
  for (int64_t i = 0; i < r; ++i) perm[static_cast<size_t>(i)] = r - 1 - i;
  perm = attr_ints(c.node(), "perm", perm);
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[static_cast<size_t>(norm(c, perm[i], r))] = static_cast<int64_t>(i);
  c.set_input_grad(0, c.emit1("Transpose", {dy}, {{"perm", inv}}));
}

void concat_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const int64_t r = static_cast<int64_t>(shape_of(c, dy).size());
  const int64_t axis = norm(c, attr_int(c.node(), "axis", 0), r);
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < c.num_inputs(); ++i) sizes.push_back(shape_of(c, c.input(i))[static_cast<size_t>(axis)]);
  const std::vector<TensorId> parts =
      c.emit("Split", {dy, c.ints(sizes)}, {{"axis", axis}}, c.num_inputs());
  for (size_t i = 0; i < c.num_inputs(); ++i)
    if (c.needs_input_grad(i)) c.set_input_grad(i, parts[i]);
}

void split_rule(GradCtx& c) {
  if (!c.needs_input_grad(0)) return;
  // Copies: emitting nodes may move the graph's node storage.
  const std::vector<TensorId> outputs = c.node().outputs;
  const int64_t axis = attr_int(c.node(), "axis", 0);
  std::vector<TensorId> parts;
  bool any = false;
  for (size_t k = 0; k < outputs.size(); ++k) {
    TensorId g = c.output_grad(k);
    any = any || g.valid();
    if (!g.valid()) {
      const Shape os = c.tensor(outputs[k]).shape;  // copies: ints() adds a tensor
      const std::string dt = dtype_str(c.tensor(outputs[k]).dtype);
      g = c.emit1("ConstantOfShape", {c.ints(os)}, {{"value", 0.0}, {"dtype", dt}});
    }
    parts.push_back(g);
  }
  if (!any) return;
  c.set_input_grad(0, c.emit1("Concat", parts, {{"axis", axis}}));
}

void slice_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  const Node& n = c.node();
  std::vector<TensorId> ins = {dy, c.ints(xs)};
  if (n.has_attr("starts")) {  // opset < 10: attributes
    ins.push_back(c.ints(attr_ints(n, "starts")));
    ins.push_back(c.ints(attr_ints(n, "ends")));
    if (n.has_attr("axes")) ins.push_back(c.ints(attr_ints(n, "axes")));
  } else {
    for (size_t i = 1; i < n.inputs.size(); ++i) ins.push_back(n.inputs[i]);
  }
  while (!ins.back().valid()) ins.pop_back();
  c.set_input_grad(0, c.emit1("SliceGrad", ins));
}

void gather_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  const std::string op = c.node().op + "Grad";
  c.set_input_grad(0, c.emit1(op, {dy, c.input(1), c.ints(xs)},
                              {{"axis", attr_int(c.node(), "axis", 0)}}));
}

void expand_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  c.set_input_grad(0, c.unbroadcast(dy, xs));
}

void tile_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  const Shape ys = shape_of(c, dy);
  Shape split;
  std::vector<int64_t> rep_axes;
  for (size_t d = 0; d < xs.size(); ++d) {
    if (xs[d] == 0) throw Error(node_desc(c.node()) + ": Tile gradient of an empty tensor");
    rep_axes.push_back(static_cast<int64_t>(split.size()));
    split.push_back(ys[d] / xs[d]);
    split.push_back(xs[d]);
  }
  const TensorId r = reshape_to(c, dy, split);
  const TensorId s = c.emit1("ReduceSum", {r, c.ints(rep_axes)}, {{"keepdims", int64_t{0}}});
  c.set_input_grad(0, reshape_to(c, s, xs));
}

void pad_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const Node& n = c.node();
  if (attr_str(n, "mode", "constant") != "constant")
    throw Error(node_desc(n) + ": only constant-mode Pad is differentiable");
  if (c.needs_input_grad(2))
    throw Error(node_desc(n) + ": gradients with respect to Pad's constant_value are not supported");
  if (!c.needs_input_grad(0)) return;
  const Shape xs = shape_of(c, c.input(0));
  const int64_t r = static_cast<int64_t>(xs.size());
  const std::vector<int64_t> pads = attr_or_const(c, "pads", 1).value();
  std::vector<int64_t> axes;
  if (auto a = attr_or_const(c, "", 3)) axes = *a;
  else
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  if (pads.size() != 2 * axes.size()) throw Error(node_desc(n) + ": pads and axes differ in length");
  std::vector<int64_t> neg(2 * xs.size(), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t ax = static_cast<size_t>(norm(c, axes[i], r));
    neg[ax] = -pads[i];
    neg[ax + xs.size()] = -pads[i + axes.size()];
  }
  c.set_input_grad(0, c.emit1("Pad", {dy, c.ints(neg)}, {{"mode", std::string("constant")}}));
}

void trilu_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  std::vector<TensorId> ins = {dy};
  if (c.num_inputs() > 1 && c.input(1).valid()) ins.push_back(c.input(1));
  Attrs attrs;
  if (c.node().has_attr("upper")) attrs["upper"] = c.node().attrs.at("upper");
  c.set_input_grad(0, c.emit1("Trilu", ins, attrs));
}

void where_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const TensorId zero = c.scalar(0.0, c.tensor(dy).dtype);
  const TensorId cond = c.input(0);
  if (c.needs_input_grad(1))
    c.set_input_grad(1, c.unbroadcast(c.emit1("Where", {cond, dy, zero}), shape_of(c, c.input(1))));
  if (c.needs_input_grad(2))
    c.set_input_grad(2, c.unbroadcast(c.emit1("Where", {cond, zero, dy}), shape_of(c, c.input(2))));
}

void cast_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  const DType to = c.tensor(c.input(0)).dtype;
  if (!is_float(c.tensor(dy).dtype)) return;  // integer result: no gradient flows
  c.set_input_grad(0, c.emit1("Cast", {dy}, {{"to", dtype_str(to)}}));
}

/// Reduced axes of the forward Reduce* node, normalized and sorted; empty
/// when it reduces nothing (noop_with_empty_axes).
std::vector<int64_t> reduced_axes(const GradCtx& c, int64_t rank) {
  std::vector<int64_t> axes = attr_or_const(c, "axes", 1).value_or(std::vector<int64_t>{});
  if (axes.empty()) {
    if (attr_int(c.node(), "noop_with_empty_axes", 0) != 0) return {};
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  for (int64_t& a : axes) a = norm(c, a, rank);
  std::sort(axes.begin(), axes.end());
  return axes;
}

void reduce_rule(GradCtx& c) {
  MEMPLAN_GRAD_PROLOGUE
  const std::string op = c.node().op;  // a copy: emit() may move the node storage
  const DType dt = c.tensor(dy).dtype;
  const std::vector<int64_t> axes = reduced_axes(c, static_cast<int64_t>(xs.size()));
  Shape keep = xs;
  int64_t count = 1;
  for (int64_t a : axes) {
    count *= keep[static_cast<size_t>(a)];
    keep[static_cast<size_t>(a)] = 1;
  }
  const TensorId dyk = reshape_to(c, dy, keep);
  const TensorId x = c.input(0);
  TensorId g;
  if (op == "ReduceSum") {
    g = c.emit1("Expand", {dyk, c.ints(xs)});
  } else if (op == "ReduceMean") {
    const TensorId scaled = c.emit1("Mul", {dyk, c.scalar(1.0 / static_cast<double>(count), dt)});
    g = c.emit1("Expand", {scaled, c.ints(xs)});
  } else if (op == "ReduceSumSquare") {
    g = c.emit1("Mul", {c.emit1("Mul", {x, c.scalar(2.0, dt)}), dyk});
  } else if (op == "ReduceL2") {
    const TensorId yk = reshape_to(c, c.output(0), keep);
    g = c.emit1("Mul", {x, c.emit1("Div", {dyk, yk})});
  } else {  // ReduceMax, ReduceMin
    const TensorId yk = reshape_to(c, c.output(0), keep);
    const TensorId mask = c.emit1("Cast", {c.emit1("Equal", {x, yk})}, {{"to", dtype_str(dt)}});
    g = c.emit1("Mul", {mask, dyk});
  }
  c.set_input_grad(0, g);
}

#undef MEMPLAN_GRAD_PROLOGUE

}  // namespace

void register_data(Table& t) {
  for (std::string_view op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}) t[op] = reshape_rule;
  t["Identity"] = identity_rule;
  t["Transpose"] = transpose_rule;
  t["Concat"] = concat_rule;
  t["Split"] = split_rule;
  t["Slice"] = slice_rule;
  t["Gather"] = gather_rule;
  t["GatherElements"] = gather_rule;
  t["Expand"] = expand_rule;
  t["Tile"] = tile_rule;
  t["Pad"] = pad_rule;
  t["Trilu"] = trilu_rule;
  t["Where"] = where_rule;
  t["Cast"] = cast_rule;
  for (std::string_view op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
                              "ReduceSumSquare", "ReduceL2"})
    t[op] = reduce_rule;
}

}  // namespace memplan::grads
