// The training pass (compiler/autodiff.h): graphs as text in, structure and
// values out. Structural tests need the gradient rules of the ops they use;
// until those families are merged they skip with a message.
#include "compiler/autodiff.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "compiler/dtype_codec.h"
#include "compiler/grad.h"
#include "compiler/ir_text.h"
#include "compiler/plan_verify.h"
#include "passes/plan_memory.h"
#include "runtime/interpreter.h"
#include "runtime/kernel.h"
#include "test/op_test_util.h"

namespace memplan {
namespace {

using testing::expect_error;

/// Skips the test unless every op has a gradient rule and a CPU kernel.
#define REQUIRE_OPS(...)                                                                           \
  do {                                                                                             \
    for (const char* op_ : {__VA_ARGS__})                                                          \
      if (!find_grad_rule(op_) || !find_kernel(op_))                                               \
        GTEST_SKIP() << op_ << " has no gradient rule or kernel yet (other branches)";             \
  } while (0)

TensorId id(const Graph& g, const std::string& name) {
  auto t = g.find_tensor(name);
  EXPECT_TRUE(t.has_value()) << "no tensor '" << name << "'";
  return t.value_or(TensorId());
}

std::vector<std::string> output_names(const Graph& g) {
  std::vector<std::string> r;
  for (TensorId t : g.outputs)
    r.push_back(g.tensor(t).name);
  return r;
}

int count_op(const Graph& g, std::string_view op) {
  int c = 0;
  for (const Node& n : g.nodes())
    c += n.op == op;
  return c;
}

TrainingOptions sgd(double lr = 0.1, double momentum = 0.0) {
  TrainingOptions o;
  o.optimizer.kind = OptimizerKind::sgd;
  o.optimizer.lr = lr;
  o.optimizer.momentum = momentum;
  return o;
}

/// Plans the graph and runs the independent verifier on the plan.
Plan planned(const Graph& g) {
  Plan p = plan_memory(g);
  PlanVerifyResult r = verify_plan(p);
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  return p;
}

// ---------------------------------------------------------------- errors

constexpr const char* kTwoOutputs = R"(graph @two opset 17 {
  input %x : f32[2,3]
  parameter %w : f32[3]
  %y = Mul "mul" (%x, %w) : f32[2,3]
  %s = ReduceMean "mean" (%y) {keepdims = 0} : f32[]
  %t = ReduceSum "sum" (%y) {keepdims = 0} : f32[]
  output %y
  output %s
  output %t
}
)";

TEST(AutodiffErrorsTest, ModelLossMustBeOneFloatScalar) {
  Graph g = parse_graph(kTwoOutputs);
  g.outputs = {id(g, "y")};
  expect_error([&] { build_training_graph(g, sgd()); },
               "the loss must be a float scalar, but the model's only output 'y' is f32[2,3]; "
               "build a loss on it with --loss cross-entropy|mse");
  g = parse_graph(kTwoOutputs);
  expect_error([&] { build_training_graph(g, sgd()); },
               "several outputs could be the loss ('s' f32[], 't' f32[])");
  g = parse_graph(kTwoOutputs);
  g.outputs = {id(g, "y"), id(g, "y")};
  expect_error([&] { build_training_graph(g, sgd()); },
               "none of the model's outputs is a float scalar loss");
}

TEST(AutodiffErrorsTest, BuiltLossNeedsLabelsAndOneLogits) {
  Graph g = parse_graph(kTwoOutputs);
  TrainingOptions o = sgd();
  o.loss = "cross-entropy";
  expect_error([&] { build_training_graph(g, o); },
               "the model has 3 outputs ('y' f32[2,3], 's' f32[], 't' f32[]); name the logits "
               "with --logits");
  o.logits = "nope";
  expect_error([&] { build_training_graph(g, o); }, "--logits 'nope' is not an output");
  o.logits = "y";
  expect_error([&] { build_training_graph(g, o); },
               "--loss cross-entropy needs the targets as a graph input, but the model has no "
               "input 'labels' (inputs: 'x' f32[2,3]); name it with --labels");
  o.labels = "x";
  expect_error([&] { build_training_graph(g, o); },
               "labels 'x' must hold class indices (an integer dtype), got f32[2,3]");
  o.loss = "mse";
  g.tensor(id(g, "x")).shape = {3, 2}; // same element count, other shape
  expect_error([&] { build_training_graph(g, o); },
               "--loss mse: labels 'x' must have the logits' type f32[2,3], got f32[3,2]");
  o.loss = "hinge";
  expect_error([&] { build_training_graph(g, o); },
               "--loss must be cross-entropy or mse, got 'hinge'");
}

TEST(AutodiffErrorsTest, FreezeEverythingOrBadRegex) {
  Graph g = parse_graph(kTwoOutputs);
  g.outputs = {id(g, "s")};
  TrainingOptions o = sgd();
  o.freeze = "^w$";
  expect_error([&] { build_training_graph(g, o); },
               "--freeze '^w$' matches every parameter (1): nothing to train");
  o.freeze = "w(";
  expect_error([&] { build_training_graph(g, o); },
               "--freeze 'w(' is not a valid regular expression");
}

TEST(AutodiffErrorsTest, LossMustDependOnAParameter) {
  Graph g = parse_graph(R"(graph @g opset 17 {
  input %x : f32[2]
  parameter %w : f32[2]
  %y = Mul "mul" (%x, %w) : f32[2]
  %s = ReduceSum "sum" (%x) {keepdims = 0} : f32[]
  output %s
  output %y
}
)");
  g.outputs = {id(g, "s")};
  expect_error([&] { build_training_graph(g, sgd()); },
               "the loss 's' does not depend on any trainable parameter");
}

TEST(AutodiffErrorsTest, OpWithoutRuleNamesOpNodeAndParameter) {
  if (find_grad_rule("Sin")) GTEST_SKIP() << "Sin has a gradient rule now; pick another op";
  Graph g = parse_graph(R"(graph @g opset 17 {
  parameter %w : f32[]
  %s = Sin "the_sine" (%w) : f32[]
  output %s
}
)");
  expect_error([&] { build_training_graph(g, sgd()); },
               "node 'the_sine' (Sin): op Sin has no gradient rule, but it lies on the gradient "
               "path from parameter 'w' to the loss");
}

// ---------------------------------------------------------------- structure

// y = Relu(x * w1 + b1) * w2, loss = mean((y - t)^2): two "layers" made of
// elementwise ops (broadcast over the batch), so only the elementwise and
// reduction rules are needed.
constexpr const char* kElementwiseNet = R"(graph @net opset 17 {
  input %x : f64[4,3]
  input %t : f64[4,3]
  parameter %w1 : f64[3]
  parameter %b1 : f64[3]
  parameter %w2 : f64[3]
  %a = Mul "mul1" (%x, %w1) : f64[4,3]
  %z = Add "add1" (%a, %b1) : f64[4,3]
  %h = Relu "relu" (%z) : f64[4,3]
  %y = Mul "mul2" (%h, %w2) : f64[4,3]
  output %y
}
)";

TrainingOptions mse(TrainingOptions o) {
  o.loss = "mse";
  o.labels = "t";
  return o;
}

TEST(AutodiffTest, SgdMomentumRolesOutputsAndPlan) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  Graph g = parse_graph(kElementwiseNet);
  TrainingStats st = build_training_graph(g, mse(sgd(0.1, 0.9)));
  EXPECT_EQ(st.params_trained, 3);
  EXPECT_EQ(st.params_frozen, 0);
  EXPECT_EQ(st.loss, "loss");
  EXPECT_TRUE(st.warnings.empty());
  // StepIncrement and one SGDUpdate per parameter.
  EXPECT_EQ(st.optimizer_nodes, 4);
  EXPECT_EQ(count_op(g, "SGDUpdate"), 3);
  EXPECT_EQ(count_op(g, "StepIncrement"), 1);
  EXPECT_GT(st.backward_nodes, 0);
  EXPECT_EQ(output_names(g),
            (std::vector<std::string>{"loss", "w1/updated", "b1/updated", "w2/updated",
                                      "memplan/step/updated", "w1/momentum/updated",
                                      "b1/momentum/updated", "w2/momentum/updated"}));
  EXPECT_EQ(g.tensor(id(g, "w1/grad")).role, Role::gradient);
  EXPECT_EQ(g.tensor(id(g, "w1/grad")).shape, (Shape{3}));
  const Tensor& mom = g.tensor(id(g, "w1/momentum"));
  EXPECT_EQ(mom.role, Role::optimizer_state);
  ASSERT_TRUE(mom.data);
  EXPECT_EQ(*mom.data, std::vector<uint8_t>(24, 0)); // 3 x f64 zeros
  const Tensor& step = g.tensor(id(g, "memplan/step"));
  EXPECT_EQ(step.role, Role::state);
  EXPECT_EQ(step.dtype, DType::f32);
  EXPECT_TRUE(step.shape.empty());
  // The model's output y is no longer an output, but the loss still needs it.
  EXPECT_EQ(st.nodes_pruned, 0);
  verify(g);
  Plan p = planned(g);
  // In place: w1/updated shares w1's storage.
  const PlanTensor& upd = p.tensors[id(g, "w1/updated").v];
  EXPECT_EQ(upd.placement, Placement::alias);
  EXPECT_EQ(upd.alias_kind, AliasKind::inplace);
  EXPECT_EQ(upd.alias_of, static_cast<int32_t>(id(g, "w1").v));
}

TEST(AutodiffTest, ReadersOfAParameterRunBeforeItsUpdate) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  Graph g = parse_graph(kElementwiseNet);
  build_training_graph(g, mse(sgd()));
  Plan p = planned(g);
  // mul2 reads w2 in the forward pass and its gradient rule reads w2 again
  // (d h = d y * w2): every such op must precede the update of w2.
  const int32_t w2 = static_cast<int32_t>(id(g, "w2").v);
  size_t update = 0, last_reader = 0;
  for (size_t s = 0; s < p.ops.size(); ++s) {
    const PlanOp& op = p.ops[s];
    if (op.op == "SGDUpdate" && op.inputs[0] == w2)
      update = s;
    else if (std::count(op.inputs.begin(), op.inputs.end(), w2))
      last_reader = s;
  }
  EXPECT_GT(last_reader, 0u);
  EXPECT_LT(last_reader, update);
  // The verifier catches the opposite order: move the update to the front.
  Plan bad = p;
  PlanOp upd = bad.ops[update];
  bad.ops.erase(bad.ops.begin() + static_cast<long>(update));
  bad.ops.insert(bad.ops.begin() + static_cast<long>(last_reader), upd);
  PlanVerifyResult r = verify_plan(bad);
  ASSERT_FALSE(r.ok());
  bool found = false;
  for (const std::string& e : r.errors)
    found |= e.find("overwrote its storage in place") != std::string::npos;
  EXPECT_TRUE(found) << r.errors[0];
}

TEST(AutodiffTest, FreezePrunesBackwardWorkAndState) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  Graph full = parse_graph(kElementwiseNet);
  TrainingStats all = build_training_graph(full, mse(sgd(0.1, 0.9)));
  // Freezing the first layer: w1 and b1 get no gradient, so nothing flows
  // below relu (no ReluGrad, no gradient for mul1/add1); only w2 is updated.
  Graph g = parse_graph(kElementwiseNet);
  TrainingOptions o = mse(sgd(0.1, 0.9));
  o.freeze = "1$";
  TrainingStats st = build_training_graph(g, o);
  EXPECT_EQ(st.params_trained, 1);
  EXPECT_EQ(st.params_frozen, 2);
  EXPECT_EQ(st.optimizer_nodes, 2);
  EXPECT_LT(st.backward_nodes, all.backward_nodes);
  EXPECT_FALSE(g.find_tensor("w1/grad"));
  EXPECT_FALSE(g.find_tensor("w1/momentum"));
  EXPECT_TRUE(g.find_tensor("w2/momentum"));
  EXPECT_EQ(g.tensor(id(g, "w1")).role, Role::parameter); // still resident, just frozen
  for (const Node& n : g.nodes())
    EXPECT_EQ(n.name.find("memplan/grad/relu"), std::string::npos) << n.name;
  EXPECT_EQ(output_names(g), (std::vector<std::string>{"loss", "w2/updated", "memplan/step/updated",
                                                       "w2/momentum/updated"}));
  planned(g);

  Graph h = parse_graph(kElementwiseNet);
  o.freeze = "^nothing$";
  TrainingStats none = build_training_graph(h, o);
  ASSERT_EQ(none.warnings.size(), 1u);
  EXPECT_EQ(none.warnings[0], "--freeze '^nothing$' matches no parameter");
}

TEST(AutodiffTest, AdamStateAndGradsAsOutputs) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  Graph g = parse_graph(kElementwiseNet);
  TrainingOptions o = mse({});
  o.optimizer.kind = OptimizerKind::adamw;
  o.clip_grad_norm = 1.0;
  o.grads_as_outputs = true;
  TrainingStats st = build_training_graph(g, o);
  // StepIncrement, GlobalNormScale and three AdamUpdates.
  EXPECT_EQ(st.optimizer_nodes, 5);
  EXPECT_EQ(count_op(g, "GlobalNormScale"), 1);
  for (const Node& n : g.nodes())
    if (n.op == "AdamUpdate") {
      EXPECT_EQ(n.inputs.size(), 6u); // param, grad, m, v, step', scale
      EXPECT_EQ(attr_int(n, "decoupled", 0), 1);
    }
  EXPECT_EQ(g.tensor(id(g, "b1/adam_v")).role, Role::optimizer_state);
  const std::vector<std::string> outs = output_names(g);
  ASSERT_EQ(outs.size(), 1u + 3 + 1 + 6 + 3);
  EXPECT_EQ(outs[5], "w1/adam_m/updated");
  EXPECT_EQ(outs[6], "w1/adam_v/updated");
  EXPECT_EQ(outs[11], "w1/grad");
  EXPECT_EQ(outs[13], "w2/grad");
  planned(g);
}

// The zero initial optimizer states are shared while a graph holds them, and
// inside a KeepZeroData scope also after the last graph using them is gone.
TEST(AutodiffTest, KeepZeroDataKeepsStateZerosAcrossGraphs) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  TrainingOptions o = mse({});
  o.optimizer.kind = OptimizerKind::adam;
  auto build = [&] {
    Graph g = parse_graph(kElementwiseNet);
    build_training_graph(g, o);
    return g;
  };
  std::weak_ptr<const std::vector<uint8_t>> zeros;
  {
    const Graph g = build();
    zeros = g.tensor(id(g, "w1/adam_m")).data;
    ASSERT_FALSE(zeros.expired());
    for (uint8_t byte : *zeros.lock()) ASSERT_EQ(byte, 0);
  }
  EXPECT_TRUE(zeros.expired()) << "no scope: the zeros go with the last graph";
  {
    const KeepZeroData keep;
    {
      const Graph g = build();
      zeros = g.tensor(id(g, "w1/adam_m")).data;
    }
    EXPECT_FALSE(zeros.expired()) << "kept by the scope";
    const Graph g = build();
    EXPECT_EQ(g.tensor(id(g, "w1/adam_m")).data, zeros.lock()) << "the next graph reuses them";
  }
  EXPECT_TRUE(zeros.expired()) << "released with the scope";
}

TEST(AutodiffTest, NoOptimizerOutputsGradients) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  Graph g = parse_graph(kElementwiseNet);
  TrainingOptions o = mse({});
  o.optimizer.kind = OptimizerKind::none;
  TrainingStats st = build_training_graph(g, o);
  EXPECT_EQ(st.optimizer_nodes, 0);
  EXPECT_FALSE(g.find_tensor("memplan/step"));
  EXPECT_EQ(output_names(g), (std::vector<std::string>{"loss", "w1/grad", "b1/grad", "w2/grad"}));
  planned(g);
}

TEST(AutodiffTest, SharedParameterGradientsAreSummed) {
  REQUIRE_OPS("Mul", "ReduceSum");
  // loss = sum(x * w * w): w is read twice by one node, once per slot, so two
  // contributions meet in one Add. d loss / d w = 2 x w.
  Graph g = parse_graph(R"(graph @g opset 17 {
  input %x : f64[2]
  parameter %w : f64[2]
  %ww = Mul "sq" (%w, %w) : f64[2]
  %y = Mul "mul" (%x, %ww) : f64[2]
  %s = ReduceSum "sum" (%y) {keepdims = 0} : f64[]
  output %s
}
)");
  TrainingOptions o;
  o.optimizer.kind = OptimizerKind::none;
  build_training_graph(g, o);
  EXPECT_EQ(count_op(g, "Add"), 1);
  Interpreter in(g);
  std::vector<uint8_t> xb, wb;
  for (double v : {3.0, -1.0})
    encode_float(DType::f64, v, xb);
  for (double v : {0.5, 2.0})
    encode_float(DType::f64, v, wb);
  in.set(id(g, "x"), xb);
  in.set(id(g, "w"), wb);
  in.run();
  const auto& gb = in.get(id(g, "w/grad"));
  EXPECT_DOUBLE_EQ(decode_float(DType::f64, gb.data(), 0), 2 * 3.0 * 0.5);  // 3
  EXPECT_DOUBLE_EQ(decode_float(DType::f64, gb.data(), 1), 2 * -1.0 * 2.0); // -4
}

TEST(AutodiffTest, SharedGradientTensorsGetNamedViews) {
  REQUIRE_OPS("Add", "ReduceSum", "Identity");
  // loss = sum(w + v): Add passes the same upstream gradient to both inputs,
  // so one tensor is both gradients; each output gets its own named view.
  Graph g = parse_graph(R"(graph @g opset 17 {
  parameter %w : f64[3]
  parameter %v : f64[3]
  %y = Add "add" (%w, %v) : f64[3]
  %s = ReduceSum "sum" (%y) {keepdims = 0} : f64[]
  output %s
}
)");
  TrainingOptions o;
  o.optimizer.kind = OptimizerKind::none;
  build_training_graph(g, o);
  EXPECT_EQ(output_names(g), (std::vector<std::string>{"s", "w/grad", "v/grad"}));
  Plan p = planned(g);
  Interpreter in(g);
  in.run();
  for (const char* name : {"w/grad", "v/grad"}) { // d sum(w + v) / dw = 1 everywhere
    const auto& b = in.get(id(g, name));
    for (size_t i = 0; i < 3; ++i)
      EXPECT_EQ(decode_float(DType::f64, b.data(), i), 1.0) << name;
  }
}

// ---------------------------------------------------------------- values

void set_f64(Interpreter& in, TensorId t, const std::vector<double>& v) {
  std::vector<uint8_t> b;
  for (double x : v)
    encode_float(DType::f64, x, b);
  in.set(t, std::move(b));
}

void set_i64(Interpreter& in, TensorId t, const std::vector<int64_t>& v) {
  std::vector<uint8_t> b;
  for (int64_t x : v)
    encode_int(DType::i64, x, b);
  in.set(t, std::move(b));
}

std::vector<double> get_f64(const Interpreter& in, TensorId t) {
  const auto& b = in.get(t);
  std::vector<double> v(b.size() / 8);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

/// Deterministic values in [-1, 1) (a fixed LCG: tests must not depend on seeds).
std::vector<double> pseudo_random(size_t n, uint64_t seed) {
  std::vector<double> v(n);
  for (double& x : v) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<double>(seed >> 11) / static_cast<double>(1ull << 53) * 2 - 1;
  }
  return v;
}

/// A trained graph's inputs and parameters, set identically on every interpreter.
struct Feed {
  std::vector<std::pair<std::string, std::vector<double>>> f64;
  std::vector<std::pair<std::string, std::vector<int64_t>>> i64;
  void apply(const Graph& g, Interpreter& in) const {
    for (const auto& [name, v] : f64)
      set_f64(in, id(g, name), v);
    for (const auto& [name, v] : i64)
      set_i64(in, id(g, name), v);
  }
};

/// Builds the gradient graph (no optimizer) and checks every parameter
/// gradient against central finite differences of the loss (f64, h = 1e-6:
/// truncation error ~h^2, rounding ~1e-16 / h, so 1e-6 relative is ample).
void check_gradients(const std::string& text, TrainingOptions o, const Feed& feed,
                     const std::vector<std::string>& params) {
  Graph g = parse_graph(text);
  o.optimizer.kind = OptimizerKind::none;
  build_training_graph(g, o);
  planned(g);
  Interpreter in(g);
  feed.apply(g, in);
  in.run();
  const TensorId loss = g.outputs[0];
  for (const std::string& p : params) {
    const std::vector<double> grad = get_f64(in, id(g, p + "/grad"));
    std::vector<double> w = get_f64(in, id(g, p));
    for (size_t i = 0; i < w.size(); ++i) {
      const double h = 1e-6, w0 = w[i];
      w[i] = w0 + h;
      set_f64(in, id(g, p), w);
      in.run();
      const double up = get_f64(in, loss)[0];
      w[i] = w0 - h;
      set_f64(in, id(g, p), w);
      in.run();
      const double down = get_f64(in, loss)[0];
      w[i] = w0;
      set_f64(in, id(g, p), w);
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grad[i], numeric, 1e-6 * (1 + std::abs(numeric))) << p << "[" << i << "]";
    }
  }
}

/// One SGD step (lr 0.1) on the training graph: the updated parameters are
/// p - 0.1 * grad (grads from the gradient graph), and the loss drops.
void check_sgd_step(const std::string& text, TrainingOptions o, const Feed& feed,
                    const std::vector<std::string>& params) {
  Graph gg = parse_graph(text);
  TrainingOptions go = o;
  go.optimizer.kind = OptimizerKind::none;
  build_training_graph(gg, go);
  Interpreter gi(gg);
  feed.apply(gg, gi);
  gi.run();

  Graph g = parse_graph(text);
  o.optimizer.kind = OptimizerKind::sgd;
  o.optimizer.lr = 0.1;
  build_training_graph(g, o);
  planned(g);
  Interpreter in(g);
  feed.apply(g, in);
  in.run(); // step 1: the loss of the initial parameters, then the update in place
  const double loss0 = get_f64(in, g.outputs[0])[0];
  EXPECT_NEAR(loss0, get_f64(gi, gg.outputs[0])[0], 1e-12);
  for (const std::string& p : params) {
    const std::vector<double> before = get_f64(gi, id(gg, p)),
                              grad = get_f64(gi, id(gg, p + "/grad"));
    const std::vector<double> after = get_f64(in, id(g, p));
    for (size_t i = 0; i < before.size(); ++i)
      EXPECT_NEAR(after[i], before[i] - 0.1 * grad[i], 1e-12) << p << "[" << i << "]";
  }
  in.run(); // step 2 sees the updated parameters
  const double loss1 = get_f64(in, g.outputs[0])[0];
  EXPECT_LT(loss1, loss0);
  const auto& sb = in.get(id(g, "memplan/step"));
  EXPECT_EQ(decode_float(DType::f32, sb.data(), 0), 2.0); // two steps counted
}

Feed elementwise_feed() {
  Feed f;
  f.f64 = {{"x", pseudo_random(12, 1)},
           {"t", pseudo_random(12, 2)},
           {"w1", {0.9, -0.7, 1.3}},
           {"b1", {0.2, 0.1, -0.1}},
           {"w2", {1.1, -0.6, 0.8}}};
  return f;
}

TEST(AutodiffValuesTest, ElementwiseNetGradientsMatchFiniteDifferences) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  check_gradients(kElementwiseNet, mse({}), elementwise_feed(), {"w1", "b1", "w2"});
}

TEST(AutodiffValuesTest, ElementwiseNetSgdStepLowersTheLoss) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  check_sgd_step(kElementwiseNet, mse({}), elementwise_feed(), {"w1", "b1", "w2"});
}

// The 2-layer MLP: logits = Relu(x W1 + b1) W2 + b2, cross-entropy on labels.
constexpr const char* kMlp = R"(graph @mlp opset 17 {
  input %x : f64[4,3]
  input %labels : i64[4]
  parameter %w1 : f64[3,5]
  parameter %b1 : f64[5]
  parameter %w2 : f64[5,2]
  parameter %b2 : f64[2]
  %h0 = MatMul "mm1" (%x, %w1) : f64[4,5]
  %h1 = Add "add1" (%h0, %b1) : f64[4,5]
  %h = Relu "relu" (%h1) : f64[4,5]
  %o0 = MatMul "mm2" (%h, %w2) : f64[4,2]
  %logits = Add "add2" (%o0, %b2) : f64[4,2]
  output %logits
}
)";

Feed mlp_feed() {
  Feed f;
  f.f64 = {{"x", pseudo_random(12, 3)},
           {"w1", pseudo_random(15, 4)},
           {"b1", pseudo_random(5, 5)},
           {"w2", pseudo_random(10, 6)},
           {"b2", pseudo_random(2, 7)}};
  f.i64 = {{"labels", {0, 1, 1, 0}}};
  return f;
}

TrainingOptions cross_entropy() {
  TrainingOptions o;
  o.loss = "cross-entropy";
  return o;
}

TEST(AutodiffValuesTest, MlpCrossEntropyGradientsMatchFiniteDifferences) {
  REQUIRE_OPS("MatMul", "Add", "Relu", "SoftmaxCrossEntropyLoss");
  check_gradients(kMlp, cross_entropy(), mlp_feed(), {"w1", "b1", "w2", "b2"});
}

TEST(AutodiffValuesTest, MlpSgdStepLowersTheLoss) {
  REQUIRE_OPS("MatMul", "Add", "Relu", "SoftmaxCrossEntropyLoss");
  check_sgd_step(kMlp, cross_entropy(), mlp_feed(), {"w1", "b1", "w2", "b2"});
}

TEST(AutodiffValuesTest, MlpMseGradientsMatchFiniteDifferences) {
  REQUIRE_OPS("MatMul", "Add", "Relu", "Sub", "Mul", "ReduceMean");
  std::string text = kMlp;
  text.replace(text.find("%labels : i64[4]"), 16, "%labels : f64[4,2]");
  Feed f = mlp_feed();
  f.i64.clear();
  f.f64.push_back({"labels", pseudo_random(8, 8)});
  TrainingOptions o;
  o.loss = "mse";
  check_gradients(text, o, f, {"w1", "b1", "w2", "b2"});
}

// ---------------------------------------------------------------- BatchNorm

// BN on the input with frozen scale and bias: no gradient enters BN, so the
// rewrite is checked without BatchNormTraining's gradient rule.
constexpr const char* kBn = R"(graph @bn opset 17 {
  input %x : f32[2,3,4]
  parameter %gamma : f32[3]
  parameter %beta : f32[3]
  state %rm : f32[3]
  state %rv : f32[3]
  parameter %w : f32[4]
  %y, %rm_out, %rv_out = BatchNormalization "bn" (%x, %gamma, %beta, %rm, %rv) {epsilon = 0.001, momentum = 0.8, training_mode = 1} : f32[2,3,4], f32[3], f32[3]
  %z = Mul "mul" (%y, %w) : f32[2,3,4]
  %s = ReduceMean "mean" (%z) {keepdims = 0} : f32[]
  output %s
}
)";

TEST(AutodiffTest, BatchNormBecomesBatchNormTraining) {
  REQUIRE_OPS("Mul", "ReduceMean");
  Graph g = parse_graph(kBn);
  TrainingOptions o = sgd();
  o.freeze = "^(gamma|beta)$";
  TrainingStats st = build_training_graph(g, o);
  EXPECT_EQ(st.params_trained, 1);
  EXPECT_EQ(count_op(g, "BatchNormalization"), 0);
  ASSERT_EQ(count_op(g, "BatchNormTraining"), 1);
  const Node* bn = nullptr;
  for (const Node& n : g.nodes())
    if (n.op == "BatchNormTraining") bn = &n;
  EXPECT_EQ(bn->name, "bn");
  EXPECT_EQ(attr_float(*bn, "epsilon", 0), 0.001);
  EXPECT_EQ(attr_float(*bn, "momentum", 0), 0.8);
  EXPECT_FALSE(bn->has_attr("training_mode"));
  ASSERT_EQ(bn->outputs.size(), 5u);
  EXPECT_EQ(g.tensor(bn->outputs[1]).name, "rm_out"); // the model's own names are kept
  EXPECT_EQ(g.tensor(bn->outputs[1]).role, Role::state);
  EXPECT_EQ(g.tensor(bn->outputs[3]).name, "bn/saved_mean");
  EXPECT_EQ(g.tensor(bn->outputs[4]).shape, (Shape{3}));
  EXPECT_EQ(output_alias("BatchNormTraining", 1).input, 3);
  EXPECT_EQ(output_names(g), (std::vector<std::string>{"s", "w/updated", "rm_out", "rv_out",
                                                       "memplan/step/updated"}));
  verify(g);
  if (find_op("BatchNormTraining")) planned(g);
}

} // namespace
} // namespace memplan
