// Fast versus exact rematerialization solver on small problems (issue 4,
// "Exact versus fast solver on small graphs"): random chains, U-Nets,
// layered DAGs and training-like graphs of at most 40 nodes, at budgets 30%,
// 60% and 90% of the way from the single-node floor to the no-recomputation
// peak. A point counts only when CBC proves optimality within 10 s. Then:
//  - the fast solver never breaks the budget (its replayed peak <= budget);
//  - the exact optimum is never worse than the fast solution (a check on
//    the exact solver's optimality claim);
//  - the quality target: fast/exact added compute <= 1.05 at EVERY
//    point, and the fast solver finds a schedule wherever CBC proved one
//    exists (the worst point was 2.33 and three points were missed before
//    the local search of remat_fast.h steps 5-7; every point is now 1.0).
//    The ratio per family and in total is printed for docs/benchmarks.md.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "passes/remat_coarsen.h"
#include "passes/remat_exact.h"
#include "passes/remat_fast.h"
#include "test/remat_test_util.h"

namespace memplan::remat_test {
namespace {

struct Tally {
  int points = 0, fast_infeasible = 0, skipped = 0;
  double fast_extra = 0, exact_extra = 0, worst = 1;
};

void compare(const RematProblem& base, Tally& t) {
  for (double frac : {0.3, 0.6, 0.9}) {
    RematProblem p = base;
    p.budget = budget_between(p, frac);
    RematSolution ex = solve_remat_exact(p, {.time_limit_s = 10});
    if (!ex.proven_optimal || !ex.feasible) {
      ++t.skipped;
      continue;
    }
    RematSolution fa = solve_remat_fast(p);
    const RematSimulation sim = simulate_remat(p, fa.stages);
    ASSERT_TRUE(sim.valid) << sim.error;
    if (!fa.feasible) {
      ++t.fast_infeasible;  // exact found a schedule the heuristic missed
      ADD_FAILURE() << "budget fraction " << frac << ": the fast solver found no schedule within " << p.budget
                    << " bytes (best peak " << fa.peak << "), exact did at cost " << ex.extra_cost;
      continue;
    }
    EXPECT_LE(sim.peak, p.budget) << "the fast solver broke the budget";
    EXPECT_LE(ex.extra_cost, fa.extra_cost + 1e-9) << "exact is not optimal";
    ++t.points;
    t.fast_extra += fa.extra_cost;
    t.exact_extra += ex.extra_cost;
    const double ratio = ex.extra_cost > 0 ? fa.extra_cost / ex.extra_cost : (fa.extra_cost > 0 ? 99.0 : 1.0);
    t.worst = std::max(t.worst, ratio);
    EXPECT_LE(ratio, 1.05) << "budget fraction " << frac << ": fast " << fa.extra_cost << ", exact " << ex.extra_cost;
  }
}

void report(const char* family, const Tally& t) {
  std::printf("[ compare ] %-10s %2d points: fast/exact added compute %.4f (worst point %.4f); "
              "fast infeasible at %d, exact unproven at %d\n",
              family, t.points, t.exact_extra > 0 ? t.fast_extra / t.exact_extra : 1.0, t.worst,
              t.fast_infeasible, t.skipped);
}

TEST(RematCompare, FastAgainstExactOnSmallProblems) {
  Tally all;
  auto run = [&](const char* family, auto make) {
    Tally t;
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      SCOPED_TRACE(std::string(family) + " seed " + std::to_string(seed));
      compare(make(seed), t);
    }
    report(family, t);
    all.points += t.points;
    all.fast_infeasible += t.fast_infeasible;
    all.skipped += t.skipped;
    all.fast_extra += t.fast_extra;
    all.exact_extra += t.exact_extra;
    all.worst = std::max(all.worst, t.worst);
  };
  run("chain", [](uint64_t s) { return random_chain(s, 24); });
  run("unet", [](uint64_t s) { return random_unet(s, 24); });
  run("layered", [](uint64_t s) { return random_layered(s, 6, 4); });
  run("training", [](uint64_t s) { return random_training(s, 12); });
  report("all", all);
  EXPECT_GE(all.points, 20) << "too few proven points to compare";
  EXPECT_EQ(all.fast_infeasible, 0);
  EXPECT_LE(all.worst, 1.05) << "the issue's target: fast/exact <= 1.05 at every point";
}


// ---------------------------------------------------------------------------
// RematNode::recompute_until: a node that reads a value an in-place op
// overwrites in stage s may rerun only up to stage s (passes/remat.h). Both
// solvers honour it; simulate_remat rejects a schedule that does not.

/// Reruns past their node's limit in `stages`.
int violations(const RematProblem& p, const std::vector<std::vector<int32_t>>& stages) {
  int bad = 0;
  for (size_t t = 0; t < stages.size(); ++t)
    for (int32_t v : stages[t])
      bad += v != static_cast<int32_t>(t) && static_cast<int64_t>(t) > p.nodes[static_cast<size_t>(v)].recompute_until;
  return bad;
}

TEST(RematLimit, SimulatorRejectsARerunPastTheLimit) {
  RematProblem p = skip_problem();
  p.nodes[2].recompute_until = 5;
  std::vector<std::vector<int32_t>> s = no_remat_stages(p);
  s[6] = {2, 6};
  const RematSimulation sim = simulate_remat(p, s);
  EXPECT_FALSE(sim.valid);
  EXPECT_NE(sim.error.find("stage 6 reruns node 2, which may rerun only up to stage 5"), std::string::npos)
      << sim.error;
  s = no_remat_stages(p);
  s[5] = {2, 5};
  EXPECT_TRUE(simulate_remat(p, s).valid);
}

TEST(RematLimit, BothSolversHonourIt) {
  // skip_problem (remat_test_util.h) at budget 14 reruns b (node 2) late for
  // a cost of 1, and fits 13 for 4 (a and b). Let b rerun only up to stage 4:
  // a rerun there holds b across run 4 as keeping it does, so b is live in
  // run 4 with c and d, plus x (for a rerun of a in stage 5, cost 3) or a:
  // 14 at least. So 14 costs 3 and 13 cannot be met.
  struct Case {
    int64_t budget;
    bool limited, fits;
    double cost;
  };
  for (const Case& c : {Case{14, false, true, 1}, Case{13, false, true, 4}, Case{14, true, true, 3},
                        Case{13, true, false, 0}}) {
    RematProblem p = skip_problem();
    p.budget = c.budget;
    if (c.limited) p.nodes[2].recompute_until = 4;
    const std::string what = "budget " + std::to_string(c.budget) + (c.limited ? ", b until stage 4" : "");
    const RematSolution ex = solve_remat_exact(p, {.time_limit_s = 10});
    const RematSolution fa = solve_remat_fast(p);
    for (const RematSolution* s : {&ex, &fa}) {
      const char* who = s == &ex ? "exact" : "fast";
      ASSERT_EQ(s->feasible, c.fits) << who << ", " << what;
      if (s->stages.empty()) continue;  // exact, infeasible: no schedule
      const RematSimulation sim = simulate_remat(p, s->stages);
      ASSERT_TRUE(sim.valid) << who << ", " << what << ": " << sim.error;
      if (!c.fits) continue;
      EXPECT_LE(sim.peak, c.budget) << who << ", " << what;
      EXPECT_DOUBLE_EQ(sim.extra_cost, c.cost) << who << ", " << what;
    }
    if (!c.fits) {
      EXPECT_NE(ex.note.find("proven by CBC"), std::string::npos) << what << ": " << ex.note;
    }
  }
}

TEST(RematLimit, RandomProblemsWithLimitsStayValid) {
  // Training-like problems with a limit on a third of the forward nodes (a
  // random stage after the node): the fast solver, the exact one and the
  // exact one on the problem coarsened to 10 groups return valid schedules
  // within the budget when they fit. The same problems without the limits
  // get schedules that break them (so the limits bind).
  int fast_fits = 0, exact_fits = 0, coarse_fits = 0, binding = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    RematProblem free_p = random_training(seed, 8);
    free_p.budget = budget_between(free_p, 0.4);
    RematProblem p = free_p;
    Rng rng(seed * 7919);
    const auto n = static_cast<int64_t>(p.nodes.size());
    for (int64_t v = 1; v < n / 2; ++v)
      if (rng.chance(34)) p.nodes[static_cast<size_t>(v)].recompute_until = static_cast<int32_t>(rng.uniform(v + 1, n - 1));
    binding += violations(p, solve_remat_fast(free_p).stages) > 0;
    const RematSolution fa = solve_remat_fast(p), ex = solve_remat_exact(p, {.time_limit_s = 10}),
                        co = solve_remat_exact_coarsened(p, {.time_limit_s = 10}, 10);
    for (const RematSolution* s : {&fa, &ex, &co}) {
      if (s->stages.empty()) {  // exact, infeasible: no schedule
        EXPECT_FALSE(s->feasible) << "seed " << seed;
        continue;
      }
      const RematSimulation sim = simulate_remat(p, s->stages);
      ASSERT_TRUE(sim.valid) << "seed " << seed << ": " << sim.error;
      if (s->feasible) {
        EXPECT_LE(sim.peak, p.budget) << "seed " << seed;
      }
    }
    if (ex.feasible && ex.proven_optimal && fa.feasible) {
      EXPECT_LE(ex.extra_cost, fa.extra_cost + 1e-9) << "seed " << seed;
    }
    fast_fits += fa.feasible;
    exact_fits += ex.feasible;
    coarse_fits += co.feasible;
  }
  std::printf("[ limits  ] 8 problems: fast fits %d, exact %d, coarse exact %d; unlimited fast breaks the "
              "limits on %d\n", fast_fits, exact_fits, coarse_fits, binding);
  EXPECT_GT(binding, 0);
  EXPECT_GT(fast_fits, 0);
}

TEST(RematLimit, CoarseNodesRerunOnlyWhereEveryMemberMay) {
  // A coarse node's reruns run at the anchor (first member) of their stage's
  // group: allowed up to the last group whose anchor is within every
  // member's limit. One node per group keeps each limit.
  RematProblem p = random_chain(3, 12);
  p.nodes[5].recompute_until = 9;
  RematCoarsening same;
  EXPECT_EQ(coarsen_remat_problem(p, 12, &same).nodes[5].recompute_until, 9);
  RematCoarsening map;
  const RematProblem c = coarsen_remat_problem(p, 4, &map);
  const int32_t g = map.group_of[5];
  int32_t want = -1;
  while (want + 1 < static_cast<int32_t>(map.anchor.size()) && map.anchor[static_cast<size_t>(want + 1)] <= 9) ++want;
  EXPECT_EQ(c.nodes[static_cast<size_t>(g)].recompute_until, want);
  EXPECT_LT(map.anchor[static_cast<size_t>(want)], 10);
  if (want + 1 < static_cast<int32_t>(map.anchor.size())) {
    EXPECT_GT(map.anchor[static_cast<size_t>(want + 1)], 9);
  }
  for (size_t h = 0; h < c.nodes.size(); ++h) {
    if (static_cast<int32_t>(h) != g) {
      EXPECT_EQ(c.nodes[h].recompute_until, INT32_MAX) << "group " << h;
    }
  }
}

}  // namespace
}  // namespace memplan::remat_test
