#include "compiler/dtype_codec.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace memplan {

namespace {

template <class T>
T load(const uint8_t* bytes, size_t i) {
  T v;
  std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));  // hosts are little-endian
  return v;
}

template <class T>
void store(T v, std::vector<uint8_t>& out) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

/// Rounds |v| to a binary float with `mant` explicit mantissa bits and
/// exponent bias `bias` (max exponent bias, min normal exponent 1-bias),
/// nearest-even, returning the sign-less bit pattern (exp << mant | m).
uint32_t round_minifloat(double a, int mant, int bias) {
  const int emin = 1 - bias, emax = bias;
  const uint32_t inf = static_cast<uint32_t>(2 * bias + 1) << mant;
  if (std::isinf(a)) return inf;
  if (a < std::ldexp(1.0, emin)) {
    // Subnormal: count of units of 2^(emin - mant); 2^mant units is the
    // smallest normal, whose bit pattern is the same integer.
    return static_cast<uint32_t>(std::nearbyint(std::ldexp(a, mant - emin)));
  }
  int x;
  double f = std::frexp(a, &x);  // a = f * 2^x, f in [0.5, 1)
  int e = x - 1;                 // a = (2f) * 2^e, 2f in [1, 2)
  double m = std::nearbyint((2 * f - 1) * std::ldexp(1.0, mant));
  if (m >= std::ldexp(1.0, mant)) {
    m = 0;
    ++e;
  }
  if (e > emax) return inf;
  return (static_cast<uint32_t>(e + bias) << mant) | static_cast<uint32_t>(m);
}

double minifloat_to_f64(uint32_t bits, int mant, int expbits) {
  const int bias = (1 << (expbits - 1)) - 1;
  const uint32_t sign = bits >> (mant + expbits);
  const uint32_t e = (bits >> mant) & ((1u << expbits) - 1);
  const uint32_t m = bits & ((1u << mant) - 1);
  double v;
  if (e == (1u << expbits) - 1)
    v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (e == 0)
    v = std::ldexp(static_cast<double>(m), 1 - bias - mant);
  else
    v = std::ldexp(static_cast<double>(m | (1u << mant)), static_cast<int>(e) - bias - mant);
  return sign ? -v : v;
}

int64_t to_int(double v) {
  if (std::isnan(v)) return 0;
  if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);  // truncates toward zero
}

}  // namespace

uint16_t f64_to_f16(double v) {
  uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  if (std::isnan(v)) return sign | 0x7E00;
  return sign | static_cast<uint16_t>(round_minifloat(std::fabs(v), 10, 15));
}
uint16_t f64_to_bf16(double v) {
  uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  if (std::isnan(v)) return sign | 0x7FC0;
  return sign | static_cast<uint16_t>(round_minifloat(std::fabs(v), 7, 127));
}
double f16_to_f64(uint16_t h) { return minifloat_to_f64(h, 10, 5); }
double bf16_to_f64(uint16_t h) { return minifloat_to_f64(h, 7, 8); }

double decode_float(DType d, const uint8_t* b, size_t i) {
  switch (d) {
    case DType::f32: return load<float>(b, i);
    case DType::f16: return f16_to_f64(load<uint16_t>(b, i));
    case DType::bf16: return bf16_to_f64(load<uint16_t>(b, i));
    case DType::f64: return load<double>(b, i);
    case DType::i64: return static_cast<double>(load<int64_t>(b, i));
    case DType::i32: return load<int32_t>(b, i);
    case DType::i8: return load<int8_t>(b, i);
    case DType::u8: return load<uint8_t>(b, i);
    case DType::boolean: return load<uint8_t>(b, i) != 0 ? 1.0 : 0.0;
  }
  throw InternalError("decode_float: bad dtype");
}

int64_t decode_int(DType d, const uint8_t* b, size_t i) {
  switch (d) {
    case DType::i64: return load<int64_t>(b, i);
    case DType::i32: return load<int32_t>(b, i);
    case DType::i8: return load<int8_t>(b, i);
    case DType::u8: return load<uint8_t>(b, i);
    case DType::boolean: return load<uint8_t>(b, i) != 0 ? 1 : 0;
    default: return to_int(decode_float(d, b, i));
  }
}

void encode_float(DType d, double v, std::vector<uint8_t>& out) {
  switch (d) {
    case DType::f32: return store(static_cast<float>(v), out);
    case DType::f16: return store(f64_to_f16(v), out);
    case DType::bf16: return store(f64_to_bf16(v), out);
    case DType::f64: return store(v, out);
    case DType::boolean: return store(static_cast<uint8_t>(v != 0.0 ? 1 : 0), out);
    default: return encode_int(d, to_int(v), out);
  }
}

void encode_int(DType d, int64_t v, std::vector<uint8_t>& out) {
  switch (d) {
    case DType::i64: return store(v, out);
    case DType::i32: return store(static_cast<int32_t>(v), out);
    case DType::i8: return store(static_cast<int8_t>(v), out);
    case DType::u8: return store(static_cast<uint8_t>(v), out);
    case DType::boolean: return store(static_cast<uint8_t>(v != 0 ? 1 : 0), out);
    default: return encode_float(d, static_cast<double>(v), out);
  }
}

}  // namespace memplan
