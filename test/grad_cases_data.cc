// Gradient-check cases: data family (views, Transpose, Concat, Split, Slice,
// Gather*, Expand, Tile, Pad, Trilu, Where, Cast, Identity, Reduce*).
// Shape / axes / index inputs are int64 constants. Reduce{Max,Min} inputs are
// uniform random, so ties (the non-differentiable points) do not occur.
#include "test/grad_check.h"

namespace memplan::gradcheck {

namespace {

InputSpec ints(std::vector<double> v, std::optional<Shape> s = {}, DType d = DType::i64) {
  Shape shape = s ? *s : Shape{static_cast<int64_t>(v.size())};
  return constant(std::move(shape), std::move(v), d);
}

}  // namespace

std::vector<GradCase> data_cases() {
  std::vector<GradCase> c;
  // Views.
  c.push_back({.name = "Reshape/2x3x4_to_4x-1", .op = "Reshape", .inputs = {rnd({2, 3, 4}), ints({4, -1})}});
  c.push_back({.name = "Flatten/axis2", .op = "Flatten", .inputs = {rnd({2, 3, 4})}, .attrs = {{"axis", int64_t{2}}}});
  c.push_back({.name = "Squeeze/negative_axis", .op = "Squeeze", .inputs = {rnd({2, 1, 3}), ints({-2})}});
  c.push_back({.name = "Unsqueeze/axes_0_-1", .op = "Unsqueeze", .inputs = {rnd({2, 3}), ints({0, -1})}});
  c.push_back({.name = "Identity/basic", .op = "Identity", .inputs = {rnd({2, 3})}});

  // Movement.
  c.push_back({.name = "Transpose/perm_1_2_0", .op = "Transpose", .inputs = {rnd({2, 3, 4})},
               .attrs = {{"perm", std::vector<int64_t>{1, 2, 0}}}});
  c.push_back({.name = "Transpose/default_reverse", .op = "Transpose", .inputs = {rnd({2, 3})}});
  c.push_back({.name = "Concat/middle_axis", .op = "Concat",
               .inputs = {rnd({2, 2, 3}), rnd({2, 1, 3}), rnd({2, 3, 3})}, .attrs = {{"axis", int64_t{1}}}});
  c.push_back({.name = "Concat/negative_axis", .op = "Concat", .inputs = {rnd({2, 3}), rnd({2, 2})},
               .attrs = {{"axis", int64_t{-1}}}});
  c.push_back({.name = "Split/sizes_1_2_3", .op = "Split", .inputs = {rnd({2, 6}), ints({1, 2, 3})},
               .attrs = {{"axis", int64_t{1}}}, .num_outputs = 3, .loss_outputs = {0, 1, 2}});
  // Output 1 gets no gradient: the rule fills zeros for it.
  c.push_back({.name = "Split/equal_partial_grads", .op = "Split", .inputs = {rnd({6, 2})},
               .num_outputs = 3, .loss_outputs = {0, 2}});
  // Axis 0: start 3, end -5 (clamps to before 0), step -1 -> rows 3,2,1,0;
  // axis 1: 1,3,5.
  c.push_back({.name = "Slice/negative_and_positive_steps", .op = "Slice",
               .inputs = {rnd({4, 6}), ints({3, 1}), ints({-5, 6}), ints({0, 1}), ints({-1, 2})}});
  c.push_back({.name = "Slice/negative_axis_no_steps", .op = "Slice",
               .inputs = {rnd({3, 4}), ints({1}), ints({3}), ints({-1})}});
  // Embedding lookup: rows 0, 2 and 4 repeated, row 3 never read (zero grad).
  c.push_back({.name = "Gather/embedding_repeated", .op = "Gather",
               .inputs = {rnd({5, 3}), ints({0, 2, 2, 4, 0, 1}, Shape{2, 3})}});
  c.push_back({.name = "Gather/axis1_negative_index", .op = "Gather",
               .inputs = {rnd({2, 4}), ints({-1, 1, -1})}, .attrs = {{"axis", int64_t{1}}}});
  c.push_back({.name = "Gather/scalar_index", .op = "Gather", .inputs = {rnd({3, 4}), ints({2}, Shape{})}});
  c.push_back({.name = "GatherElements/axis1_repeats", .op = "GatherElements",
               .inputs = {rnd({3, 3}), ints({0, 0, 2, 1, -1, 1}, Shape{2, 3})},
               .attrs = {{"axis", int64_t{1}}}});
  c.push_back({.name = "GatherElements/axis0", .op = "GatherElements",
               .inputs = {rnd({3, 2}), ints({2, 0, 2, 2}, Shape{2, 2})}});
  c.push_back({.name = "Expand/3x1_to_2x3x4", .op = "Expand", .inputs = {rnd({3, 1}), ints({2, 3, 4})}});
  c.push_back({.name = "Tile/2x3_reps_2x2", .op = "Tile", .inputs = {rnd({2, 3}), ints({2, 2})}});
  c.push_back({.name = "Pad/constant", .op = "Pad", .inputs = {rnd({2, 3}), ints({1, 0, 0, 2})}});
  c.push_back({.name = "Pad/negative_crop_with_value", .op = "Pad",
               .inputs = {rnd({3, 4}), ints({0, -1, 1, 1}), ints({0.5}, Shape{}, DType::f64)}});
  c.push_back({.name = "Pad/axes", .op = "Pad",
               .inputs = {rnd({2, 3}), ints({2, 1}), omitted(), ints({-1})}});
  c.push_back({.name = "Trilu/upper", .op = "Trilu", .inputs = {rnd({2, 3, 4})}});
  c.push_back({.name = "Trilu/lower_k1", .op = "Trilu", .inputs = {rnd({3, 4}), ints({1}, Shape{})},
               .attrs = {{"upper", int64_t{0}}}});

  // Selection and casts.
  c.push_back({.name = "Where/bool_const_broadcast", .op = "Where",
               .inputs = {ints({1, 0, 1, 0, 0, 1}, Shape{2, 3}, DType::boolean), rnd({2, 3}), rnd({3})}});
  c.push_back({.name = "Cast/f64_to_f64", .op = "Cast", .inputs = {rnd({2, 3})},
               .attrs = {{"to", std::string("f64")}}});

  // Reductions: negative axes, keepdims 0 and 1, default (all) axes, opset-11 attribute form.
  c.push_back({.name = "ReduceSum/axis1_keep0", .op = "ReduceSum", .inputs = {rnd({2, 3, 4}), ints({1})},
               .attrs = {{"keepdims", int64_t{0}}}});
  c.push_back({.name = "ReduceSum/all_axes", .op = "ReduceSum", .inputs = {rnd({2, 3})}});
  c.push_back({.name = "ReduceMean/negative_axis_keep1", .op = "ReduceMean",
               .inputs = {rnd({2, 3, 4}), ints({-1})}});
  c.push_back({.name = "ReduceMean/attr_axes_keep0", .op = "ReduceMean", .inputs = {rnd({2, 3, 4})},
               .attrs = {{"axes", std::vector<int64_t>{0, 2}}, {"keepdims", int64_t{0}}}});
  c.push_back({.name = "ReduceMax/axes_0_2_keep0", .op = "ReduceMax", .inputs = {rnd({2, 3, 4}), ints({0, 2})},
               .attrs = {{"keepdims", int64_t{0}}}});
  c.push_back({.name = "ReduceMin/all_keep1", .op = "ReduceMin", .inputs = {rnd({2, 3})}});
  c.push_back({.name = "ReduceSumSquare/axis1_keep1", .op = "ReduceSumSquare",
               .inputs = {rnd({2, 3, 4}), ints({1})}});
  c.push_back({.name = "ReduceL2/negative_axis_keep0", .op = "ReduceL2", .inputs = {rnd({2, 3, 4}), ints({-1})},
               .attrs = {{"keepdims", int64_t{0}}}});
  return c;
}

}  // namespace memplan::gradcheck
