// Op definitions: optimizer family (emitted by the training pass, autodiff.h).
//
// Every op here updates storage in place: its outputs have the shape and
// dtype of the input they alias (compiler/ir.cc's alias table), and the
// runtime hands the kernel the same pointer for both.
//
//   StepIncrement(step, [found_inf]) -> step'          step' = step + 1
//   SGDUpdate(param, grad, [momentum_buf], [scale], [step], [found_inf])
//       -> (param', [momentum_buf'])
//       attrs lr, momentum, dampening, nesterov, weight_decay (torch.optim.SGD);
//       `step` (the already incremented counter) is required with a momentum
//       buffer: on step 1 the buffer is initialized to the gradient.
//   AdamUpdate(param, grad, m, v, step, [scale], [found_inf]) -> (param', m', v')
//       attrs lr, beta1, beta2, eps, weight_decay, decoupled (1: AdamW)
//   GradAccumulate(acc, g) -> acc'                    acc' = acc + g
//   GlobalNormScale(g1, ..., gn) -> scale             attr max_norm; f32 scalar
//       scale = min(1, max_norm / (sqrt(sum_i ||g_i||^2) + 1e-6))
// `scale` (optional, f32 scalar) multiplies the gradient before anything else,
// as torch.nn.utils.clip_grad_norm_ rescales .grad before optimizer.step().
// `found_inf` (optional, f32 scalar, loss scaling): when nonzero the op leaves
// every output equal to its input (a skipped step).
//   UnscaleGradients(scale, g1, ..., gn) -> (found_inf, g1', ..., gn')
//       g_i' = g_i / scale in place; found_inf = 1 if any g_i holds inf/NaN
//   LossScaleUpdate(scale, tracker, found_inf) -> (scale', tracker')
//       attrs growth_factor, backoff_factor, growth_interval (GradScaler);
//       init_scale: the scale's starting value (for weight initialization)
//
// Micro-batching (compiler/autodiff_microbatch.cc) adds one op that is not in
// place:
//   BatchSlice(X, after...) -> Y      attrs index, count
//       Y = the index-th of `count` equal parts of X along axis 0 (a copy).
//       Inputs after the first are ordering-only dependencies: their data is
//       never read, they only make the node run after their producers.
#include "compiler/ops_common.h"

namespace memplan::ops {

namespace {

void require_scalar_float(const InferCtx& c, size_t slot, const char* what) {
  if (!c.shape(slot).empty())
    c.fail(std::string(what) + " (input " + std::to_string(slot) + ") must be a scalar, got " +
           shape_str(c.shape(slot)));
  if (!is_float(c.dtype(slot)))
    c.fail(std::string(what) + " (input " + std::to_string(slot) + ") must be floating-point");
}

/// Fails unless input `slot` has exactly input 0's dtype and shape.
void require_like_param(const InferCtx& c, size_t slot, const char* what) {
  if (c.dtype(slot) != c.dtype(0) || c.shape(slot) != c.shape(0))
    c.fail(std::string(what) + " (input " + std::to_string(slot) + ") is " +
           std::string(dtype_name(c.dtype(slot))) + shape_str(c.shape(slot)) +
           " but the parameter is " + std::string(dtype_name(c.dtype(0))) + shape_str(c.shape(0)));
}

Types step_increment(const InferCtx& c) {
  require_scalar_float(c, 0, "step");
  if (c.has_input(1)) require_scalar_float(c, 1, "found_inf");
  return {{c.dtype(0), c.shape(0)}};
}

Types sgd_update(const InferCtx& c) {
  if (!is_float(c.dtype(0))) c.fail("parameter must be floating-point");
  require_like_param(c, 1, "gradient");
  const Node& n = c.node();
  const double momentum = attr_float(n, "momentum", 0.0);
  const double dampening = attr_float(n, "dampening", 0.0);
  if (attr_int(n, "nesterov", 0) != 0 && (momentum <= 0.0 || dampening != 0.0))
    c.fail("nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)");
  const bool buf = c.has_input(2);
  if (momentum != 0.0 && !buf)
    c.fail("momentum " + std::to_string(momentum) + " needs a momentum buffer (input 2)");
  if (buf) {
    require_like_param(c, 2, "momentum buffer");
    if (!c.has_input(4)) c.fail("a momentum buffer needs the step counter (input 4)");
  }
  if (c.has_input(3)) require_scalar_float(c, 3, "scale");
  if (c.has_input(4)) require_scalar_float(c, 4, "step");
  if (c.has_input(5)) require_scalar_float(c, 5, "found_inf");
  if (c.num_outputs() > 1 && !buf) c.fail("output 1 (momentum buffer) needs input 2");
  Types r = {{c.dtype(0), c.shape(0)}};
  if (c.num_outputs() > 1) r.push_back({c.dtype(2), c.shape(2)});
  return r;
}

Types adam_update(const InferCtx& c) {
  if (!is_float(c.dtype(0))) c.fail("parameter must be floating-point");
  require_like_param(c, 1, "gradient");
  require_like_param(c, 2, "first moment m");
  require_like_param(c, 3, "second moment v");
  require_scalar_float(c, 4, "step");
  if (c.has_input(5)) require_scalar_float(c, 5, "scale");
  if (c.has_input(6)) require_scalar_float(c, 6, "found_inf");
  return {{c.dtype(0), c.shape(0)}, {c.dtype(2), c.shape(2)}, {c.dtype(3), c.shape(3)}};
}

Types grad_accumulate(const InferCtx& c) {
  if (!is_float(c.dtype(0))) c.fail("accumulator must be floating-point");
  if (c.dtype(1) != c.dtype(0) || c.shape(1) != c.shape(0))
    c.fail("gradient is " + std::string(dtype_name(c.dtype(1))) + shape_str(c.shape(1)) +
           " but the accumulator is " + std::string(dtype_name(c.dtype(0))) +
           shape_str(c.shape(0)));
  return {{c.dtype(0), c.shape(0)}};
}

Types batch_slice(const InferCtx& c) {
  const int64_t count = attr_int(c.node(), "count", 0);
  const int64_t index = attr_int(c.node(), "index", -1);
  if (count < 1) c.fail("count must be at least 1, got " + std::to_string(count));
  if (index < 0 || index >= count)
    c.fail("index " + std::to_string(index) + " is outside [0, " + std::to_string(count) + ")");
  Shape s = c.shape(0);
  if (s.empty()) c.fail("input 0 is a scalar: there is no batch axis to slice");
  if (s[0] % count != 0)
    c.fail("axis 0 of input 0 (" + std::to_string(s[0]) + ") is not divisible by count " +
           std::to_string(count));
  for (size_t i = 1; i < c.num_inputs(); ++i)
    (void)c.input(i);  // ordering-only inputs must exist (their data is not read)
  s[0] /= count;
  return {{c.dtype(0), s}};
}

Types global_norm_scale(const InferCtx& c) {
  if (!(attr_float(c.node(), "max_norm", 1.0) > 0.0)) c.fail("max_norm must be positive");
  for (size_t i = 0; i < c.num_inputs(); ++i)
    if (!is_float(c.dtype(i))) c.fail("input " + std::to_string(i) + " must be floating-point");
  return {{DType::f32, {}}};
}

Types unscale_gradients(const InferCtx& c) {
  require_scalar_float(c, 0, "scale");
  if (c.num_outputs() != c.num_inputs())
    c.fail("needs one output per input (found_inf, then one per gradient), got " +
           std::to_string(c.num_outputs()) + " for " + std::to_string(c.num_inputs()) + " inputs");
  Types r = {{DType::f32, {}}};
  for (size_t i = 1; i < c.num_inputs(); ++i) {
    if (!is_float(c.dtype(i))) c.fail("gradient (input " + std::to_string(i) + ") must be floating-point");
    r.push_back({c.dtype(i), c.shape(i)});
  }
  return r;
}

Types loss_scale_update(const InferCtx& c) {
  require_scalar_float(c, 0, "scale");
  require_scalar_float(c, 1, "growth tracker");
  require_scalar_float(c, 2, "found_inf");
  const Node& n = c.node();
  if (!(attr_float(n, "growth_factor", 2.0) >= 1.0)) c.fail("growth_factor must be >= 1");
  const double backoff = attr_float(n, "backoff_factor", 0.5);
  if (!(backoff > 0.0 && backoff < 1.0)) c.fail("backoff_factor must lie in (0, 1)");
  if (attr_int(n, "growth_interval", 2000) < 1) c.fail("growth_interval must be >= 1");
  return {{c.dtype(0), {}}, {c.dtype(1), {}}};
}

// FLOPs per parameter element, counted from the formulas in the banner.
double sgd_flops(const Graph& g, const Node& n) {
  return 6 * in_elems(g, n, 0);
}
double adam_flops(const Graph& g, const Node& n) {
  return 14 * in_elems(g, n, 0);
}
double norm_flops(const Graph& g, const Node& n) {
  double s = 0;
  for (size_t i = 0; i < n.inputs.size(); ++i)
    s += 2 * in_elems(g, n, i);
  return s;
}

} // namespace

void register_optim(std::vector<OpDef>& t) {
  t.push_back({.name = "StepIncrement", .max_inputs = 2, .infer = step_increment});
  t.push_back({.name = "SGDUpdate",
               .min_inputs = 2,
               .max_inputs = 6,
               .max_outputs = 2,
               .attrs = {"lr", "momentum", "dampening", "nesterov", "weight_decay"},
               .infer = sgd_update,
               .flops = sgd_flops});
  t.push_back({.name = "AdamUpdate",
               .min_inputs = 5,
               .max_inputs = 7,
               .min_outputs = 3,
               .max_outputs = 3,
               .attrs = {"lr", "beta1", "beta2", "eps", "weight_decay", "decoupled"},
               .infer = adam_update,
               .flops = adam_flops});
  t.push_back(
      {.name = "GradAccumulate", .min_inputs = 2, .max_inputs = 2, .infer = grad_accumulate});
  t.push_back({.name = "BatchSlice",
               .min_inputs = 1,
               .max_inputs = -1,
               .attrs = {"index", "count"},
               .infer = batch_slice,
               .flops = zero_flops});
  t.push_back({.name = "GlobalNormScale",
               .min_inputs = 1,
               .max_inputs = -1,
               .attrs = {"max_norm"},
               .infer = global_norm_scale,
               .flops = norm_flops});
  t.push_back({.name = "UnscaleGradients",
               .min_inputs = 2,
               .max_inputs = -1,
               .min_outputs = 2,
               .max_outputs = -1,
               .infer = unscale_gradients,
               .flops = norm_flops});
  t.push_back({.name = "LossScaleUpdate",
               .min_inputs = 3,
               .max_inputs = 3,
               .min_outputs = 2,
               .max_outputs = 2,
               .attrs = {"init_scale", "growth_factor", "backoff_factor", "growth_interval"},
               .infer = loss_scale_update});
}

} // namespace memplan::ops
