// Local search of the fast rematerialization solver (step 6 in
// remat_fast.h): simulated annealing over cut sets, for small problems.
//
// Every cut set replays to a valid schedule (a recomputation whose inputs are
// not live stretches their lifetimes), so the search moves freely among cut
// sets and scores each by its replay: F = extra cost + lambda * excess / budget
// (excess: bytes over the budget summed over positions). The greedy moves one
// peak at a time and stops where every single move raises some other
// position; annealing accepts such moves now and then, which finds
// coordinated recomputations (several nodes recomputed together from a common
// checkpoint) and cheaper swaps. Only schedules within the budget are kept as
// results. Deterministic: a fixed splitmix64 stream.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "passes/remat_fast_internal.h"
#include "runtime/rng.h"

namespace memplan::remat_fast {
namespace {

using Rng = SplitMix64;  // runtime/rng.h

class Annealer {
 public:
  Annealer(const RematProblem& p, const FastOptions& o) : p_(p), o_(o), n_(static_cast<int32_t>(p.nodes.size())) {
    // last_read_[v]: the last stage that can read v: its last reader's own
    // stage, or a later stage where a reader is recomputed.
    last_read_.assign(static_cast<size_t>(n_), -1);
    for (int32_t i = n_; i-- > 0;) {
      const int32_t reach = p.nodes[i].recomputable && !p.nodes[i].keep_to_end ? std::max(i, last_read_[i]) : i;
      for (int32_t u : p.nodes[i].deps) last_read_[u] = std::max(last_read_[u], reach);
    }
    for (int32_t v = 0; v < n_; ++v)
      if (p.nodes[v].recomputable && !p.nodes[v].keep_to_end && last_read_[v] > v + 1) {
        movable_.push_back(v);
        total_cost_ += p.nodes[v].cost;
      }
    mu_ = total_cost_ / static_cast<double>(std::max<size_t>(movable_.size(), 1));
    lambda_ = 10 * std::max(total_cost_, 1e-12) / static_cast<double>(std::max<int64_t>(p.budget, 1));
  }

  /// Improves `best` (cheapest within the budget, else lowest excess) with at
  /// most `replays` replays.
  void run(const Replay& start, Replay& best, int64_t replays, double heat, uint64_t seed) {
    if (movable_.empty() || replays <= 0) return;
    rng_ = Rng(seed);
    Replay cur = start, trial, chain_best = start;
    cost_weight_ = chain_best.peak <= p_.budget ? 1.0 : 0.005;
    double f_cur = score(cur);
    const double t0 = heat * std::max(total_cost_ / static_cast<double>(movable_.size()), 1e-12), t1 = t0 * 1e-3;
    int64_t since_best = 0;
    for (int64_t it = 0; it < replays; ++it) {
      const double temp = t0 * std::pow(t1 / t0, static_cast<double>(it) / static_cast<double>(replays));
      build_replay(p_, propose(cur), trial);
      const double f = score(trial);
      if (f <= f_cur || rng_.unit() < std::exp((f_cur - f) / temp)) {
        std::swap(cur, trial);
        f_cur = f;
        keep_if_better(cur, best);
        if (keep_if_better(cur, chain_best)) {
          since_best = 0;
          if (chain_best.peak <= p_.budget && cost_weight_ < 1) {  // found one: now minimize cost
            cost_weight_ = 1;
            f_cur = score(cur);
          }
        }
      }
      if (++since_best > 2000) {  // wandered off: return to the best schedule
        cur = chain_best;
        f_cur = score(cur);
        since_best = 0;
      }
    }
  }

 private:
  /// While no schedule within the budget is known, cost hardly counts: the
  /// search first looks for one (else it settles on cheap near misses).
  double score(const Replay& r) const { return cost_weight_ * r.extra_cost + lambda_ * r.excess + mu_ * r.over; }

  bool keep_if_better(const Replay& r, Replay& best) const {
    const bool fits = r.peak <= p_.budget, best_fits = best.peak <= p_.budget;
    const bool better = fits ? (!best_fits || r.extra_cost < best.extra_cost - 1e-12)
                             : (!best_fits && (r.excess < best.excess || (r.excess == best.excess && r.peak < best.peak)));
    if (better) best = r;
    return better;
  }

  /// A random stage in which recomputing v can be effective: (v, last read].
  int32_t stage_for(int32_t v) { return v + 1 + static_cast<int32_t>(rng_.below(static_cast<size_t>(last_read_[v] - v))); }

  /// Adds (v, s) and, each with probability 1/2, the recomputable inputs that
  /// are not live at stage s (else their lifetimes stretch), recursively (at
  /// most `max_ancestor_depth` levels).
  void add_with_inputs(const Replay& r, int32_t v, int32_t s, std::vector<Cut>& cuts) {
    const int32_t pos0 = r.stage_start[s];
    std::vector<std::pair<int32_t, int32_t>> stack{{v, 0}};
    cuts.push_back({v, s});
    while (!stack.empty()) {
      auto [w, depth] = stack.back();
      stack.pop_back();
      for (int32_t u : p_.nodes[w].deps) {
        if (!p_.nodes[u].recomputable || p_.nodes[u].keep_to_end || depth >= o_.max_ancestor_depth) continue;
        const int32_t e = exec_before(r, u, pos0);
        if (e >= 0 && r.last_use[e] >= pos0) continue;  // live at s
        if (rng_.next() & 1) continue;
        if (std::find(cuts.begin(), cuts.end(), Cut{u, s}) != cuts.end()) continue;
        cuts.push_back({u, s});
        stack.push_back({u, depth + 1});
      }
    }
  }

  std::vector<Cut> propose(const Replay& r) {
    std::vector<Cut> cuts = r.cuts;
    const size_t kind = rng_.below(cuts.empty() ? 2 : 5);
    const int32_t v = movable_[rng_.below(movable_.size())];
    if (kind == 0) {  // add one cut
      cuts.push_back({v, stage_for(v)});
    } else if (kind == 1) {  // add one cut with the inputs it needs
      add_with_inputs(r, v, stage_for(v), cuts);
    } else {
      const size_t k = rng_.below(cuts.size());
      const Cut old = cuts[k];
      cuts.erase(cuts.begin() + static_cast<std::ptrdiff_t>(k));
      if (kind == 3) cuts.push_back({old.node, stage_for(old.node)});  // move it to another stage
      else if (kind == 4) cuts.push_back({v, stage_for(v)});             // swap it for another
    }
    return cuts;
  }

  const RematProblem& p_;
  const FastOptions& o_;
  int32_t n_;
  std::vector<int32_t> last_read_, movable_;
  double total_cost_ = 0, lambda_ = 0, mu_ = 0, cost_weight_ = 1;
  Rng rng_{0x5eed5eedULL};
};

}  // namespace

void anneal(const RematProblem& p, const FastOptions& opts, Replay& best, int64_t replays) {
  // Four independent chains from the same start, alternately hot and cool;
  // the best schedule of all is kept.
  constexpr int kChains = 4;
  const Replay start = best;
  Annealer a(p, opts);
  for (int k = 0; k < kChains; ++k)
    a.run(start, best, replays / kChains, k % 2 == 0 ? 3.0 : 1.0, 0x5eed5eedULL + static_cast<uint64_t>(k));
}

}  // namespace memplan::remat_fast
