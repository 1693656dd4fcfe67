// CPU kernels: data family, part 1: views (Reshape, Flatten, Squeeze,
// Unsqueeze), Transpose, Concat, Split, Expand, Tile, and creation ops
// (Shape, Size, Range, ConstantOfShape). Data movement is dtype-agnostic
// (element-size dispatch). Shape-like inputs (Reshape's shape, Expand's
// shape, Tile's repeats, Split's sizes) are not read: the output shapes,
// fixed at compile time, already encode them.
// Indexing ops live in index.cc, reductions in reduce.cc.
#include <algorithm>
#include <cstring>

#include "compiler/dtype_codec.h"
#include "runtime/cpu/cpu_util.h"

namespace memplan::kernels {

namespace {

/// Views: the kernel contract gives the output the input's pointer when
/// planned as a view; otherwise the bytes are copied.
void view_kernel(const KernelArgs& a) {
  if (a.in[0].numel != a.out[0].numel) fail(a, "view changes the element count");
  if (a.out[0].data == a.in[0].data) return;
  std::memcpy(a.out[0].data, a.in[0].data,
              static_cast<size_t>(a.in[0].numel) * dtype_size(a.in[0].dtype));
}

/// out[i] = in[off] where off walks `in` with strides `st` over out's shape.
void strided_copy(const KernelArgs& a, const TensorArg& in, const TensorArg& out,
                  const Shape& walk_shape, const std::vector<int64_t>& st) {
  dispatch_bytes(a, in.dtype, [&](auto tag) {
    using U = decltype(tag);
    const U* x = in.as<U>();
    U* y = out.as<U>();
    for_each_index<1>(walk_shape, {&st}, [&](int64_t i, const std::array<int64_t, 1>& o) { y[i] = x[o[0]]; });
  });
}

void transpose_kernel(const KernelArgs& a) {
  const Shape& in = a.in[0].shape;
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> perm(in.size());
  for (int64_t i = 0; i < r; ++i) perm[static_cast<size_t>(i)] = r - 1 - i;
  perm = attr_ints(*a.node, "perm", perm);
  if (static_cast<int64_t>(perm.size()) != r) fail(a, "perm does not match the input rank");
  const std::vector<int64_t> s = strides_of(in);
  std::vector<int64_t> st(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) st[d] = s[static_cast<size_t>(norm_axis(a, perm[d], r))];
  strided_copy(a, a.in[0], a.out[0], a.out[0].shape, st);
}

void expand_kernel(const KernelArgs& a) {
  strided_copy(a, a.in[0], a.out[0], a.out[0].shape, bcast_strides(a.in[0].shape, a.out[0].shape));
}

/// Tile is a broadcast: out viewed as [r0, d0, r1, d1, ...] (row-major, so
/// out index k*d + j along a dim is (rep k, elem j)) reads in[.., j, ..].
void tile_kernel(const KernelArgs& a) {
  const Shape& in = a.in[0].shape;
  const std::vector<int64_t> s = strides_of(in);
  Shape walk;
  std::vector<int64_t> st;
  for (size_t d = 0; d < in.size(); ++d) {
    if (in[d] == 0 || a.out[0].shape[d] % in[d] != 0) {
      if (a.out[0].numel == 0) return;
      fail(a, "output shape is not a multiple of the input shape");
    }
    walk.push_back(a.out[0].shape[d] / in[d]);
    st.push_back(0);
    walk.push_back(in[d]);
    st.push_back(s[d]);
  }
  strided_copy(a, a.in[0], a.out[0], walk, st);
}

/// Concat and Split: outer = product of dims before the axis; each tensor
/// contributes a block of dim_axis * inner elements per outer index.
int64_t outer_of(const Shape& s, int64_t axis) {
  int64_t n = 1;
  for (int64_t d = 0; d < axis; ++d) n *= s[static_cast<size_t>(d)];
  return n;
}

void concat_kernel(const KernelArgs& a) {
  const Shape& os = a.out[0].shape;
  const int64_t axis = norm_axis(a, attr_int(*a.node, "axis", 0), static_cast<int64_t>(os.size()));
  const int64_t outer = outer_of(os, axis);
  const size_t es = dtype_size(a.out[0].dtype);
  const int64_t out_block = a.out[0].numel / (outer ? outer : 1);
  auto* out = static_cast<uint8_t*>(a.out[0].data);
  int64_t col = 0;  // running element offset inside an output block
  for (const TensorArg& in : a.in) {
    if (in.dtype != a.out[0].dtype) fail(a, "inputs differ in dtype");
    const int64_t block = outer ? in.numel / outer : 0;
    const auto* src = static_cast<const uint8_t*>(in.data);
    for (int64_t o = 0; o < outer && block > 0; ++o)
      std::memcpy(out + (o * out_block + col) * es, src + o * block * es, static_cast<size_t>(block) * es);
    col += block;
  }
}

void split_kernel(const KernelArgs& a) {
  const Shape& is = a.in[0].shape;
  const int64_t axis = norm_axis(a, attr_int(*a.node, "axis", 0), static_cast<int64_t>(is.size()));
  const int64_t outer = outer_of(is, axis);
  const size_t es = dtype_size(a.in[0].dtype);
  const int64_t in_block = a.in[0].numel / (outer ? outer : 1);
  const auto* in = static_cast<const uint8_t*>(a.in[0].data);
  int64_t col = 0;
  for (size_t k = 0; k < a.out.size(); ++k) {
    const TensorArg& out = a.out[k];
    // An empty output has no storage (data may be nullptr) but is not omitted.
    if (!a.node->outputs[k].valid()) fail(a, "omitted Split outputs are not supported");
    const int64_t block = outer ? out.numel / outer : 0;
    auto* dst = static_cast<uint8_t*>(out.data);
    for (int64_t o = 0; o < outer && block > 0; ++o)
      std::memcpy(dst + o * block * es, in + (o * in_block + col) * es, static_cast<size_t>(block) * es);
    col += block;
  }
}

void shape_kernel(const KernelArgs& a) {
  const int64_t r = static_cast<int64_t>(a.in[0].shape.size());
  auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  const int64_t start = clampi(attr_int(*a.node, "start", 0));
  for (int64_t i = 0; i < a.out[0].numel; ++i)
    a.out[0].as<int64_t>()[i] = a.in[0].shape[static_cast<size_t>(start + i)];
}

void size_kernel(const KernelArgs& a) { a.out[0].as<int64_t>()[0] = a.in[0].numel; }

void constant_of_shape_kernel(const KernelArgs& a) {
  std::vector<uint8_t> one;
  const DType d = a.out[0].dtype;
  const double v = attr_float(*a.node, "value", 0.0);
  if (is_float(d))
    encode_float(d, v, one);
  else
    encode_int(d, static_cast<int64_t>(v), one);
  auto* out = static_cast<uint8_t*>(a.out[0].data);
  for (int64_t i = 0; i < a.out[0].numel; ++i) std::memcpy(out + i * one.size(), one.data(), one.size());
}

void range_kernel(const KernelArgs& a) {
  dispatch_numeric(a, a.out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T start = static_cast<T>(read_scalar(a, a.in[0]));
    const T delta = static_cast<T>(read_scalar(a, a.in[2]));
    T* y = a.out[0].as<T>();
    for (int64_t i = 0; i < a.out[0].numel; ++i) y[i] = static_cast<T>(start + static_cast<T>(i) * delta);
  });
}

}  // namespace

void register_data(Table& t) {
  for (std::string_view op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}) t[op] = view_kernel;
  t["Transpose"] = transpose_kernel;
  t["Expand"] = expand_kernel;
  t["Tile"] = tile_kernel;
  t["Concat"] = concat_kernel;
  t["Split"] = split_kernel;
  t["Shape"] = shape_kernel;
  t["Size"] = size_kernel;
  t["ConstantOfShape"] = constant_of_shape_kernel;
  t["Range"] = range_kernel;
  register_index(t);
  register_reduce(t);
}

}  // namespace memplan::kernels
