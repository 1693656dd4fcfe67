// Coarsening for the exact rematerialization solver (issue 4: "run it on
// graphs coarsened to layers or blocks where needed").
//
// The MILP (remat_exact.h) has O(n^2) variables and proves optimality only
// for a few dozen nodes; a training graph has thousands. coarsen_remat_problem
// merges runs of consecutive nodes of the base order into at most `max_nodes`
// groups, and the exact solver runs on that problem; refine_remat_stages maps
// its schedule back to the fine problem, where simulate_remat measures the
// true peak and cost.
//
// Groups: contiguous ranges of the fine order, about n / max_nodes nodes
// each, cut also where recomputability changes (a group with a
// non-recomputable node cannot be recomputed, so such nodes are kept out of
// the recomputable groups). If that makes more than max_nodes groups the size
// grows until it does not.
// Coarse node G:
//  - deps: the groups of the fine deps of G's nodes outside G;
//  - bytes: the fine outputs of G read outside G or kept to the end (what G
//    leaves held; its internal temporaries are not counted, so the coarse
//    peak can be below the fine one: the caller checks the refined schedule
//    on the fine problem and tightens the coarse budget by the excess);
//  - cost: the sum; recomputable: every node of G is; keep_to_end: any is.
// Refinement: coarse stage T = [groups recomputed..., T] becomes fine stage
// first(T) = [every node of each recomputed group, in order..., first(T)],
// the other nodes of T in their own stages; then every recomputed fine run
// whose output nothing reads before that node's next run is dropped (a
// backward scan), which only lowers cost and memory. Every refined schedule
// is valid: runs stay in index order, so each read follows a compute.
#pragma once

#include <cstdint>
#include <vector>

#include "passes/remat_problem.h"

namespace memplan {

struct RematCoarsening {
  std::vector<int32_t> group_of;  // fine node -> coarse node
  std::vector<int32_t> first;     // coarse node -> its first fine node; first[G + 1] ends it
};

/// The coarse problem (budget and fixed bytes copied) and its map. With
/// max_nodes >= the problem's size every node is its own group.
RematProblem coarsen_remat_problem(const RematProblem& p, int32_t max_nodes, RematCoarsening* map);

/// The fine stages of a schedule of the coarse problem (see the banner).
std::vector<std::vector<int32_t>> refine_remat_stages(const RematProblem& fine,
                                                      const RematCoarsening& map,
                                                      const std::vector<std::vector<int32_t>>& coarse);

struct ExactOptions;

/// The exact solver on the problem coarsened to at most max_nodes groups,
/// warm-started from the fast solver's coarse schedule, refined and replayed
/// on the fine problem (peak and extra_cost are simulate_remat's). While the
/// refined peak exceeds p.budget the coarse budget is lowered by the excess
/// (at most 4 solves). proven_optimal: CBC proved the last coarse solve
/// optimal: optimal for the coarse problem, an upper bound for the fine one.
RematSolution solve_remat_exact_coarsened(const RematProblem& p, const ExactOptions& opts,
                                          int32_t max_nodes);

}  // namespace memplan
