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
#define REQUIRE_OPS(...)                                                              \
  do {                                                                                \
    for (const char* op_ : {__VA_ARGS__})                                             \
      if (!find_grad_rule(op_) || !find_kernel(op_))                                  \
        GTEST_SKIP() << op_ << " has no gradient rule or kernel yet (other branches)"; \
  } while (0)

TensorId id(const Graph& g, const std::string& name) {
  auto t = g.find_tensor(name);
  EXPECT_TRUE(t.has_value()) << "no tensor '" << name << "'";
  return t.value_or(TensorId());
}

std::vector<std::string> output_names(const Graph& g) {
  std::vector<std::string> r;
  for (TensorId t : g.outputs) r.push_back(g.tensor(t).name);
  return r;
}

int count_op(const Graph& g, std::string_view op) {
  int c = 0;
  for (const Node& n : g.nodes()) c += n.op == op;
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
  g.tensor(id(g, "x")).shape = {3, 2};  // same element count, other shape
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
  EXPECT_EQ(*mom.data, std::vector<uint8_t>(24, 0));  // 3 x f64 zeros
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
    if (op.op == "SGDUpdate" && op.inputs[0] == w2) update = s;
    else if (std::count(op.inputs.begin(), op.inputs.end(), w2)) last_reader = s;
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
  for (const std::string& e : r.errors) found |= e.find("overwrote its storage in place") != std::string::npos;
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
  EXPECT_EQ(g.tensor(id(g, "w1")).role, Role::parameter);  // still resident, just frozen
  for (const Node& n : g.nodes())
    EXPECT_EQ(n.name.find("memplan/grad/relu"), std::string::npos) << n.name;
  EXPECT_EQ(output_names(g), (std::vector<std::string>{"loss", "w2/updated",
                                                        "memplan/step/updated",
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
      EXPECT_EQ(n.inputs.size(), 6u);  // param, grad, m, v, step', scale
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

TEST(AutodiffTest, NoOptimizerOutputsGradients) {
  REQUIRE_OPS("Mul", "Add", "Relu", "Sub", "ReduceMean");
  Graph g = parse_graph(kElementwiseNet);
  TrainingOptions o = mse({});
  o.optimizer.kind = OptimizerKind::none;
  TrainingStats st = build_training_graph(g, o);
  EXPECT_EQ(st.optimizer_nodes, 0);
  EXPECT_FALSE(g.find_tensor("memplan/step"));
  EXPECT_EQ(output_names(g),
            (std::vector<std::string>{"loss", "w1/grad", "b1/grad", "w2/grad"}));
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
  for (double v : {3.0, -1.0}) encode_float(DType::f64, v, xb);
  for (double v : {0.5, 2.0}) encode_float(DType::f64, v, wb);
  in.set(id(g, "x"), xb);
  in.set(id(g, "w"), wb);
  in.run();
  const auto& gb = in.get(id(g, "w/grad"));
  EXPECT_DOUBLE_EQ(decode_float(DType::f64, gb.data(), 0), 2 * 3.0 * 0.5);   // 3
  EXPECT_DOUBLE_EQ(decode_float(DType::f64, gb.data(), 1), 2 * -1.0 * 2.0);  // -4
}

}  // namespace
}  // namespace memplan
