// Shape-manipulation ops (pure data movement, zero FLOPs): Reshape, Flatten,
// Transpose, Concat, Split, Slice, Squeeze, Unsqueeze, Expand, Tile, Pad.
// Where a shape-determining value is an input (opset 13+), it must be a
// compile-time constant; the attribute form of older opsets is also accepted.
#include <algorithm>

#include "compiler/ops_common.h"

namespace memplan::ops {

namespace {

Types reshape(const InferCtx& c) {
  const Shape& in = c.shape(0);
  std::vector<int64_t> target = c.node().has_attr("shape")
                                    ? attr_ints(c.node(), "shape")
                                    : require_const_ints(c, 1, "Reshape target shape");
  const bool allowzero = attr_int(c.node(), "allowzero", 0) != 0;
  Shape out(target.size());
  int64_t infer_at = -1, known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == 0 && !allowzero) {
      if (i >= in.size())
        c.fail("target shape " + shape_str(target) + " copies dim " + std::to_string(i) +
               " of " + shape_str(in) + " which does not exist");
      d = in[i];
    }
    if (d == -1) {
      if (infer_at >= 0) c.fail("target shape " + shape_str(target) + " has more than one -1");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (d < 0) c.fail("target shape " + shape_str(target) + " has invalid dim " + std::to_string(d));
    out[i] = d;
    known *= d;
  }
  const int64_t total = num_elements(in);
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0)
      c.fail("cannot reshape " + shape_str(in) + " to " + shape_str(target));
    out[static_cast<size_t>(infer_at)] = total / known;
  } else if (known != total) {
    c.fail("cannot reshape " + shape_str(in) + " (" + std::to_string(total) + " elements) to " +
           shape_str(out));
  }
  return {{c.dtype(0), out}};
}

Types flatten(const InferCtx& c) {
  const Shape& in = c.shape(0);
  const int64_t r = c.rank(0);
  int64_t axis = attr_int(c.node(), "axis", 1);
  if (axis < -r || axis > r) c.fail("axis " + std::to_string(axis) + " out of range");
  if (axis < 0) axis += r;
  int64_t a = 1, b = 1;
  for (int64_t i = 0; i < r; ++i) (i < axis ? a : b) *= in[static_cast<size_t>(i)];
  return {{c.dtype(0), {a, b}}};
}

Types transpose(const InferCtx& c) {
  const Shape& in = c.shape(0);
  const int64_t r = c.rank(0);
  std::vector<int64_t> perm(static_cast<size_t>(r));
  for (int64_t i = 0; i < r; ++i) perm[static_cast<size_t>(i)] = r - 1 - i;
  perm = attr_ints(c.node(), "perm", perm);
  if (static_cast<int64_t>(perm.size()) != r)
    c.fail("perm " + shape_str(perm) + " does not match rank " + std::to_string(r));
  perm = norm_axes(c, perm, r, "perm");
  Shape out(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = in[static_cast<size_t>(perm[i])];
  return {{c.dtype(0), out}};
}

Types concat(const InferCtx& c) {
  if (!c.node().has_attr("axis")) c.fail("attribute 'axis' is required");
  require_same_dtype(c, 0, c.num_inputs() - 1);
  Shape out = c.shape(0);
  const int64_t axis = norm_axis(c, attr_int(c.node(), "axis", 0), c.rank(0));
  const size_t ax = static_cast<size_t>(axis);
  for (size_t i = 1; i < c.num_inputs(); ++i) {
    const Shape& s = c.shape(i);
    bool ok = s.size() == out.size();
    for (size_t d = 0; ok && d < s.size(); ++d) ok = d == ax || s[d] == out[d];
    if (!ok)
      c.fail("input " + std::to_string(i) + " shape " + shape_str(s) +
             " does not match input 0 shape " + shape_str(c.shape(0)) + " except on axis " +
             std::to_string(axis));
    out[ax] += s[ax];
  }
  return {{c.dtype(0), out}};
}

Types split(const InferCtx& c) {
  const Node& n = c.node();
  const Shape& in = c.shape(0);
  const int64_t axis = norm_axis(c, attr_int(n, "axis", 0), c.rank(0));
  const int64_t dim = in[static_cast<size_t>(axis)];
  const int64_t nout = static_cast<int64_t>(c.num_outputs());
  std::vector<int64_t> sizes;
  if (auto s = ints_attr_or_input(c, "split", 1, "Split sizes")) {
    sizes = *s;
    if (static_cast<int64_t>(sizes.size()) != nout)
      c.fail("split has " + std::to_string(sizes.size()) + " sizes for " + std::to_string(nout) +
             " outputs");
    int64_t sum = 0;
    for (int64_t v : sizes) {
      if (v < 0) c.fail("split sizes must be non-negative");
      sum += v;
    }
    if (sum != dim)
      c.fail("split sizes " + shape_str(sizes) + " do not sum to dim " + std::to_string(dim));
  } else {
    const int64_t parts = attr_int(n, "num_outputs", nout);
    if (parts != nout)
      c.fail("num_outputs " + std::to_string(parts) + " but node has " + std::to_string(nout));
    if (!n.has_attr("num_outputs") && dim % parts != 0)
      c.fail("dim " + std::to_string(dim) + " does not split evenly into " +
             std::to_string(parts));
    // Opset 18: chunks of ceil(dim / n), the last one smaller.
    const int64_t chunk = (dim + parts - 1) / parts;
    for (int64_t i = 0, left = dim; i < parts; ++i, left -= chunk)
      sizes.push_back(std::clamp<int64_t>(left, 0, chunk));
  }
  Types r;
  for (int64_t v : sizes) {
    Shape s = in;
    s[static_cast<size_t>(axis)] = v;
    r.push_back({c.dtype(0), s});
  }
  return r;
}

Types squeeze(const InferCtx& c) {
  const Shape& in = c.shape(0);
  auto axes = ints_attr_or_input(c, "axes", 1, "Squeeze axes");
  Shape out;
  if (!axes) {
    for (int64_t d : in)
      if (d != 1) out.push_back(d);
    return {{c.dtype(0), out}};
  }
  std::vector<int64_t> ax = norm_axes(c, *axes, c.rank(0));
  for (size_t i = 0; i < in.size(); ++i) {
    if (std::find(ax.begin(), ax.end(), static_cast<int64_t>(i)) == ax.end()) {
      out.push_back(in[i]);
      continue;
    }
    if (in[i] != 1)
      c.fail("cannot squeeze axis " + std::to_string(i) + " of " + shape_str(in) +
             ": size is not 1");
  }
  return {{c.dtype(0), out}};
}

Types unsqueeze(const InferCtx& c) {
  const Shape& in = c.shape(0);
  auto axes = ints_attr_or_input(c, "axes", 1, "Unsqueeze axes");
  if (!axes) c.fail("Unsqueeze needs axes");
  const int64_t r = c.rank(0) + static_cast<int64_t>(axes->size());
  std::vector<int64_t> ax = norm_axes(c, *axes, r);
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) {
    if (std::find(ax.begin(), ax.end(), i) != ax.end())
      out.push_back(1);
    else
      out.push_back(in[j++]);
  }
  return {{c.dtype(0), out}};
}

Types expand(const InferCtx& c) {
  const std::vector<int64_t> shape = require_const_ints(c, 1, "Expand target shape");
  return {{c.dtype(0), broadcast(c, c.shape(0), shape)}};
}

Types tile(const InferCtx& c) {
  const std::vector<int64_t> reps = require_const_ints(c, 1, "Tile repeats");
  Shape out = c.shape(0);
  if (reps.size() != out.size())
    c.fail("repeats has " + std::to_string(reps.size()) + " values for rank " +
           std::to_string(out.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (reps[i] < 0) c.fail("repeats must be non-negative");
    out[i] *= reps[i];
  }
  return {{c.dtype(0), out}};
}

Types pad(const InferCtx& c) {
  const Shape& in = c.shape(0);
  const int64_t r = c.rank(0);
  auto pads = ints_attr_or_input(c, "pads", 1, "Pad pads");
  if (!pads) c.fail("Pad needs pads");
  std::vector<int64_t> axes(static_cast<size_t>(r));
  for (int64_t i = 0; i < r; ++i) axes[static_cast<size_t>(i)] = i;
  if (c.has_input(3)) axes = norm_axes(c, require_const_ints(c, 3, "Pad axes"), r);
  if (pads->size() != 2 * axes.size())
    c.fail("pads has " + std::to_string(pads->size()) + " values, expected " +
           std::to_string(2 * axes.size()));
  const std::string mode = attr_str(c.node(), "mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    c.fail("unknown mode '" + mode + "'");
  Shape out = in;
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t& d = out[static_cast<size_t>(axes[i])];
    d += (*pads)[i] + (*pads)[i + axes.size()];
    if (d < 0) c.fail("pads " + shape_str(*pads) + " make a negative dim for " + shape_str(in));
  }
  return {{c.dtype(0), out}};
}

}  // namespace

int64_t slice_range(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t* first) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
  }
  if (first) *first = start;
  const int64_t span = end - start;
  if (step > 0) return span <= 0 ? 0 : (span + step - 1) / step;
  return span >= 0 ? 0 : (-span + (-step) - 1) / (-step);
}

SliceParams slice_params(const InferCtx& c) {
  const Node& n = c.node();
  const int64_t r = c.rank(0);
  SliceParams p;
  p.starts = n.has_attr("starts") ? attr_ints(n, "starts") : require_const_ints(c, 1, "Slice starts");
  p.ends = n.has_attr("ends") ? attr_ints(n, "ends") : require_const_ints(c, 2, "Slice ends");
  if (p.starts.size() != p.ends.size()) c.fail("starts and ends differ in length");
  const size_t k = p.starts.size();
  if (auto a = ints_attr_or_input(c, "axes", 3, "Slice axes")) {
    p.axes = *a;
  } else {
    for (size_t i = 0; i < k; ++i) p.axes.push_back(static_cast<int64_t>(i));
  }
  p.axes = norm_axes(c, p.axes, r);
  p.steps = c.has_input(4) ? require_const_ints(c, 4, "Slice steps") : std::vector<int64_t>(k, 1);
  if (p.axes.size() != k || p.steps.size() != k)
    c.fail("starts, ends, axes and steps differ in length");
  for (int64_t s : p.steps)
    if (s == 0) c.fail("slice step must not be 0");
  return p;
}

namespace {
Types slice(const InferCtx& c) {
  SliceParams p = slice_params(c);
  Shape out = c.shape(0);
  for (size_t i = 0; i < p.axes.size(); ++i) {
    int64_t& d = out[static_cast<size_t>(p.axes[i])];
    d = slice_range(d, p.starts[i], p.ends[i], p.steps[i], nullptr);
  }
  return {{c.dtype(0), out}};
}
}  // namespace

void register_shape(std::vector<OpDef>& t) {
  auto add = [&](OpDef d) {
    d.flops = zero_flops;
    t.push_back(std::move(d));
  };
  add({.name = "Reshape", .max_inputs = 2, .attrs = {"allowzero", "shape"}, .infer = reshape});
  add({.name = "Flatten", .attrs = {"axis"}, .infer = flatten});
  add({.name = "Transpose", .attrs = {"perm"}, .infer = transpose});
  add({.name = "Concat", .max_inputs = -1, .attrs = {"axis"}, .infer = concat});
  add({.name = "Split", .max_inputs = 2, .max_outputs = -1,
       .attrs = {"axis", "split", "num_outputs"}, .infer = split});
  add({.name = "Slice", .max_inputs = 5, .attrs = {"starts", "ends", "axes"}, .infer = slice});
  add({.name = "Squeeze", .max_inputs = 2, .attrs = {"axes"}, .infer = squeeze});
  add({.name = "Unsqueeze", .max_inputs = 2, .attrs = {"axes"}, .infer = unsqueeze});
  add({.name = "Expand", .min_inputs = 2, .max_inputs = 2, .infer = expand});
  add({.name = "Tile", .min_inputs = 2, .max_inputs = 2, .infer = tile});
  add({.name = "Pad", .max_inputs = 4, .attrs = {"mode", "pads", "value"}, .infer = pad});
}

}  // namespace memplan::ops
