// Gradient clipping and the optimizer for the training pass (autodiff.h,
// steps 4 and 5). Op signatures: compiler/ops_optim.cc.
//
//  1. clipping (clip_grad_norm > 0): scale = GlobalNormScale(g1, ..., gn);
//  2. the step counter "memplan/step" (role state, f32 scalar, zero) is
//     incremented in place: step' = StepIncrement(step), so step' = 1 on the
//     first step; every update reads step';
//  3. per trained parameter p with gradient g:
//       SGD, momentum 0:  p' = SGDUpdate(p, g, _, [scale])
//       SGD, momentum:    p', buf' = SGDUpdate(p, g, p/momentum, [scale | _], step')
//       Adam / AdamW:     p', m', v' = AdamUpdate(p, g, p/adam_m, p/adam_v, step', [scale])
//     with the optimizer state zero-initialized (role optimizer_state);
//  4. with loss scaling, StepIncrement, SGDUpdate and AdamUpdate also read
//     bw.found_inf (their last, optional input) and skip when it is set.
#include <string>

#include "compiler/autodiff_internal.h"

namespace memplan::autodiff {

namespace {

Attrs sgd_attrs(const OptimizerOptions& o) {
  return {{"lr", o.lr},
          {"momentum", o.momentum},
          {"dampening", o.dampening},
          {"nesterov", int64_t{o.nesterov ? 1 : 0}},
          {"weight_decay", o.weight_decay}};
}

Attrs adam_attrs(const OptimizerOptions& o) {
  return {{"lr", o.lr},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"eps", o.eps},
          {"weight_decay", o.weight_decay},
          {"decoupled", int64_t{o.kind == OptimizerKind::adamw ? 1 : 0}}};
}

/// User errors in the optimizer options, named as the CLI flags.
void check_options(const OptimizerOptions& o) {
  if (!(o.lr >= 0)) throw Error("--lr must be >= 0, got " + std::to_string(o.lr));
  if (!(o.weight_decay >= 0))
    throw Error("--weight-decay must be >= 0, got " + std::to_string(o.weight_decay));
  if (o.kind == OptimizerKind::sgd) {
    if (!(o.momentum >= 0))
      throw Error("--momentum must be >= 0, got " + std::to_string(o.momentum));
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      throw Error("--nesterov needs --momentum > 0 and --dampening 0 (as torch.optim.SGD)");
  }
  if (o.kind == OptimizerKind::adam || o.kind == OptimizerKind::adamw) {
    if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1))
      throw Error("Adam betas must lie in [0, 1), got " + std::to_string(o.beta1) + ", " +
                  std::to_string(o.beta2));
    if (!(o.eps >= 0)) throw Error("Adam eps must be >= 0, got " + std::to_string(o.eps));
  }
}

} // namespace

Updates build_optimizer(Builder& b, const TrainingOptions& opts, const Backward& bw,
                        std::vector<std::string>& warnings) {
  const OptimizerOptions& o = opts.optimizer;
  Updates u;
  if (o.kind == OptimizerKind::none) {
    if (opts.clip_grad_norm > 0)
      warnings.push_back("gradient clipping has no effect without an optimizer");
    return u;
  }
  check_options(o);
  Graph& g = b.g;
  TensorId scale;
  if (opts.clip_grad_norm < 0)
    throw Error("--clip-grad-norm must be >= 0, got " + std::to_string(opts.clip_grad_norm));
  if (opts.clip_grad_norm > 0)
    scale =
        b.emit("GlobalNormScale", "memplan/clip_grad_norm", bw.grads,
               {{"max_norm", opts.clip_grad_norm}}, {{"memplan/clip_scale", Role::gradient}})[0];

  TensorId step = b.zero_tensor("memplan/step", DType::f32, {}, Role::state);
  const TensorId inf = bw.found_inf;  // invalid unless loss scaling
  std::vector<TensorId> step_ins = {step};
  if (inf.valid()) step_ins.push_back(inf);
  TensorId step1 = b.emit("StepIncrement", "memplan/step_increment", step_ins, {},
                          {{"memplan/step/updated", Role::state}})[0];
  u.state.push_back(step1);

  for (size_t k = 0; k < bw.params.size(); ++k) {
    const TensorId p = bw.params[k], gp = bw.grads[k];
    const std::string name = g.tensor(p).name;
    const DType dt = g.tensor(p).dtype;
    const Shape shape = g.tensor(p).shape;
    const Builder::Out p_out{name + "/updated", Role::parameter};
    if (o.kind == OptimizerKind::sgd) {
      if (o.momentum == 0) {
        std::vector<TensorId> ins = {p, gp};
        if (scale.valid() || inf.valid()) ins.insert(ins.end(), {TensorId(), scale});
        if (inf.valid()) ins.insert(ins.end(), {TensorId(), inf});
        u.params.push_back(
            b.emit("SGDUpdate", "memplan/sgd/" + name, ins, sgd_attrs(o), {p_out})[0]);
        continue;
      }
      TensorId buf = b.zero_tensor(name + "/momentum", dt, shape, Role::optimizer_state);
      std::vector<TensorId> ins = {p, gp, buf, scale, step1};
      if (inf.valid()) ins.push_back(inf);
      auto outs =
          b.emit("SGDUpdate", "memplan/sgd/" + name, ins, sgd_attrs(o),
                 {p_out, {name + "/momentum/updated", Role::optimizer_state}});
      u.params.push_back(outs[0]);
      u.opt_state.push_back(outs[1]);
      continue;
    }
    TensorId m = b.zero_tensor(name + "/adam_m", dt, shape, Role::optimizer_state);
    TensorId v = b.zero_tensor(name + "/adam_v", dt, shape, Role::optimizer_state);
    std::vector<TensorId> ins = {p, gp, m, v, step1};
    if (scale.valid() || inf.valid()) ins.push_back(scale);
    if (inf.valid()) ins.push_back(inf);
    auto outs = b.emit("AdamUpdate", "memplan/adam/" + name, ins, adam_attrs(o),
                       {p_out,
                        {name + "/adam_m/updated", Role::optimizer_state},
                        {name + "/adam_v/updated", Role::optimizer_state}});
    u.params.push_back(outs[0]);
    u.opt_state.push_back(outs[1]);
    u.opt_state.push_back(outs[2]);
  }
  return u;
}

} // namespace memplan::autodiff
