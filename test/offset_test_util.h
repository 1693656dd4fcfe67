// Independent checks for offset placements (offset_search_test,
// offset_repack_test): the lower bound and an O(n^2) overlap check that
// shares no code with the passes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "passes/assign_offsets.h"
#include "passes/lifetimes.h"

namespace memplan::offset_test {

inline constexpr int64_t kAlign = 256;

/// The most bytes live at one step, sizes rounded up to kAlign.
inline int64_t lower_bound_of(const std::vector<Buffer>& bufs) {
  int32_t steps = 1;
  for (const Buffer& b : bufs) steps = std::max(steps, b.end + 1);
  std::vector<int64_t> live(static_cast<size_t>(steps) + 1, 0);
  for (const Buffer& b : bufs) {
    live[b.start] += align_up(b.size, kAlign);
    live[b.end + 1] -= align_up(b.size, kAlign);
  }
  int64_t lb = 0, run = 0;
  for (int64_t v : live) lb = std::max(lb, run += v);
  return lb;
}

/// The arena of a placement, or -1 when two buffers live at a common step
/// overlap or an offset is negative or misaligned.
inline int64_t checked_arena(const std::vector<Buffer>& bufs, const std::vector<int64_t>& off) {
  int64_t arena = 0;
  for (size_t i = 0; i < bufs.size(); ++i) {
    const int64_t si = align_up(bufs[i].size, kAlign);
    if (si == 0) continue;
    if (off[i] < 0 || off[i] % kAlign != 0) return -1;
    arena = std::max(arena, off[i] + si);
    for (size_t j = i + 1; j < bufs.size(); ++j) {
      const int64_t sj = align_up(bufs[j].size, kAlign);
      if (sj == 0 || bufs[i].end < bufs[j].start || bufs[j].end < bufs[i].start) continue;
      if (off[i] < off[j] + sj && off[j] < off[i] + si) return -1;
    }
  }
  return arena;
}

}  // namespace memplan::offset_test
