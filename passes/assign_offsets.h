// Pure offset assignment: place buffers with known sizes and live intervals
// into one arena so that no two buffers live at the same step overlap.
//
// Methods:
//  - greedy-size (TFLite's baseline): buffers by size descending; each goes
//    into the smallest gap between already-placed, time-overlapping buffers
//    that fits it (best fit), else above the highest of them.
//  - best-of (default, stronger): the same best-fit placement under several
//    orders (size, duration, size x duration, start time, conflict weight);
//    keeps the smallest arena (XLA's heap simulator does the same with two
//    orders). Never worse than greedy-size, which is one of the orders.
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
};

struct OffsetResult {
  std::vector<int64_t> offsets;  // one per buffer
  int64_t arena_bytes = 0;
  std::string order;             // the buffer order that won (for reports)
};

OffsetResult assign_offsets(const std::vector<Buffer>& buffers, const OffsetOptions& opts = {});

}  // namespace memplan
