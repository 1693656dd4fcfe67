// Fast rematerialization solver: hand-made chains with optima derived below,
// 200 random problems checked against an independent replay written here,
// infeasible budgets, and timings on large problems (printed, not asserted).
#include "passes/remat_fast.h"

#include "passes/remat_fast_internal.h"
#include "test/remat_test_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

namespace memplan {
namespace {

struct Sim {
  bool valid = true;
  std::string error;
  int64_t peak = 0;
  double extra_cost = 0;
  std::vector<int> runs;  // executions per node
};

/// Independent, deliberately naive replay (quadratic): a copy made at
/// position i lives through the last read of that node before its next
/// execution (to the end if it is the last copy of a keep_to_end node); memory
/// at a position = fixed + every copy alive there, the running node's output
/// included.
Sim naive_replay(const RematProblem& p, const std::vector<std::vector<int32_t>>& stages) {
  Sim s;
  const size_t n = p.nodes.size();
  s.runs.assign(n, 0);
  if (stages.size() != n) return {false, "wrong stage count"};
  std::vector<int32_t> seq;
  for (size_t t = 0; t < n; ++t) {
    if (stages[t].empty() || stages[t].back() != static_cast<int32_t>(t)) return {false, "stage does not end with t"};
    for (int32_t v : stages[t]) seq.push_back(v);
  }
  const size_t L = seq.size();
  auto reads = [&](size_t q, int32_t v) {
    for (int32_t u : p.nodes[seq[q]].deps)
      if (u == v) return true;
    return false;
  };
  std::vector<int64_t> mem(L, p.fixed_bytes);
  for (size_t i = 0; i < L; ++i) {
    const int32_t x = seq[i];
    if (s.runs[x]++ > 0) s.extra_cost += p.nodes[x].cost;
    for (int32_t u : p.nodes[x].deps) {
      bool before = false;
      for (size_t q = 0; q < i; ++q) before = before || seq[q] == u;
      if (!before) return {false, "node " + std::to_string(x) + " reads " + std::to_string(u) + " before it runs"};
    }
    size_t next = L;
    for (size_t j = i + 1; j < L && next == L; ++j)
      if (seq[j] == x) next = j;
    size_t end = i;
    for (size_t q = i + 1; q < next; ++q)
      if (reads(q, x)) end = q;
    if (next == L && p.nodes[x].keep_to_end) end = L - 1;
    for (size_t q = i; q <= end; ++q) mem[q] += p.nodes[x].bytes;
  }
  for (int64_t m : mem) s.peak = std::max(s.peak, m);
  return s;
}

/// Chain of 8 forward nodes f0..f7 (f0 is the input: not recomputable), a
/// loss L reading f7, and a backward mirror g7..g0 where g_i reads g_{i+1}
/// (g8 = L) and f_i. Every output is 100 bytes and costs 1 s. Nodes: f_i = i,
/// L = 8, g_i = 9 + (7 - i).
RematProblem mirror_chain(int64_t budget) {
  RematProblem p;
  p.budget = budget;
  for (int i = 0; i < 8; ++i) p.nodes.push_back({.deps = i == 0 ? std::vector<int32_t>{} : std::vector<int32_t>{i - 1},
                                                 .bytes = 100, .cost = 1, .recomputable = i != 0});
  p.nodes.push_back({.deps = {7}, .bytes = 100, .cost = 1});
  for (int i = 7; i >= 0; --i) p.nodes.push_back({.deps = {8 + (7 - i), i}, .bytes = 100, .cost = 1});
  return p;
}

void expect_consistent(const RematProblem& p, const RematSolution& sol, const std::string& what) {
  const Sim s = naive_replay(p, sol.stages);
  ASSERT_TRUE(s.valid) << what << ": " << s.error;
  EXPECT_EQ(sol.peak, s.peak) << what;
  EXPECT_NEAR(sol.extra_cost, s.extra_cost, 1e-9 * (1 + s.extra_cost)) << what;
  EXPECT_EQ(sol.feasible, s.peak <= p.budget) << what << ": " << sol.note;
  for (size_t v = 0; v < p.nodes.size(); ++v)
    if (!p.nodes[v].recomputable || p.nodes[v].keep_to_end) {
      // keep_to_end outputs are never recomputed: simulate_remat would keep
      // the old copy too, so a recomputation could only add memory.
      EXPECT_EQ(s.runs[v], 1) << what << ": non-recomputable or keep_to_end node " << v;
    }
}

TEST(RematFast, MirrorChainWithoutRecomputation) {
  // Without recomputation f0..f7 all live until their g: at g7 (position 9)
  // f0..f7 + L + g7 = 1000 bytes, the peak.
  const RematProblem p = mirror_chain(1000);
  const RematSolution sol = solve_remat_fast(p);
  expect_consistent(p, sol, "budget 1000");
  EXPECT_TRUE(sol.feasible);
  EXPECT_EQ(sol.peak, 1000);
  EXPECT_EQ(sol.extra_cost, 0);
}

TEST(RematFast, MirrorChainBudgetsForceRecomputation) {
  // Optima (derived): at g7 the working set is L, f7, g7 plus f0 (never
  // recomputable) = 400 bytes, so a budget B keeps at most (B - 400) / 100 of
  // f1..f6 across g7; each of the others is read later by its g and must be
  // recomputed at least once. Budget 900: 1 dropped, optimum 1. Budget 700: 3
  // dropped; keeping f2, f4, f6 and recomputing f1, f3, f5 from their kept
  // inputs reaches it, optimum 3. Budget 600: 4 dropped; keep f2 and f5,
  // recompute f6 (from f5), f3 and f4 at g4's stage (kept for g3), f1: 4.
  // The fast solver must stay within 2x of these.
  for (auto [budget, optimum] : {std::pair<int64_t, double>{900, 1}, {700, 3}, {600, 4}}) {
    const RematProblem p = mirror_chain(budget);
    const RematSolution sol = solve_remat_fast(p);
    const std::string what = "budget " + std::to_string(budget);
    expect_consistent(p, sol, what);
    EXPECT_TRUE(sol.feasible) << what << ": " << sol.note;
    EXPECT_LE(sol.peak, budget) << what;
    EXPECT_GE(sol.extra_cost, optimum) << what << " (below the derived optimum: the replay would disagree)";
    EXPECT_LE(sol.extra_cost, 2 * optimum) << what;
    std::printf("[ mirror chain ] budget %lld: extra cost %.0f (optimum %.0f), peak %lld\n",
                static_cast<long long>(budget), sol.extra_cost, optimum, static_cast<long long>(sol.peak));
  }
}

TEST(RematFast, InfeasibleBudgetsReportBestPeak) {
  // Below the floor: g_i needs g_{i+1}, f_i and g_i (300 bytes) plus f0 held
  // for g0 (100): 400 bytes, so 350 cannot be met.
  {
    const RematProblem p = mirror_chain(350);
    const RematSolution sol = solve_remat_fast(p);
    expect_consistent(p, sol, "budget 350");
    EXPECT_FALSE(sol.feasible);
    EXPECT_NE(sol.note.find("infeasible"), std::string::npos) << sol.note;
    EXPECT_NE(sol.note.find("floor is 400"), std::string::npos) << sol.note;
    EXPECT_GT(sol.peak, 350);
  }
  // Above the floor but nothing is recomputable: the peak stays 1000.
  {
    RematProblem p = mirror_chain(900);
    for (RematNode& nd : p.nodes) nd.recomputable = false;
    const RematSolution sol = solve_remat_fast(p);
    expect_consistent(p, sol, "nothing recomputable");
    EXPECT_FALSE(sol.feasible);
    EXPECT_EQ(sol.peak, 1000);
    EXPECT_NE(sol.note.find("best peak reached 1000"), std::string::npos) << sol.note;
  }
}

/// A problem whose only optimum recomputes a node early, in a stage that
/// does not read it. Bytes: I = 10 (input), u = 100, v = 100, P1 = 200,
/// s = 10, P2 = 200, r = 10, out = 10; every cost 1.
///   0 I;  1 u <- I;  2 v <- u;  3 P1 <- I;  4 s <- u, P1;  5 P2 <- I;
///   6 r <- v, P2;  7 out <- s, r (keep_to_end)
/// Without recomputation the peak is at stage 4: I + u + v + P1 + s = 420.
/// There only v can go (I is not recomputable; u, P1 are read; s runs), so
/// any schedule within 330 recomputes v: cost >= 1. Recomputing v at its
/// reader (stage 6) needs u then, and u + P2 + v + s = 410 > 330 at v's
/// recomputation whether u is held or recomputed; at stage 3 or 4, v would
/// be live at stage 4's peak again. At stage 5 (which does not read v) u is
/// still at hand if held one stage longer: v's run there holds I + u + s + v
/// = 220, stage 5 I + s + v + P2 = 320, stage 6 s + v + P2 + r = 320, stage
/// 4 I + u + P1 + s = 320. So the optimum is 1, only by that early
/// recomputation.
RematProblem early_recompute_problem() {
  RematProblem p;
  p.budget = 330;
  auto add = [&](std::vector<int32_t> deps, int64_t bytes, bool recomputable = true, bool keep = false) {
    p.nodes.push_back({.deps = std::move(deps), .bytes = bytes, .cost = 1, .recomputable = recomputable,
                       .keep_to_end = keep});
  };
  add({}, 10, false);  // 0 I
  add({0}, 100);       // 1 u
  add({1}, 100);       // 2 v
  add({0}, 200);       // 3 P1
  add({1, 3}, 10);     // 4 s
  add({0}, 200);       // 5 P2
  add({2, 5}, 10);     // 6 r
  add({4, 6}, 10, true, true);  // 7 out
  return p;
}

// The chain DP bisects its modeled limit down to a few bytes when no unit
// keeps anything (here: nothing is recomputable); an output of more than
// 2^31 bytes then made more than INT32_MAX slots, the slot count wrapped
// negative and the DP wrote out of bounds (found as a crash on a corpus model coarsened to 24 groups).
TEST(RematFast, ChainDpWithOutputsOverTwoGiB) {
  const int64_t big = int64_t{3} << 30;
  RematProblem p;
  for (int32_t i = 0; i < 6; ++i) {
    RematNode n;
    if (i > 0) n.deps = {i - 1};
    n.bytes = big;
    n.cost = 1;
    n.recomputable = false;
    p.nodes.push_back(n);
  }
  p.nodes[5].deps.push_back(0);  // keeps 0 live across the chain
  const int64_t peak = simulate_remat(p, no_remat_stages(p)).peak;
  p.budget = peak - 1;
  const RematSolution s = solve_remat_fast(p);
  EXPECT_FALSE(s.feasible);  // nothing can be recomputed
  const RematSimulation sim = simulate_remat(p, s.stages);
  ASSERT_TRUE(sim.valid) << sim.error;
  EXPECT_EQ(sim.peak, peak);
}

TEST(RematFast, EarlyRecomputationWhereTheInputsAreLive) {
  const RematProblem p = early_recompute_problem();
  const RematSolution sol = solve_remat_fast(p);
  expect_consistent(p, sol, "early recomputation");
  ASSERT_TRUE(sol.feasible) << sol.note;
  EXPECT_EQ(sol.extra_cost, 1);
  EXPECT_EQ(sol.stages[5], (std::vector<int32_t>{2, 5})) << "v is recomputed in stage 5";
  EXPECT_EQ(naive_replay(p, no_remat_stages(p)).peak, 420);  // the figure derived above
}

/// Random training-like problem: sources (not recomputable), a forward DAG
/// with skip edges, a loss, a backward mirror reading gradients and forward
/// outputs, some keep_to_end gradients; or (kind 1) an arbitrary random DAG.
RematProblem random_problem(std::mt19937& rng, int kind, int max_forward = 14) {
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  RematProblem p;
  p.fixed_bytes = uni(0, 50);
  auto add = [&](std::vector<int32_t> deps, bool recomputable, bool keep) {
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    p.nodes.push_back({.deps = std::move(deps), .bytes = uni(1, 100), .cost = uni(1, 20) / 10.0,
                       .recomputable = recomputable, .keep_to_end = keep});
    return static_cast<int32_t>(p.nodes.size()) - 1;
  };
  if (kind == 1) {
    const int n = uni(4, 30);
    for (int i = 0; i < n; ++i) {
      std::vector<int32_t> deps;
      for (int d = uni(0, 3); d > 0 && i > 0; --d) deps.push_back(uni(0, i - 1));
      add(deps, deps.empty() ? false : uni(0, 9) != 0, uni(0, 9) == 0);
    }
    return p;
  }
  const int sources = uni(1, 3), m = uni(3, max_forward);
  for (int i = 0; i < sources; ++i) add({}, false, false);
  std::vector<int32_t> f;
  for (int i = 0; i < m; ++i) {
    std::vector<int32_t> deps{f.empty() ? uni(0, sources - 1) : f.back()};
    if (f.size() > 1 && uni(0, 3) == 0) deps.push_back(f[uni(0, static_cast<int>(f.size()) - 2)]);
    if (uni(0, 4) == 0) deps.push_back(uni(0, sources - 1));
    f.push_back(add(deps, uni(0, 9) != 0, false));
  }
  int32_t grad = add({f.back()}, true, false);  // loss
  for (int i = m - 1; i >= 0; --i) {
    std::vector<int32_t> deps{grad, f[i]};
    for (int32_t d : p.nodes[f[i]].deps)
      if (uni(0, 1) == 0) deps.push_back(d);
    grad = add(deps, uni(0, 9) != 0, uni(0, 4) == 0);
  }
  return p;
}

TEST(RematFast, RandomProblemsNeverBreakTheBudget) {
  std::mt19937 rng(12345);
  int feasible = 0, recomputed = 0;
  for (int it = 0; it < 200; ++it) {
    RematProblem p = random_problem(rng, it % 3 == 2 ? 1 : 0);
    const int64_t base = naive_replay(p, [&] {
                           std::vector<std::vector<int32_t>> s;
                           for (int32_t t = 0; t < static_cast<int32_t>(p.nodes.size()); ++t) s.push_back({t});
                           return s;
                         }()).peak;
    p.budget = base / 2 + std::uniform_int_distribution<int64_t>(0, base / 2 - 1)(rng);  // < base
    const RematSolution sol = solve_remat_fast(p);
    const std::string what = "problem " + std::to_string(it) + " (budget " + std::to_string(p.budget) +
                             ", no-recompute peak " + std::to_string(base) + ")";
    expect_consistent(p, sol, what);
    if (sol.feasible) {
      ++feasible;
      EXPECT_LE(sol.peak, p.budget) << what;
      recomputed += sol.extra_cost > 0;
    } else {
      EXPECT_NE(sol.note.find("infeasible"), std::string::npos) << what;
      EXPECT_GT(sol.peak, p.budget) << what;
    }
  }
  std::printf("[ random ] 200 problems: %d within budget (%d of them with recomputation)\n", feasible, recomputed);
  // The budgets span [peak/2, peak]; many of the low ones are below what any
  // schedule reaches. Regression guard: 88 were met at first (seed 12345), 91
  // with the recompute-all seeds.
  EXPECT_GE(feasible, 80);
  EXPECT_EQ(recomputed, feasible);  // the no-recompute peak is above every budget drawn
}

// Cleanup skips an undo whose bound on the resulting peak already exceeds
// its target (remat_fast_internal.h: undo_peak_lower_bound). The bound must
// never exceed the peak the replay without that cut really has: random cut
// sets (late, early and chained recomputations, so that an undo may leave
// other cuts without readers), every effective cut undone in turn.
TEST(RematFast, UndoBoundNeverExceedsTheReplayedPeak) {
  std::mt19937 rng(4242);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int64_t checked = 0, binding = 0;
  for (int it = 0; it < 300; ++it) {
    const RematProblem p = random_problem(rng, it % 3 == 2 ? 1 : 0);
    const int32_t n = static_cast<int32_t>(p.nodes.size());
    std::vector<remat_fast::Cut> cuts;
    for (int k = uni(1, 3 * n); k > 0; --k) {
      const int32_t s = uni(1, n - 1), v = uni(0, s - 1);
      cuts.push_back({v, s});
      for (int32_t u : p.nodes[v].deps)  // its inputs too, often
        if (uni(0, 1) == 0) cuts.push_back({u, s});
    }
    remat_fast::Replay r, without;
    remat_fast::build_replay(p, cuts, r);
    for (const remat_fast::Cut& c : r.cuts) {
      std::vector<remat_fast::Cut> rest;
      for (const remat_fast::Cut& d : r.cuts)
        if (!(d == c)) rest.push_back(d);
      remat_fast::build_replay(p, rest, without);
      const int64_t bound = remat_fast::undo_peak_lower_bound(p, r, c);
      ASSERT_LE(bound, without.peak) << "problem " << it << ": undo of (" << c.node << ", " << c.stage << ")";
      ++checked;
      binding += bound > r.peak;  // would reject an undo at target r.peak
    }
  }
  std::printf("[ undo bound ] %lld undos checked, %lld bounds above the peak before the undo\n",
              static_cast<long long>(checked), static_cast<long long>(binding));
  EXPECT_GT(binding, checked / 10) << "the bound should reject a fair share of undos";
}

// bert's training step (opset 17, batch 8, seq 512, fp32, k = 1) coarsened
// to 21 groups (remat_coarsen.h), as the benchmark builds it: a forward chain
// 0..6 of about 1 GB per group, the loss (7, kept), backward groups 8..17 and
// the optimizer groups 18..20 (fixed). At 50% of its peak CBC proves a fit
// that reruns the forward chain from group 0 at stages 10, 11, 12, 14 and 16;
// without the recompute-all seeds (step 5b) the fast solver stopped at
// 5.66 GB. It must fit and match the optimum within 5%.
TEST(RematFast, RerunsTheWholeForwardChainAtSeveralStages) {
  RematProblem p;
  p.fixed_bytes = 1314371072;
  p.budget = 4986329600;
  auto n = [](std::vector<int32_t> deps, int64_t bytes, double ms, bool recomputable = true, bool keep = false) {
    return remat_test::node(std::move(deps), bytes, ms / 1e3, recomputable, keep);
  };
  p.nodes = {n({}, 965869568, 3.81),          n({0}, 1126268928, 4.8),
             n({1}, 1035862016, 4.72),        n({2}, 1176633344, 4.78),
             n({3}, 1171914752, 4.71),        n({4}, 1149075456, 4.82),
             n({5}, 1260075008, 8.37),        n({6}, 500072704, 0.378, false, true),
             n({6, 7}, 174937344, 15.3),      n({5, 6, 8}, 97579008, 6.71),
             n({4, 5, 9}, 106217472, 5.32),   n({3, 4, 10}, 85770240, 5.21),
             n({3, 11}, 99938304, 6.71),      n({2, 3, 12}, 115654656, 5.33),
             n({1, 2, 13}, 83410944, 4.99),   n({1, 14}, 128249856, 5.99),
             n({0, 15}, 203735040, 6.2),      n({0, 8, 16}, 115018752, 1.27),
             n({8, 13, 14, 15, 16, 17}, 0, 0.96, false), n({10, 11, 12, 13, 18}, 0, 0.754, false),
             n({8, 9, 10, 18}, 0, 0.445, false)};
  EXPECT_GT(naive_replay(p, no_remat_stages(p)).peak, 2 * p.budget - 2);
  // CBC proves 85.71 ms optimal (solve_remat_exact, about 8 s here: too
  // close to a 10 s limit to repeat in CI; the benchmark's coarse table
  // proves it again at every run). That schedule: groups 0..5 rerun at stage
  // 10, 0..4 at 11, 0..3 at 12, 0..2 at 14 and 0 at 16.
  const double optimum = (27.64 + 22.82 + 18.11 + 13.33 + 3.81) / 1e3;
  const RematSolution fa = solve_remat_fast(p);
  expect_consistent(p, fa, "bert coarse");
  ASSERT_TRUE(fa.feasible) << fa.note;
  EXPECT_LE(fa.peak, p.budget);
  EXPECT_LE(fa.extra_cost, 1.05 * optimum);
  FastOptions without;
  without.recompute_all_seeds = false;
  const RematSolution old = solve_remat_fast(p, without);
  std::printf("[ chain reruns ] optimum %.4g ms; fast %.4g ms; without the seeds: %s, peak %lld\n",
              1e3 * optimum, 1e3 * fa.extra_cost, old.feasible ? "fits" : "misses",
              static_cast<long long>(old.peak));
}

TEST(RematFast, SearchIsDeterministicAndOptional) {
  std::mt19937 rng(777);
  for (int it = 0; it < 20; ++it) {
    RematProblem p = random_problem(rng, it % 2);
    const int64_t base = naive_replay(p, no_remat_stages(p)).peak;
    p.budget = base * 3 / 4;
    const RematSolution a = solve_remat_fast(p), b = solve_remat_fast(p);
    EXPECT_EQ(a.stages, b.stages) << "problem " << it << ": two runs differ";
    // Without the search (steps 5-7) the result must still be valid and
    // within the budget when it says so; the search never makes it worse.
    const RematSolution c = solve_remat_fast(p, {.search_max_nodes = 0});
    expect_consistent(p, c, "no search, problem " + std::to_string(it));
    if (c.feasible) {
      EXPECT_TRUE(a.feasible) << "problem " << it;
      EXPECT_LE(a.extra_cost, c.extra_cost + 1e-9) << "problem " << it;
    }
  }
}

RematProblem big_training_problem(int layers, int skip_every);

TEST(RematFast, DescentRescuesStuckGreedyRuns) {
  // The greedy alone (no chain DP, no search) on training-like chains of 20
  // to 140 layers at tight budgets (5% to 28% of the no-recompute peak):
  // descending from looser budgets leaves every fitting run as it was and
  // turns some stuck runs into fits.
  const FastOptions greedy_only{.use_chain_dp = false, .search_max_nodes = 0,
                                .lower_infeasible_peak = false};
  FastOptions plain = greedy_only;
  plain.descend = false;
  int rescued = 0, fits = 0, runs = 0;
  for (int layers = 20; layers <= 140; layers += 20)
    for (int skip = 0; skip < 5; ++skip) {
      RematProblem p = big_training_problem(layers, skip);
      const int64_t base = naive_replay(p, no_remat_stages(p)).peak;
      for (int i = 2; i < 12; ++i) {
        p.budget = base * i / 40;
        const std::string what = std::to_string(layers) + " layers, skip " + std::to_string(skip) +
                                 ", budget " + std::to_string(i) + "/40 of the peak";
        const RematSolution with = solve_remat_fast(p, greedy_only), without = solve_remat_fast(p, plain);
        expect_consistent(p, with, what);
        if (without.feasible) {
          EXPECT_TRUE(with.feasible) << what;
          EXPECT_EQ(with.stages, without.stages) << what << ": a fitting greedy run must be unchanged";
        }
        ++runs;
        fits += with.feasible;
        rescued += with.feasible && !without.feasible;
      }
    }
  std::printf("[ descend ] %d runs: %d fit, %d of them only with the descent\n", runs, fits, rescued);
  EXPECT_GT(rescued, 0);
}

TEST(RematFast, ReplicaBundlesKeepTheWorkPerReplicaFlat) {
  // r identical replicas peak alike, so one recomputation lowers one replica
  // only: the greedy needs about r times the iterations, each replaying all
  // r replicas. Trying each candidate in every replica first (replica sets)
  // keeps the number of replays flat in r, at the same cost. Budgets half
  // and 80% of the way from the floor to the peak, and 1 byte (the ladder).
  const FastOptions bundles{.search_max_nodes = 0};
  FastOptions single = bundles;
  single.replica_bundles = false;
  for (double frac : {0.5, 0.8, -1.0}) {
    int64_t replays[2][2] = {};  // [bundles][r = 4, 16]
    for (int ri = 0; ri < 2; ++ri) {
      RematProblem p = remat_test::replicated_chains(ri == 0 ? 4 : 16, 50);
      p.budget = frac < 0 ? 1 : remat_test::budget_between(p, frac);
      const std::string what = "r=" + std::to_string(ri == 0 ? 4 : 16) + ", budget " + std::to_string(p.budget);
      const RematSolution a = solve_remat_fast(p, bundles), b = solve_remat_fast(p, single);
      expect_consistent(p, a, what);
      EXPECT_EQ(a.feasible, frac > 0) << what;
      EXPECT_EQ(b.feasible, frac > 0) << what;
      if (frac > 0) {
        EXPECT_LE(a.extra_cost, b.extra_cost + 1e-9) << what;
      } else {
        EXPECT_LE(a.peak, b.peak) << what;
      }
      replays[1][ri] = a.replays;
      replays[0][ri] = b.replays;
    }
    std::printf("[ replicas] budget %.1f: replays with bundles %ld (r=4) %ld (r=16), without %ld %ld\n", frac,
                static_cast<long>(replays[1][0]), static_cast<long>(replays[1][1]),
                static_cast<long>(replays[0][0]), static_cast<long>(replays[0][1]));
    EXPECT_LE(replays[1][1], 2 * replays[1][0]) << "with bundles, budget " << frac;
    EXPECT_GT(replays[0][1], 3 * replays[0][0]) << "without bundles, budget " << frac;
    EXPECT_LT(4 * replays[1][1], replays[0][1]) << "budget " << frac;
  }
}

TEST(RematFast, MalformedProblemsAreRefused) {
  // The solver indexes deps and replica sets without bounds checks, so it
  // refuses a problem whose deps are not earlier nodes or whose replica sets
  // do not match replica_set, with a note instead of a schedule.
  auto note_of = [](const RematProblem& p) {
    const RematSolution s = solve_remat_fast(p);
    EXPECT_FALSE(s.feasible);
    EXPECT_TRUE(s.stages.empty());
    return s.note;
  };
  RematProblem p = remat_test::replicated_chains(2, 3);
  p.budget = 1 << 30;
  EXPECT_TRUE(solve_remat_fast(p).feasible);
  RematProblem bad = p;
  bad.nodes[2].deps.push_back(5);
  EXPECT_NE(note_of(bad).find("node 2 depends on 5"), std::string::npos);
  bad = p;
  bad.replica_set.pop_back();
  EXPECT_NE(note_of(bad).find("replica_set has 12 entries for 13 nodes"), std::string::npos);
  bad = p;
  bad.replica_set[1] = 99;
  EXPECT_NE(note_of(bad).find("replica set 99 does not exist"), std::string::npos);
  bad = p;
  bad.replica_sets[0][1] = 3;  // node 3 belongs to another set
  EXPECT_NE(note_of(bad).find("replica set member 3"), std::string::npos);
}

TEST(RematFast, LadderLowersPeaksTheGreedyCannotReachDirectly) {
  // A greedy aimed at a budget far below what it can reach stops high (its
  // tie-breaks weigh the bytes over that budget everywhere). When no schedule
  // fits, the solver warm-starts the greedy down a ladder of budgets from the
  // lowest peak found: the peak it reports never rises, drops for some
  // problems, and some tight budgets fit only thanks to the ladder. Runs that
  // fit without it are unchanged (the ladder runs only when nothing fits).
  // With lower_peak_floor_limit, the ladder is skipped below the floor only.
  FastOptions ladder{.use_chain_dp = false, .search_max_nodes = 0};
  FastOptions plain = ladder;
  plain.lower_infeasible_peak = false;
  int lowered = 0, unreachable = 0, rescued = 0;
  for (int layers = 20; layers <= 140; layers += 40)
    for (int skip = 0; skip < 5; skip += 2) {
      RematProblem p = big_training_problem(layers, skip);
      const int64_t base = naive_replay(p, no_remat_stages(p)).peak;
      for (int i = 0; i < 8; ++i) {
        p.budget = i == 0 ? 1 : base * (i + 1) / 40;  // 1 byte: below any floor
        const std::string what = std::to_string(layers) + " layers, skip " + std::to_string(skip) +
                                 ", budget " + std::to_string(p.budget);
        const RematSolution with = solve_remat_fast(p, ladder), without = solve_remat_fast(p, plain);
        // A floor limit below every peak skips the ladder where the floor is
        // above the budget (no lower peak can be reported), never a fit.
        FastOptions limited = ladder;
        limited.lower_peak_floor_limit = 0;
        const RematSolution lim = solve_remat_fast(p, limited);
        expect_consistent(p, with, what);
        if (with.feasible) {
          EXPECT_EQ(lim.stages, with.stages) << what << ": the limit cost a fit";
        }
        if (i == 0) {
          EXPECT_EQ(lim.stages, without.stages) << what << ": below the floor, no ladder";
        }
        if (without.feasible) {
          EXPECT_EQ(with.stages, without.stages) << what << ": a fitting run must be unchanged";
          continue;
        }
        EXPECT_LE(with.peak, without.peak) << what;
        if (i == 0) {
          EXPECT_FALSE(with.feasible) << what;
          ++unreachable;
          lowered += with.peak < without.peak;
        }
        rescued += with.feasible;
      }
    }
  std::printf("[ ladder ] %d unreachable budgets: peak lowered in %d; %d tight budgets fit only with it\n",
              unreachable, lowered, rescued);
  EXPECT_GT(lowered, 0);
  EXPECT_GT(rescued, 0);
}

/// Training-like chain of `layers` blocks: each block has a big activation
/// (a "matmul", cost 4, 64 KiB) and a small one ("relu", cost 1, 16 KiB); the
/// backward mirrors it with one gradient node per forward node.
RematProblem big_training_problem(int layers, int skip_every) {
  RematProblem p;
  p.nodes.push_back({.deps = {}, .bytes = 16384, .cost = 0, .recomputable = false});
  std::vector<int32_t> f{0};
  for (int l = 0; l < layers; ++l) {
    std::vector<int32_t> deps{f.back()};
    if (skip_every > 0 && l % skip_every == 0 && f.size() > 4) deps.push_back(f[f.size() - 4]);
    p.nodes.push_back({.deps = deps, .bytes = 65536, .cost = 4});
    f.push_back(static_cast<int32_t>(p.nodes.size()) - 1);
    p.nodes.push_back({.deps = {f.back()}, .bytes = 16384, .cost = 1});
    f.push_back(static_cast<int32_t>(p.nodes.size()) - 1);
  }
  int32_t grad = static_cast<int32_t>(p.nodes.size());
  p.nodes.push_back({.deps = {f.back()}, .bytes = 16384, .cost = 1});
  for (size_t i = f.size(); i-- > 1;) {
    std::vector<int32_t> deps{grad, f[i]};
    for (int32_t d : p.nodes[f[i]].deps) deps.push_back(d);
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    p.nodes.push_back({.deps = deps, .bytes = 16384, .cost = 2});
    grad = static_cast<int32_t>(p.nodes.size()) - 1;
  }
  return p;
}

void time_one(const char* label, RematProblem p, double budget_fraction) {
  RematProblem base = p;
  base.budget = INT64_MAX;
  const int64_t peak = solve_remat_fast(base).peak;
  p.budget = static_cast<int64_t>(static_cast<double>(peak) * budget_fraction);
  const auto t0 = std::chrono::steady_clock::now();
  const RematSolution sol = solve_remat_fast(p);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  for (const RematNode& nd : p.nodes) total += nd.cost;
  std::printf("[ timing ] %s: %zu nodes, budget %.0f%% of %lld: %s peak %lld, extra cost %.1f%% of one step, %.3f s\n",
              label, p.nodes.size(), budget_fraction * 100, static_cast<long long>(peak),
              sol.feasible ? "feasible" : "INFEASIBLE", static_cast<long long>(sol.peak),
              100 * sol.extra_cost / total, s);
  EXPECT_TRUE(sol.feasible) << label << ": " << sol.note;
  if (sol.feasible) {
    EXPECT_LE(sol.peak, p.budget);
  }
}

TEST(RematFast, BenchTrainingLike10k) {
  time_one("training-like, skips", big_training_problem(2500, 3), 0.5);
  time_one("training-like, skips", big_training_problem(2500, 3), 0.25);
}

TEST(RematFast, BenchChain100k) {
  time_one("chain", big_training_problem(25000, 0), 0.3);
}

}  // namespace
}  // namespace memplan
