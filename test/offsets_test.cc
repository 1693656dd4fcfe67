// assign_offsets against a naive best-fit written here from the header's
// contract: buffers in a given order, each into the smallest gap between the
// already-placed buffers that overlap it in time (lowest offset among equal
// gaps), else above all of them. The pass answers its queries with a segment
// tree of merged unions and the start order with a sweep; both must give the
// naive placement exactly.
#include <gtest/gtest.h>

#include <functional>

#include <algorithm>
#include <numeric>
#include <random>

#include "passes/assign_offsets.h"
#include "passes/lifetimes.h"
#include "test/offset_test_util.h"

namespace memplan {
namespace {

std::vector<int64_t> naive_best_fit(const std::vector<Buffer>& bufs,
                                    const std::vector<uint32_t>& order, int64_t align,
                                    int64_t* arena, bool first_fit = false) {
  std::vector<int64_t> off(bufs.size(), -1);
  *arena = offset_test::naive_fit(bufs, {}, order, off, align, first_fit);
  return off;
}

std::vector<uint32_t> order_by(const std::vector<Buffer>& bufs,
                               const std::function<bool(const Buffer&, const Buffer&)>& less) {
  std::vector<uint32_t> order(bufs.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return less(bufs[a], bufs[b]); });
  return order;
}

/// Random buffers shaped like a training step: short temporaries, plus
/// long-lived "saved activations" nested around a turnaround step, with a few
/// repeated sizes so that ties and gaps of exactly the right size occur.
std::vector<Buffer> random_buffers(uint32_t seed, int n) {
  std::mt19937 rng(seed);
  const int32_t steps = n;
  std::vector<Buffer> bufs;
  for (int i = 0; i < n; ++i) {
    Buffer b;
    b.size = rng() % 10 == 0 ? 0 : (rng() % 3 == 0 ? 4096 : 1 + static_cast<int64_t>(rng() % 20000));
    b.start = static_cast<int32_t>(rng() % steps);
    if (rng() % 3 == 0)  // saved until the mirrored backward step
      b.end = std::max(b.start, steps - 1 - b.start);
    else
      b.end = std::min(steps - 1, b.start + static_cast<int32_t>(rng() % 6));
    bufs.push_back(b);
  }
  return bufs;
}

void expect_disjoint(const std::vector<Buffer>& bufs, const OffsetResult& r, int64_t align) {
  for (size_t i = 0; i < bufs.size(); ++i) {
    ASSERT_EQ(r.offsets[i] % align, 0);
    ASSERT_LE(r.offsets[i] + align_up(bufs[i].size, align), r.arena_bytes);
    for (size_t j = 0; j < i; ++j) {
      const Buffer &a = bufs[i], &b = bufs[j];
      if (a.size == 0 || b.size == 0 || a.end < b.start || b.end < a.start) continue;
      const bool apart = r.offsets[i] + align_up(a.size, align) <= r.offsets[j] ||
                         r.offsets[j] + align_up(b.size, align) <= r.offsets[i];
      ASSERT_TRUE(apart) << "buffers " << i << " and " << j << " overlap";
    }
  }
}

// OffsetOptions::first_fit: each order places every buffer into the lowest
// hole that fits, as the naive placement does with first_fit; the start
// order too (it then runs as per-buffer queries, not the sweep).
TEST(OffsetsTest, FirstFitMatchesNaiveFirstFit) {
  auto by_size = [](const Buffer& a, const Buffer& b) {
    return a.size != b.size ? a.size > b.size : a.start < b.start;
  };
  auto by_start = [](const Buffer& a, const Buffer& b) {
    return a.start != b.start ? a.start < b.start : a.size > b.size;
  };
  int differs = 0;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    std::vector<Buffer> bufs = random_buffers(seed, 40 + static_cast<int>(seed * 13 % 300));
    for (auto [name, less] : {std::pair<const char*, std::function<bool(const Buffer&, const Buffer&)>>{
                                  "size", by_size},
                              {"start", by_start}}) {
      int64_t arena = 0, best_arena = 0;
      std::vector<int64_t> want = naive_best_fit(bufs, order_by(bufs, less), 256, &arena, true);
      (void)naive_best_fit(bufs, order_by(bufs, less), 256, &best_arena);
      OffsetResult got = assign_offsets(bufs, {.only = name, .first_fit = true});
      EXPECT_EQ(got.offsets, want) << "seed " << seed << " order " << name;
      EXPECT_EQ(got.arena_bytes, arena) << "seed " << seed << " order " << name;
      expect_disjoint(bufs, got, 256);
      differs += arena != best_arena;
    }
  }
  EXPECT_GE(differs, 10) << "first fit and best fit should differ on some of these";
}

TEST(OffsetsTest, EveryOrderMatchesNaiveBestFit) {
  struct Named {
    const char* name;
    std::function<bool(const Buffer&, const Buffer&)> less;
  };
  auto by_size = [](const Buffer& a, const Buffer& b) {
    return a.size != b.size ? a.size > b.size : a.start < b.start;
  };
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    std::vector<Buffer> bufs = random_buffers(seed, 40 + static_cast<int>(seed * 13 % 300));
    int32_t steps = 1;
    for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
    auto long_first = [&](int pct) {
      const int64_t min_len = std::max<int64_t>(2, int64_t{steps} * pct / 100);
      return [=](const Buffer& a, const Buffer& b) {
        const int64_t da = a.end - a.start + 1, db = b.end - b.start + 1;
        if ((da >= min_len) != (db >= min_len)) return da >= min_len;
        if (da >= min_len && da != db) return da > db;
        return by_size(a, b);
      };
    };
    // The pass's orders as its header describes them (ties as documented there).
    const Named orders[] = {
        {"size", by_size},
        {"long10", long_first(10)},
        {"long50", long_first(50)},
        {"start", [](const Buffer& a, const Buffer& b) {
           return a.start != b.start ? a.start < b.start : a.size > b.size;
         }},
    };
    for (int64_t align : {1, 256}) {
      for (const Named& o : orders) {
        int64_t arena = 0;
        std::vector<int64_t> want = naive_best_fit(bufs, order_by(bufs, o.less), align, &arena);
        OffsetResult got = assign_offsets(bufs, {.alignment = align, .only = o.name});
        ASSERT_EQ(got.order, o.name);
        EXPECT_EQ(got.offsets, want) << "seed " << seed << " order " << o.name;
        EXPECT_EQ(got.arena_bytes, arena) << "seed " << seed << " order " << o.name;
        expect_disjoint(bufs, got, align);
      }
      OffsetResult all = assign_offsets(bufs, {.alignment = align});
      OffsetResult size_only = assign_offsets(bufs, {.method = OffsetMethod::greedy_size,
                                                     .alignment = align});
      EXPECT_LE(all.arena_bytes, size_only.arena_bytes);
      EXPECT_TRUE(all.gave_up.empty());
      expect_disjoint(bufs, all, align);
    }
  }
}

TEST(OffsetsTest, SqueakyRoundsOnlyImproveAndSometimesDo) {
  int improved = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::vector<Buffer> bufs = random_buffers(seed, 100 + static_cast<int>(seed * 37 % 400));
    OffsetResult plain = assign_offsets(bufs, {.squeaky_iterations = 0});
    OffsetResult squeaky = assign_offsets(bufs, {});
    expect_disjoint(bufs, squeaky, 256);
    EXPECT_LE(squeaky.arena_bytes, plain.arena_bytes) << "seed " << seed;
    if (squeaky.arena_bytes < plain.arena_bytes) {
      ++improved;
      EXPECT_EQ(squeaky.order, "squeaky");
    }
  }
  EXPECT_GT(improved, 0) << "the squeaky rounds never found a smaller arena";
}

// fit_bytes (feasibility probes) stops improving once the arena fits: the
// verdict is the full run's, a miss is the full run's arena, and a fit stops
// early on some instance (else the option would do nothing).
TEST(OffsetsTest, FitBytesKeepsTheVerdictAndStopsEarly) {
  int stopped_early = 0, checked = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::vector<Buffer> bufs = random_buffers(seed, 100 + static_cast<int>(seed * 37 % 400));
    const OffsetResult full = assign_offsets(bufs, {});
    const OffsetResult first = assign_offsets(bufs, {.restarts = 0, .squeaky_iterations = 0});
    // Targets between the full result and the first orders' result (where the
    // improvement steps decide), and at both ends.
    for (int64_t fit : {full.arena_bytes - 1, full.arena_bytes, (full.arena_bytes + first.arena_bytes) / 2,
                        first.arena_bytes}) {
      const OffsetResult probe = assign_offsets(bufs, {.fit_bytes = fit});
      expect_disjoint(bufs, probe, 256);
      ++checked;
      EXPECT_EQ(probe.arena_bytes <= fit, full.arena_bytes <= fit) << "seed " << seed << " fit " << fit;
      if (full.arena_bytes > fit) {
        EXPECT_EQ(probe.arena_bytes, full.arena_bytes) << "seed " << seed;
      }
      EXPECT_GE(probe.arena_bytes, full.arena_bytes) << "seed " << seed;
      stopped_early += probe.arena_bytes > full.arena_bytes;
    }
  }
  EXPECT_GT(checked, 0);
  EXPECT_GT(stopped_early, 0) << "fit_bytes never stopped the improvement early";
}

TEST(OffsetsTest, OrdersGiveUpAtTheWorkLimitButStartAlwaysFinishes) {
  // Nested long-lived buffers (a deep training step's saved activations) and a
  // temporary between each pair: every query meets many busy intervals.
  std::vector<Buffer> bufs;
  const int32_t depth = 400;
  for (int32_t i = 0; i < depth; ++i) {
    bufs.push_back({1000 + i % 7, i, 2 * depth - i});
    bufs.push_back({300, i, i});
  }
  OffsetResult capped = assign_offsets(bufs, {.alignment = 64, .work_per_buffer = 1,
                                              .work_base = 0, .restarts = 0});
  EXPECT_EQ(capped.order, "start");
  // size, duration, area, conflict (start is within 0.5% of the lower bound,
  // so the long-lived-first orders do not run).
  EXPECT_EQ(capped.gave_up.size(), 4u);
  expect_disjoint(bufs, capped, 64);
  OffsetResult full = assign_offsets(bufs, {.alignment = 64});
  EXPECT_TRUE(full.gave_up.empty());
  EXPECT_LE(full.arena_bytes, capped.arena_bytes);
  // greedy-size is the baseline and never gives up.
  OffsetResult size = assign_offsets(bufs, {.method = OffsetMethod::greedy_size, .alignment = 64,
                                            .work_per_buffer = 1, .work_base = 0});
  EXPECT_EQ(size.order, "size");
  expect_disjoint(bufs, size, 64);
}

TEST(OffsetsTest, UnknownOrderIsAnError) {
  EXPECT_THROW(assign_offsets({{64, 0, 1}}, {.only = "biggest"}), Error);
}

}  // namespace
}  // namespace memplan
