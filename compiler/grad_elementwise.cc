// Gradient rules: elementwise family. Binary ops sum the gradient over
// broadcast axes (GradCtx::unbroadcast). Rules are written with forward ops
// (Mul, Div, Neg, Sign, Pow, Log, Equal + Cast masks) where that is natural,
// and with dedicated backward ops (ops_grad_elementwise.cc) for activations.
//
//   Add/Sub/Sum/Mean   dA = unbroadcast(+-dY [/ n])
//   Mul                dA = dY * B,  dB = dY * A
//   Div (Y = A / B)    dA = dY / B,  dB = -dY * Y / B
//   Pow (Y = A^B)      dA = dY * B * A^(B-1),  dB = dY * Y * log(A)  (A > 0)
//   Sqrt dY/(2Y), Reciprocal -dY*Y^2, Neg -dY, Abs dY*sign(X), Exp dY*Y, Log dY/X
//   Min/Max            dX_i = dY * (X_i == Y): at ties every tied input
//                      receives the full gradient (a subgradient choice).
#include "compiler/grad_internal.h"

namespace memplan::grads {

namespace {

DType dtype_of(const GradCtx& c, TensorId t) { return c.tensor(t).dtype; }
/// A copy: emitting nodes adds tensors, which may move the graph's storage.
Shape shape_of(const GradCtx& c, TensorId t) { return c.tensor(t).shape; }

/// set_input_grad(i, unbroadcast(g, shape of input i)) if input i needs one.
void set_unbroadcast(GradCtx& c, size_t i, TensorId g) {
  if (c.needs_input_grad(i)) c.set_input_grad(i, c.unbroadcast(g, shape_of(c, c.input(i))));
}

void add_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  for (size_t i = 0; i < c.num_inputs(); ++i) set_unbroadcast(c, i, dy);
}

void mean_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const double inv = 1.0 / static_cast<double>(c.num_inputs());
  const TensorId g = c.emit1("Mul", {dy, c.scalar(inv, dtype_of(c, dy))});
  for (size_t i = 0; i < c.num_inputs(); ++i) set_unbroadcast(c, i, g);
}

void sub_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  set_unbroadcast(c, 0, dy);
  if (c.needs_input_grad(1)) set_unbroadcast(c, 1, c.emit1("Neg", {dy}));
}

void mul_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  if (c.needs_input_grad(0)) set_unbroadcast(c, 0, c.emit1("Mul", {dy, c.input(1)}));
  if (c.needs_input_grad(1)) set_unbroadcast(c, 1, c.emit1("Mul", {dy, c.input(0)}));
}

void div_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const TensorId b = c.input(1);
  if (c.needs_input_grad(0)) set_unbroadcast(c, 0, c.emit1("Div", {dy, b}));
  if (c.needs_input_grad(1)) {
    const TensorId y_over_b = c.emit1("Div", {c.output(0), b});
    set_unbroadcast(c, 1, c.emit1("Neg", {c.emit1("Mul", {dy, y_over_b})}));
  }
}

void pow_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const TensorId a = c.input(0), b = c.input(1);
  const DType dt = dtype_of(c, a);
  if (c.needs_input_grad(0)) {
    // B - 1 in B's own dtype; Pow accepts any exponent dtype.
    const TensorId bm1 = c.emit1("Sub", {b, c.scalar(1.0, dtype_of(c, b))});
    const TensorId p = c.emit1("Pow", {a, bm1});
    TensorId bf = b;
    if (dtype_of(c, b) != dt) bf = c.emit1("Cast", {b}, {{"to", std::string(dtype_name(dt))}});
    set_unbroadcast(c, 0, c.emit1("Mul", {dy, c.emit1("Mul", {p, bf})}));
  }
  if (c.needs_input_grad(1)) {
    const TensorId ylog = c.emit1("Mul", {c.output(0), c.emit1("Log", {a})});
    set_unbroadcast(c, 1, c.emit1("Mul", {dy, ylog}));
  }
}

void sqrt_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  const TensorId two_y = c.emit1("Mul", {c.output(0), c.scalar(2.0, dtype_of(c, dy))});
  c.set_input_grad(0, c.emit1("Div", {dy, two_y}));
}

void reciprocal_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  const TensorId y2 = c.emit1("Mul", {c.output(0), c.output(0)});
  c.set_input_grad(0, c.emit1("Neg", {c.emit1("Mul", {dy, y2})}));
}

void neg_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (dy.valid() && c.needs_input_grad(0)) c.set_input_grad(0, c.emit1("Neg", {dy}));
}

void abs_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  c.set_input_grad(0, c.emit1("Mul", {dy, c.emit1("Sign", {c.input(0)})}));
}

void exp_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (dy.valid() && c.needs_input_grad(0)) c.set_input_grad(0, c.emit1("Mul", {dy, c.output(0)}));
}

void log_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (dy.valid() && c.needs_input_grad(0)) c.set_input_grad(0, c.emit1("Div", {dy, c.input(0)}));
}

/// Rules backed by a dedicated op OP(dY, saved), saved = input 0 or output 0,
/// copying the forward node's attributes listed in `keep`.
template <const char* kOp, bool kUseOutput>
void saved_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid() || !c.needs_input_grad(0)) return;
  Attrs attrs;
  for (const char* k : {"alpha", "approximate"})
    if (c.node().has_attr(k)) attrs[k] = c.node().attrs.at(k);
  const TensorId saved = kUseOutput ? c.output(0) : c.input(0);
  c.set_input_grad(0, c.emit1(kOp, {dy, saved}, attrs));
}
constexpr char kReluGrad[] = "ReluGrad";
constexpr char kSigmoidGrad[] = "SigmoidGrad";
constexpr char kTanhGrad[] = "TanhGrad";
constexpr char kErfGrad[] = "ErfGrad";
constexpr char kLeakyReluGrad[] = "LeakyReluGrad";
constexpr char kGeluGrad[] = "GeluGrad";

void clip_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  for (size_t i = 1; i < c.num_inputs(); ++i)
    if (c.needs_input_grad(i))
      throw Error(node_desc(c.node()) + ": gradients with respect to Clip's min/max are not supported");
  if (!c.needs_input_grad(0)) return;
  Attrs attrs;
  for (const char* k : {"min", "max"})
    if (c.node().has_attr(k)) attrs[k] = c.node().attrs.at(k);
  std::vector<TensorId> ins = {dy, c.input(0)};
  for (size_t i = 1; i < c.num_inputs(); ++i) ins.push_back(c.input(i));
  while (ins.size() > 2 && !ins.back().valid()) ins.pop_back();
  c.set_input_grad(0, c.emit1("ClipGrad", ins, attrs));
}

void minmax_rule(GradCtx& c) {
  const TensorId dy = c.output_grad(0);
  if (!dy.valid()) return;
  const std::string to(dtype_name(dtype_of(c, dy)));
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    if (!c.needs_input_grad(i)) continue;
    const TensorId eq = c.emit1("Equal", {c.input(i), c.output(0)});
    const TensorId mask = c.emit1("Cast", {eq}, {{"to", to}});
    set_unbroadcast(c, i, c.emit1("Mul", {dy, mask}));
  }
}

}  // namespace

void register_elementwise(Table& t) {
  t["Add"] = add_rule;
  t["Sum"] = add_rule;
  t["Mean"] = mean_rule;
  t["Sub"] = sub_rule;
  t["Mul"] = mul_rule;
  t["Div"] = div_rule;
  t["Pow"] = pow_rule;
  t["Sqrt"] = sqrt_rule;
  t["Reciprocal"] = reciprocal_rule;
  t["Neg"] = neg_rule;
  t["Abs"] = abs_rule;
  t["Exp"] = exp_rule;
  t["Log"] = log_rule;
  t["Relu"] = saved_rule<kReluGrad, true>;
  t["Sigmoid"] = saved_rule<kSigmoidGrad, true>;
  t["Tanh"] = saved_rule<kTanhGrad, true>;
  t["Erf"] = saved_rule<kErfGrad, false>;
  t["LeakyRelu"] = saved_rule<kLeakyReluGrad, false>;
  t["Gelu"] = saved_rule<kGeluGrad, false>;
  t["Clip"] = clip_rule;
  t["Min"] = minmax_rule;
  t["Max"] = minmax_rule;
}

}  // namespace memplan::grads
