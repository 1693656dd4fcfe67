// Micro-batching: passes/microbatch.h (binding) and the training pass's
// replication (TrainingOptions::micro_batches, compiler/autodiff_microbatch.cc).
//
// Executed cases (CPU executor, planned, one SGD step with lr 0.1 and the
// gradients as outputs) against an independent reference: the unplanned
// k = 1 graph bound at the micro batch, run with the interpreter on each of
// the k slices (BatchNorm running statistics carried from slice to slice;
// Dropout with rng_offset = i * numel(X), the masks the replicas use),
// combined with the weights the global-count mean implies:
//   model's own (mean) loss:  w_i = 1/k
//   cross-entropy:            w_i = n_i / N  (n_i non-ignored labels of slice i)
//   mse:                      w_i = 1/k      (equal slices)
// loss = sum_i w_i loss_i, grad = sum_i w_i grad_i, param' = param - 0.1 grad.
// BatchNorm-free models must also match the full-batch k = 1 step.
// Tolerance: 1e-5 relative to the reference's norm (f32 sums in another order).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>

#include "compiler/autodiff.h"
#include "compiler/ir_text.h"
#include "compiler/plan_verify.h"
#include "passes/bind_dims.h"
#include "passes/infer_shapes.h"
#include "passes/microbatch.h"
#include "passes/plan_memory.h"
#include "passes/remat.h"
#include "python-free-frontends/onnx_importer.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/interpreter.h"
#include "runtime/weights.h"
#include "test/exec_test_util.h"

namespace memplan::testing {
namespace {

std::string tiny_cnn() { return MEMPLAN_SOURCE_DIR "/test/models/samples/tiny_cnn.onnx"; }
std::string tiny_transformer() {
  return MEMPLAN_SOURCE_DIR "/test/models/samples/tiny_transformer.onnx";
}

using Bytes = std::vector<uint8_t>;
using Feed = std::map<std::string, Bytes>;

TrainingOptions sgd_options(int64_t k, const std::string& loss = "") {
  TrainingOptions o;
  o.loss = loss;
  o.optimizer.kind = OptimizerKind::sgd;
  o.optimizer.lr = 0.1;
  o.grads_as_outputs = true;
  o.micro_batches = k;
  return o;
}

/// import -> micro_binding -> bind_dims -> infer_shapes -> training graph.
Graph training_graph(const std::string& path, const BindOptions& full, int64_t k,
                     TrainingOptions o, TrainingStats* stats = nullptr) {
  Graph g = import_onnx_file(path).graph;
  bind_dims(g, micro_binding(g, full, k));
  infer_shapes(g);
  o.micro_batches = k;
  TrainingStats st = build_training_graph(g, o);
  if (stats) *stats = st;
  return g;
}

Plan plan_graph(const Graph& g, ScheduleMethod m = ScheduleMethod::best) {
  Plan p = plan_memory(g, {.schedule = m});
  p.loss = static_cast<int32_t>(g.outputs.at(0).v);  // as compile_model sets it
  p.program = print_graph(g, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  PlanVerifyResult r = verify_plan(p);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.errors.front());
  return p;
}

std::vector<double> as_doubles(const Bytes& b) {
  std::vector<double> v(b.size() / 4);
  for (size_t i = 0; i < v.size(); ++i) {
    float f;
    std::memcpy(&f, b.data() + 4 * i, 4);
    v[i] = f;
  }
  return v;
}

/// ||a - b|| / ||b|| (absolute when b is zero).
double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    n += b[i] * b[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

/// The trained parameters of a training graph (those with a "/grad" output).
std::vector<std::string> trained_params(const Graph& g) {
  std::vector<std::string> r;
  for (const Tensor& t : g.tensors())
    if (t.role == Role::parameter && g.find_tensor(t.name + "/grad")) r.push_back(t.name);
  return r;
}

/// What one step produced: loss, gradient and parameter' per trained
/// parameter, and state' (BatchNorm running statistics).
struct Step {
  double loss = 0;
  std::map<std::string, std::vector<double>> grads, params, state;
};

/// Runs one planned step on the CPU executor with the given parameters.
Step run_planned(const Graph& g, const Plan& p, const std::map<std::string, Bytes>& params,
                 const Feed& feed) {
  auto ex = make_cpu_executor(p, {.seed = 11});
  for (const auto& [name, bytes] : params) ex->write(name, bytes);
  StepResult r = ex->step(feed);
  EXPECT_TRUE(r.finite) << r.first_nonfinite_op;
  Step s;
  s.loss = r.loss;
  for (const std::string& name : trained_params(g)) {
    s.grads[name] = as_doubles(ex->read(name + "/grad"));
    s.params[name] = as_doubles(ex->read(name));
  }
  for (const Tensor& t : g.tensors())
    if (t.role == Role::state && !t.producer.valid() && t.name != "memplan/step")
      s.state[t.name] = as_doubles(ex->read(t.name));
  return s;
}

/// Part i of k of a full-batch input (axis 0 is the batch, row-major).
Bytes slice(const Bytes& full, int64_t i, int64_t k) {
  const size_t n = full.size() / static_cast<size_t>(k);
  return Bytes(full.begin() + static_cast<long>(n * static_cast<size_t>(i)),
               full.begin() + static_cast<long>(n * static_cast<size_t>(i + 1)));
}

/// The reference: the micro-sized k = 1 graph `ref` (optimizer none, grads as
/// outputs) interpreted on each slice, combined with weights w.
Step reference(Graph ref, const std::map<std::string, Bytes>& params, const Feed& feed, int64_t k,
               const std::vector<double>& w) {
  Step s;
  std::map<std::string, Bytes> state;  // running statistics, carried over
  for (const auto& [name, bytes] : params)
    if (ref.tensor(*ref.find_tensor(name)).role == Role::state) state[name] = bytes;
  const auto names = trained_params(ref);
  for (int64_t i = 0; i < k; ++i) {
    for (uint32_t n = 0; n < ref.num_nodes(); ++n) {
      Node& node = ref.node(NodeId(n));
      if (node.op == "Dropout")  // the mask of replica i (runtime/cpu/dropout.cc)
        node.attrs["rng_offset"] = i * ref.tensor(node.inputs[0]).numel();
    }
    Interpreter in(ref, 11, 0);
    for (const auto& [name, bytes] : params) in.set(*ref.find_tensor(name), bytes);
    for (const auto& [name, bytes] : state) in.set(*ref.find_tensor(name), bytes);  // wins
    for (TensorId t : ref.inputs) in.set(t, slice(feed.at(ref.tensor(t).name), i, k));
    in.run();
    s.loss += w[i] * as_doubles(in.get(ref.outputs[0]))[0];
    for (const std::string& name : names) {
      const auto gi = as_doubles(in.get(*ref.find_tensor(name + "/grad")));
      auto& acc = s.grads[name];
      acc.resize(gi.size(), 0.0);
      for (size_t j = 0; j < gi.size(); ++j) acc[j] += w[i] * gi[j];
    }
    for (TensorId o : ref.outputs) {  // state' aliases its state tensor
      const Tensor& root = ref.tensor(alias_root(ref, o));
      if (root.role == Role::state && state.count(root.name)) state[root.name] = in.get(o);
    }
  }
  for (const std::string& name : names) {
    auto p = as_doubles(params.at(name));
    for (size_t j = 0; j < p.size(); ++j) p[j] -= 0.1 * s.grads[name][j];
    s.params[name] = p;
  }
  for (const auto& [name, bytes] : state) s.state[name] = as_doubles(bytes);
  return s;
}

void expect_close(const Step& got, const Step& want, const std::string& what) {
  const double tol = 1e-5;
  EXPECT_LE(std::abs(got.loss - want.loss), tol * std::max(1.0, std::abs(want.loss)))
      << what << ": loss " << got.loss << " vs " << want.loss;
  ASSERT_EQ(got.grads.size(), want.grads.size()) << what;
  ASSERT_FALSE(want.grads.empty()) << what;
  for (const auto& [name, g] : want.grads) {
    EXPECT_LE(rel_err(got.grads.at(name), g), tol) << what << ": gradient of " << name;
    EXPECT_LE(rel_err(got.params.at(name), want.params.at(name)), tol) << what << ": " << name << "'";
  }
  for (const auto& [name, s] : want.state)
    if (got.state.count(name)) {
      EXPECT_LE(rel_err(got.state.at(name), s), tol) << what << ": " << name;
    }
}

/// Random parameters (init_random) and the initial state (BatchNorm running
/// statistics), by name: both runs start from these.
std::map<std::string, Bytes> random_params(const Plan& p) {
  auto ex = make_cpu_executor(p, {.seed = 11});
  init_random(*ex, 5);
  std::map<std::string, Bytes> r;
  for (const Tensor& t : ex->graph().tensors())
    if (!t.producer.valid() && t.name != "memplan/step" &&
        (t.role == Role::parameter || t.role == Role::state))
      r[t.name] = ex->read(t.name);
  return r;
}

struct Model {
  std::string path;
  BindOptions full;
  bool batchnorm;
};

/// k micro-batches vs the per-slice reference (and vs k = 1 without BatchNorm).
void check_model(const Model& m, int64_t k) {
  const std::string what = m.path + " k=" + std::to_string(k);
  TrainingStats st;
  Graph g = training_graph(m.path, m.full, k, sgd_options(k), &st);
  EXPECT_EQ(st.micro_batches, k);
  const bool warned = std::any_of(st.warnings.begin(), st.warnings.end(), [](const std::string& w) {
    return w.find("BatchNorm statistics are per micro-batch") != std::string::npos;
  });
  EXPECT_EQ(warned, m.batchnorm) << what;
  const Plan p = plan_graph(g);
  const auto params = random_params(p);
  const Feed feed = make_synthetic_feed(g, 3)->batch(0);
  const Step got = run_planned(g, p, params, feed);

  TrainingOptions ro = sgd_options(1);
  ro.optimizer.kind = OptimizerKind::none;
  Graph ref = import_onnx_file(m.path).graph;
  bind_dims(ref, micro_binding(ref, m.full, k));
  infer_shapes(ref);
  build_training_graph(ref, ro);
  expect_close(got, reference(ref, params, feed, k, std::vector<double>(k, 1.0 / double(k))),
               what + " vs slices");
  if (m.batchnorm) return;
  Graph one = training_graph(m.path, m.full, 1, sgd_options(1));
  expect_close(got, run_planned(one, plan_graph(one), params, feed), what + " vs k=1");
}

Model cnn() { return {tiny_cnn(), {.dims = {{"batch", 16}}}, true}; }
Model transformer() { return {tiny_transformer(), {.dims = {{"batch", 8}, {"seq", 32}}}, false}; }

// ---------------------------------------------------------------- built losses

/// A linear classifier / regressor bound at `rows`: logits = x W + b, x
/// f32[rows,4], W f32[4,3], b f32[3]; labels i64[rows] (cross-entropy) or
/// f32[rows,3] (mse).
Graph linear(int64_t rows, bool mse) {
  Graph g;
  g.opset = 17;
  TensorId x = add_decl(g, "x", Role::input, {rows, 4});
  add_decl(g, "labels", Role::input, mse ? Shape{rows, 3} : Shape{rows}, mse ? DType::f32 : DType::i64);
  TensorId w = add_decl(g, "W", Role::parameter, {4, 3});
  TensorId b = add_decl(g, "b", Role::parameter, {3});
  TensorId h = add_op(g, "MatMul", {x, w}, "h");
  g.outputs = {add_op(g, "Add", {h, b}, "logits")};
  infer_shapes(g);
  return g;
}

Graph linear_training(int64_t rows, bool mse, int64_t k, OptimizerKind opt = OptimizerKind::sgd,
                      double clip = 0.0) {
  Graph g = linear(rows, mse);
  TrainingOptions o = sgd_options(k, mse ? "mse" : "cross-entropy");
  o.optimizer.kind = opt;
  o.clip_grad_norm = clip;
  build_training_graph(g, o);
  return g;
}

/// Deterministic values in [-1, 1): element i -> ((i * 37) % 101) / 50.5 - 1.
Bytes pattern(int64_t n, int64_t salt) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = float(((i + salt) * 37 % 101) / 50.5 - 1.0);
  return f32_bytes(v);
}

Bytes i64_bytes(const std::vector<int64_t>& v) {
  Bytes b(v.size() * 8);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

void check_linear(bool mse, int64_t k, const std::vector<int64_t>& labels,
                  const std::vector<double>& w) {
  const int64_t B = 8, m = B / k;
  const std::string what = std::string(mse ? "mse" : "cross-entropy") + " k=" + std::to_string(k);
  Graph g = linear_training(m, mse, k);
  const Plan p = plan_graph(g);
  const std::map<std::string, Bytes> params = {{"W", pattern(12, 1)}, {"b", pattern(3, 5)}};
  const Feed feed = {{"x", pattern(B * 4, 3)},
                     {"labels", mse ? pattern(B * 3, 7) : i64_bytes(labels)}};
  const Step got = run_planned(g, p, params, feed);
  expect_close(got, reference(linear_training(m, mse, 1, OptimizerKind::none), params, feed, k, w),
               what + " vs slices");
  Graph one = linear_training(B, mse, 1);
  expect_close(got, run_planned(one, plan_graph(one), params, feed), what + " vs k=1");
}

TEST(MicroBatchExec, CrossEntropyCountsIgnoredLabelsGlobally) {
  // Labels with ignore_index -100: slice counts differ, so each replica's
  // weight is its count over the global count N = 5, not 1/k. A per-slice
  // mean times 1/k (weights 0.5, 0.5) would fail the comparison with k = 1.
  const std::vector<int64_t> labels = {0, -100, -100, 1, 2, 1, 0, -100};
  check_linear(false, 2, labels, {2.0 / 5, 3.0 / 5});            // n = 2, 3
  check_linear(false, 4, labels, {1.0 / 5, 1.0 / 5, 2.0 / 5, 1.0 / 5});  // n = 1, 1, 2, 1
}

TEST(MicroBatchExec, MseDividesByTheFullElementCount) {
  check_linear(true, 2, {}, {0.5, 0.5});
  check_linear(true, 4, {}, {0.25, 0.25, 0.25, 0.25});
}

TEST(MicroBatchExec, ClippingSeesTheAccumulatedGradient) {
  // max_norm 0.01 is far below the gradient norm, so the update is scaled:
  // a per-replica clip would scale each half differently from k = 1. The
  // gradients output are the unclipped accumulated ones; parameters' differ.
  const std::vector<int64_t> labels = {0, -100, -100, 1, 2, 1, 0, -100};
  const std::map<std::string, Bytes> params = {{"W", pattern(12, 1)}, {"b", pattern(3, 5)}};
  const Feed feed = {{"x", pattern(32, 3)}, {"labels", i64_bytes(labels)}};
  Graph g = linear_training(4, false, 2, OptimizerKind::sgd, 0.01);
  Graph one = linear_training(8, false, 1, OptimizerKind::sgd, 0.01);
  int norms = 0;
  for (const Node& n : g.nodes()) norms += n.op == "GlobalNormScale";
  EXPECT_EQ(norms, 1);
  const Step got = run_planned(g, plan_graph(g), params, feed);
  const Step want = run_planned(one, plan_graph(one), params, feed);
  expect_close(got, want, "clip k=2 vs k=1");
  // The clipped step moved W by 0.1 * 0.01 in norm, up to the 1e-6 in the
  // scale's denominator: ||W' - W|| = 1e-3.
  double d = 0;
  const auto w0 = as_doubles(params.at("W")), w1 = got.params.at("W");
  const auto b0 = as_doubles(params.at("b")), b1 = got.params.at("b");
  for (size_t i = 0; i < w0.size(); ++i) d += (w1[i] - w0[i]) * (w1[i] - w0[i]);
  for (size_t i = 0; i < b0.size(); ++i) d += (b1[i] - b0[i]) * (b1[i] - b0[i]);
  EXPECT_NEAR(std::sqrt(d), 1e-3, 1e-6);
}

TEST(MicroBatchExec, RematOnAMicroBatchedGraph) {
  // The remat pass runs unchanged on the unrolled graph: tiny_cnn at batch
  // 16, k = 2, a budget of 90% of its peak forces recomputation inside a
  // replica (BatchNormTraining clones read running statistics the next
  // replica overwrites), and the step still matches the plan without remat.
  Graph g = training_graph(tiny_cnn(), {.dims = {{"batch", 16}}}, 2, sgd_options(2));
  const Plan base = plan_graph(g);
  const int64_t budget = base.summary.peak_bytes * 90 / 100;
  const auto params = random_params(base);
  const Feed feed = make_synthetic_feed(g, 3)->batch(0);
  const Step want = run_planned(g, base, params, feed);
  Graph r = g;
  RematFit fit = fit_to_budget(r, {}, {.budget_bytes = budget});
  fit.plan.loss = static_cast<int32_t>(r.outputs.at(0).v);
  fit.plan.program = print_graph(r, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  PlanVerifyResult v = verify_plan(fit.plan);
  ASSERT_TRUE(v.ok()) << v.errors.front();
  EXPECT_LE(fit.plan.summary.peak_bytes, budget);
  EXPECT_GT(fit.remat.recomputed_nodes, 0);
  std::cout << "tiny_cnn batch 16 k=2: peak " << base.summary.peak_bytes << ", with remat at "
            << budget << ": " << fit.plan.summary.peak_bytes << " (" << fit.remat.recomputed_nodes
            << " recomputed)\n";
  expect_close(run_planned(r, fit.plan, params, feed), want, "remat k=2");
}

TEST(MicroBatchGraph, NamesAccumulationAndOrdering) {
  Graph g = linear_training(4, false, 2);
  // Inputs keep their names at the full batch; replica 0 reads x/mb0.
  EXPECT_EQ(g.tensor(g.inputs[0]).name, "x");
  EXPECT_EQ(g.tensor(g.inputs[0]).shape, (Shape{8, 4}));
  ASSERT_TRUE(g.find_tensor("x/mb0"));
  ASSERT_TRUE(g.find_tensor("logits/mb1"));
  EXPECT_EQ(g.tensor(g.outputs[0]).name, "loss");
  ASSERT_TRUE(g.find_tensor("loss/mb0"));
  ASSERT_TRUE(g.find_tensor("loss/mb1"));
  // Replica 1's slices run after replica 0's loss and gradients: both
  // gradients (W, b) and the loss are ordering inputs.
  int slices = 0, accumulates = 0;
  for (const Node& n : g.nodes()) {
    if (n.name.rfind("memplan/grad_accumulate/", 0) == 0) {
      ++accumulates;
      std::cout << n.name << ": " << n.op << "\n";
    }
    if (n.op != "BatchSlice" || attr_int(n, "index", 0) != 1) continue;
    ++slices;
    EXPECT_EQ(n.inputs.size(), 4u) << n.name << ": full input, loss/mb0, 2 gradients";
  }
  EXPECT_EQ(slices, 2);       // x and labels
  EXPECT_EQ(accumulates, 2);  // W and b
  // The reported plan is verified and the graph round-trips as text.
  plan_graph(g);
  EXPECT_EQ(print_graph(parse_graph(print_graph(g))), print_graph(g));
}

// ---------------------------------------------------------------- peak

TEST(MicroBatchPlan, PeakDropsWithK) {
  // tiny_cnn at batch 32: activations dominate (parameters ~ 100 KiB). With k
  // replicas forced one after another, the peak is at most the micro-batch
  // graph's own peak P_micro plus what stays live across replicas: the
  // accumulated gradients G and the full-batch inputs I (plus scalars).
  const BindOptions full{.dims = {{"batch", 32}}};
  const TrainingOptions o = sgd_options(1);
  const int64_t P1 = plan_graph(training_graph(tiny_cnn(), full, 1, o)).summary.peak_bytes;
  int64_t prev = P1;
  for (int64_t k : {2, 4}) {
    Graph g = training_graph(tiny_cnn(), full, k, o);
    Graph micro = training_graph(tiny_cnn(), {.dims = {{"batch", 32 / k}}}, 1, o);
    const int64_t Pm = plan_graph(micro).summary.peak_bytes;
    int64_t G = 0, I = 0;
    for (const std::string& name : trained_params(g)) G += g.tensor(*g.find_tensor(name)).bytes();
    for (TensorId t : g.inputs) I += g.tensor(t).bytes();
    for (ScheduleMethod m : {ScheduleMethod::model_order, ScheduleMethod::greedy,
                             ScheduleMethod::greedy_lifo, ScheduleMethod::best}) {
      const Plan p = plan_graph(g, m);
      const int64_t P = p.summary.peak_bytes;
      std::cout << "tiny_cnn batch 32 k=" << k << " schedule " << schedule_method_name(m)
                << ": peak " << P << " (k=1: " << P1 << ", micro-batch graph " << Pm
                << ", gradients " << G << ", inputs " << I << ", resident "
                << p.summary.resident_bytes << ")\n";
      EXPECT_LE(P, Pm + G + I + 64 * 1024) << "k=" << k << " " << schedule_method_name(m);
      if (m == ScheduleMethod::best) {
        EXPECT_LT(P, prev) << "k=" << k;
        prev = P;
      }
    }
  }
}

// ---------------------------------------------------------------- BatchSlice

TEST(MicroBatchOp, BatchSliceInferenceAndKernel) {
  OneNode t;
  const TensorId x = t.in({6, 2}), after = t.in({3}, DType::i64);
  // [6,2] in 3 parts -> [2,2]; the ordering input does not change the type.
  EXPECT_EQ(t.infer("BatchSlice", {x, after}, {{"index", int64_t{2}}, {"count", int64_t{3}}})[0],
            (TensorType{DType::f32, {2, 2}}));
  expect_error([&] { t.infer("BatchSlice", {x}, {{"index", int64_t{0}}, {"count", int64_t{4}}}); },
               "axis 0 of input 0 (6) is not divisible by count 4");
  expect_error([&] { t.infer("BatchSlice", {x}, {{"index", int64_t{3}}, {"count", int64_t{3}}}); },
               "index 3 is outside [0, 3)");
  expect_error([&] { t.infer("BatchSlice", {t.in({})}, {{"index", int64_t{0}}, {"count", int64_t{1}}}); },
               "scalar");
  // The cost model counts only input 0 and the output as moved bytes:
  // 6*2*4 + 2*2*4 = 64, not the 24 bytes of the ordering input on top.
  const Node& n = t.node("BatchSlice", {x, after}, {{"index", int64_t{1}}, {"count", int64_t{3}}});
  for (TensorId o : n.outputs) t.g.tensor(o) = Tensor{.name = t.g.tensor(o).name, .shape = {2, 2}, .shape_known = true};
  EXPECT_EQ(node_bytes_moved(t.g, n), 64);
  // Kernel: part 1 of 3 of rows 0..5 (row r holds r*10, r*10+1) is rows 2, 3.
  std::vector<float> xs = {0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51}, ys(4, -1);
  KernelArgs a;
  a.node = &n;
  a.in = {{xs.data(), DType::f32, {6, 2}, 12}, {nullptr, DType::i64, {3}, 3}};
  a.out = {{ys.data(), DType::f32, {2, 2}, 4}};
  find_kernel("BatchSlice")(a);
  EXPECT_EQ(ys, (std::vector<float>{20, 21, 30, 31}));
}

// ---------------------------------------------------------------- binding

TEST(MicroBatchBinding, Divisors) {
  EXPECT_EQ(batch_divisors(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(batch_divisors(7), (std::vector<int64_t>{1, 7}));
  EXPECT_EQ(batch_divisors(12), (std::vector<int64_t>{1, 2, 3, 4, 6, 12}));
  EXPECT_EQ(batch_divisors(16), (std::vector<int64_t>{1, 2, 4, 8, 16}));
}

TEST(MicroBatchBinding, DividesTheFlagThatSetsTheBatch) {
  Graph g = import_onnx_file(tiny_cnn()).graph;
  BindOptions r = micro_binding(g, {.dims = {{"batch", 16}}}, 4);
  EXPECT_EQ(r.dims.at("batch"), 4);
  BindOptions s = micro_binding(
      g, {.input_shapes = {{"input", {16, 3, 32, 32}}, {"labels", {16}}}}, 2);
  EXPECT_EQ(s.input_shapes.at("input"), (Shape{8, 3, 32, 32}));
  EXPECT_EQ(s.input_shapes.at("labels"), (Shape{8}));
  EXPECT_EQ(find_batch([&] {
              Graph b = g;
              bind_dims(b, s);
              return b;
            }()).size,
            8);
}

Graph declared(const std::vector<std::pair<std::string, std::pair<Shape, std::vector<std::string>>>>& ins) {
  Graph g;
  for (const auto& [name, decl] : ins) {
    TensorId t = add_decl(g, name, Role::input, decl.first);
    g.tensor(t).sym = decl.second;
  }
  return g;
}

TEST(MicroBatchBinding, Errors) {
  Graph cnn_g = import_onnx_file(tiny_cnn()).graph;
  expect_error([&] { micro_binding(cnn_g, {.dims = {{"batch", 6}}}, 4); },
               "k=4 does not divide the batch 6 (axis 0 of input 'input'); choose one of 1, 2, 3, 6");
  expect_error([&] { micro_binding(cnn_g, {.dims = {{"batch", 6}}}, 0); }, "must be at least 1");
  Graph fixed = declared({{"x", {{32, 3}, {}}}, {"y", {{32}, {}}}});
  expect_error([&] { micro_binding(fixed, {}, 2); },
               "the batch (axis 0 = 32 of input 'x') is fixed in the model; export it with a "
               "dynamic batch axis");
  Graph mixed = declared({{"x", {{-1, 3}, {"batch", ""}}}, {"y", {{5}, {}}}});
  expect_error([&] { micro_binding(mixed, {.dims = {{"batch", 4}}}, 2); },
               "input 'x' has 4 and input 'y' has 5");
  Graph scalar = declared({{"x", {{-1, 3}, {"batch", ""}}}, {"t", {{}, {}}}});
  expect_error([&] { micro_binding(scalar, {.dims = {{"batch", 4}}}, 2); },
               "input 't' is a scalar");
  // The training pass checks the same on a graph built by hand.
  Graph g = linear(4, false);
  TrainingOptions o = sgd_options(0, "cross-entropy");
  expect_error([&] { build_training_graph(g, o); }, "micro_batches must be at least 1, got 0");
}

// ---------------------------------------------------------------- models

TEST(MicroBatchExec, TinyCnnBatchNormPerSlice) {
  for (int64_t k : {2, 4}) check_model(cnn(), k);
}

TEST(MicroBatchExec, TinyTransformerMatchesSlicesAndFullBatch) {
  // Has Dropout: k = 1 equality holds only if the replicas' rng_offset makes
  // their masks the slices of the full-batch mask.
  Graph g = training_graph(transformer().path, transformer().full, 2, sgd_options(2));
  const bool dropout = std::any_of(g.nodes().begin(), g.nodes().end(),
                                   [](const Node& n) { return n.op == "Dropout"; });
  std::cout << "tiny_transformer has Dropout: " << dropout << "\n";
  for (int64_t k : {2, 4}) check_model(transformer(), k);
  // Synthetic data sees through BatchSlice: token ids range over the
  // vocabulary (256), not the fallback 2, and the full-batch inputs are the
  // k = 1 graph's.
  Graph one = training_graph(transformer().path, transformer().full, 1, sgd_options(1));
  EXPECT_EQ(synthetic_int_range(g, g.inputs[0]), 256);
  EXPECT_TRUE(make_synthetic_feed(g, 3)->batch(0) == make_synthetic_feed(one, 3)->batch(0));
}

}  // namespace
}  // namespace memplan::testing
