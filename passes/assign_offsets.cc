#include "passes/assign_offsets.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "passes/lifetimes.h"
#include "passes/offset_search.h"
#include "runtime/rng.h"

namespace memplan {

std::string_view offset_method_name(OffsetMethod m) {
  return m == OffsetMethod::greedy_size ? "greedy-size" : "best-of";
}
std::optional<OffsetMethod> parse_offset_method(std::string_view s) {
  if (s == "greedy-size") return OffsetMethod::greedy_size;
  if (s == "best-of") return OffsetMethod::best_of;
  return std::nullopt;
}

namespace {

/// Placed buffers in a segment tree over time. Node x covers a step range;
/// cover[x] is the union of the offset intervals of the buffers whose
/// canonical decomposition contains x (they are live over all of x's range),
/// sub[x] the union for the buffers with a canonical node anywhere in x's
/// subtree. The buffers live somewhere in a query range [s, e] are then
/// exactly those in sub[c] for the canonical nodes c of [s, e] and in cover[a]
/// for their ancestors a; the query returns the union of those O(log T) sets.
/// The unions are kept merged, so in a well-packed arena they stay small even
/// when thousands of saved activations overlap the query (the quadratic cost of
/// listing every overlapping buffer).
class OffsetIndex {
 public:
  explicit OffsetIndex(int32_t steps) {
    while (size_ < steps) size_ *= 2;
    cover_.resize(2 * static_cast<size_t>(size_));
    sub_.resize(2 * static_cast<size_t>(size_));
  }
  void add(int32_t start, int32_t end, int64_t lo, int64_t hi) {
    add(1, 0, size_ - 1, start, end, lo, hi);
  }
  /// The merged union of the offset intervals live in [start, end], by lo.
  void query(int32_t start, int32_t end, std::vector<std::pair<int64_t, int64_t>>& out) {
    out.clear();
    query(1, 0, size_ - 1, start, end, out);
    std::sort(out.begin(), out.end());
  }

 private:
  using Set = std::map<int64_t, int64_t>;  // lo -> hi, disjoint, non-adjacent
  static void insert(Set& set, int64_t lo, int64_t hi) {
    auto it = set.upper_bound(lo);
    if (it != set.begin()) {
      auto prev = std::prev(it);
      if (prev->second >= lo) {  // overlaps or touches the previous interval
        lo = prev->first;
        hi = std::max(hi, prev->second);
        it = set.erase(prev);
      }
    }
    while (it != set.end() && it->first <= hi) {
      hi = std::max(hi, it->second);
      it = set.erase(it);
    }
    set.emplace_hint(it, lo, hi);
  }
  void add(size_t x, int32_t l, int32_t r, int32_t s, int32_t e, int64_t lo, int64_t hi) {
    insert(sub_[x], lo, hi);
    if (s <= l && r <= e) {
      insert(cover_[x], lo, hi);
      return;
    }
    const int32_t m = l + (r - l) / 2;
    if (s <= m) add(2 * x, l, m, s, e, lo, hi);
    if (e > m) add(2 * x + 1, m + 1, r, s, e, lo, hi);
  }
  void query(size_t x, int32_t l, int32_t r, int32_t s, int32_t e,
             std::vector<std::pair<int64_t, int64_t>>& out) const {
    if (s <= l && r <= e) {
      out.insert(out.end(), sub_[x].begin(), sub_[x].end());
      return;
    }
    out.insert(out.end(), cover_[x].begin(), cover_[x].end());
    const int32_t m = l + (r - l) / 2;
    if (s <= m) query(2 * x, l, m, s, e, out);
    if (e > m) query(2 * x + 1, m + 1, r, s, e, out);
  }

  int32_t size_ = 1;
  std::vector<Set> cover_, sub_;
};

/// Among the holes between the busy intervals (sorted by lo, possibly
/// overlapping), the smallest that fits `size` (first fit: the lowest), else
/// the top of them all.
int64_t pick_hole(const std::vector<std::pair<int64_t, int64_t>>& busy, int64_t size,
                  bool first_fit) {
  int64_t best = -1, best_gap = std::numeric_limits<int64_t>::max(), top = 0;
  for (auto [lo, hi] : busy) {
    const int64_t gap = lo - top;
    if (gap >= size && (first_fit ? best < 0 : gap < best_gap)) {
      best = top;
      best_gap = gap;
    }
    top = std::max(top, hi);
  }
  return best < 0 ? top : best;
}

/// Best-fit (or first-fit: the lowest hole that fits) placement of buffers
/// in the given order. Gives up (nullopt) once the busy intervals examined
/// exceed `max_work`.
std::optional<OffsetResult> place(const std::vector<Buffer>& bufs,
                                  const std::vector<uint32_t>& order, int64_t alignment,
                                  int64_t max_work, bool first_fit = false) {
  int32_t steps = 1;
  for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
  OffsetResult r;
  r.offsets.assign(bufs.size(), -1);
  OffsetIndex index(steps);
  std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) unions live with the buffer
  int64_t work = 0;
  for (uint32_t id : order) {
    const Buffer& b = bufs[id];
    const int64_t size = align_up(b.size, alignment);
    if (size == 0) {  // occupies nothing
      r.offsets[id] = 0;
      continue;
    }
    index.query(b.start, b.end, busy);
    work += static_cast<int64_t>(busy.size()) + 1;
    if (work > max_work) return std::nullopt;
    const int64_t best = pick_hole(busy, size, first_fit);
    r.offsets[id] = best;
    r.arena_bytes = std::max(r.arena_bytes, best + size);
    index.add(b.start, b.end, best, best + size);
  }
  return r;
}

}  // namespace

bool place_around(const std::vector<Buffer>& bufs, const std::vector<uint32_t>& fixed,
                  const std::vector<uint32_t>& order, std::vector<int64_t>& offsets,
                  int64_t capacity, int64_t alignment, bool first_fit,
                  std::vector<uint32_t>* above) {
  int32_t steps = 1;
  for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
  OffsetIndex index(steps);
  for (uint32_t id : fixed)
    if (const int64_t size = align_up(bufs[id].size, alignment); size > 0)
      index.add(bufs[id].start, bufs[id].end, offsets[id], offsets[id] + size);
  std::vector<std::pair<int64_t, int64_t>> busy;
  for (uint32_t id : order) {
    const Buffer& b = bufs[id];
    const int64_t size = align_up(b.size, alignment);
    if (size == 0) {
      offsets[id] = 0;
      continue;
    }
    index.query(b.start, b.end, busy);
    const int64_t best = pick_hole(busy, size, first_fit);
    if (best + size > capacity) {
      if (!above) return false;
      above->push_back(id);
    }
    offsets[id] = best;
    index.add(b.start, b.end, best, best + size);
  }
  return !above || above->empty();
}

namespace {

/// Best fit in order of start time as a sweep over time: the buffers placed
/// before b that overlap it are exactly those still live at b.start, so a
/// free-hole index over the live blocks answers each placement in O(log n).
/// Same result as place() with the (start, size descending) order.
OffsetResult place_by_start(const std::vector<Buffer>& bufs, const std::vector<uint32_t>& order,
                            int64_t alignment) {
  OffsetResult r;
  r.offsets.assign(bufs.size(), -1);
  std::map<int64_t, int64_t> live;            // lo -> hi of live blocks (disjoint)
  std::set<std::pair<int64_t, int64_t>> holes;  // (gap, lo) between live blocks
  std::vector<std::pair<int32_t, uint32_t>> ends;  // min-heap of (end, id) of live buffers
  auto hole_below = [&](std::map<int64_t, int64_t>::iterator it) {  // gap under block `it`
    const int64_t below = it == live.begin() ? 0 : std::prev(it)->second;
    return std::pair<int64_t, int64_t>{it->first - below, below};
  };
  auto remove = [&](uint32_t id) {
    auto it = live.find(r.offsets[id]);
    if (auto h = hole_below(it); h.first > 0) holes.erase(h);
    auto next = std::next(it);
    if (next != live.end()) {
      if (auto h = hole_below(next); h.first > 0) holes.erase(h);
      live.erase(it);
      if (auto h = hole_below(next); h.first > 0) holes.insert(h);
    } else {
      live.erase(it);  // the space above the new top block is no hole
    }
  };
  auto later = [](const std::pair<int32_t, uint32_t>& a, const std::pair<int32_t, uint32_t>& b) {
    return a > b;
  };
  for (uint32_t id : order) {
    const Buffer& b = bufs[id];
    const int64_t size = align_up(b.size, alignment);
    if (size == 0) {
      r.offsets[id] = 0;
      continue;
    }
    while (!ends.empty() && ends.front().first < b.start) {
      remove(ends.front().second);
      std::pop_heap(ends.begin(), ends.end(), later);
      ends.pop_back();
    }
    int64_t at;
    auto h = holes.lower_bound({size, std::numeric_limits<int64_t>::min()});
    if (h != holes.end()) {  // smallest hole that fits, lowest offset among equals
      at = h->second;
      const int64_t rest = h->first - size;
      holes.erase(h);
      if (rest > 0) holes.insert({rest, at + size});
    } else {
      at = live.empty() ? 0 : std::prev(live.end())->second;
    }
    live.emplace(at, at + size);
    r.offsets[id] = at;
    r.arena_bytes = std::max(r.arena_bytes, at + size);
    ends.emplace_back(b.end, id);
    std::push_heap(ends.begin(), ends.end(), later);
  }
  return r;
}

using Less = std::function<bool(const Buffer&, const Buffer&)>;

std::vector<uint32_t> sorted_order(const std::vector<Buffer>& bufs, const Less& less) {
  std::vector<uint32_t> order(bufs.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return less(bufs[a], bufs[b]); });
  return order;
}

int64_t duration(const Buffer& b) { return int64_t{b.end} - b.start + 1; }

/// Per buffer, the total size of buffers live at its busiest step (its
/// "conflict weight"): buffers in crowded regions are placed first.
/// Bytes live at each step (sizes rounded up to `alignment`), plus a final 0.
std::vector<int64_t> live_per_step(const std::vector<Buffer>& bufs, int64_t alignment) {
  int32_t steps = 0;
  for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
  std::vector<int64_t> live(static_cast<size_t>(steps) + 1, 0);
  for (const Buffer& b : bufs) {
    live[b.start] += align_up(b.size, alignment);
    live[b.end + 1] -= align_up(b.size, alignment);
  }
  for (int32_t s = 1; s <= steps; ++s) live[s] += live[s - 1];
  return live;
}

std::vector<int64_t> conflict_weight(const std::vector<Buffer>& bufs) {
  const std::vector<int64_t> live = live_per_step(bufs, 1);
  // Sparse table for range maxima: table[k][s] = max(live[s .. s + 2^k - 1]).
  std::vector<std::vector<int64_t>> table{live};
  for (size_t k = 1; (size_t{1} << k) <= live.size(); ++k) {
    const auto& prev = table[k - 1];
    size_t half = size_t{1} << (k - 1);
    std::vector<int64_t> cur(live.size() - (size_t{1} << k) + 1);
    for (size_t s = 0; s < cur.size(); ++s) cur[s] = std::max(prev[s], prev[s + half]);
    table.push_back(std::move(cur));
  }
  std::vector<int64_t> w(bufs.size(), 0);
  for (size_t i = 0; i < bufs.size(); ++i) {
    size_t lo = static_cast<size_t>(bufs[i].start), len = static_cast<size_t>(duration(bufs[i]));
    size_t k = static_cast<size_t>(std::bit_width(len) - 1);
    w[i] = std::max(table[k][lo], table[k][lo + len - (size_t{1} << k)]);
  }
  return w;
}

}  // namespace

OffsetResult assign_offsets(const std::vector<Buffer>& bufs, const OffsetOptions& opts) {
  if (opts.alignment <= 0 || (opts.alignment & (opts.alignment - 1)) != 0)
    throw Error("alignment must be a positive power of two, got " + std::to_string(opts.alignment));
  struct Candidate {
    const char* name;
    Less less;
  };
  std::vector<Candidate> cands = {
      {"size", [](const Buffer& a, const Buffer& b) {
         return a.size != b.size ? a.size > b.size : a.start < b.start;
       }},
  };
  int32_t steps = 1;
  for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
  if (opts.method == OffsetMethod::best_of) {
    cands.push_back({"duration", [](const Buffer& a, const Buffer& b) {
                       return duration(a) != duration(b) ? duration(a) > duration(b)
                                                         : a.size > b.size;
                     }});
    cands.push_back({"area", [](const Buffer& a, const Buffer& b) {
                       return a.size * duration(a) > b.size * duration(b);
                     }});
    cands.push_back({"start", [](const Buffer& a, const Buffer& b) {
                       return a.start != b.start ? a.start < b.start : a.size > b.size;
                     }});
  }
  std::vector<Candidate> improve;  // run only while the arena is not tight
  if (opts.method == OffsetMethod::best_of) {
    // Long-lived first: buffers live for at least a fraction of the steps
    // (accumulated gradients, inputs held across micro-batches), longest
    // first, then the rest by size. Placed last, they find no hole free for
    // their whole life and pile up on top.
    for (auto [name, pct] : {std::pair{"long10", 10}, {"long25", 25}, {"long50", 50}}) {
      const int64_t min_len = std::max<int64_t>(2, int64_t{steps} * pct / 100);
      improve.push_back({name, [min_len](const Buffer& a, const Buffer& b) {
                         const bool la = duration(a) >= min_len, lb = duration(b) >= min_len;
                         if (la != lb) return la;
                         if (la && duration(a) != duration(b)) return duration(a) > duration(b);
                         return a.size != b.size ? a.size > b.size : a.start < b.start;
                       }});
    }
  }
  // Orders other than the baseline give up past a work limit (deterministic:
  // it counts busy intervals examined), so that huge graphs keep near-linear
  // planning time; the start order is a sweep and never needs to.
  const bool capped = opts.method == OffsetMethod::best_of;
  const int64_t max_work =
      capped ? opts.work_per_buffer * static_cast<int64_t>(bufs.size()) + opts.work_base
             : std::numeric_limits<int64_t>::max();
  OffsetResult best;
  best.arena_bytes = -1;
  std::vector<std::pair<int64_t, std::vector<uint32_t>>> tried;  // (arena, order) per finished order
  auto consider = [&](const std::vector<uint32_t>& order, const char* name) {
    if (!opts.only.empty() && opts.only != name) return;
    std::optional<OffsetResult> r =
        !std::strcmp(name, "start") && !opts.first_fit
            ? place_by_start(bufs, order, opts.alignment)
            : place(bufs, order, opts.alignment, max_work, opts.first_fit);
    if (!r) {
      best.gave_up.push_back(name);
      return;
    }
    if (std::strcmp(name, "start") != 0 && !std::strchr(name, '~'))
      tried.push_back({r->arena_bytes, order});
    const bool better = best.arena_bytes < 0 || r->arena_bytes < best.arena_bytes;
    if (better) {
      r->gave_up = std::move(best.gave_up);
      best = std::move(*r);
      best.order = name;
    }
  };
  for (const Candidate& c : cands) consider(sorted_order(bufs, c.less), c.name);
  if (opts.method == OffsetMethod::best_of) {
    std::vector<int64_t> w = conflict_weight(bufs);
    std::vector<uint32_t> order(bufs.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return w[a] != w[b] ? w[a] > w[b] : bufs[a].size > bufs[b].size;
    });
    consider(order, "conflict");
    // The rest runs only while the arena is above the lower bound by more
    // than 1/200. Perturbed restarts (problems that are not huge): the
    // conflict and size keys times a deterministic factor in [3/4, 5/4), so
    // near-equal buffers trade places.
    const std::vector<int64_t> live = live_per_step(bufs, opts.alignment);
    const int64_t lb = *std::max_element(live.begin(), live.end());  // as the arena counts
    auto tight = [&] {
      if (best.arena_bytes < 0) return false;
      if (opts.fit_bytes && best.arena_bytes <= *opts.fit_bytes) return true;  // it fits
      return best.arena_bytes * 200 <= lb * 201;
    };
    for (const Candidate& c : improve)
      if (!tight()) consider(sorted_order(bufs, c.less), c.name);
    const int restarts = bufs.size() <= 20000 ? opts.restarts : 0;
    for (uint64_t seed = 1; seed <= static_cast<uint64_t>(restarts); ++seed) {
      if (tight()) break;
      std::vector<double> key(bufs.size());
      for (size_t i = 0; i < bufs.size(); ++i) {
        const uint64_t z = mix64((seed << 32) + i);
        const double noise = 0.75 + 0.5 * static_cast<double>(z >> 11) / 9007199254740992.0;
        key[i] = static_cast<double>(seed % 2 ? w[i] : bufs[i].size) * noise;
      }
      std::iota(order.begin(), order.end(), 0u);
      std::stable_sort(order.begin(), order.end(),
                       [&](uint32_t a, uint32_t b) { return key[a] > key[b]; });
      consider(order, seed % 2 ? "conflict~" : "size~");
    }
    // Squeaky wheel: from each of the best orders so far, repeatedly move the
    // buffers that ended above the lower bound to the front (keeping their
    // relative order) and place again.
    if (opts.only.empty() && bufs.size() <= 20000) {
      std::stable_sort(tried.begin(), tried.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      const size_t starts = std::min<size_t>(tried.size(), static_cast<size_t>(opts.squeaky_starts));
      for (size_t t = 0; t < starts && !tight(); ++t) {
        std::vector<uint32_t>& cur = tried[t].second;
        for (int it = 0; it < opts.squeaky_iterations && !tight(); ++it) {
          std::optional<OffsetResult> r =
              place(bufs, cur, opts.alignment, max_work, opts.first_fit);
          if (!r) break;
          const auto high = std::stable_partition(cur.begin(), cur.end(), [&](uint32_t id) {
            return r->offsets[id] + align_up(bufs[id].size, opts.alignment) > lb;
          });
          if (it > 0 && r->arena_bytes < best.arena_bytes) {
            r->gave_up = std::move(best.gave_up);
            best = std::move(*r);
            best.order = "squeaky";
          }
          if (high == cur.begin()) break;
        }
      }
    }
    if (opts.only.empty() && opts.search_nodes > 0)
      (void)lower_arena_by_search(bufs, best, lb,
                                  {.alignment = opts.alignment, .max_nodes = opts.search_nodes},
                                  opts.fit_bytes);
  }
  if (!opts.only.empty() && best.order.empty() && best.gave_up.empty())
    throw Error("unknown offset order '" + opts.only +
                "' (known: size, long10, long25, long50, duration, area, start, conflict)");
  if (best.arena_bytes < 0) best.arena_bytes = 0;
  return best;
}

}  // namespace memplan
