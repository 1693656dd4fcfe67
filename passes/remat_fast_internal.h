// Internals of the fast rematerialization solver (passes/remat_fast.cc,
// passes/remat_fast_chain.cc): the cut representation and its replay.
#pragma once

#include <cstdint>
#include <vector>

#include "passes/remat_fast.h"

namespace memplan::remat_fast {

/// Node `node` is recomputed in stage `stage` (before the stage's readers).
struct Cut {
  int32_t node = 0;
  int32_t stage = 0;
  bool operator==(const Cut&) const = default;
};

/// The schedule a set of cuts describes, replayed with eager freeing.
struct Replay {
  std::vector<int32_t> seq;          // node executed at each position
  std::vector<int32_t> stage_of;     // stage of each position
  std::vector<int32_t> stage_start;  // first position of each stage; [n] = seq.size()
  std::vector<int32_t> last_use;     // per position: last position its output is live
  std::vector<int64_t> mem;          // bytes live while the position runs (incl. fixed)
  std::vector<int32_t> exec_off;     // CSR: positions where node v runs,
  std::vector<int32_t> exec_pos;     //   exec_pos[exec_off[v] .. exec_off[v+1])
  std::vector<Cut> cuts;             // effective cuts, sorted by (stage, node)
  int64_t peak = 0;
  int32_t peak_pos = 0;              // first position with mem == peak
  double excess = 0;                 // sum over positions of max(0, mem - budget)
  int32_t over = 0;                  // positions with mem > budget
  double extra_cost = 0;
};

/// Replays the schedule of `cuts` (any order, duplicates allowed). Cuts of
/// non-recomputable nodes, cuts at stages <= the node, and cuts with no reader
/// in their stage are dropped (not effective). Requires deps[i] < i.
void build_replay(const RematProblem& p, std::vector<Cut> cuts, Replay& out);

/// True if cut (v, s) is among r.cuts.
bool has_cut(const Replay& r, int32_t v, int32_t s);

/// Last position < pos where v runs (v must run before pos).
int32_t exec_before(const Replay& r, int32_t v, int32_t pos);

/// A lower bound on the peak of r's schedule without cut c (c in r.cuts),
/// from r alone: the previous copy of c.node is held from its last read
/// until c's stage, on top of r's memory there, less the bytes of copies
/// whose last read may disappear with c. 0 when it gives no bound. Lets
/// cleanup skip most undos without a replay.
int64_t undo_peak_lower_bound(const RematProblem& p, const Replay& r, Cut c);

/// stages[t] = recomputations of stage t in order, then t.
std::vector<std::vector<int32_t>> replay_stages(const Replay& r);

/// Chain DP (step 2 in remat_fast.h). Returns true and fills `out` when it
/// produced at least one schedule; `out` is the cheapest one within the
/// budget, else the one with the lowest peak.
bool solve_chain_dp(const RematProblem& p, const FastOptions& opts, const Replay& base, Replay& out);

/// Simulated annealing over cut sets (step 6 in remat_fast.h): improves
/// `best` in place (cheaper within the budget, else less excess) with at
/// most `replays` replays.
void anneal(const RematProblem& p, const FastOptions& opts, Replay& best, int64_t replays);

}  // namespace memplan::remat_fast
