// Offset search: does a placement of the buffers fit a given arena capacity?
// A depth-first search over *canonical* placements, after MiniMalloc
// (Moffitt, ASPLOS 2023); used after best-of (assign_offsets.h,
// OffsetOptions::search_nodes) and on finished plans (plan_memory.h,
// refine_plan_offsets) to bring fragmented arenas closer to the lower bound.
//
// A placement is canonical when buffers are placed in non-decreasing order
// of offset and each goes at the lowest offset free of the placed buffers
// it overlaps in time (its "minimum offset", the highest top among them):
// pushing every buffer of any placement down as far as it goes gives one.
//  1. Time is cut into sections (maximal step ranges where no buffer starts
//     or ends). Per section a segment tree keeps the floor (top of the
//     highest placed buffer there) and the total size of the unplaced
//     buffers there; a buffer's minimum offset is the highest floor over its
//     sections.
//  2. At each node the candidates are the unplaced buffers whose minimum
//     offset is at least that of the last placed one (ties broken by a
//     static priority order) and below the lowest top any unplaced buffer
//     could reach (placing a buffer higher would leave a hole that buffer
//     fills without moving anything: a dominated placement). Candidates sit
//     in ordered sets by a lower bound of their minimum offset, refreshed
//     from the tree when they come up.
//  3. A node is pruned when some section cannot hold its unplaced buffers
//     above max(current offset, its floor) within the capacity.
//  4. When no unplaced buffer crosses some section boundary any more, the
//     ranges between such boundaries are solved one after the other as
//     independent partitions.
//  5. Candidates are tried lowest first; on a dead end the search backtracks
//     (every change is undone from logs). It stops at the first complete
//     placement, when the tree is exhausted (nothing fits: proved), or after
//     `max_nodes` placements.
// Five priority orders (largest section total over the buffer's life,
// length, area, size, in different precedence) are tried in turn with node
// limits doubling each round, since one that stalls is often fast under
// another.
//
// Cost: tens of microseconds per placement on training graphs of 10-30k
// buffers (ordered-set updates dominate), so a descent without backtracking
// takes about a second there. Exhaustive proofs are only practical on small
// problems. Deterministic: no clocks, no pointers, no threads.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "passes/assign_offsets.h"

namespace memplan {

struct OffsetSearchOptions {
  int64_t alignment = 256;
  /// Total placements (search nodes) over every round, all orders together.
  int64_t max_nodes = 200000;
};

struct OffsetSearchResult {
  std::optional<std::vector<int64_t>> offsets;  // one per buffer, when a placement fits
  int64_t nodes = 0;                            // placements made, backtracked ones included
  bool exhausted = false;  // proved that no placement fits (the whole tree was searched)
};

/// Looks for offsets (multiples of `alignment`) that place every buffer
/// below `capacity` bytes with no two buffers live at a common step
/// overlapping. Sizes are rounded up to the alignment. Zero-size buffers get
/// offset 0.
OffsetSearchResult search_offsets(const std::vector<Buffer>& buffers, int64_t capacity,
                                  const OffsetSearchOptions& opts = {});

/// Lowers `best` (offsets and arena of a valid placement of `buffers`, whose
/// most bytes live at one step, sizes aligned, are `lower_bound`) with
/// searches at falling capacities: first just below its arena, then halfway
/// between the best arena found and the highest capacity found (or given up)
/// out of reach; each try may spend 5 x buffers placements (one descent per
/// priority order) or a quarter of the nodes left, whichever is more, all
/// within opts.max_nodes. Stops once the arena is within 0.5% of
/// the lower bound, or at most `fit_bytes`. Returns whether `best` changed
/// (its order then reads "search").
bool lower_arena_by_search(const std::vector<Buffer>& buffers, OffsetResult& best,
                           int64_t lower_bound, const OffsetSearchOptions& opts,
                           std::optional<int64_t> fit_bytes = std::nullopt);

}  // namespace memplan
