// Indexing, reduction and tensor-creation ops: Gather, GatherElements,
// Trilu, Reduce*, Shape, Size, Cast, CastLike, ConstantOfShape, Range.
#include <algorithm>
#include <cmath>

#include "compiler/ops_common.h"

namespace memplan::ops {

std::vector<int64_t> reduce_axes(const InferCtx& c) {
  const int64_t r = c.rank(0);
  auto axes = ints_attr_or_input(c, "axes", 1, std::string(c.node().op + " axes").c_str());
  std::vector<int64_t> ax;
  if (axes && !axes->empty()) {
    ax = norm_axes(c, *axes, r);
  } else if (attr_int(c.node(), "noop_with_empty_axes", 0) == 0) {
    for (int64_t i = 0; i < r; ++i) ax.push_back(i);
  }
  std::sort(ax.begin(), ax.end());
  return ax;
}

namespace {

Types gather(const InferCtx& c) {
  const Shape& data = c.shape(0);
  if (!is_integer(c.dtype(1))) c.fail("indices must have an integer dtype");
  const int64_t axis = norm_axis(c, attr_int(c.node(), "axis", 0), c.rank(0));
  Shape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), c.shape(1).begin(), c.shape(1).end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  return {{c.dtype(0), out}};
}

Types gather_elements(const InferCtx& c) {
  if (c.rank(0) != c.rank(1))
    c.fail("data " + shape_str(c.shape(0)) + " and indices " + shape_str(c.shape(1)) +
           " differ in rank");
  norm_axis(c, attr_int(c.node(), "axis", 0), c.rank(0));
  return {{c.dtype(0), c.shape(1)}};
}

Types trilu(const InferCtx& c) {
  if (c.rank(0) < 2) c.fail("input must have rank >= 2, got " + shape_str(c.shape(0)));
  if (c.has_input(1) && !c.shape(1).empty()) c.fail("k must be a scalar");
  return {{c.dtype(0), c.shape(0)}};
}

Types reduce(const InferCtx& c) {
  const std::vector<int64_t> ax = reduce_axes(c);
  const bool keep = attr_int(c.node(), "keepdims", 1) != 0;
  Shape out;
  for (size_t i = 0; i < c.shape(0).size(); ++i) {
    const bool reduced = std::binary_search(ax.begin(), ax.end(), static_cast<int64_t>(i));
    if (!reduced)
      out.push_back(c.shape(0)[i]);
    else if (keep)
      out.push_back(1);
  }
  return {{c.dtype(0), out}};
}

Types shape_op(const InferCtx& c) {
  const int64_t r = c.rank(0);
  auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  const int64_t start = clampi(attr_int(c.node(), "start", 0));
  const int64_t end = clampi(attr_int(c.node(), "end", r));
  return {{DType::i64, {std::max<int64_t>(end - start, 0)}}};
}

Types size_op(const InferCtx& c) {
  (void)c.input(0);
  return {{DType::i64, {}}};
}

Types cast(const InferCtx& c) {
  if (!c.node().has_attr("to")) c.fail("attribute 'to' is required");
  return {{attr_dtype(c, "to", DType::f32), c.shape(0)}};
}

Types cast_like(const InferCtx& c) { return {{c.dtype(1), c.shape(0)}}; }

Types constant_of_shape(const InferCtx& c) {
  const std::vector<int64_t> shape = require_const_ints(c, 0, "ConstantOfShape shape");
  for (int64_t d : shape)
    if (d < 0) c.fail("shape " + shape_str(shape) + " has a negative dim");
  return {{attr_dtype(c, "dtype", DType::f32), shape}};
}

Types range(const InferCtx& c) {
  require_same_dtype(c, 0, 2);
  double v[3];
  for (size_t i = 0; i < 3; ++i) {
    if (!c.shape(i).empty() && c.shape(i) != Shape{1})
      c.fail("input " + std::to_string(i) + " must be a scalar, got " + shape_str(c.shape(i)));
    auto f = c.const_floats(i);
    if (!f || f->size() != 1) c.fail("Range start/limit/delta are not compile-time constants");
    v[i] = (*f)[0];
  }
  if (v[2] == 0) c.fail("Range delta must not be 0");
  const double n = std::ceil((v[1] - v[0]) / v[2]);
  return {{c.dtype(0), {n > 0 ? static_cast<int64_t>(n) : 0}}};
}

}  // namespace

void register_data(std::vector<OpDef>& t) {
  t.push_back({.name = "Gather", .min_inputs = 2, .max_inputs = 2, .attrs = {"axis"},
               .infer = gather, .flops = zero_flops});
  t.push_back({.name = "GatherElements", .min_inputs = 2, .max_inputs = 2, .attrs = {"axis"},
               .infer = gather_elements, .flops = zero_flops});
  t.push_back({.name = "Trilu", .max_inputs = 2, .attrs = {"upper"}, .infer = trilu,
               .flops = zero_flops});
  for (std::string_view op : {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                              "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum",
                              "ReduceLogSumExp"})
    t.push_back({.name = op, .max_inputs = 2, .attrs = {"axes", "keepdims", "noop_with_empty_axes"},
                 .infer = reduce, .flops = one_per_in});
  t.push_back({.name = "Shape", .attrs = {"start", "end"}, .infer = shape_op, .flops = zero_flops});
  t.push_back({.name = "Size", .infer = size_op, .flops = zero_flops});
  t.push_back({.name = "Cast", .attrs = {"to", "saturate"}, .infer = cast});
  t.push_back({.name = "CastLike", .min_inputs = 2, .max_inputs = 2, .attrs = {"saturate"},
               .infer = cast_like});
  t.push_back({.name = "ConstantOfShape", .attrs = {"value", "dtype"}, .infer = constant_of_shape,
               .flops = zero_flops});
  t.push_back({.name = "Range", .min_inputs = 3, .max_inputs = 3, .infer = range,
               .flops = zero_flops});
}

}  // namespace memplan::ops
