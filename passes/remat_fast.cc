// Fast rematerialization solver: replay of cut sets, the peak-driven greedy,
// cleanup and the driver. The chain DP is in remat_fast_chain.cc.
#include "passes/remat_fast.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "passes/remat_fast_internal.h"

namespace memplan {
namespace remat_fast {
namespace {
thread_local int64_t replays_done = 0;  // RematSolution::replays
}  // namespace

void build_replay(const RematProblem& p, std::vector<Cut> cuts, Replay& r) {
  ++replays_done;
  const int32_t n = static_cast<int32_t>(p.nodes.size());
  // Callers mostly pass a sorted set with a few cuts appended or removed:
  // sort the unsorted tail only and merge it in.
  auto by_stage = [](const Cut& a, const Cut& b) {
    return a.stage != b.stage ? a.stage < b.stage : a.node < b.node;
  };
  auto tail = std::is_sorted_until(cuts.begin(), cuts.end(), by_stage);
  if (tail != cuts.end()) {
    std::sort(tail, cuts.end(), by_stage);
    std::inplace_merge(cuts.begin(), tail, cuts.end(), by_stage);
  }
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());

  // Effective cuts, stages in reverse: (v, t) is effective if v is read in
  // stage t (by t or an effective recomputation; readers have larger indices,
  // so scan downwards) or in a later stage before v is recomputed again (an
  // early recomputation, where v's inputs are at hand). While stage t is
  // scanned, read[v] = the first stage >= t that reads v and recomp[v] = the
  // first stage > t that recomputes v; reads in a stage follow its
  // recomputations, so the copy made at t is read iff read[v] < recomp[v].
  std::vector<int32_t> read(static_cast<size_t>(n), INT32_MAX), recomp(static_cast<size_t>(n), INT32_MAX);
  std::vector<Cut> eff;
  size_t ci = cuts.size();
  for (int32_t t = n; t-- > 0;) {
    for (int32_t u : p.nodes[t].deps) read[u] = t;
    if (ci == 0 || cuts[ci - 1].stage != t) continue;
    for (; ci > 0 && cuts[ci - 1].stage == t; --ci) {
      const int32_t v = cuts[ci - 1].node;
      if (v >= t || v < 0 || !p.nodes[v].recomputable || p.nodes[v].keep_to_end ||
          t > p.nodes[v].recompute_until)
        continue;
      if (read[v] >= recomp[v]) continue;
      eff.push_back({v, t});
      for (int32_t u : p.nodes[v].deps) read[u] = t;
    }
    for (size_t k = eff.size(); k-- > 0 && eff[k].stage == t;) recomp[eff[k].node] = t;
  }
  std::reverse(eff.begin(), eff.end());  // sorted by (stage, node)

  r.seq.clear();
  r.stage_of.clear();
  r.cuts = eff;
  r.stage_start.assign(static_cast<size_t>(n) + 1, 0);
  size_t ei = 0;
  for (int32_t t = 0; t < n; ++t) {
    r.stage_start[t] = static_cast<int32_t>(r.seq.size());
    for (; ei < eff.size() && eff[ei].stage == t; ++ei) {
      r.seq.push_back(eff[ei].node);
      r.stage_of.push_back(t);
    }
    r.seq.push_back(t);
    r.stage_of.push_back(t);
  }
  const int32_t len = static_cast<int32_t>(r.seq.size());
  r.stage_start[n] = len;

  // Lifetimes: every read extends the reader's current copy of its input.
  std::vector<int32_t> cur(static_cast<size_t>(n), -1);
  r.last_use.resize(static_cast<size_t>(len));
  r.exec_off.assign(static_cast<size_t>(n) + 1, 0);
  for (int32_t pos = 0; pos < len; ++pos) {
    const int32_t x = r.seq[pos];
    r.last_use[pos] = pos;
    for (int32_t u : p.nodes[x].deps) r.last_use[cur[u]] = pos;
    cur[x] = pos;
    ++r.exec_off[x + 1];
  }
  for (int32_t v = 0; v < n; ++v) {
    if (p.nodes[v].keep_to_end) r.last_use[cur[v]] = len - 1;
    r.exec_off[v + 1] += r.exec_off[v];
  }
  r.exec_pos.resize(static_cast<size_t>(len));
  std::vector<int32_t> fill(r.exec_off.begin(), r.exec_off.end() - 1);
  for (int32_t pos = 0; pos < len; ++pos) r.exec_pos[fill[r.seq[pos]]++] = pos;

  std::vector<int64_t> diff(static_cast<size_t>(len) + 1, 0);
  for (int32_t pos = 0; pos < len; ++pos) {
    const int64_t b = p.nodes[r.seq[pos]].bytes;
    diff[pos] += b;
    diff[r.last_use[pos] + 1] -= b;
  }
  r.mem.resize(static_cast<size_t>(len));
  int64_t live = p.fixed_bytes, peak = p.fixed_bytes;
  int32_t peak_pos = 0, over = 0;
  double excess = 0;
  for (int32_t pos0 = 0; pos0 < len; pos0 += 1024) {
    int64_t block = 0;  // at most 1024 excesses: no overflow below 2^53 bytes each
    for (int32_t pos = pos0; pos < std::min(len, pos0 + 1024); ++pos) {
      live += diff[pos];
      r.mem[pos] = live;
      if (live > peak || pos == 0) {
        peak = live;
        peak_pos = pos;
      }
      if (live > p.budget) {
        block += live - p.budget;
        ++over;
      }
    }
    excess += static_cast<double>(block);
  }
  r.peak = peak;
  r.peak_pos = peak_pos;
  r.excess = excess;
  r.over = over;
  r.extra_cost = 0;
  for (const Cut& c : r.cuts) r.extra_cost += p.nodes[c.node].cost;
}

bool has_cut(const Replay& r, int32_t v, int32_t s) {
  return std::binary_search(r.cuts.begin(), r.cuts.end(), Cut{v, s}, [](const Cut& a, const Cut& b) {
    return a.stage != b.stage ? a.stage < b.stage : a.node < b.node;
  });
}

int32_t exec_before(const Replay& r, int32_t v, int32_t pos) {
  auto first = r.exec_pos.begin() + r.exec_off[v], last = r.exec_pos.begin() + r.exec_off[v + 1];
  auto it = std::lower_bound(first, last, pos);
  return it == first ? -1 : *(it - 1);
}

int64_t undo_peak_lower_bound(const RematProblem& p, const Replay& r, Cut c) {
  const int32_t v = c.node, start = r.stage_start[c.stage];
  const int32_t at = exec_before(r, v, r.stage_start[c.stage + 1]);  // the cut's copy
  if (at < start) return 0;                                          // not a cut of r
  const int32_t prev = exec_before(r, v, at);
  if (prev < 0) return 0;                   // at is v's first run
  const int32_t lo = r.last_use[prev] + 1;  // prev is held over [lo, start) after the undo
  if (lo >= start) return 0;
  // Copies whose lifetime may end earlier after the undo: those last read by
  // a recomputation that may disappear (the cut's, and, transitively, a
  // recomputation last read by one that disappears: it may lose its last
  // reader and with it its effectiveness). Each frees at most its bytes
  // after its position.
  std::vector<std::pair<int32_t, int64_t>> freed;  // (position, bytes)
  std::vector<int32_t> gone{at};                   // positions that may disappear
  for (size_t i = 0; i < gone.size(); ++i) {
    const int32_t q = gone[i];
    for (int32_t u : p.nodes[r.seq[q]].deps) {
      const int32_t e = exec_before(r, u, q);
      if (e < 0 || r.last_use[e] != q) continue;
      freed.push_back({e, p.nodes[u].bytes});
      if (r.stage_of[e] != u) gone.push_back(e);  // a recomputation
    }
  }
  std::sort(freed.begin(), freed.end());
  std::sort(gone.begin(), gone.end());
  int64_t best = 0, sub = 0;
  size_t fi = 0, gi = 0;
  for (int32_t x = lo; x < start; ++x) {
    for (; fi < freed.size() && freed[fi].first < x; ++fi) sub += freed[fi].second;
    while (gi < gone.size() && gone[gi] < x) ++gi;
    if (gi < gone.size() && gone[gi] == x) continue;  // may not exist after the undo
    best = std::max(best, r.mem[x] + p.nodes[v].bytes - sub);
  }
  return best;
}

std::vector<std::vector<int32_t>> replay_stages(const Replay& r) {
  const size_t n = r.stage_start.size() - 1;
  std::vector<std::vector<int32_t>> stages(n);
  for (size_t t = 0; t < n; ++t)
    stages[t].assign(r.seq.begin() + r.stage_start[t], r.seq.begin() + r.stage_start[t + 1]);
  return stages;
}

namespace {

struct Candidate {
  double score = 0;
  int32_t stage = 0;
  std::vector<int32_t> nodes;
};

/// (peak, excess) strictly lower: the greedy's measure of progress.
bool better(const Replay& a, const Replay& b) {
  if (a.peak != b.peak) return a.peak < b.peak;
  return a.excess < b.excess;
}

class Greedy {
 public:
  Greedy(const RematProblem& p, const FastOptions& o)
      : p_(p), o_(o), n_(static_cast<int32_t>(p.nodes.size())), stamp_(n_, -1), live_(n_, -1), seen_(n_, -1),
        next_use_(n_, -1), forbid_(n_, 0) {}

  /// Like run(), but every candidate is replayed and the one with the most
  /// excess removed per second of added recomputation is kept (a candidate
  /// that fits the budget wins, the cheapest such one). Costs a replay per
  /// candidate: for small problems.
  void run_measured(Replay& cur) {
    Replay trial, pick;
    for (int32_t it = 0; it < o_.max_iterations && cur.peak > p_.budget && replays_left > 0; ++it) {
      double best_key = 0;
      bool have = false, have_fit = false;
      for (const Candidate& c : candidates(cur)) {
        std::vector<Cut> cuts = cur.cuts;
        for (int32_t v : c.nodes) cuts.push_back({v, c.stage});
        build_replay(p_, std::move(cuts), trial);
        --replays_left;
        const double added = std::max(trial.extra_cost - cur.extra_cost, 1e-9);
        if (trial.peak <= p_.budget) {
          if (!have_fit || trial.extra_cost < pick.extra_cost) {
            std::swap(pick, trial);
            have = have_fit = true;
          }
          continue;
        }
        const double gain = cur.excess - trial.excess;
        if (have_fit || gain <= 0 || (have && gain / added <= best_key)) continue;
        best_key = gain / added;
        std::swap(pick, trial);
        have = true;
      }
      if (!have) return;
      std::swap(cur, pick);
    }
  }

  /// Beam version of run_measured: keeps the `width` partial repairs with the
  /// most excess removed per second added (relative to `cur`), expands each
  /// by every candidate, and returns in `cur` the cheapest that fits (cur is
  /// unchanged if none does). Partial repairs at least as costly as the
  /// cheapest fit found are dropped.
  void run_beam(Replay& cur, int width) {
    std::vector<Replay> beam{cur}, next;
    std::vector<std::pair<double, size_t>> order;
    Replay fit, trial;
    bool have_fit = false;
    for (int32_t it = 0; it < o_.max_iterations && !beam.empty() && replays_left > 0; ++it) {
      next.clear();
      order.clear();
      for (const Replay& r : beam)
        for (const Candidate& c : candidates(r)) {
          std::vector<Cut> cuts = r.cuts;
          for (int32_t v : c.nodes) cuts.push_back({v, c.stage});
          build_replay(p_, std::move(cuts), trial);
          --replays_left;
          if (have_fit && trial.extra_cost >= fit.extra_cost) continue;
          if (trial.peak <= p_.budget) {
            fit = trial;
            have_fit = true;
            continue;
          }
          const double gain = cur.excess - trial.excess;
          if (gain <= 0 || trial.excess >= r.excess) continue;
          order.push_back({gain / std::max(trial.extra_cost - cur.extra_cost, 1e-9), next.size()});
          next.push_back(trial);
        }
      std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      beam.clear();
      for (size_t i = 0; i < order.size() && beam.size() < static_cast<size_t>(width); ++i) {
        const Replay& r = next[order[i].second];
        const bool dup = std::any_of(beam.begin(), beam.end(), [&](const Replay& b) { return b.cuts == r.cuts; });
        if (!dup && (!have_fit || r.extra_cost < fit.extra_cost)) beam.push_back(r);
      }
    }
    if (have_fit) std::swap(cur, fit);
  }

  /// Replays run_measured may still spend (it stops at 0).
  int64_t replays_left = INT64_MAX;

  /// Nodes the greedy must not recompute (kept or stretched instead).
  void forbid(int32_t v, bool on) { forbid_[v] = on; }

  /// Improves `cur` in place until it fits or no candidate helps.
  void run(Replay& cur) {
    Replay trial;
    for (int32_t it = 0; it < o_.max_iterations && cur.peak > p_.budget; ++it) {
      std::vector<Candidate> cands = candidates(cur);
      bool accepted = false;
      const size_t tries = std::min(cands.size(), static_cast<size_t>(std::max(1, o_.tries_per_iteration)));
      for (size_t i = 0; i < tries && !accepted; ++i) {
        std::vector<Cut> cuts = cur.cuts;
        for (int32_t v : cands[i].nodes) cuts.push_back({v, cands[i].stage});
        if (o_.replica_bundles && !p_.replica_sets.empty()) {
          std::vector<Cut> all = cuts;
          if (add_replicas(cands[i], all)) {
            build_replay(p_, std::move(all), trial);
            if (better(trial, cur)) {
              std::swap(cur, trial);
              accepted = true;
              continue;
            }
          }
        }
        build_replay(p_, std::move(cuts), trial);
        if (better(trial, cur)) {
          std::swap(cur, trial);
          accepted = true;
        }
      }
      if (!accepted) return;
    }
  }

 private:
  /// Appends c's cuts in every other replica; false if there are none.
  bool add_replicas(const Candidate& c, std::vector<Cut>& cuts) const {
    const size_t before = cuts.size();
    const int32_t ss = p_.replica_set[c.stage];
    for (int32_t v : c.nodes) {
      const int32_t vs = p_.replica_set[v];
      if (vs < 0 && ss < 0) continue;
      const std::vector<int32_t>* a = vs >= 0 ? &p_.replica_sets[vs] : nullptr;
      const std::vector<int32_t>* b = ss >= 0 ? &p_.replica_sets[ss] : nullptr;
      if (a && b && a->size() != b->size()) continue;
      const size_t r = a ? a->size() : b->size();
      for (size_t j = 0; j < r; ++j) {
        const Cut x{a ? (*a)[j] : v, b ? (*b)[j] : c.stage};
        if (x.node < x.stage && !(x.node == v && x.stage == c.stage)) cuts.push_back(x);
      }
    }
    return cuts.size() > before;
  }

  /// Candidates at the peak position, best score first.
  std::vector<Candidate> candidates(const Replay& r) {
    const int32_t k = r.peak_pos, x = r.seq[k], len = static_cast<int32_t>(r.seq.size());
    ++epoch_;
    stamp_[x] = epoch_;  // read or written at k: cannot be freed there
    for (int32_t u : p_.nodes[x].deps) stamp_[u] = epoch_;
    std::vector<int32_t> live;
    int32_t horizon = k;
    for (int32_t q = 0; q < k; ++q) {
      const int32_t v = r.seq[q];
      if (r.last_use[q] <= k || stamp_[v] == epoch_ || live_[v] == epoch_ || !p_.nodes[v].recomputable) continue;
      live.push_back(v);
      live_[v] = epoch_;
      next_use_[v] = -1;
      horizon = std::max(horizon, r.last_use[q]);
    }
    // First read after k of each live candidate.
    size_t found = 0;
    for (int32_t q = k + 1; q <= horizon && q < len && found < live.size(); ++q)
      for (int32_t u : p_.nodes[r.seq[q]].deps)
        if (live_[u] == epoch_ && next_use_[u] < 0) {
          next_use_[u] = q;
          ++found;
        }
    std::vector<Candidate> out;
    for (int32_t v : live) {
      const int32_t q = next_use_[v];
      if (q < 0 || r.stage_of[q] <= r.stage_of[k] || forbid_[v]) continue;  // kept to the end, or same stage
      Candidate c;
      const int32_t until = p_.nodes[v].recompute_until;
      if (r.stage_of[q] <= until && evaluate(r, v, r.stage_of[q], c)) out.push_back(std::move(c));
      const int32_t se = early_stage(r, v, q);
      if (se >= 0 && se <= until && evaluate(r, v, se, c)) out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    return out;
  }

  /// The latest stage between the peak's and the next read q of v (exclusive)
  /// where all of v's inputs are live already: recomputing v there stretches
  /// nothing. -1 if there is none.
  int32_t early_stage(const Replay& r, int32_t v, int32_t q) const {
    const std::vector<int32_t>& deps = p_.nodes[v].deps;
    if (deps.empty()) return -1;
    int32_t lo = -1, hi = INT32_MAX;  // positions where every input's latest copy before q is live
    for (int32_t u : deps) {
      const int32_t e = exec_before(r, u, q);
      if (e < 0) return -1;
      lo = std::max(lo, e);
      hi = std::min(hi, r.last_use[e]);
    }
    if (hi <= lo) return -1;
    const int32_t s = r.stage_of[hi];
    if (r.stage_start[s] <= lo || s <= r.stage_of[r.peak_pos] || s >= r.stage_of[q]) return -1;
    return s;
  }

  /// Recompute v at stage s, with the ancestors whose lifetimes would be
  /// stretched across the peak. Returns false if nothing is gained.
  bool evaluate(const Replay& r, int32_t v, int32_t s, Candidate& c) {
    const int32_t k = r.peak_pos, pos0 = r.stage_start[s];
    ++eval_;
    c.stage = s;
    c.nodes = {v};
    seen_[v] = eval_;
    double cost = p_.nodes[v].cost;
    int64_t net = p_.nodes[v].bytes;
    std::vector<std::pair<int32_t, int32_t>> stack{{v, 0}};
    while (!stack.empty()) {
      auto [w, depth] = stack.back();
      stack.pop_back();
      for (int32_t u : p_.nodes[w].deps) {
        if (seen_[u] == eval_) continue;
        seen_[u] = eval_;
        if (has_cut(r, u, s)) continue;
        const int32_t e = exec_before(r, u, pos0);
        if (e < 0 || r.last_use[e] >= pos0) continue;    // already live at s
        if (e > k || r.last_use[e] >= k) continue;       // stretching does not cross the peak
        if (p_.nodes[u].recomputable && !forbid_[u] && depth < o_.max_ancestor_depth &&
            s <= p_.nodes[u].recompute_until) {
          c.nodes.push_back(u);
          cost += p_.nodes[u].cost;
          stack.push_back({u, depth + 1});
        } else {
          net -= p_.nodes[u].bytes;
        }
      }
    }
    if (net <= 0) return false;
    c.score = static_cast<double>(net) / std::max(cost, 1e-15);
    return true;
  }

  const RematProblem& p_;
  const FastOptions& o_;
  int32_t n_;
  std::vector<int32_t> stamp_, live_, seen_, next_use_;
  std::vector<char> forbid_;
  int32_t epoch_ = 0, eval_ = 0;
};

/// Undo cuts whose removal keeps the replayed peak within `target`, lowest
/// bytes per second of recomputation first.
void cleanup(const RematProblem& p, int64_t target, Replay& cur) {
  std::vector<Cut> order = cur.cuts;
  auto density = [&](const Cut& c) {
    return static_cast<double>(p.nodes[c.node].bytes) / std::max(p.nodes[c.node].cost, 1e-15);
  };
  std::stable_sort(order.begin(), order.end(), [&](const Cut& a, const Cut& b) { return density(a) < density(b); });
  Replay trial;
  for (const Cut& c : order) {
    if (!has_cut(cur, c.node, c.stage)) continue;  // dropped with an earlier undo
    if (undo_peak_lower_bound(p, cur, c) > target) continue;  // cannot stay within target
    std::vector<Cut> cuts;
    cuts.reserve(cur.cuts.size());
    for (const Cut& d : cur.cuts)
      if (!(d == c)) cuts.push_back(d);
    build_replay(p, std::move(cuts), trial);
    if (trial.peak <= target && trial.extra_cost <= cur.extra_cost) std::swap(cur, trial);
  }
}

/// Large-neighbourhood search (step 7): for each node v recomputed in `best`,
/// most expensive first, drop every cut of v, forbid v, repair the peaks with
/// a beam of 3 measured greedies and let cleanup trim the result; keep it if
/// it fits and is cheaper. Repeats while it improves, within `replays` replays. A greedy
/// that took a costly bundle early (v with the ancestors its recomputation
/// needs) is thereby made to look for cheaper ways around the same peaks.
void lns(const RematProblem& p, const FastOptions& opts, Replay& best, int64_t replays) {
  if (best.peak > p.budget) return;
  Greedy greedy(p, opts);
  greedy.replays_left = replays;
  Replay trial;
  while (greedy.replays_left > 0) {
    std::vector<int32_t> nodes;
    for (const Cut& c : best.cuts) nodes.push_back(c.node);
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    std::stable_sort(nodes.begin(), nodes.end(),
                     [&](int32_t a, int32_t b) { return p.nodes[a].cost > p.nodes[b].cost; });
    bool improved = false;
    for (int32_t v : nodes) {
      if (greedy.replays_left <= 0) return;
      std::vector<Cut> cuts;
      for (const Cut& c : best.cuts)
        if (c.node != v) cuts.push_back(c);
      build_replay(p, std::move(cuts), trial);
      greedy.forbid(v, true);
      greedy.run_beam(trial, 3);
      greedy.forbid(v, false);
      if (trial.peak > p.budget) continue;
      if (opts.cleanup) {
        greedy.replays_left -= static_cast<int64_t>(trial.cuts.size());
        cleanup(p, p.budget, trial);
      }
      if (trial.extra_cost < best.extra_cost - 1e-12) {
        std::swap(best, trial);
        improved = true;
      }
    }
    if (!improved) return;
  }
}

/// See remat_peak_floor (remat_fast.h).
int64_t peak_floor(const RematProblem& p) {
  const int32_t n = static_cast<int32_t>(p.nodes.size());
  std::vector<int32_t> last(static_cast<size_t>(n));
  for (int32_t v = 0; v < n; ++v) last[v] = p.nodes[v].keep_to_end ? n : v;
  for (int32_t i = 0; i < n; ++i)
    for (int32_t u : p.nodes[i].deps) last[u] = std::max(last[u], i);
  std::vector<int64_t> diff(static_cast<size_t>(n) + 2, 0);  // non-recomputable v live on (v, last[v])
  for (int32_t v = 0; v < n; ++v)
    if (!p.nodes[v].recomputable && last[v] > v + 1) {
      diff[v + 1] += p.nodes[v].bytes;
      diff[last[v]] -= p.nodes[v].bytes;
    }
  std::vector<int32_t> stamp(static_cast<size_t>(n), -1);
  int64_t floor = p.fixed_bytes, across = 0;
  for (int32_t i = 0; i < n; ++i) {
    across += diff[i];  // sums non-recomputable outputs with v < i < last[v]
    int64_t here = p.fixed_bytes + p.nodes[i].bytes + across;
    for (int32_t u : p.nodes[i].deps) {
      if (stamp[u] == i) continue;
      stamp[u] = i;
      const bool counted = !p.nodes[u].recomputable && u < i && i < last[u];
      if (!counted) here += p.nodes[u].bytes;
    }
    floor = std::max(floor, here);
  }
  return floor;
}

/// The greedy is not monotone in the budget: its tie-breaks weigh the bytes
/// over the budget, so a run stuck at B (GPT-2 small, k = 8: stuck at 4.4 GB
/// for a 3.41 GB budget) often fits B(1 + 1/256), and from there a few more
/// cuts fit B. Warm-starts the greedy down the budgets B(1 + 2^-j), j = 4..8,
/// then B, stopping at the first it cannot fit. g becomes the result when that
/// fits B, or when its peak is lower than g's.
void descend(const RematProblem& p, const FastOptions& opts, const Replay& base, Replay& g) {
  RematProblem q = p;
  Replay cur = base, r;
  for (int j = 4; j <= 9; ++j) {
    q.budget = j <= 8 ? p.budget + (p.budget >> j) : p.budget;
    build_replay(q, cur.cuts, r);  // the excess is measured against q's budget
    Greedy(q, opts).run(r);
    if (r.peak > q.budget) break;
    std::swap(cur, r);
  }
  build_replay(p, cur.cuts, r);
  if (r.peak <= p.budget || r.peak < g.peak) std::swap(g, r);
}

/// Nothing fits the budget: lowers best's peak as far as the greedy gets,
/// step by step, since a greedy aimed far below what it can reach stops high
/// (GPT-2 small, k = 8, bf16: aimed at its floor, 4.44 GB; stepped down, 2.6
/// GB). Each step warm-starts the greedy from best's cuts at the budget
/// best.peak - gap / 2^shift, where gap = best.peak - max(floor, budget);
/// a run with a lower peak replaces best, and a run that misses its step's
/// budget quarters the step (shift += 2) until shift passes 8. Stops as soon
/// as best fits the budget, so it also turns some stuck runs into fits.
void lower_peak(const RematProblem& p, const FastOptions& opts, int64_t floor, Replay& best) {
  RematProblem q = p;
  Replay r;
  for (int shift = 1; shift <= 8 && best.peak > p.budget;) {
    const int64_t gap = best.peak - std::max(floor, p.budget);
    if (gap <= 0) break;
    q.budget = best.peak - std::max<int64_t>(1, gap >> shift);
    build_replay(q, best.cuts, r);
    Greedy(q, opts).run(r);
    if (r.peak > q.budget) shift += 2;
    if (r.peak < best.peak) std::swap(best, r);
  }
  build_replay(p, best.cuts, r);  // the excess against p's budget
  std::swap(best, r);
}

/// best = r if r fits and is cheaper, or neither fits and r's peak is lower.
void keep_better(const RematProblem& p, Replay& r, Replay& best) {
  const bool r_fits = r.peak <= p.budget, b_fits = best.peak <= p.budget;
  if ((r_fits && (!b_fits || r.extra_cost < best.extra_cost)) || (!r_fits && !b_fits && r.peak < best.peak))
    std::swap(best, r);
}

/// Step 5b (remat_fast.h): recompute-all seeds. For a prefix [0, f] of the
/// stages, every read by stage t of a prefix node u with u < t - 1 recomputes
/// u at t with its recomputable ancestors in the prefix, so nothing of the
/// prefix is held across stages;
/// the seed is cleaned up against the budget and kept if better. f runs over
/// at most 16 values spread evenly up to the stage of the peak without
/// recomputation; a seed whose cleanup would replay more than the remaining
/// `work` node-positions is skipped. Finds schedules that rerun a whole
/// chain from its input at several backward stages, which the greedy and the
/// annealing missed on bert's coarse training step (remat_fast.h, step 5b).
void recompute_all_seeds(const RematProblem& p, const Replay& base, int64_t work, Replay& best) {
  const int32_t n = static_cast<int32_t>(p.nodes.size()), top = base.stage_of[base.peak_pos];
  const int32_t count = std::min(top + 1, 16);
  std::vector<int32_t> stack, seen(static_cast<size_t>(n), -1);
  Replay seed;
  for (int32_t i = 0; i < count; ++i) {
    const int32_t f = count == 1 ? top : static_cast<int32_t>(static_cast<int64_t>(top) * i / (count - 1));
    auto eligible = [&](int32_t u, int32_t t) {  // u may rerun in stage t
      const RematNode& nu = p.nodes[u];
      return u <= f && nu.recomputable && !nu.keep_to_end && t <= nu.recompute_until;
    };
    // Cleanup replays about once per cut, each of length n + cuts: stop
    // building a seed whose cleanup would exceed the remaining work.
    std::vector<Cut> cuts;
    bool too_big = false;
    std::fill(seen.begin(), seen.end(), -1);
    for (int32_t t = 0; t < n && !too_big; ++t)
      for (int32_t u : p.nodes[t].deps) {
        if (u >= t - 1 || !eligible(u, t) || seen[u] == t) continue;
        seen[u] = t;
        stack.assign(1, u);
        while (!stack.empty()) {
          const int32_t w = stack.back();
          stack.pop_back();
          cuts.push_back({w, t});
          for (int32_t x : p.nodes[w].deps)
            if (eligible(x, t) && seen[x] != t) {
              seen[x] = t;
              stack.push_back(x);
            }
        }
        const int64_t len = n + static_cast<int64_t>(cuts.size());
        too_big = len * len > work;
      }
    if (cuts.empty() || too_big) continue;
    const int64_t len = n + static_cast<int64_t>(cuts.size());
    work -= len * len;
    build_replay(p, std::move(cuts), seed);
    if (seed.peak > p.budget) continue;
    cleanup(p, p.budget, seed);
    keep_better(p, seed, best);
  }
}

std::string check_problem(const RematProblem& p) {
  for (size_t i = 0; i < p.nodes.size(); ++i)
    for (int32_t u : p.nodes[i].deps)
      if (u < 0 || static_cast<size_t>(u) >= i)
        return "invalid problem: node " + std::to_string(i) + " depends on " + std::to_string(u) +
               " (deps must be earlier nodes)";
  const auto n = static_cast<int64_t>(p.nodes.size()), sets = static_cast<int64_t>(p.replica_sets.size());
  if (!p.replica_set.empty() && static_cast<int64_t>(p.replica_set.size()) != n)
    return "invalid problem: replica_set has " + std::to_string(p.replica_set.size()) + " entries for " +
           std::to_string(n) + " nodes";
  for (int32_t s : p.replica_set)
    if (s < -1 || s >= sets) return "invalid problem: replica set " + std::to_string(s) + " does not exist";
  for (int64_t j = 0; j < sets; ++j)
    for (int32_t v : p.replica_sets[j])
      if (v < 0 || v >= n || p.replica_set.empty() || p.replica_set[v] != j)
        return "invalid problem: replica set member " + std::to_string(v) + " is not a node of that set";
  return "";
}

}  // namespace
}  // namespace remat_fast

int64_t remat_peak_floor(const RematProblem& p) { return remat_fast::peak_floor(p); }

RematSolution solve_remat_fast(const RematProblem& p, const FastOptions& opts) {
  using namespace remat_fast;
  RematSolution sol;
  if (std::string bad = check_problem(p); !bad.empty()) {
    sol.note = bad;
    return sol;
  }
  const int64_t replays_before = replays_done;
  Replay base;
  build_replay(p, {}, base);
  auto finish = [&](const Replay& r, std::string note) {
    sol.replays = replays_done - replays_before;
    sol.stages = replay_stages(r);
    sol.peak = r.peak;
    sol.extra_cost = r.extra_cost;
    sol.feasible = r.peak <= p.budget;
    sol.note = std::move(note);
    return sol;
  };
  if (base.peak <= p.budget) return finish(base, "fits without recomputation");
  const int64_t floor = peak_floor(p);

  Replay best = base;
  bool have_dp = false;
  if (opts.use_chain_dp) {
    Replay dp;
    if (solve_chain_dp(p, opts, base, dp)) {
      have_dp = true;
      best = std::move(dp);
    }
  }
  const bool dp_fits = have_dp && best.peak <= p.budget;
  const bool run_greedy = opts.use_greedy && floor <= p.budget &&
                          (!dp_fits || static_cast<int32_t>(p.nodes.size()) <= opts.greedy_max_nodes_after_dp);
  if (run_greedy) {
    Replay g = base;
    Greedy(p, opts).run(g);
    if (opts.descend && g.peak > p.budget) descend(p, opts, base, g);
    if (opts.cleanup) cleanup(p, std::max(p.budget, g.peak), g);
    keep_better(p, g, best);
  }
  if (floor <= p.budget && static_cast<int32_t>(p.nodes.size()) <= opts.search_max_nodes) {
    // Small problem: steps 5-7 share a replay budget (a quarter, a half, the rest).
    const int64_t len = std::max<int64_t>(1, static_cast<int64_t>(base.seq.size()));
    const int64_t replays = std::min<int64_t>(opts.search_max_replays, opts.search_work / len);
    Greedy measured(p, opts);
    measured.replays_left = replays / 4;
    Replay g = base;
    measured.run_measured(g);
    if (opts.cleanup) cleanup(p, std::max(p.budget, g.peak), g);
    keep_better(p, g, best);
    if (opts.recompute_all_seeds) recompute_all_seeds(p, base, opts.search_work, best);
    anneal(p, opts, best, replays / 2);
    if (opts.cleanup) cleanup(p, std::max(p.budget, best.peak), best);
    lns(p, opts, best, replays - replays / 4 - replays / 2);
  }
  if (best.peak <= p.budget) return finish(best, "");
  const bool ladder_useless = floor > p.budget && floor >= opts.lower_peak_floor_limit;
  if (opts.use_greedy && opts.lower_infeasible_peak && !ladder_useless) {
    lower_peak(p, opts, floor, best);
    if (opts.cleanup) cleanup(p, std::max(p.budget, best.peak), best);
    if (best.peak <= p.budget) return finish(best, "");
  }
  std::string note = "infeasible: budget " + std::to_string(p.budget) + " bytes; best peak reached " +
                     std::to_string(best.peak) + " bytes";
  note += floor > p.budget ? " (floor is " + std::to_string(floor) + " bytes)" : " (heuristic: no candidate helps)";
  return finish(best, note);
}

}  // namespace memplan
