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

/// The coarse nodes of the groups starting at `starts`: per group its
/// recomputable members and its fixed ones, as one node when the group is
/// pure, else as two (the part read by the other first) or, when each part
/// reads the other, as one fixed node.
std::vector<std::vector<int32_t>> split_groups(const RematProblem& p, const std::vector<int32_t>& starts) {
  const auto n = static_cast<int32_t>(p.nodes.size());
  std::vector<std::vector<int32_t>> out;
  for (size_t g = 0; g < starts.size(); ++g) {
    const int32_t lo = starts[g], hi = g + 1 < starts.size() ? starts[g + 1] : n;
    std::vector<int32_t> rec, fix;
    for (int32_t i = lo; i < hi; ++i) (p.nodes[i].recomputable ? rec : fix).push_back(i);
    if (rec.empty() || fix.empty()) {
      out.push_back(rec.empty() ? fix : rec);
      continue;
    }
    auto reads = [&](const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
      for (int32_t i : a)
        for (int32_t u : p.nodes[i].deps)
          if (u >= lo && std::binary_search(b.begin(), b.end(), u)) return true;
      return false;
    };
    const bool fix_reads_rec = reads(fix, rec), rec_reads_fix = reads(rec, fix);
    if (fix_reads_rec && rec_reads_fix) {
      std::vector<int32_t> all(static_cast<size_t>(hi - lo));
      for (int32_t i = lo; i < hi; ++i) all[i - lo] = i;
      out.push_back(std::move(all));
    } else if (rec_reads_fix) {
      out.push_back(std::move(fix));
      out.push_back(std::move(rec));
    } else {
      out.push_back(std::move(rec));
      out.push_back(std::move(fix));
    }
  }
  return out;
}

/// Groups of about n / max_nodes consecutive nodes (growing until they give
/// at most max_nodes coarse nodes), cut on flips when `flip`, mixed groups
/// split when `split` (else one node each).
std::vector<std::vector<int32_t>> make_parts(const RematProblem& p, int32_t max_nodes, bool flip, bool split) {
  const auto n = static_cast<int32_t>(p.nodes.size());
  std::vector<std::vector<int32_t>> parts;
  for (int64_t s = std::max<int64_t>(1, (n + max_nodes - 1) / max_nodes);; s += s / 4 + 1) {
    const std::vector<int32_t> starts = group_starts(p, s, flip);
    if (split) {
      parts = split_groups(p, starts);
    } else {
      parts.assign(starts.size(), {});
      for (size_t g = 0; g < starts.size(); ++g)
        for (int32_t i = starts[g]; i < (g + 1 < starts.size() ? starts[g + 1] : n); ++i) parts[g].push_back(i);
    }
    if (static_cast<int32_t>(parts.size()) <= max_nodes) return parts;
    if (s >= n) return make_parts(p, max_nodes, false, false);  // max_nodes = 1 and one mixed group
  }
}

RematProblem build_coarse(const RematProblem& p, std::vector<std::vector<int32_t>> parts, RematCoarsening* map) {
  const auto n = static_cast<int32_t>(p.nodes.size());
  const auto groups = static_cast<int32_t>(parts.size());
  map->group_of.assign(static_cast<size_t>(n), 0);
  map->anchor.assign(static_cast<size_t>(groups), 0);
  for (int32_t g = 0; g < groups; ++g) {
    for (int32_t i : parts[g]) map->group_of[i] = g;
    map->anchor[g] = parts[g].front();
  }
  map->members = std::move(parts);

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
  // A coarse node's reruns run at the anchor of their stage: allowed up to
  // the last stage T whose anchor, and every earlier one's, is within the
  // limit of every member.
  for (int32_t g = 0; g < groups; ++g) {
    int32_t until = INT32_MAX;
    for (int32_t i : map->members[g]) until = std::min(until, p.nodes[i].recompute_until);
    if (until == INT32_MAX) continue;
    int32_t t = -1;
    while (t + 1 < groups && map->anchor[t + 1] <= until) ++t;
    c.nodes[g].recompute_until = t;
  }
  for (RematNode& g : c.nodes) {
    std::sort(g.deps.begin(), g.deps.end());
    g.deps.erase(std::unique(g.deps.begin(), g.deps.end()), g.deps.end());
  }
  return c;
}

}  // namespace

RematProblem coarsen_remat_problem(const RematProblem& p, int32_t max_nodes, RematCoarsening* map) {
  const auto n = static_cast<int32_t>(p.nodes.size());
  max_nodes = std::max(max_nodes, 1);
  // Pure groups when they fit: cut also where recomputability changes.
  if (static_cast<int32_t>(group_starts(p, n, true).size()) <= max_nodes)
    return build_coarse(p, make_parts(p, max_nodes, true, false), map);
  // Else mixed groups, whole or split: the one whose floor is the lower
  // fraction of its peak without recomputation (the wider range of budgets).
  RematCoarsening whole_map;
  RematProblem whole = build_coarse(p, make_parts(p, max_nodes, false, false), &whole_map);
  RematProblem split = build_coarse(p, make_parts(p, max_nodes, false, true), map);
  auto reach = [](const RematProblem& c) {
    return static_cast<double>(remat_floor(c)) / static_cast<double>(simulate_remat(c, no_remat_stages(c)).peak);
  };
  if (reach(split) < reach(whole)) return split;
  *map = std::move(whole_map);
  return whole;
}

std::vector<std::vector<int32_t>> refine_remat_stages(const RematProblem& fine,
                                                      const RematCoarsening& map,
                                                      const std::vector<std::vector<int32_t>>& coarse) {
  const auto n = static_cast<int32_t>(fine.nodes.size());
  std::vector<std::vector<int32_t>> stages(static_cast<size_t>(n));
  for (int32_t f = 0; f < n; ++f) stages[f] = {f};
  for (size_t t = 0; t < coarse.size(); ++t) {
    std::vector<int32_t> runs;
    for (size_t j = 0; j + 1 < coarse[t].size(); ++j) {
      const int32_t u = coarse[t][j];
      // The other part of t's group, interleaved with t: its outputs are
      // still held from their first runs (a coarse optimum never reruns it
      // here; an incumbent might).
      if (map.members[u].back() >= map.anchor[t]) continue;
      runs.insert(runs.end(), map.members[u].begin(), map.members[u].end());
    }
    std::vector<int32_t>& st = stages[map.anchor[t]];
    st.insert(st.begin(), runs.begin(), runs.end());
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
