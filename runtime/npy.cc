#include "runtime/npy.h"

#include <cctype>
#include <charconv>
#include <cstring>

#include "compiler/plan.h"

namespace memplan {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct Code {
  const char* name;  // descr without the byte-order character
  DType dtype;
};
constexpr Code kCodes[] = {{"f4", DType::f32}, {"f8", DType::f64}, {"f2", DType::f16},
                           {"i8", DType::i64}, {"i4", DType::i32}, {"b1", DType::boolean},
                           {"u1", DType::u8},  {"i1", DType::i8}};

std::string descr_of(DType d) {
  for (const Code& c : kCodes)
    if (c.dtype == d) return (dtype_size(d) == 1 ? "|" : "<") + std::string(c.name);
  throw Error(".npy cannot hold dtype " + std::string(dtype_name(d)));
}

/// A tiny reader for the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view h, const std::string& src) : h_(h), src_(src) {}

  NpyArray parse() {
    NpyArray a;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') break;
      std::string key = quoted();
      expect(':');
      skip_ws();
      if (key == "descr") {
        a.dtype = dtype_from_descr(quoted());
        have_descr = true;
      } else if (key == "fortran_order") {
        if (word() != "False")
          fail("is in Fortran order; save it with numpy.ascontiguousarray (C order)");
        have_order = true;
      } else if (key == "shape") {
        a.shape = shape();
        have_shape = true;
      } else {
        fail("has an unknown header key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') ++pos_;
    }
    if (!have_descr || !have_order || !have_shape)
      fail("has a header without 'descr', 'fortran_order' or 'shape'");
    return a;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(src_ + ": .npy file " + what); }
  char peek() const { return pos_ < h_.size() ? h_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < h_.size() && (h_[pos_] == ' ' || h_[pos_] == '\n' || h_[pos_] == '\t')) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("has a malformed header (expected '") + c + "')");
    ++pos_;
  }
  std::string quoted() {
    skip_ws();
    char q = peek();
    if (q != '\'' && q != '"') fail("has a malformed header (expected a quoted string)");
    size_t end = h_.find(q, pos_ + 1);
    if (end == std::string_view::npos) fail("has a malformed header (unterminated string)");
    std::string s(h_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  std::string word() {
    size_t b = pos_;
    while (pos_ < h_.size() && std::isalpha(static_cast<unsigned char>(h_[pos_]))) ++pos_;
    return std::string(h_.substr(b, pos_ - b));
  }
  Shape shape() {
    Shape s;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') break;
      int64_t v = 0;
      auto [p, ec] = std::from_chars(h_.data() + pos_, h_.data() + h_.size(), v);
      if (ec != std::errc() || v < 0) fail("has a malformed shape in its header");
      pos_ = static_cast<size_t>(p - h_.data());
      s.push_back(v);
      skip_ws();
      if (peek() == ',') ++pos_;
    }
    ++pos_;
    return s;
  }
  DType dtype_from_descr(const std::string& d) {
    if (d.size() == 3 && (d[0] == '<' || d[0] == '|')) {
      for (const Code& c : kCodes)
        if (d.compare(1, 2, c.name) == 0 && (d[0] == '<' || dtype_size(c.dtype) == 1)) return c.dtype;
    }
    fail("has dtype '" + d +
         "', which memplan does not read (supported: little-endian <f4 <f8 <f2 <i8 <i4 |i1 |u1 |b1)");
  }

  std::string_view h_;
  const std::string& src_;
  size_t pos_ = 0;
};

uint32_t le(const std::string& b, size_t at, int n) {
  uint32_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = v << 8 | static_cast<uint8_t>(b[at + k]);
  return v;
}

}  // namespace

NpyArray parse_npy(const std::string& b, const std::string& src) {
  if (b.size() < 10 || b.compare(0, 6, kMagic, 6) != 0)
    throw Error(src + ": not a .npy file (bad magic)");
  int major = static_cast<uint8_t>(b[6]);
  if (major < 1 || major > 3)
    throw Error(src + ": .npy format version " + std::to_string(major) + " is not supported (1-3)");
  int len_bytes = major == 1 ? 2 : 4;
  if (b.size() < static_cast<size_t>(8 + len_bytes)) throw Error(src + ": .npy file is truncated");
  size_t hlen = le(b, 8, len_bytes);
  size_t start = 8 + len_bytes;
  if (b.size() - start < hlen) throw Error(src + ": .npy file is truncated (header)");
  NpyArray a = HeaderParser(std::string_view(b).substr(start, hlen), src).parse();
  int64_t bytes = 0;
  try {
    bytes = byte_size(a.dtype, a.shape);
  } catch (const Error& e) {
    throw Error(src + ": .npy shape " + shape_str(a.shape) + ": " + e.what());
  }
  size_t data_at = start + hlen;
  if (static_cast<uint64_t>(b.size() - data_at) < static_cast<uint64_t>(bytes))
    throw Error(src + ": .npy file is truncated: " + std::string(dtype_name(a.dtype)) +
                shape_str(a.shape) + " needs " + std::to_string(bytes) + " data bytes, the file has " +
                std::to_string(b.size() - data_at));
  if (b.size() - data_at != static_cast<uint64_t>(bytes))
    throw Error(src + ": .npy file has " + std::to_string(b.size() - data_at - bytes) +
                " bytes after its data");
  a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(data_at), b.end());
  return a;
}

NpyArray read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

std::string npy_bytes(const NpyArray& a) {
  if (static_cast<int64_t>(a.data.size()) != byte_size(a.dtype, a.shape))
    throw InternalError("npy_bytes: data size does not match the shape");
  std::string shape = "(";
  for (size_t k = 0; k < a.shape.size(); ++k) shape += (k ? ", " : "") + std::to_string(a.shape[k]);
  shape += a.shape.size() == 1 ? ",)" : ")";
  std::string dict = "{'descr': '" + descr_of(a.dtype) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  int major = dict.size() + 1 + 10 > 65535 ? 2 : 1;
  size_t pre = major == 1 ? 10 : 12;
  size_t total = (pre + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - pre - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(kMagic, 6);
  out += static_cast<char>(major);
  out += '\0';
  size_t h = dict.size();
  for (int k = 0; k < (major == 1 ? 2 : 4); ++k) out += static_cast<char>((h >> (8 * k)) & 0xFF);
  out += dict;
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  return out;
}

void write_npy(const std::string& path, const NpyArray& a) { write_file_atomic(path, npy_bytes(a)); }

}  // namespace memplan
