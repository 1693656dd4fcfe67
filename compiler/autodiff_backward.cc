// Reverse-mode differentiation for the training pass (autodiff.h, step 3).
//
//  1. forward reachability: a float tensor needs a gradient iff a trainable
//     parameter reaches it through float dataflow; we remember one such
//     parameter per tensor for error messages;
//  2. seed d(loss) = 1 (a constant of the loss's type);
//  3. visit the forward nodes in reverse topological order; a node with a
//     gradient on some output and an input that needs one runs its rule
//     (grad.h) under the name prefix "memplan/grad/<node>"; every input
//     gradient it sets is added to that tensor's running sum (one Add per
//     extra contribution).
// Inputs reachable only from frozen parameters never need a gradient, so the
// backward work that would only serve them is never emitted.
#include <string>

#include "compiler/autodiff_internal.h"
#include "compiler/grad.h"

namespace memplan::autodiff {

namespace {

/// For each tensor, a trainable parameter that reaches it (invalid: none).
std::vector<TensorId> reaching_param(const Graph& g, const std::vector<NodeId>& order,
                                     const std::vector<char>& trainable) {
  std::vector<TensorId> from(g.num_tensors());
  for (uint32_t i = 0; i < g.num_tensors(); ++i)
    if (trainable[i]) from[i] = TensorId(i);
  for (NodeId id : order) {
    const Node& n = g.node(id);
    TensorId src;
    for (TensorId in : n.inputs)
      if (in.valid() && from[in.v].valid() && is_float(g.tensor(in).dtype)) {
        src = from[in.v];
        break;
      }
    if (!src.valid()) continue;
    for (TensorId out : n.outputs)
      if (out.valid() && is_float(g.tensor(out).dtype)) from[out.v] = src;
  }
  return from;
}

class Differentiator {
 public:
  Differentiator(Builder& b, const std::vector<char>& trainable)
      : b_(b), g_(b.g), num_forward_tensors_(g_.num_tensors()), grad_(num_forward_tensors_) {
    order_ = g_.topo_order();
    from_ = reaching_param(g_, order_, trainable);
  }

  void run(TensorId loss, TensorId seed) {
    if (!from_[loss.v].valid())
      throw Error("the loss '" + g_.tensor(loss).name +
                  "' does not depend on any trainable parameter: nothing to differentiate");
    const Tensor& l = g_.tensor(loss);
    grad_[loss.v] =
        seed.valid() ? seed : b_.filled_constant("memplan/grad/seed", l.dtype, l.shape, 1.0);
    for (auto it = order_.rbegin(); it != order_.rend(); ++it)
      visit(*it);
  }

  /// Gradient of forward tensor t (invalid if none reached it).
  TensorId grad(TensorId t) const { return grad_.at(t.v); }

 private:
  Builder& b_;
  Graph& g_;
  const size_t num_forward_tensors_;
  std::vector<TensorId> grad_; // indexed by forward tensor id
  std::vector<NodeId> order_;
  std::vector<TensorId> from_;

  bool needs_grad(TensorId t) const {
    return t.valid() && t.v < num_forward_tensors_ && from_[t.v].valid() &&
           is_float(g_.tensor(t).dtype) && g_.tensor(t).role != Role::constant;
  }

  void visit(NodeId id) {
    // Copies: rules add nodes and tensors, which may move the node storage.
    const std::vector<TensorId> outs = g_.node(id).outputs;
    const std::vector<TensorId> ins = g_.node(id).inputs;
    std::vector<TensorId> out_grads(outs.size());
    bool any_out = false;
    for (size_t k = 0; k < outs.size(); ++k)
      if (outs[k].valid() && outs[k].v < num_forward_tensors_ && grad_[outs[k].v].valid()) {
        out_grads[k] = grad_[outs[k].v];
        any_out = true;
      }
    if (!any_out) return;
    std::vector<char> needs(ins.size(), 0);
    TensorId via; // an input that needs a gradient, for messages
    for (size_t i = 0; i < ins.size(); ++i)
      if (needs_grad(ins[i])) {
        needs[i] = 1;
        if (!via.valid()) via = ins[i];
      }
    if (!via.valid()) return;
    const std::string op = g_.node(id).op;
    GradFn rule = find_grad_rule(op);
    if (!rule)
      throw Error(node_desc(g_.node(id)) + ": op " + op +
                  " has no gradient rule, but it lies on the gradient path from parameter '" +
                  g_.tensor(from_[via.v]).name +
                  "' to the loss (freeze that parameter with "
                  "--freeze, or add a rule in compiler/grad_*.cc)");
    GradCtx ctx(g_, id, out_grads, needs, "memplan/grad/" + g_.node(id).name);
    rule(ctx);
    const std::vector<TensorId> in_grads = ctx.input_grads();
    for (size_t i = 0; i < ins.size(); ++i)
      if (in_grads[i].valid()) accumulate(ins[i], in_grads[i]);
  }

  void accumulate(TensorId t, TensorId contribution) {
    TensorId& cur = grad_.at(t.v);
    if (!cur.valid()) {
      cur = contribution;
      return;
    }
    const std::string name = g_.tensor(t).name;
    cur = b_.emit("Add", "memplan/grad_sum/" + name, {cur, contribution}, {},
                  {{name + "/grad_sum", Role::gradient}})[0];
  }
};

} // namespace

Backward build_backward(Builder& b, TensorId loss, const std::vector<char>& trainable,
                        std::vector<std::string>& warnings, TensorId seed) {
  Differentiator d(b, trainable);
  d.run(loss, seed);
  Backward r;
  for (uint32_t i = 0; i < trainable.size(); ++i) {
    if (!trainable[i]) continue;
    TensorId gp = d.grad(TensorId(i));
    if (!gp.valid()) {
      warnings.push_back("parameter '" + b.g.tensor(TensorId(i)).name +
                         "' does not affect the loss: it gets no gradient and no update");
      continue;
    }
    r.params.push_back(TensorId(i));
    r.grads.push_back(gp);
  }
  return r;
}

} // namespace memplan::autodiff
