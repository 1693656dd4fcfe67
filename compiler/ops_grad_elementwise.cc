// Backward ops of the elementwise family. Each takes the upstream gradient dY
// and one saved forward tensor of the same shape and dtype, and returns dX:
//   ReluGrad(dY, Y)          dY * (Y > 0)
//   LeakyReluGrad(dY, X)     dY * (X > 0 ? 1 : alpha)
//   SigmoidGrad(dY, Y)       dY * Y * (1 - Y)
//   TanhGrad(dY, Y)          dY * (1 - Y^2)
//   ErfGrad(dY, X)           dY * 2/sqrt(pi) * exp(-X^2)
//   GeluGrad(dY, X)          dY * Gelu'(X) (approximate none / tanh)
//   ClipGrad(dY, X, min?, max?)  dY where min <= X <= max, else 0
#include "compiler/ops_common.h"

namespace memplan::ops {

namespace {

Types grad_same(const InferCtx& c) {
  require_same_dtype(c, 0, 1);
  if (c.shape(0) != c.shape(1))
    c.fail("dY " + shape_str(c.shape(0)) + " and the saved tensor " + shape_str(c.shape(1)) +
           " differ in shape");
  return {{c.dtype(0), c.shape(0)}};
}

double three_per_out(const Graph& g, const Node& n) { return 3 * out_elems(g, n); }

}  // namespace

void register_grad_elementwise(std::vector<OpDef>& t) {
  for (std::string_view op : {"ReluGrad", "SigmoidGrad", "TanhGrad", "ErfGrad"})
    t.push_back({.name = op, .min_inputs = 2, .max_inputs = 2, .infer = grad_same,
                 .flops = three_per_out});
  t.push_back({.name = "LeakyReluGrad", .min_inputs = 2, .max_inputs = 2, .attrs = {"alpha"},
               .infer = grad_same, .flops = three_per_out});
  t.push_back({.name = "GeluGrad", .min_inputs = 2, .max_inputs = 2, .attrs = {"approximate"},
               .infer = grad_same, .flops = five_per_out});
  t.push_back({.name = "ClipGrad", .min_inputs = 2, .max_inputs = 4, .attrs = {"min", "max"},
               .infer = grad_same, .flops = three_per_out});
}

}  // namespace memplan::ops
