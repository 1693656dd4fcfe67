// Forward tests of the nn CPU kernels through the reference interpreter.
// Expected values come from naive loops written here (direct convolution,
// triple-loop matmul) or from numbers computed by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "compiler/dtype_codec.h"
#include "compiler/op_registry.h"
#include "runtime/interpreter.h"
#include "runtime/kernel.h"

namespace memplan {
namespace {

/// A one-node graph whose inputs are fed as doubles (encoded in their dtype).
struct Net {
  Graph g;
  std::vector<std::pair<TensorId, std::vector<double>>> feeds;
  NodeId node;

  TensorId in(Shape s, std::vector<double> v, DType d = DType::f32, Role role = Role::input) {
    Tensor t;
    t.name = "in" + std::to_string(g.num_tensors());
    t.dtype = d;
    t.shape = std::move(s);
    t.shape_known = true;
    t.role = role;
    TensorId id = g.add_tensor(std::move(t));
    if (role == Role::input) g.inputs.push_back(id);
    feeds.emplace_back(id, std::move(v));
    return id;
  }
  TensorId random(Shape s, std::mt19937& rng, DType d = DType::f32) {
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> v(static_cast<size_t>(num_elements(s)));
    for (double& x : v)
      x = u(rng);
    return in(std::move(s), std::move(v), d);
  }
  /// Adds the node; outputs get inferred types. Returns output ids.
  std::vector<TensorId> op(const std::string& op, std::vector<TensorId> ins, Attrs attrs = {},
                           int nout = 1) {
    Node n;
    n.op = op;
    n.name = "node";
    n.inputs = std::move(ins);
    n.attrs = std::move(attrs);
    for (int k = 0; k < nout; ++k) {
      Tensor t;
      t.name = "out" + std::to_string(k);
      n.outputs.push_back(g.add_tensor(std::move(t)));
    }
    std::vector<TensorType> types = infer_node(g, n);
    for (int k = 0; k < nout; ++k) {
      Tensor& t = g.tensor(n.outputs[static_cast<size_t>(k)]);
      t.dtype = types[static_cast<size_t>(k)].dtype;
      t.shape = types[static_cast<size_t>(k)].shape;
      t.shape_known = true;
    }
    std::vector<TensorId> outs = n.outputs;
    node = g.add_node(std::move(n));
    return outs;
  }
  /// Runs and returns the values of `fetch` as doubles.
  std::vector<std::vector<double>> run(const std::vector<TensorId>& fetch, uint64_t seed = 0,
                                       uint64_t step = 0) {
    Interpreter it(g, seed, step);
    for (auto& [id, v] : feeds) {
      std::vector<uint8_t> b;
      const DType d = g.tensor(id).dtype;
      for (double x : v) {
        if (is_float(d))
          encode_float(d, x, b);
        else
          encode_int(d, static_cast<int64_t>(x), b);
      }
      it.set(id, std::move(b));
    }
    it.run();
    std::vector<std::vector<double>> r;
    for (TensorId t : fetch) {
      const std::vector<uint8_t>& b = it.get(t);
      const DType d = g.tensor(t).dtype;
      std::vector<double> v(static_cast<size_t>(g.tensor(t).numel()));
      for (size_t i = 0; i < v.size(); ++i)
        v[i] = decode_float(d, b.data(), i);
      r.push_back(std::move(v));
    }
    return r;
  }
  const std::vector<double>& value(TensorId t) const {
    for (auto& [id, v] : feeds)
      if (id == t) return v;
    throw std::logic_error("not fed");
  }
};

void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << "element " << i;
}

// ---------------------------------------------------------------- conv

struct Conv2d {
  int64_t N, C, H, W, M, kh, kw, group, sh, sw, ph, pw, dh, dw;
  int64_t OH() const { return (H + 2 * ph - (dh * (kh - 1) + 1)) / sh + 1; }
  int64_t OW() const { return (W + 2 * pw - (dw * (kw - 1) + 1)) / sw + 1; }
};

/// Direct convolution: y[n,m,oh,ow] = b[m] + sum_{c in group(m), i, j}
/// x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] * w[m, c - group start, i, j].
std::vector<double> naive_conv(const Conv2d& p, const std::vector<double>& x,
                               const std::vector<double>& w, const std::vector<double>* b) {
  const int64_t Cg = p.C / p.group, Mg = p.M / p.group, OH = p.OH(), OW = p.OW();
  std::vector<double> y(static_cast<size_t>(p.N * p.M * OH * OW));
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t m = 0; m < p.M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = b ? (*b)[static_cast<size_t>(m)] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < p.kh; ++i)
              for (int64_t j = 0; j < p.kw; ++j) {
                const int64_t h = oh * p.sh - p.ph + i * p.dh, ww = ow * p.sw - p.pw + j * p.dw;
                if (h < 0 || h >= p.H || ww < 0 || ww >= p.W) continue;
                const int64_t ci = (m / Mg) * Cg + c;
                s += x[static_cast<size_t>(((n * p.C + ci) * p.H + h) * p.W + ww)] *
                     w[static_cast<size_t>(((m * Cg + c) * p.kh + i) * p.kw + j)];
              }
          y[static_cast<size_t>(((n * p.M + m) * OH + oh) * OW + ow)] = s;
        }
  return y;
}

class ConvTest : public ::testing::TestWithParam<Conv2d> {};

TEST_P(ConvTest, MatchesDirectConvolution) {
  const Conv2d p = GetParam();
  for (DType d : {DType::f32, DType::f64}) {
    std::mt19937 rng(3);
    Net net;
    TensorId x = net.random({p.N, p.C, p.H, p.W}, rng, d);
    TensorId w = net.random({p.M, p.C / p.group, p.kh, p.kw}, rng, d);
    TensorId b = net.random({p.M}, rng, d);
    auto y = net.op("Conv", {x, w, b},
                    {{"group", p.group},
                     {"strides", std::vector<int64_t>{p.sh, p.sw}},
                     {"pads", std::vector<int64_t>{p.ph, p.pw, p.ph, p.pw}},
                     {"dilations", std::vector<int64_t>{p.dh, p.dw}}});
    ASSERT_EQ(net.g.tensor(y[0]).shape, (Shape{p.N, p.M, p.OH(), p.OW()}));
    // The im2col workspace is one column matrix: C/g * kh * kw * OH * OW
    // elements (these shapes are below the 2 MiB tile cap), none for a
    // pointwise (1x1, stride 1, unpadded) conv.
    const bool pointwise =
        p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
    const int64_t ws = pointwise ? 0
                                 : p.C / p.group * p.kh * p.kw * p.OH() * p.OW() *
                                       static_cast<int64_t>(dtype_size(d));
    EXPECT_EQ(node_workspace_bytes(net.g, net.g.node(net.node)), ws);
    auto got = net.run({y[0]})[0];
    expect_near(got, naive_conv(p, net.value(x), net.value(w), &net.value(b)),
                d == DType::f32 ? 1e-5 : 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Nn, ConvTest,
    ::testing::Values(
        //     N  C  H  W  M kh kw g sh sw ph pw dh dw
        Conv2d{2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // 3x3 same
        Conv2d{1, 4, 7, 7, 6, 3, 3, 2, 2, 2, 1, 1, 1, 1},   // stride 2, groups 2
        Conv2d{2, 2, 8, 7, 3, 3, 2, 1, 1, 2, 0, 1, 2, 2},   // dilation 2, asymmetric
        Conv2d{1, 4, 4, 4, 4, 3, 3, 4, 1, 1, 1, 1, 1, 1},   // depthwise
        Conv2d{2, 3, 4, 5, 2, 1, 1, 1, 1, 1, 0, 0, 1, 1})); // pointwise: no im2col

/// A column matrix above the 2 MiB tile cap is processed in tiles: C = 8,
/// 3x3 kernel -> one column is 8 * 9 * 4 = 288 bytes; 2 MiB / 288 = 7281
/// positions per tile, so the 96 x 96 = 9216 output positions take two tiles
/// (7281 + 1935). Conv, ConvGradInput and ConvGradWeight must all still be
/// exact: Conv against the direct loop, the gradients by adjointness
/// <ConvGradInput(dy, w), x> = <dy, Conv(x, w)> = <ConvGradWeight(dy, x), w>.
TEST(NnKernels, ConvTilesALargeColumnMatrix) {
  //       N  C   H   W  M kh kw g sh sw ph pw dh dw
  Conv2d p{1, 8, 96, 96, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  std::mt19937 rng(9);
  Net net;
  TensorId x = net.random({p.N, p.C, p.H, p.W}, rng);
  TensorId w = net.random({p.M, p.C, p.kh, p.kw}, rng);
  Attrs at{{"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  auto y = net.op("Conv", {x, w}, at);
  EXPECT_EQ(node_workspace_bytes(net.g, net.g.node(net.node)), 288 * 7281);
  auto conv = net.run({y[0]})[0];
  expect_near(conv, naive_conv(p, net.value(x), net.value(w), nullptr), 1e-5);

  std::vector<double> dyv(conv.size());
  std::uniform_real_distribution<double> u(-1, 1);
  for (double& v : dyv)
    v = u(rng);
  double dy_dot_conv = 0;
  for (size_t i = 0; i < conv.size(); ++i)
    dy_dot_conv += dyv[i] * conv[i];

  Net gi;
  TensorId gdy = gi.in({1, 3, 96, 96}, dyv), gw = gi.in({3, 8, 3, 3}, net.value(w));
  Attrs ai = at;
  ai["input_shape"] = std::vector<int64_t>{1, 8, 96, 96};
  auto dx = gi.op("ConvGradInput", {gdy, gw}, ai);
  EXPECT_EQ(node_workspace_bytes(gi.g, gi.g.node(gi.node)), 288 * 7281);
  auto dxv = gi.run({dx[0]})[0];
  double dx_dot_x = 0;
  for (size_t i = 0; i < dxv.size(); ++i)
    dx_dot_x += dxv[i] * net.value(x)[i];
  EXPECT_NEAR(dx_dot_x, dy_dot_conv, 1e-4 * (1 + std::abs(dy_dot_conv)));

  Net gw2;
  TensorId wdy = gw2.in({1, 3, 96, 96}, dyv), wx = gw2.in({1, 8, 96, 96}, net.value(x));
  Attrs aw = at;
  aw["weight_shape"] = std::vector<int64_t>{3, 8, 3, 3};
  auto dw = gw2.op("ConvGradWeight", {wdy, wx}, aw);
  auto dwv = gw2.run({dw[0]})[0];
  double dw_dot_w = 0;
  for (size_t i = 0; i < dwv.size(); ++i)
    dw_dot_w += dwv[i] * net.value(w)[i];
  EXPECT_NEAR(dw_dot_w, dy_dot_conv, 1e-4 * (1 + std::abs(dy_dot_conv)));
}

/// ConvTranspose is the adjoint of Conv: <ConvTranspose(x, w), y> = <x, Conv(y, w)>
/// for the same strides / pads / groups (no bias), checked with the naive conv.
TEST(NnKernels, ConvTransposeIsAdjointOfConv) {
  //       N  C  H  W  M kh kw g sh sw ph pw dh dw
  Conv2d p{2, 4, 7, 7, 6, 3, 3, 2, 2, 2, 1, 1, 1, 1}; // Conv: [2,4,7,7] -> [2,6,4,4]
  std::mt19937 rng(5);
  Net net;
  TensorId x = net.random({p.N, p.M, p.OH(), p.OW()}, rng, DType::f64);
  TensorId w = net.random({p.M, p.C / p.group, p.kh, p.kw}, rng, DType::f64);
  auto y = net.op("ConvTranspose", {x, w},
                  {{"group", p.group},
                   {"strides", std::vector<int64_t>{2, 2}},
                   {"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  // 2 * (4 - 1) + 3 - 2 = 7: ConvTranspose restores Conv's input size.
  ASSERT_EQ(net.g.tensor(y[0]).shape, (Shape{2, 4, 7, 7}));
  auto ct = net.run({y[0]})[0];
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> probe(ct.size());
  for (double& v : probe)
    v = u(rng);
  auto conv = naive_conv(p, probe, net.value(w), nullptr);
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < ct.size(); ++i)
    lhs += ct[i] * probe[i];
  for (size_t i = 0; i < conv.size(); ++i)
    rhs += net.value(x)[i] * conv[i];
  EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::abs(rhs)));
}

// ---------------------------------------------------------------- matmul

TEST(NnKernels, MatMulMatchesNaiveLoopWithBroadcast) {
  // [2,1,3,4] x [3,4,2] -> [2,3,3,2]; batch (b0, b1) reads A[b0, 0] and B[b1].
  std::mt19937 rng(1);
  Net net;
  TensorId a = net.random({2, 1, 3, 4}, rng);
  TensorId b = net.random({3, 4, 2}, rng);
  auto y = net.op("MatMul", {a, b});
  ASSERT_EQ(net.g.tensor(y[0]).shape, (Shape{2, 3, 3, 2}));
  auto got = net.run({y[0]})[0];
  const auto &A = net.value(a), &B = net.value(b);
  std::vector<double> want;
  for (int b0 = 0; b0 < 2; ++b0)
    for (int b1 = 0; b1 < 3; ++b1)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j) {
          double s = 0;
          for (int k = 0; k < 4; ++k)
            s += A[b0 * 12 + i * 4 + k] * B[b1 * 8 + k * 2 + j];
          want.push_back(s);
        }
  expect_near(got, want, 1e-5);
}

TEST(NnKernels, MatMulOneDimensionalOperands) {
  Net net;
  // [2] x [2,2,3]: v @ B[b] -> [2,3]; v = (1, 2).
  TensorId v = net.in({2}, {1, 2}, DType::f64);
  TensorId b = net.in({2, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, DType::f64);
  auto y = net.op("MatMul", {v, b});
  ASSERT_EQ(net.g.tensor(y[0]).shape, (Shape{2, 3}));
  // batch 0: (1*1 + 2*4, 1*2 + 2*5, 1*3 + 2*6) = (9, 12, 15); batch 1: (7+20, 8+22, 9+24).
  expect_near(net.run({y[0]})[0], {9, 12, 15, 27, 30, 33}, 1e-12);
  Net dot;
  TensorId p = dot.in({3}, {1, 2, 3}, DType::f64), q = dot.in({3}, {4, 5, 6}, DType::f64);
  auto s = dot.op("MatMul", {p, q});
  EXPECT_EQ(dot.g.tensor(s[0]).shape, Shape{});
  expect_near(dot.run({s[0]})[0], {32}, 1e-12); // 4 + 10 + 18
}

TEST(NnKernels, GemmTransposesAndBroadcastsC) {
  Net net;
  // A^T with A = [[1,2],[3,4],[5,6]] (3x2) -> [[1,3,5],[2,4,6]]; B = I3; C = [10, 20, 30].
  TensorId a = net.in({3, 2}, {1, 2, 3, 4, 5, 6});
  TensorId b = net.in({3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  TensorId c = net.in({3}, {10, 20, 30});
  auto y = net.op("Gemm", {a, b, c}, {{"transA", int64_t{1}}, {"alpha", 2.0}, {"beta", 0.5}});
  // 2 * A^T + 0.5 * C per row.
  expect_near(net.run({y[0]})[0], {7, 16, 25, 9, 18, 27}, 1e-6);
}

// ---------------------------------------------------------------- softmax

TEST(NnKernels, SoftmaxRowsSumToOneAndAreStable) {
  Net net;
  // Row 1 has logits near 1000: exp would overflow without the max shift.
  TensorId x = net.in({2, 3}, {1, 2, 3, 1000, 1001, 1002}, DType::f32);
  auto y = net.op("Softmax", {x}, {{"axis", int64_t{-1}}});
  auto got = net.run({y[0]})[0];
  // Both rows are (1, e, e^2) / (1 + e + e^2) = (0.09003, 0.24473, 0.66524).
  for (int r = 0; r < 2; ++r) {
    EXPECT_NEAR(got[r * 3] + got[r * 3 + 1] + got[r * 3 + 2], 1.0, 1e-6);
    EXPECT_NEAR(got[r * 3 + 0], 0.0900306, 1e-6);
    EXPECT_NEAR(got[r * 3 + 2], 0.6652410, 1e-6);
  }
  Net ln;
  TensorId x2 = ln.in({2, 3}, {1, 2, 3, 1000, 1001, 1002}, DType::f64);
  auto l = ln.op("LogSoftmax", {x2}, {{"axis", int64_t{1}}});
  auto lg = ln.run({l[0]})[0];
  EXPECT_NEAR(lg[5], std::log(0.6652409557748219), 1e-12);
}

TEST(NnKernels, SoftmaxOnMiddleAxis) {
  std::mt19937 rng(2);
  Net net;
  TensorId x = net.random({2, 3, 4}, rng, DType::f64);
  auto y = net.op("Softmax", {x}, {{"axis", int64_t{1}}});
  auto got = net.run({y[0]})[0];
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 4; ++k) {
      double s = 0;
      for (int c = 0; c < 3; ++c)
        s += got[static_cast<size_t>(n * 12 + c * 4 + k)];
      EXPECT_NEAR(s, 1.0, 1e-12);
    }
}

// ---------------------------------------------------------------- norms

TEST(NnKernels, BatchNormTrainingUpdatesRunningStatisticsInPlace) {
  Net net;
  // One channel, X = 1, 2, 3, 4 (N = 4): mean 2.5, biased var 1.25, unbiased 5/3.
  TensorId x = net.in({4, 1}, {1, 2, 3, 4}, DType::f64);
  TensorId scale = net.in({1}, {2}, DType::f64);
  TensorId bias = net.in({1}, {0.5}, DType::f64);
  TensorId rm = net.in({1}, {1.0}, DType::f64, Role::state);
  TensorId rv = net.in({1}, {2.0}, DType::f64, Role::state);
  auto o = net.op("BatchNormTraining", {x, scale, bias, rm, rv}, {{"momentum", 0.9}}, 5);
  auto r = net.run({o[0], o[1], o[2], o[3], o[4], rm, rv});
  // running_mean' = 1.0 * 0.9 + 2.5 * 0.1 = 1.15
  // running_var'  = 2.0 * 0.9 + (5/3) * 0.1 = 1.9666667 (unbiased, as PyTorch)
  EXPECT_NEAR(r[1][0], 1.15, 1e-12);
  EXPECT_NEAR(r[2][0], 1.8 + 1.0 / 6.0, 1e-12);
  // In place: the state tensors themselves hold the new values.
  EXPECT_NEAR(r[5][0], 1.15, 1e-12);
  EXPECT_NEAR(r[6][0], 1.8 + 1.0 / 6.0, 1e-12);
  const double inv = 1 / std::sqrt(1.25 + 1e-5);
  EXPECT_NEAR(r[3][0], 2.5, 1e-12);
  EXPECT_NEAR(r[4][0], inv, 1e-12);
  // Y = 2 * (x - 2.5) * inv + 0.5, e.g. x = 1: 0.5 - 3 * inv.
  EXPECT_NEAR(r[0][0], 0.5 - 3 * inv, 1e-12);
  EXPECT_NEAR(r[0][3], 0.5 + 3 * inv, 1e-12);
}

TEST(NnKernels, LayerNormalizationSavesMeanAndInvStdDev) {
  Net net;
  // Rows (1, 3) and (2, 6): means 2 and 4, biased variances 1 and 4.
  TensorId x = net.in({2, 2}, {1, 3, 2, 6}, DType::f64);
  TensorId s = net.in({2}, {1, 2}, DType::f64);
  auto o = net.op("LayerNormalization", {x, s}, {{"epsilon", 0.0}, {"stash_type", int64_t{11}}}, 3);
  auto r = net.run({o[0], o[1], o[2]});
  expect_near(r[0], {-1, 2, -1, 2}, 1e-12); // xhat = (-1, 1) per row, times scale (1, 2)
  expect_near(r[1], {2, 4}, 1e-12);
  expect_near(r[2], {1, 0.5}, 1e-12);
}

// ---------------------------------------------------------------- pools

TEST(NnKernels, MaxPoolIndicesAndAveragePoolPadding) {
  Net net;
  // 3x3 plane 1..9, 2x2 windows with stride 1: maxima at the bottom-right corner of each.
  TensorId x = net.in({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto o = net.op("MaxPool", {x}, {{"kernel_shape", std::vector<int64_t>{2, 2}}}, 2);
  auto r = net.run({o[0], o[1]});
  expect_near(r[0], {5, 6, 8, 9}, 0);
  expect_near(r[1], {4, 5, 7, 8}, 0);
  // 3x3 average with pad 1 at the top-left output covers x[0..1][0..1] = 1, 2, 4, 5:
  // sum 12, divided by 4 valid cells (exclude pad) or 9 (count_include_pad).
  for (int64_t include : {0, 1}) {
    Net avg;
    TensorId xa = avg.in({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    auto y = avg.op("AveragePool", {xa},
                    {{"kernel_shape", std::vector<int64_t>{3, 3}},
                     {"pads", std::vector<int64_t>{1, 1, 1, 1}},
                     {"count_include_pad", include}});
    EXPECT_NEAR(avg.run({y[0]})[0][0], include ? 12.0 / 9 : 3.0, 1e-6);
  }
}

// ---------------------------------------------------------------- dropout

TEST(NnKernels, DropoutMaskIsScaledDeterministicAndDropsTheRatio) {
  const int64_t n = 100000;
  std::vector<double> xv(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    xv[static_cast<size_t>(i)] = 1.0 + static_cast<double>(i % 7);
  Net net;
  TensorId x = net.in({n}, xv);
  TensorId ratio = net.in({}, {0.5});
  TensorId train = net.in({}, {1}, DType::boolean);
  auto o = net.op("Dropout", {x, ratio, train}, {}, 2);
  auto a = net.run({o[0], o[1]}, /*seed=*/11, /*step=*/3);
  int64_t dropped = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    ASSERT_NEAR(a[0][i], xv[i] * a[1][i] * 2.0, 1e-6) << i; // Y = X * mask / (1 - 0.5)
    dropped += a[1][i] == 0.0;
  }
  // Binomial(1e5, 0.5): standard deviation of the fraction is 0.0016; 0.01 is 6 sigma.
  EXPECT_NEAR(static_cast<double>(dropped) / static_cast<double>(n), 0.5, 0.01);
  auto again = net.run({o[1]}, 11, 3);
  EXPECT_EQ(again[0], a[1]) << "same (seed, step, rng_key) must give the same mask";
  auto next = net.run({o[1]}, 11, 4);
  int64_t differ = 0;
  for (size_t i = 0; i < xv.size(); ++i)
    differ += next[0][i] != a[1][i];
  // Independent masks differ in about half the positions.
  EXPECT_NEAR(static_cast<double>(differ) / static_cast<double>(n), 0.5, 0.01);
}

TEST(NnKernels, DropoutOutsideTrainingIsIdentity) {
  Net net;
  TensorId x = net.in({4}, {1, -2, 3, -4});
  auto o = net.op("Dropout", {x, net.in({}, {0.5})}, {}, 2);
  auto r = net.run({o[0], o[1]}, 1, 1);
  expect_near(r[0], {1, -2, 3, -4}, 0);
  expect_near(r[1], {1, 1, 1, 1}, 0);
}

// ---------------------------------------------------------------- losses

TEST(NnKernels, SoftmaxCrossEntropyMeanIgnoresIndex) {
  Net net;
  // Row 0: logits (0, 0) -> log_prob -log 2 each; row 1 ignored; row 2: (ln 3, 0) ->
  // softmax (3/4, 1/4), label 1 -> loss log 4.
  TensorId x = net.in({3, 2}, {0, 0, 5, -5, std::log(3.0), 0}, DType::f64);
  TensorId t = net.in({3}, {0, -1, 1}, DType::i64, Role::constant);
  auto o = net.op("SoftmaxCrossEntropyLoss", {x, t}, {{"ignore_index", int64_t{-1}}}, 2);
  auto r = net.run({o[0], o[1]});
  // mean over the 2 counted rows: (log 2 + log 4) / 2 = 1.5 log 2.
  EXPECT_NEAR(r[0][0], 1.5 * std::log(2.0), 1e-12);
  EXPECT_NEAR(r[1][4], std::log(0.75), 1e-12);
  Net nll;
  TensorId lp = nll.in({2, 3}, {-1, -2, -3, -4, -5, -6}, DType::f64);
  TensorId lt = nll.in({2}, {2, 0}, DType::i64, Role::constant);
  TensorId w = nll.in({3}, {1, 1, 2}, DType::f64);
  auto l = nll.op("NegativeLogLikelihoodLoss", {lp, lt, w}, {{"reduction", std::string("sum")}});
  EXPECT_NEAR(nll.run({l[0]})[0][0], 2 * 3 + 1 * 4, 1e-12); // -w[2]*(-3) - w[0]*(-4)
}

} // namespace
} // namespace memplan
