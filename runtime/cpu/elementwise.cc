// CPU kernels: elementwise family. Unary math and activations, numpy-
// broadcasting binary arithmetic, comparisons and logic, variadic
// Sum/Mean/Min/Max, Where, Clip, and the activation backward ops
// (ReluGrad, LeakyReluGrad, SigmoidGrad, TanhGrad, ErfGrad, GeluGrad, ClipGrad).
//
// Precision: float ops compute in the element type (f32 math in float with
// the float overloads of <cmath>, f64 in double). Integer Div truncates
// toward zero and fails on a zero divisor; integer Mod follows the divisor's
// sign (fmod=0) or C's fmod (fmod=1).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/cpu/cpu_util.h"

namespace memplan::kernels {

namespace {

enum Kinds : unsigned { kFloat = 1, kInt = 2 };

template <class T>
constexpr bool is_fp = std::is_floating_point_v<T>;

/// Calls f(T{}) for the dtypes an op allows (kinds).
template <unsigned kinds, class F>
void dispatch_kinds(const KernelArgs& a, DType d, F&& f) {
  if constexpr (kinds == kFloat)
    dispatch_float(a, d, f);
  else
    dispatch_numeric(a, d, f);
}

// ---------------------------------------------------------------- unary

struct Relu {
  static constexpr unsigned kinds = kFloat | kInt;
  explicit Relu(const Node&) {}
  template <class T> T operator()(T x) const { return x > T(0) ? x : T(0); }
};
struct Neg {
  static constexpr unsigned kinds = kFloat | kInt;
  explicit Neg(const Node&) {}
  template <class T> T operator()(T x) const { return static_cast<T>(-x); }
};
struct Abs {
  static constexpr unsigned kinds = kFloat | kInt;
  explicit Abs(const Node&) {}
  template <class T> T operator()(T x) const { return x < T(0) ? static_cast<T>(-x) : x; }
};
struct Sign {
  static constexpr unsigned kinds = kFloat | kInt;
  explicit Sign(const Node&) {}
  template <class T> T operator()(T x) const { return T((x > T(0)) - (x < T(0))); }
};
#define MEMPLAN_FLOAT_UNARY(Name, expr)                   \
  struct Name {                                           \
    static constexpr unsigned kinds = kFloat;             \
    explicit Name(const Node&) {}                         \
    template <class T> T operator()(T x) const { return expr; } \
  };
MEMPLAN_FLOAT_UNARY(Sqrt, std::sqrt(x))
MEMPLAN_FLOAT_UNARY(Reciprocal, T(1) / x)
MEMPLAN_FLOAT_UNARY(Exp, std::exp(x))
MEMPLAN_FLOAT_UNARY(Log, std::log(x))
MEMPLAN_FLOAT_UNARY(Tanh, std::tanh(x))
MEMPLAN_FLOAT_UNARY(Sigmoid, x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x)))
MEMPLAN_FLOAT_UNARY(Erf, std::erf(x))
MEMPLAN_FLOAT_UNARY(Floor, std::floor(x))
MEMPLAN_FLOAT_UNARY(Ceil, std::ceil(x))
MEMPLAN_FLOAT_UNARY(Round, std::nearbyint(x))  // half to even (default rounding mode)
MEMPLAN_FLOAT_UNARY(Sin, std::sin(x))
MEMPLAN_FLOAT_UNARY(Cos, std::cos(x))
MEMPLAN_FLOAT_UNARY(Softplus, x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)))
MEMPLAN_FLOAT_UNARY(Softsign, x / (T(1) + std::abs(x)))
#undef MEMPLAN_FLOAT_UNARY

struct LeakyRelu {
  static constexpr unsigned kinds = kFloat;
  double alpha;
  explicit LeakyRelu(const Node& n) : alpha(attr_float(n, "alpha", 0.01)) {}
  template <class T> T operator()(T x) const { return x > T(0) ? x : static_cast<T>(alpha) * x; }
};
struct Elu {
  static constexpr unsigned kinds = kFloat;
  double alpha;
  explicit Elu(const Node& n) : alpha(attr_float(n, "alpha", 1.0)) {}
  template <class T> T operator()(T x) const {
    return x > T(0) ? x : static_cast<T>(alpha) * (std::exp(x) - T(1));
  }
};
struct HardSigmoid {
  static constexpr unsigned kinds = kFloat;
  double alpha, beta;
  explicit HardSigmoid(const Node& n)
      : alpha(attr_float(n, "alpha", 0.2)), beta(attr_float(n, "beta", 0.5)) {}
  template <class T> T operator()(T x) const {
    return std::clamp(static_cast<T>(alpha) * x + static_cast<T>(beta), T(0), T(1));
  }
};

/// Gelu (opset 20): exact x * Phi(x), or the tanh approximation.
bool gelu_tanh(const Node& n) {
  const std::string ap = attr_str(n, "approximate", "none");
  if (ap != "none" && ap != "tanh") throw Error(node_desc(n) + ": unknown approximate '" + ap + "'");
  return ap == "tanh";
}
constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2/pi)
constexpr double kInvSqrt2 = 0.7071067811865476;     // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.3989422804014327;   // 1/sqrt(2 pi)

struct Gelu {
  static constexpr unsigned kinds = kFloat;
  bool tanh_approx;
  explicit Gelu(const Node& n) : tanh_approx(gelu_tanh(n)) {}
  template <class T> T operator()(T x) const {
    if (tanh_approx) {
      const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
      return T(0.5) * x * (T(1) + std::tanh(u));
    }
    return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
  }
};

template <class Op>
void unary_kernel(const KernelArgs& a) {
  const Op op(*a.node);
  dispatch_kinds<Op::kinds>(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = a.in[0].as<T>();
    T* y = a.out[0].as<T>();
    for (int64_t i = 0; i < a.out[0].numel; ++i) y[i] = op(x[i]);
  });
}

void identity_kernel(const KernelArgs& a) {
  if (a.out[0].data != a.in[0].data)
    std::memcpy(a.out[0].data, a.in[0].data, static_cast<size_t>(a.in[0].numel) * dtype_size(a.in[0].dtype));
}

void isnan_kernel(const KernelArgs& a) {
  dispatch_float(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < a.in[0].numel; ++i)
      a.out[0].as<uint8_t>()[i] = std::isnan(a.in[0].as<T>()[i]) ? 1 : 0;
  });
}

// ---------------------------------------------------------------- binary

/// out[i] = f(x[bcast i], y[bcast i]) with X, Y, O element types.
template <class X, class Y, class O, class F>
void broadcast_apply(const TensorArg& x, const TensorArg& y, const TensorArg& out, F&& f) {
  const X* xp = x.as<X>();
  const Y* yp = y.as<Y>();
  O* op = out.as<O>();
  if (x.shape == out.shape && y.shape == out.shape) {
    for (int64_t i = 0; i < out.numel; ++i) op[i] = f(xp[i], yp[i]);
    return;
  }
  if (x.shape == out.shape && y.numel == 1) {
    for (int64_t i = 0; i < out.numel; ++i) op[i] = f(xp[i], yp[0]);
    return;
  }
  const std::vector<int64_t> sx = bcast_strides(x.shape, out.shape);
  const std::vector<int64_t> sy = bcast_strides(y.shape, out.shape);
  for_each_index<2>(out.shape, {&sx, &sy},
                    [&](int64_t i, const std::array<int64_t, 2>& o) { op[i] = f(xp[o[0]], yp[o[1]]); });
}

struct Add {
  static constexpr unsigned kinds = kFloat | kInt;
  template <class T> T operator()(T x, T y) const { return static_cast<T>(x + y); }
};
struct Sub {
  static constexpr unsigned kinds = kFloat | kInt;
  template <class T> T operator()(T x, T y) const { return static_cast<T>(x - y); }
};
struct Mul {
  static constexpr unsigned kinds = kFloat | kInt;
  template <class T> T operator()(T x, T y) const { return static_cast<T>(x * y); }
};
struct Div {
  static constexpr unsigned kinds = kFloat | kInt;
  template <class T> T operator()(T x, T y) const {
    if constexpr (!is_fp<T>)
      if (y == 0) throw Error("integer division by zero");
    return static_cast<T>(x / y);
  }
};
struct MaxOp {
  static constexpr unsigned kinds = kFloat | kInt;
  template <class T> T operator()(T x, T y) const { return std::isnan(double(x)) || x > y ? x : y; }
};
struct MinOp {
  static constexpr unsigned kinds = kFloat | kInt;
  template <class T> T operator()(T x, T y) const { return std::isnan(double(x)) || x < y ? x : y; }
};

template <class Op>
void binary_kernel(const KernelArgs& a) {
  if (a.in[0].dtype != a.in[1].dtype) fail(a, "inputs differ in dtype");
  dispatch_kinds<Op::kinds>(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    try {
      broadcast_apply<T, T, T>(a.in[0], a.in[1], a.out[0], Op{});
    } catch (const Error& e) {
      fail(a, e.what());
    }
  });
}

void mod_kernel(const KernelArgs& a) {
  const bool fmod = attr_int(*a.node, "fmod", 0) != 0;
  dispatch_numeric(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    auto f = [&](T x, T y) -> T {
      if constexpr (is_fp<T>) {
        T r = std::fmod(x, y);
        if (!fmod && r != T(0) && ((r < T(0)) != (y < T(0)))) r += y;
        return r;
      } else {
        if (y == 0) fail(a, "integer modulo by zero");
        T r = static_cast<T>(x % y);
        if (!fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
        return r;
      }
    };
    broadcast_apply<T, T, T>(a.in[0], a.in[1], a.out[0], f);
  });
}

// An integer base (ONNX Pow allows int32 / int64, with any exponent type)
// is raised in double and truncated back, as numpy's reference does.
void pow_kernel(const KernelArgs& a) {
  dispatch_numeric(a, a.in[0].dtype, [&](auto tb) {
    using T = decltype(tb);
    dispatch_numeric(a, a.in[1].dtype, [&](auto te) {
      using E = decltype(te);
      broadcast_apply<T, E, T>(a.in[0], a.in[1], a.out[0], [](T x, E e) {
        if constexpr (is_fp<T>) return static_cast<T>(std::pow(x, static_cast<T>(e)));
        else return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(e)));
      });
    });
  });
}

template <class Cmp>
void compare_kernel(const KernelArgs& a) {
  if (a.in[0].dtype != a.in[1].dtype) fail(a, "inputs differ in dtype");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    broadcast_apply<T, T, uint8_t>(a.in[0], a.in[1], a.out[0],
                                   [](T x, T y) -> uint8_t { return Cmp{}(x, y) ? 1 : 0; });
  };
  if (a.in[0].dtype == DType::boolean)
    run(uint8_t{});
  else
    dispatch_numeric(a, a.in[0].dtype, run);
}

template <class Fn>
void logic_kernel(const KernelArgs& a) {
  for (int i = 0; i < 2; ++i)
    if (a.in[i].dtype != DType::boolean) fail(a, "inputs must be bool");
  broadcast_apply<uint8_t, uint8_t, uint8_t>(
      a.in[0], a.in[1], a.out[0], [](uint8_t x, uint8_t y) -> uint8_t { return Fn{}(x != 0, y != 0) ? 1 : 0; });
}

void not_kernel(const KernelArgs& a) {
  for (int64_t i = 0; i < a.in[0].numel; ++i)
    a.out[0].as<uint8_t>()[i] = a.in[0].as<uint8_t>()[i] ? 0 : 1;
}

/// Sum / Mean / Min / Max over any number of broadcasting inputs.
template <class Op, bool kMean = false>
void variadic_kernel(const KernelArgs& a) {
  const TensorArg& out = a.out[0];
  dispatch_kinds<Op::kinds>(a, out.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.as<T>();
    {  // out = broadcast(in[0])
      const std::vector<int64_t> s0 = bcast_strides(a.in[0].shape, out.shape);
      const T* x = a.in[0].as<T>();
      for_each_index<1>(out.shape, {&s0}, [&](int64_t i, const std::array<int64_t, 1>& off) { o[i] = x[off[0]]; });
    }
    for (size_t k = 1; k < a.in.size(); ++k) {
      if (a.in[k].dtype != out.dtype) fail(a, "inputs differ in dtype");
      broadcast_apply<T, T, T>(out, a.in[k], out, Op{});
    }
    if constexpr (kMean) {
      if constexpr (!is_fp<T>) fail(a, "Mean needs float inputs");
      for (int64_t i = 0; i < out.numel; ++i) o[i] /= static_cast<T>(a.in.size());
    }
  });
}

void where_kernel(const KernelArgs& a) {
  if (a.in[0].dtype != DType::boolean) fail(a, "condition must be bool");
  const TensorArg& out = a.out[0];
  dispatch_bytes(a, out.dtype, [&](auto tag) {
    using U = decltype(tag);
    const std::vector<int64_t> sc = bcast_strides(a.in[0].shape, out.shape);
    const std::vector<int64_t> sx = bcast_strides(a.in[1].shape, out.shape);
    const std::vector<int64_t> sy = bcast_strides(a.in[2].shape, out.shape);
    const uint8_t* c = a.in[0].as<uint8_t>();
    const U* x = a.in[1].as<U>();
    const U* y = a.in[2].as<U>();
    U* o = out.as<U>();
    for_each_index<3>(out.shape, {&sc, &sx, &sy}, [&](int64_t i, const std::array<int64_t, 3>& off) {
      o[i] = c[off[0]] ? x[off[1]] : y[off[2]];
    });
  });
}

/// Clip bounds: inputs 1 / 2 (opset 11+) or attributes min / max (opset 6).
template <class T>
void clip_bounds(const KernelArgs& a, size_t first, T* lo, T* hi) {
  *lo = std::numeric_limits<T>::lowest();
  *hi = std::numeric_limits<T>::max();
  if (a.node->has_attr("min")) *lo = static_cast<T>(attr_float(*a.node, "min", 0));
  if (a.node->has_attr("max")) *hi = static_cast<T>(attr_float(*a.node, "max", 0));
  if (a.in.size() > first && a.in[first].present()) *lo = static_cast<T>(read_scalar(a, a.in[first]));
  if (a.in.size() > first + 1 && a.in[first + 1].present())
    *hi = static_cast<T>(read_scalar(a, a.in[first + 1]));
}

void clip_kernel(const KernelArgs& a) {
  dispatch_numeric(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T lo, hi;
    clip_bounds(a, 1, &lo, &hi);
    const T* x = a.in[0].as<T>();
    T* y = a.out[0].as<T>();
    for (int64_t i = 0; i < a.out[0].numel; ++i) y[i] = std::min(std::max(x[i], lo), hi);
  });
}

// ---------------------------------------------------------------- backward ops

/// dX[i] = f(dY[i], S[i]) where S is the saved forward tensor (same shape).
template <class F>
void grad_kernel(const KernelArgs& a, F&& f) {
  if (a.in[0].shape != a.in[1].shape || a.in[0].dtype != a.in[1].dtype)
    fail(a, "dY and the saved tensor differ in shape or dtype");
  dispatch_float(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* dy = a.in[0].as<T>();
    const T* s = a.in[1].as<T>();
    T* dx = a.out[0].as<T>();
    for (int64_t i = 0; i < a.out[0].numel; ++i) dx[i] = f(dy[i], s[i]);
  });
}

void relu_grad(const KernelArgs& a) {  // (dY, Y)
  grad_kernel(a, [](auto dy, auto y) { return y > 0 ? dy : decltype(dy)(0); });
}
void leaky_relu_grad(const KernelArgs& a) {  // (dY, X)
  const double alpha = attr_float(*a.node, "alpha", 0.01);
  grad_kernel(a, [alpha](auto dy, auto x) {
    using T = decltype(dy);
    return x > 0 ? dy : static_cast<T>(alpha) * dy;
  });
}
void sigmoid_grad(const KernelArgs& a) {  // (dY, Y)
  grad_kernel(a, [](auto dy, auto y) { return dy * y * (decltype(dy)(1) - y); });
}
void tanh_grad(const KernelArgs& a) {  // (dY, Y)
  grad_kernel(a, [](auto dy, auto y) { return dy * (decltype(dy)(1) - y * y); });
}
void erf_grad(const KernelArgs& a) {  // (dY, X): d erf/dx = 2/sqrt(pi) exp(-x^2)
  grad_kernel(a, [](auto dy, auto x) {
    using T = decltype(dy);
    return dy * T(1.1283791670955126) * std::exp(-x * x);
  });
}
void gelu_grad(const KernelArgs& a) {  // (dY, X)
  const bool tanh_approx = gelu_tanh(*a.node);
  grad_kernel(a, [tanh_approx](auto dy, auto x) {
    using T = decltype(dy);
    if (tanh_approx) {
      // y = x/2 (1 + tanh u), u = c (x + 0.044715 x^3):
      // dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2)
      const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
      const T t = std::tanh(u);
      const T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
      return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    }
    // y = x Phi(x): dy/dx = Phi(x) + x phi(x)
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
    const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
    return dy * (cdf + x * pdf);
  });
}
void clip_grad(const KernelArgs& a) {  // (dY, X, min?, max?): dY where min <= x <= max
  dispatch_float(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T lo, hi;
    clip_bounds(a, 2, &lo, &hi);
    grad_kernel(a, [lo, hi](auto dy, auto x) {
      return x >= lo && x <= hi ? dy : decltype(dy)(0);
    });
  });
}

}  // namespace

void register_elementwise(Table& t) {
  t["Relu"] = unary_kernel<Relu>;
  t["Neg"] = unary_kernel<Neg>;
  t["Abs"] = unary_kernel<Abs>;
  t["Sign"] = unary_kernel<Sign>;
  t["Sqrt"] = unary_kernel<Sqrt>;
  t["Reciprocal"] = unary_kernel<Reciprocal>;
  t["Exp"] = unary_kernel<Exp>;
  t["Log"] = unary_kernel<Log>;
  t["Tanh"] = unary_kernel<Tanh>;
  t["Sigmoid"] = unary_kernel<Sigmoid>;
  t["Erf"] = unary_kernel<Erf>;
  t["Floor"] = unary_kernel<Floor>;
  t["Ceil"] = unary_kernel<Ceil>;
  t["Round"] = unary_kernel<Round>;
  t["Sin"] = unary_kernel<Sin>;
  t["Cos"] = unary_kernel<Cos>;
  t["Softplus"] = unary_kernel<Softplus>;
  t["Softsign"] = unary_kernel<Softsign>;
  t["LeakyRelu"] = unary_kernel<LeakyRelu>;
  t["Elu"] = unary_kernel<Elu>;
  t["HardSigmoid"] = unary_kernel<HardSigmoid>;
  t["Gelu"] = unary_kernel<Gelu>;
  t["Identity"] = identity_kernel;
  t["IsNaN"] = isnan_kernel;
  t["Clip"] = clip_kernel;

  t["Add"] = binary_kernel<Add>;
  t["Sub"] = binary_kernel<Sub>;
  t["Mul"] = binary_kernel<Mul>;
  t["Div"] = binary_kernel<Div>;
  t["Mod"] = mod_kernel;
  t["Pow"] = pow_kernel;
  t["Sum"] = variadic_kernel<Add>;
  t["Mean"] = variadic_kernel<Add, true>;
  t["Max"] = variadic_kernel<MaxOp>;
  t["Min"] = variadic_kernel<MinOp>;

  t["Equal"] = compare_kernel<std::equal_to<>>;
  t["Less"] = compare_kernel<std::less<>>;
  t["Greater"] = compare_kernel<std::greater<>>;
  t["LessOrEqual"] = compare_kernel<std::less_equal<>>;
  t["GreaterOrEqual"] = compare_kernel<std::greater_equal<>>;
  t["And"] = logic_kernel<std::logical_and<>>;
  t["Or"] = logic_kernel<std::logical_or<>>;
  t["Xor"] = logic_kernel<std::not_equal_to<>>;
  t["Not"] = not_kernel;
  t["Where"] = where_kernel;

  t["ReluGrad"] = relu_grad;
  t["LeakyReluGrad"] = leaky_relu_grad;
  t["SigmoidGrad"] = sigmoid_grad;
  t["TanhGrad"] = tanh_grad;
  t["ErfGrad"] = erf_grad;
  t["GeluGrad"] = gelu_grad;
  t["ClipGrad"] = clip_grad;

  register_cast(t);
}

}  // namespace memplan::kernels
