#include "compiler/const_eval.h"

#include <gtest/gtest.h>

#include <cmath>

#include "passes/infer_shapes.h"
#include "test/op_test_util.h"

namespace memplan {
namespace {

using testing::expect_error;
using I = std::vector<int64_t>;
using F = std::vector<double>;

/// Builds one node at a time, folds it and turns its output into a constant
/// so the next node can read it.
struct Folder : testing::OneNode {
  TensorId fold(std::string op, std::vector<TensorId> ins, Attrs attrs = {}) {
    const Node& n = node(std::move(op), std::move(ins), std::move(attrs));
    const std::vector<TensorType> types = infer_node(g, n);
    auto r = const_eval(g, n, types);
    if (!r) {
      ADD_FAILURE() << node_desc(n) << " did not fold";
      return n.outputs[0];
    }
    TensorId o = n.outputs[0];
    Tensor& t = g.tensor(o);
    t.dtype = types[0].dtype;
    t.shape = types[0].shape;
    t.shape_known = true;
    t.data = std::make_shared<const std::vector<uint8_t>>(std::move((*r)[0]));
    EXPECT_EQ(static_cast<int64_t>(t.data->size()), t.bytes()) << node_desc(n);
    return o;
  }
  I read_i(TensorId t) { return tensor_ints(g.tensor(t)); }
  F read_f(TensorId t) { return tensor_floats(g.tensor(t)); }
  TensorId scalar(int64_t v) { return ints({v}, DType::i64, Shape{}); }
};

TEST(ConstEvalTest, ShapeGatherUnsqueezeConcatChain) {
  Folder f;
  TensorId x = f.in({2, 5, 7});  // no data: Shape folds from the shape alone
  EXPECT_TRUE(folds_from_shapes("Shape"));
  EXPECT_FALSE(folds_from_shapes("Gather"));
  TensorId s = f.fold("Shape", {x});
  EXPECT_EQ(f.read_i(s), (I{2, 5, 7}));
  TensorId d1 = f.fold("Gather", {s, f.scalar(1)}, {{"axis", int64_t{0}}});
  EXPECT_EQ(f.g.tensor(d1).shape, Shape{});
  TensorId u = f.fold("Unsqueeze", {d1, f.ints({0})});
  TensorId c = f.fold("Concat", {f.ints({-1}), u, f.ints({64})}, {{"axis", int64_t{0}}});
  EXPECT_EQ(f.read_i(c), (I{-1, 5, 64}));
  EXPECT_EQ(f.read_i(f.fold("Size", {x})), (I{70}));
  EXPECT_EQ(f.read_i(f.fold("Shape", {x}, {{"start", int64_t{-2}}})), (I{5, 7}));
  // Out-of-range index: dim 3, index 3.
  expect_error([&] { f.fold("Gather", {s, f.scalar(3)}); }, "index 3 is out of range");
}

TEST(ConstEvalTest, RangeIntAndFloat) {
  Folder f;
  // 2, 5, 8 (11 excluded)
  EXPECT_EQ(f.read_i(f.fold("Range", {f.scalar(2), f.scalar(11), f.scalar(3)})), (I{2, 5, 8}));
  TensorId r = f.fold("Range", {f.floats({1}, DType::f32, Shape{}), f.floats({2}, DType::f32, Shape{}),
                                f.floats({0.25}, DType::f32, Shape{})});
  EXPECT_EQ(f.read_f(r), (F{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(f.read_i(f.fold("Range", {f.scalar(5), f.scalar(0), f.scalar(-2)})), (I{5, 3, 1}));
}

TEST(ConstEvalTest, TriluUpperAndLower) {
  Folder f;
  TensorId m = f.ints({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, DType::i64, Shape{3, 4});
  // upper, k=1: keep column - row >= 1
  EXPECT_EQ(f.read_i(f.fold("Trilu", {m, f.scalar(1)})),
            (I{0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12}));
  // lower, k=-1: keep column - row <= -1
  EXPECT_EQ(f.read_i(f.fold("Trilu", {m, f.scalar(-1)}, {{"upper", int64_t{0}}})),
            (I{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}));
  // default k=0, upper: causal-mask style
  TensorId ones = f.fold("ConstantOfShape", {f.ints({3, 3})}, {{"value", 1.0}});
  EXPECT_EQ(f.read_f(f.fold("Trilu", {ones})), (F{1, 1, 1, 0, 1, 1, 0, 0, 1}));
}

TEST(ConstEvalTest, CastF32ToF16ToF32RoundsToNearestEven) {
  Folder f;
  TensorId x = f.floats({1.0, 0.1, 65504, 70000, 1e-8, 3.14159, -2.5e-5, 2049, 2051});
  TensorId h = f.fold("Cast", {x}, {{"to", std::string("f16")}});
  EXPECT_EQ(f.g.tensor(h).dtype, DType::f16);
  TensorId back = f.fold("Cast", {h}, {{"to", int64_t{1}}});  // ONNX enum 1 = FLOAT
  F v = f.read_f(back);
  EXPECT_EQ(v[0], 1.0);
  EXPECT_EQ(v[1], 0.0999755859375);     // 1638 * 2^-14
  EXPECT_EQ(v[2], 65504.0);             // largest finite half
  EXPECT_TRUE(std::isinf(v[3]));        // overflow
  EXPECT_EQ(v[4], 0.0);                 // below half the smallest subnormal
  EXPECT_EQ(v[5], 3.140625);            // 1608 * 2^-9
  EXPECT_EQ(v[6], -419 * std::ldexp(1.0, -24));  // subnormal: 419.43 units of 2^-24
  EXPECT_EQ(v[7], 2048.0);              // tie -> even mantissa
  EXPECT_EQ(v[8], 2052.0);              // tie -> even mantissa
  EXPECT_EQ(f64_to_f16(1.0), 0x3C00);
  EXPECT_EQ(f64_to_bf16(1.0 + std::ldexp(1.0, -8)), 0x3F80);      // tie -> 1.0
  EXPECT_EQ(f64_to_bf16(1.0 + 3 * std::ldexp(1.0, -8)), 0x3F82);  // tie -> 1.015625
  // Float -> int truncates toward zero; int -> bool is != 0.
  EXPECT_EQ(f.read_i(f.fold("Cast", {f.floats({-1.7, 2.9})}, {{"to", std::string("i32")}})),
            (I{-1, 2}));
  EXPECT_EQ(f.read_i(f.fold("Cast", {f.ints({0, -3})}, {{"to", std::string("bool")}})), (I{0, 1}));
}

TEST(ConstEvalTest, T5RelativePositionBuckets) {
  // n = |Range(-12, 13, 4)| = [12, 8, 4, 0, 4, 8, 12]; max_exact = 2.
  // large = min(2 + i64(log(n / 2) / log(4) * 4), 6):
  //   n=12: log(6)/log(4)*4 = 5.17 -> 5 -> 7 -> 6;  n=8: 4 -> 6;  n=4: 2 -> 4.
  // n=0 takes the exact branch (its large value is log(0) = -inf, discarded).
  Folder f;
  TensorId rp = f.fold("Range", {f.scalar(-12), f.scalar(13), f.scalar(4)});
  TensorId n = f.fold("Abs", {rp});
  EXPECT_EQ(f.read_i(n), (I{12, 8, 4, 0, 4, 8, 12}));
  TensorId small = f.fold("Less", {n, f.scalar(2)});
  TensorId nf = f.fold("Cast", {n}, {{"to", std::string("f32")}});
  TensorId q = f.fold("Div", {nf, f.floats({2}, DType::f32, Shape{})});
  TensorId lg = f.fold("Log", {q});
  TensorId sc = f.fold("Div", {lg, f.floats({std::log(4.0)}, DType::f32, Shape{})});
  TensorId m = f.fold("Mul", {sc, f.floats({4}, DType::f32, Shape{})});
  TensorId mi = f.fold("Cast", {m}, {{"to", std::string("i64")}});
  TensorId large = f.fold("Add", {mi, f.scalar(2)});
  TensorId clamped = f.fold("Min", {large, f.ints({6}, DType::i64, Shape{1})});
  TensorId bucket = f.fold("Where", {small, n, clamped});
  EXPECT_EQ(f.read_i(bucket), (I{6, 6, 4, 0, 4, 6, 6}));
  // Direction: Neg then GreaterOrEqual 0 marks non-positive relative positions.
  TensorId dir = f.fold("GreaterOrEqual", {f.fold("Neg", {rp}), f.scalar(0)});
  EXPECT_EQ(f.read_i(dir), (I{1, 1, 1, 1, 0, 0, 0}));
}

TEST(ConstEvalTest, WhereBroadcasts) {
  Folder f;
  TensorId c = f.ints({1, 0, 0, 1}, DType::boolean, Shape{2, 2});
  TensorId r = f.fold("Where", {c, f.ints({1, 2}), f.scalar(9)});
  EXPECT_EQ(f.read_i(r), (I{1, 9, 9, 2}));
}

TEST(ConstEvalTest, IntegerDivisionTruncatesAndModFollowsDivisor) {
  Folder f;
  TensorId a = f.ints({-7, 7}), b = f.ints({2, -2});
  EXPECT_EQ(f.read_i(f.fold("Div", {a, b})), (I{-3, -3}));
  EXPECT_EQ(f.read_i(f.fold("Mod", {a, b})), (I{1, -1}));  // Python %
  EXPECT_EQ(f.read_i(f.fold("Mod", {a, b}, {{"fmod", int64_t{1}}})), (I{-1, 1}));  // C fmod
  expect_error([&] { f.fold("Div", {a, f.ints({0, 1})}); }, "division by zero");
  EXPECT_EQ(f.read_i(f.fold("Pow", {f.ints({3, -2}), f.ints({3, 2})})), (I{27, 4}));
}

TEST(ConstEvalTest, MovementOps) {
  Folder f;
  TensorId x = f.ints({1, 2, 3, 4, 5, 6}, DType::i64, Shape{2, 3});
  EXPECT_EQ(f.read_i(f.fold("Transpose", {x})), (I{1, 4, 2, 5, 3, 6}));
  // Slice axis 1 from -1 down past the start, step -2: columns 2, 0.
  EXPECT_EQ(f.read_i(f.fold("Slice", {x, f.ints({-1}), f.ints({INT64_MIN}), f.ints({1}),
                                      f.ints({-2})})),
            (I{3, 1, 6, 4}));
  EXPECT_EQ(f.read_i(f.fold("Expand", {f.ints({1, 2}, DType::i64, Shape{2, 1}), f.ints({2, 3})})),
            (I{1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(f.read_i(f.fold("Tile", {f.ints({1, 2}), f.ints({2})})), (I{1, 2, 1, 2}));
  TensorId rs = f.fold("Reshape", {x, f.ints({3, -1})});
  EXPECT_EQ(f.g.tensor(rs).shape, (Shape{3, 2}));
  EXPECT_EQ(f.read_i(rs), (I{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(f.read_i(f.fold("Squeeze", {f.fold("Unsqueeze", {x, f.ints({0})})})),
            (I{1, 2, 3, 4, 5, 6}));
}

TEST(ConstEvalTest, Reductions) {
  Folder f;
  TensorId x = f.ints({1, 2, 3, 4, 5, 6}, DType::i64, Shape{2, 3});
  EXPECT_EQ(f.read_i(f.fold("ReduceSum", {x, f.ints({1})}, {{"keepdims", int64_t{0}}})),
            (I{6, 15}));
  EXPECT_EQ(f.read_i(f.fold("ReduceMax", {x}, {{"axes", I{0}}})), (I{4, 5, 6}));
  EXPECT_EQ(f.read_i(f.fold("ReduceProd", {x}, {{"axes", I{-1}}})), (I{6, 120}));
  TensorId xf = f.floats({1, 2, 3, 4, 5, 6}, DType::f32, Shape{2, 3});
  EXPECT_EQ(f.read_f(f.fold("ReduceMean", {xf}, {{"keepdims", int64_t{0}}})), (F{3.5}));
  EXPECT_EQ(f.read_f(f.fold("ReduceMin", {xf}, {{"axes", I{0}}})), (F{1, 2, 3}));
}

TEST(ConstEvalTest, MathAndSoftmax) {
  Folder f;
  EXPECT_EQ(f.read_f(f.fold("Sqrt", {f.floats({4, 9})})), (F{2, 3}));
  EXPECT_EQ(f.read_f(f.fold("Floor", {f.floats({-1.5, 1.5})})), (F{-2, 1}));
  EXPECT_EQ(f.read_f(f.fold("Sigmoid", {f.floats({0})})), (F{0.5}));
  EXPECT_EQ(f.read_i(f.fold("Not", {f.ints({0, 1}, DType::boolean)})), (I{1, 0}));
  EXPECT_EQ(f.read_i(f.fold("And", {f.ints({0, 1, 1}, DType::boolean),
                                    f.ints({1, 1, 0}, DType::boolean)})),
            (I{0, 1, 0}));
  F sm = f.read_f(f.fold("Softmax", {f.floats({0, 0, 0, 0})}));  // uniform: 0.25 each
  EXPECT_EQ(sm, (F{0.25, 0.25, 0.25, 0.25}));
}

TEST(ConstEvalTest, NoEvaluatorReturnsNullopt) {
  Folder f;
  TensorId x = f.floats(F(9, 1.0), DType::f32, Shape{1, 1, 3, 3});
  TensorId w = f.floats(F(4, 1.0), DType::f32, Shape{1, 1, 2, 2});
  const Node& n = f.node("Conv", {x, w});
  EXPECT_FALSE(const_eval(f.g, n, infer_node(f.g, n)).has_value());
}

}  // namespace
}  // namespace memplan

namespace memplan {
namespace {

// infer_shapes memoizes folds by content: equal op, attributes, input types
// and input bytes share one result; any difference misses.
TEST(FoldCacheTest, EqualInputsShareOneFoldAcrossNodesAndCalls) {
  testing::OneNode f;
  const TensorId a = f.ints({1, 2, 3}), b = f.ints({1, 2, 3}), c = f.ints({9, 9, 9});
  const TensorId p = f.node("Add", {a, a}).outputs[0];
  const TensorId q = f.node("Add", {b, b}).outputs[0];  // same bytes as p's inputs
  const TensorId r = f.node("Add", {a, c}).outputs[0];
  const TensorId s = f.node("Mul", {a, a}).outputs[0];  // same inputs, other op
  f.g.outputs = {p, q, r, s};
  const Graph original = f.g;
  FoldCache cache;
  Graph g = original;
  infer_shapes(g, {.cache = &cache});
  EXPECT_EQ(cache.hits(), 1);
  auto out = [&](const Graph& h, size_t i) { return tensor_ints(h.tensor(h.outputs[i])); };
  EXPECT_EQ(out(g, 0), (I{2, 4, 6}));
  EXPECT_EQ(out(g, 1), (I{2, 4, 6}));
  EXPECT_EQ(out(g, 2), (I{10, 11, 12}));
  EXPECT_EQ(out(g, 3), (I{1, 4, 9}));
  EXPECT_EQ(g.tensor(g.outputs[0]).data, g.tensor(g.outputs[1]).data);
  Graph h = original;  // a second call (another candidate) reuses all four
  infer_shapes(h, {.cache = &cache});
  EXPECT_EQ(cache.hits(), 5);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(out(h, i), out(g, i));
}

}  // namespace
}  // namespace memplan
