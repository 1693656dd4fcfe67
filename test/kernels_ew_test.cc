// Forward CPU kernels of the elementwise and data families, run as one-node
// graphs through the reference interpreter. Expected values are computed by
// hand (explained in comments) or by an independent loop in the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>

#include "compiler/dtype_codec.h"
#include "runtime/interpreter.h"
#include "runtime/kernel.h"
#include "test/op_test_util.h"

namespace memplan {
namespace {

using testing::OneNode;

/// Builds one node over constant inputs, infers its outputs, runs it.
struct K {
  OneNode b{20};
  std::vector<TensorId> outs;
  std::unique_ptr<Interpreter> it;

  TensorId f(Shape s, std::vector<double> v, DType d = DType::f32) { return b.floats(std::move(v), d, s); }
  TensorId i(Shape s, std::vector<int64_t> v, DType d = DType::i64) { return b.ints(std::move(v), d, s); }

  void run(const std::string& op, std::vector<TensorId> ins, Attrs attrs = {}, int nout = 1) {
    outs = b.node(op, std::move(ins), std::move(attrs), nout).outputs;
    const Node& n = b.g.node(NodeId(static_cast<uint32_t>(b.g.num_nodes() - 1)));
    std::vector<TensorType> types = infer_node(b.g, n);
    for (size_t k = 0; k < outs.size(); ++k) {
      Tensor& t = b.g.tensor(outs[k]);
      t.dtype = types[k].dtype;
      t.shape = types[k].shape;
      t.shape_known = true;
    }
    it = std::make_unique<Interpreter>(b.g);
    it->run();
  }
  /// Output k decoded as doubles (integers and bools exactly).
  std::vector<double> out(size_t k = 0) const {
    const Tensor& t = b.g.tensor(outs[k]);
    const std::vector<uint8_t>& bytes = it->get(outs[k]);
    std::vector<double> v;
    for (int64_t e = 0; e < t.numel(); ++e)
      v.push_back(is_float(t.dtype) ? decode_float(t.dtype, bytes.data(), static_cast<size_t>(e))
                                    : static_cast<double>(decode_int(t.dtype, bytes.data(), static_cast<size_t>(e))));
    return v;
  }
  Shape shape(size_t k = 0) const { return b.g.tensor(outs[k]).shape; }
  DType dtype(size_t k = 0) const { return b.g.tensor(outs[k]).dtype; }
};

std::vector<double> iota(int64_t n, double start = 0, double step = 1) {
  std::vector<double> v;
  for (int64_t k = 0; k < n; ++k) v.push_back(start + step * static_cast<double>(k));
  return v;
}

TEST(KernelsEw, AddBroadcast3dWith2d) {
  // [2,3,4] + [3,1]: b[j,0] is added along every i and k.
  K k;
  const std::vector<double> a = iota(24, 0.5), b = {10, 20, 30};
  k.run("Add", {k.f({2, 3, 4}, a), k.f({3, 1}, b)});
  ASSERT_EQ(k.shape(), (Shape{2, 3, 4}));
  const std::vector<double> y = k.out();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int l = 0; l < 4; ++l) EXPECT_EQ(y[i * 12 + j * 4 + l], a[i * 12 + j * 4 + l] + b[j]);
}

TEST(KernelsEw, SubBroadcastBothSidesF64) {
  // [2,1] - [1,3] -> [2,3]: y[i][j] = a[i] - b[j].
  K k;
  k.run("Sub", {k.f({2, 1}, {1, 2}, DType::f64), k.f({1, 3}, {0.5, 0.25, 4}, DType::f64)});
  EXPECT_EQ(k.out(), (std::vector<double>{0.5, 0.75, -3, 1.5, 1.75, -2}));
}

TEST(KernelsEw, Int64IndexMath) {
  // C semantics for Div (truncate toward zero); Mod takes the divisor's sign
  // (fmod=0) or the dividend's (fmod=1).
  const std::vector<int64_t> a = {-7, 7, -7, 9}, b = {2, -2, -2, 3};
  K add, mul, div, mod, fmod;
  add.run("Add", {add.i({4}, a), add.i({4}, b)});
  EXPECT_EQ(add.out(), (std::vector<double>{-5, 5, -9, 12}));
  mul.run("Mul", {mul.i({4}, a), mul.i({}, {3})});
  EXPECT_EQ(mul.out(), (std::vector<double>{-21, 21, -21, 27}));
  div.run("Div", {div.i({4}, a), div.i({4}, b)});
  EXPECT_EQ(div.out(), (std::vector<double>{-3, -3, 3, 3}));
  mod.run("Mod", {mod.i({4}, a), mod.i({4}, b)});
  EXPECT_EQ(mod.out(), (std::vector<double>{1, -1, -1, 0}));
  fmod.run("Mod", {fmod.i({4}, a), fmod.i({4}, b)}, {{"fmod", int64_t{1}}});
  EXPECT_EQ(fmod.out(), (std::vector<double>{-1, 1, -1, 0}));
  K bad;
  testing::expect_error([&] { bad.run("Div", {bad.i({1}, {1}), bad.i({1}, {0})}); }, "division by zero");
}

TEST(KernelsEw, UnaryMathF32AndF64) {
  const std::vector<double> x = {-2, -0.5, 0, 0.5, 3};
  for (DType d : {DType::f32, DType::f64}) {
    const double tol = d == DType::f32 ? 1e-6 : 1e-14;
    K s, r, e, lr;
    s.run("Sigmoid", {s.f({5}, x, d)});
    r.run("Relu", {r.f({5}, x, d)});
    e.run("Erf", {e.f({5}, x, d)});
    lr.run("LeakyRelu", {lr.f({5}, x, d)}, {{"alpha", 0.1}});
    for (size_t j = 0; j < x.size(); ++j) {
      EXPECT_NEAR(s.out()[j], 1 / (1 + std::exp(-x[j])), tol);
      EXPECT_EQ(r.out()[j], std::max(x[j], 0.0));
      EXPECT_NEAR(e.out()[j], std::erf(x[j]), tol);
      EXPECT_NEAR(lr.out()[j], x[j] > 0 ? x[j] : 0.1 * x[j], tol);
    }
  }
}

TEST(KernelsEw, GeluExactAndTanh) {
  // Gelu(1) = Phi(1) = 0.8413447460685429; tanh form: 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)).
  K a, t;
  a.run("Gelu", {a.f({2}, {1, -1}, DType::f64)});
  t.run("Gelu", {t.f({1}, {1}, DType::f64)}, {{"approximate", std::string("tanh")}});
  EXPECT_NEAR(a.out()[0], 0.8413447460685429, 1e-15);
  EXPECT_NEAR(a.out()[1], -1 + 0.8413447460685429, 1e-15);  // Gelu(-x) = Gelu(x) - x
  EXPECT_NEAR(t.out()[0], 0.5 * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * 1.044715)), 1e-15);
}

TEST(KernelsEw, ComparisonsLogicAndWhere) {
  K lt, eq, andk, notk, w;
  lt.run("Less", {lt.i({3}, {1, 5, 3}), lt.i({}, {3})});
  EXPECT_EQ(lt.dtype(), DType::boolean);
  EXPECT_EQ(lt.out(), (std::vector<double>{1, 0, 0}));
  eq.run("Equal", {eq.f({2, 1}, {1, 2}), eq.f({3}, {2, 1, 2})});
  EXPECT_EQ(eq.out(), (std::vector<double>{0, 1, 0, 1, 0, 1}));
  andk.run("And", {andk.i({4}, {0, 1, 0, 1}, DType::boolean), andk.i({4}, {0, 0, 1, 1}, DType::boolean)});
  EXPECT_EQ(andk.out(), (std::vector<double>{0, 0, 0, 1}));
  notk.run("Not", {notk.i({2}, {0, 1}, DType::boolean)});
  EXPECT_EQ(notk.out(), (std::vector<double>{1, 0}));
  // Where([2,1] cond, [3] x, [] y) -> [2,3]: row 0 takes x, row 1 takes y.
  w.run("Where", {w.i({2, 1}, {1, 0}, DType::boolean), w.f({3}, {1, 2, 3}), w.f({}, {-1})});
  EXPECT_EQ(w.out(), (std::vector<double>{1, 2, 3, -1, -1, -1}));
}

TEST(KernelsEw, VariadicAndClipAndPow) {
  K mx, sum, clip, pw;
  mx.run("Max", {mx.f({3}, {1, 5, -2}), mx.f({2, 1}, {0, 3}), mx.f({}, {-1})});
  EXPECT_EQ(mx.out(), (std::vector<double>{1, 5, 0, 3, 5, 3}));
  sum.run("Sum", {sum.f({2}, {1, 2}), sum.f({2}, {10, 20}), sum.f({1}, {100})});
  EXPECT_EQ(sum.out(), (std::vector<double>{111, 122}));
  clip.run("Clip", {clip.f({4}, {-3, -0.5, 0.5, 3}), clip.f({}, {-1}), clip.f({}, {1})});
  EXPECT_EQ(clip.out(), (std::vector<double>{-1, -0.5, 0.5, 1}));
  pw.run("Pow", {pw.f({3}, {2, 3, 4}), pw.i({}, {2})});  // integer exponent
  EXPECT_EQ(pw.out(), (std::vector<double>{4, 9, 16}));
}

TEST(KernelsEw, CastF32ToF16ToF32Rounds) {
  // f16 keeps 10 mantissa bits (ulp at 1 is 2^-10). 1 + 2^-11 is a tie between
  // 1 and 1 + 2^-10: nearest-even gives 1. 1 + 3*2^-11 ties between 1 + 2^-10
  // (odd) and 1 + 2^-9 (even): gives 1 + 2^-9. 65520 ties between the largest
  // finite f16 65504 (odd) and 65536 (even, overflow): gives inf. 1e-8 is
  // below half the smallest subnormal 2^-24: gives 0. 0.1 -> 0.0999755859375.
  const std::vector<double> x = {1 + std::ldexp(1, -11), 1 + 3 * std::ldexp(1, -11), 65520, 1e-8, 0.1};
  K h;
  h.run("Cast", {h.f({5}, x)}, {{"to", std::string("f16")}});
  ASSERT_EQ(h.dtype(), DType::f16);
  K back;
  std::vector<uint8_t> bytes = h.it->get(h.outs[0]);
  back.run("Cast", {back.b.cst(bytes, DType::f16, {5})}, {{"to", std::string("f32")}});
  const std::vector<double> y = back.out();
  EXPECT_EQ(y[0], 1.0);
  EXPECT_EQ(y[1], 1 + std::ldexp(1, -9));
  EXPECT_TRUE(std::isinf(y[2]));
  EXPECT_EQ(y[3], 0.0);
  EXPECT_EQ(y[4], 0.0999755859375);
}

TEST(KernelsEw, CastIntegersAndBool) {
  K fi, wrap, tb, fb;
  fi.run("Cast", {fi.f({3}, {-2.7, 2.7, 0.2})}, {{"to", std::string("i32")}});  // truncation
  EXPECT_EQ(fi.out(), (std::vector<double>{-2, 2, 0}));
  wrap.run("Cast", {wrap.i({2}, {300, -1})}, {{"to", std::string("u8")}});  // 300 mod 256 = 44
  EXPECT_EQ(wrap.out(), (std::vector<double>{44, 255}));
  tb.run("Cast", {tb.f({3}, {0, -0.5, 2})}, {{"to", std::string("bool")}});
  EXPECT_EQ(tb.out(), (std::vector<double>{0, 1, 1}));
  fb.run("CastLike", {fb.i({2}, {1, 0}, DType::boolean), fb.f({1}, {0}, DType::bf16)});
  EXPECT_EQ(fb.dtype(), DType::bf16);
  EXPECT_EQ(fb.out(), (std::vector<double>{1, 0}));
}

TEST(KernelsEw, ViewKernelsSkipCopyOnEqualPointers) {
  KernelFn reshape = find_kernel("Reshape");
  ASSERT_NE(reshape, nullptr);
  Node n;
  n.op = "Reshape";
  n.name = "r";
  float buf[4] = {1, 2, 3, 4}, other[4] = {0, 0, 0, 0};
  KernelArgs a;
  a.node = &n;
  a.in.push_back({buf, DType::f32, {2, 2}, 4});
  a.in.push_back({});  // shape input: not read
  a.out.push_back({buf, DType::f32, {4}, 4});
  reshape(a);  // same storage: nothing to do
  EXPECT_EQ(buf[3], 4);
  a.out[0].data = other;
  reshape(a);  // distinct storage: copies
  EXPECT_EQ(std::vector<float>(other, other + 4), (std::vector<float>{1, 2, 3, 4}));
  // Through the interpreter, Squeeze shares its input's buffer.
  K k;
  k.run("Squeeze", {k.f({1, 3}, {7, 8, 9}), k.i({1}, {0})});
  EXPECT_EQ(k.out(), (std::vector<double>{7, 8, 9}));
}

TEST(KernelsData, GatherNegativeIndicesAndErrors) {
  // data [3,2] = [[0,1],[2,3],[4,5]]; indices {-1, 0} -> rows 2 and 0.
  K k;
  k.run("Gather", {k.f({3, 2}, iota(6)), k.i({2}, {-1, 0})});
  EXPECT_EQ(k.out(), (std::vector<double>{4, 5, 0, 1}));
  K ax1;  // axis 1 with [2,2] indices: out [3,2,2], out[i][a][b] = data[i][idx[a][b]]
  ax1.run("Gather", {ax1.f({3, 2}, iota(6)), ax1.i({2, 2}, {1, 0, -1, 1})}, {{"axis", int64_t{1}}});
  EXPECT_EQ(ax1.out(), (std::vector<double>{1, 0, 1, 1, 3, 2, 3, 3, 5, 4, 5, 5}));
  K bad;
  testing::expect_error([&] { bad.run("Gather", {bad.f({3}, {1, 2, 3}), bad.i({1}, {3})}); }, "out of range");
}

TEST(KernelsData, GatherElements) {
  // axis 1: out[i][j] = data[i][idx[i][j]] with data [[0,1,2],[3,4,5]].
  K k;
  k.run("GatherElements", {k.f({2, 3}, iota(6)), k.i({2, 2}, {2, 0, -1, 1})}, {{"axis", int64_t{1}}});
  EXPECT_EQ(k.out(), (std::vector<double>{2, 0, 5, 4}));
}

TEST(KernelsData, SliceNegativeSteps) {
  // [5] = 0..4, start -1 (=4), end -6 (=-1, clamps to "before 0"), step -2 -> 4, 2, 0.
  K k;
  k.run("Slice", {k.f({5}, iota(5)), k.i({1}, {-1}), k.i({1}, {-6}), k.i({1}, {0}), k.i({1}, {-2})});
  EXPECT_EQ(k.out(), (std::vector<double>{4, 2, 0}));
  // 2-D, axis -1 only, from 1 to INT64_MAX with step 2: columns 1 and 3 of [2,4].
  K m;
  m.run("Slice", {m.f({2, 4}, iota(8)), m.i({1}, {1}), m.i({1}, {INT64_MAX}), m.i({1}, {-1}), m.i({1}, {2})});
  EXPECT_EQ(m.out(), (std::vector<double>{1, 3, 5, 7}));
}

TEST(KernelsData, TransposeConcatSplit) {
  // Transpose [2,3,4] by perm {2,0,1}: y[l][i][j] = x[i][j][l], checked by loop.
  K t;
  const std::vector<double> x = iota(24);
  t.run("Transpose", {t.f({2, 3, 4}, x)}, {{"perm", std::vector<int64_t>{2, 0, 1}}});
  ASSERT_EQ(t.shape(), (Shape{4, 2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int l = 0; l < 4; ++l) EXPECT_EQ(t.out()[l * 6 + i * 3 + j], x[i * 12 + j * 4 + l]);
  // Concat along the middle axis of [2,1,2] and [2,2,2].
  K c;
  c.run("Concat", {c.f({2, 1, 2}, {0, 1, 2, 3}), c.f({2, 2, 2}, iota(8, 10))}, {{"axis", int64_t{-2}}});
  EXPECT_EQ(c.out(), (std::vector<double>{0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17}));
  // Split [2,3] along axis 1 into sizes 1 and 2.
  K s;
  s.run("Split", {s.f({2, 3}, iota(6)), s.i({2}, {1, 2})}, {{"axis", int64_t{1}}}, 2);
  EXPECT_EQ(s.out(0), (std::vector<double>{0, 3}));
  EXPECT_EQ(s.out(1), (std::vector<double>{1, 2, 4, 5}));
}

TEST(KernelsData, ExpandTilePadTrilu) {
  K e;
  e.run("Expand", {e.f({2, 1}, {1, 2}), e.i({2}, {2, 3})});
  EXPECT_EQ(e.out(), (std::vector<double>{1, 1, 1, 2, 2, 2}));
  K t;  // Tile [1,2] = {1,2} by {2,2} -> [2,4]
  t.run("Tile", {t.f({1, 2}, {1, 2}), t.i({2}, {2, 2})});
  EXPECT_EQ(t.out(), (std::vector<double>{1, 2, 1, 2, 1, 2, 1, 2}));
  // Pad [3] = {1,2,3} by (2 before, 1 after) in three modes.
  const std::pair<std::string, std::vector<double>> modes[] = {
      {"constant", {9, 9, 1, 2, 3, 9}}, {"edge", {1, 1, 1, 2, 3, 3}}, {"reflect", {3, 2, 1, 2, 3, 2}}};
  for (const auto& [mode, want] : modes) {
    K p;
    p.run("Pad", {p.f({3}, {1, 2, 3}), p.i({2}, {2, 1}), p.f({}, {9})}, {{"mode", mode}});
    EXPECT_EQ(p.out(), want) << mode;
  }
  K crop;  // negative pads crop: drop 1 in front, add 1 zero behind
  crop.run("Pad", {crop.f({3}, {1, 2, 3}), crop.i({2}, {-1, 1})});
  EXPECT_EQ(crop.out(), (std::vector<double>{2, 3, 0}));
  K u;  // upper with k = 1 on [3,3]: keep j - i >= 1
  u.run("Trilu", {u.f({3, 3}, iota(9, 1)), u.i({}, {1})});
  EXPECT_EQ(u.out(), (std::vector<double>{0, 2, 3, 0, 0, 6, 0, 0, 0}));
  K l;  // lower, k = 0
  l.run("Trilu", {l.f({2, 2}, {1, 2, 3, 4})}, {{"upper", int64_t{0}}});
  EXPECT_EQ(l.out(), (std::vector<double>{1, 0, 3, 4}));
}

TEST(KernelsData, Reductions) {
  // x [2,3,2] = 0..11; sum over axis 1 keepdims 0: out[i][k] = sum_j x[i][j][k].
  const std::vector<double> x = iota(12);
  K s;
  s.run("ReduceSum", {s.i({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}), s.i({1}, {1})},
        {{"keepdims", int64_t{0}}});
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.out(), (std::vector<double>{0 + 2 + 4, 1 + 3 + 5, 6 + 8 + 10, 7 + 9 + 11}));
  K mean;  // all axes: mean of 0..11 = 5.5
  mean.run("ReduceMean", {mean.f({2, 3, 2}, x, DType::f64)});
  EXPECT_EQ(mean.out(), (std::vector<double>{5.5}));
  K mx;  // axis -1 (attr form): max of each pair
  mx.run("ReduceMax", {mx.f({2, 3, 2}, x)}, {{"axes", std::vector<int64_t>{-1}}});
  EXPECT_EQ(mx.out(), (std::vector<double>{1, 3, 5, 7, 9, 11}));
  K l2;  // ||(3,4)|| = 5
  l2.run("ReduceL2", {l2.f({1, 2}, {3, 4}), l2.i({1}, {1})});
  EXPECT_EQ(l2.out(), (std::vector<double>{5}));
  K noop;  // empty axes with noop_with_empty_axes = 1 copies the input
  noop.run("ReduceSum", {noop.f({2}, {1, 2}), noop.i({0}, {})}, {{"noop_with_empty_axes", int64_t{1}}});
  EXPECT_EQ(noop.out(), (std::vector<double>{1, 2}));
}

TEST(KernelsData, CreationOps) {
  K r, sh, sz, c;
  r.run("Range", {r.i({}, {10}), r.i({}, {1}), r.i({}, {-3})});  // 10, 7, 4
  EXPECT_EQ(r.out(), (std::vector<double>{10, 7, 4}));
  sh.run("Shape", {sh.f({2, 3, 4}, iota(24))}, {{"start", int64_t{-2}}});
  EXPECT_EQ(sh.out(), (std::vector<double>{3, 4}));
  sz.run("Size", {sz.f({2, 3}, iota(6))});
  EXPECT_EQ(sz.out(), (std::vector<double>{6}));
  c.run("ConstantOfShape", {c.i({2}, {2, 2})}, {{"value", 1.5}, {"dtype", std::string("f64")}});
  EXPECT_EQ(c.out(), (std::vector<double>{1.5, 1.5, 1.5, 1.5}));
}

TEST(KernelsData, BackwardScatterOps) {
  // GatherGrad with repeated index 1: dX row 1 = dY row 0 + dY row 2.
  K g;
  g.run("GatherGrad", {g.f({3, 2}, {1, 2, 3, 4, 5, 6}, DType::f64), g.i({3}, {1, 0, -2}), g.i({2}, {3, 2})});
  EXPECT_EQ(g.out(), (std::vector<double>{3, 4, 6, 8, 0, 0}));
  // SliceGrad of the step -2 slice above: dX[4] = 1, dX[2] = 2, dX[0] = 3.
  K s;
  s.run("SliceGrad", {s.f({3}, {1, 2, 3}), s.i({1}, {5}), s.i({1}, {-1}), s.i({1}, {-6}), s.i({1}, {0}),
                      s.i({1}, {-2})});
  EXPECT_EQ(s.out(), (std::vector<double>{3, 0, 2, 0, 1}));
}

TEST(KernelsEw, RegisteredOpsHaveKernels) {
  // Every op this family claims (including backward ops) is in the kernel table.
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log",
                         "Tanh", "Sigmoid", "Erf", "Relu", "LeakyRelu", "Clip", "Floor", "Ceil", "Min", "Max",
                         "Sum", "Mod", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not",
                         "And", "Or", "Xor", "Where", "Cast", "CastLike", "Identity", "Gelu", "Reshape",
                         "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
                         "GatherElements", "Expand", "Tile", "Pad", "Trilu", "Range", "Shape", "Size",
                         "ConstantOfShape", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                         "ReduceSumSquare", "ReduceL2", "ReluGrad", "LeakyReluGrad", "SigmoidGrad", "TanhGrad",
                         "ErfGrad", "GeluGrad", "ClipGrad", "SliceGrad", "GatherGrad", "GatherElementsGrad"}) {
    EXPECT_NE(find_kernel(op), nullptr) << op;
    EXPECT_NE(find_op(op), nullptr) << op;
  }
}

}  // namespace
}  // namespace memplan
