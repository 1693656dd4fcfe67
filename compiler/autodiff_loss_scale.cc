// Dynamic loss scaling for the training pass (LossScaling in autodiff.h).
//
//  1. loss_scale_tensor: the resident scale S, "memplan/loss_scale" (role
//     state, the loss's dtype, a scalar holding init_scale); the backward
//     pass is seeded with it, so d(loss) = S and every gradient is S times
//     the true one;
//  2. unscale_gradients: one UnscaleGradients(S, g1, ..., gn) writes
//     found_inf and g_i / S in place (the gradients are complete here, so
//     only the optimizer and clipping read them, and they read the unscaled
//     tensors); then LossScaleUpdate(S, tracker, found_inf) backs off or
//     grows S in place (tracker: "memplan/loss_scale_growth", zero). Its
//     attribute init_scale is where runtime/weights.cc's init_random and
//     load_weights find S's starting value (plan programs elide state data).
// A gradient tensor listed twice (a parameter read by two slots whose
// gradient rules return one tensor) is unscaled once; two distinct gradient
// tensors that share storage (views of one buffer) cannot both be unscaled in
// place, so the second is first copied (Cast to its own dtype), as is a
// gradient whose storage is no node's output (e.g. the seed S itself when the
// loss is a parameter).
#include <cmath>
#include <map>
#include <string>

#include "compiler/autodiff_internal.h"
#include "compiler/dtype_codec.h"

namespace memplan::autodiff {

TensorId loss_scale_tensor(Builder& b, const LossScaling& o, const Tensor& loss) {
  if (!(o.init_scale > 0) || !std::isfinite(o.init_scale))
    throw Error("loss scaling: init_scale must be a positive finite number, got " +
                std::to_string(o.init_scale));
  if (!(o.growth_factor >= 1))
    throw Error("loss scaling: growth_factor must be >= 1, got " + std::to_string(o.growth_factor));
  if (!(o.backoff_factor > 0 && o.backoff_factor < 1))
    throw Error("loss scaling: backoff_factor must lie in (0, 1), got " +
                std::to_string(o.backoff_factor));
  if (o.growth_interval < 1)
    throw Error("loss scaling: growth_interval must be >= 1, got " +
                std::to_string(o.growth_interval));
  TensorId s = b.zero_tensor("memplan/loss_scale", loss.dtype, loss.shape, Role::state);
  std::vector<uint8_t> bytes;
  for (int64_t i = 0; i < loss.numel(); ++i)
    encode_float(loss.dtype, o.init_scale, bytes);
  b.g.tensor(s).data = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  return s;
}

std::vector<TensorId> unscale_gradients(Builder& b, const LossScaling& o, TensorId scale,
                                        Backward& bw) {
  Graph& g = b.g;
  std::vector<TensorId> ins = {scale};
  std::vector<Builder::Out> outs = {{"memplan/found_inf", Role::gradient}};
  std::map<uint32_t, size_t> slot_of; // original gradient tensor -> its input slot
  std::map<uint32_t, char> root_used;
  for (TensorId gr : bw.grads) {
    if (slot_of.count(gr.v)) continue;
    TensorId in = gr;
    const TensorId root = alias_root(g, gr);
    // Unscaling writes the storage: copy a gradient whose storage another
    // gradient already uses, or that is not a node's output (the seed, a
    // constant), which must not be overwritten.
    if (root_used.count(root.v) || !g.tensor(root).producer.valid()) {
      const std::string name = g.tensor(gr).name + "/copy";
      in = b.emit("Cast", "memplan/loss_scale/copy", {gr},
                  {{"to", std::string(dtype_name(g.tensor(gr).dtype))}},
                  {{name, Role::gradient}})[0];
    }
    root_used[alias_root(g, in).v] = 1;
    slot_of[gr.v] = ins.size();
    ins.push_back(in);
    outs.push_back({g.tensor(in).name + "/unscaled", Role::gradient});
  }
  const std::vector<TensorId> r =
      b.emit("UnscaleGradients", "memplan/unscale_gradients", ins, {}, outs);
  for (TensorId& gr : bw.grads)
    gr = r[slot_of.at(gr.v)];
  bw.found_inf = r[0];
  const Tensor& s = g.tensor(scale);
  TensorId tracker = b.zero_tensor("memplan/loss_scale_growth", s.dtype, s.shape, Role::state);
  return b.emit("LossScaleUpdate", "memplan/loss_scale_update", {scale, tracker, r[0]},
                {{"init_scale", o.init_scale},
                 {"growth_factor", o.growth_factor},
                 {"backoff_factor", o.backoff_factor},
                 {"growth_interval", o.growth_interval}},
                {{"memplan/loss_scale/updated", Role::state},
                 {"memplan/loss_scale_growth/updated", Role::state}});
}

} // namespace memplan::autodiff
