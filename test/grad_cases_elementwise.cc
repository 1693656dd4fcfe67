// Gradient-check cases: elementwise family. Shapes are small (<= 24 elements
// per differentiable input). Ranges keep inputs away from non-differentiable
// or singular points: Sqrt/Log/Reciprocal/Div denominators in [0.5, 2], Pow
// bases in [0.5, 2]; Relu, Abs, LeakyRelu, Clip and Min/Max use uniform
// random values, where a kink (0, a clip bound, a tie) within a finite-
// difference step has probability ~1e-5 or less.
#include "test/grad_check.h"

namespace memplan::gradcheck {

namespace {

InputSpec cst(Shape s, std::vector<double> v, DType d = DType::f64) {
  return constant(std::move(s), std::move(v), d);
}

GradCase unary(std::string name, std::string op, double lo = -1.0, double hi = 1.0, Attrs attrs = {}) {
  return {.name = std::move(name), .op = std::move(op), .inputs = {rnd({2, 3, 4}, lo, hi)},
          .attrs = std::move(attrs)};
}

}  // namespace

std::vector<GradCase> elementwise_cases() {
  std::vector<GradCase> c;
  // Binary ops: both inputs, numpy broadcasting ([2,3,4] with [3,1] sums dB
  // over axes 0 and 2).
  c.push_back({.name = "Add/broadcast_2x3x4_3x1", .op = "Add", .inputs = {rnd({2, 3, 4}), rnd({3, 1})}});
  c.push_back({.name = "Add/scalar_first", .op = "Add", .inputs = {rnd({}), rnd({2, 3})}});
  c.push_back({.name = "Sub/broadcast_2x3_3", .op = "Sub", .inputs = {rnd({2, 3}), rnd({3})}});
  c.push_back({.name = "Sub/broadcast_first_1x3_2x1", .op = "Sub", .inputs = {rnd({1, 3}), rnd({2, 1})}});
  c.push_back({.name = "Mul/broadcast_2x3x4_4", .op = "Mul", .inputs = {rnd({2, 3, 4}), rnd({4})}});
  c.push_back({.name = "Div/broadcast_2x3x4_3x1", .op = "Div",
               .inputs = {rnd({2, 3, 4}), rnd({3, 1}, 0.5, 2.0)}});
  c.push_back({.name = "Pow/both_inputs", .op = "Pow", .inputs = {rnd({2, 3}, 0.5, 2.0), rnd({3}, -1.5, 2.0)}});
  c.push_back({.name = "Pow/int_exponent", .op = "Pow",
               .inputs = {rnd({2, 3}, -2.0, 2.0), cst({}, {3}, DType::i64)}});
  c.push_back({.name = "Sum/three_broadcast", .op = "Sum",
               .inputs = {rnd({2, 3}), rnd({3}), rnd({2, 1})}});
  c.push_back({.name = "Mean/two", .op = "Mean", .inputs = {rnd({2, 3}), rnd({1, 3})}});
  c.push_back({.name = "Max/broadcast_2x3_3", .op = "Max", .inputs = {rnd({2, 3}), rnd({3})}});
  c.push_back({.name = "Min/three", .op = "Min", .inputs = {rnd({2, 3}), rnd({2, 3}), rnd({2, 3})}});

  // Unary math.
  c.push_back(unary("Sqrt/positive", "Sqrt", 0.5, 2.0));
  c.push_back(unary("Reciprocal/positive", "Reciprocal", 0.5, 2.0));
  c.push_back(unary("Reciprocal/negative", "Reciprocal", -2.0, -0.5));
  c.push_back(unary("Neg/basic", "Neg"));
  c.push_back(unary("Abs/mixed_sign", "Abs"));
  c.push_back(unary("Exp/basic", "Exp"));
  c.push_back(unary("Log/positive", "Log", 0.5, 2.0));
  c.push_back(unary("Tanh/basic", "Tanh", -2.0, 2.0));
  c.push_back(unary("Sigmoid/basic", "Sigmoid", -3.0, 3.0));
  c.push_back(unary("Erf/basic", "Erf", -2.0, 2.0));

  // Activations.
  c.push_back(unary("Relu/mixed_sign", "Relu"));
  c.push_back(unary("LeakyRelu/alpha0.1", "LeakyRelu", -1.0, 1.0, {{"alpha", 0.1}}));
  c.push_back(unary("Gelu/exact", "Gelu", -3.0, 3.0));
  c.push_back(unary("Gelu/tanh", "Gelu", -3.0, 3.0, {{"approximate", std::string("tanh")}}));
  c.push_back({.name = "Clip/inputs", .op = "Clip",
               .inputs = {rnd({2, 3, 4}), cst({}, {-0.5}), cst({}, {0.5})}});
  c.push_back({.name = "Clip/max_only", .op = "Clip",
               .inputs = {rnd({2, 3, 4}), omitted(), cst({}, {0.3})}});
  c.push_back({.name = "Clip/attrs_opset6", .op = "Clip", .inputs = {rnd({2, 3, 4})},
               .attrs = {{"min", -0.4}, {"max", 0.6}}});
  return c;
}

}  // namespace memplan::gradcheck
