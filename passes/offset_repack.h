// Window repacking: lowers a valid arena placement by re-placing, one time
// window at a time, the buffers that live inside the window, around all the
// others left where they are (a large-neighbourhood search over offsets).
// Runs on finished plans (plan_memory.h, refine_plan_offsets) after first
// fit and before the offset search.
//
// Why: the arenas left fragmented at the smallest fits are micro-batched
// training steps of 10-35k buffers with a peak in every micro-batch. Best
// and first fit place a whole order at once and the offset search
// backtracks only over its last choices, but the buffers of a short stretch
// around a peak, re-placed with the rest fixed, usually fit lower.
//
//  1. Cut points: steps where the bytes of the short buffers (live for at
//     most a tenth of the steps) crossing the step boundary are the fewest
//     within 20 steps either side (micro-batch boundaries, the turn from
//     forward to backward). Windows run from cut to cut.
//  2. Targets: cap = arena - (arena - lower bound) / d, d = 8 first; each
//     success restarts from the new arena, a failure doubles d (up to 64).
//  3. For a target, while some buffer violates it (ends above it, or
//     overlaps a pinned buffer), take the first such buffer h:
//     - move it alone into the lowest hole over its whole life below the
//       target, if there is one;
//     - else, if it spans more than two cut ranges (first pass only; a
//       second pass of the same target leaves this out), pin it: the
//       highest offset below the target clear of the other pinned buffers;
//       the buffers it then overlaps must move;
//     - else solve a window: the cut range around h's life, grown by g / 2
//       ranges before and (g + 1) / 2 after for g = 0 .. 5 (skipping
//       windows that grew by less than a quarter), with violating buffers
//       that cross it moved or pinned as above or else covered. Its inside
//       buffers (not pinned) are re-placed around the rest by best fit and
//       first fit under five orders (size, duration, area, start, current
//       offset), each with squeaky-wheel rounds (the buffers that ended
//       above the target go first next time); the first placement below
//       the target is kept, which leaves one violating buffer fewer.
//  4. Stops at arena <= 1.005 x lower bound, once d passes 64, or when
//     `max_work` (buffer placements, a target at most a quarter of it) is
//     spent. The result is checked to be a valid placement before it is
//     kept.
// Cost: on the corpus's smallest-fit plans (14-34k buffers) a few seconds
// to about 15 s at the default work; with first fit before it the whole
// refinement takes 7.5-26.5 s there (docs/benchmarks.md). Deterministic: no clocks, no
// pointers, no threads, no randomness.
#pragma once

#include <cstdint>
#include <vector>

#include "passes/assign_offsets.h"

namespace memplan {

struct RepackOptions {
  int64_t alignment = 256;
  /// Placements of a window's buffers tried per window: 10 starts (five
  /// orders, best and first fit), each with attempts / 10 squeaky rounds.
  int32_t attempts_per_window = 100;
  /// Buffer placements over the whole repack (scans for holes count one
  /// per 64 buffers scanned); one target may spend a quarter of it.
  int64_t max_work = 4'000'000;
};

/// Lowers `best` (a valid placement of `buffers`; the busiest step holds
/// `lower_bound` bytes with sizes aligned). Returns whether it changed (its
/// order then reads "repack").
bool repack_windows(const std::vector<Buffer>& buffers, OffsetResult& best, int64_t lower_bound,
                    const RepackOptions& opts = {});

}  // namespace memplan
