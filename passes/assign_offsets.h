// Pure offset assignment: place buffers with known sizes and live intervals
// into one arena so that no two buffers live at the same step overlap.
//
// Methods:
//  - greedy-size (TFLite's baseline): buffers by size descending; each goes
//    into the smallest gap between already-placed, time-overlapping buffers
//    that fits it (best fit), else above the highest of them.
//  - best-of (default, stronger): the same best-fit placement under several
//    orders (size; long-lived first, at 10/25/50% of the steps, then size;
//    duration, size x duration, start time, conflict weight);
//    keeps the smallest arena (XLA's heap simulator does the same with two
//    orders). Never worse than greedy-size, which is one of the orders, unless
//    an order gives up: on huge graphs an order (other than start time) stops
//    once it has examined more than work_per_buffer x buffers + work_base busy
//    intervals, and is skipped (OffsetResult::gave_up); the start-time order
//    always finishes, in O(n log n). While the arena is more than 0.5% above
//    the lower bound, `restarts` perturbed orders follow, then squeaky-wheel
//    rounds: the buffers that ended above the lower bound go first next time
//    (with fit_bytes, only until the arena fits it). With search_nodes, a
//    bounded offset search (offset_search.h) comes last.
//
// Cost: placing a buffer queries a segment tree over time whose nodes keep the
// merged union of the offset intervals placed under them, so the work is the
// number of disjoint busy intervals met, not the number of overlapping
// buffers (thousands in a deep training graph, where saved activations all
// overlap); the start order runs as a sweep over a free-hole index.
// Offsets are multiples of `alignment`; the result never depends on pointers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memplan {

struct Buffer {
  int64_t size = 0;   // bytes (rounded up to the alignment by the algorithm)
  int32_t start = 0;  // first live step
  int32_t end = 0;    // last live step, inclusive
};

enum class OffsetMethod { greedy_size, best_of };
std::string_view offset_method_name(OffsetMethod m);  // "greedy-size", "best-of"
std::optional<OffsetMethod> parse_offset_method(std::string_view s);

struct OffsetOptions {
  OffsetMethod method = OffsetMethod::best_of;
  int64_t alignment = 256;
  int64_t work_per_buffer = 64;  // best-of: see the banner; greedy-size never gives up
  int64_t work_base = int64_t{1} << 20;
  /// best-of: run only this order ("size", "long10", "long25", "long50",
  /// "duration", "area", "start", "conflict"), for tests and experiments
  /// (no restarts or squeaky rounds); "" runs them all.
  std::string only;
  /// best-of: up to this many more orders, the conflict and size orders with
  /// deterministic noise on their keys, while arena > 1.005 x the lower bound
  /// (problems of at most 20000 buffers).
  int restarts = 16;
  /// best-of, then: from each of the `squeaky_starts` best orders, up to
  /// `squeaky_iterations` rounds that move the buffers ending above the
  /// lower bound to the front of the order and place again (squeaky wheel
  /// optimization), while arena > 1.005 x the lower bound.
  int squeaky_starts = 8;
  int squeaky_iterations = 4;
  /// best-of, for feasibility probes: when set, the steps that run only
  /// while the arena is not tight (long-lived orders, restarts, squeaky
  /// rounds) also stop once the arena is at most fit_bytes. Whether the
  /// arena ends at most fit_bytes, and the arena when it does not, are the
  /// same as without it.
  std::optional<int64_t> fit_bytes;
  /// best-of, last: when the arena is still more than 0.5% above the lower
  /// bound, up to this many placements of the offset search
  /// (offset_search.h), aimed first just below the best arena, then halfway
  /// to the lower bound while it keeps succeeding. 0: off. Each placement
  /// costs tens of microseconds on graphs of 10-30k buffers, so planners
  /// that place many candidate plans leave it off and the final plan uses it.
  int64_t search_nodes = 0;
  /// Every placement puts a buffer into the lowest hole that fits instead
  /// of the smallest (first fit; the start order then runs as a query per
  /// buffer like the others, with the same work limit). Better on some
  /// fragmented training plans (resnet50's at its smallest fit: 1.026
  /// against best fit's 1.047), worse on others.
  bool first_fit = false;
};

struct OffsetResult {
  std::vector<int64_t> offsets;  // one per buffer
  int64_t arena_bytes = 0;
  std::string order;             // the buffer order that won (for reports)
  std::vector<std::string> gave_up;  // best-of orders skipped at the work limit
};

OffsetResult assign_offsets(const std::vector<Buffer>& buffers, const OffsetOptions& opts = {});

/// Best fit (first fit with `first_fit`) of buffers[order[k]], in that
/// order, around the buffers listed in `fixed`, whose offsets are read from
/// `offsets`; writes each placed buffer's offset into `offsets`. Returns
/// whether every buffer ends at most `capacity`: without `above` it stops
/// at the first that would not, leaving the rest unplaced; with `above` it
/// places them all and lists there those ending above. Sizes are rounded up
/// to `alignment`. For repacking parts of an arena (offset_repack.h).
bool place_around(const std::vector<Buffer>& buffers, const std::vector<uint32_t>& fixed,
                  const std::vector<uint32_t>& order, std::vector<int64_t>& offsets,
                  int64_t capacity, int64_t alignment, bool first_fit,
                  std::vector<uint32_t>* above = nullptr);

}  // namespace memplan
