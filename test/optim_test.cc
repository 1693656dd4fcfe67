// Optimizer ops (compiler/ops_optim.cc, runtime/cpu/optim.cc): three steps of
// each torch.optim rule on a 2-element parameter, run on the reference
// interpreter with the in-place storage sharing the runtime uses.
//
// Every case starts from p0 = [1, -2] with lr 0.1 and the gradients
//   g1 = [0.5, 1], g2 = [-1, 2], g3 = [0.25, -0.5]
// and the expected parameters are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "compiler/dtype_codec.h"
#include "compiler/op_registry.h"
#include "runtime/interpreter.h"
#include "runtime/kernel.h"
#include "test/op_test_util.h"

namespace memplan {
namespace {

using testing::expect_error;

const std::vector<std::vector<double>> kGrads = {{0.5, 1}, {-1, 2}, {0.25, -0.5}};

std::vector<uint8_t> encode(DType d, const std::vector<double>& v) {
  std::vector<uint8_t> b;
  for (double x : v)
    encode_float(d, x, b);
  return b;
}

std::vector<double> decode(DType d, const std::vector<uint8_t>& b) {
  std::vector<double> v(b.size() / dtype_size(d));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = decode_float(d, b.data(), i);
  return v;
}

/// A graph holding one optimizer step: the step counter, its increment, and
/// one update node over a parameter [2] with gradient input "g".
struct StepGraph {
  Graph g;
  DType dt;
  TensorId param, grad, step, scale;
  std::vector<TensorId> state; // optimizer state inputs, zero-initialized

  explicit StepGraph(DType d) : dt(d) {
    param = add("p", {2}, Role::parameter, {1, -2});
    grad = add("g", {2}, Role::input);
    g.inputs.push_back(grad);
    step = add("step", {}, Role::state, {0}, DType::f32);
  }
  TensorId add(const std::string& name, Shape s, Role r, std::vector<double> v = {},
               std::optional<DType> d = {}) {
    Tensor t;
    t.name = name;
    t.dtype = d ? *d : dt;
    t.shape = std::move(s);
    t.shape_known = true;
    t.role = r;
    if (!v.empty()) t.data = std::make_shared<const std::vector<uint8_t>>(encode(t.dtype, v));
    return g.add_tensor(std::move(t));
  }
  std::vector<TensorId> node(const std::string& op, std::vector<TensorId> ins, Attrs attrs,
                             size_t nout) {
    Node n;
    n.op = op;
    n.name = op + std::to_string(g.num_nodes());
    n.inputs = std::move(ins);
    n.attrs = std::move(attrs);
    for (size_t k = 0; k < nout; ++k) {
      Tensor t;
      t.name = n.name + ":" + std::to_string(k);
      // In-place results keep the role of the storage they overwrite.
      OutputAlias al = output_alias(op, k);
      t.role =
          al.kind == AliasKind::inplace ? g.tensor(n.inputs.at(al.input)).role : Role::activation;
      n.outputs.push_back(g.add_tensor(std::move(t)));
    }
    auto types = infer_node(g, n);
    for (size_t k = 0; k < nout; ++k) {
      Tensor& t = g.tensor(n.outputs[k]);
      t.dtype = types[k].dtype;
      t.shape = types[k].shape;
      t.shape_known = true;
    }
    std::vector<TensorId> outs = n.outputs;
    g.add_node(std::move(n));
    return outs;
  }
  TensorId increment() { return node("StepIncrement", {step}, {}, 1)[0]; }
  TensorId zero_state(const std::string& name) {
    state.push_back(add(name, {2}, Role::optimizer_state, {0, 0}));
    return state.back();
  }

  /// Runs three steps, returning the parameter after each.
  std::vector<std::vector<double>> run3(double grad_factor = 1.0) {
    verify(g);
    Interpreter in(g);
    std::vector<std::vector<double>> r;
    for (const auto& gr : kGrads) {
      std::vector<double> scaled = gr;
      for (double& x : scaled)
        x *= grad_factor;
      in.set(grad, encode(dt, scaled));
      in.run();
      r.push_back(decode(dt, in.get(param)));
    }
    return r;
  }
};

void expect_near(const std::vector<std::vector<double>>& got,
                 const std::vector<std::vector<double>>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < got.size(); ++s)
    for (size_t i = 0; i < want[s].size(); ++i)
      EXPECT_NEAR(got[s][i], want[s][i], tol) << "step " << s + 1 << " element " << i;
}

class OptimTest : public ::testing::TestWithParam<DType> {
 protected:
  double tol() const { return GetParam() == DType::f64 ? 1e-12 : 2e-6; }
};

TEST_P(OptimTest, SgdPlain) {
  // p -= 0.1 g: [0.95, -2.1], [1.05, -2.3], [1.025, -2.25]
  StepGraph s(GetParam());
  s.node("SGDUpdate", {s.param, s.grad}, {{"lr", 0.1}}, 1);
  expect_near(s.run3(), {{0.95, -2.1}, {1.05, -2.3}, {1.025, -2.25}}, tol());
}

TEST_P(OptimTest, SgdMomentumDampening) {
  // momentum 0.9, dampening 0.5. Step 1 initializes buf = g1 (torch does not
  // dampen the first step): buf [0.5, 1], p [0.95, -2.1].
  // Step 2: buf = 0.9 [0.5, 1] + 0.5 [-1, 2] = [-0.05, 1.9]; p [0.955, -2.29].
  // Step 3: buf = 0.9 [-0.05, 1.9] + 0.5 [0.25, -0.5] = [0.08, 1.46]; p [0.947, -2.436].
  StepGraph s(GetParam());
  TensorId step1 = s.increment();
  TensorId buf = s.zero_state("buf");
  s.node("SGDUpdate", {s.param, s.grad, buf, TensorId(), step1},
         {{"lr", 0.1}, {"momentum", 0.9}, {"dampening", 0.5}}, 2);
  expect_near(s.run3(), {{0.95, -2.1}, {0.955, -2.29}, {0.947, -2.436}}, tol());
}

TEST_P(OptimTest, SgdNesterovWeightDecay) {
  // momentum 0.9, nesterov, weight decay 0.1: d = g + 0.1 p; buf = 0.9 buf + d
  // (buf = d on step 1); p -= 0.1 (d + 0.9 buf).
  // Step 1: d [0.6, 0.8] = buf; d + 0.9 buf = [1.14, 1.52]; p [0.886, -2.152].
  // Step 2: d = [-1 + 0.0886, 2 - 0.2152] = [-0.9114, 1.7848];
  //         buf = [0.54 - 0.9114, 0.72 + 1.7848] = [-0.3714, 2.5048];
  //         d + 0.9 buf = [-1.24566, 4.03912]; p [1.010566, -2.555912].
  // Step 3: d = [0.3510566, -0.7555912]; buf = [0.0167966, 1.4987288];
  //         d + 0.9 buf = [0.36617354, 0.59326472]; p [0.973948646, -2.615238472].
  StepGraph s(GetParam());
  TensorId step1 = s.increment();
  TensorId buf = s.zero_state("buf");
  s.node("SGDUpdate", {s.param, s.grad, buf, TensorId(), step1},
         {{"lr", 0.1}, {"momentum", 0.9}, {"nesterov", int64_t{1}}, {"weight_decay", 0.1}}, 2);
  expect_near(s.run3(), {{0.886, -2.152}, {1.010566, -2.555912}, {0.973948646, -2.615238472}},
              tol());
}

// Adam, betas (0.9, 0.999), eps 1e-8. Step 1 moves each element by exactly
// lr * g / (|g| + eps') = 0.1 sign(g) up to eps: p1 = [0.9, -2.1].
// Step 2, element 0: m = 0.09 * 0.5 + 0.1 * -1 = -0.055, m_hat = m / 0.19 =
// -0.289474; v = 0.000999 * 0.25 + 0.001 * 1 = 0.00124975, v_hat = v / 0.001999
// = 0.625188, sqrt 0.790688; p = 0.9 + 0.1 * 0.289474 / 0.790688 = 0.936610.
// The remaining values follow the same recurrence (torch.optim.Adam).
TEST_P(OptimTest, Adam) {
  StepGraph s(GetParam());
  TensorId step1 = s.increment();
  TensorId m = s.zero_state("m"), v = s.zero_state("v");
  s.node("AdamUpdate", {s.param, s.grad, m, v, step1},
         {{"lr", 0.1}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}}, 3);
  expect_near(s.run3(),
              {{0.900000002, -2.099999999},
               {0.9366103542405654, -2.1965182009718336},
               {0.9502794203389762, -2.255378873799763}},
              GetParam() == DType::f64 ? 1e-12 : 3e-6);
}

// Adam with L2 weight decay 0.1 (added to the gradient): step 1 gradient
// [0.6, 0.8] has the same signs, so p1 = [0.9, -2.1] again; later steps differ.
TEST_P(OptimTest, AdamL2WeightDecay) {
  StepGraph s(GetParam());
  TensorId step1 = s.increment();
  TensorId m = s.zero_state("m"), v = s.zero_state("v");
  s.node("AdamUpdate", {s.param, s.grad, m, v, step1}, {{"lr", 0.1}, {"weight_decay", 0.1}}, 3);
  expect_near(s.run3(),
              {{0.9000000016666666, -2.09999999875},
               {0.9252635194456061, -2.1952720095868674},
               {0.9247305742687093, -2.2423844550182372}},
              GetParam() == DType::f64 ? 1e-12 : 3e-6);
}

// AdamW, weight decay 0.1: p *= 1 - 0.01 first, then the Adam step:
// p1 = [0.99 - 0.1, -1.98 - 0.1] = [0.89, -2.08].
TEST_P(OptimTest, AdamW) {
  StepGraph s(GetParam());
  TensorId step1 = s.increment();
  TensorId m = s.zero_state("m"), v = s.zero_state("v");
  s.node("AdamUpdate", {s.param, s.grad, m, v, step1},
         {{"lr", 0.1}, {"weight_decay", 0.1}, {"decoupled", int64_t{1}}}, 3);
  expect_near(s.run3(),
              {{0.890000002, -2.079999999},
               {0.9177103542205653, -2.1557182009818336},
               {0.9222023167767704, -2.1930216917999448}},
              GetParam() == DType::f64 ? 1e-12 : 3e-6);
}

// Clipping feeds SGD: every gradient is rescaled to norm 2 and max_norm is 1,
// so the clip factor is 1 / (2 + 1e-6) (about one half) on every step and the
// step is p -= 0.1 * c * g with c = 1 / (2 + 1e-6) rounded to f32 (the scale
// is an f32 scalar for every parameter dtype).
TEST_P(OptimTest, ClippedSgdHalvesTheStep) {
  StepGraph s(GetParam());
  TensorId scale = s.node("GlobalNormScale", {s.grad}, {{"max_norm", 1.0}}, 1)[0];
  s.node("SGDUpdate", {s.param, s.grad, TensorId(), scale}, {{"lr", 0.1}}, 1);
  verify(s.g);
  Interpreter in(s.g);
  std::vector<double> p = {1, -2};
  for (const auto& gr : kGrads) {
    // Scale each gradient to norm 2 so that the clip factor is 1 / (2 + 1e-6).
    const double norm = std::hypot(gr[0], gr[1]);
    const std::vector<double> g2 = {2 * gr[0] / norm, 2 * gr[1] / norm};
    in.set(s.grad, encode(s.dt, g2));
    in.run();
    EXPECT_NEAR(decode(DType::f32, in.get(scale))[0], 1 / (2 + 1e-6), 1e-7);
    const double c = static_cast<float>(1 / (2 + 1e-6));
    for (size_t i = 0; i < 2; ++i)
      p[i] -= 0.1 * c * g2[i];
    auto got = decode(s.dt, in.get(s.param));
    EXPECT_NEAR(got[0], p[0], tol());
    EXPECT_NEAR(got[1], p[1], tol());
  }
}

INSTANTIATE_TEST_SUITE_P(F32AndF64, OptimTest, ::testing::Values(DType::f32, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(OptimKernelTest, GlobalNormScaleIsTorchClipCoefficient) {
  // g1 = [3, 4] (f32), g2 = [12] (f64): total norm sqrt(9 + 16 + 144) = 13.
  StepGraph s(DType::f32);
  TensorId a = s.add("a", {2}, Role::parameter, {3, 4});
  TensorId b = s.add("b", {1}, Role::parameter, {12}, DType::f64);
  TensorId half = s.node("GlobalNormScale", {a, b}, {{"max_norm", 6.5}}, 1)[0];
  TensorId none = s.node("GlobalNormScale", {a, b}, {{"max_norm", 20.0}}, 1)[0];
  EXPECT_EQ(s.g.tensor(half).dtype, DType::f32);
  EXPECT_TRUE(s.g.tensor(half).shape.empty());
  Interpreter in(s.g);
  in.run();
  EXPECT_NEAR(decode(DType::f32, in.get(half))[0], 6.5 / (13 + 1e-6), 1e-7); // 0.5
  EXPECT_EQ(decode(DType::f32, in.get(none))[0], 1.0);                       // 20 / 13 > 1: clamped
}

TEST(OptimKernelTest, GradAccumulateAndStepIncrementInPlace) {
  StepGraph s(DType::f64);
  TensorId acc = s.add("acc", {2}, Role::optimizer_state, {1, 2});
  TensorId acc1 = s.node("GradAccumulate", {acc, s.grad}, {}, 1)[0];
  TensorId step1 = s.increment();
  EXPECT_EQ(output_alias("GradAccumulate", 0).kind, AliasKind::inplace);
  verify(s.g);
  Interpreter in(s.g);
  in.set(s.grad, encode(DType::f64, {0.5, -1}));
  in.run(); // [1, 2] + [0.5, -1]
  EXPECT_EQ(decode(DType::f64, in.get(acc1)), (std::vector<double>{1.5, 1}));
  in.run(); // in place: the accumulator itself holds the sum, so it grows again
  EXPECT_EQ(decode(DType::f64, in.get(acc)), (std::vector<double>{2, 0}));
  EXPECT_EQ(decode(DType::f32, in.get(step1))[0], 2.0); // two runs, two increments
}

TEST(OptimKernelTest, OutOfPlaceCallsReadBeforeWriting) {
  // Called directly with distinct output buffers, the kernel leaves its inputs
  // intact: SGD p = [1, -2], g = [0.5, 1], lr 0.1 -> [0.95, -2.1].
  Node n;
  n.op = "SGDUpdate";
  n.name = "sgd";
  n.attrs = {{"lr", 0.1}};
  std::vector<float> p = {1, -2}, g = {0.5f, 1}, out(2);
  KernelArgs a;
  a.node = &n;
  a.in = {{p.data(), DType::f32, {2}, 2}, {g.data(), DType::f32, {2}, 2}};
  a.out = {{out.data(), DType::f32, {2}, 2}};
  find_kernel("SGDUpdate")(a);
  EXPECT_FLOAT_EQ(out[0], 0.95f);
  EXPECT_FLOAT_EQ(out[1], -2.1f);
  EXPECT_EQ(p, (std::vector<float>{1, -2}));
}

TEST(OptimOpsTest, ShapeInferenceAndErrors) {
  testing::OneNode t;
  TensorId p = t.in({3, 2}), g = t.in({3, 2}), bad = t.in({2, 3}), s = t.in({}), b = t.in({3, 2});
  TensorId i = t.in({3, 2}, DType::i64);
  EXPECT_EQ(t.infer("StepIncrement", {s})[0], (TensorType{DType::f32, {}}));
  expect_error([&] { t.infer("StepIncrement", {p}); }, "step (input 0) must be a scalar");
  auto r = t.infer("SGDUpdate", {p, g, b, TensorId(), s}, {{"momentum", 0.9}}, 2);
  EXPECT_EQ(r[1], (TensorType{DType::f32, {3, 2}}));
  expect_error([&] { t.infer("SGDUpdate", {p, bad}); }, "gradient (input 1) is f32[2,3]");
  expect_error(
      [&] {
        t.infer("SGDUpdate", {p, g}, {{"momentum", 0.9}});
      },
      "needs a momentum buffer");
  expect_error(
      [&] {
        t.infer("SGDUpdate", {p, g, b}, {{"momentum", 0.9}}, 2);
      },
      "needs the step counter (input 4)");
  expect_error(
      [&] {
        t.infer("SGDUpdate", {p, g}, {{"nesterov", int64_t{1}}});
      },
      "nesterov needs momentum > 0");
  expect_error([&] { t.infer("SGDUpdate", {i, i}); }, "parameter must be floating-point");
  auto a = t.infer("AdamUpdate", {p, g, b, b, s, s}, {}, 3);
  EXPECT_EQ(a.size(), 3u);
  expect_error([&] { t.infer("AdamUpdate", {p, g, b, bad, s}, {}, 3); }, "second moment v");
  expect_error([&] { t.infer("AdamUpdate", {p, g, b, b, p}, {}, 3); }, "step (input 4)");
  expect_error([&] { t.infer("GradAccumulate", {p, bad}); }, "accumulator is f32[3,2]");
  expect_error([&] { t.infer("GlobalNormScale", {p, i}); }, "input 1 must be floating-point");
  expect_error(
      [&] {
        t.infer("GlobalNormScale", {p}, {{"max_norm", 0.0}});
      },
      "max_norm must be positive");
  EXPECT_EQ(output_alias("SGDUpdate", 1).input, 2);
  EXPECT_EQ(output_alias("AdamUpdate", 2).input, 3);
}

} // namespace
} // namespace memplan
