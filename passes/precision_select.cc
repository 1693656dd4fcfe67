// Cost-aware precision selection: see passes/precision_select.h.
#include "passes/precision_select.h"

#include <optional>
#include <regex>

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

double priced(const Graph& g, const PrecisionOptions& o, const DeviceProfile& d,
              const std::set<std::string>& low) {
  Graph copy = g;
  PrecisionOptions lo = o;
  lo.select = PrecisionSelect::all;
  lo.only_nodes = low;
  (void)lower_precision(copy, lo);
  return precision_step_seconds(copy, o, d);
}

} // namespace

double precision_step_seconds(const Graph& g, const PrecisionOptions& o, const DeviceProfile& d) {
  std::vector<char> needs_grad(g.num_tensors(), 0);
  if (o.training) {
    const std::optional<std::regex> re = frozen_regex(o);
    for (uint32_t i = 0; i < g.num_tensors(); ++i) {
      const Tensor& t = g.tensor(TensorId(i));
      if (t.role == Role::parameter && is_float(t.dtype) && !(re && std::regex_search(t.name, *re)))
        needs_grad[i] = 1;
    }
  }
  double total = 0;
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    int grads = 0; // float operands whose gradient the backward pass computes
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      TensorId t = n.inputs[i];
      if (!float_slot(g, t) || !needs_grad[t.v]) continue;
      if (!is_matmul_class(n.op) || i < 2) ++grads;
    }
    const double weight = 1.0 + (is_matmul_class(n.op) ? grads : std::min(grads, 1));
    total += weight * node_time(g, n, d);
    if (grads > 0)
      for (TensorId t : n.outputs)
        if (float_slot(g, t)) needs_grad[t.v] = 1;
  }
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
  r.seconds_all_low = priced(g, o, d, r.low);
  r.seconds_f32 = priced(g, o, d, {});
  r.evaluations = 2;
  double cost = r.seconds_all_low;
  std::vector<double> saving(candidates.size(), 0); // of the last flip to f32, per candidate
  for (bool changed = true; changed && r.sweeps < kMaxSweeps;) {
    changed = false;
    ++r.sweeps;
    for (size_t i = 0; i < candidates.size(); ++i) {
      std::set<std::string> flipped = r.low;
      const bool was_low = flipped.erase(candidates[i]) > 0;
      if (!was_low) flipped.insert(candidates[i]);
      const double c = priced(g, o, d, flipped);
      ++r.evaluations;
      if (!(c < cost * (1 - 1e-9))) continue;
      saving[i] = was_low ? cost - c : 0;
      r.low = std::move(flipped);
      cost = c;
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
