// Cost-aware precision selection: see passes/precision_select.h.
#include "passes/precision_select.h"

#include <optional>
#include <regex>
#include <unordered_map>

#include <fmt/format.h>

#include "compiler/cost_model.h"

namespace memplan {

namespace {

constexpr int kMaxSweeps = 8;

bool float_slot(const Graph& g, TensorId t) {
  return t.valid() && is_float(g.tensor(t).dtype);
}

/// Rule 1's test (passes/precision.cc, Lowering::reason) on the unlowered graph.
bool rule1_candidate(const Graph& g, const Node& n, const PrecisionOptions& o) {
  if (!is_matmul_class(n.op)) return false;
  if (o.only_nodes && !o.only_nodes->count(n.name)) return false;
  bool any = false;
  for (TensorId t : n.inputs) {
    if (!float_slot(g, t)) continue;
    if (g.tensor(t).dtype != DType::f32) return false;
    any = true;
  }
  for (TensorId t : n.outputs)
    if (float_slot(g, t) && g.tensor(t).dtype != DType::f32) return false;
  return any;
}

std::optional<std::regex> frozen_regex(const PrecisionOptions& o) {
  if (o.frozen.empty()) return std::nullopt;
  try {
    return std::regex(o.frozen, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error("precision: frozen-weight pattern '" + o.frozen +
                "' is not a valid regular expression: " + e.what());
  }
}

/// Per node (by NodeId): 1 plus the backward work autodiff will add (see
/// precision_step_seconds in the header).
std::vector<double> step_weights(const Graph& g, const PrecisionOptions& o) {
  std::vector<char> needs_grad(g.num_tensors(), 0);
  if (o.training) {
    const std::optional<std::regex> re = frozen_regex(o);
    for (uint32_t i = 0; i < g.num_tensors(); ++i) {
      const Tensor& t = g.tensor(TensorId(i));
      if (t.role == Role::parameter && is_float(t.dtype) && !(re && std::regex_search(t.name, *re)))
        needs_grad[i] = 1;
    }
  }
  std::vector<double> w(g.num_nodes(), 1.0);
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    int grads = 0; // float operands whose gradient the backward pass computes
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      TensorId t = n.inputs[i];
      if (!float_slot(g, t) || !needs_grad[t.v]) continue;
      if (!is_matmul_class(n.op) || i < 2) ++grads;
    }
    w[id.v] = 1.0 + (is_matmul_class(n.op) ? grads : std::min(grads, 1));
    if (grads > 0)
      for (TensorId t : n.outputs)
        if (float_slot(g, t)) needs_grad[t.v] = 1;
  }
  return w;
}

/// g lowered with exactly the candidates `low`, its per-node weights and cost.
struct Priced {
  Graph lowered;
  std::vector<double> weights;
  double seconds = 0;
};

/// fp16 training: the pipeline turns on dynamic loss scaling, whose
/// UnscaleGradients reads and writes every trained parameter's f32 gradient
/// in place and whose LossScaleUpdate is one more launch. A fixed cost of any
/// non-empty fp16 selection; 0 otherwise.
double loss_scaling_seconds(const Graph& g, const PrecisionOptions& o, const DeviceProfile& d) {
  if (!o.training || o.low != DType::f16) return 0;
  const std::optional<std::regex> re = frozen_regex(o);
  double bytes = 0;
  for (const Tensor& t : g.tensors())
    if (t.role == Role::parameter && is_float(t.dtype) && !(re && std::regex_search(t.name, *re)))
      bytes += 2.0 * 4.0 * static_cast<double>(t.numel());
  return bytes / (d.mem_bw * d.bw_efficiency) + 2 * d.launch_s;
}

Priced priced(const Graph& g, const PrecisionOptions& o, const DeviceProfile& d,
              const std::set<std::string>& low) {
  Priced p;
  if (!low.empty()) p.seconds = loss_scaling_seconds(g, o, d);
  p.lowered = g;
  PrecisionOptions lo = o;
  lo.select = PrecisionSelect::all;
  lo.only_nodes = low;
  (void)lower_precision(p.lowered, lo);
  p.weights = step_weights(p.lowered, o);
  for (uint32_t i = 0; i < p.lowered.num_nodes(); ++i)
    p.seconds += p.weights[i] * node_time(p.lowered, p.lowered.node(NodeId(i)), d);
  return p;
}

/// Screen for flipping the lowered node v of cur back to f32 (f32v: the same
/// node in the unlowered graph): an upper bound on the cost it can save. The
/// flip slows v down by w_v (t_f32 - t_low); it can only remove casts next to
/// the low region that v starts (v and the non-Cast ops downstream of it with
/// a low output: rule 2 ops that may turn f32): the to-low casts feeding that
/// region and the casts reading from it. Every other effect adds cost: a
/// region op turned f32 moves more bytes at the same FLOP rate, and a low
/// reader of an f32 output needs a new cast. Returns the bound (<= 0: skip).
double flip_saving_bound(const Priced& cur, NodeId v, const Graph& g, const Node& f32v,
                         const PrecisionOptions& o, const DeviceProfile& d) {
  const Graph& lg = cur.lowered;
  const auto consumers = lg.consumers();
  std::vector<char> in_region(lg.num_nodes(), 0), counted(lg.num_nodes(), 0);
  std::vector<NodeId> stack = {v};
  in_region[v.v] = 1;
  double removable = 0;
  auto count_cast = [&](NodeId c) {
    if (counted[c.v]) return;
    counted[c.v] = 1;
    removable += cur.weights[c.v] * node_time(lg, lg.node(c), d);
  };
  while (!stack.empty()) {
    const Node& n = lg.node(stack.back());
    stack.pop_back();
    for (TensorId t : n.inputs)
      if (t.valid() && lg.tensor(t).producer.valid() && lg.node(lg.tensor(t).producer).op == "Cast")
        count_cast(lg.tensor(t).producer);
    for (TensorId t : n.outputs) {
      if (!t.valid() || lg.tensor(t).dtype != o.low) continue;
      for (NodeId r : consumers[t.v]) {
        if (lg.node(r).op == "Cast") {
          count_cast(r);
        } else if (!in_region[r.v]) {
          in_region[r.v] = 1;
          stack.push_back(r);
        }
      }
    }
  }
  const double slower = cur.weights[v.v] * (node_time(g, f32v, d) - node_time(lg, lg.node(v), d));
  return removable - slower;
}

std::unordered_map<std::string, NodeId> nodes_by_name(const Graph& g) {
  std::unordered_map<std::string, NodeId> m;
  for (uint32_t i = 0; i < g.num_nodes(); ++i)
    m.emplace(g.node(NodeId(i)).name, NodeId(i));
  return m;
}

} // namespace

double precision_step_seconds(const Graph& g, const PrecisionOptions& o, const DeviceProfile& d) {
  const std::vector<double> w = step_weights(g, o);
  double total = 0;
  for (uint32_t i = 0; i < g.num_nodes(); ++i)
    total += w[i] * node_time(g, g.node(NodeId(i)), d);
  return total;
}

PrecisionSelection select_low_precision_ops(const Graph& g, const PrecisionOptions& o,
                                            const DeviceProfile& d) {
  std::vector<std::string> candidates, ops;
  for (NodeId id : g.topo_order()) {
    if (!rule1_candidate(g, g.node(id), o)) continue;
    candidates.push_back(g.node(id).name);
    ops.push_back(g.node(id).op);
  }

  PrecisionSelection r;
  r.low.insert(candidates.begin(), candidates.end());
  Priced cur = priced(g, o, d, r.low);
  r.seconds_all_low = cur.seconds;
  r.seconds_f32 = priced(g, o, d, {}).seconds;
  r.evaluations = 2;
  double cost = r.seconds_all_low;
  const double loss_scaling = loss_scaling_seconds(g, o, d);
  const auto f32_nodes = nodes_by_name(g);
  auto cur_nodes = nodes_by_name(cur.lowered);
  std::vector<double> saving(candidates.size(), 0); // of the last flip to f32, per candidate
  for (bool changed = true; changed && r.sweeps < kMaxSweeps;) {
    changed = false;
    ++r.sweeps;
    for (size_t i = 0; i < candidates.size(); ++i) {
      std::set<std::string> flipped = r.low;
      const bool was_low = flipped.erase(candidates[i]) > 0;
      if (!was_low) flipped.insert(candidates[i]);
      // Emptying S also saves fp16's loss scaling.
      const double last = r.low.size() == 1 ? loss_scaling : 0;
      if (was_low && flip_saving_bound(cur, cur_nodes.at(candidates[i]), g,
                                       g.node(f32_nodes.at(candidates[i])), o, d) +
                             last <=
                         0) {
        ++r.screened;
        continue;
      }
      Priced c = priced(g, o, d, flipped);
      ++r.evaluations;
      if (!(c.seconds < cost * (1 - 1e-9))) continue;
      saving[i] = was_low ? cost - c.seconds : 0;
      r.low = std::move(flipped);
      cost = c.seconds;
      cur = std::move(c);
      cur_nodes = nodes_by_name(cur.lowered);
      changed = true;
    }
  }
  if (r.seconds_f32 < cost * (1 - 1e-9)) { // a local optimum worse than lowering nothing
    std::fill(saving.begin(), saving.end(), 0);
    for (size_t i = 0; i < candidates.size(); ++i)
      if (r.low.count(candidates[i])) saving[i] = cost - r.seconds_f32; // of the whole set
    r.low.clear();
    cost = r.seconds_f32;
  }
  r.seconds = cost;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (r.low.count(candidates[i])) continue;
    r.kept_f32.push_back(candidates[i]);
    r.decisions.push_back(fmt::format("{} '{}': f32 (cost model: {} would add {:.3g} us)", ops[i],
                                      candidates[i], dtype_name(o.low), saving[i] * 1e6));
  }
  return r;
}

} // namespace memplan
