// The offset search (passes/offset_search.h) against a brute-force optimum
// on small problems, and on packings built to fill their lower bound
// exactly. Every placement it returns is checked here for overlaps and
// capacity, independently of the search.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "passes/assign_offsets.h"
#include "passes/lifetimes.h"
#include "passes/offset_search.h"
#include "test/offset_test_util.h"

namespace memplan {
namespace {

using offset_test::checked_arena;
using offset_test::kAlign;
using offset_test::lower_bound_of;

/// The optimum by brute force: in some order, placing each buffer at the
/// lowest offset free for its whole life reaches it (place an optimal
/// solution's buffers by offset: none ends above where it was).
int64_t brute_force_optimum(const std::vector<Buffer>& bufs) {
  std::vector<uint32_t> order(bufs.size());
  std::iota(order.begin(), order.end(), 0u);
  int64_t best = INT64_MAX;
  do {
    std::vector<int64_t> off(bufs.size(), -1);
    int64_t arena = 0;
    for (uint32_t id : order) {
      const int64_t size = align_up(bufs[id].size, kAlign);
      int64_t at = 0;
      for (bool moved = true; moved;) {  // lowest offset clear of every placed overlap
        moved = false;
        for (uint32_t o : order) {
          if (off[o] < 0 || bufs[o].end < bufs[id].start || bufs[id].end < bufs[o].start) continue;
          const int64_t so = align_up(bufs[o].size, kAlign);
          if (at < off[o] + so && off[o] < at + size) {
            at = off[o] + so;
            moved = true;
          }
        }
      }
      off[id] = at;
      arena = std::max(arena, at + size);
      if (arena >= best) break;
    }
    best = std::min(best, arena);
  } while (std::next_permutation(order.begin(), order.end()));
  return best;
}

std::vector<Buffer> random_problem(std::mt19937& rng, int n, int steps) {
  std::vector<Buffer> bufs;
  for (int i = 0; i < n; ++i) {
    const int32_t a = static_cast<int32_t>(rng() % steps);
    const int32_t b = std::min<int32_t>(steps - 1, a + static_cast<int32_t>(rng() % 3));
    bufs.push_back({kAlign * (1 + static_cast<int64_t>(rng() % 6)), a, b});
  }
  return bufs;
}

// On 300 random 7-buffer problems: at the brute-force optimum the search
// finds a valid placement no higher, and one alignment unit below it finds
// none and says the tree is exhausted. Small random problems always pack at
// their lower bound (60,000 random 9-buffer ones did too, checked while
// writing this test), so the optimum is the lower bound here: this checks
// that pruning and dominance never lose a lower-bound packing, and the
// brute force checks that claim.
TEST(OffsetSearch, FindsTheOptimumOfSmallProblems) {
  std::mt19937 rng(7);
  for (int k = 0; k < 300; ++k) {
    const std::vector<Buffer> bufs = random_problem(rng, 7, 4);
    const int64_t opt = brute_force_optimum(bufs);
    ASSERT_EQ(opt, lower_bound_of(bufs)) << "problem " << k;
    OffsetSearchResult at = search_offsets(bufs, opt, {.alignment = kAlign});
    ASSERT_TRUE(at.offsets) << "problem " << k << ": no placement at the optimum " << opt;
    const int64_t arena = checked_arena(bufs, *at.offsets);
    ASSERT_GE(arena, 0) << "problem " << k << ": overlapping placement";
    EXPECT_LE(arena, opt) << "problem " << k;
    OffsetSearchResult below = search_offsets(bufs, opt - kAlign, {.alignment = kAlign});
    EXPECT_FALSE(below.offsets) << "problem " << k << ": placement below the optimum";
    EXPECT_TRUE(below.exhausted) << "problem " << k;
  }
}

/// A packing that fills `height` units x `steps` steps exactly: rectangles
/// cut recursively in time or in offset, one buffer each.
void perfect(std::mt19937& rng, int32_t t0, int32_t t1, int64_t h, int depth,
             std::vector<Buffer>& out) {
  const bool can_time = t1 > t0, can_height = h > 1;
  if (depth == 0 || (!can_time && !can_height) || rng() % 8 == 0) {
    out.push_back({h * kAlign, t0, t1});
    return;
  }
  if (can_time && (!can_height || rng() % 2 == 0)) {
    const int32_t cut = t0 + static_cast<int32_t>(rng() % static_cast<uint32_t>(t1 - t0));
    perfect(rng, t0, cut, h, depth - 1, out);
    perfect(rng, cut + 1, t1, h, depth - 1, out);
  } else {
    const int64_t cut = 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(h - 1));
    perfect(rng, t0, t1, cut, depth - 1, out);
    perfect(rng, t0, t1, h - cut, depth - 1, out);
  }
}

/// perfect() over `steps` steps and `height` units, in shuffled order.
std::vector<Buffer> perfect_problem(std::mt19937& rng, int32_t steps, int64_t height, int depth) {
  std::vector<Buffer> bufs;
  perfect(rng, 0, steps - 1, height, depth, bufs);
  std::shuffle(bufs.begin(), bufs.end(), rng);
  return bufs;
}

// Problems built to fill their lower bound exactly (10-170 buffers): the
// search reaches the lower bound within its node budget on most, and
// best-of's best-fit orders miss it on some.
TEST(OffsetSearch, ReachesTheLowerBoundOfPerfectPackings) {
  std::mt19937 rng(11);
  int best_of_misses = 0, problems = 0, found = 0;
  for (int k = 0; k < 60; ++k) {
    const std::vector<Buffer> bufs = perfect_problem(rng, 31, 24, 9);
    const int64_t lb = lower_bound_of(bufs);
    ASSERT_EQ(lb, 24 * kAlign);
    ++problems;
    if (assign_offsets(bufs, {.alignment = kAlign}).arena_bytes > lb) ++best_of_misses;
    OffsetSearchResult r = search_offsets(bufs, lb, {.alignment = kAlign, .max_nodes = 200000});
    if (!r.offsets) continue;
    ++found;
    EXPECT_EQ(checked_arena(bufs, *r.offsets), lb) << "problem " << k;
  }
  // Deterministic (seeded, one thread): 56 of 60 found within 200k nodes
  // (72-165 buffers in the 4 missed), best-of at the bound on 55.
  EXPECT_GE(found, 56) << "of " << problems;
  EXPECT_GE(best_of_misses, 5) << "of " << problems;
}

// OffsetOptions::search_nodes (lower_arena_by_search after best-of): the
// result is a valid placement, never above the best-of arena, and on perfect
// packings it lowers some of best-of's misses to the lower bound.
TEST(OffsetSearch, SearchNodesLowerBestOfToTheLowerBound) {
  std::mt19937 rng(12);
  int lowered = 0, at_lb = 0, plain_at_lb = 0;
  for (int k = 0; k < 40; ++k) {
    const std::vector<Buffer> bufs = perfect_problem(rng, 41, 32, 10);
    const int64_t lb = lower_bound_of(bufs);
    const OffsetResult plain = assign_offsets(bufs, {.alignment = kAlign});
    const OffsetResult searched =
        assign_offsets(bufs, {.alignment = kAlign, .search_nodes = 200000});
    ASSERT_EQ(checked_arena(bufs, searched.offsets), searched.arena_bytes) << "problem " << k;
    EXPECT_LE(searched.arena_bytes, plain.arena_bytes) << "problem " << k;
    if (searched.arena_bytes == lb) ++at_lb;
    if (plain.arena_bytes == lb) ++plain_at_lb;
    if (searched.arena_bytes < plain.arena_bytes) {
      ++lowered;
      EXPECT_EQ(searched.order, "search");
    }
  }
  // Deterministic: best-of alone at the bound on 36 of 40, with the search
  // on 38 (3 lowered, 2 of them to the bound).
  EXPECT_GE(lowered, 3);
  EXPECT_GE(at_lb, plain_at_lb + 2);
}

// Node limits are honoured and reported; a search that runs out of nodes
// neither returns offsets nor claims to have exhausted the tree.
TEST(OffsetSearch, StopsAtTheNodeLimit) {
  std::mt19937 rng(13);
  const std::vector<Buffer> bufs = perfect_problem(rng, 201, 64, 14);
  const int64_t lb = lower_bound_of(bufs);
  OffsetSearchResult r = search_offsets(bufs, lb, {.alignment = kAlign, .max_nodes = 10});
  EXPECT_FALSE(r.offsets);
  EXPECT_FALSE(r.exhausted);
  EXPECT_LE(r.nodes, 11);
  // Zero-size buffers only: offset 0, nothing to search.
  OffsetSearchResult z = search_offsets({{0, 0, 3}, {0, 1, 2}}, 0, {.alignment = kAlign});
  ASSERT_TRUE(z.offsets);
  EXPECT_EQ(*z.offsets, (std::vector<int64_t>{0, 0}));
}

}  // namespace
}  // namespace memplan
