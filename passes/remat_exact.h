// Exact rematerialization: Checkmate's MILP (Jain et al., MLSys 2020) solved
// with CBC.
//
// Search space: schedules in the RematProblem sense where stage t runs a set
// of nodes i <= t in index order, each at most once per stage, ending with t
// (the same space simulate_remat accepts, restricted to index order inside a
// stage). Within that space the answer is optimal when proven_optimal is set.
//
// Algorithm:
//  1. If the schedule without recomputation fits the budget, return it (no
//     recomputation is the least possible cost).
//  2. If the budget is below remat_floor(), return infeasible without solving.
//  3. Build the MILP (variables and constraints in remat_exact.cc's banner),
//     solve it with CBC under the time limit, starting from opts.start or
//     the recompute-all schedule when either fits the budget.
//  4. Read the stages from R, replay them with simulate_remat, and report the
//     simulated peak and extra cost (the simulator is the truth). If solver
//     tolerances let the replay exceed the budget, tighten the memory bound by
//     the excess and solve again (a few times at most).
//
// Postconditions: feasible => simulate_remat(p, stages) is valid with peak <=
// budget; proven_optimal only when CBC proved optimality for the real budget.
#pragma once

#include <cstdint>
#include <vector>

#include "passes/remat_problem.h"

namespace memplan {

struct ExactOptions {
  double time_limit_s = 10;  // wall-clock limit for CBC (per solve)
  int threads = 1;
  /// Optional starting schedule (e.g. from the fast solver), in index order
  /// within each stage; used as CBC's first incumbent when it fits.
  std::vector<std::vector<int32_t>> start;
};

/// The solution of least total recomputation cost whose simulated peak is
/// within p.budget; feasible=false with a note when none exists or none was
/// found within the time limit.
RematSolution solve_remat_exact(const RematProblem& p, const ExactOptions& opts = {});

/// A lower bound on any schedule's peak: the largest memory needed to run a
/// single node in its own stage: fixed + its output + its inputs + the outputs
/// that must be held across it anyway (keep_to_end outputs of earlier nodes,
/// and non-recomputable earlier outputs read by a later node).
int64_t remat_floor(const RematProblem& p);

}  // namespace memplan
