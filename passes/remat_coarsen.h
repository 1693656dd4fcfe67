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
// each, cut also where recomputability changes when that leaves at most
// max_nodes groups. Otherwise a group that mixes recomputable and fixed
// (non-recomputable) nodes becomes two coarse nodes, its recomputable part
// and its fixed part, the part the other reads first (one fixed node when
// each reads the other); without the split every group of a CNN, where each
// BatchNorm's saved statistics are a fixed entry, would be fixed. The group
// size grows until there are at most max_nodes coarse nodes.
// Coarse node G:
//  - deps: the coarse nodes of the fine deps of G's members outside G;
//  - bytes: the fine outputs of G read outside G or kept to the end (what G
//    leaves held; its internal temporaries are not counted, so the coarse
//    peak can be below the fine one: the caller checks the refined schedule
//    on the fine problem and tightens the coarse budget by the excess);
//  - cost: the sum; recomputable: every member is; keep_to_end: any is.
// Refinement: every fine node t runs in its own stage t; the recomputations
// of coarse stage T (every member of each recomputed coarse node, in order)
// run first in the stage of T's first member (its anchor). A recomputed node
// with a member at or after that anchor (the other part of T's own group)
// is skipped: its outputs are still held from their first runs. Then every
// recomputed fine run whose output nothing reads before that node's next run
// is dropped (a backward scan), which only lowers cost and memory. Every
// refined schedule is valid: a rerun comes after the first run of each of its
// members and of their inputs, so each read follows a compute.
#pragma once

#include <cstdint>
#include <vector>

#include "passes/remat_problem.h"

namespace memplan {

struct RematCoarsening {
  std::vector<int32_t> group_of;                // fine node -> coarse node
  std::vector<std::vector<int32_t>> members;    // coarse node -> its fine nodes, ascending
  std::vector<int32_t> anchor;                  // coarse node -> its first member
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
