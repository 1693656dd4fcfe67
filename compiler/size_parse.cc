#include "compiler/size_parse.h"

#include <cctype>
#include <cmath>
#include <cstdint>

#include "compiler/ir.h"

namespace memplan {

int64_t parse_size(std::string_view text, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return Error(what + " '" + std::string(text) + "': " + why +
                 " (examples: 16GiB, 16GB, 800MiB, 1.5GiB, 1048576)");
  };
  size_t i = 0;
  std::string digits;
  bool dot = false;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    if (text[i] == '.') {
      if (dot) throw bad("not a number");
      dot = true;
    }
    digits += text[i++];
  }
  if (digits.empty() || digits == ".") throw bad("expected a non-negative number");
  std::string unit;
  for (; i < text.size(); ++i) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  long double scale = 0;
  const char* units[] = {"", "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib"};
  const long double scales[] = {1, 1, 1e3L, 1e6L, 1e9L, 1e12L, 1024.0L, 1048576.0L,
                                1073741824.0L, 1099511627776.0L};
  for (size_t k = 0; k < std::size(units); ++k)
    if (unit == units[k]) scale = scales[k];
  if (scale == 0) throw bad("unknown unit '" + unit + "'; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB");
  if (dot && scale == 1) throw bad("a byte count must be whole");
  const long double v = std::stold(digits) * scale;
  if (!(v < 9.2e18L)) throw bad("too large");
  return static_cast<int64_t>(std::nearbyint(v));  // 1.5GiB is exact; others round to a byte
}

}  // namespace memplan
