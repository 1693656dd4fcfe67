#include "passes/schedule.h"

#include <algorithm>
#include <optional>
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
using Preds = std::vector<std::vector<NodeId>>;  // node_predecessors(g)

std::vector<NodeId> greedy_order(const Graph& g, const Preds& preds, int64_t alignment, bool lifo) {
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
  for (uint32_t i = 0; i < nn; ++i) {
    pending[i] = static_cast<int32_t>(preds[i].size());
    for (NodeId p : preds[i]) succ[p.v].push_back(i);
  }

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

  // Readers of each root, so that a change of reads[r] rescores only them.
  std::vector<std::vector<uint32_t>> readers(nt);
  for (uint32_t i = 0; i < nn; ++i)
    for (TensorId in : g.node(NodeId(i)).inputs)
      if (in.valid()) {
        auto& list = readers[root[in.v].v];
        if (list.empty() || list.back() != i) list.push_back(i);
      }

  // Ready nodes ordered by (score, tie-break, id): the first one runs next.
  // Ties go to model order, or with `lifo` to the most recently readied node.
  struct Key {
    int64_t score, tie;
    uint32_t id;
    auto operator<=>(const Key&) const = default;
  };
  std::set<Key> ready;
  std::vector<Key> key_of(nn);
  std::vector<char> is_ready(nn, 0);
  int64_t seq = 0;
  auto make_ready = [&](uint32_t id, int64_t readied) {
    key_of[id] = {score(id), lifo ? -readied : 0, id};
    ready.insert(key_of[id]);
    is_ready[id] = 1;
  };
  for (uint32_t i = 0; i < nn; ++i)
    if (pending[i] == 0) make_ready(i, 0);

  std::vector<NodeId> order;
  order.reserve(nn);
  std::vector<uint32_t> touched;
  while (!ready.empty()) {
    const uint32_t best = ready.begin()->id;
    ready.erase(ready.begin());
    is_ready[best] = 0;
    order.push_back(NodeId(best));
    const Node& n = g.node(NodeId(best));
    touched.clear();
    for (TensorId in : n.inputs)
      if (in.valid()) {
        --reads[root[in.v].v];
        touched.push_back(root[in.v].v);
      }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint32_t r : touched)
      for (uint32_t c : readers[r]) {
        if (!is_ready[c]) continue;
        Key k = key_of[c];
        k.score = score(c);
        if (k.score == key_of[c].score) continue;
        ready.erase(key_of[c]);
        key_of[c] = k;
        ready.insert(k);
      }
    for (uint32_t c : succ[best])
      if (--pending[c] == 0) make_ready(c, ++seq);
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

/// Moves each update to right after the last node it must follow (its
/// anchor), keeping the order of everything else: an update then frees its
/// gradient as soon as the gradient is complete.
void updates_early(const Graph& g, const Preds& preds, std::vector<NodeId>& order) {
  std::vector<int32_t> pos(g.num_nodes(), -1);
  for (size_t i = 0; i < order.size(); ++i) pos[order[i].v] = static_cast<int32_t>(i);
  // anchored[a]: updates whose latest predecessor is a, in their old order.
  std::vector<std::vector<NodeId>> anchored(g.num_nodes());
  std::vector<NodeId> unanchored, rest;
  for (NodeId id : order) {
    if (!is_update(g.node(id))) {
      rest.push_back(id);
      continue;
    }
    NodeId anchor;
    for (NodeId p : preds[id.v])
      if (!anchor.valid() || pos[p.v] > pos[anchor.v]) anchor = p;
    (anchor.valid() ? anchored[anchor.v] : unanchored).push_back(id);
  }
  std::vector<NodeId> out;
  out.reserve(order.size());
  std::vector<NodeId> stack;
  auto emit = [&](NodeId id) {  // id, then what is anchored to it (transitively)
    stack.push_back(id);
    while (!stack.empty()) {
      NodeId x = stack.back();
      stack.pop_back();
      out.push_back(x);
      for (auto it = anchored[x.v].rbegin(); it != anchored[x.v].rend(); ++it) stack.push_back(*it);
    }
  };
  for (NodeId id : unanchored) emit(id);
  for (NodeId id : rest) emit(id);
  if (out.size() != order.size()) throw InternalError("updates_early lost nodes");
  order = std::move(out);
}

/// Sum over steps of the live arena bytes (aligned): among orders with the
/// same lower bound, the one that frees memory sooner.
double live_area(const Graph& g, const Lifetimes& lt, int64_t alignment) {
  double area = 0;
  for (size_t i = 0; i < lt.start.size(); ++i)
    if (lt.in_arena[i])
      area += static_cast<double>(align_up(g.tensor(TensorId(static_cast<uint32_t>(i))).bytes(), alignment)) *
              (lt.end[i] - lt.start[i] + 1);
  for (int64_t w : lt.workspace) area += static_cast<double>(w);
  return area;
}

}  // namespace

ScheduleResult schedule(const Graph& g, const ScheduleOptions& opts) {
  double area = 0;  // live_area of the last run
  std::optional<Preds> preds;  // computed once, by the first candidate that needs it
  auto get_preds = [&]() -> const Preds& {
    if (!preds) preds = node_predecessors(g);
    return *preds;
  };
  auto run = [&](ScheduleMethod m) {
    ScheduleResult r;
    r.chosen = m;
    if (m == ScheduleMethod::model_order)
      r.order = g.topo_order();
    else
      r.order = greedy_order(g, get_preds(), opts.alignment, m == ScheduleMethod::greedy_lifo);
    if (!opts.early_updates)
      updates_last(g, r.order);
    else if (m == ScheduleMethod::model_order)
      updates_early(g, get_preds(), r.order);
    const Lifetimes lt = compute_lifetimes(g, r.order, opts.alignment);
    r.lower_bound = lt.lower_bound;
    area = live_area(g, lt, opts.alignment);
    return r;
  };
  if (opts.method != ScheduleMethod::best) return run(opts.method);
  ScheduleResult best = run(ScheduleMethod::model_order);
  double best_area = area;
  for (auto m : {ScheduleMethod::greedy, ScheduleMethod::greedy_lifo}) {
    ScheduleResult r = run(m);
    if (r.lower_bound < best.lower_bound || (r.lower_bound == best.lower_bound && area < best_area)) {
      best = std::move(r);
      best_area = area;
    }
  }
  return best;
}

}  // namespace memplan
