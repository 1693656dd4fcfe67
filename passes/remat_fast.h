// Fast rematerialization solver (heuristic, peak-aware).
//
// Every schedule it builds is measured by replaying it with the semantics of
// simulate_remat (remat_problem.h): a node's inputs and output are live
// together while it runs, an output is freed right after its last use before
// it is recomputed, keep_to_end outputs are held. No proxy for the peak.
//
// A schedule is described by "cuts": (node v, stage s) means v is recomputed
// in stage s; the previous copy of v dies after its last earlier use. A cut
// counts if stage s reads v, or if a later stage reads v before its next
// recomputation (an early recomputation, where v's inputs are at hand; the
// new copy is held until that read). keep_to_end nodes are never cut (the
// simulator keeps their old copy), nor any node in a stage after its
// recompute_until (such cuts are dropped). A recomputation reads v's deps at
// stage s, which extends their lifetimes unless they are cut at s too. Within a stage,
// recomputations run in index order, then the stage's node (the exact
// solver's order).
//
// Algorithm:
//  1. Replay the schedule without recomputation; if it fits, return it. A
//     floor (largest working set of one node plus non-recomputable outputs
//     that must be live across it) proves some budgets infeasible at once.
//  2. Chain DP (Rotor-like). The forward region is the prefix up to the
//     no-recompute peak; articulation nodes are the nodes of that region that
//     no forward edge jumps over. Between articulation nodes lie units (at
//     most `dp_max_units`, merged evenly). Dynamic programming over units
//     chooses segments that are either kept whole or keep only their output
//     and recompute their interior at its first backward use, minimizing
//     recomputation cost subject to a modeled limit (stored bytes before the
//     segment + the segment's activations <= L, in `dp_memory_slots` slots).
//     L is searched by bisection so that the *replayed* peak fits the budget.
//  3. Greedy (general DAGs): at the replayed peak position, every live output
//     that is not read there is a candidate: recompute it at its next use,
//     with the ancestors whose lifetimes would otherwise be stretched across
//     the peak (up to `max_ancestor_depth`), and also at the latest earlier
//     stage where all its inputs are live (nothing stretched). Score = (bytes freed at the peak
//     - bytes of stretched non-recomputed ancestors) / recomputation cost.
//     The best candidates are tried in order; the first that lowers (peak,
//     bytes-over-budget summed over time) is kept. When the problem has
//     replica sets (micro-batch copies, RematProblem::replica_sets), each is
//     first tried with the same recomputation in every replica: the replicas
//     peak alike, so one cut alone rarely lowers the peak, and the greedy
//     would otherwise need k iterations, each replaying k replicas. Repeat
//     until the peak fits or nothing helps. Stuck above the budget, the greedy is warm-started
//     down a ladder of slightly looser budgets (FastOptions::descend).
//  4. Cleanup: undo cuts one at a time, lowest bytes-per-second first, keeping
//     each undo whose replayed peak still fits.
//  The cheaper feasible result of 2 and 3 is kept (else the lower peak).
//  Small problems (at most `search_max_nodes` nodes) then get a local search
//  that greedy one-peak-at-a-time moves cannot do, within one budget of
//  R = min(search_max_replays, search_work / schedule length) replays:
//  5. Measured greedy (R/4): like 3, but every candidate is replayed and the
//     one removing the most excess per second of added cost is taken (one
//     that fits the budget wins); then cleanup.
//  5b. Recompute-all seeds: for up to 16 prefixes [0, f] of the stages (f up
//     to the peak's stage without recomputation), the schedule in which every
//     read of a prefix node by a later stage (not the next) recomputes it there
//     with its recomputable ancestors in the prefix, so nothing of the prefix
//     is held across stages; each seed within the budget is cleaned up (4)
//     and kept if cheaper. Such a schedule reruns a whole chain from its
//     input at several backward stages; on bert's training step coarsened
//     to 21 groups at 50% of its peak, steps 3 and 5-7 stopped 14% above
//     the budget, and this seed fits at the exact optimum.
//  6. Simulated annealing over cut sets (R/2, remat_fast_search.cc): four
//     deterministic chains; moves add a cut (alone or with the inputs it
//     needs), remove, move or swap one; score = cost + penalties on excess
//     bytes and over-budget positions (cost nearly ignored until a schedule
//     fits). Finds coordinated recomputations from a common checkpoint.
//  7. Large-neighbourhood search (the rest): for each recomputed node, most
//     expensive first, drop all its cuts, forbid it, repair with a beam (width
//     3) of 5's greedy, clean up; keep if cheaper. Repeats while it improves.
//  The result is the cheapest schedule within the budget seen by any step.
//  8. Ladder (FastOptions::lower_infeasible_peak): when no step fits, the
//     greedy is warm-started from the lowest-peak schedule at budgets stepping
//     down towards max(floor, budget), keeping each lower peak, then cleanup.
//     The peak reported for an infeasible budget is then as low as the greedy
//     reaches from above (a run aimed straight at an unreachable budget stops
//     far higher), and a run that reaches the budget this way is a fit.
//
// Complexity: one replay is O(n + E + R) (R = recomputations); the greedy does
// O(n + E) work per iteration plus up to `tries_per_iteration` replays, and
// one iteration per accepted cut; cleanup one replay per cut. The DP is
// O(K^2 M) per limit tried (K units, M slots), about 40 limits. Steps 5-7 add
// at most search_work node-positions of replay (about 0.1 s at 1000 nodes),
// step 5b as much again; larger problems skip them. Cleanup skips an undo
// whose lower bound on the resulting peak (undo_peak_lower_bound) is above
// its target without replaying it.
#pragma once

#include <cstdint>

#include "passes/remat_problem.h"

namespace memplan {

struct FastOptions {
  bool use_chain_dp = true;
  bool use_greedy = true;
  /// Skip the greedy on problems larger than this when the chain DP already
  /// found a schedule within the budget.
  int32_t greedy_max_nodes_after_dp = 20000;
  int32_t dp_max_units = 128;     // articulation units after merging
  int32_t dp_memory_slots = 64;   // discretization of stored bytes
  int32_t max_ancestor_depth = 16;
  int32_t tries_per_iteration = 4;
  /// Greedy (3): try each candidate in every replica first (when the problem
  /// has replica sets).
  bool replica_bundles = true;
  int32_t max_iterations = 200000;
  bool cleanup = true;
  /// When the greedy (3) is stuck above the budget B, warm-start it down the
  /// budgets B(1 + 2^-j), j = 4..8, then B (remat_fast.cc, descend): the
  /// greedy is not monotone in the budget, and often fits B from a schedule
  /// that fits a slightly looser one. Never changes a result the greedy fits.
  bool descend = true;
  /// Local search (step 5) on problems of at most this many nodes, with at
  /// most min(search_max_replays, search_work / schedule length) replays.
  int32_t search_max_nodes = 1000;
  int64_t search_max_replays = 100000;
  int64_t search_work = 4000000;
  /// Step 5b: recompute-all seeds (at most search_work node-positions of
  /// replay on top of the replay budget above).
  bool recompute_all_seeds = true;
  /// Step 8: when no schedule fits the budget, warm-start the greedy down a
  /// ladder of budgets from the lowest peak found towards the floor, so that
  /// the peak reported is as low as the greedy reaches (remat_fast.cc,
  /// lower_peak). Costs about one more greedy run; a feasibility probe that
  /// needs only the verdict may turn it off.
  bool lower_infeasible_peak = true;
  /// Skip step 8 when the floor is above the budget and at least this: the
  /// caller has no use for a lower peak here (the budget search: another
  /// candidate may still fit, or one already reached a peak this low, and no
  /// schedule of this problem can go below its floor). (Below the budget
  /// the ladder may still find a fit, so the floor must exceed the budget.)
  int64_t lower_peak_floor_limit = INT64_MAX;
};

/// A lower bound on the replayed peak of any schedule of p: the largest over
/// nodes i of fixed + bytes(i) + bytes of its distinct deps + bytes of other
/// non-recomputable outputs that must be live across i. The solver's result
/// does not depend on p.budget while the budget is below this floor (every
/// comparison with the budget fails), which fit_to_budget relies on.
int64_t remat_peak_floor(const RematProblem& p);

/// Returns a schedule whose replayed peak is <= p.budget (feasible=true), or
/// feasible=false with the lowest peak reached and a note. `peak` and
/// `extra_cost` are those of the replay of `stages`.
RematSolution solve_remat_fast(const RematProblem& p, const FastOptions& opts = {});

}  // namespace memplan
