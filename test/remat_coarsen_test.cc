// Coarsening for the exact solver (passes/remat_coarsen.h) and the fast
// versus exact comparison on coarsened fixtures (issue 4: "random DAGs and
// coarsened fixtures; in CI at most ~40 nodes and 10 s each").
//
//  - a hand-made chain: the coarse problem's deps, bytes, costs and flags,
//    and the refinement of a coarse schedule (unread recomputed runs
//    dropped), checked against written-out answers;
//  - groups never exceed max_nodes and never mix recomputable and fixed
//    nodes when the flips allow it;
//  - coarsened fixtures: the training graphs of tiny_cnn and
//    tiny_transformer as rematerialization problems, coarsened to 40 groups,
//    at budgets 30%, 60% and 90% of the way from the fine floor to the
//    no-recomputation peak. The fast solver (on the full problem) never
//    breaks the budget; the exact solver's coarse schedule, refined and
//    replayed by simulate_remat on the full problem, is valid and within the
//    budget wherever it claims a schedule. The ratio fast / exact added
//    compute is printed (a coarse optimum bounds the fine optimum from above,
//    so the fast solver may come out below 1).
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
  EXPECT_EQ(map.first, (std::vector<int32_t>{0, 2, 4, 6}));
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

}  // namespace
}  // namespace memplan::remat_test
