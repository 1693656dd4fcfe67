// Chain DP of the fast rematerialization solver (step 2 in remat_fast.h):
// segments between articulation nodes of the forward region are either kept
// whole or keep only their output and recompute their interior during their
// backward, in the manner of Rotor / Chen et al.; the modeled memory limit is
// searched so that the replayed peak fits the budget.
#include <algorithm>
#include <cmath>
#include <limits>

#include "passes/remat_fast_internal.h"

namespace memplan::remat_fast {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Chain {
  int32_t fwd_end = 0;            // last node of the forward region
  std::vector<int32_t> bound;     // bound[0] = -1, bound[j] = last node of unit j
  std::vector<int64_t> act;       // act[j]: bytes of unit j kept for the backward
  std::vector<double> cost_pre;   // prefix over nodes: cost of recomputable nodes
  std::vector<int64_t> act_pre;   // prefix over units of act
  std::vector<std::vector<int32_t>> consumers;
};

/// Units between articulation nodes of the forward region [0, F], F = the
/// no-recompute peak position. Returns false if there are fewer than 2 units.
bool find_chain(const RematProblem& p, const Replay& base, int32_t max_units, Chain& c) {
  const int32_t n = static_cast<int32_t>(p.nodes.size());
  const int32_t F = base.seq[base.peak_pos];
  c.fwd_end = F;
  c.consumers.assign(static_cast<size_t>(n), {});
  std::vector<int32_t> last_fwd(static_cast<size_t>(n));
  std::vector<char> late(static_cast<size_t>(n), 0);
  for (int32_t v = 0; v < n; ++v) {
    last_fwd[v] = v;
    late[v] = p.nodes[v].keep_to_end;
  }
  for (int32_t i = 0; i < n; ++i)
    for (int32_t u : p.nodes[i].deps) {
      c.consumers[u].push_back(i);
      if (i <= F) last_fwd[u] = std::max(last_fwd[u], i);
      else late[u] = 1;
    }
  // a is an articulation node if no forward edge from before a lands after a.
  std::vector<int32_t> arts;
  int32_t reach = -1;
  for (int32_t a = 0; a <= F; ++a) {
    if (reach <= a) arts.push_back(a);
    reach = std::max(reach, last_fwd[a]);
  }
  if (arts.back() != F) arts.push_back(F);  // the tail unit ends at the forward end
  const size_t stride = (arts.size() + static_cast<size_t>(max_units) - 1) / static_cast<size_t>(max_units);
  c.bound = {-1};
  for (size_t i = stride - 1; i < arts.size(); i += stride) c.bound.push_back(arts[i]);
  if (c.bound.back() != arts.back()) c.bound.push_back(arts.back());
  const size_t K = c.bound.size() - 1;
  if (K < 2) return false;
  c.act.assign(K + 1, 0);
  for (size_t j = 1; j <= K; ++j)
    for (int32_t v = c.bound[j - 1] + 1; v <= c.bound[j]; ++v)
      if (late[v] && p.nodes[v].recomputable) c.act[j] += p.nodes[v].bytes;
  c.act_pre.assign(K + 1, 0);
  for (size_t j = 1; j <= K; ++j) c.act_pre[j] = c.act_pre[j - 1] + c.act[j];
  c.cost_pre.assign(static_cast<size_t>(n) + 1, 0);
  for (int32_t v = 0; v < n; ++v)
    c.cost_pre[v + 1] = c.cost_pre[v] + (p.nodes[v].recomputable ? p.nodes[v].cost : 0.0);
  return true;
}

/// Segments (i, k] to recompute, chosen by DP under the modeled limit L;
/// false if no choice satisfies the model.
bool run_dp(const RematProblem& p, const Chain& c, int64_t L, int32_t slots,
            std::vector<std::pair<int32_t, int32_t>>& segs) {
  const int32_t K = static_cast<int32_t>(c.bound.size()) - 1, M = std::max(1, slots);
  const double slot = std::max(1.0, std::ceil(static_cast<double>(L) / M));
  // Clamped to M + 1 (more than the limit holds): a byte count of many
  // slots would overflow int32 (a 2 GiB output against a limit of a few
  // hundred bytes, which the bisection below tries).
  auto to_slots = [&](int64_t b) {
    return static_cast<int32_t>(std::min(std::ceil(static_cast<double>(b) / slot), static_cast<double>(M) + 1));
  };
  const size_t W = static_cast<size_t>(M) + 1;
  std::vector<double> best((static_cast<size_t>(K) + 1) * W, kInf);
  std::vector<int32_t> from_i(best.size(), -1), from_m(best.size(), -1);
  std::vector<char> kept(best.size(), 0);
  best[0] = 0;
  for (int32_t k = 1; k <= K; ++k) {
    const int32_t keep_s = to_slots(c.act[k]);
    for (int32_t m = 0; m + keep_s <= M; ++m) {
      const double v = best[(k - 1) * W + m];
      const size_t to = k * W + m + keep_s;
      if (v < best[to]) {
        best[to] = v;
        from_i[to] = k - 1;
        from_m[to] = m;
        kept[to] = 1;
      }
    }
    const int32_t bk = c.bound[k];
    const int32_t out_s = to_slots(p.nodes[bk].bytes);
    for (int32_t i = 0; i < k; ++i) {
      const int64_t seg_act = c.act_pre[k] - c.act_pre[i];
      const double seg_cost = c.cost_pre[bk] - c.cost_pre[c.bound[i] + 1];
      for (int32_t m = 0; m + out_s <= M; ++m) {
        const double v = best[i * W + m];
        if (v == kInf) continue;
        if (static_cast<double>(m) * slot + static_cast<double>(seg_act) > static_cast<double>(L)) break;
        const size_t to = k * W + m + out_s;
        if (v + seg_cost < best[to]) {
          best[to] = v + seg_cost;
          from_i[to] = i;
          from_m[to] = m;
          kept[to] = 0;
        }
      }
    }
  }
  int32_t bm = -1;
  for (int32_t m = 0; m <= M; ++m)
    if (best[K * W + m] < kInf && (bm < 0 || best[K * W + m] < best[K * W + bm])) bm = m;
  if (bm < 0) return false;
  segs.clear();
  for (int32_t k = K, m = bm; k > 0;) {
    const size_t at = k * W + m;
    if (!kept[at]) segs.push_back({from_i[at], k});
    const int32_t pk = from_i[at];
    m = from_m[at];
    k = pk;
  }
  return true;
}

/// Cuts for recompute segments: interior nodes are recomputed at their first
/// read after the forward region (including reads by recomputations).
std::vector<Cut> segment_cuts(const RematProblem& p, const Chain& c,
                              const std::vector<std::pair<int32_t, int32_t>>& segs) {
  std::vector<Cut> cuts;
  std::vector<int32_t> at(p.nodes.size(), -1);
  for (auto [i, k] : segs) {
    const int32_t lo = c.bound[i] + 1, hi = c.bound[k];  // interior: [lo, hi)
    for (int32_t v = hi - 1; v >= lo; --v) {
      if (!p.nodes[v].recomputable) continue;
      int32_t first = -1;
      for (int32_t w : c.consumers[v]) {
        int32_t s = -1;
        if (w > c.fwd_end) s = w;
        else if (w > v && w < hi && at[w] >= 0) s = at[w];
        if (s >= 0 && (first < 0 || s < first)) first = s;
      }
      if (first > p.nodes[v].recompute_until) first = -1;  // held instead
      at[v] = first;
      if (first >= 0) cuts.push_back({v, first});
    }
  }
  return cuts;
}

}  // namespace

bool solve_chain_dp(const RematProblem& p, const FastOptions& opts, const Replay& base, Replay& out) {
  Chain c;
  if (!find_chain(p, base, std::max(2, opts.dp_max_units), c)) return false;
  std::vector<std::pair<int32_t, int32_t>> segs;
  Replay trial;
  bool have = false;
  auto consider = [&](int64_t L) {  // -1: the DP has no solution at L
    if (!run_dp(p, c, L, opts.dp_memory_slots, segs)) return -1;
    build_replay(p, segment_cuts(p, c, segs), trial);
    const bool fits = trial.peak <= p.budget, best_fits = have && out.peak <= p.budget;
    if (!have || (fits && (!best_fits || trial.extra_cost < out.extra_cost)) ||
        (!fits && !best_fits && trial.peak < out.peak)) {
      std::swap(out, trial);
      have = true;
    }
    return fits ? 1 : 0;
  };
  // Smallest modeled limit the DP can satisfy (monotone), then the largest
  // limit whose replayed peak fits (assumed monotone above the first).
  int64_t hi = c.act_pre.back();
  for (int32_t v = 0; v < static_cast<int32_t>(p.nodes.size()); ++v) hi += p.nodes[v].bytes;
  int64_t lo = 0;
  if (consider(hi) < 0) return have;
  for (int it = 0; it < 40 && hi - lo > 1; ++it) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (run_dp(p, c, mid, opts.dp_memory_slots, segs)) hi = mid;
    else lo = mid;
  }
  int64_t ok = hi, bad = c.act_pre.back() + p.nodes[c.bound.back()].bytes + 1;
  if (consider(ok) != 1) return have;  // even the tightest schedule is over budget
  bad = std::max(bad, ok + 1);
  if (consider(bad) == 1) return have;
  for (int it = 0; it < 40 && bad - ok > 1; ++it) {
    const int64_t mid = ok + (bad - ok) / 2;
    if (consider(mid) == 1) ok = mid;
    else bad = mid;
  }
  return have;
}

}  // namespace memplan::remat_fast
