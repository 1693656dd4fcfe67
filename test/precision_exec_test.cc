// Lowered training plans executed on the CPU backend against the f32 plan.
//
// Pipeline as compile_model runs it, with lower_precision between
// infer_shapes and build_training_graph. Both plans get the same weights
// (init_random on the f32 executor, copied into the low one) and the same
// synthetic batch; gradients are graph outputs (grads_as_outputs).
//
// Tolerances. One bf16 rounding has relative error at most u = 2^-8 = 3.9e-3
// (8 significant bits, round to nearest), with rms u/sqrt(3) = 2.3e-3 over
// many elements. A gradient element of these models sees about 20 roundings
// (per layer: the input and weight casts, the output, bias/Relu outputs, and
// on the way back the incoming gradient and both matmul-gradient outputs),
// largely independent, so its relative error by tensor norm is about
// sqrt(20) * 2.3e-3 = 1.0e-2; we allow 3e-2 (3x). f16 has u = 2^-11, 8x
// smaller: 4e-3. The loss is one mean over the batch: its relative error is
// below the worst element's, we allow 1e-2 (bf16) and 2e-3 (f16).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>

#include "compiler/autodiff.h"
#include "compiler/dtype_codec.h"
#include "compiler/ir_text.h"
#include "compiler/low_precision.h"
#include "compiler/op_registry.h"
#include "compiler/plan_verify.h"
#include "passes/bind_dims.h"
#include "passes/infer_shapes.h"
#include "passes/plan_memory.h"
#include "passes/precision.h"
#include "passes/remat.h"
#include "python-free-frontends/onnx_importer.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/weights.h"
#include "test/exec_test_util.h"

namespace memplan::testing {
namespace {

std::string tiny_cnn() {
  return MEMPLAN_SOURCE_DIR "/test/models/samples/tiny_cnn.onnx";
}
std::string tiny_transformer() {
  return MEMPLAN_SOURCE_DIR "/test/models/samples/tiny_transformer.onnx";
}

struct Built {
  Plan plan;
  PrecisionStats ps;
};

Plan finish_plan(Graph& g) {
  Plan p = plan_memory(g);
  p.program = print_graph(g, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  p.loss = static_cast<int32_t>(g.outputs[0].v);
  PlanVerifyResult v = verify_plan(p);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.errors.front());
  return p;
}

Built build(const std::string& path, const std::map<std::string, int64_t>& dims,
            std::optional<DType> low, bool loss_scaling = false, bool native_gemms = false) {
  Graph g = import_onnx_file(path).graph;
  bind_dims(g, {.dims = dims});
  infer_shapes(g);
  Built b;
  if (low) b.ps = lower_precision(g, {.low = *low});
  TrainingOptions to;
  to.grads_as_outputs = true;
  to.loss_scaling.enabled = loss_scaling;
  build_training_graph(g, to);
  if (native_gemms) {
    EXPECT_GT(mark_native_low_precision(g), 0);
  }
  b.plan = finish_plan(g);
  return b;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v)
    s += x * x;
  return std::sqrt(s);
}

std::vector<double> as_doubles(const PlanTensor& t, const std::vector<uint8_t>& b) {
  std::vector<double> r;
  for (int64_t i = 0; i < num_elements(t.shape); ++i)
    r.push_back(decode_float(t.dtype, b.data(), static_cast<size_t>(i)));
  return r;
}

/// Bytes of a resident f32 tensor with every element rounded to `low` and back.
std::vector<uint8_t> rounded(const PlanTensor& t, const std::vector<uint8_t>& b, DType low) {
  std::vector<uint8_t> r, back;
  for (int64_t i = 0; i < num_elements(t.shape); ++i)
    encode_float(low, decode_float(DType::f32, b.data(), static_cast<size_t>(i)), r);
  for (int64_t i = 0; i < num_elements(t.shape); ++i)
    encode_float(DType::f32, decode_float(low, r.data(), static_cast<size_t>(i)), back);
  return back;
}

/// Relative difference by norm of gradient `name` between two executors.
double rel_diff(const PlanTensor& t, const Executor& a, const Executor& b) {
  const std::vector<double> x = as_doubles(t, a.read(t.name)), y = as_doubles(t, b.read(t.name));
  std::vector<double> d(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    d[i] = y[i] - x[i];
  const double n = norm(x);
  return n > 0 ? norm(d) / n : norm(d);
}

/// One step of the f32 plan, of the f32 plan on weights rounded to `low`
/// (the sensitivity floor: no computation that stores the weights in `low`
/// can be closer), and of the lowered plan, same batch. Per parameter
/// gradient: rel(lowered) <= max(grad_tol, 3 * rel(rounded weights)).
void compare(const std::string& path, const std::map<std::string, int64_t>& dims, DType low,
             double grad_tol, double loss_tol) {
  Built ref = build(path, dims, std::nullopt);
  Built lo = build(path, dims, low);
  EXPECT_GT(lo.ps.ops_lowered, 0);
  auto e32 = make_cpu_executor(ref.plan, {.seed = 11});
  auto eround = make_cpu_executor(ref.plan, {.seed = 11});
  // Guard mode: staging copies must stay inside each op's planned workspace.
  auto elo = make_cpu_executor(lo.plan, {.guard = true, .seed = 11});
  // Planned == real: without guard the executor allocates exactly the plan.
  EXPECT_EQ(make_cpu_executor(lo.plan)->arena_bytes(), lo.plan.summary.arena_bytes);
  init_random(*e32, 5);
  for (const PlanTensor& t : ref.plan.tensors) {
    if (t.placement != Placement::resident) continue;
    if (t.role == Role::parameter) {
      elo->write(t.name, e32->read(t.name));
      eround->write(t.name, rounded(t, e32->read(t.name), low));
    } else if (t.role == Role::state) {
      elo->write(t.name, e32->read(t.name));
      eround->write(t.name, e32->read(t.name));
    }
  }
  auto feed = make_synthetic_feed(e32->graph(), 3);
  const auto batch = feed->batch(0);
  StepResult r32 = e32->step(batch), rround = eround->step(batch), rlo = elo->step(batch);
  ASSERT_TRUE(r32.finite && rround.finite) << r32.first_nonfinite_op << rround.first_nonfinite_op;
  ASSERT_TRUE(rlo.finite) << rlo.first_nonfinite_op;
  const double loss_err = std::abs(rlo.loss - r32.loss) / std::abs(r32.loss);
  double worst = 0, worst_floor = 0;
  std::string worst_name;
  int compared = 0;
  for (const PlanTensor& t : ref.plan.tensors) {
    const auto idx = static_cast<int32_t>(&t - ref.plan.tensors.data());
    if (t.role != Role::gradient ||
        std::find(ref.plan.outputs.begin(), ref.plan.outputs.end(), idx) == ref.plan.outputs.end())
      continue;
    const PlanTensor* tl = nullptr;
    for (const PlanTensor& u : lo.plan.tensors)
      if (u.name == t.name) tl = &u;
    ASSERT_TRUE(tl) << t.name;
    EXPECT_EQ(tl->dtype, DType::f32) << t.name << ": parameter gradients are f32";
    const double rel = rel_diff(t, *e32, *elo), floor = rel_diff(t, *e32, *eround);
    if (rel > worst) worst = rel, worst_floor = floor, worst_name = t.name;
    ++compared;
    EXPECT_LE(rel, std::max(grad_tol, 3 * floor))
        << path << " " << dtype_name(low) << ": gradient '" << t.name
        << "' (rounding the weights alone: " << floor << ")";
  }
  EXPECT_GT(compared, 0);
  EXPECT_LE(loss_err, loss_tol) << path << " loss " << rlo.loss << " vs " << r32.loss;
  std::cout << path << " " << dtype_name(low) << ": " << lo.ps.ops_lowered << " ops lowered, "
            << lo.ps.casts_inserted << " casts (" << lo.ps.cast_bytes << " B); loss " << rlo.loss
            << " vs f32 " << r32.loss << " (rel " << loss_err << "); " << compared
            << " gradients, worst rel by norm " << worst << " ('" << worst_name
            << "', rounding the weights alone " << worst_floor << "); peak "
            << lo.plan.summary.peak_bytes << " vs f32 " << ref.plan.summary.peak_bytes << "\n";
  // Two more steps (AdamW on f32 master weights) stay finite.
  for (uint64_t k = 1; k < 3; ++k) {
    StepResult r = elo->step(feed->batch(k));
    EXPECT_TRUE(r.finite) << r.first_nonfinite_op;
  }
}

TEST(PrecisionExec, TinyCnnBf16MatchesF32) {
  compare(tiny_cnn(), {{"batch", 32}}, DType::bf16, 3e-2, 1e-2);
}
TEST(PrecisionExec, TinyCnnF16MatchesF32) {
  compare(tiny_cnn(), {{"batch", 8}}, DType::f16, 4e-3, 2e-3);
}
TEST(PrecisionExec, TinyTransformerBf16MatchesF32) {
  compare(tiny_transformer(), {{"batch", 4}, {"seq", 16}}, DType::bf16, 3e-2, 1e-2);
}

/// Target staging: the same low-precision training graph with the ops of
/// op_runs_low_precision_on_gpu marked native (as plans for a GPU are) reserves
/// no f32 staging for them, so its planned workspaces shrink and its lower
/// bound cannot rise; the CPU backend stages them in scratch outside the
/// arena and computes bit for bit what the unmarked plan computes. Returns
/// the marked op types.
std::set<std::string> native_ops_stage_outside_and_compute_the_same(
    const std::string& model, const std::map<std::string, int64_t>& dims, DType low) {
  Built in = build(model, dims, low);
  Built out = build(model, dims, low, false, /*native_gemms=*/true);
  const Graph g = parse_graph(out.plan.program);
  std::map<std::string, const Node*> by_name;
  for (const Node& n : g.nodes()) by_name[n.name] = &n;
  int64_t scratch = 0;
  std::set<std::string> marked;
  for (size_t s = 0; s < out.plan.ops.size(); ++s) {
    EXPECT_TRUE(by_name.count(out.plan.ops[s].name)) << out.plan.ops[s].name;
    if (!by_name.count(out.plan.ops[s].name)) continue;
    const Node& n = *by_name[out.plan.ops[s].name];
    const bool conv = n.op.starts_with("Conv");
    if (!staged_outside_plan(n)) {
      EXPECT_FALSE(op_runs_low_precision_on_gpu(n.op) && low_precision_staging_bytes(g, n) > 0)
          << n.name << " is not native";
      continue;
    }
    marked.insert(n.op);
    EXPECT_TRUE(op_runs_low_precision_on_gpu(n.op)) << n.name;
    if (conv) {  // one low dtype for every input and output: cuDNN's pseudo-half configurations
      for (const auto* slots : {&n.inputs, &n.outputs})
        for (TensorId t : *slots)
          if (t.valid()) {
            EXPECT_EQ(g.tensor(t).dtype, low) << n.name << " " << g.tensor(t).name;
          }
    }
    EXPECT_GT(low_precision_staging_bytes(g, n), 0) << n.name;
    EXPECT_EQ(out.plan.ops[s].workspace_bytes, node_workspace_bytes(g, n)) << n.name;
    EXPECT_EQ(node_workspace_bytes(g, n),
              cpu_workspace_bytes(g, n) - low_precision_staging_bytes(g, n));
    scratch = std::max(scratch, cpu_workspace_bytes(g, n));
  }
  EXPECT_FALSE(marked.empty()) << "the marks survive the plan's program";
  auto workspaces = [](const Plan& p) {
    int64_t total = 0;
    for (const PlanOp& op : p.ops) total += op.workspace_bytes;
    return total;
  };
  EXPECT_LT(workspaces(out.plan), workspaces(in.plan));
  EXPECT_LE(out.plan.summary.lower_bound_bytes, in.plan.summary.lower_bound_bytes);
  std::cout << model.substr(model.rfind('/') + 1) << " " << dtype_name(low) << ": " << marked.size()
            << " op types native; LB "
            << out.plan.summary.lower_bound_bytes << " vs " << in.plan.summary.lower_bound_bytes
            << " staged in the plan; planned workspaces " << workspaces(out.plan) << " vs "
            << workspaces(in.plan) << "; CPU scratch " << scratch << " B\n";

  auto ein = make_cpu_executor(in.plan, {.seed = 11});
  auto eout = make_cpu_executor(out.plan, {.guard = true, .seed = 11});
  EXPECT_EQ(ein->scratch_bytes(), 0);
  EXPECT_EQ(eout->scratch_bytes(), scratch);
  EXPECT_EQ(make_cpu_executor(out.plan)->arena_bytes(), out.plan.summary.arena_bytes);
  init_random(*ein, 5);
  for (const PlanTensor& t : in.plan.tensors)
    if (t.placement == Placement::resident && (t.role == Role::parameter || t.role == Role::state))
      eout->write(t.name, ein->read(t.name));
  auto feed = make_synthetic_feed(ein->graph(), 3);
  for (uint64_t k = 0; k < 2; ++k) {
    StepResult a = ein->step(feed->batch(k)), b = eout->step(feed->batch(k));
    EXPECT_TRUE(a.finite && b.finite);
    EXPECT_EQ(a.loss, b.loss) << "step " << k;
  }
  int compared = 0;
  for (const PlanTensor& t : in.plan.tensors)
    if (t.placement == Placement::resident && t.role == Role::parameter) {
      EXPECT_EQ(ein->read(t.name), eout->read(t.name)) << t.name;
      ++compared;
    }
  EXPECT_GT(compared, 0);
  return marked;
}

TEST(PrecisionExec, NativeGemmsStageOutsideThePlanAndComputeTheSame) {
  const std::set<std::string> ops = native_ops_stage_outside_and_compute_the_same(
      tiny_transformer(), {{"batch", 4}, {"seq", 16}}, DType::bf16);
  EXPECT_TRUE(ops.count("MatMul") || ops.count("Gemm") || ops.count("MatMulTrans"));
  EXPECT_FALSE(ops.count("Conv"));
}

/// The CNN's convolutions, forward and both backward ops, and (rule 2b)
/// its BatchNorms and the Relus and pools after them, in bf16 and f16.
TEST(PrecisionExec, NativeConvolutionsStageOutsideThePlanAndComputeTheSame) {
  for (DType low : {DType::bf16, DType::f16}) {
    const std::set<std::string> ops =
        native_ops_stage_outside_and_compute_the_same(tiny_cnn(), {{"batch", 8}}, low);
    for (const char* op : {"Conv", "ConvGradInput", "ConvGradWeight", "BatchNormTraining",
                           "BatchNormTrainingGrad", "Relu", "ReluGrad"})
      EXPECT_TRUE(ops.count(op)) << op << " " << dtype_name(low);
  }
}

/// f16 with dynamic loss scaling (S = 65536) on the transformer: the first
/// step's loss is the f32 forward's up to f16 rounding (scaling touches only
/// the backward), the unscaled gradients match as in the f16 test above, and
/// five steps run without a NaN error; S only moves by halving (overflow) or
/// not at all (growth_interval 2000 is not reached).
TEST(PrecisionExec, TinyTransformerF16WithLossScaling) {
  const std::map<std::string, int64_t> dims = {{"batch", 4}, {"seq", 16}};
  Built ref = build(tiny_transformer(), dims, std::nullopt);
  Built lo = build(tiny_transformer(), dims, DType::f16, /*loss_scaling=*/true);
  auto e32 = make_cpu_executor(ref.plan, {.seed = 11});
  auto elo = make_cpu_executor(lo.plan, {.seed = 11});
  init_random(*e32, 5);
  init_random(*elo, 5);
  ASSERT_EQ(as_f32(elo->read("memplan/loss_scale")).at(0), 65536.0f);
  for (const PlanTensor& t : ref.plan.tensors)
    if (t.placement == Placement::resident && t.role == Role::parameter)
      elo->write(t.name, e32->read(t.name));
  auto feed = make_synthetic_feed(e32->graph(), 3);
  StepResult r32 = e32->step(feed->batch(0)), rlo = elo->step(feed->batch(0));
  ASSERT_TRUE(rlo.finite) << rlo.first_nonfinite_op;
  EXPECT_LE(std::abs(rlo.loss - r32.loss) / std::abs(r32.loss), 2e-3);
  double worst = 0;
  for (const PlanTensor& t : ref.plan.tensors) {
    const auto idx = static_cast<int32_t>(&t - ref.plan.tensors.data());
    if (t.role != Role::gradient ||
        std::find(ref.plan.outputs.begin(), ref.plan.outputs.end(), idx) == ref.plan.outputs.end())
      continue;
    worst = std::max(worst, rel_diff(t, *e32, *elo));
  }
  const float s1 = as_f32(elo->read("memplan/loss_scale")).at(0);
  std::cout << "tiny_transformer f16 + loss scaling: loss " << rlo.loss << " vs f32 " << r32.loss
            << ", worst gradient rel by norm " << worst << ", scale after step 1: " << s1 << "\n";
  if (s1 == 65536.0f) {
    EXPECT_LE(worst, 4e-3); // an applied step: gradients as without scaling
  }
  float s = s1;
  for (uint64_t k = 1; k < 5; ++k) {
    StepResult r = elo->step(feed->batch(k));
    ASSERT_TRUE(r.finite) << r.first_nonfinite_op;
    const float next = as_f32(elo->read("memplan/loss_scale")).at(0);
    EXPECT_TRUE(next == s || next == s / 2) << s << " -> " << next;
    s = next;
  }
}

/// A frozen weight (same regex for the pass and for --freeze) is stored in
/// bf16: load_weights converts the model's f32 initializer (round to nearest
/// even), the resident region shrinks by half its bytes, and the step runs.
TEST(PrecisionExec, FrozenWeightLoadsFromOnnxAsBf16) {
  const std::string frozen = "^model\\.features\\.0\\.weight$";
  Graph g = import_onnx_file(tiny_cnn()).graph;
  const Graph src = g; // the model's f32 initializers
  bind_dims(g, {.dims = {{"batch", 4}}});
  infer_shapes(g);
  PrecisionStats ps = lower_precision(g, {.frozen = frozen});
  EXPECT_EQ(ps.frozen_weights_lowered, 1);
  TrainingOptions to;
  to.freeze = frozen;
  build_training_graph(g, to);
  Plan p = finish_plan(g);
  auto ex = make_cpu_executor(p);
  load_weights(*ex, tiny_cnn());
  const Tensor& w = src.tensor(*src.find_tensor("model.features.0.weight"));
  const std::vector<uint8_t> got = ex->read("model.features.0.weight");
  ASSERT_EQ(got.size(), static_cast<size_t>(w.numel() * 2));
  ASSERT_TRUE(w.data);
  for (int64_t i = 0; i < w.numel(); ++i) {
    std::vector<uint8_t> want;
    encode_float(DType::bf16, decode_float(DType::f32, w.data->data(), static_cast<size_t>(i)),
                 want);
    ASSERT_EQ(got[2 * static_cast<size_t>(i)], want[0]) << i;
    ASSERT_EQ(got[2 * static_cast<size_t>(i) + 1], want[1]) << i;
  }
  auto feed = make_synthetic_feed(ex->graph(), 3);
  StepResult r = ex->step(feed->batch(0));
  EXPECT_TRUE(r.finite) << r.first_nonfinite_op;
  EXPECT_EQ(ex->read("model.features.0.weight"), got); // frozen: not updated
}

/// Precision and rematerialization together: the bf16 transformer fitted to
/// 80% of its own peak recomputes some nodes (casts and low ops included, with
/// their staging workspaces) and still gives bit-identical losses and
/// parameters over two steps, since recomputation runs the same kernels on
/// the same values.
TEST(PrecisionExec, Bf16TransformerWithRematIsBitIdentical) {
  const std::map<std::string, int64_t> dims = {{"batch", 4}, {"seq", 32}};
  auto graph = [&] {
    Graph g = import_onnx_file(tiny_transformer()).graph;
    bind_dims(g, {.dims = dims});
    infer_shapes(g);
    lower_precision(g, {});
    build_training_graph(g, {});
    return g;
  };
  Graph g0 = graph();
  const Plan base = finish_plan(g0);
  Graph g1 = graph();
  const int64_t budget = base.summary.peak_bytes * 8 / 10;
  RematFit fit = fit_to_budget(g1, {}, {.budget_bytes = budget});
  Plan fitted = fit.plan;
  fitted.program = print_graph(g1, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  fitted.loss = static_cast<int32_t>(g1.outputs[0].v);
  PlanVerifyResult v = verify_plan(fitted);
  ASSERT_TRUE(v.ok()) << v.errors.front();
  EXPECT_LE(fitted.summary.peak_bytes, budget);
  EXPECT_GT(fit.remat.recomputed_nodes, 0);
  std::cout << "bf16 tiny_transformer: peak " << base.summary.peak_bytes << ", at budget " << budget
            << " peak " << fitted.summary.peak_bytes << " with " << fit.remat.recomputed_nodes
            << " recomputed runs\n";
  auto a = make_cpu_executor(base, {.seed = 11}), b = make_cpu_executor(fitted, {.seed = 11});
  init_random(*a, 5);
  init_random(*b, 5);
  auto feed = make_synthetic_feed(a->graph(), 3);
  for (uint64_t k = 0; k < 2; ++k) {
    StepResult ra = a->step(feed->batch(k)), rb = b->step(feed->batch(k));
    ASSERT_TRUE(ra.finite && rb.finite) << rb.first_nonfinite_op;
    EXPECT_EQ(ra.loss, rb.loss) << "step " << k;
  }
  for (const PlanTensor& t : base.tensors)
    if (t.role == Role::parameter && t.placement == Placement::resident) {
      EXPECT_EQ(a->read(t.name), b->read(t.name)) << t.name;
    }
}

/// An MLP whose saved matmul inputs dominate: batch 4096, width 256, 4
/// layers, SGD (no optimizer state). f32 saves per layer the Relu output the
/// next MatMul reads, 4096 * 256 * 4 B = 4 MiB; bf16 saves it in 2 MiB (plus
/// the bf16 weight copies, 128 KiB each), so the bf16 peak must be lower,
/// even with the transient f32 staging of one op (at most ~3 x 4 MiB).
TEST(PrecisionExec, Bf16PeakBelowF32WhenActivationsDominate) {
  auto make = [](bool lower) {
    Graph g;
    TensorId h = add_decl(g, "x", Role::input, {4096, 256});
    add_decl(g, "labels", Role::input, {4096, 256});
    for (int l = 0; l < 4; ++l) {
      TensorId w = add_decl(g, "w" + std::to_string(l), Role::parameter, {256, 256});
      TensorId b = add_decl(g, "b" + std::to_string(l), Role::parameter, {256});
      h = add_op(g, "MatMul", {h, w}, "mm" + std::to_string(l));
      h = add_op(g, "Add", {h, b}, "add" + std::to_string(l));
      if (l < 3) h = add_op(g, "Relu", {h}, "relu" + std::to_string(l));
    }
    g.outputs = {h};
    infer_shapes(g);
    if (lower) lower_precision(g, {});
    TrainingOptions to;
    to.loss = "mse";
    to.labels = "labels";
    to.optimizer.kind = OptimizerKind::sgd;
    build_training_graph(g, to);
    return finish_plan(g);
  };
  const Plan p32 = make(false), p16 = make(true);
  std::cout << "MLP 4096x256x4: peak f32 " << p32.summary.peak_bytes << " (arena "
            << p32.summary.arena_bytes << ", LB " << p32.summary.lower_bound_bytes << "), bf16 "
            << p16.summary.peak_bytes << " (arena " << p16.summary.arena_bytes << ", LB "
            << p16.summary.lower_bound_bytes << ")\n";
  EXPECT_LT(p16.summary.peak_bytes, p32.summary.peak_bytes);
}

} // namespace
} // namespace memplan::testing
