// Parses byte sizes given on the command line: "16GiB", "16GB", "800MiB",
// "1.5GiB", "4096" (plain bytes), "4096B". Units: B; KB, MB, GB, TB (powers of
// 1000); KiB, MiB, GiB, TiB (powers of 1024); unit letters are case-
// insensitive ("16gib"). Fractions need a unit and round to the nearest
// byte. Throws Error naming `what` and
// the text on anything else (empty, negative, unknown unit, overflow).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace memplan {

int64_t parse_size(std::string_view text, const std::string& what = "size");

}  // namespace memplan
