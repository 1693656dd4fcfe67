// Cost-aware precision selection (passes/precision_select.h,
// PrecisionOptions::select = cost), text graphs in, choices and estimated
// times out. Every expected time is recomputed here from the cost model's
// roofline (compiler/cost_model.h):
//   node_time = max(flops / (peak * efficiency), bytes / (mem_bw * bw_eff)) + launch
// on a round-numbered profile, never read back from the code under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "compiler/autodiff.h"
#include "compiler/budget_search.h"
#include "compiler/cost_model.h"
#include "compiler/ir_text.h"
#include "compiler/plan_verify.h"
#include "passes/infer_shapes.h"
#include "passes/precision.h"
#include "passes/precision_select.h"
#include "runtime/executor.h"
#include "runtime/weights.h"
#include "test/exec_test_util.h"

namespace memplan::testing {
namespace {

// 1 TFLOP/s f32 vector, 8 TFLOP/s bf16 tensor cores, 1 TB/s, 10 us launch,
// efficiencies 1: a node's time is max(flops / peak, bytes / 1e12) + 1e-5.
DeviceProfile round_device() {
  DeviceProfile d;
  d.name = "round";
  d.flops_f32 = 1e12;
  d.flops_bf16 = 8e12;
  d.mem_bw = 1e12;
  d.mem_bytes = int64_t{1} << 30;
  d.launch_s = 1e-5;
  d.efficiency = 1;
  d.bw_efficiency = 1;
  return d;
}

double roofline(double flops, double peak, double bytes) {
  return std::max(flops / peak, bytes / 1e12) + 1e-5;
}

// A 1024^3 MatMul and a 2x2 one, independent, each read by a Softmax (f32,
// so a lowered MatMul's output needs a back cast). x, w1, a, w2 are graph
// inputs, not parameters, so no backward weight applies (every weight is 1).
constexpr const char* kBigAndTiny = R"(graph @g opset 17 {
  input %x : f32[1024,1024]
  input %w1 : f32[1024,1024]
  input %a : f32[2,2]
  input %w2 : f32[2,2]
  %h = MatMul "big" (%x, %w1) : f32[1024,1024]
  %y = MatMul "tiny" (%a, %w2) : f32[2,2]
  %p = Softmax "sm1" (%h) {axis = 1} : f32[1024,1024]
  %q = Softmax "sm2" (%y) {axis = 1} : f32[2,2]
  output %p
  output %q
}
)";

Graph parsed(const char* text) {
  Graph g = parse_graph(text);
  infer_shapes(g);
  return g;
}

TEST(PrecisionSelect, LowersTheBigMatmulAndKeepsTheTinyOneF32) {
  const DeviceProfile d = round_device();
  Graph g = parsed(kBigAndTiny);
  PrecisionStats st = lower_precision(g, {.select = PrecisionSelect::cost, .device = &d});

  // big, N = 1024: 2 N^3 FLOPs; f32 moves 3 N^2 x 4 bytes, bf16 3 N^2 x 2.
  // Each of its 3 casts (x, w1 to bf16; h back to f32) reads 4 and writes 2
  // bytes per element (or the reverse): 6 N^2 bytes, N^2 FLOPs.
  const double n = 1024, n2 = n * n;
  const double big_f32 = roofline(2 * n * n2, 1e12, 12 * n2); // 2.147 ms + launch
  const double big_low = roofline(2 * n * n2, 8e12, 6 * n2);  // 0.268 ms + launch
  const double big_cast = roofline(n2, 1e12, 6 * n2);         // 6.3 us + launch
  // tiny: 2 x 2 x 2 x 2 = 16 FLOPs; 3 x 4 elements; its casts move 4 elements.
  const double tiny_f32 = roofline(16, 1e12, 48);
  const double tiny_low = roofline(16, 8e12, 24);
  const double tiny_cast = roofline(4, 1e12, 24);
  const double big_gain = big_f32 - (big_low + 3 * big_cast);     // ~1.82 ms: lower it
  const double tiny_gain = tiny_f32 - (tiny_low + 3 * tiny_cast); // ~ -30 us: keep f32
  ASSERT_GT(big_gain, 0);
  ASSERT_LT(tiny_gain, 0);

  EXPECT_EQ(st.ops_lowered, 1);
  EXPECT_EQ(st.ops_kept_f32, 1);
  EXPECT_EQ(st.casts_inserted, 3);
  EXPECT_TRUE(g.find_tensor("h/bf16"));
  EXPECT_FALSE(g.find_tensor("y/bf16"));
  EXPECT_FALSE(g.find_tensor("a/to_bf16"));
  // The Softmaxes and the unchanged op cancel in the differences.
  EXPECT_NEAR(st.est_seconds_f32 - st.est_seconds, big_gain, 1e-9 * big_gain);
  EXPECT_NEAR(st.est_seconds_all_low - st.est_seconds, -tiny_gain, 1e-6 * -tiny_gain);
  ASSERT_EQ(st.decisions.size(), 2u);
  EXPECT_EQ(st.decisions[0], "MatMul 'big': bf16 (matmul-class)");
  EXPECT_EQ(st.decisions[1].rfind("MatMul 'tiny': f32 (cost model: bf16 would add 30", 0), 0u)
      << st.decisions[1];
}

TEST(PrecisionSelect, ForcedLowersEveryEligibleOp) {
  // select = all (forced --precision bf16) lowers both, as before.
  Graph g = parsed(kBigAndTiny);
  PrecisionStats st = lower_precision(g, {});
  EXPECT_EQ(st.ops_lowered, 2);
  EXPECT_EQ(st.ops_kept_f32, 0);
  EXPECT_EQ(st.casts_inserted, 6);
  EXPECT_TRUE(g.find_tensor("y/bf16"));
}

TEST(PrecisionSelect, NothingWorthLoweringLeavesGraphUntouched) {
  // Only the tiny half: the selection lowers nothing, the graph prints as
  // it was parsed.
  const char* text = R"(graph @g opset 17 {
  input %a : f32[2,2]
  input %w2 : f32[2,2]
  %y = MatMul "tiny" (%a, %w2) : f32[2,2]
  %q = Softmax "sm2" (%y) {axis = 1} : f32[2,2]
  output %q
}
)";
  const DeviceProfile d = round_device();
  Graph g = parsed(text);
  PrecisionStats st = lower_precision(g, {.select = PrecisionSelect::cost, .device = &d});
  EXPECT_EQ(st.ops_lowered, 0);
  EXPECT_EQ(st.ops_kept_f32, 1);
  EXPECT_EQ(print_graph(g), text);
  EXPECT_DOUBLE_EQ(st.est_seconds, st.est_seconds_f32);
}

TEST(PrecisionSelect, TrainingWeightsCountTheBackwardPass) {
  // x[64,64] (input) x w[64,64] (parameter) -> Relu. Training: the MatMul
  // pays once more for dW (w is trained; x is not, so no dX), Relu once more
  // for ReluGrad: total = 2 t(mm) + 2 t(relu). Frozen w: nothing is
  // differentiated, total = t(mm) + t(relu).
  const char* text = R"(graph @g opset 17 {
  input %x : f32[64,64]
  parameter %w : f32[64,64]
  %h = MatMul "mm" (%x, %w) : f32[64,64]
  %r = Relu "relu" (%h) : f32[64,64]
  output %r
}
)";
  const DeviceProfile d = round_device();
  Graph g = parsed(text);
  const double e = 64 * 64;
  const double mm = roofline(2 * 64 * e, 1e12, 3 * 4 * e); // 0.52 us compute vs 49 ns bytes
  const double relu = roofline(e, 1e12, 2 * 4 * e);        // one FLOP per output element
  EXPECT_NEAR(precision_step_seconds(g, {}, d), 2 * mm + 2 * relu, 1e-15);
  EXPECT_NEAR(precision_step_seconds(g, {.frozen = "^w$"}, d), mm + relu, 1e-15);
  EXPECT_NEAR(precision_step_seconds(g, {.training = false}, d), mm + relu, 1e-15);
}

TEST(PrecisionSelect, Fp16TrainingPaysForLossScaling) {
  // x[256,256] (input) x w[256,256] (trained) -> Softmax. Weights: the MatMul
  // and the casts of w and of h (on the gradient path) count twice, x's cast
  // once. bf16: lowering gains 2 (t_f32 - t_low) ~ 58.7 us of compute but
  // adds 5 weighted casts ~ 52 us: a net ~6.8 us, so it is lowered. fp16 (same
  // peak here) also pays loss scaling: 2 x 4 bytes x 256^2 of gradient read
  // and written + 2 launches ~ 20.5 us, more than the gain: nothing lowered.
  const char* text = R"(graph @g opset 17 {
  input %x : f32[256,256]
  parameter %w : f32[256,256]
  %h = MatMul "mm" (%x, %w) : f32[256,256]
  %p = Softmax "sm" (%h) {axis = 1} : f32[256,256]
  output %p
}
)";
  DeviceProfile d = round_device();
  d.flops_f16 = 8e12;
  const double n = 256, n2 = n * n;
  const double mm_f32 = roofline(2 * n * n2, 1e12, 12 * n2);
  const double mm_low = roofline(2 * n * n2, 8e12, 6 * n2);
  const double cast = roofline(n2, 1e12, 6 * n2);
  const double gain = 2 * (mm_f32 - mm_low) - 5 * cast;
  const double loss_scaling = 8 * n2 / 1e12 + 2e-5;
  ASSERT_GT(gain, 0);
  ASSERT_LT(gain, loss_scaling);

  Graph b = parsed(text);
  PrecisionStats sb = lower_precision(b, {.select = PrecisionSelect::cost, .device = &d});
  EXPECT_EQ(sb.ops_lowered, 1);
  EXPECT_NEAR(sb.est_seconds_f32 - sb.est_seconds, gain, 1e-6 * gain);

  Graph f = parsed(text);
  PrecisionStats sf =
      lower_precision(f, {.low = DType::f16, .select = PrecisionSelect::cost, .device = &d});
  EXPECT_EQ(sf.ops_lowered, 0);
  EXPECT_EQ(sf.ops_kept_f32, 1);
  EXPECT_NEAR(sf.est_seconds_all_low - sf.est_seconds_f32, loss_scaling - gain,
              1e-6 * (loss_scaling - gain));
}

TEST(PrecisionSelect, CostSelectionNeedsADevice) {
  Graph g = parsed(kBigAndTiny);
  try {
    lower_precision(g, {.select = PrecisionSelect::cost});
    FAIL() << "select = cost without a device was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a device profile"), std::string::npos) << e.what();
  }
}

// Training version of kBigAndTiny: trained weights, a scalar loss.
constexpr const char* kBigAndTinyTraining = R"(graph @g opset 17 {
  input %x : f32[1024,1024]
  parameter %w1 : f32[1024,1024]
  input %a : f32[2,2]
  parameter %w2 : f32[2,2]
  %h = MatMul "big" (%x, %w1) : f32[1024,1024]
  %y = MatMul "tiny" (%a, %w2) : f32[2,2]
  %s1 = ReduceMean "mean1" (%h) {keepdims = 0} : f32[]
  %s2 = ReduceMean "mean2" (%y) {keepdims = 0} : f32[]
  %l = Add "loss" (%s1, %s2) : f32[]
  output %l
}
)";

SearchResult search(const std::string& precision) {
  const Graph imported = parsed(kBigAndTinyTraining);
  const DeviceProfile d = round_device();
  LowerFn lower = [&](const LeverChoice& c) {
    Lowered l;
    l.graph = imported;
    if (c.precision != DType::f32) {
      PrecisionStats ps = lower_precision(
          l.graph, {.low = c.precision,
                    .select = c.mixed ? PrecisionSelect::cost : PrecisionSelect::all,
                    .device = &d});
      l.ops_low_precision = ps.ops_lowered;
      l.casts = ps.casts_inserted;
      l.ops_kept_f32 = ps.ops_kept_f32;
    }
    l.training = build_training_graph(l.graph, {});
    return l;
  };
  SearchOptions o;
  o.budget_bytes = int64_t{1} << 34; // 16 GiB: every candidate fits unchanged
  o.precision = precision;
  o.auto_low = true;
  o.device = d;
  return search_budget(lower, o);
}

TEST(PrecisionSelect, SolverPlansTheMixAsItsOwnCandidate) {
  // auto: fp32, bf16 (both MatMuls low) and "bf16 mixed" (only big low, as
  // the pass-level test above shows for the same ops) are the candidates;
  // the mix is the fastest: it has the all-low step's fast big MatMul
  // (forward and dW) without the tiny one's casts (forward and backward). It
  // is searched first, fits, and bounds the other two, which are lowered but
  // not planned; planned alone (forced precision), each is slower.
  SearchResult r = search("auto");
  ASSERT_TRUE(verify_plan(r.plan).ok());
  const PlanDecisions& d = *r.plan.decisions;
  ASSERT_EQ(d.candidates.size(), 3u);
  EXPECT_EQ(d.candidates[0].precision, "fp32");
  EXPECT_EQ(d.candidates[1].precision, "bf16");
  EXPECT_EQ(d.candidates[2].precision, "bf16 mixed");
  EXPECT_TRUE(d.candidates[2].fits);
  for (int i : {0, 1}) {
    EXPECT_FALSE(d.candidates[i].planned) << d.candidates[i].precision;
    EXPECT_NE(d.candidates[i].note.find("slower than the best fit"), std::string::npos)
        << d.candidates[i].note;
  }
  const double all_low = search("bf16").plan.decisions->step_seconds;
  const double fp32 = search("fp32").plan.decisions->step_seconds;
  EXPECT_LT(d.candidates[2].step_seconds, all_low);
  EXPECT_LT(all_low, fp32);
  EXPECT_EQ(d.precision, "bf16 mixed");
  EXPECT_TRUE(r.choice.mixed);
  EXPECT_EQ(d.ops_low_precision, 1); // big only
  EXPECT_EQ(d.casts, 3);             // x, w1 to bf16; h back to f32 for ReduceMean
  // The plan records each op's compute dtype, and the mix runs on the CPU
  // executor (bf16 storage, f32 staging in the planned workspace) to a
  // finite loss.
  int seen = 0;
  for (const PlanOp& op : r.plan.ops) {
    if (op.name != "big" && op.name != "tiny") continue;
    EXPECT_EQ(op.dtype, op.name == "big" ? DType::bf16 : DType::f32) << op.name;
    ++seen;
  }
  EXPECT_EQ(seen, 2);
  r.plan.program =
      print_graph(r.graph, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  r.plan.loss = static_cast<int32_t>(r.graph.outputs[0].v); // as compile_model sets them
  auto ex = make_cpu_executor(r.plan);
  init_random(*ex, 3);
  std::vector<float> x(1024 * 1024), a(4);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(i % 7) * 0.25f - 0.7f;
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = static_cast<float>(i) - 1.5f;
  StepResult step = ex->step({{"x", f32_bytes(x)}, {"a", f32_bytes(a)}});
  EXPECT_TRUE(step.finite) << step.first_nonfinite_op;
  EXPECT_TRUE(std::isfinite(step.loss));
}

TEST(PrecisionSelect, ForcedPrecisionPlansOnlyTheAllLowCandidate) {
  SearchResult r = search("bf16");
  const PlanDecisions& d = *r.plan.decisions;
  ASSERT_EQ(d.candidates.size(), 1u);
  EXPECT_EQ(d.precision, "bf16");
  EXPECT_FALSE(r.choice.mixed);
  EXPECT_EQ(d.ops_low_precision, 2);
}

} // namespace
} // namespace memplan::testing
