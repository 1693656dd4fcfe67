#include "runtime/cpu/cpu_util.h"

#include <cstring>

#include "compiler/dtype_codec.h"

namespace memplan::kernels {

void fail(const KernelArgs& a, const std::string& msg) {
  throw Error((a.node ? node_desc(*a.node) : std::string("kernel")) + ": " + msg);
}

std::vector<int64_t> read_ints(const KernelArgs& a, const TensorArg& t) {
  if (!t.present()) fail(a, "missing integer input");
  if (is_float(t.dtype)) fail(a, "expected an integer tensor, got " + std::string(dtype_name(t.dtype)));
  std::vector<int64_t> v(static_cast<size_t>(t.numel));
  const auto* b = static_cast<const uint8_t*>(t.data);
  for (size_t i = 0; i < v.size(); ++i) v[i] = decode_int(t.dtype, b, i);
  return v;
}

double read_scalar(const KernelArgs& a, const TensorArg& t) {
  if (!t.present() || t.numel < 1) fail(a, "missing scalar input");
  return decode_float(t.dtype, static_cast<const uint8_t*>(t.data), 0);
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
  return st;
}

std::vector<int64_t> bcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  const std::vector<int64_t> s = strides_of(in);
  const size_t lead = out.size() - in.size();
  for (size_t k = 0; k < in.size(); ++k)
    if (in[k] != 1) st[lead + k] = s[k];
  return st;
}

int64_t norm_axis(const KernelArgs& a, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    fail(a, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace memplan::kernels
