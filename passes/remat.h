// Pass: rematerialization (recompute activations instead of keeping them) so
// that the memory plan fits a budget.
//
// rematerialize() turns the graph into a RematProblem (remat_problem.h):
//  - base order: schedule() (schedule.h, method best); problem node i is the
//    i-th graph node of that order;
//  - bytes: aligned arena bytes of the node's outputs that own storage (views,
//    in-place and resident outputs add 0);
//  - deps: producers of its inputs and of every tensor along their alias chains
//    (a view keeps its root's storage alive, so a reader of the view needs the
//    root's producer in memory);
//  - cost: node_time (cost_model.h);
//  - not recomputable: nodes with an in-place output, nodes whose output some
//    in-place op overwrites, nodes feeding graph outputs (keep_to_end). A node
//    reading a tensor that an in-place op overwrites at stage s may be
//    recomputed only up to stage s (RematNode::recompute_until, which both
//    solvers honour; a later rerun would read the changed value);
//  - replica sets: the copies of a node in micro-batch replicas ("X/mb<i>",
//    compiler/autodiff_microbatch.cc), so the fast solver can try a
//    recomputation in every replica at once;
//  - fixed_bytes: resident tensors and graph inputs (aligned);
//  - workspaces: an op with scratch bytes gets a pseudo entry just before it
//    (bytes = workspace, deps = the op's deps, cost ~0) that the op depends
//    on, so the scratch is counted exactly while the op runs (not held like
//    an output; re-made for free before a recomputation of the op);
//  - a non-recomputable node with several storage-owning outputs gets a
//    pseudo entry per extra output so each dies at its own last use;
//  - budget: budget_bytes (the problem's peak includes fixed_bytes); the
//    caller re-plans and checks the real arena plan.
// The solution is applied to the Graph: the first run of each node is the
// original; each later run is a clone "<name>/remat<k>" (same op and attrs,
// attr rng_key = the original's name so Dropout reproduces its mask) with new
// activation outputs "<tensor>/remat<k>"; readers that run after a clone read
// its outputs. A view whose source was recomputed is cloned again (free) when
// it is next read, so no reader keeps an old copy alive.
//
// fit_to_budget() is the pipeline's driver: plan without recomputation; if the
// arena plan exceeds the budget, rematerialize with decreasing internal
// targets until the real plan (plan_memory with the remat schedule) fits.
// Targets: the budget, then each time lower by the real plan's overshoot (at
// least 1/16 of the room above the fixed bytes), until the solver reports the
// target infeasible. If no target fits and none was below the solver's floor,
// one last try aims below the floor: the solver then lowers the peak as far
// as it can, and its result does not depend on the budget (remat_fast.h), so
// every budget at or above that plan's peak fits. That peak is the
// "sure fit"; when nothing fits, fit_to_budget throws Error naming it as the
// smallest budget found that fits (so `--budget FIGURE`, or more, works).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compiler/cost_model.h"
#include "compiler/ir.h"
#include "compiler/plan.h"
#include "passes/plan_memory.h"
#include "passes/remat_problem.h"

namespace memplan {

struct RematOptions {
  int64_t budget_bytes = 0;
  std::string solver = "fast";  // or "exact"
  DeviceProfile device = builtin_device("h100");
  double exact_time_limit_s = 10;
  /// The exact solver runs on problems of at most this many nodes; larger
  /// ones are coarsened to this many groups (remat_coarsen.h), and its
  /// schedule is kept only when cheaper than the fast one on the full problem.
  int32_t exact_max_nodes = 40;
  int64_t alignment = 256;
  bool early_updates = true;  // the base order's (ScheduleOptions::early_updates)
  /// A floor at or above this and above the budget: the caller has no use for
  /// a lower peak, so rematerialize() solves nothing (RematResult::not_solved)
  /// and try_fit_budget reports the unconstrained plan. The budget search
  /// passes budget + 1 while another candidate may still fit, then the lowest
  /// sure fit it has (compiler/budget_search.h). (FastOptions has the same
  /// limit for its ladder.)
  int64_t lower_peak_floor_limit = INT64_MAX;
};

struct RematResult {
  bool fits = false;  // the solver's schedule fits the problem budget
  int64_t recomputed_nodes = 0;  // runs beyond the first
  double extra_seconds = 0;      // estimated (cost model)
  std::vector<NodeId> schedule;  // run order after applying (one entry per run)
  std::vector<std::string> decisions;  // "recompute 'X' (N bytes) before 'Y': +T s"
  std::vector<RecomputeDecision> recomputes;  // the same, structured
  std::string note;
  int64_t fixed_bytes = 0;    // resident + inputs (aligned)
  int64_t problem_peak = 0;   // the solver's replayed peak, fixed_bytes included
  /// No plan of any schedule peaks below this: the problem's floor less the
  /// graph inputs, which the problem holds all step and a plan frees after
  /// their last use.
  int64_t floor_bytes = 0;
  int64_t problem_floor = 0;  // remat_peak_floor of the problem (the solver's own)
  /// The floor is above the budget and at or above lower_peak_floor_limit:
  /// nothing was solved or applied (the graph is unchanged, no schedule).
  bool not_solved = false;
};

/// The problem rematerialize() solves for g (see the banner; budget =
/// o.budget_bytes), for the solver comparisons in tests and the benchmark.
RematProblem remat_problem(const Graph& g, const RematOptions& o);

/// Rewrites g (adds clones, rewires readers). Call on a fresh copy per try.
RematResult rematerialize(Graph& g, const RematOptions& o);

struct RematFit {
  Plan plan;  // the fitting plan; when nothing fits, the unconstrained one
  bool fits = false;
  bool used_remat = false;
  RematResult remat;
  int64_t unconstrained_peak = 0;  // peak of the plan without recomputation
  int64_t best_peak = 0;           // the lowest peak any try reached
  /// When nothing fits: the lowest budget this graph is known to fit when
  /// compiled again with the same options: the unconstrained peak, or the
  /// peak of the lowest-peak try (the solver aimed below its floor), which a
  /// compile at any budget at or above it repeats (see the banner).
  int64_t sure_fit = INT64_MAX;
  int64_t floor_bytes = 0;         // RematResult::floor_bytes: no plan peaks below it
  std::string note;                // the solver's last note (why it bottomed out)
};

/// What a caller already knows of g's plan without recomputation.
struct UnconstrainedPeak {
  int64_t peak_bytes = 0;
  int64_t resident_bytes = 0;
};

/// Like fit_to_budget, without throwing: fits = false when no plan found fits
/// (g is then unchanged and plan is the unconstrained one). With `known` (a
/// peak above the budget, from an earlier plan of the same graph and
/// options) the unconstrained plan is not made again: fit.plan is then empty
/// when nothing fits, but for its summary's peak and resident bytes.
RematFit try_fit_budget(Graph& g, const PlanMemoryOptions& popts, const RematOptions& o,
                        const std::optional<UnconstrainedPeak>& known = std::nullopt);

/// See the banner. On success g is the rewritten graph the plan belongs to.
/// Throws Error "cannot fit BUDGET: the smallest budget found that fits is X ..." otherwise.
RematFit fit_to_budget(Graph& g, const PlanMemoryOptions& popts, const RematOptions& o);

}  // namespace memplan
