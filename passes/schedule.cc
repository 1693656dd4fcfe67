#include "passes/schedule.h"

#include <algorithm>
#include <set>

#include "passes/lifetimes.h"

namespace memplan {

std::string_view schedule_method_name(ScheduleMethod m) {
  switch (m) {
    case ScheduleMethod::model_order: return "model";
    case ScheduleMethod::greedy: return "greedy";
    case ScheduleMethod::greedy_lifo: return "greedy-lifo";
    case ScheduleMethod::best: return "best";
  }
  return "?";
}

std::optional<ScheduleMethod> parse_schedule_method(std::string_view s) {
  for (auto m : {ScheduleMethod::model_order, ScheduleMethod::greedy, ScheduleMethod::greedy_lifo,
                 ScheduleMethod::best})
    if (schedule_method_name(m) == s) return m;
  return std::nullopt;
}

namespace {

/// Greedy list scheduling by net allocation. `lifo` breaks ties towards the
/// most recently readied node instead of model order.
std::vector<NodeId> greedy_order(const Graph& g, int64_t alignment, bool lifo) {
  const size_t nn = g.num_nodes(), nt = g.num_tensors();
  std::vector<TensorId> root(nt);
  std::vector<int64_t> size(nt, 0);  // arena bytes of each root, 0 if resident / view
  for (uint32_t i = 0; i < nt; ++i) {
    root[i] = alias_root(g, TensorId(i));
    const Tensor& t = g.tensor(TensorId(i));
    if (root[i].v == i && !is_resident(t.role)) size[i] = align_up(t.bytes(), alignment);
  }
  // Remaining reads of each root's storage; graph outputs are pinned.
  std::vector<int64_t> reads(nt, 0);
  for (const Node& n : g.nodes())
    for (TensorId in : n.inputs)
      if (in.valid()) ++reads[root[in.v].v];
  for (TensorId o : g.outputs) reads[root[o.v].v] += int64_t{1} << 40;

  std::vector<int32_t> pending(nn, 0);
  std::vector<std::vector<uint32_t>> succ(nn);
  auto preds = node_predecessors(g);
  for (uint32_t i = 0; i < nn; ++i) {
    pending[i] = static_cast<int32_t>(preds[i].size());
    for (NodeId p : preds[i]) succ[p.v].push_back(i);
  }

  std::vector<int64_t> ready_seq(nn, 0);
  int64_t seq = 0;
  std::set<uint32_t> ready;
  for (uint32_t i = 0; i < nn; ++i)
    if (pending[i] == 0) ready.insert(i);

  auto score = [&](uint32_t id) {
    const Node& n = g.node(NodeId(id));
    int64_t s = 0;
    for (TensorId o : n.outputs)
      if (o.valid()) s += size[o.v];
    // Storage freed: roots whose every remaining read is by this node.
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      TensorId in = n.inputs[k];
      if (!in.valid()) continue;
      uint32_t r = root[in.v].v;
      bool first = true;
      int64_t here = 0;
      for (size_t j = 0; j < n.inputs.size(); ++j) {
        if (!n.inputs[j].valid() || root[n.inputs[j].v].v != r) continue;
        if (j < k) first = false;
        ++here;
      }
      if (first && here == reads[r]) s -= size[r];
    }
    return s;
  };

  std::vector<NodeId> order;
  order.reserve(nn);
  while (!ready.empty()) {
    uint32_t best = *ready.begin();
    int64_t best_score = score(best);
    for (uint32_t id : ready) {
      int64_t sc = score(id);
      bool better = sc < best_score ||
                    (sc == best_score && lifo && ready_seq[id] > ready_seq[best]);
      if (better) {
        best = id;
        best_score = sc;
      }
    }
    ready.erase(best);
    order.push_back(NodeId(best));
    const Node& n = g.node(NodeId(best));
    for (TensorId in : n.inputs)
      if (in.valid()) --reads[root[in.v].v];
    for (uint32_t c : succ[best])
      if (--pending[c] == 0) {
        ready.insert(c);
        ready_seq[c] = ++seq;
      }
  }
  if (order.size() != nn) throw InternalError("greedy scheduler left nodes unscheduled");
  return order;
}

bool is_update(const Node& n) { return n.op == "SGDUpdate" || n.op == "AdamUpdate"; }

/// Moves updates no other node reads to the end (stable).
void updates_last(const Graph& g, std::vector<NodeId>& order) {
  std::vector<char> read_by_other(g.num_nodes(), 0);
  for (const Node& n : g.nodes()) {
    if (is_update(n)) continue;
    for (TensorId in : n.inputs)
      if (in.valid() && g.tensor(in).producer.valid()) read_by_other[g.tensor(in).producer.v] = 1;
  }
  std::stable_partition(order.begin(), order.end(), [&](NodeId id) {
    return !(is_update(g.node(id)) && !read_by_other[id.v]);
  });
}

}  // namespace

ScheduleResult schedule(const Graph& g, const ScheduleOptions& opts) {
  auto run = [&](ScheduleMethod m) {
    ScheduleResult r;
    r.chosen = m;
    if (m == ScheduleMethod::model_order)
      r.order = g.topo_order();
    else
      r.order = greedy_order(g, opts.alignment, m == ScheduleMethod::greedy_lifo);
    if (!opts.early_updates) updates_last(g, r.order);
    r.lower_bound = compute_lifetimes(g, r.order, opts.alignment).lower_bound;
    return r;
  };
  if (opts.method != ScheduleMethod::best) return run(opts.method);
  ScheduleResult best = run(ScheduleMethod::model_order);
  for (auto m : {ScheduleMethod::greedy, ScheduleMethod::greedy_lifo}) {
    ScheduleResult r = run(m);
    if (r.lower_bound < best.lower_bound) best = std::move(r);
  }
  return best;
}

}  // namespace memplan
