// Lexical rules shared by the printer and the parser of the textual IR
// (ir_text_print.cc, ir_text_parse.cc). Internal: include only from those.
#pragma once

#include <cstdint>
#include <string_view>

namespace memplan::ir_text_detail {

inline constexpr uint64_t kQuietNaN = 0x7ff8000000000000ULL;
inline constexpr uint64_t kSignBit = 0x8000000000000000ULL;
inline constexpr int64_t kUnboundSymbol = -1;  // stored value of a symbolic dim printed bare

inline bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}
inline bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// [A-Za-z0-9_.]+ : tensor and graph names, attribute keys.
inline bool is_bare_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_name_char(c)) return false;
  return true;
}
/// [A-Za-z_][A-Za-z0-9_.]* : op types and symbolic dims (never numbers).
inline bool is_bare_ident(std::string_view s) { return is_bare_name(s) && is_ident_start(s[0]); }

}  // namespace memplan::ir_text_detail
