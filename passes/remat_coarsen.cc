// See remat_coarsen.h.
#include "passes/remat_coarsen.h"

#include <algorithm>

#include "passes/remat_exact.h"
#include "passes/remat_fast.h"

namespace memplan {
namespace {

/// Group starts for target size s; cut_on_flip: also where recomputability changes.
std::vector<int32_t> group_starts(const RematProblem& p, int64_t s, bool cut_on_flip) {
  std::vector<int32_t> starts;
  const auto n = static_cast<int32_t>(p.nodes.size());
  for (int32_t i = 0; i < n; ++i) {
    if (starts.empty() || i - starts.back() >= s ||
        (cut_on_flip && p.nodes[i].recomputable != p.nodes[starts.back()].recomputable))
      starts.push_back(i);
  }
  return starts;
}

}  // namespace

RematProblem coarsen_remat_problem(const RematProblem& p, int32_t max_nodes, RematCoarsening* map) {
  const auto n = static_cast<int32_t>(p.nodes.size());
  max_nodes = std::max(max_nodes, 1);
  std::vector<int32_t> starts;
  const bool flip_fits = static_cast<int32_t>(group_starts(p, n, true).size()) <= max_nodes;
  for (int64_t s = std::max<int64_t>(1, (n + max_nodes - 1) / max_nodes); starts.empty();
       s += s / 4 + 1) {
    starts = group_starts(p, s, flip_fits);
    if (static_cast<int32_t>(starts.size()) > max_nodes) starts.clear();
  }
  const auto groups = static_cast<int32_t>(starts.size());
  map->first = starts;
  map->first.push_back(n);
  map->group_of.assign(static_cast<size_t>(n), 0);
  for (int32_t g = 0; g < groups; ++g)
    for (int32_t i = map->first[g]; i < map->first[g + 1]; ++i) map->group_of[i] = g;

  RematProblem c;
  c.fixed_bytes = p.fixed_bytes;
  c.budget = p.budget;
  c.nodes.resize(static_cast<size_t>(groups));
  std::vector<char> boundary(static_cast<size_t>(n), 0);
  for (int32_t i = 0; i < n; ++i) {
    const RematNode& f = p.nodes[i];
    RematNode& g = c.nodes[map->group_of[i]];
    g.cost += f.cost;
    g.recomputable = g.recomputable && f.recomputable;
    g.keep_to_end = g.keep_to_end || f.keep_to_end;
    if (f.keep_to_end) boundary[i] = 1;
    for (int32_t u : f.deps)
      if (map->group_of[u] != map->group_of[i]) {
        boundary[u] = 1;
        g.deps.push_back(map->group_of[u]);
      }
  }
  for (int32_t i = 0; i < n; ++i)
    if (boundary[i]) c.nodes[map->group_of[i]].bytes += p.nodes[i].bytes;
  for (RematNode& g : c.nodes) {
    std::sort(g.deps.begin(), g.deps.end());
    g.deps.erase(std::unique(g.deps.begin(), g.deps.end()), g.deps.end());
  }
  return c;
}

std::vector<std::vector<int32_t>> refine_remat_stages(const RematProblem& fine,
                                                      const RematCoarsening& map,
                                                      const std::vector<std::vector<int32_t>>& coarse) {
  const auto n = static_cast<int32_t>(fine.nodes.size());
  std::vector<std::vector<int32_t>> stages(static_cast<size_t>(n));
  for (size_t t = 0; t < coarse.size(); ++t) {
    const int32_t f0 = map.first[t];
    for (size_t j = 0; j + 1 < coarse[t].size(); ++j) {
      const int32_t u = coarse[t][j];
      for (int32_t v = map.first[u]; v < map.first[u + 1]; ++v) stages[f0].push_back(v);
    }
    stages[f0].push_back(f0);
    for (int32_t f = f0 + 1; f < map.first[t + 1]; ++f) stages[f] = {f};
  }
  // Drop recomputed runs whose output nothing reads before the node's next
  // run: scan backwards, `pending[v]` = a kept run reads v after this point
  // and before v's next kept run.
  std::vector<char> pending(static_cast<size_t>(n), 0);
  for (int32_t v = 0; v < n; ++v) pending[v] = fine.nodes[v].keep_to_end ? 1 : 0;
  for (int32_t t = n - 1; t >= 0; --t) {
    std::vector<int32_t>& st = stages[t];
    std::vector<char> keep(st.size(), 0);
    for (size_t j = st.size(); j-- > 0;) {
      const int32_t v = st[j];
      keep[j] = (j + 1 == st.size()) || pending[v];  // the stage's own node always runs
      if (!keep[j]) continue;
      pending[v] = 0;
      for (int32_t u : fine.nodes[v].deps) pending[u] = 1;
    }
    size_t w = 0;
    for (size_t j = 0; j < st.size(); ++j)
      if (keep[j]) st[w++] = st[j];
    st.resize(w);
  }
  return stages;
}

RematSolution solve_remat_exact_coarsened(const RematProblem& p, const ExactOptions& opts,
                                          int32_t max_nodes) {
  RematCoarsening map;
  RematProblem c = coarsen_remat_problem(p, max_nodes, &map);
  RematSolution best;
  best.note = "no coarse schedule fits";
  for (int solve = 0; solve < 4; ++solve) {
    ExactOptions eo = opts;
    RematSolution warm = solve_remat_fast(c);
    if (warm.feasible) eo.start = warm.stages;
    RematSolution cs = solve_remat_exact(c, eo);
    if (!cs.feasible) {
      if (!best.feasible) best.note = "coarse problem (" + std::to_string(c.nodes.size()) +
                                      " groups): " + cs.note;
      return best;
    }
    const auto stages = refine_remat_stages(p, map, cs.stages);
    const RematSimulation sim = simulate_remat(p, stages);
    if (!sim.valid) {  // the banner's claim broke: report it, never use the schedule
      best.note = "refined coarse schedule is invalid: " + sim.error;
      return best;
    }
    if (sim.peak <= p.budget) {
      best.feasible = true;
      best.proven_optimal = cs.proven_optimal;
      best.stages = stages;
      best.peak = sim.peak;
      best.extra_cost = sim.extra_cost;
      best.note = "";
      return best;
    }
    // The coarse peak ignores the groups' temporaries: tighten by the excess.
    c.budget -= sim.peak - p.budget;
    best.note = "refined coarse schedules stay above the budget";
  }
  return best;
}

}  // namespace memplan
