// Random rematerialization problems for the remat solver tests, shared by the
// exact (remat_exact_test.cc) and fast solver tests.
//
// Every generator is deterministic from its seed on every platform: it uses
// its own splitmix64 stream, never std:: distributions (whose output is
// implementation-defined). Node 0 is always a graph input: not recomputable,
// cost 0. Byte sizes are multiples of `unit` so the numbers stay readable.
// Budgets are left at 0; pick one with budget_between().
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "passes/remat_problem.h"
#include "runtime/rng.h"

namespace memplan::remat_test {

/// splitmix64 (runtime/rng.h): tiny, well-mixed, identical everywhere.
class Rng : public SplitMix64 {
 public:
  using SplitMix64::SplitMix64;
  /// Uniform in [lo, hi] (inclusive).
  int64_t uniform(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1)));
  }
  bool chance(int percent) { return uniform(0, 99) < percent; }
};

struct GenOptions {
  int64_t unit = 1024;     // bytes are unit * [min_units, max_units]
  int64_t min_units = 1;
  int64_t max_units = 16;
  int min_cost = 1;        // costs are integers in [min_cost, max_cost] (exact sums in tests)
  int max_cost = 10;
  int non_recomputable_percent = 0;  // nodes other than 0 that get recomputable = false
  bool last_keep_to_end = true;      // the last node is a graph output
  int64_t fixed_bytes = 0;
};

/// A hand-written node.
inline RematNode node(std::vector<int32_t> deps, int64_t bytes, double cost, bool recomputable = true,
                      bool keep = false) {
  RematNode n;
  n.deps = std::move(deps);
  n.bytes = bytes;
  n.cost = cost;
  n.recomputable = recomputable;
  n.keep_to_end = keep;
  return n;
}

namespace detail {
inline RematNode random_node(Rng& rng, const GenOptions& o) {
  RematNode n;
  n.bytes = o.unit * rng.uniform(o.min_units, o.max_units);
  n.cost = static_cast<double>(rng.uniform(o.min_cost, o.max_cost));
  n.recomputable = !rng.chance(o.non_recomputable_percent);
  return n;
}
inline RematNode input_node(Rng& rng, const GenOptions& o) {
  RematNode n;
  n.bytes = o.unit * rng.uniform(o.min_units, o.max_units);
  n.cost = 0;
  n.recomputable = false;
  return n;
}
inline void finish(RematProblem& p, const GenOptions& o) {
  for (auto& node : p.nodes) {
    std::sort(node.deps.begin(), node.deps.end());
    node.deps.erase(std::unique(node.deps.begin(), node.deps.end()), node.deps.end());
  }
  if (o.last_keep_to_end && !p.nodes.empty()) p.nodes.back().keep_to_end = true;
  p.fixed_bytes = o.fixed_bytes;
}
}  // namespace detail

/// A chain 0 -> 1 -> ... -> n-1.
inline RematProblem random_chain(uint64_t seed, int n, const GenOptions& o = {}) {
  Rng rng(seed);
  RematProblem p;
  for (int i = 0; i < n; ++i) {
    p.nodes.push_back(i == 0 ? detail::input_node(rng, o) : detail::random_node(rng, o));
    if (i > 0) p.nodes.back().deps = {i - 1};
  }
  detail::finish(p, o);
  return p;
}

/// A U-Net-like chain: nodes 0..h-1 go down, h..n-1 come up; up node u also
/// reads the mirrored down node n-1-u (a skip connection) when that is not
/// its direct predecessor. Long skips make early outputs live for long.
inline RematProblem random_unet(uint64_t seed, int n, const GenOptions& o = {}) {
  Rng rng(seed);
  RematProblem p;
  for (int i = 0; i < n; ++i) {
    p.nodes.push_back(i == 0 ? detail::input_node(rng, o) : detail::random_node(rng, o));
    if (i == 0) continue;
    p.nodes.back().deps = {i - 1};
    int mirror = n - 1 - i;
    if (i >= n / 2 && mirror >= 0 && mirror < i - 1) p.nodes.back().deps.push_back(mirror);
  }
  detail::finish(p, o);
  return p;
}

/// A random layered DAG: `layers` layers of up to `width` nodes after the
/// input; each node reads 1..max_deps nodes, usually from the previous layer
/// and sometimes from any earlier one. Node indices follow layer order.
inline RematProblem random_layered(uint64_t seed, int layers, int width, int max_deps = 2, const GenOptions& o = {}) {
  Rng rng(seed);
  RematProblem p;
  p.nodes.push_back(detail::input_node(rng, o));
  std::vector<int32_t> prev = {0};
  for (int l = 0; l < layers; ++l) {
    std::vector<int32_t> cur;
    int w = static_cast<int>(rng.uniform(1, width));
    for (int k = 0; k < w; ++k) {
      RematNode node = detail::random_node(rng, o);
      int nd = static_cast<int>(rng.uniform(1, max_deps));
      for (int d = 0; d < nd; ++d) {
        if (rng.chance(75)) {
          node.deps.push_back(prev[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(prev.size()) - 1))]);
        } else {
          node.deps.push_back(static_cast<int32_t>(rng.uniform(0, static_cast<int64_t>(p.nodes.size()) - 1)));
        }
      }
      cur.push_back(static_cast<int32_t>(p.nodes.size()));
      p.nodes.push_back(node);
    }
    prev = cur;
  }
  detail::finish(p, o);
  return p;
}

/// A training-like graph with 2 * n_fwd nodes: a forward chain 0..n_fwd-1
/// (node 0 the input, node n_fwd-1 the loss), then a backward chain where
/// backward node j (index n_fwd + j) reads the previous backward node (the
/// loss for j = 0) and forward node n_fwd-1-j's output. So forward outputs
/// are used again in reverse order: the classic checkpointing setting.
inline RematProblem random_training(uint64_t seed, int n_fwd, const GenOptions& o = {}) {
  Rng rng(seed);
  RematProblem p;
  for (int i = 0; i < n_fwd; ++i) {
    p.nodes.push_back(i == 0 ? detail::input_node(rng, o) : detail::random_node(rng, o));
    if (i > 0) p.nodes.back().deps = {i - 1};
  }
  for (int j = 0; j < n_fwd; ++j) {
    RematNode node = detail::random_node(rng, o);
    int32_t prev = static_cast<int32_t>(n_fwd + j - 1);
    node.deps = {prev, static_cast<int32_t>(n_fwd - 1 - j)};
    p.nodes.push_back(node);
  }
  detail::finish(p, o);
  return p;
}

// Two values held across a memory peak, each re-read late:
//   0: x  input, 1 B (not recomputable)
//   1: a = f(x)  4 B, cost 3
//   2: b = g(x)  4 B, cost 1
//   3: c = h(x)  8 B, cost 1   <- the big intermediate
//   4: d = k(c)  1 B, cost 1
//   5: e = m(d, a)  1 B, cost 1
//   6: y = n(e, b)  1 B, cost 1, graph output (keep_to_end)
// Without recomputation a and b are held across runs 3 and 4:
//   run 3: x + a + b + c = 1+4+4+8 = 17 (x freed after: no later reader)
//   run 4: a + b + c + d = 4+4+8+1 = 17 (c freed after)  -> peak 17.
// Recomputing b in stage 6 ([2, 6]) keeps x instead of b (x feeds the
// recompute): run 3: x+a+c = 13, run 4: x+a+c+d = 14, stage 6: x+e+b = 6 then
// e+b+y = 6 -> peak 14, extra cost 1. Recomputing a in stage 5 instead:
// peak 14 as well (run 4: x+b+c+d), extra cost 3. Both: run 3: x+c = 9,
// run 4: x+c+d = 10 -> peak 10, extra cost 4. Recomputing c, d or e cannot
// help (each is read right after it is computed).
// So: budget 17 needs nothing; 14..16 costs 1 (recompute b); 10..13 costs 4;
// below 10 is infeasible even though the single-node floor is 9 (run 3 or 4
// needs c plus x or d), since x must stay live for the recomputations.
inline RematProblem skip_problem() {
  RematProblem p;
  p.nodes = {node({}, 1, 0, false), node({0}, 4, 3), node({0}, 4, 1), node({0}, 8, 1),
             node({3}, 1, 1), node({4, 1}, 1, 1), node({5, 2}, 1, 1, true, true)};
  return p;
}

/// r identical replicas of a training-like chain, as micro-batching unrolls
/// them, with replica sets: after a shared input (node 0), replica j runs a
/// forward f_1..f_L (f_i reads f_{i-1}, f_1 the input and, for ordering,
/// replica j-1's last node) and a backward g_L..g_1 (g_i reads f_i and
/// g_{i+1}). Sizes and costs vary along the chain, the same in every replica.
inline RematProblem replicated_chains(int r, int L) {
  RematProblem p;
  p.nodes.push_back(node({}, 64, 0, false));
  int32_t prev = -1;
  for (int j = 0; j < r; ++j) {
    const auto f0 = static_cast<int32_t>(p.nodes.size());
    for (int i = 0; i < L; ++i) {
      std::vector<int32_t> deps = {i == 0 ? 0 : f0 + i - 1};
      if (i == 0 && prev >= 0) deps.push_back(prev);
      p.nodes.push_back(node(deps, 1024 * (1 + (i * 7) % 5), 1 + (i * 3) % 4));
    }
    for (int i = L; i-- > 0;) {
      const auto g = static_cast<int32_t>(p.nodes.size());
      std::vector<int32_t> deps = {f0 + i};
      if (i + 1 < L) deps.push_back(g - 1);
      p.nodes.push_back(node(deps, 512, 2));
    }
    prev = static_cast<int32_t>(p.nodes.size()) - 1;
  }
  p.nodes.back().keep_to_end = true;
  p.replica_set.assign(p.nodes.size(), -1);
  for (int32_t o = 0; o < 2 * L; ++o) {
    std::vector<int32_t> set;
    for (int j = 0; j < r; ++j) set.push_back(1 + j * 2 * L + o);
    for (int32_t v : set) p.replica_set[v] = static_cast<int32_t>(p.replica_sets.size());
    p.replica_sets.push_back(std::move(set));
  }
  return p;
}

/// fixed + the largest (output + inputs) of any single node: no schedule can
/// go below this (computed here independently of any solver).
inline int64_t single_node_floor(const RematProblem& p) {
  int64_t floor = 0;
  for (const auto& node : p.nodes) {
    int64_t need = node.bytes;
    for (int32_t d : node.deps) need += p.nodes[static_cast<size_t>(d)].bytes;
    floor = std::max(floor, need);
  }
  return p.fixed_bytes + floor;
}

/// The simulated peak of the schedule without recomputation.
inline int64_t no_remat_peak(const RematProblem& p) { return simulate_remat(p, no_remat_stages(p)).peak; }

/// A budget a fraction `frac` of the way from the single-node floor to the
/// no-remat peak (0: the floor, 1: no recomputation needed).
inline int64_t budget_between(const RematProblem& p, double frac) {
  int64_t lo = single_node_floor(p);
  int64_t hi = no_remat_peak(p);
  return lo + static_cast<int64_t>(frac * static_cast<double>(hi - lo));
}

}  // namespace memplan::remat_test
