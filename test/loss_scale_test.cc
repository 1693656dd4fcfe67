// Dynamic loss scaling (LossScaling in compiler/autodiff.h,
// compiler/autodiff_loss_scale.cc, kernels in runtime/cpu/optim.cc).
//
// Reference semantics: torch.cuda.amp.GradScaler(init_scale=65536,
// growth_factor=2, backoff_factor=0.5, growth_interval=2000):
//   scaler.scale(loss).backward()   -> the backward seed is S
//   scaler.step(opt)                -> unscale_ (g *= 1/S, found_inf = any
//                                      non-finite), then opt.step() only if
//                                      found_inf == 0 (Adam's state['step']
//                                      does not advance on a skipped step)
//   scaler.update()                 -> found_inf: S *= 0.5, tracker = 0;
//                                      else tracker += 1, and at
//                                      growth_interval S *= 2, tracker = 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "compiler/autodiff.h"
#include "compiler/dtype_codec.h"
#include "passes/bind_dims.h"
#include "passes/microbatch.h"
#include "passes/precision.h"
#include "python-free-frontends/onnx_importer.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/weights.h"
#include "test/exec_test_util.h"

namespace memplan::testing {
namespace {

/// x[8,4] -> MatMul w1[4,6] -> Relu -> MatMul w2[6,3], MSE against labels,
/// Adam; optionally lowered to f16 first.
Plan mlp_plan(const LossScaling& ls, bool f16 = false) {
  Graph g;
  TensorId x = add_decl(g, "x", Role::input, {8, 4});
  add_decl(g, "labels", Role::input, {8, 3});
  TensorId w1 = add_decl(g, "w1", Role::parameter, {4, 6});
  TensorId w2 = add_decl(g, "w2", Role::parameter, {6, 3});
  TensorId h = add_op(g, "Relu", {add_op(g, "MatMul", {x, w1}, "h0")}, "h");
  g.outputs = {add_op(g, "MatMul", {h, w2}, "y")};
  infer_shapes(g);
  if (f16) lower_precision(g, {.low = DType::f16});
  TrainingOptions to;
  to.loss = "mse";
  to.labels = "labels";
  to.optimizer.kind = OptimizerKind::adam;
  to.loss_scaling = ls;
  build_training_graph(g, to);
  return plan_of(g);
}

std::map<std::string, std::vector<uint8_t>> batch() {
  std::vector<float> x(32), l(24);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(i % 7) * 0.25f - 0.7f;
  for (size_t i = 0; i < l.size(); ++i)
    l[i] = static_cast<float>(i % 5) * 0.5f - 1.0f;
  return {{"x", f32_bytes(x)}, {"labels", f32_bytes(l)}};
}

float scalar(const Executor& ex, const std::string& name) {
  return as_f32(ex.read(name)).at(0);
}

TEST(LossScale, GraphHasOneUnscaleAndSeedIsTheScale) {
  Plan p = mlp_plan({.enabled = true});
  int unscale = 0, update = 0;
  for (const PlanOp& op : p.ops) {
    unscale += op.op == "UnscaleGradients";
    update += op.op == "LossScaleUpdate";
    if (op.op == "AdamUpdate" || op.op == "StepIncrement") {
      EXPECT_EQ(p.tensors[op.inputs.back()].name, "memplan/found_inf") << op.name;
    }
  }
  EXPECT_EQ(unscale, 1);
  EXPECT_EQ(update, 1);
}

/// Scaling by 2^16 and unscaling by 2^-16 is exact in f32 (no overflow or
/// underflow here), so two steps give bit-identical parameters.
TEST(LossScale, PowerOfTwoScaleIsExactInF32) {
  Plan ref = mlp_plan({}), ls = mlp_plan({.enabled = true});
  auto a = make_cpu_executor(ref), b = make_cpu_executor(ls);
  init_random(*a, 3);
  init_random(*b, 3);
  EXPECT_EQ(scalar(*b, "memplan/loss_scale"), 65536.0f); // init_random keeps init_scale
  for (int k = 0; k < 2; ++k) {
    StepResult ra = a->step(batch()), rb = b->step(batch());
    ASSERT_TRUE(ra.finite && rb.finite) << rb.first_nonfinite_op;
    EXPECT_EQ(ra.loss, rb.loss);
  }
  for (const char* w : {"w1", "w2", "w1/adam_m", "w2/adam_v"})
    EXPECT_EQ(a->read(w), b->read(w)) << w;
  EXPECT_EQ(scalar(*b, "memplan/step"), 2.0f);
  EXPECT_EQ(scalar(*b, "memplan/loss_scale_growth"), 2.0f);
}

/// f16 plan with S = 2^30: any gradient above 2^-14 / 2^16 overflows f16's
/// 65504 when cast to f16, so the first step must be skipped: parameters,
/// Adam moments and the step counter unchanged, S halved, tracker 0, and the
/// executor reports a finite step (an overflow is not an error).
TEST(LossScale, F16OverflowSkipsTheStepAndBacksOff) {
  Plan p = mlp_plan({.enabled = true, .init_scale = 1073741824.0}, /*f16=*/true);
  auto ex = make_cpu_executor(p);
  init_random(*ex, 3);
  const auto w1 = ex->read("w1"), w2 = ex->read("w2");
  StepResult r = ex->step(batch());
  EXPECT_TRUE(r.finite) << r.first_nonfinite_op;
  EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_EQ(ex->read("w1"), w1);
  EXPECT_EQ(ex->read("w2"), w2);
  EXPECT_EQ(as_f32(ex->read("w1/adam_m")), std::vector<float>(24, 0.0f));
  EXPECT_EQ(scalar(*ex, "memplan/step"), 0.0f);               // Adam's step did not advance
  EXPECT_EQ(scalar(*ex, "memplan/loss_scale"), 536870912.0f); // 2^29
  EXPECT_EQ(scalar(*ex, "memplan/loss_scale_growth"), 0.0f);
  // Halving each step, S reaches a size where f16 gradients fit, and then
  // steps apply: the counter counts exactly the applied steps.
  int applied = 0;
  for (int k = 0; k < 30; ++k) {
    const float before = scalar(*ex, "memplan/loss_scale");
    StepResult s = ex->step(batch());
    ASSERT_TRUE(s.finite) << s.first_nonfinite_op;
    const float after = scalar(*ex, "memplan/loss_scale");
    applied += after == before; // growth_interval 2000: a good step keeps S
    EXPECT_TRUE(after == before || after == before / 2) << before << " -> " << after;
  }
  EXPECT_GT(applied, 0);
  EXPECT_EQ(scalar(*ex, "memplan/step"), static_cast<float>(applied));
  EXPECT_NE(ex->read("w1"), w1);
}

/// growth_interval 3: three good steps double S (tracker back to 0), two
/// more leave S and count tracker 2.
TEST(LossScale, GrowsAfterGrowthIntervalGoodSteps) {
  Plan p = mlp_plan({.enabled = true, .init_scale = 1024.0, .growth_interval = 3});
  auto ex = make_cpu_executor(p);
  init_random(*ex, 3);
  const std::vector<float> scale_after = {1024, 1024, 2048, 2048, 2048};
  const std::vector<float> tracker_after = {1, 2, 0, 1, 2};
  for (size_t k = 0; k < scale_after.size(); ++k) {
    ASSERT_TRUE(ex->step(batch()).finite);
    EXPECT_EQ(scalar(*ex, "memplan/loss_scale"), scale_after[k]) << "after step " << k + 1;
    EXPECT_EQ(scalar(*ex, "memplan/loss_scale_growth"), tracker_after[k]) << "after step " << k + 1;
  }
  EXPECT_EQ(scalar(*ex, "memplan/step"), 5.0f);
}

/// With micro-batching the k replicas share the seed S, their scaled
/// gradients accumulate, and the one UnscaleGradients runs after the
/// accumulation: at S = 2^16 in f32 (exact) two steps of tiny_transformer at
/// k = 2 are bit-identical to k = 2 without loss scaling.
TEST(LossScale, MicroBatchesAccumulateScaledThenUnscaleOnce) {
  auto plan = [](bool scaled) {
    const std::string path =
        std::string(MEMPLAN_SOURCE_DIR) + "/test/models/samples/tiny_transformer.onnx";
    Graph g = import_onnx_file(path).graph;
    bind_dims(g, micro_binding(g, {.dims = {{"batch", 4}, {"seq", 16}}}, 2));
    infer_shapes(g);
    TrainingOptions to;
    to.micro_batches = 2;
    to.loss_scaling.enabled = scaled;
    build_training_graph(g, to);
    int unscale = 0;
    for (const Node& n : g.nodes())
      unscale += n.op == "UnscaleGradients";
    EXPECT_EQ(unscale, scaled ? 1 : 0);
    return plan_of(g);
  };
  Plan ref = plan(false), ls = plan(true);
  auto a = make_cpu_executor(ref, {.seed = 1}), b = make_cpu_executor(ls, {.seed = 1});
  init_random(*a, 3);
  init_random(*b, 3);
  auto feed = make_synthetic_feed(a->graph(), 5);
  for (uint64_t k = 0; k < 2; ++k) {
    StepResult ra = a->step(feed->batch(k)), rb = b->step(feed->batch(k));
    ASSERT_TRUE(ra.finite && rb.finite) << rb.first_nonfinite_op;
    EXPECT_EQ(ra.loss, rb.loss);
  }
  for (const PlanTensor& t : ref.tensors)
    if (t.role == Role::parameter && t.placement == Placement::resident) {
      EXPECT_EQ(a->read(t.name), b->read(t.name)) << t.name;
    }
}

/// loss = ReduceSum(w * w) with w read twice by Mul: the gradient rules give
/// one contribution per slot, summed; and a second parameter v whose loss
/// term is v itself (ReduceSum of an Identity view), so its gradient's storage
/// is the seed S: unscaling must copy it, never overwrite S. Checked: after
/// one SGD step (lr 1) w' = w - 2w = -w, v' = v - 1, and S is unchanged.
TEST(LossScale, GradientStoredInTheSeedIsCopiedNotOverwritten) {
  Graph g;
  TensorId w = add_decl(g, "w", Role::parameter, {2});
  TensorId v = add_decl(g, "v", Role::parameter, {});
  TensorId sq =
      add_op(g, "ReduceSum", {add_op(g, "Mul", {w, w}, "ww")}, "sw", {{"keepdims", int64_t{0}}});
  TensorId loss = add_op(g, "Add", {sq, add_op(g, "Identity", {v}, "vi")}, "loss");
  g.outputs = {loss};
  infer_shapes(g);
  TrainingOptions to;
  to.optimizer.kind = OptimizerKind::sgd;
  to.optimizer.lr = 1.0;
  to.loss_scaling.enabled = true;
  build_training_graph(g, to);
  Plan p = plan_of(g);
  auto ex = make_cpu_executor(p);
  ex->write("w", f32_bytes({0.5f, -2.0f}));
  ex->write("v", f32_bytes({3.0f}));
  init_random(*ex, 0); // only to set S; rewrite the weights after it
  ex->write("w", f32_bytes({0.5f, -2.0f}));
  ex->write("v", f32_bytes({3.0f}));
  ASSERT_TRUE(ex->step({}).finite);
  EXPECT_EQ(as_f32(ex->read("w")), (std::vector<float>{-0.5f, 2.0f}));
  EXPECT_EQ(as_f32(ex->read("v")), (std::vector<float>{2.0f}));
  EXPECT_EQ(scalar(*ex, "memplan/loss_scale"), 65536.0f);
}

TEST(LossScale, BadOptionsAreErrors) {
  for (LossScaling ls : {LossScaling{.enabled = true, .init_scale = 0},
                         LossScaling{.enabled = true, .backoff_factor = 1.5},
                         LossScaling{.enabled = true, .growth_factor = 0.5},
                         LossScaling{.enabled = true, .growth_interval = 0}}) {
    try {
      mlp_plan(ls);
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("loss scaling: "), std::string::npos) << e.what();
    }
  }
}

} // namespace
} // namespace memplan::testing
