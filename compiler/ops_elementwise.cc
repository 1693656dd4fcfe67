// Elementwise ops: unary math, numpy-broadcasting binary and variadic ops,
// comparisons and logic, Where, Clip. FLOPs default to one per output element.
#include "compiler/ops_common.h"

namespace memplan::ops {

namespace {

Types unary(const InferCtx& c) { return {{c.dtype(0), c.shape(0)}}; }

Types binary(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  return {{c.dtype(0), broadcast(c, c.shape(0), c.shape(1))}};
}

/// Pow: base and exponent may differ in dtype; the result has the base's.
Types pow_infer(const InferCtx& c) { return {{c.dtype(0), broadcast(c, c.shape(0), c.shape(1))}}; }

Types variadic(const InferCtx& c) {
  require_same_dtype(c, 0, c.num_inputs() - 1);
  Shape s = c.shape(0);
  for (size_t i = 1; i < c.num_inputs(); ++i) s = broadcast(c, s, c.shape(i));
  return {{c.dtype(0), s}};
}

Types compare(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  return {{DType::boolean, broadcast(c, c.shape(0), c.shape(1))}};
}

Types logic_binary(const InferCtx& c) {
  for (size_t i = 0; i < 2; ++i)
    if (c.dtype(i) != DType::boolean) c.fail("input " + std::to_string(i) + " must be bool");
  return {{DType::boolean, broadcast(c, c.shape(0), c.shape(1))}};
}

Types not_infer(const InferCtx& c) {
  if (c.dtype(0) != DType::boolean) c.fail("input 0 must be bool");
  return {{DType::boolean, c.shape(0)}};
}

Types where(const InferCtx& c) {
  if (c.dtype(0) != DType::boolean) c.fail("condition (input 0) must be bool");
  require_same_dtype(c, 1, 2);
  Shape s = broadcast(c, c.shape(0), c.shape(1));
  return {{c.dtype(1), broadcast(c, s, c.shape(2))}};
}

Types clip(const InferCtx& c) {
  for (size_t i = 1; i < 3; ++i)
    if (c.has_input(i) && !c.shape(i).empty())
      c.fail("min/max (input " + std::to_string(i) + ") must be a scalar, got shape " +
             shape_str(c.shape(i)));
  return unary(c);
}

void add_unary(std::vector<OpDef>& t, std::string_view name,
               std::vector<std::string_view> attrs = {}) {
  t.push_back({.name = name, .attrs = std::move(attrs), .infer = unary});
}

}  // namespace

void register_elementwise(std::vector<OpDef>& t) {
  for (std::string_view op : {"Relu", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Tanh",
                              "Sigmoid", "Erf", "Floor", "Ceil", "Sign", "Sin", "Cos", "Round",
                              "Softplus", "Softsign"})
    add_unary(t, op);
  t.push_back({.name = "IsNaN", .infer = [](const InferCtx& c) -> Types {
                 return {{DType::boolean, c.shape(0)}};
               }});
  add_unary(t, "LeakyRelu", {"alpha"});
  add_unary(t, "Elu", {"alpha"});
  add_unary(t, "Selu", {"alpha", "gamma"});
  add_unary(t, "HardSigmoid", {"alpha", "beta"});
  add_unary(t, "Gelu", {"approximate"});
  add_unary(t, "Identity");
  t.back().flops = zero_flops;
  t.push_back({.name = "Clip", .max_inputs = 3, .attrs = {"min", "max"}, .infer = clip});

  for (std::string_view op : {"Add", "Sub", "Mul", "Div"})
    t.push_back({.name = op, .min_inputs = 2, .max_inputs = 2, .infer = binary});
  t.push_back({.name = "Mod", .min_inputs = 2, .max_inputs = 2, .attrs = {"fmod"}, .infer = binary});
  t.push_back({.name = "PRelu", .min_inputs = 2, .max_inputs = 2, .infer = binary});
  t.push_back({.name = "Pow", .min_inputs = 2, .max_inputs = 2, .infer = pow_infer});
  for (std::string_view op : {"Min", "Max", "Sum", "Mean"})
    t.push_back({.name = op, .min_inputs = 1, .max_inputs = -1, .infer = variadic});
  for (std::string_view op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
    t.push_back({.name = op, .min_inputs = 2, .max_inputs = 2, .infer = compare});
  for (std::string_view op : {"And", "Or", "Xor"})
    t.push_back({.name = op, .min_inputs = 2, .max_inputs = 2, .infer = logic_binary});
  t.push_back({.name = "Not", .infer = not_infer});
  t.push_back({.name = "Where", .min_inputs = 3, .max_inputs = 3, .infer = where});
}

}  // namespace memplan::ops
