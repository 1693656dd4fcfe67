// The rematerialization problem, independent of the IR (Checkmate's model).
//
// Nodes are given in a fixed topological order 0..n-1 (the schedule of the
// training graph without recomputation). Node i produces `bytes` of output
// and costs `cost` (seconds, from the cost model) to run. Executing node i
// requires all of its `deps` to be in memory. A solution says, for each stage
// t = 0..n-1, which nodes are (re)computed during stage t, in order, ending
// with node t itself; a node's output may be freed after any use and
// recomputed later if `recomputable` (not for nodes with side effects, such
// as in-place updates or BatchNorm's running-statistics update, and never
// for graph inputs), and only up to stage `recompute_until`. Memory at any
// moment = `fixed_bytes` (resident storage) + the outputs held + the running
// node's output. The problem asks for the least total recomputation cost
// whose peak stays within `budget`.
//
// Both solvers (remat_exact.h: MILP with CBC; remat_fast.h) return a
// RematSolution, and simulate_remat() independently replays one to measure
// its true peak and cost: tests never trust a solver's own claim.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memplan {

struct RematNode {
  std::vector<int32_t> deps;  // indices of earlier nodes whose outputs this one reads
  int64_t bytes = 0;          // output bytes
  double cost = 0;            // seconds per execution
  bool recomputable = true;
  bool keep_to_end = false;   // output must stay live until the end (graph output)
  /// Recomputations may run only in stages <= this (INT32_MAX: any): the
  /// node reads a value that an in-place op of that stage overwrites, so a
  /// later rerun would read the new value.
  int32_t recompute_until = INT32_MAX;
};

struct RematProblem {
  std::vector<RematNode> nodes;
  int64_t fixed_bytes = 0;
  int64_t budget = 0;
  /// Optional: copies of one computation, one per micro-batch replica
  /// (replica_sets[j][i] = the copy in replica i, increasing with i), and
  /// replica_set[v] = the set of node v or -1 (empty: no replicas). Solvers
  /// may use it to try a recomputation in every replica at once.
  std::vector<int32_t> replica_set;
  std::vector<std::vector<int32_t>> replica_sets;
};

struct RematSolution {
  bool feasible = false;
  bool proven_optimal = false;  // exact solver only, when CBC proved optimality
  std::vector<std::vector<int32_t>> stages;  // stages[t]: nodes run in stage t, ending with t
  double extra_cost = 0;  // sum of costs of recomputations (runs beyond the first of each node)
  int64_t peak = 0;       // as simulated
  std::string note;       // e.g. "time limit reached", "infeasible: floor is X bytes"
  int64_t replays = 0;    // fast solver: schedules it replayed (its unit of work)
};

struct RematSimulation {
  bool valid = false;  // every dependency in memory when needed, stage t ends with t
  std::string error;   // why not valid
  int64_t peak = 0;    // with outputs freed right after their last use in the replay
  double extra_cost = 0;
};

/// Replays a solution with eager freeing (an output is dropped right after
/// its last use before it is next recomputed, and kept if keep_to_end).
RematSimulation simulate_remat(const RematProblem& p, const std::vector<std::vector<int32_t>>& stages);

/// The schedule without recomputation: stages[t] = {t}.
std::vector<std::vector<int32_t>> no_remat_stages(const RematProblem& p);

}  // namespace memplan
