// CPU kernels: Cast and CastLike between every dtype (f32, f16, bf16, f64,
// i64, i32, i8, u8, bool). The output dtype is the output tensor's.
//
// Conversions: float -> float rounds to nearest even (f16/bf16 through the
// codecs of compiler/dtype_codec.h, via double, which is exact for f32 ->
// f16 since double holds every f32); float -> integer truncates toward zero
// (NaN -> 0), then wraps like a C cast for narrow types; integer -> integer
// wraps; anything -> bool is (x != 0); bool -> anything is 0 or 1.
#include <cmath>

#include "compiler/dtype_codec.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/low_precision_run.h"

namespace memplan::kernels {

namespace {

struct F16 {
  uint16_t bits;
};
struct BF16 {
  uint16_t bits;
};
struct Bool {
  uint8_t v;
};

// Loading: floats as double, integers as int64.
inline double load(float x) { return x; }
inline double load(double x) { return x; }
inline double load(F16 x) { return f16_to_f64(x.bits); }
inline double load(BF16 x) { return bf16_to_f64(x.bits); }
inline int64_t load(int64_t x) { return x; }
inline int64_t load(int32_t x) { return x; }
inline int64_t load(int8_t x) { return x; }
inline int64_t load(uint8_t x) { return x; }
inline int64_t load(Bool x) { return x.v != 0; }

inline int64_t to_int(double v) {
  if (std::isnan(v)) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  if (v <= -9.2e18) return INT64_MIN;
  return static_cast<int64_t>(v);
}

template <class D>
D store_float(double v) {
  if constexpr (std::is_same_v<D, F16>) return F16{f64_to_f16(v)};
  else if constexpr (std::is_same_v<D, BF16>) return BF16{f64_to_bf16(v)};
  else if constexpr (std::is_same_v<D, Bool>) return Bool{static_cast<uint8_t>(v != 0)};
  else if constexpr (std::is_floating_point_v<D>) return static_cast<D>(v);
  else return static_cast<D>(to_int(v));
}
template <class D>
D store_int(int64_t v) {
  if constexpr (std::is_same_v<D, F16> || std::is_same_v<D, BF16>)
    return store_float<D>(static_cast<double>(v));
  else if constexpr (std::is_same_v<D, Bool>) return Bool{static_cast<uint8_t>(v != 0)};
  else return static_cast<D>(v);
}

template <class F>
void dispatch_all(const KernelArgs& a, DType d, F&& f) {
  switch (d) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::f16: return f(F16{});
    case DType::bf16: return f(BF16{});
    case DType::i64: return f(int64_t{});
    case DType::i32: return f(int32_t{});
    case DType::i8: return f(int8_t{});
    case DType::u8: return f(uint8_t{});
    case DType::boolean: return f(Bool{});
  }
  fail(a, "unsupported dtype");
}

/// f32 <-> f16/bf16, the casts precision lowering inserts: bit operations
/// (runtime/low_precision_run.h), the same results as the codecs below.
bool fast_low_cast(const TensorArg& in, const TensorArg& out) {
  const bool low_out = out.dtype == DType::f16 || out.dtype == DType::bf16;
  const bool low_in = in.dtype == DType::f16 || in.dtype == DType::bf16;
  if (in.dtype == DType::f32 && low_out) {
    const float* x = in.as<const float>();
    auto* y = out.as<uint16_t>();
    for (int64_t i = 0; i < out.numel; ++i) y[i] = f32_to_low_bits(out.dtype, x[i]);
    return true;
  }
  if (low_in && out.dtype == DType::f32) {
    const auto* x = in.as<const uint16_t>();
    float* y = out.as<float>();
    for (int64_t i = 0; i < out.numel; ++i) y[i] = low_bits_to_f32(in.dtype, x[i]);
    return true;
  }
  return false;
}

void cast_kernel(const KernelArgs& a) {
  const TensorArg& in = a.in[0];
  const TensorArg& out = a.out[0];
  if (fast_low_cast(in, out)) return;
  dispatch_all(a, in.dtype, [&](auto st) {
    using S = decltype(st);
    dispatch_all(a, out.dtype, [&](auto dt) {
      using D = decltype(dt);
      static_assert(sizeof(F16) == 2 && sizeof(BF16) == 2 && sizeof(Bool) == 1);
      const S* x = in.as<S>();
      D* y = out.as<D>();
      for (int64_t i = 0; i < out.numel; ++i) {
        const auto v = load(x[i]);
        if constexpr (std::is_same_v<decltype(v), const double>)
          y[i] = store_float<D>(v);
        else
          y[i] = store_int<D>(v);
      }
    });
  });
}

}  // namespace

void register_cast(Table& t) {
  t["Cast"] = cast_kernel;
  t["CastLike"] = cast_kernel;
}

}  // namespace memplan::kernels
