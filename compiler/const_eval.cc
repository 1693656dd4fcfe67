// Constant folding: evaluates a node on the CPU when its inputs are constants.
//
// 1. Shape and Size read only input shapes (folds_from_shapes).
// 2. Every other op decodes its inputs to Vals (double for float dtypes,
//    int64 for integer and bool dtypes).
// 3. Data-movement and creation ops (this file) compute, per output element,
//    the flat index of the input element it copies; math ops live in
//    const_eval_math.cc.
// 4. The result is encoded in the output dtype from infer_node, rounding to
//    nearest even for f32/f16/bf16 and truncating toward zero for integers.
#include "compiler/const_eval.h"

#include <algorithm>
#include <cmath>

#include "compiler/const_eval_impl.h"
#include "compiler/dtype_codec.h"
#include "compiler/ops_common.h"

namespace memplan {
namespace ceval {

int64_t Val::geti(size_t k) const {
  if (!fl) return i[k];
  const double v = f[k];
  if (std::isnan(v)) return 0;
  return static_cast<int64_t>(std::clamp(v, -9.2e18, 9.2e18));
}

Val Val::make(DType d, Shape s) {
  Val v;
  v.dtype = d;
  v.shape = std::move(s);
  v.fl = is_float(d);
  return v;
}

Val load(const Tensor& t) {
  Val v = Val::make(t.dtype, t.shape);
  if (v.fl)
    v.f = tensor_floats(t);
  else
    v.i = tensor_ints(t);
  return v;
}

std::vector<uint8_t> store(const Val& v, DType d) {
  std::vector<uint8_t> out;
  out.reserve(v.size() * dtype_size(d));
  if (v.fl)
    for (double x : v.f) encode_float(d, x, out);
  else
    for (int64_t x : v.i) encode_int(d, x, out);
  return out;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
  return st;
}

namespace {
/// Calls fn(flat_out, multi_index) for every element of shape s in row-major order.
template <class Fn>
void for_each_index(const Shape& s, Fn fn) {
  const int64_t n = num_elements(s);
  std::vector<int64_t> idx(s.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    fn(k, idx);
    for (size_t d = s.size(); d-- > 0;) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
}
}  // namespace

std::vector<int64_t> broadcast_index(const Shape& out, const Shape& in) {
  const std::vector<int64_t> st = strides_of(in);
  const size_t off = out.size() - in.size();
  std::vector<int64_t> r;
  r.reserve(static_cast<size_t>(num_elements(out)));
  for_each_index(out, [&](int64_t, const std::vector<int64_t>& idx) {
    int64_t src = 0;
    for (size_t d = 0; d < in.size(); ++d)
      if (in[d] != 1) src += idx[d + off] * st[d];
    r.push_back(src);
  });
  return r;
}

Val take(const Val& v, const std::vector<int64_t>& idx, Shape s) {
  Val r = Val::make(v.dtype, std::move(s));
  if (v.fl) {
    r.f.reserve(idx.size());
    for (int64_t k : idx) r.f.push_back(v.f[static_cast<size_t>(k)]);
  } else {
    r.i.reserve(idx.size());
    for (int64_t k : idx) r.i.push_back(v.i[static_cast<size_t>(k)]);
  }
  return r;
}

namespace {

[[noreturn]] void fail(const Node& n, const std::string& msg) {
  throw Error(node_desc(n) + ": " + msg);
}

Val gather(const Node& n, const Val& data, const Val& ind, const Shape& out) {
  const int64_t r = static_cast<int64_t>(data.shape.size());
  int64_t axis = attr_int(n, "axis", 0);
  if (axis < 0) axis += r;
  const size_t ax = static_cast<size_t>(axis);
  const int64_t dim = data.shape[ax];
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < ax; ++d) outer *= data.shape[d];
  for (size_t d = ax + 1; d < data.shape.size(); ++d) inner *= data.shape[d];
  std::vector<int64_t> idx;
  for (int64_t o = 0; o < outer; ++o)
    for (size_t j = 0; j < ind.size(); ++j) {
      int64_t k = ind.geti(j);
      if (k < -dim || k >= dim)
        fail(n, "index " + std::to_string(k) + " is out of range for dim " + std::to_string(dim));
      if (k < 0) k += dim;
      for (int64_t q = 0; q < inner; ++q) idx.push_back((o * dim + k) * inner + q);
    }
  return take(data, idx, out);
}

Val concat(const Node& n, const std::vector<Val>& in, const Shape& out) {
  int64_t axis = attr_int(n, "axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(out.size());
  const size_t ax = static_cast<size_t>(axis);
  int64_t outer = 1;
  for (size_t d = 0; d < ax; ++d) outer *= out[d];
  Val r = Val::make(in[0].dtype, out);
  for (int64_t o = 0; o < outer; ++o)
    for (const Val& v : in) {
      const int64_t chunk = v.shape.empty() ? 0 : num_elements(v.shape) / outer;
      for (int64_t q = 0; q < chunk; ++q) {
        const size_t k = static_cast<size_t>(o * chunk + q);
        if (r.fl)
          r.f.push_back(v.getf(k));
        else
          r.i.push_back(v.geti(k));
      }
    }
  return r;
}

Val slice(const Graph& g, const Node& n, const Val& data, const Shape& out) {
  InferCtx c(g, n);
  const ops::SliceParams p = ops::slice_params(c);
  const size_t r = data.shape.size();
  std::vector<int64_t> first(r, 0), step(r, 1);
  for (size_t k = 0; k < p.axes.size(); ++k) {
    const size_t a = static_cast<size_t>(p.axes[k]);
    ops::slice_range(data.shape[a], p.starts[k], p.ends[k], p.steps[k], &first[a]);
    step[a] = p.steps[k];
  }
  const std::vector<int64_t> st = strides_of(data.shape);
  std::vector<int64_t> idx;
  for_each_index(out, [&](int64_t, const std::vector<int64_t>& o) {
    int64_t src = 0;
    for (size_t d = 0; d < r; ++d) src += (first[d] + o[d] * step[d]) * st[d];
    idx.push_back(src);
  });
  return take(data, idx, out);
}

Val transpose(const Node& n, const Val& data, const Shape& out) {
  const size_t r = data.shape.size();
  std::vector<int64_t> perm(r);
  for (size_t d = 0; d < r; ++d) perm[d] = static_cast<int64_t>(r - 1 - d);
  perm = attr_ints(n, "perm", perm);
  const std::vector<int64_t> st = strides_of(data.shape);
  std::vector<int64_t> idx;
  for_each_index(out, [&](int64_t, const std::vector<int64_t>& o) {
    int64_t src = 0;
    for (size_t d = 0; d < r; ++d) src += o[d] * st[static_cast<size_t>(perm[d])];
    idx.push_back(src);
  });
  return take(data, idx, out);
}

Val tile(const Val& data, const Shape& out) {
  const std::vector<int64_t> st = strides_of(data.shape);
  std::vector<int64_t> idx;
  for_each_index(out, [&](int64_t, const std::vector<int64_t>& o) {
    int64_t src = 0;
    for (size_t d = 0; d < o.size(); ++d) src += (o[d] % data.shape[d]) * st[d];
    idx.push_back(src);
  });
  return take(data, idx, out);
}

Val trilu(const Node& n, const std::vector<Val>& in) {
  const Val& x = in[0];
  const int64_t k = in.size() > 1 && in[1].size() == 1 ? in[1].geti(0) : 0;
  const bool upper = attr_int(n, "upper", 1) != 0;
  Val r = x;
  const size_t rk = x.shape.size();
  for_each_index(x.shape, [&](int64_t flat, const std::vector<int64_t>& o) {
    const int64_t diff = o[rk - 1] - o[rk - 2];  // column - row
    const bool keep = upper ? diff >= k : diff <= k;
    if (keep) return;
    if (r.fl)
      r.f[static_cast<size_t>(flat)] = 0;
    else
      r.i[static_cast<size_t>(flat)] = 0;
  });
  return r;
}

Val where(const std::vector<Val>& in, const Shape& out) {
  const std::vector<int64_t> ic = broadcast_index(out, in[0].shape);
  const std::vector<int64_t> ia = broadcast_index(out, in[1].shape);
  const std::vector<int64_t> ib = broadcast_index(out, in[2].shape);
  Val r = Val::make(in[1].dtype, out);
  for (size_t k = 0; k < ic.size(); ++k) {
    const bool c = in[0].geti(static_cast<size_t>(ic[k])) != 0;
    const Val& src = c ? in[1] : in[2];
    const size_t s = static_cast<size_t>(c ? ia[k] : ib[k]);
    if (r.fl)
      r.f.push_back(src.getf(s));
    else
      r.i.push_back(src.geti(s));
  }
  return r;
}

Val range(const std::vector<Val>& in, const TensorType& out) {
  Val r = Val::make(out.dtype, out.shape);
  const int64_t count = out.shape.at(0);
  for (int64_t k = 0; k < count; ++k) {
    if (r.fl)
      r.f.push_back(in[0].getf(0) + static_cast<double>(k) * in[2].getf(0));
    else
      r.i.push_back(in[0].geti(0) + k * in[2].geti(0));
  }
  return r;
}

Val constant_of_shape(const Node& n, const TensorType& out) {
  Val r = Val::make(out.dtype, out.shape);
  const double v = attr_float(n, "value", 0.0);
  const size_t count = static_cast<size_t>(num_elements(out.shape));
  if (r.fl)
    r.f.assign(count, v);
  else
    r.i.assign(count, static_cast<int64_t>(v));
  return r;
}

std::vector<uint8_t> shape_bytes(const Graph& g, const Node& n, const TensorType& out) {
  const Tensor& x = g.tensor(n.inputs.at(0));
  std::vector<uint8_t> b;
  if (n.op == "Size") {
    encode_int(out.dtype, x.numel(), b);
    return b;
  }
  const int64_t r = static_cast<int64_t>(x.shape.size());
  auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  const int64_t start = clampi(attr_int(n, "start", 0)), end = clampi(attr_int(n, "end", r));
  for (int64_t d = start; d < end; ++d) encode_int(out.dtype, x.shape[static_cast<size_t>(d)], b);
  return b;
}

bool is_view_copy(std::string_view op) {
  return op == "Identity" || op == "Reshape" || op == "Flatten" || op == "Squeeze" ||
         op == "Unsqueeze";
}

std::optional<Val> eval_movement(const Graph& g, const Node& n, const std::vector<Val>& in,
                                 const TensorType& out) {
  const std::string& op = n.op;
  if (op == "Gather") return gather(n, in[0], in[1], out.shape);
  if (op == "Concat") return concat(n, in, out.shape);
  if (op == "Slice") return slice(g, n, in[0], out.shape);
  if (op == "Transpose") return transpose(n, in[0], out.shape);
  if (op == "Tile") return tile(in[0], out.shape);
  if (op == "Expand") return take(in[0], broadcast_index(out.shape, in[0].shape), out.shape);
  if (op == "Trilu") return trilu(n, in);
  if (op == "Where") return where(in, out.shape);
  if (op == "Range") return range(in, out);
  if (op == "ConstantOfShape") return constant_of_shape(n, out);
  if (op == "Cast" || op == "CastLike") return in[0];  // store() converts
  return std::nullopt;
}

}  // namespace
}  // namespace ceval

bool folds_from_shapes(std::string_view op) { return op == "Shape" || op == "Size"; }

std::optional<std::vector<std::vector<uint8_t>>> const_eval(const Graph& g, const Node& n,
                                                           const std::vector<TensorType>& out) {
  using namespace ceval;
  if (out.size() != n.outputs.size())
    throw InternalError(node_desc(n) + ": const_eval got " + std::to_string(out.size()) +
                        " output types for " + std::to_string(n.outputs.size()) + " outputs");
  if (folds_from_shapes(n.op)) return std::vector<std::vector<uint8_t>>{shape_bytes(g, n, out[0])};
  if (n.outputs.size() != 1) return std::nullopt;  // every evaluator has one output
  if (is_view_copy(n.op)) {
    const Tensor& x = g.tensor(n.inputs.at(0));
    if (!x.data) throw InternalError(node_desc(n) + ": input '" + x.name + "' has no data");
    return std::vector<std::vector<uint8_t>>{*x.data};
  }
  std::vector<Val> in;
  for (TensorId id : n.inputs) {
    if (!id.valid()) {
      in.push_back(Val::make(DType::i64, {0}));  // omitted optional input
      continue;
    }
    const Tensor& t = g.tensor(id);
    if (!t.data) throw InternalError(node_desc(n) + ": input '" + t.name + "' has no data");
    in.push_back(load(t));
  }
  std::optional<Val> r = eval_movement(g, n, in, out[0]);
  if (!r) r = eval_math(g, n, in, out[0]);
  if (!r) return std::nullopt;
  if (static_cast<int64_t>(r->size()) != num_elements(out[0].shape))
    throw InternalError(node_desc(n) + ": const_eval produced " + std::to_string(r->size()) +
                        " elements for shape " + shape_str(out[0].shape));
  return std::vector<std::vector<uint8_t>>{store(*r, out[0].dtype)};
}

}  // namespace memplan
