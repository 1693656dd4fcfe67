#include "passes/assign_offsets.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <limits>
#include <numeric>

#include "passes/lifetimes.h"

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

/// Placed buffers indexed by coarse time buckets, so that finding the buffers
/// that overlap an interval does not scan all of them.
class TimeIndex {
 public:
  TimeIndex(int32_t steps, size_t n) : width_(std::max<int32_t>(1, steps / 512 + 1)), stamp_(n, 0) {
    buckets_.resize(static_cast<size_t>(steps / width_ + 2));
  }
  void add(uint32_t id, int32_t start, int32_t end) {
    for (int32_t b = start / width_; b <= end / width_; ++b) buckets_[b].push_back(id);
  }
  /// Calls f(id) once for each placed buffer whose bucket range meets [start, end].
  template <class F>
  void for_each(int32_t start, int32_t end, F&& f) {
    ++epoch_;
    for (int32_t b = start / width_; b <= end / width_; ++b)
      for (uint32_t id : buckets_[b])
        if (stamp_[id] != epoch_) {
          stamp_[id] = epoch_;
          f(id);
        }
  }

 private:
  int32_t width_;
  std::vector<std::vector<uint32_t>> buckets_;
  std::vector<uint32_t> stamp_;
  uint32_t epoch_ = 0;
};

/// Best-fit placement of buffers in the given order.
OffsetResult place(const std::vector<Buffer>& bufs, const std::vector<uint32_t>& order,
                   int64_t alignment) {
  int32_t steps = 0;
  for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
  OffsetResult r;
  r.offsets.assign(bufs.size(), -1);
  TimeIndex index(steps, bufs.size());
  std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of overlapping placed buffers
  for (uint32_t id : order) {
    const Buffer& b = bufs[id];
    int64_t size = align_up(b.size, alignment);
    busy.clear();
    index.for_each(b.start, b.end, [&](uint32_t o) {
      const Buffer& p = bufs[o];
      if (p.start <= b.end && b.start <= p.end)
        busy.emplace_back(r.offsets[o], r.offsets[o] + align_up(p.size, alignment));
    });
    std::sort(busy.begin(), busy.end());
    int64_t best = -1, best_gap = std::numeric_limits<int64_t>::max(), top = 0;
    for (auto [lo, hi] : busy) {
      int64_t gap = lo - top;
      if (gap >= size && gap < best_gap) {
        best = top;
        best_gap = gap;
      }
      top = std::max(top, hi);
    }
    if (best < 0) best = top;
    r.offsets[id] = best;
    r.arena_bytes = std::max(r.arena_bytes, best + size);
    index.add(id, b.start, b.end);
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
std::vector<int64_t> conflict_weight(const std::vector<Buffer>& bufs) {
  int32_t steps = 0;
  for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
  std::vector<int64_t> live(static_cast<size_t>(steps) + 1, 0);
  for (const Buffer& b : bufs) {
    live[b.start] += b.size;
    live[b.end + 1] -= b.size;
  }
  for (int32_t s = 1; s <= steps; ++s) live[s] += live[s - 1];
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
  OffsetResult best;
  best.arena_bytes = -1;
  auto consider = [&](const std::vector<uint32_t>& order, const char* name) {
    OffsetResult r = place(bufs, order, opts.alignment);
    if (best.arena_bytes < 0 || r.arena_bytes < best.arena_bytes) {
      best = std::move(r);
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
  }
  if (best.arena_bytes < 0) best.arena_bytes = 0;
  return best;
}

}  // namespace memplan
