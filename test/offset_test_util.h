// Independent references for offset placements (offsets_test,
// offset_search_test, offset_repack_test): the lower bound, an O(n^2)
// overlap check and a naive best/first fit, sharing no code with the passes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
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

/// A naive best fit (first fit with `first_fit`) of bufs[order[k]], in that
/// order, around the buffers in `fixed`: offsets are read from and written
/// into `off`; each buffer goes into the smallest gap (lowest among equal
/// ones; first fit: the lowest gap that fits) between the fixed and already
/// placed buffers it overlaps in time, else above them all. Zero-size
/// buffers get 0. Returns the highest end among the buffers it placed.
inline int64_t naive_fit(const std::vector<Buffer>& bufs, const std::vector<uint32_t>& fixed,
                         const std::vector<uint32_t>& order, std::vector<int64_t>& off,
                         int64_t align, bool first_fit) {
  std::vector<uint32_t> placed = fixed;
  int64_t arena = 0;
  for (uint32_t id : order) {
    const Buffer& b = bufs[id];
    const int64_t size = align_up(b.size, align);
    if (size == 0) {
      off[id] = 0;
      continue;
    }
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (uint32_t o : placed)
      if (bufs[o].start <= b.end && b.start <= bufs[o].end)
        busy.emplace_back(off[o], off[o] + align_up(bufs[o].size, align));
    std::sort(busy.begin(), busy.end());
    int64_t best = -1, best_gap = INT64_MAX, top = 0;
    for (auto [lo, hi] : busy) {
      if (lo - top >= size && (first_fit ? best < 0 : lo - top < best_gap)) {
        best = top;
        best_gap = lo - top;
      }
      top = std::max(top, hi);
    }
    off[id] = best < 0 ? top : best;
    arena = std::max(arena, off[id] + size);
    placed.push_back(id);
  }
  return arena;
}

}  // namespace memplan::offset_test
