// Backward ops of the data family. Each scatters dY into a zero tensor whose
// shape is a constant int64 input (the forward input's shape):
//   SliceGrad(dY, shape, starts, ends, axes?, steps?)  dX[slice] = dY
//   GatherGrad(dY, indices, shape; axis)               dX[.., idx[j], ..] += dY[.., j, ..]
//   GatherElementsGrad(dY, indices, shape; axis)       scatter-add along axis
// Repeated indices accumulate (embedding gradients).
#include "compiler/ops_common.h"

namespace memplan::ops {

namespace {

Shape const_shape(const InferCtx& c, size_t slot) {
  const std::vector<int64_t> s = require_const_ints(c, slot, "gradient shape");
  for (int64_t d : s)
    if (d < 0) c.fail("gradient shape " + shape_str(s) + " has a negative dim");
  return s;
}

Types slice_grad(const InferCtx& c) {
  const Shape s = const_shape(c, 1);
  return {{c.dtype(0), s}};
}

Types gather_grad(const InferCtx& c) {
  if (!is_integer(c.dtype(1))) c.fail("indices must have an integer dtype");
  const Shape s = const_shape(c, 2);
  const int64_t axis = norm_axis(c, attr_int(c.node(), "axis", 0), static_cast<int64_t>(s.size()));
  // dY must have the forward Gather's output shape.
  Shape expect(s.begin(), s.begin() + axis);
  expect.insert(expect.end(), c.shape(1).begin(), c.shape(1).end());
  expect.insert(expect.end(), s.begin() + axis + 1, s.end());
  if (c.shape(0) != expect)
    c.fail("dY " + shape_str(c.shape(0)) + " does not match Gather's output " + shape_str(expect));
  return {{c.dtype(0), s}};
}

Types gather_elements_grad(const InferCtx& c) {
  if (!is_integer(c.dtype(1))) c.fail("indices must have an integer dtype");
  const Shape s = const_shape(c, 2);
  norm_axis(c, attr_int(c.node(), "axis", 0), static_cast<int64_t>(s.size()));
  if (c.shape(0) != c.shape(1) || s.size() != c.shape(1).size())
    c.fail("dY " + shape_str(c.shape(0)) + ", indices " + shape_str(c.shape(1)) + " and shape " +
           shape_str(s) + " are inconsistent");
  return {{c.dtype(0), s}};
}

}  // namespace

void register_grad_data(std::vector<OpDef>& t) {
  t.push_back({.name = "SliceGrad", .min_inputs = 4, .max_inputs = 6, .infer = slice_grad,
               .flops = zero_flops});
  t.push_back({.name = "GatherGrad", .min_inputs = 3, .max_inputs = 3, .attrs = {"axis"},
               .infer = gather_grad, .flops = [](const Graph& g, const Node& n) {
                 return in_elems(g, n, 0);
               }});
  t.push_back({.name = "GatherElementsGrad", .min_inputs = 3, .max_inputs = 3, .attrs = {"axis"},
               .infer = gather_elements_grad, .flops = [](const Graph& g, const Node& n) {
                 return in_elems(g, n, 0);
               }});
}

}  // namespace memplan::ops
