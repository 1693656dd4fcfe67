// CPU kernels: data family, part 2: indexing. Slice and SliceGrad, Gather
// and GatherGrad, GatherElements and GatherElementsGrad, Pad (constant,
// edge, reflect, wrap; negative pads crop), Trilu.
//
// Starts / ends / axes / steps, pads, indices and Trilu's k are read from
// the input tensors at run time (or from the attributes of older opsets).
// Negative indices count from the end; out-of-range indices fail.
// The *Grad ops scatter into a zero tensor of the forward input's shape;
// Gather*Grad accumulate (repeated indices add up).
#include <algorithm>
#include <cstring>

#include "compiler/ops_common.h"  // ops::slice_range: the registry's clamping rules
#include "runtime/cpu/cpu_util.h"

namespace memplan::kernels {

namespace {

// ---------------------------------------------------------------- Slice

/// How a slice of `data` walks it: the flat offset of the first element and
/// one stride per dim (data stride times step). `p` is the slot of starts
/// (1 for Slice, 2 for SliceGrad); ends, axes, steps follow it.
struct SliceWalk {
  int64_t base = 0;
  std::vector<int64_t> strides;
  Shape shape;  // the sliced shape
};
SliceWalk slice_walk(const KernelArgs& a, const Shape& data, size_t p) {
  const Node& n = *a.node;
  auto opt = [&](size_t slot) { return a.in.size() > slot && a.in[slot].present(); };
  std::vector<int64_t> starts = n.has_attr("starts") ? attr_ints(n, "starts") : read_ints(a, a.in.at(p));
  std::vector<int64_t> ends = n.has_attr("ends") ? attr_ints(n, "ends") : read_ints(a, a.in.at(p + 1));
  std::vector<int64_t> axes;
  if (n.has_attr("axes"))
    axes = attr_ints(n, "axes");
  else if (opt(p + 2))
    axes = read_ints(a, a.in[p + 2]);
  else
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  std::vector<int64_t> steps = opt(p + 3) ? read_ints(a, a.in[p + 3]) : std::vector<int64_t>(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    fail(a, "starts, ends, axes and steps differ in length");
  SliceWalk w;
  w.shape = data;
  const std::vector<int64_t> s = strides_of(data);
  w.strides = s;
  const int64_t r = static_cast<int64_t>(data.size());
  for (size_t i = 0; i < starts.size(); ++i) {
    const size_t ax = static_cast<size_t>(norm_axis(a, axes[i], r));
    if (steps[i] == 0) fail(a, "slice step must not be 0");
    int64_t first = 0;
    w.shape[ax] = ops::slice_range(data[ax], starts[i], ends[i], steps[i], &first);
    w.base += first * s[ax];
    w.strides[ax] = s[ax] * steps[i];
  }
  return w;
}

void slice_kernel(const KernelArgs& a) {
  const SliceWalk w = slice_walk(a, a.in[0].shape, 1);
  if (w.shape != a.out[0].shape) fail(a, "output shape does not match the slice");
  dispatch_bytes(a, a.in[0].dtype, [&](auto tag) {
    using U = decltype(tag);
    const U* x = a.in[0].as<U>() + w.base;
    U* y = a.out[0].as<U>();
    for_each_index<1>(w.shape, {&w.strides}, [&](int64_t i, const std::array<int64_t, 1>& o) { y[i] = x[o[0]]; });
  });
}

/// SliceGrad(dY, shape, starts, ends, axes?, steps?): zeros of `shape` with
/// dY written where Slice read (slice positions are distinct).
void slice_grad_kernel(const KernelArgs& a) {
  const SliceWalk w = slice_walk(a, a.out[0].shape, 2);
  if (w.shape != a.in[0].shape) fail(a, "dY shape does not match the slice");
  std::memset(a.out[0].data, 0, static_cast<size_t>(a.out[0].numel) * dtype_size(a.out[0].dtype));
  dispatch_bytes(a, a.in[0].dtype, [&](auto tag) {
    using U = decltype(tag);
    const U* dy = a.in[0].as<U>();
    U* dx = a.out[0].as<U>() + w.base;
    for_each_index<1>(w.shape, {&w.strides}, [&](int64_t i, const std::array<int64_t, 1>& o) { dx[o[0]] = dy[i]; });
  });
}

// ---------------------------------------------------------------- Gather

/// Normalized indices (negative count from the end) checked against dim.
std::vector<int64_t> indices_of(const KernelArgs& a, const TensorArg& t, int64_t dim) {
  std::vector<int64_t> idx = read_ints(a, t);
  for (int64_t& v : idx) {
    if (v < -dim || v >= dim)
      fail(a, "index " + std::to_string(v) + " out of range for a dim of size " + std::to_string(dim));
    if (v < 0) v += dim;
  }
  return idx;
}

/// Gather: data [outer, N, inner], out [outer, K, inner] with K = #indices.
struct GatherDims {
  int64_t outer = 1, n = 0, inner = 1;
};
GatherDims gather_dims(const KernelArgs& a, const Shape& data) {
  const int64_t axis = norm_axis(a, attr_int(*a.node, "axis", 0), static_cast<int64_t>(data.size()));
  GatherDims g;
  for (size_t d = 0; d < data.size(); ++d) {
    if (static_cast<int64_t>(d) < axis) g.outer *= data[d];
    if (static_cast<int64_t>(d) > axis) g.inner *= data[d];
  }
  g.n = data[static_cast<size_t>(axis)];
  return g;
}

void gather_kernel(const KernelArgs& a) {
  const GatherDims g = gather_dims(a, a.in[0].shape);
  const std::vector<int64_t> idx = indices_of(a, a.in[1], g.n);
  const int64_t k = static_cast<int64_t>(idx.size());
  const size_t es = dtype_size(a.in[0].dtype);
  const auto* x = static_cast<const uint8_t*>(a.in[0].data);
  auto* y = static_cast<uint8_t*>(a.out[0].data);
  const size_t row = static_cast<size_t>(g.inner) * es;
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t j = 0; j < k; ++j)
      std::memcpy(y + ((o * k + j) * g.inner) * es, x + ((o * g.n + idx[static_cast<size_t>(j)]) * g.inner) * es, row);
}

/// GatherGrad(dY, indices, shape): dX = zeros(shape); dX[o, idx[j], :] += dY[o, j, :].
void gather_grad_kernel(const KernelArgs& a) {
  const GatherDims g = gather_dims(a, a.out[0].shape);
  const std::vector<int64_t> idx = indices_of(a, a.in[1], g.n);
  const int64_t k = static_cast<int64_t>(idx.size());
  dispatch_float(a, a.out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* dy = a.in[0].as<T>();
    T* dx = a.out[0].as<T>();
    std::fill(dx, dx + a.out[0].numel, T(0));
    for (int64_t o = 0; o < g.outer; ++o)
      for (int64_t j = 0; j < k; ++j) {
        const T* src = dy + (o * k + j) * g.inner;
        T* dst = dx + (o * g.n + idx[static_cast<size_t>(j)]) * g.inner;
        for (int64_t e = 0; e < g.inner; ++e) dst[e] += src[e];
      }
  });
}

/// GatherElements: out[i] = data[i with its axis coordinate replaced by
/// idx[i]]. Walks out's shape with data's strides, the axis stride zeroed.
template <class F>
void gather_elements_walk(const KernelArgs& a, const Shape& data, const TensorArg& indices, F&& f) {
  const int64_t r = static_cast<int64_t>(data.size());
  const size_t axis = static_cast<size_t>(norm_axis(a, attr_int(*a.node, "axis", 0), r));
  if (indices.shape.size() != data.size()) fail(a, "data and indices differ in rank");
  const std::vector<int64_t> idx = indices_of(a, indices, data[axis]);
  std::vector<int64_t> st = strides_of(data);
  const int64_t axis_stride = st[axis];
  st[axis] = 0;
  for_each_index<1>(indices.shape, {&st}, [&](int64_t i, const std::array<int64_t, 1>& o) {
    f(i, o[0] + idx[static_cast<size_t>(i)] * axis_stride);
  });
}

void gather_elements_kernel(const KernelArgs& a) {
  dispatch_bytes(a, a.in[0].dtype, [&](auto tag) {
    using U = decltype(tag);
    const U* x = a.in[0].as<U>();
    U* y = a.out[0].as<U>();
    gather_elements_walk(a, a.in[0].shape, a.in[1], [&](int64_t i, int64_t src) { y[i] = x[src]; });
  });
}

/// GatherElementsGrad(dY, indices, shape): scatter-add of dY into zeros(shape).
void gather_elements_grad_kernel(const KernelArgs& a) {
  dispatch_float(a, a.out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* dy = a.in[0].as<T>();
    T* dx = a.out[0].as<T>();
    std::fill(dx, dx + a.out[0].numel, T(0));
    gather_elements_walk(a, a.out[0].shape, a.in[1], [&](int64_t i, int64_t dst) { dx[dst] += dy[i]; });
  });
}

// ---------------------------------------------------------------- Pad

/// Maps an output coordinate to an input coordinate (-1: use the constant).
int64_t pad_source(int64_t c, int64_t dim, char mode) {
  if (c >= 0 && c < dim) return c;
  if (dim == 0) return -1;
  switch (mode) {
    case 'e': return std::clamp<int64_t>(c, 0, dim - 1);
    case 'w': return ((c % dim) + dim) % dim;
    case 'r': {
      if (dim == 1) return 0;
      const int64_t period = 2 * (dim - 1);
      int64_t m = ((c % period) + period) % period;
      return m < dim ? m : period - m;
    }
    default: return -1;
  }
}

void pad_kernel(const KernelArgs& a) {
  const Node& n = *a.node;
  const Shape& in = a.in[0].shape;
  const Shape& out = a.out[0].shape;
  const int64_t r = static_cast<int64_t>(in.size());
  const std::vector<int64_t> pads = n.has_attr("pads") ? attr_ints(n, "pads") : read_ints(a, a.in.at(1));
  std::vector<int64_t> axes;
  if (a.in.size() > 3 && a.in[3].present())
    axes = read_ints(a, a.in[3]);
  else
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  if (pads.size() != 2 * axes.size()) fail(a, "pads and axes differ in length");
  std::vector<int64_t> begin(in.size(), 0);
  for (size_t i = 0; i < axes.size(); ++i) begin[static_cast<size_t>(norm_axis(a, axes[i], r))] = pads[i];
  const std::string mode = attr_str(n, "mode", "constant");
  const char m = mode == "edge" ? 'e' : mode == "wrap" ? 'w' : mode == "reflect" ? 'r' : 'c';
  double value = attr_float(n, "value", 0.0);
  if (a.in.size() > 2 && a.in[2].present() && a.in[2].numel > 0) value = read_scalar(a, a.in[2]);
  const std::vector<int64_t> ist = strides_of(in);
  dispatch_numeric(a, a.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = a.in[0].as<T>();
    T* y = a.out[0].as<T>();
    const T cv = static_cast<T>(value);
    std::vector<int64_t> c(out.size(), 0);
    for (int64_t i = 0; i < a.out[0].numel; ++i) {
      int64_t src = 0;
      for (size_t d = 0; d < out.size() && src >= 0; ++d) {
        const int64_t s = pad_source(c[d] - begin[d], in[d], m);
        src = s < 0 ? -1 : src + s * ist[d];
      }
      y[i] = src < 0 ? cv : x[src];
      for (size_t d = out.size(); d-- > 0;) {
        if (++c[d] < out[d]) break;
        c[d] = 0;
      }
    }
  });
}

// ---------------------------------------------------------------- Trilu

/// Keeps (i, j) of the last two dims with j - i >= k (upper) or <= k (lower).
void trilu_kernel(const KernelArgs& a) {
  const Shape& s = a.in[0].shape;
  const bool upper = attr_int(*a.node, "upper", 1) != 0;
  const int64_t k = a.in.size() > 1 && a.in[1].present() ? read_ints(a, a.in[1]).at(0) : 0;
  const int64_t rows = s[s.size() - 2], cols = s[s.size() - 1];
  dispatch_bytes(a, a.in[0].dtype, [&](auto tag) {
    using U = decltype(tag);
    const U* x = a.in[0].as<U>();
    U* y = a.out[0].as<U>();
    for (int64_t i = 0; i < a.out[0].numel; ++i) {
      const int64_t row = (i / cols) % rows, col = i % cols;
      const bool keep = upper ? col - row >= k : col - row <= k;
      y[i] = keep ? x[i] : U(0);
    }
  });
}

}  // namespace

void register_index(Table& t) {
  t["Slice"] = slice_kernel;
  t["SliceGrad"] = slice_grad_kernel;
  t["Gather"] = gather_kernel;
  t["GatherGrad"] = gather_grad_kernel;
  t["GatherElements"] = gather_elements_kernel;
  t["GatherElementsGrad"] = gather_elements_grad_kernel;
  t["Pad"] = pad_kernel;
  t["Trilu"] = trilu_kernel;
}

}  // namespace memplan::kernels
