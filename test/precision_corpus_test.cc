// Precision lowering on every corpus model at its small binding (batch=2,
// seq=64), training with the default options: the bf16 graph differentiates,
// verifies and plans (verify_plan), every parameter gradient stays f32, and
// the f16 graph with dynamic loss scaling compiles too. Prints the peak of the
// f32 and the bf16 plan (the saving is not guaranteed: a Conv between
// BatchNorms needs casts both ways, which can cost more than it saves).
#include <gtest/gtest.h>

#include <iostream>
#include <set>

#include "compiler/autodiff.h"
#include "compiler/plan_verify.h"
#include "passes/bind_dims.h"
#include "passes/infer_shapes.h"
#include "passes/plan_memory.h"
#include "passes/precision.h"
#include "python-free-frontends/onnx_importer.h"
#include "test/cli_test_util.h"

namespace memplan::testing {
namespace {

class PrecisionCorpus : public ::testing::TestWithParam<CorpusModel> {};

struct Compiled {
  Plan plan;
  PrecisionStats ps;
  Graph g;
};

Compiled compile(const std::string& path, std::optional<DType> low) {
  Compiled c;
  c.g = import_onnx_file(path).graph;
  std::map<std::string, int64_t> dims;
  for (TensorId id : c.g.inputs)
    for (const std::string& s : c.g.tensor(id).sym)
      if (s == "batch" || s == "seq") dims[s] = s == "batch" ? 2 : 64;
  bind_dims(c.g, {.dims = dims});
  infer_shapes(c.g);
  if (low) c.ps = lower_precision(c.g, {.low = *low});
  TrainingOptions to;
  to.loss_scaling.enabled = low == DType::f16;
  build_training_graph(c.g, to);
  c.plan = plan_memory(c.g);
  PlanVerifyResult v = verify_plan(c.plan);
  EXPECT_TRUE(v.ok()) << path << ": " << (v.ok() ? "" : v.errors.front());
  return c;
}

TEST_P(PrecisionCorpus, LowersDifferentiatesAndPlans) {
  const CorpusModel& m = GetParam();
  Compiled f32 = compile(m.path, std::nullopt);
  Compiled bf16 = compile(m.path, DType::bf16);
  EXPECT_GT(bf16.ps.ops_lowered, 0) << "every corpus model has a MatMul, Gemm or Conv";
  for (const Tensor& t : bf16.g.tensors())
    if (t.role == Role::gradient && t.name.ends_with("/grad")) {
      EXPECT_EQ(t.dtype, DType::f32) << t.name;
    }
  Compiled f16 = compile(m.path, DType::f16);
  int unscale = 0;
  for (const PlanOp& op : f16.plan.ops)
    unscale += op.op == "UnscaleGradients";
  EXPECT_EQ(unscale, 1);
  const double ratio = static_cast<double>(bf16.plan.summary.peak_bytes) /
                       static_cast<double>(f32.plan.summary.peak_bytes);
  std::cout << m.opset << "/" << m.name << ": " << bf16.ps.ops_lowered << " ops lowered, "
            << bf16.ps.casts_inserted << " casts; peak f32 " << f32.plan.summary.peak_bytes
            << " bf16 " << bf16.plan.summary.peak_bytes << " (x" << ratio << "); bf16 arena/LB "
            << static_cast<double>(bf16.plan.summary.arena_bytes) /
                   static_cast<double>(bf16.plan.summary.lower_bound_bytes)
            << "\n";
  RecordProperty("bf16_over_f32_peak", std::to_string(ratio));
}

INSTANTIATE_TEST_SUITE_P(Models, PrecisionCorpus, ::testing::ValuesIn(corpus_models()),
                         [](const ::testing::TestParamInfo<CorpusModel>& info) {
                           return info.param.opset + "_" + info.param.name;
                         });

} // namespace
} // namespace memplan::testing
