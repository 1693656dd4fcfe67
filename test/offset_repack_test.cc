// Window repacking (passes/offset_repack.h) and its placement primitive
// place_around (passes/assign_offsets.h). Every placement is checked here
// for overlaps independently of the code under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "passes/assign_offsets.h"
#include "passes/lifetimes.h"
#include "passes/offset_repack.h"
#include "test/offset_test_util.h"

namespace memplan {
namespace {

using offset_test::checked_arena;
using offset_test::kAlign;
using offset_test::lower_bound_of;

/// A micro-batched training step in miniature: per micro-batch a forward
/// pass saving activations of random sizes (the first micro-batch all of
/// them, later ones about half: the rest are recomputed, a short buffer
/// before their backward), temporaries of random short lifetimes, and a
/// backward pass freeing the activations in reverse with short gradient
/// temporaries; in the first micro-batch's backward the gradient
/// accumulators are born, live to the end.
std::vector<Buffer> training_like(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int k = pick(2, 5), layers = pick(8, 20);
  std::vector<int64_t> act(static_cast<size_t>(layers)), acc(static_cast<size_t>(layers));
  for (int l = 0; l < layers; ++l) {
    act[l] = int64_t{pick(1, 48)} * 16384 + pick(0, 7) * 1024;
    acc[l] = int64_t{pick(1, 24)} * 16384;
  }
  std::vector<Buffer> bufs;
  int32_t t = 0;
  std::vector<size_t> acc_id;
  for (int mb = 0; mb < k; ++mb) {
    std::vector<size_t> saved(static_cast<size_t>(layers), SIZE_MAX);
    for (int l = 0; l < layers; ++l, t += 2) {
      if (mb == 0 || pick(0, 1) == 0) {
        bufs.push_back({act[l], t, t});  // saved until its backward (set below)
        saved[l] = bufs.size() - 1;
      } else {
        bufs.push_back({act[l], t, t + 1});
      }
      if (pick(0, 1) == 0) bufs.push_back({act[l] / pick(2, 4) + 256, t, t + pick(1, 5)});
    }
    for (int l = layers - 1; l >= 0; --l, t += 2) {
      if (saved[l] != SIZE_MAX)
        bufs[saved[l]].end = t;
      else
        bufs.push_back({act[l], t - 1, t});  // recomputed just before
      bufs.push_back({act[l], t, t + 1});  // the gradient flowing back
      if (mb == 0) {
        bufs.push_back({acc[l], t + 1, 0});  // accumulator, end set below
        acc_id.push_back(bufs.size() - 1);
      } else {
        bufs.push_back({acc[l], t, t + 1});  // this micro-batch's weight gradient
      }
    }
  }
  for (size_t id : acc_id) bufs[id].end = t + 2;
  return bufs;
}

// place_around against a naive best/first fit: the same offsets, with some
// buffers fixed at random valid offsets first.
TEST(OffsetRepack, PlaceAroundMatchesNaiveFit) {
  int differ_from_plain = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::vector<Buffer> bufs = training_like(seed);
    const OffsetResult base = assign_offsets(bufs, {});
    std::mt19937 rng(seed);
    std::vector<uint32_t> fixed, order;
    for (uint32_t i = 0; i < bufs.size(); ++i) (rng() % 3 == 0 ? fixed : order).push_back(i);
    std::shuffle(order.begin(), order.end(), rng);
    for (bool first_fit : {false, true}) {
      std::vector<int64_t> off = base.offsets;
      ASSERT_TRUE(place_around(bufs, fixed, order, off, INT64_MAX, kAlign, first_fit));
      std::vector<int64_t> naive = base.offsets;
      offset_test::naive_fit(bufs, fixed, order, naive, kAlign, first_fit);
      EXPECT_EQ(off, naive) << "seed " << seed << " first fit " << first_fit;
      EXPECT_GE(checked_arena(bufs, off), 0) << "seed " << seed;
      differ_from_plain += off != base.offsets;
    }
    // A capacity below what the order reaches: false, without `above`; with
    // it, every buffer placed and the ones ending above listed.
    std::vector<int64_t> off = base.offsets;
    const int64_t cap = lower_bound_of(bufs) / 2;
    EXPECT_FALSE(place_around(bufs, fixed, order, off, cap, kAlign, false));
    std::vector<uint32_t> above;
    off = base.offsets;
    EXPECT_FALSE(place_around(bufs, fixed, order, off, cap, kAlign, false, &above));
    ASSERT_FALSE(above.empty());
    for (uint32_t id : order) {
      const bool high = off[id] + align_up(bufs[id].size, kAlign) > cap;
      EXPECT_EQ(high, std::find(above.begin(), above.end(), id) != above.end()) << id;
    }
    EXPECT_GE(checked_arena(bufs, off), 0) << "seed " << seed;
  }
  EXPECT_GE(differ_from_plain, 40);  // the re-placement really moves buffers
}

// On the miniature training steps best-of leaves fragmented, repacking
// lowers the arena, never raises it, and keeps every placement valid (as
// checked here); the same input gives the same offsets.
TEST(OffsetRepack, LowersFragmentedTrainingLikeArenas) {
  int loose = 0, lowered = 0, tight_after = 0;
  double before_sum = 0, after_sum = 0;
  for (uint32_t seed = 1; seed <= 120; ++seed) {
    const std::vector<Buffer> bufs = training_like(seed);
    const int64_t lb = lower_bound_of(bufs);
    const OffsetResult base = assign_offsets(bufs, {});
    ASSERT_EQ(checked_arena(bufs, base.offsets), base.arena_bytes);
    OffsetResult r = base;
    const bool changed = repack_windows(bufs, r, lb);
    if (base.arena_bytes * 200 <= lb * 201) {
      EXPECT_FALSE(changed) << "seed " << seed << ": already within 0.5%";
      continue;
    }
    ++loose;
    before_sum += static_cast<double>(base.arena_bytes) / static_cast<double>(lb);
    if (!changed) {
      EXPECT_EQ(r.offsets, base.offsets);
      after_sum += static_cast<double>(base.arena_bytes) / static_cast<double>(lb);
      continue;
    }
    ASSERT_EQ(checked_arena(bufs, r.offsets), r.arena_bytes) << "seed " << seed;
    EXPECT_LT(r.arena_bytes, base.arena_bytes) << "seed " << seed;
    EXPECT_GE(r.arena_bytes, lb);
    EXPECT_EQ(r.order, "repack");
    ++lowered;
    tight_after += r.arena_bytes * 200 <= lb * 201;
    after_sum += static_cast<double>(r.arena_bytes) / static_cast<double>(lb);
    if (lowered <= 5) {
      OffsetResult again = base;
      ASSERT_TRUE(repack_windows(bufs, again, lb));
      EXPECT_EQ(again.offsets, r.offsets) << "seed " << seed << ": not deterministic";
    }
  }
  RecordProperty("loose", loose);
  RecordProperty("lowered", lowered);
  std::printf("best-of loose on %d of 120; repack lowers %d (%d to within 0.5%%); mean a/LB %.4f -> %.4f\n",
              loose, lowered, tight_after, before_sum / std::max(loose, 1),
              after_sum / std::max(loose, 1));
  // Deterministic: best-of leaves 26 of the 120 above 0.5%; repacking lowers
  // 24, 21 of them to within 0.5%, mean a/LB 1.0170 -> 1.0050.
  EXPECT_GE(loose, 20);
  EXPECT_GE(lowered, 22);
  EXPECT_GE(tight_after, 18);
  EXPECT_LE(after_sum / std::max(loose, 1), 1.007);
}

// The work limit holds: with no work allowed nothing changes.
TEST(OffsetRepack, NoWorkNoChange) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    const std::vector<Buffer> bufs = training_like(seed);
    OffsetResult r = assign_offsets(bufs, {});
    const OffsetResult base = r;
    EXPECT_FALSE(repack_windows(bufs, r, lower_bound_of(bufs), {.max_work = 0}));
    EXPECT_EQ(r.offsets, base.offsets);
  }
}

}  // namespace
}  // namespace memplan
