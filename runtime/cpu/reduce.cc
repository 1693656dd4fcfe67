// CPU kernels: Reduce* (Sum, Mean, Max, Min, Prod, SumSquare, L1, L2,
// LogSum, LogSumExp). Axes come from the attribute (opset < 18, and < 13 for
// ReduceSum) or from input 1 at run time; absent or empty axes reduce every
// axis unless noop_with_empty_axes = 1. keepdims does not change the flat
// layout, so the kernel ignores it.
//
// Accumulation: f32 and f64 accumulate in double and round once at the end;
// integer inputs (Sum, Max, Min, Prod, SumSquare, L1) accumulate in int64.
// ReduceMax/Min of an empty range give the lowest/highest value.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/cpu/cpu_util.h"

namespace memplan::kernels {

namespace {

enum class R { sum, mean, max, min, prod, sumsq, l1, l2, logsum, logsumexp };

/// Strides mapping each input element to its output element (0 on reduced
/// axes), and the number of input elements per output element.
std::vector<int64_t> reduce_strides(const KernelArgs& a, int64_t* count) {
  const Shape& in = a.in[0].shape;
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> axes;
  bool have = false;
  if (a.node->has_attr("axes")) {
    axes = attr_ints(*a.node, "axes");
    have = true;
  } else if (a.in.size() > 1 && a.in[1].present()) {
    axes = read_ints(a, a.in[1]);
    have = true;
  }
  std::vector<char> reduced(in.size(), 0);
  if (have && !axes.empty()) {
    for (int64_t ax : axes) reduced[static_cast<size_t>(norm_axis(a, ax, r))] = 1;
  } else if (attr_int(*a.node, "noop_with_empty_axes", 0) == 0) {
    std::fill(reduced.begin(), reduced.end(), 1);
  }
  Shape keep = in;
  *count = 1;
  for (size_t d = 0; d < in.size(); ++d)
    if (reduced[d]) {
      *count *= in[d];
      keep[d] = 1;
    }
  if (num_elements(keep) != a.out[0].numel) fail(a, "output size does not match the reduction");
  std::vector<int64_t> st = strides_of(keep);
  for (size_t d = 0; d < in.size(); ++d)
    if (reduced[d]) st[d] = 0;
  return st;
}

template <class T, class Acc>
void reduce_typed(const KernelArgs& a, R op) {
  int64_t count = 0;
  const std::vector<int64_t> st = reduce_strides(a, &count);
  const T* x = a.in[0].as<T>();
  const size_t n = static_cast<size_t>(a.out[0].numel);
  Acc init = 0;
  if (op == R::max) init = std::numeric_limits<Acc>::lowest();
  if (op == R::min) init = std::numeric_limits<Acc>::max();
  if (op == R::prod) init = 1;
  std::vector<Acc> acc(n, init);
  std::vector<Acc> mx;  // LogSumExp: per-output max, for a stable exp
  if (op == R::logsumexp) {
    mx.assign(n, std::numeric_limits<Acc>::lowest());
    for_each_index<1>(a.in[0].shape, {&st}, [&](int64_t i, const std::array<int64_t, 1>& o) {
      mx[o[0]] = std::max<Acc>(mx[o[0]], static_cast<Acc>(x[i]));
    });
  }
  for_each_index<1>(a.in[0].shape, {&st}, [&](int64_t i, const std::array<int64_t, 1>& o) {
    const Acc v = static_cast<Acc>(x[i]);
    Acc& s = acc[o[0]];
    switch (op) {
      case R::max: s = std::max(s, v); break;
      case R::min: s = std::min(s, v); break;
      case R::prod: s *= v; break;
      case R::sumsq:
      case R::l2: s += v * v; break;
      case R::l1: s += v < 0 ? -v : v; break;
      case R::logsumexp: s += static_cast<Acc>(std::exp(static_cast<double>(v - mx[o[0]]))); break;
      default: s += v;
    }
  });
  T* y = a.out[0].as<T>();
  for (size_t j = 0; j < n; ++j) {
    double v = static_cast<double>(acc[j]);
    if (op == R::mean) v /= static_cast<double>(count);
    if (op == R::l2) v = std::sqrt(v);
    if (op == R::logsum) v = std::log(v);
    if (op == R::logsumexp) v = std::log(v) + static_cast<double>(mx[j]);
    y[j] = std::is_floating_point_v<Acc> ? static_cast<T>(v) : static_cast<T>(acc[j]);
  }
}

template <R kOp>
void reduce_kernel(const KernelArgs& a) {
  constexpr bool float_only = kOp == R::mean || kOp == R::l2 || kOp == R::logsum || kOp == R::logsumexp;
  dispatch_numeric(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      reduce_typed<T, double>(a, kOp);
    } else {
      if (float_only) fail(a, "integer inputs are not supported");
      reduce_typed<T, int64_t>(a, kOp);
    }
  });
}

}  // namespace

void register_reduce(Table& t) {
  t["ReduceSum"] = reduce_kernel<R::sum>;
  t["ReduceMean"] = reduce_kernel<R::mean>;
  t["ReduceMax"] = reduce_kernel<R::max>;
  t["ReduceMin"] = reduce_kernel<R::min>;
  t["ReduceProd"] = reduce_kernel<R::prod>;
  t["ReduceSumSquare"] = reduce_kernel<R::sumsq>;
  t["ReduceL1"] = reduce_kernel<R::l1>;
  t["ReduceL2"] = reduce_kernel<R::l2>;
  t["ReduceLogSum"] = reduce_kernel<R::logsum>;
  t["ReduceLogSumExp"] = reduce_kernel<R::logsumexp>;
}

}  // namespace memplan::kernels
