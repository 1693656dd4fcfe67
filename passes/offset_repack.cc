#include "passes/offset_repack.h"

#include <algorithm>
#include <functional>
#include <map>

#include "passes/lifetimes.h"

namespace memplan {
namespace {

constexpr int32_t kCutRadius = 20;

struct Repacker {
  const std::vector<Buffer>& bufs;  // sizes aligned
  const RepackOptions& opts;
  int32_t steps = 1;
  std::vector<int32_t> cuts;  // ascending, first 0, last `steps`
  int64_t work = 0;
  // Per lower_to: buffers pinned just below the target (long-lived ones and
  // ones crossing a window that found no hole), and buffers that overlap a
  // pinned one and must move.
  std::vector<char> pinned, needs;

  int64_t top(const std::vector<int64_t>& off, size_t i) const { return off[i] + bufs[i].size; }

  void find_cuts() {
    const int32_t short_len = std::max(1, steps / 10);
    std::vector<int64_t> cross(static_cast<size_t>(steps) + 1, 0);  // boundary before step t
    for (const Buffer& b : bufs)
      if (b.end - b.start <= short_len && b.end > b.start) {
        cross[b.start + 1] += b.size;
        cross[b.end + 1] -= b.size;
      }
    for (int32_t t = 1; t <= steps; ++t) cross[t] += cross[t - 1];
    cuts.push_back(0);
    for (int32_t t = 1; t < steps; ++t) {
      bool lowest = true;
      for (int32_t u = std::max(1, t - kCutRadius); u <= std::min(steps - 1, t + kCutRadius) && lowest;
           ++u)
        if (cross[u] < cross[t] || (cross[u] == cross[t] && u < t)) lowest = false;
      if (lowest) cuts.push_back(t);
    }
    cuts.push_back(steps);
  }
  /// Index of the last cut at or before step s.
  size_t cut_at_or_before(int32_t s) const {
    return static_cast<size_t>(std::upper_bound(cuts.begin(), cuts.end(), s) - cuts.begin()) - 1;
  }

  /// Re-places the buffers inside window [w0, w1] around the rest so that
  /// all end at most `cap`; updates `off` and returns true on success.
  bool solve_window(std::vector<int64_t>& off, int32_t w0, int32_t w1, int64_t cap) {
    // Sub-problem: the fixed buffers live in the window (clipped to it) and
    // the free ones (inside it), steps shifted to start at 0.
    std::vector<Buffer> sub;
    std::vector<uint32_t> fixed, free_ids;  // indices into sub; free_ids -> bufs via `orig`
    std::vector<uint32_t> orig;
    std::vector<int64_t> sub_off;
    for (size_t i = 0; i < bufs.size(); ++i) {
      const Buffer& b = bufs[i];
      if (b.end < w0 || b.start > w1 || b.size == 0) continue;
      const bool inside = b.start >= w0 && b.end <= w1 && !pinned[i];
      const auto k = static_cast<uint32_t>(sub.size());
      sub.push_back({b.size, std::max(b.start, w0) - w0, std::min(b.end, w1) - w0});
      sub_off.push_back(off[i]);
      orig.push_back(static_cast<uint32_t>(i));
      (inside ? free_ids : fixed).push_back(k);
    }
    if (free_ids.empty()) return false;
    using Key = std::function<int64_t(uint32_t)>;
    const std::vector<Key> keys = {
        [&](uint32_t k) { return sub[k].size; },
        [&](uint32_t k) { return int64_t{sub[k].end} - sub[k].start; },
        [&](uint32_t k) { return sub[k].size * (int64_t{sub[k].end} - sub[k].start + 1); },
        [&](uint32_t k) { return -int64_t{sub[k].start}; },
        [&](uint32_t k) { return -sub_off[k]; },
    };
    std::vector<std::vector<uint32_t>> orders;
    for (const Key& key : keys) {
      std::vector<uint32_t> o = free_ids;
      std::stable_sort(o.begin(), o.end(), [&](uint32_t a, uint32_t b) { return key(a) > key(b); });
      orders.push_back(std::move(o));
    }
    // Each order, best fit and first fit, then squeaky-wheel rounds: the
    // buffers that ended above the target go first next time.
    std::vector<int64_t> trial;
    std::vector<uint32_t> above;
    const int32_t bases = static_cast<int32_t>(2 * orders.size());
    const int32_t rounds = std::max(1, opts.attempts_per_window / bases);
    for (int32_t base = 0; base < bases; ++base) {
      std::vector<uint32_t>& order = orders[static_cast<size_t>(base) / 2];
      for (int32_t round = 0; round < rounds; ++round) {
        if (work > opts.max_work) return false;
        trial = sub_off;
        above.clear();
        work += static_cast<int64_t>(free_ids.size());
        if (place_around(sub, fixed, order, trial, cap, opts.alignment, base % 2 == 1, &above)) {
          for (uint32_t k : free_ids) {
            off[orig[k]] = trial[k];
            needs[orig[k]] = 0;
          }
          return true;
        }
        std::vector<char> late(sub.size(), 0);
        for (uint32_t k : above) late[k] = 1;
        std::stable_partition(order.begin(), order.end(), [&](uint32_t k) { return late[k] != 0; });
      }
    }
    return false;
  }

  /// Moves buffer i alone into the lowest hole, over its whole life, that
  /// ends at most `cap`; false (nothing moved) when there is none.
  bool relocate(std::vector<int64_t>& off, size_t i, int64_t cap) {
    const Buffer& b = bufs[i];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j = 0; j < bufs.size(); ++j)
      if (j != i && bufs[j].size > 0 && bufs[j].start <= b.end && b.start <= bufs[j].end)
        busy.push_back({off[j], top(off, j)});
    work += static_cast<int64_t>(bufs.size() / 64) + 1;
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (auto [lo, hi] : busy) {
      if (lo - at >= b.size) break;
      at = std::max(at, hi);
    }
    if (at + b.size > cap) return false;
    off[i] = at;
    needs[i] = 0;
    return true;
  }

  /// Pins buffer i over its life at the highest offset where it ends at
  /// most `cap` clear of the other pinned buffers; the buffers it then
  /// overlaps must move. False (nothing changed) when no such offset is left.
  bool pin(std::vector<int64_t>& off, size_t i, int64_t cap) {
    const Buffer& b = bufs[i];
    std::vector<size_t> hit, pins;
    for (size_t j = 0; j < bufs.size(); ++j)
      if (j != i && bufs[j].size > 0 && bufs[j].start <= b.end && b.start <= bufs[j].end)
        (pinned[j] ? pins : hit).push_back(j);
    work += static_cast<int64_t>(bufs.size() / 64) + 1;
    // Below the pinned ones in its way, highest first.
    std::sort(pins.begin(), pins.end(), [&](size_t x, size_t y) { return off[x] > off[y]; });
    int64_t at = cap - b.size;
    for (size_t j : pins)
      if (off[j] < at + b.size && at < top(off, j)) at = off[j] - b.size;
    if (at < 0) return false;
    off[i] = at;
    pinned[i] = 1;
    needs[i] = 0;
    for (size_t j : hit)
      if (off[j] < at + b.size && at < top(off, j)) needs[j] = 1;
    return true;
  }

  /// Brings every buffer to end at most `cap` by solving windows; on
  /// success `off` holds the new placement.
  bool lower_to(std::vector<int64_t>& off, int64_t cap, bool pin_long) {
    std::vector<int64_t> cur = off;
    const int64_t work_at_start = work;  // a target may spend a quarter of max_work
    pinned.assign(bufs.size(), 0);
    needs.assign(bufs.size(), 0);
    auto violates = [&](size_t i) { return top(cur, i) > cap || needs[i]; };
    auto over_budget = [&] {
      return work > std::min(opts.max_work, work_at_start + opts.max_work / 4);
    };
    for (;;) {
      if (over_budget()) return false;
      size_t h = bufs.size();
      for (size_t i = 0; i < bufs.size() && h == bufs.size(); ++i)
        if (violates(i)) h = i;
      if (h == bufs.size()) {
        off = std::move(cur);
        return true;
      }
      // Long-lived ones are pinned rather than given a window of their own
      // (with pin_long: a target's first pass).
      const bool long_lived = cut_at_or_before(bufs[h].end) > cut_at_or_before(bufs[h].start) + 2;
      if (relocate(cur, h, cap) || (pin_long && long_lived && pin(cur, h, cap))) continue;
      bool solved = false;
      int32_t w0 = bufs[h].start, w1 = bufs[h].end;
      size_t tried = 0;  // buffers inside the last window solved
      for (int32_t g = 0; g <= 5 && !solved; ++g) {
        // From the last window out to the cuts, g / 2 cut ranges further
        // before and (g + 1) / 2 after.
        const size_t c0 =
            cut_at_or_before(w0) - std::min(cut_at_or_before(w0), static_cast<size_t>(g / 2));
        const size_t c1 = std::min(cuts.size() - 1,
                                   cut_at_or_before(w1) + 1 + static_cast<size_t>((g + 1) / 2));
        w0 = cuts[c0];
        w1 = cuts[c1] - 1;
        // Cover the buffers above the target that cross the window.
        for (bool grew = true; grew;) {
          grew = false;
          for (size_t i = 0; i < bufs.size(); ++i) {
            const Buffer& b = bufs[i];
            if (!violates(i) || b.end < w0 || b.start > w1) continue;
            if (b.start >= w0 && b.end <= w1) continue;
            if (relocate(cur, i, cap) || pin(cur, i, cap)) continue;
            w0 = std::min(w0, b.start);
            w1 = std::max(w1, b.end);
            grew = true;
          }
        }
        // A window that did not grow by a quarter is not worth another try.
        size_t inside = 0;
        for (const Buffer& b : bufs) inside += b.start >= w0 && b.end <= w1;
        if (g > 0 && inside * 4 < tried * 5 && !(w0 == 0 && w1 == steps - 1)) continue;
        tried = inside;
        solved = solve_window(cur, w0, w1, cap);
        if (over_budget()) return false;
        if (w0 == 0 && w1 == steps - 1) break;  // the window is everything
      }
      if (!solved) return false;
    }
  }
};

int64_t arena_of(const std::vector<Buffer>& bufs, const std::vector<int64_t>& off) {
  int64_t a = 0;
  for (size_t i = 0; i < bufs.size(); ++i)
    if (bufs[i].size > 0) a = std::max(a, off[i] + bufs[i].size);
  return a;
}

/// No two buffers live at a common step overlap (a sweep over time).
bool valid(const std::vector<Buffer>& bufs, const std::vector<int64_t>& off) {
  std::vector<uint32_t> by_start;
  for (uint32_t i = 0; i < bufs.size(); ++i)
    if (bufs[i].size > 0) by_start.push_back(i);
  std::stable_sort(by_start.begin(), by_start.end(),
                   [&](uint32_t a, uint32_t b) { return bufs[a].start < bufs[b].start; });
  std::multimap<int32_t, uint32_t> ending;  // end step -> buffer
  std::map<int64_t, int64_t> live;          // offset -> top
  for (uint32_t i : by_start) {
    while (!ending.empty() && ending.begin()->first < bufs[i].start) {
      live.erase(off[ending.begin()->second]);
      ending.erase(ending.begin());
    }
    const int64_t lo = off[i], hi = off[i] + bufs[i].size;
    if (lo < 0) return false;
    auto next = live.lower_bound(lo);
    if (next != live.end() && next->first < hi) return false;
    if (next != live.begin() && std::prev(next)->second > lo) return false;
    live.emplace(lo, hi);
    ending.emplace(bufs[i].end, i);
  }
  return true;
}

}  // namespace

bool repack_windows(const std::vector<Buffer>& buffers, OffsetResult& best, int64_t lb,
                    const RepackOptions& opts) {
  std::vector<Buffer> bufs = buffers;
  for (Buffer& b : bufs) b.size = align_up(b.size, opts.alignment);
  Repacker r{bufs, opts};
  for (const Buffer& b : bufs) r.steps = std::max(r.steps, b.end + 1);
  r.find_cuts();
  std::vector<int64_t> off = best.offsets;
  int64_t arena = arena_of(bufs, off);
  bool changed = false;
  for (int64_t d = 8; d <= 64 && arena * 200 > lb * 201 && r.work <= opts.max_work;) {
    int64_t cap = arena - std::max(opts.alignment, (arena - lb) / d);
    cap -= cap % opts.alignment;
    if (cap < lb || cap >= arena) break;
    if (r.lower_to(off, cap, true) || r.lower_to(off, cap, false)) {
      arena = arena_of(bufs, off);
      changed = true;
    } else {
      d *= 2;
    }
  }
  if (!changed || arena >= best.arena_bytes || !valid(bufs, off)) return false;  // valid: a safety net
  best.offsets = std::move(off);
  best.arena_bytes = arena;
  best.order = "repack";
  return true;
}

}  // namespace memplan
