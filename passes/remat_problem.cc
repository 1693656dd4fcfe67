// simulate_remat: an independent replay of a rematerialization schedule.
//
// 1. Validate the shape: n stages, stage t non-empty, ending with t, every
//    node index in [0, t] (a stage only recomputes earlier nodes, as in
//    Checkmate), non-recomputable nodes exactly once (in their own stage).
// 2. Flatten the stages into one run sequence and list, per node, its events
//    in order: a "compute" at each of its runs and a "read" at each run of a
//    node that depends on it.
// 3. Replay: before a run, every dependency must be held (computed and not
//    freed). Memory at the run = fixed + held outputs + the running node's
//    output (inputs and output together). After the run, free every held
//    output whose next event is a recomputation or that has no next event,
//    unless it is keep_to_end.
// It shares no code with the solvers on purpose.
#include "passes/remat_problem.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>

namespace memplan {
namespace {

struct Event {
  size_t pos;    // index in the flattened run sequence
  bool compute;  // true: the node itself runs; false: a user reads it
};

std::string check_problem(const RematProblem& p) {
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const RematNode& node = p.nodes[i];
    if (node.bytes < 0) return fmt::format("node {} has negative bytes", i);
    if (node.cost < 0) return fmt::format("node {} has negative cost", i);
    for (int32_t d : node.deps) {
      if (d < 0 || static_cast<size_t>(d) >= i) return fmt::format("node {} depends on {}, not an earlier node", i, d);
    }
  }
  return {};
}

std::string check_stages(const RematProblem& p, const std::vector<std::vector<int32_t>>& stages) {
  const size_t n = p.nodes.size();
  if (stages.size() != n) return fmt::format("{} stages for {} nodes", stages.size(), n);
  std::vector<int> runs(n, 0);
  for (size_t t = 0; t < n; ++t) {
    const auto& stage = stages[t];
    if (stage.empty()) return fmt::format("stage {} is empty", t);
    if (stage.back() != static_cast<int32_t>(t)) return fmt::format("stage {} ends with {}, not {}", t, stage.back(), t);
    for (int32_t v : stage) {
      if (v < 0 || static_cast<size_t>(v) > t) return fmt::format("stage {} runs node {}, outside [0, {}]", t, v, t);
      if (static_cast<size_t>(v) != t && static_cast<int64_t>(t) > p.nodes[static_cast<size_t>(v)].recompute_until)
        return fmt::format("stage {} reruns node {}, which may rerun only up to stage {}", t, v,
                           p.nodes[static_cast<size_t>(v)].recompute_until);
      ++runs[static_cast<size_t>(v)];
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (!p.nodes[i].recomputable && runs[i] != 1) return fmt::format("node {} is not recomputable but runs {} times", i, runs[i]);
  }
  return {};
}

}  // namespace

RematSimulation simulate_remat(const RematProblem& p, const std::vector<std::vector<int32_t>>& stages) {
  RematSimulation sim;
  if (std::string e = check_problem(p); !e.empty()) {
    sim.error = "bad problem: " + e;
    return sim;
  }
  if (std::string e = check_stages(p, stages); !e.empty()) {
    sim.error = e;
    return sim;
  }
  const size_t n = p.nodes.size();

  // Deduplicated dependency lists: a node reading one input twice holds it once.
  std::vector<std::vector<int32_t>> deps(n);
  for (size_t i = 0; i < n; ++i) {
    deps[i] = p.nodes[i].deps;
    std::sort(deps[i].begin(), deps[i].end());
    deps[i].erase(std::unique(deps[i].begin(), deps[i].end()), deps[i].end());
  }

  std::vector<int32_t> seq;
  for (const auto& stage : stages) seq.insert(seq.end(), stage.begin(), stage.end());

  std::vector<std::vector<Event>> events(n);
  for (size_t pos = 0; pos < seq.size(); ++pos) {
    const auto v = static_cast<size_t>(seq[pos]);
    for (int32_t d : deps[v]) events[static_cast<size_t>(d)].push_back({pos, false});
    events[v].push_back({pos, true});
  }
  std::vector<size_t> cursor(n, 0);  // events[i][cursor[i]] is i's next event not yet passed

  std::vector<bool> held(n, false), computed_once(n, false);
  int64_t held_bytes = 0;
  sim.peak = p.fixed_bytes;
  for (size_t pos = 0; pos < seq.size(); ++pos) {
    const auto v = static_cast<size_t>(seq[pos]);
    for (int32_t d : deps[v]) {
      if (!held[static_cast<size_t>(d)]) {
        sim.error = fmt::format("run {} (node {}) needs node {}, which is not in memory", pos, v, d);
        return sim;
      }
    }
    if (computed_once[v]) sim.extra_cost += p.nodes[v].cost;
    computed_once[v] = true;
    // A keep_to_end output recomputed while held is overwritten in place.
    if (!held[v]) {
      held[v] = true;
      held_bytes += p.nodes[v].bytes;
    }
    sim.peak = std::max(sim.peak, p.fixed_bytes + held_bytes);

    // Pass this run's events, then free what is not read again before it is
    // recomputed (only v and its dependencies can change status here).
    auto settle = [&](size_t i) {
      while (cursor[i] < events[i].size() && events[i][cursor[i]].pos <= pos) ++cursor[i];
      if (!held[i] || p.nodes[i].keep_to_end) return;
      bool read_next = cursor[i] < events[i].size() && !events[i][cursor[i]].compute;
      if (!read_next) {
        held[i] = false;
        held_bytes -= p.nodes[i].bytes;
      }
    };
    for (int32_t d : deps[v]) settle(static_cast<size_t>(d));
    settle(v);
  }
  sim.valid = true;
  return sim;
}

std::vector<std::vector<int32_t>> no_remat_stages(const RematProblem& p) {
  std::vector<std::vector<int32_t>> stages(p.nodes.size());
  for (size_t t = 0; t < stages.size(); ++t) stages[t] = {static_cast<int32_t>(t)};
  return stages;
}

}  // namespace memplan
