// Tests for simulate_remat (RematSim*) and the exact MILP solver (RematExact*).
//
// The exact solver's answers are checked three independent ways: by the
// simulator (valid, peak <= budget, same peak and cost as claimed), against
// hand-computed optima on small problems, and against a brute force over all
// stage choices (written here, sharing nothing with the MILP) on tiny random
// problems.
#include <chrono>
#include <cmath>
#include <functional>

#include <gtest/gtest.h>

#include "passes/remat_exact.h"
#include "passes/remat_problem.h"
#include "test/remat_test_util.h"

namespace memplan {
namespace {

using Stages = std::vector<std::vector<int32_t>>;

using remat_test::node;

using remat_test::skip_problem;

/// Checks a solver's claims against the simulator.
void expect_consistent(const RematProblem& p, const RematSolution& sol) {
  if (!sol.feasible) return;
  RematSimulation sim = simulate_remat(p, sol.stages);
  ASSERT_TRUE(sim.valid) << sim.error;
  EXPECT_LE(sim.peak, p.budget);
  EXPECT_EQ(sim.peak, sol.peak);
  EXPECT_NEAR(sim.extra_cost, sol.extra_cost, 1e-9);
}

// ---------------------------------------------------------------------------
// Simulator

TEST(RematSim, SkipProblemHandNumbers) {
  RematProblem p = skip_problem();
  RematSimulation none = simulate_remat(p, no_remat_stages(p));
  ASSERT_TRUE(none.valid) << none.error;
  EXPECT_EQ(none.peak, 17);
  EXPECT_EQ(none.extra_cost, 0);

  Stages b = no_remat_stages(p);
  b[6] = {2, 6};
  RematSimulation sb = simulate_remat(p, b);
  ASSERT_TRUE(sb.valid) << sb.error;
  EXPECT_EQ(sb.peak, 14);
  EXPECT_EQ(sb.extra_cost, 1);

  Stages a = no_remat_stages(p);
  a[5] = {1, 5};
  RematSimulation sa = simulate_remat(p, a);
  ASSERT_TRUE(sa.valid) << sa.error;
  EXPECT_EQ(sa.peak, 14);
  EXPECT_EQ(sa.extra_cost, 3);

  Stages both = a;
  both[6] = {2, 6};
  RematSimulation s2 = simulate_remat(p, both);
  ASSERT_TRUE(s2.valid) << s2.error;
  EXPECT_EQ(s2.peak, 10);
  EXPECT_EQ(s2.extra_cost, 4);
}

TEST(RematSim, FixedBytesAndKeepToEnd) {
  // Chain 0 -> 1 -> 2 with 100 B fixed. Without keep_to_end: run 0: 2,
  // run 1: 2+3 = 5, run 2: 3+5 = 8 -> peak 108. With node 0 kept to the end
  // it stays through run 2: 2+3+5 = 10 -> peak 110.
  RematProblem p;
  p.fixed_bytes = 100;
  p.nodes = {node({}, 2, 0, false), node({0}, 3, 1), node({1}, 5, 1)};
  EXPECT_EQ(simulate_remat(p, no_remat_stages(p)).peak, 108);
  p.nodes[0].keep_to_end = true;
  EXPECT_EQ(simulate_remat(p, no_remat_stages(p)).peak, 110);
}

TEST(RematSim, OutputAndInputsCountTogether) {
  // 0 (6 B) -> 1 (10 B): running 1 needs 6 + 10 = 16 B at once, not 10.
  RematProblem p;
  p.nodes = {node({}, 6, 0, false), node({0}, 10, 1)};
  EXPECT_EQ(simulate_remat(p, no_remat_stages(p)).peak, 16);
}

TEST(RematSim, RejectsMalformedSchedules) {
  RematProblem p = skip_problem();
  auto error_of = [&](const Stages& s) {
    RematSimulation sim = simulate_remat(p, s);
    EXPECT_FALSE(sim.valid);
    return sim.error;
  };
  Stages s = no_remat_stages(p);
  s.pop_back();
  EXPECT_NE(error_of(s).find("6 stages for 7 nodes"), std::string::npos);

  s = no_remat_stages(p);
  s[3] = {};
  EXPECT_NE(error_of(s).find("stage 3 is empty"), std::string::npos);

  s = no_remat_stages(p);
  s[3] = {3, 1};
  EXPECT_NE(error_of(s).find("stage 3 ends with 1"), std::string::npos);

  s = no_remat_stages(p);
  s[3] = {4, 3};  // a stage may only run nodes <= t
  EXPECT_NE(error_of(s).find("outside"), std::string::npos);

  s = no_remat_stages(p);
  s[4] = {0, 4};  // x is a graph input: not recomputable
  EXPECT_NE(error_of(s).find("node 0 is not recomputable but runs 2 times"), std::string::npos);
}

TEST(RematSim, RejectsBadProblem) {
  RematProblem p;
  p.nodes = {node({}, 1, 0, false), node({1}, 1, 1)};  // node 1 reads itself
  RematSimulation sim = simulate_remat(p, no_remat_stages(p));
  EXPECT_FALSE(sim.valid);
  EXPECT_NE(sim.error.find("not an earlier node"), std::string::npos);
}

TEST(RematSim, RecomputeKeepsItsInputLive) {
  // Chain 0 -> 1 -> 2 -> 3 with 3 also reading 1; stage 3 = [1, 3]
  // recomputes 1 from 0, so 0 (input) stays live until then.
  // run0: 0 = 1; run1: 0+1 = 1+2 = 3; run2: 0+1+2 = 1+2+4 = 7, then 1 freed
  // (next event is its recompute); stage 3: run 1: 0+2+1 = 7, 0 freed;
  // run 3: 2+1+3 = 4+2+8 = 14. Peak 14, extra cost 5 (node 1's cost).
  RematProblem p;
  p.nodes = {node({}, 1, 0, false), node({0}, 2, 5), node({1}, 4, 1), node({2, 1}, 8, 1)};
  Stages s = no_remat_stages(p);
  s[3] = {1, 3};
  RematSimulation sim = simulate_remat(p, s);
  ASSERT_TRUE(sim.valid) << sim.error;
  EXPECT_EQ(sim.peak, 14);
  EXPECT_EQ(sim.extra_cost, 5);
}

// ---------------------------------------------------------------------------
// Exact solver: hand-made problems

TEST(RematExact, SkipProblemOptimaByBudget) {
  RematProblem p = skip_problem();
  struct Case {
    int64_t budget;
    double extra;
  } cases[] = {{17, 0}, {16, 1}, {14, 1}, {13, 4}, {10, 4}};
  for (const Case& c : cases) {
    p.budget = c.budget;
    RematSolution sol = solve_remat_exact(p);
    ASSERT_TRUE(sol.feasible) << "budget " << c.budget << ": " << sol.note;
    EXPECT_TRUE(sol.proven_optimal) << sol.note;
    EXPECT_NEAR(sol.extra_cost, c.extra, 1e-9) << "budget " << c.budget;
    expect_consistent(p, sol);
  }
  // Budget 14: exactly one recompute, of b (node 2, cost 1), in stage 5 or 6
  // (both give peak 14: in stage 5 the run of b holds x+d+a+b = 10).
  p.budget = 14;
  RematSolution sol = solve_remat_exact(p);
  int recomputes = 0;
  for (size_t t = 0; t < sol.stages.size(); ++t) {
    for (int32_t i : sol.stages[t]) {
      if (static_cast<size_t>(i) == t) continue;
      ++recomputes;
      EXPECT_EQ(i, 2) << "stage " << t;
      EXPECT_GE(t, 5u);
    }
  }
  EXPECT_EQ(recomputes, 1);
}

TEST(RematExact, InfeasibleAboveTheFloorIsProven) {
  // skip_problem: floor 9 (c + x at run 3), but every schedule needs 10.
  RematProblem p = skip_problem();
  EXPECT_EQ(remat_floor(p), 9);
  p.budget = 9;
  RematSolution sol = solve_remat_exact(p);
  EXPECT_FALSE(sol.feasible);
  EXPECT_NE(sol.note.find("proven by CBC"), std::string::npos) << sol.note;
  EXPECT_NE(sol.note.find("floor is 9 bytes"), std::string::npos) << sol.note;
}

TEST(RematExact, BudgetBelowFloor) {
  RematProblem p = skip_problem();
  p.budget = 8;
  RematSolution sol = solve_remat_exact(p);
  EXPECT_FALSE(sol.feasible);
  EXPECT_EQ(sol.note, "infeasible: floor is 9 bytes");
}

TEST(RematExact, NonRecomputableRespected) {
  // With b (node 2) not recomputable, budget 14 must recompute a instead
  // (stage 5 = [1, 5]): extra cost 3 instead of 1.
  RematProblem p = skip_problem();
  p.nodes[2].recomputable = false;
  p.budget = 14;
  RematSolution sol = solve_remat_exact(p);
  ASSERT_TRUE(sol.feasible) << sol.note;
  EXPECT_TRUE(sol.proven_optimal);
  EXPECT_NEAR(sol.extra_cost, 3, 1e-9);
  Stages want = no_remat_stages(p);
  want[5] = {1, 5};
  EXPECT_EQ(sol.stages, want);
  expect_consistent(p, sol);
  // And with a not recomputable either, 14 is out of reach: infeasible.
  p.nodes[1].recomputable = false;
  EXPECT_FALSE(solve_remat_exact(p).feasible);
}

TEST(RematExact, StartScheduleIsOnlyAHint) {
  // A costly but fitting start (recompute both a and b: peak 10, cost 4) and
  // a malformed one (stage 6 out of index order) must both still give the
  // optimum for budget 14: cost 1.
  RematProblem p = skip_problem();
  p.budget = 14;
  ExactOptions opts;
  opts.start = no_remat_stages(p);
  opts.start[5] = {1, 5};
  opts.start[6] = {2, 6};
  RematSolution sol = solve_remat_exact(p, opts);
  ASSERT_TRUE(sol.feasible) << sol.note;
  EXPECT_TRUE(sol.proven_optimal);
  EXPECT_NEAR(sol.extra_cost, 1, 1e-9);
  opts.start[6] = {6, 2};
  sol = solve_remat_exact(p, opts);
  ASSERT_TRUE(sol.feasible) << sol.note;
  EXPECT_NEAR(sol.extra_cost, 1, 1e-9);
  expect_consistent(p, sol);
}

TEST(RematExact, Diamond) {
  // 0: x (4 B, input) -> 1: a, 2: b (4 B each) -> 3: y = h(a, b) (4 B).
  // No remat: run 2: x+a+b = 12 (x freed after), run 3: a+b+y = 12. Node 3
  // needs a, b and y at once, so 12 is also the floor: recomputation cannot
  // help; 12 is solved without it, 11 is infeasible.
  RematProblem p;
  p.nodes = {node({}, 4, 0, false), node({0}, 4, 1), node({0}, 4, 1), node({1, 2}, 4, 1, true, true)};
  EXPECT_EQ(remat_floor(p), 12);
  p.budget = 12;
  RematSolution sol = solve_remat_exact(p);
  ASSERT_TRUE(sol.feasible);
  EXPECT_EQ(sol.stages, no_remat_stages(p));
  EXPECT_EQ(sol.peak, 12);
  EXPECT_EQ(sol.extra_cost, 0);
  p.budget = 11;
  sol = solve_remat_exact(p);
  EXPECT_FALSE(sol.feasible);
  EXPECT_EQ(sol.note, "infeasible: floor is 12 bytes");
}

TEST(RematExact, LongSkipDiamondRecomputesBranch) {
  // A diamond whose join comes late: 0: x (1 B, input); 1: a = f(x) (6 B,
  // cost 2); 2: p = g(x) (10 B, cost 1); 3: q = h(p) (1 B); 4: y = k(a, q)
  // (1 B, output). No remat: run 2: x+a+p = 17 (x freed), run 3: a+p+q = 17.
  // Recomputing a in stage 4 keeps x (1 B) instead of a (6 B) across the
  // peak: run 2: x+p = 11, run 3: x+p+q = 12, stage 4: x+q+a = 8, then
  // q+a+y = 8 -> peak 12, extra cost 2. Floor: run 2 needs x+p = 11 at least,
  // and x must stay (it feeds the recompute) so 12 is the best possible.
  RematProblem p;
  p.nodes = {node({}, 1, 0, false), node({0}, 6, 2), node({0}, 10, 1), node({2}, 1, 1), node({1, 3}, 1, 1, true, true)};
  EXPECT_EQ(remat_test::no_remat_peak(p), 17);
  p.budget = 12;
  RematSolution sol = solve_remat_exact(p);
  ASSERT_TRUE(sol.feasible) << sol.note;
  EXPECT_TRUE(sol.proven_optimal);
  EXPECT_NEAR(sol.extra_cost, 2, 1e-9);
  EXPECT_EQ(sol.peak, 12);
  expect_consistent(p, sol);
  p.budget = 11;
  EXPECT_FALSE(solve_remat_exact(p).feasible);
}

// ---------------------------------------------------------------------------
// Exact solver: random problems

/// All stage choices: stage t runs any subset of the recomputable nodes i < t
/// (in index order) and then t. keep_to_end nodes are skipped as candidates:
/// they are never freed, so recomputing one only adds cost. Depth-first with
/// one prune: stop when the cost so far reaches the best found. Returns the
/// least extra cost with simulated peak <= budget, or -1.
double brute_force(const RematProblem& p) {
  const size_t n = p.nodes.size();
  std::vector<std::vector<int32_t>> cand(n);
  for (size_t t = 0; t < n; ++t) {
    for (size_t i = 0; i < t; ++i) {
      if (p.nodes[i].recomputable && !p.nodes[i].keep_to_end) cand[t].push_back(static_cast<int32_t>(i));
    }
  }
  Stages stages(n);
  double best = -1;
  std::function<void(size_t, double)> dfs = [&](size_t t, double cost) {
    if (best >= 0 && cost >= best - 1e-9) return;
    if (t == n) {
      RematSimulation sim = simulate_remat(p, stages);
      if (sim.valid && sim.peak <= p.budget) best = cost;
      return;
    }
    const auto& c = cand[t];
    for (uint32_t mask = 0; mask < (1u << c.size()); ++mask) {
      stages[t].clear();
      double add = 0;
      for (size_t b = 0; b < c.size(); ++b) {
        if (mask & (1u << b)) {
          stages[t].push_back(c[b]);
          add += p.nodes[static_cast<size_t>(c[b])].cost;
        }
      }
      stages[t].push_back(static_cast<int32_t>(t));
      dfs(t + 1, cost + add);
    }
  };
  dfs(0, 0);
  return best;
}

/// Problem `k` of the brute-force set: generators in turn, 4..7 nodes (at
/// most 2^15 stage choices; 8 nodes would be 2^21, seconds per problem),
/// budgets spread between the single-node floor and the no-remat peak.
RematProblem small_problem(int k) {
  remat_test::GenOptions o;
  o.unit = 1;
  o.max_units = 12;
  o.non_recomputable_percent = k % 3 == 0 ? 20 : 0;
  o.last_keep_to_end = k % 2 == 0;
  const uint64_t seed = 1000 + static_cast<uint64_t>(k);
  RematProblem p;
  switch (k % 4) {
    case 0: p = remat_test::random_training(seed, 3, o); break;              // 6 nodes
    case 1: p = remat_test::random_unet(seed, 6 + k % 2, o); break;          // 6..7 nodes
    case 2: p = remat_test::random_layered(seed, 3, 2, 2, o); break;         // 4..7 nodes
    default: p = remat_test::random_chain(seed, 5 + k % 3, o); break;        // 5..7 nodes
  }
  const double fracs[] = {0.0, 0.25, 0.5, 0.75, 0.9};
  p.budget = remat_test::budget_between(p, fracs[k % 5]);
  return p;
}

TEST(RematExact, MatchesBruteForceOnSmallRandomProblems) {
  int feasible = 0, with_recompute = 0;
  for (int k = 0; k < 20; ++k) {
    RematProblem p = small_problem(k);
    double want = brute_force(p);
    RematSolution sol = solve_remat_exact(p);
    SCOPED_TRACE(::testing::Message() << "problem " << k << " (" << p.nodes.size() << " nodes, budget " << p.budget << "): " << sol.note);
    EXPECT_EQ(sol.feasible, want >= 0);
    if (!sol.feasible || want < 0) continue;
    ++feasible;
    if (want > 0) ++with_recompute;
    EXPECT_TRUE(sol.proven_optimal);
    EXPECT_NEAR(sol.extra_cost, want, 1e-6);
    expect_consistent(p, sol);
  }
  // The set must exercise the interesting case, not only trivial budgets.
  std::printf("[ remat   ] %d of 20 feasible, %d of them need recomputation\n", feasible, with_recompute);
  EXPECT_GE(feasible, 10);
  EXPECT_GE(with_recompute, 5);
}

TEST(RematExact, BudgetFreeSolutionIsTheNoRematSchedule) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    RematProblem p = remat_test::random_layered(seed, 6, 3);
    int64_t peak = remat_test::no_remat_peak(p);
    for (int64_t budget : {peak, int64_t{1} << 50}) {
      p.budget = budget;
      RematSolution sol = solve_remat_exact(p);
      ASSERT_TRUE(sol.feasible) << sol.note;
      EXPECT_TRUE(sol.proven_optimal);
      EXPECT_EQ(sol.stages, no_remat_stages(p));
      EXPECT_EQ(sol.peak, peak);
      EXPECT_EQ(sol.extra_cost, 0);
    }
  }
}

TEST(RematExact, MediumProblemsStayWithinBudget) {
  // About 20 nodes at 60% of the way from floor to no-remat peak: whatever
  // CBC returns within its limit must replay within the budget. (On an idle
  // core each solves to optimality in about a second; the limit keeps the
  // test under 10 s on a loaded machine.)
  ExactOptions opts;
  opts.time_limit_s = 2.5;
  struct Named {
    const char* name;
    RematProblem p;
  } problems[] = {
      {"training 2x10", remat_test::random_training(7, 10)},
      {"unet 20", remat_test::random_unet(8, 20)},
      {"layered ~20", remat_test::random_layered(9, 8, 3)},
  };
  for (auto& [name, p] : problems) {
    p.budget = remat_test::budget_between(p, 0.6);
    auto start = std::chrono::steady_clock::now();
    RematSolution sol = solve_remat_exact(p, opts);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    SCOPED_TRACE(name);
    ASSERT_TRUE(sol.feasible) << sol.note;
    expect_consistent(p, sol);
    EXPECT_LT(s, opts.time_limit_s + 1);  // the limit is shared by retries
    std::printf("[ remat   ] %s: %zu nodes, peak %lld / budget %lld (no remat %lld), extra %.0f, %.2f s: %s\n", name,
                p.nodes.size(), static_cast<long long>(sol.peak), static_cast<long long>(p.budget),
                static_cast<long long>(remat_test::no_remat_peak(p)), sol.extra_cost, s, sol.note.c_str());
  }
}

}  // namespace
}  // namespace memplan
