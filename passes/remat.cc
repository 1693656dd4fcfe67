#include "passes/remat.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "passes/lifetimes.h"
#include "passes/remat_coarsen.h"
#include "passes/remat_exact.h"
#include "passes/remat_fast.h"
#include "passes/schedule.h"

namespace memplan {

namespace {

constexpr int32_t kNoLimit = std::numeric_limits<int32_t>::max();

/// The problem built from the graph, with what applying a solution needs.
struct Built {
  std::vector<NodeId> order;  // problem index -> node
  std::vector<char> pseudo;   // entry stands for an extra output of order[i] (never runs)
  RematProblem p;
  int64_t max_workspace = 0;
  int64_t input_bytes = 0;  // graph inputs in the arena, in p.fixed_bytes (aligned)
};

/// BatchNormTraining can be recomputed in a side-effect-free form: a clone
/// with only output 0 (Y) and the running-statistics outputs omitted (the
/// kernel skips omitted outputs; Y depends only on X, scale and B). Its saved
/// statistics are never recomputed (pseudo entries held until backward).
bool y_only_recompute(const Node& n) { return n.op == "BatchNormTraining"; }

/// Tensors along t's alias chain, t first (t, the viewed/overwritten input, ...).
std::vector<TensorId> alias_chain(const Graph& g, TensorId t) {
  std::vector<TensorId> chain;
  while (t.valid()) {
    chain.push_back(t);
    const Tensor& x = g.tensor(t);
    if (!x.producer.valid()) break;
    const Node& n = g.node(x.producer);
    TensorId next;
    for (size_t k = 0; k < n.outputs.size(); ++k)
      if (n.outputs[k] == t) {
        OutputAlias a = output_alias(n.op, k);
        if (a.kind != AliasKind::none) next = n.inputs[a.input];
      }
    t = next;
  }
  return chain;
}

/// Micro-batch replicas (compiler/autodiff_microbatch.cc): replica i >= 1 of
/// node X is named "X/mb<i>", with X's op. The entries of a node and of its
/// copies line up when they have as many entries (workspace, main, extra
/// outputs); each such line becomes a replica set when the replicas are
/// 0..r-1 with no gap and run in replica order.
void find_replicas(const Graph& g, Built& b) {
  std::vector<uint32_t> nodes;  // in base order
  std::vector<std::pair<int32_t, int32_t>> span(g.num_nodes(), {-1, 0});  // node -> (first entry, count)
  for (size_t e = 0; e < b.order.size(); ++e) {
    auto& [first, count] = span[b.order[e].v];
    if (count++ == 0) {
      first = static_cast<int32_t>(e);
      nodes.push_back(b.order[e].v);
    }
  }
  std::unordered_map<std::string_view, uint32_t> by_name;
  for (uint32_t v : nodes) by_name.emplace(g.node(NodeId(v)).name, v);
  std::vector<uint32_t> stems;                                  // replica 0 nodes, in base order
  std::vector<std::vector<uint32_t>> copies(g.num_nodes());      // replica 0 node -> nodes by replica
  for (uint32_t v : nodes) {
    const std::string_view name = g.node(NodeId(v)).name;
    const size_t at = name.rfind("/mb");
    if (at == std::string_view::npos || at + 3 == name.size()) continue;
    int64_t i = 0;
    bool digits = true;
    for (char ch : name.substr(at + 3)) {
      digits = digits && ch >= '0' && ch <= '9' && i < (1 << 20);
      i = i * 10 + (ch - '0');
    }
    if (!digits || i < 1 || name[at + 3] == '0') continue;
    auto stem = by_name.find(name.substr(0, at));
    if (stem == by_name.end() || g.node(NodeId(stem->second)).op != g.node(NodeId(v)).op) continue;
    std::vector<uint32_t>& c = copies[stem->second];
    if (c.empty()) stems.push_back(stem->second);
    if (c.size() <= static_cast<size_t>(i)) c.resize(static_cast<size_t>(i) + 1, UINT32_MAX);
    c[0] = stem->second;
    c[static_cast<size_t>(i)] = v;
  }
  b.p.replica_set.assign(b.p.nodes.size(), -1);
  for (uint32_t stem : stems) {
    const std::vector<uint32_t>& c = copies[stem];
    const int32_t count = span[c[0]].second;
    bool ok = c.size() >= 2;
    for (size_t i = 0; ok && i < c.size(); ++i)
      ok = c[i] != UINT32_MAX && span[c[i]].second == count &&
           (i == 0 || span[c[i]].first > span[c[i - 1]].first);
    if (!ok) continue;
    for (int32_t off = 0; off < count; ++off) {
      std::vector<int32_t> set;
      for (uint32_t v : c) set.push_back(span[v].first + off);
      for (int32_t e : set) b.p.replica_set[e] = static_cast<int32_t>(b.p.replica_sets.size());
      b.p.replica_sets.push_back(std::move(set));
    }
  }
  if (b.p.replica_sets.empty()) b.p.replica_set.clear();
}

Built build_problem(const Graph& g, const RematOptions& o) {
  Built b;
  const std::vector<NodeId> base =
      schedule(g, {.method = ScheduleMethod::best, .alignment = o.alignment,
                   .early_updates = o.early_updates})
          .order;
  Lifetimes lt = compute_lifetimes(g, base, o.alignment);
  for (int64_t w : lt.workspace) b.max_workspace = std::max(b.max_workspace, w);

  // Fixed: resident storage and graph inputs, aligned as plan_memory counts them.
  for (uint32_t i = 0; i < g.num_tensors(); ++i) {
    const Tensor& t = g.tensor(TensorId(i));
    if (lt.root[i].v == i && is_resident(t.role)) b.p.fixed_bytes += align_up(t.bytes(), o.alignment);
  }
  for (TensorId t : g.inputs)
    if (lt.in_arena[t.v]) b.input_bytes += align_up(g.tensor(t).bytes(), o.alignment);
  b.p.fixed_bytes += b.input_bytes;

  // Not recomputable: in-place writers, producers of overwritten storage,
  // nodes with a graph output. Kept to the end: owners of graph outputs' storage.
  std::vector<int32_t> base_pos(g.num_nodes(), -1);
  for (size_t i = 0; i < base.size(); ++i) base_pos[base[i].v] = static_cast<int32_t>(i);
  std::vector<int32_t> overwritten_at(g.num_tensors(), kNoLimit);  // base position of the first overwrite
  std::vector<char> fixed_node(g.num_nodes(), 0), keep_tensor(g.num_tensors(), 0);
  for (NodeId id : base) {
    const Node& nd = g.node(id);
    for (size_t k = 0; k < nd.outputs.size(); ++k) {
      if (!nd.outputs[k].valid()) continue;
      OutputAlias a = output_alias(nd.op, k);
      if (a.kind != AliasKind::inplace) continue;
      if (!y_only_recompute(nd)) fixed_node[id.v] = 1;
      TensorId in = nd.inputs[a.input];
      if (!in.valid()) continue;
      for (TensorId c : alias_chain(g, in)) {
        overwritten_at[c.v] = std::min(overwritten_at[c.v], base_pos[id.v]);
        if (g.tensor(c).producer.valid()) fixed_node[g.tensor(c).producer.v] = 1;
      }
    }
  }
  for (TensorId t : g.outputs) {
    for (TensorId c : alias_chain(g, t)) {
      const NodeId pr = g.tensor(c).producer;
      // (BatchNormTraining's running statistics are graph outputs, but its
      // Y-only clones never write them.)
      if (pr.valid() && !(y_only_recompute(g.node(pr)) && g.node(pr).outputs[0] != c))
        fixed_node[pr.v] = 1;
      if (lt.in_arena[c.v] && lt.root[c.v] == c) keep_tensor[c.v] = 1;
    }
  }

  // Problem entries: one per node; a non-recomputable node with several
  // storage-owning outputs gets one entry per output (the extra ones are
  // pseudo entries that never run), so each output dies at its own last use
  // (BatchNorm's output vs. its saved statistics).
  std::vector<int32_t> entry_of(g.num_tensors(), -1);
  for (NodeId id : base) {
    const Node& nd = g.node(id);
    const bool fixed = fixed_node[id.v] != 0;
    // The op's workspace: a pseudo entry just before it, reading what it
    // reads, that it depends on: live exactly while the op runs (and free to
    // recompute before a recomputation of the op).
    int32_t ws_entry = -1;
    if (const int64_t ws = lt.workspace[base_pos[id.v]]; ws > 0) {
      ws_entry = static_cast<int32_t>(b.p.nodes.size());
      b.order.push_back(id);
      b.pseudo.push_back(1);
      RematNode w;
      w.bytes = ws;
      w.cost = 1e-12;
      for (TensorId t : nd.inputs)
        if (t.valid())
          for (TensorId c : alias_chain(g, t))
            if (entry_of[c.v] >= 0) w.deps.push_back(entry_of[c.v]);
      std::sort(w.deps.begin(), w.deps.end());
      w.deps.erase(std::unique(w.deps.begin(), w.deps.end()), w.deps.end());
      b.p.nodes.push_back(w);
    }
    const int32_t main = static_cast<int32_t>(b.p.nodes.size());
    b.order.push_back(id);
    b.pseudo.push_back(0);
    b.p.nodes.emplace_back();
    int32_t limit = kNoLimit;  // base position of the first in-place overwrite of an input
    {
      RematNode& rn = b.p.nodes.back();
      rn.cost = node_time(g, nd, o.device);
      rn.recomputable = !fixed;
    }
    bool first = true;
    for (TensorId t : nd.outputs) {
      if (!t.valid()) continue;
      entry_of[t.v] = main;
      if (!(lt.in_arena[t.v] && lt.root[t.v] == t)) continue;
      const int64_t bytes = align_up(g.tensor(t).bytes(), o.alignment);
      if (first || !(fixed || y_only_recompute(nd))) {
        b.p.nodes[main].bytes += bytes;
        b.p.nodes[main].keep_to_end |= keep_tensor[t.v] != 0;
        first = false;
        continue;
      }
      const int32_t e = static_cast<int32_t>(b.p.nodes.size());
      b.order.push_back(id);
      b.pseudo.push_back(1);
      RematNode rn;
      rn.deps = {main};
      rn.bytes = bytes;
      rn.recomputable = false;
      rn.keep_to_end = keep_tensor[t.v] != 0;
      b.p.nodes.push_back(rn);
      entry_of[t.v] = e;
    }
    RematNode& rn = b.p.nodes[main];
    if (ws_entry >= 0) rn.deps.push_back(ws_entry);
    for (size_t k = 0; k < nd.inputs.size(); ++k) {
      const TensorId t = nd.inputs[k];
      if (!t.valid() || (y_only_recompute(nd) && k >= 3)) continue;  // clones read the updated stats
      for (TensorId c : alias_chain(g, t)) {
        limit = std::min(limit, overwritten_at[c.v]);
        if (entry_of[c.v] >= 0) rn.deps.push_back(entry_of[c.v]);
      }
    }
    rn.recompute_until = limit;  // a base position until every entry exists
    std::sort(rn.deps.begin(), rn.deps.end());
    rn.deps.erase(std::unique(rn.deps.begin(), rn.deps.end()), rn.deps.end());
  }
  // Limits are base positions of the overwriting node; make them entry indices.
  std::vector<int32_t> entry_pos(base.size(), 0);
  for (size_t e = 0; e < b.order.size(); ++e)
    if (!b.pseudo[e]) entry_pos[base_pos[b.order[e].v]] = static_cast<int32_t>(e);
  for (RematNode& rn : b.p.nodes)
    if (rn.recompute_until != kNoLimit) rn.recompute_until = entry_pos[rn.recompute_until];
  find_replicas(g, b);
  return b;
}

/// Both solvers honour RematNode::recompute_until; a rerun past it would
/// read a value an in-place op has overwritten, so it is a bug, not a plan.
void check_limits(const Graph& g, const Built& b, const RematSolution& s) {
  for (size_t t = 0; t < s.stages.size(); ++t)
    for (int32_t v : s.stages[t])
      if (v != static_cast<int32_t>(t) && static_cast<int32_t>(t) > b.p.nodes[v].recompute_until)
        throw InternalError(fmt::format(
            "remat: the schedule reruns '{}' in stage {}, after the in-place write of stage {} to "
            "an input it reads", g.node(b.order[v]).name, t, b.p.nodes[v].recompute_until));
}

/// input_bytes: the graph inputs in p.fixed_bytes. The fast solver's ladder
/// limit is against the problem's floor, which counts them: it runs exactly
/// when the reported floor (without them) is below the caller's limit.
RematSolution solve(const RematProblem& p, const RematOptions& o, int64_t input_bytes) {
  FastOptions fo;
  fo.lower_peak_floor_limit = o.lower_peak_floor_limit > INT64_MAX - input_bytes
                                  ? INT64_MAX
                                  : o.lower_peak_floor_limit + input_bytes;
  RematSolution fast = solve_remat_fast(p, fo);
  if (o.solver == "fast") return fast;
  if (o.solver != "exact") throw Error("--remat-solver " + o.solver + ": use fast or exact");
  ExactOptions eo;
  eo.time_limit_s = o.exact_time_limit_s;
  const bool coarse = static_cast<int64_t>(p.nodes.size()) > o.exact_max_nodes;
  if (fast.feasible && !coarse) eo.start = fast.stages;
  RematSolution ex = coarse ? solve_remat_exact_coarsened(p, eo, o.exact_max_nodes)
                            : solve_remat_exact(p, eo);
  if (ex.feasible && (!fast.feasible || ex.extra_cost <= fast.extra_cost)) return ex;
  if (!ex.note.empty()) fast.note += "; exact: " + ex.note;
  return fast;
}

/// Applies the stages to g (see the banner); returns the run order.
struct Applier {
  Graph& g;
  const Built& b;
  RematResult& r;
  std::vector<TensorId> cur;        // original tensor -> its current copy
  std::vector<TensorId> built_from; // view output (original id) -> input copy its current copy views
  std::vector<int32_t> runs;        // per graph node: runs so far
  std::map<uint32_t, std::vector<TensorId>> orig_in;  // node -> inputs before rewiring

  const std::vector<TensorId>& inputs_of(NodeId id) {
    auto it = orig_in.find(id.v);
    return it != orig_in.end() ? it->second : g.node(id).inputs;
  }

  TensorId resolve(TensorId t) {
    if (!t.valid()) return t;
    NodeId p = g.tensor(t).producer;
    if (p.valid() && is_view_op(g.node(p).op) && g.node(p).outputs[0] == t) {
      TensorId src = resolve(inputs_of(p)[0]);
      if (src != built_from[t.v]) run(p, std::nullopt);  // stale view: clone it (free)
    }
    return cur[t.v];
  }

  void run(NodeId id, std::optional<std::string> before) {
    const int32_t k = runs[id.v]++;
    if (k == 0) {
      orig_in[id.v] = g.node(id).inputs;
      std::vector<TensorId> ins = g.node(id).inputs;
      for (TensorId& t : ins) t = resolve(t);
      g.node(id).inputs = ins;
      r.schedule.push_back(id);
      if (is_view_op(g.node(id).op)) built_from[g.node(id).outputs[0].v] = ins[0];
      return;
    }
    Node c = g.node(id);  // copy: add_node may reallocate
    const std::string orig_name = c.name;
    const std::vector<TensorId> orig_outs = c.outputs;
    c.inputs = inputs_of(id);
    if (y_only_recompute(c)) {
      // Y only; read the running statistics' updated versions (never
      // overwritten again), whose values the clone does not use.
      for (size_t j = 3; j < c.inputs.size() && j - 2 < c.outputs.size(); ++j)
        if (c.outputs[j - 2].valid()) c.inputs[j] = c.outputs[j - 2];
      c.outputs.resize(std::min<size_t>(c.outputs.size(), 3));
      for (size_t j = 1; j < c.outputs.size(); ++j) c.outputs[j] = TensorId();
    }
    for (TensorId& t : c.inputs) t = resolve(t);
    std::string suffix = "/remat" + std::to_string(k);
    c.name = orig_name + suffix;
    if (!c.attrs.count("rng_key")) c.attrs["rng_key"] = orig_name;
    int64_t bytes = 0;
    for (TensorId& t : c.outputs) {
      if (!t.valid()) continue;
      Tensor nt = g.tensor(t);
      nt.name += suffix;
      while (g.find_tensor(nt.name)) nt.name += "'";
      nt.role = Role::activation;
      nt.producer = NodeId();
      nt.data = nullptr;
      bytes += nt.bytes();
      t = g.add_tensor(std::move(nt));
    }
    while (std::any_of(g.nodes().begin(), g.nodes().end(),
                                                [&](const Node& x) { return x.name == c.name; }))
      c.name += "'";
    const std::vector<TensorId> new_outs = c.outputs;
    const std::string op = c.op;
    NodeId nid = g.add_node(std::move(c));
    cur.resize(g.num_tensors());
    built_from.resize(g.num_tensors());
    for (size_t j = 0; j < orig_outs.size(); ++j)
      if (orig_outs[j].valid() && j < new_outs.size() && new_outs[j].valid()) {
        cur[orig_outs[j].v] = new_outs[j];
        cur[new_outs[j].v] = new_outs[j];
      }
    if (is_view_op(op)) built_from[orig_outs[0].v] = g.node(nid).inputs[0];
    runs.push_back(1);
    r.schedule.push_back(nid);
    ++r.recomputed_nodes;
    if (before) {
      r.decisions.push_back(fmt::format("recompute '{}' ({} bytes) before '{}'", orig_name, bytes, *before));
      r.recomputes.push_back({orig_name, *before, bytes, 0.0});
    }
  }
};

}  // namespace

RematProblem remat_problem(const Graph& g, const RematOptions& o) {
  Built b = build_problem(g, o);
  b.p.budget = o.budget_bytes;
  return std::move(b.p);
}

RematResult rematerialize(Graph& g, const RematOptions& o) {
  RematResult r;
  Built b = build_problem(g, o);
  r.fixed_bytes = b.p.fixed_bytes;
  b.p.budget = o.budget_bytes;  // the problem peak includes fixed_bytes; workspaces are pseudo entries
  // The problem holds the graph inputs all step; a plan frees each after its
  // last use (labels after the loss), so its peak can be below the problem's
  // floor by up to their bytes (resnet18 at k=1: by 256 bytes, the labels).
  r.problem_floor = remat_peak_floor(b.p);
  r.floor_bytes = r.problem_floor - b.input_bytes;
  if (r.floor_bytes > o.budget_bytes && r.floor_bytes >= o.lower_peak_floor_limit) {
    // No schedule fits, and the caller wants no lower peak (RematOptions).
    r.not_solved = true;
    r.note = fmt::format("infeasible: budget {} bytes; floor is {} bytes", o.budget_bytes, r.floor_bytes);
    return r;
  }
  const RematSolution s = solve(b.p, o, b.input_bytes);
  check_limits(g, b, s);
  r.fits = s.feasible;
  r.note = s.note;
  r.problem_peak = s.peak;

  Applier ap{g, b, r, {}, {}, std::vector<int32_t>(g.num_nodes(), 0), {}};
  ap.cur.resize(g.num_tensors());
  ap.built_from.resize(g.num_tensors());
  for (uint32_t i = 0; i < g.num_tensors(); ++i) ap.cur[i] = TensorId(i);
  for (size_t t = 0; t < s.stages.size(); ++t) {
    const std::string stage_name = g.node(b.order[t]).name;
    for (int32_t v : s.stages[t]) {
      if (b.pseudo[v]) continue;  // an extra output of a node that ran already
      const bool recompute = v != static_cast<int32_t>(t);
      if (recompute) {
        const double secs = b.p.nodes[v].cost;
        r.extra_seconds += secs;
        ap.run(b.order[v], stage_name);
        r.decisions.back() += fmt::format(": +{:.3g} s", secs);
        r.recomputes.back().seconds = secs;
      } else {
        ap.run(b.order[v], std::nullopt);
      }
    }
  }
  return r;
}

namespace {

/// One rematerialization of a copy of `original` aimed at `target`, planned.
struct Try {
  Graph graph;
  RematResult remat;
  Plan plan;
};

Try try_target(const Graph& original, const PlanMemoryOptions& po, const RematOptions& o,
               int64_t target, int64_t budget) {
  Try t{original, {}, {}};
  RematOptions ro = o;
  ro.budget_bytes = target;
  t.remat = rematerialize(t.graph, ro);
  if (t.remat.not_solved) return t;  // nothing applied: no plan
  PlanMemoryOptions pr = po;
  pr.budget_bytes = budget;
  pr.order = t.remat.schedule;
  t.plan = plan_memory(t.graph, pr);
  return t;
}

/// Whether the real peak of a try aimed below the solver's floor is a budget
/// every compile at or above it fits. The solver's result does not depend on
/// the budget below the floor, but its peak-lowering ladder is skipped when
/// the floor is at or above lower_peak_floor_limit (which differs between
/// compiles). A compile at B >= peak >= floor passes a limit above B (the
/// budget search: B + 1 in its first pass), so the ladder runs there too: the
/// claim holds when it ran here and peak >= floor.
bool sure(const RematResult& rr, const RematOptions& o, int64_t peak) {
  return peak >= rr.floor_bytes && rr.floor_bytes < o.lower_peak_floor_limit;
}

/// Tries to fit `budget`: rematerializes a copy of `original` at decreasing
/// internal targets until the real arena plan fits. When no target fits and
/// none was below the solver's floor, a last try aims below it (see the
/// banner). Sets fit->sure_fit from the try below the floor. Returns the
/// lowest peak reached; on success fills *fit (and *fitted_graph) with the
/// fitting plan and sets fit->used_remat.
int64_t try_budget(const Graph& original, const PlanMemoryOptions& po, const RematOptions& o,
                   int64_t budget, int max_attempts, RematFit* fit, Graph* fitted_graph) {
  int64_t best_peak = INT64_MAX;
  int64_t target = budget;
  bool below_floor = false;  // a try aimed below the floor ran (the lowest-peak one)
  auto accept = [&](Try& t) {
    *fitted_graph = std::move(t.graph);
    fit->plan = std::move(t.plan);
    fit->used_remat = true;
    fit->remat = std::move(t.remat);
  };
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    Try t = try_target(original, po, o, target, budget);
    const RematResult& rr = t.remat;
    fit->note = rr.note;
    fit->floor_bytes = rr.floor_bytes;
    if (rr.not_solved) return best_peak;  // below the floor, and no lower peak wanted
    const int64_t peak = t.plan.summary.peak_bytes;
    const bool placed = t.plan.offset_method != kOffsetsSkipped;  // else peak is a lower bound
    best_peak = std::min(best_peak, peak);
    if (target < rr.problem_floor) {
      below_floor = true;
      if (placed && sure(rr, o, peak)) fit->sure_fit = std::min(fit->sure_fit, peak);
    }
    if (placed && peak <= budget) {
      accept(t);
      return best_peak;
    }
    if (!rr.fits) break;  // the solver bottomed out: lower targets cannot help
    const int64_t over = peak - budget;
    const int64_t next = std::min(target - over, target - (target - rr.fixed_bytes) / 16);
    if (next <= rr.fixed_bytes) break;
    target = next;
  }
  if (below_floor) return best_peak;
  // Every target was at or above the floor, where the solver stops at the
  // first schedule it finds within the target. Aimed below the floor it
  // lowers the peak as far as it can instead; this plan fits every budget at
  // or above its peak, whatever the budget (the result does not depend on it).
  Try t = try_target(original, po, o, 0, budget);
  const int64_t peak = t.plan.summary.peak_bytes;
  const bool placed = t.plan.offset_method != kOffsetsSkipped;
  best_peak = std::min(best_peak, peak);
  if (placed && sure(t.remat, o, peak)) fit->sure_fit = std::min(fit->sure_fit, peak);
  if (placed && peak <= budget) {
    fit->note.clear();
    accept(t);
  } else {
    fit->note = t.remat.note;
  }
  return best_peak;
}

}  // namespace

RematFit try_fit_budget(Graph& g, const PlanMemoryOptions& popts, const RematOptions& o,
                        const std::optional<UnconstrainedPeak>& known) {
  RematFit f;
  PlanMemoryOptions po = popts;
  po.budget_bytes = o.budget_bytes;
  if (known) {
    if (known->peak_bytes <= o.budget_bytes)
      throw InternalError("try_fit_budget: the known unconstrained peak fits the budget");
    f.plan.budget_bytes = o.budget_bytes;
    f.plan.summary.peak_bytes = known->peak_bytes;
    f.plan.summary.resident_bytes = known->resident_bytes;
  } else {
    f.plan = plan_memory(g, po);
  }
  f.unconstrained_peak = f.plan.summary.peak_bytes;
  f.best_peak = f.plan.summary.peak_bytes;
  f.sure_fit = f.unconstrained_peak;
  if (f.plan.summary.peak_bytes <= o.budget_bytes) {
    f.fits = true;
    return f;
  }
  const Graph original = g;
  Graph fitted;
  f.best_peak = std::min(f.best_peak, try_budget(original, po, o, o.budget_bytes, 10, &f,
                                                 &fitted));
  if (f.used_remat) {
    g = std::move(fitted);
    f.fits = true;
  }
  return f;
}

RematFit fit_to_budget(Graph& g, const PlanMemoryOptions& popts, const RematOptions& o) {
  RematFit f = try_fit_budget(g, popts, o);
  if (f.fits) return f;
  const int64_t resident = f.plan.summary.resident_bytes;
  const int64_t unconstrained = f.unconstrained_peak;
  const int64_t hi = f.sure_fit;
  throw Error(fmt::format(
      "cannot fit {} bytes: the smallest budget found that fits is {} bytes (so does every larger "
      "one; rematerialization bottomed out{}; resident storage alone is {} bytes; without rematerialization the peak "
      "is {} bytes)",
      o.budget_bytes, hi,
      f.floor_bytes <= 0 ? ""
                         : fmt::format(": no plan goes below its floor of {} bytes (resident storage, the largest "
                                       "op's working set and what must stay live across it)",
                                       f.floor_bytes),
      resident, unconstrained));
}

}  // namespace memplan
