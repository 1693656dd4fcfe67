// Coarsening for the exact solver (passes/remat_coarsen.h) and the fast
// versus exact comparison on coarsened fixtures (issue 4: "random DAGs and
// coarsened fixtures; in CI at most ~40 nodes and 10 s each").
//
//  - a hand-made chain: the coarse problem's deps, bytes, costs and flags,
//    and the refinement of a coarse schedule (unread recomputed runs
//    dropped), checked against written-out answers;
//  - groups never exceed max_nodes and never mix recomputable and fixed
//    nodes when the flips allow it; mixed groups split in two, and refined
//    schedules stay valid;
//  - coarsened fixtures: the training graphs of tiny_cnn and
//    tiny_transformer as rematerialization problems, coarsened to 40 groups,
//    at budgets 30%, 60% and 90% of the way from the fine floor to the
//    no-recomputation peak. The fast solver (on the full problem) never
//    breaks the budget; the exact solver's coarse schedule, refined and
//    replayed by simulate_remat on the full problem, is valid and within the
//    budget wherever it claims a schedule. The ratio fast / exact added
//    compute is printed (a coarse optimum bounds the fine optimum from above,
//    so the fast solver may come out below 1);
//  - fast against exact on the coarse problems themselves (24 and 32
//    groups, budgets 50/70/90% of the coarse peak): where CBC proves the
//    optimum the fast solver fits too, within 1.05 of the optimal added
//    compute.
#include <gtest/gtest.h>

#include <cstdio>

#include "compiler/pipeline.h"
#include "passes/remat.h"
#include "passes/remat_coarsen.h"
#include "passes/remat_exact.h"
#include "passes/remat_fast.h"
#include "test/cli_test_util.h"
#include "test/remat_test_util.h"

namespace memplan::remat_test {
namespace {

// 0 -> 1 -> 2 -> 3 -> 4 -> 5, and 5 also reads 1: groups {0,1} {2,3} {4,5}.
RematProblem chain6() {
  RematProblem p;
  p.fixed_bytes = 7;
  p.budget = 100;
  p.nodes = {node({}, 10, 1), node({0}, 20, 2), node({1}, 30, 3),
             node({2}, 40, 4), node({3}, 50, 5), node({4, 1}, 60, 6)};
  p.nodes[5].keep_to_end = true;
  return p;
}

TEST(RematCoarsen, ChainGroupsDepsBytesAndCosts) {
  RematCoarsening map;
  const RematProblem c = coarsen_remat_problem(chain6(), 3, &map);
  EXPECT_EQ(map.anchor, (std::vector<int32_t>{0, 2, 4}));
  EXPECT_EQ(map.members, (std::vector<std::vector<int32_t>>{{0, 1}, {2, 3}, {4, 5}}));
  EXPECT_EQ(map.group_of, (std::vector<int32_t>{0, 0, 1, 1, 2, 2}));
  ASSERT_EQ(c.nodes.size(), 3u);
  EXPECT_EQ(c.fixed_bytes, 7);
  EXPECT_EQ(c.budget, 100);
  // Group 0 leaves node 1 held (read by 2 and 5); node 0 is internal.
  EXPECT_EQ(c.nodes[0].bytes, 20);
  EXPECT_EQ(c.nodes[1].bytes, 40);   // node 3, read by 4
  EXPECT_EQ(c.nodes[2].bytes, 60);   // node 5, kept to the end; node 4 is internal
  EXPECT_EQ(c.nodes[0].deps, (std::vector<int32_t>{}));
  EXPECT_EQ(c.nodes[1].deps, (std::vector<int32_t>{0}));
  EXPECT_EQ(c.nodes[2].deps, (std::vector<int32_t>{0, 1}));
  EXPECT_DOUBLE_EQ(c.nodes[1].cost, 7);
  EXPECT_TRUE(c.nodes[1].recomputable);
  EXPECT_TRUE(c.nodes[2].keep_to_end);
  EXPECT_FALSE(c.nodes[0].keep_to_end);
}

TEST(RematCoarsen, RefinementRunsRecomputedGroupsAndDropsUnreadRuns) {
  const RematProblem p = chain6();
  RematCoarsening map;
  (void)coarsen_remat_problem(p, 3, &map);
  // Coarse: group 0 recomputed before group 2.
  const auto fine = refine_remat_stages(p, map, {{0}, {1}, {0, 2}});
  // Stage 4 reruns 0 and 1 (1 is read by 5; 0 is read by the rerun of 1),
  // then 4; stage 5 is 5 alone.
  const std::vector<std::vector<int32_t>> want = {{0}, {1}, {2}, {3}, {0, 1, 4}, {5}};
  EXPECT_EQ(fine, want);
  const RematSimulation sim = simulate_remat(p, fine);
  ASSERT_TRUE(sim.valid) << sim.error;
  EXPECT_DOUBLE_EQ(sim.extra_cost, 3);
  // Group 1 recomputed before group 2: node 3 is read by 4, node 2 only by
  // the rerun of 3, so both run; a rerun whose reader is gone is dropped.
  const auto fine2 = refine_remat_stages(p, map, {{0}, {1}, {1, 2}});
  EXPECT_EQ(fine2[4], (std::vector<int32_t>{2, 3, 4}));
  RematProblem q = p;
  q.nodes[4].deps = {1};  // now nothing in group 2 reads group 1
  const auto fine3 = refine_remat_stages(q, map, {{0}, {1}, {1, 2}});
  EXPECT_EQ(fine3[4], (std::vector<int32_t>{4}));
}

TEST(RematCoarsen, GroupsRespectTheLimitAndKeepFixedNodesApart) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    RematProblem p = random_training(seed, 60);
    for (int32_t max_nodes : {1, 5, 17, 40, 1000}) {
      RematCoarsening map;
      const RematProblem c = coarsen_remat_problem(p, max_nodes, &map);
      EXPECT_LE(static_cast<int32_t>(c.nodes.size()), max_nodes);
      if (max_nodes >= static_cast<int32_t>(p.nodes.size())) {
        EXPECT_EQ(c.nodes.size(), p.nodes.size());
      }
      int64_t flips = 1;
      for (size_t i = 1; i < p.nodes.size(); ++i)
        flips += p.nodes[i].recomputable != p.nodes[i - 1].recomputable;
      if (flips > max_nodes) continue;
      for (size_t i = 0; i < p.nodes.size(); ++i)
        EXPECT_EQ(p.nodes[i].recomputable, c.nodes[map.group_of[i]].recomputable)
            << "seed " << seed << " max " << max_nodes << " node " << i;
    }
  }
}

TEST(RematCoarsen, MixedGroupsSplitAndRefinedSchedulesStayValid) {
  // BatchNorm-like: each recomputable node has a fixed entry (its saved
  // statistics) right after it, so cutting on flips needs a group per node.
  RematProblem bn;
  bn.fixed_bytes = 1;
  for (int32_t i = 0; i < 8; ++i) {
    bn.nodes.push_back(node(i == 0 ? std::vector<int32_t>{} : std::vector<int32_t>{2 * (i - 1)}, 10, 1));
    bn.nodes.push_back(node({2 * i}, 1, 0.1));
    bn.nodes.back().recomputable = false;
  }
  for (int32_t j = 7; j >= 0; --j) {  // backward: layer j's output, statistics and gradient
    std::vector<int32_t> deps = {2 * j, 2 * j + 1};
    if (j < 7) deps.push_back(static_cast<int32_t>(bn.nodes.size()) - 1);
    bn.nodes.push_back(node(deps, 10, 1));
  }
  RematCoarsening bmap;
  const RematProblem bc = coarsen_remat_problem(bn, 12, &bmap);
  ASSERT_LE(bc.nodes.size(), 12u);
  int recomputable = 0;  // forward coarse nodes that may be recomputed
  for (size_t g = 0; g < bc.nodes.size(); ++g) recomputable += bc.nodes[g].recomputable && bmap.members[g][0] < 16;
  EXPECT_GT(recomputable, 0) << "every forward group mixes a fixed entry: only the split leaves any recomputable";
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::vector<RematProblem> problems = {random_training(seed, 40), bn};
    for (size_t i = 0; i < problems[0].nodes.size(); i += 3) problems[0].nodes[i].recomputable = false;  // many flips
    for (const RematProblem& p : problems)
      for (int32_t max_nodes : {4, 9, 16}) {
        RematCoarsening map;
        RematProblem c = coarsen_remat_problem(p, max_nodes, &map);
        ASSERT_LE(static_cast<int32_t>(c.nodes.size()), max_nodes);
        std::vector<int32_t> seen(p.nodes.size(), 0);
        for (size_t g = 0; g < c.nodes.size(); ++g) {
          for (int32_t u : c.nodes[g].deps) EXPECT_LT(u, static_cast<int32_t>(g));
          for (int32_t i : map.members[g]) {
            ++seen[i];
            EXPECT_EQ(map.group_of[i], static_cast<int32_t>(g));
          }
          EXPECT_EQ(map.anchor[g], map.members[g].front());
        }
        EXPECT_EQ(seen, std::vector<int32_t>(p.nodes.size(), 1));
        const int64_t peak = simulate_remat(c, no_remat_stages(c)).peak;
        for (double frac : {0.5, 0.8}) {
          c.budget = static_cast<int64_t>(static_cast<double>(peak) * frac);
          const RematSolution cs = solve_remat_fast(c);
          const RematSimulation sim = simulate_remat(p, refine_remat_stages(p, map, cs.stages));
          EXPECT_TRUE(sim.valid) << "seed " << seed << " max " << max_nodes << ": " << sim.error;
        }
      }
  }
}

/// The training graph of a sample model as a rematerialization problem.
RematProblem fixture_problem(const std::string& path, std::map<std::string, int64_t> dims) {
  CompileOptions o;
  o.dims = std::move(dims);
  o.micro_batches = 1;
  o.precision = "fp32";
  const CompileResult r = compile_model(path, o);
  return remat_problem(r.graph, {});
}

TEST(RematCoarsen, FastAgainstExactOnCoarsenedFixtures) {
  struct Fixture {
    const char* name;
    RematProblem p;
  };
  std::vector<Fixture> fixtures;
  fixtures.push_back({"tiny_cnn", fixture_problem(testing::tiny_cnn(), {{"batch", 16}})});
  fixtures.push_back(
      {"tiny_transformer", fixture_problem(testing::tiny_transformer(), {{"batch", 8}, {"seq", 32}})});
  int proven = 0, claimed = 0;
  double fast_total = 0, exact_total = 0;  // added compute where both fit
  for (Fixture& f : fixtures) {
    RematCoarsening map;
    const size_t groups = coarsen_remat_problem(f.p, 40, &map).nodes.size();
    ASSERT_LE(groups, 40u);
    ASSERT_GT(f.p.nodes.size(), 40u) << f.name << " is small enough to solve exactly";
    for (double frac : {0.3, 0.6, 0.9}) {
      RematProblem p = f.p;
      p.budget = budget_between(p, frac);
      const RematSolution fa = solve_remat_fast(p);
      const RematSimulation fs = simulate_remat(p, fa.stages);
      ASSERT_TRUE(fs.valid) << fs.error;
      if (fa.feasible) {
        EXPECT_LE(fs.peak, p.budget) << f.name << ": the fast solver broke the budget";
      }
      const RematSolution ex = solve_remat_exact_coarsened(p, {.time_limit_s = 10}, 40);
      std::printf("[ coarse  ] %-16s %4zu nodes -> %2zu groups, budget %.1f: fast %s %.4g ms, "
                  "coarse exact %s%s %.4g ms%s\n",
                  f.name, p.nodes.size(), groups, frac, fa.feasible ? "fits" : "misses",
                  1e3 * fa.extra_cost, ex.feasible ? "fits" : "misses",
                  ex.proven_optimal ? " (proven)" : "", 1e3 * ex.extra_cost,
                  ex.note.empty() ? "" : (" [" + ex.note + "]").c_str());
      if (!ex.feasible) continue;
      ++claimed;
      const RematSimulation es = simulate_remat(p, ex.stages);
      ASSERT_TRUE(es.valid) << f.name << ": " << es.error;
      EXPECT_LE(es.peak, p.budget) << f.name << ": the refined exact schedule broke the budget";
      EXPECT_EQ(es.peak, ex.peak);
      EXPECT_DOUBLE_EQ(es.extra_cost, ex.extra_cost);
      if (fa.feasible) {
        proven += ex.proven_optimal;
        fast_total += fa.extra_cost;
        exact_total += ex.extra_cost;
      }
    }
  }
  std::printf("[ coarse  ] fixtures: the coarse exact schedule fits at %d of 6 points (%d with a "
              "proven coarse optimum); fast/exact added compute there %.4f\n",
              claimed, proven, exact_total > 0 ? fast_total / exact_total : 0.0);
  EXPECT_GE(claimed, 1) << "the coarsened exact solver found no schedule at any point";
}

/// Fast against exact on the coarse problem itself: both solvers see the
/// same ~30-node problem, so a point where CBC proves optimality measures
/// the fast solver's quality on a real model's structure (the comparison
/// above measures the coarse schedule refined to the full graph instead).
TEST(RematCoarsen, FastAgainstExactOnTheCoarseProblems) {
  std::vector<std::pair<const char*, RematProblem>> fixtures;
  fixtures.push_back({"tiny_cnn", fixture_problem(testing::tiny_cnn(), {{"batch", 16}})});
  fixtures.push_back(
      {"tiny_transformer", fixture_problem(testing::tiny_transformer(), {{"batch", 8}, {"seq", 32}})});
  int proven = 0;
  double fast_total = 0, exact_total = 0, worst = 1;
  for (auto& [name, fine] : fixtures) {
    for (int32_t groups : {24, 32}) {
      RematCoarsening map;
      RematProblem c = coarsen_remat_problem(fine, groups, &map);
      const int64_t peak = simulate_remat(c, no_remat_stages(c)).peak;
      for (double frac : {0.5, 0.7, 0.9}) {
        c.budget = static_cast<int64_t>(static_cast<double>(peak) * frac);
        const RematSolution ex = solve_remat_exact(c, {.time_limit_s = 10});
        const RematSolution fa = solve_remat_fast(c);
        const RematSimulation fs = simulate_remat(c, fa.stages);
        ASSERT_TRUE(fs.valid) << fs.error;
        if (fa.feasible) {
          EXPECT_LE(fs.peak, c.budget) << name << ": the fast solver broke the budget";
        }
        std::printf("[ coarse  ] %-16s %2zu groups, %.0f%% of the coarse peak: exact %s%s %.4g ms, "
                    "fast %s %.4g ms\n",
                    name, c.nodes.size(), 100 * frac, ex.feasible ? "fits" : "misses",
                    ex.proven_optimal ? " (proven)" : "", 1e3 * ex.extra_cost,
                    fa.feasible ? "fits" : "misses", 1e3 * fa.extra_cost);
        if (!ex.feasible || !ex.proven_optimal) continue;
        EXPECT_TRUE(fa.feasible) << name << " " << frac << ": the fast solver missed a proven fit";
        if (!fa.feasible) continue;
        EXPECT_LE(ex.extra_cost, fa.extra_cost + 1e-12) << "exact is not optimal";
        ++proven;
        fast_total += fa.extra_cost;
        exact_total += ex.extra_cost;
        const double ratio = ex.extra_cost > 0 ? fa.extra_cost / ex.extra_cost : (fa.extra_cost > 0 ? 99 : 1);
        worst = std::max(worst, ratio);
        EXPECT_LE(ratio, 1.05) << name << " " << frac;
      }
    }
  }
  std::printf("[ coarse  ] coarse problems: %d proven points, fast/exact added compute %.4f (worst %.4f)\n",
              proven, exact_total > 0 ? fast_total / exact_total : 1.0, worst);
  EXPECT_GE(proven, 1) << "no point with a proven optimum: the comparison measured nothing";
}

}  // namespace
}  // namespace memplan::remat_test
