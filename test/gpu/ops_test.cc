// Every op of the CUDA backend, alone, against the CPU kernel (the oracle),
// on random inputs: a one-node graph is planned like any other (plan_of),
// run once by the CPU executor and once by the CUDA executor with the same
// inputs and state, and every output compared.
//
// Tolerance: f32 outputs within 1e-4 relative L2 (||gpu - cpu|| / ||cpu||);
// bool and integer outputs (Dropout's mask, MaxPool's indices) exactly. f16 /
// bf16 ops: those the GPU runs natively (op_runs_low_precision_on_gpu) in
// f32 math with one rounding and the same order of f32 sums as the CPU's
// staged kernel (elementwise, activation grads, MaxPool and its grad)
// exactly; GEMMs, convolutions, BatchNorm, ReduceSum (other summation
// orders) and a staged op (Softmax) against the f32 graph (OpCase::f32_oracle).
// Inputs are uniform in [-1, 1) unless a case says otherwise (positive for
// Log / Sqrt / Div's divisor / Pow's base, valid indices and labels).
//
// Without a GPU every case skips. MEMPLAN_GPU_TESTS_CPU_ONLY=1 runs only the
// CPU half (plan, execute, read every output): what this file's cases can be
// checked with on a machine without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>

#include "../exec_test_util.h"
#include "compiler/dtype_codec.h"
#include "passes/infer_shapes.h"
#include "passes/precision.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/executor.h"

namespace memplan {
namespace {

using testing::plan_of;

enum class Fill { uniform, positive, ints, boolean, given };

struct In {
  Shape shape;
  DType dtype = DType::f32;
  Fill fill = Fill::uniform;
  int64_t hi = 0;                  // Fill::ints: values in [0, hi)
  std::vector<double> values = {}; // Fill::given
  Role role = Role::input;         // constant (data in the program) or state (written)
};

struct OpCase {
  std::string name, op;
  friend void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }
  std::vector<In> ins;
  Attrs attrs = {};
  int nout = 1;
  /// f16 / bf16 cases: the CPU kernels have no such GEMMs, so the oracle is
  /// the same graph in f32 on the same (already rounded) values, and the GPU
  /// output, widened to f32, must be within `tol` (rel L2). bf16 keeps 8
  /// significant bits: one rounding of the output is up to 2^-9 ~ 2e-3
  /// relative, so 1e-2; f16 keeps 11: 2^-12 ~ 2.4e-4, so 2e-3.
  bool f32_oracle = false;
  double tol = 1e-4;
};

bool cpu_only() {
  const char* e = std::getenv("MEMPLAN_GPU_TESTS_CPU_ONLY");
  return e && std::string(e) == "1";
}

/// Random values of an input (drawn once; both graphs use them).
std::vector<double> values(const In& in, std::mt19937& rng) {
  const int64_t n = num_elements(in.shape);
  std::vector<double> v;
  std::uniform_real_distribution<double> u(-1, 1), p(0.1, 2);
  for (int64_t i = 0; i < n; ++i)
    v.push_back(in.fill == Fill::given
                    ? in.values[static_cast<size_t>(i % static_cast<int64_t>(in.values.size()))]
                : in.fill == Fill::positive ? p(rng)
                : in.fill == Fill::ints ? static_cast<double>(rng() % static_cast<uint64_t>(in.hi))
                : in.fill == Fill::boolean ? static_cast<double>(rng() % 2)
                                           : u(rng));
  return v;
}

/// Encodes values as `d`; values are first rounded through `narrow` (the
/// GPU graph's dtype) so that the f32 oracle sees exactly the GPU's inputs.
std::vector<uint8_t> encode(const std::vector<double>& v, DType d, DType narrow) {
  std::vector<uint8_t> b;
  for (double x : v) {
    if (!is_float(d)) {
      encode_int(d, static_cast<int64_t>(x), b);
      continue;
    }
    std::vector<uint8_t> r;
    encode_float(narrow, x, r);
    encode_float(d, decode_float(narrow, r.data(), 0), b);
  }
  return b;
}

/// Output bytes of dtype d as f32 bytes.
std::vector<uint8_t> widen(const std::vector<uint8_t>& b, DType d) {
  if (d == DType::f32) return b;
  std::vector<uint8_t> out;
  const size_t n = b.size() / dtype_size(d);
  for (size_t i = 0; i < n; ++i)
    encode_float(DType::f32, decode_float(d, b.data(), i), out);
  return out;
}

double rel_l2(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  std::vector<float> g = testing::as_f32(got), w = testing::as_f32(want);
  double d = 0, n = 0;
  for (size_t i = 0; i < g.size() && i < w.size(); ++i) {
    d += (double(g[i]) - w[i]) * (double(g[i]) - w[i]);
    n += double(w[i]) * w[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

class CudaOp : public ::testing::TestWithParam<OpCase> {};

TEST_P(CudaOp, MatchesTheCpuKernel) {
  if (!cpu_only()) {
    try {
      (void)cuda_device_info();
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
  }
  const OpCase& c = GetParam();
  std::mt19937 rng(42);
  std::vector<std::vector<double>> vals;
  for (const In& in : c.ins)
    vals.push_back(values(in, rng));
  struct Built {
    Graph g;
    Plan p;
    std::map<std::string, std::vector<uint8_t>> feed, state;
  };
  // The graph with the case's dtypes, or (f32_oracle) with f16 / bf16 widened to f32.
  auto build = [&](bool wide) {
    auto b = std::make_unique<Built>();
    Node n;
    n.op = c.op;
    n.name = "node";
    n.attrs = c.attrs;
    for (size_t k = 0; k < c.ins.size(); ++k) {
      const In& in = c.ins[k];
      const bool narrow = in.dtype == DType::f16 || in.dtype == DType::bf16;
      Tensor t;
      t.name = "in" + std::to_string(k);
      t.dtype = wide && narrow ? DType::f32 : in.dtype;
      t.shape = in.shape;
      t.shape_known = true;
      t.role = in.role;
      std::vector<uint8_t> bytes = encode(vals[k], t.dtype, narrow ? in.dtype : t.dtype);
      if (in.role == Role::constant)
        t.data = std::make_shared<const std::vector<uint8_t>>(bytes);
      else if (in.role == Role::input)
        b->feed[t.name] = bytes;
      else
        b->state[t.name] = bytes;
      TensorId id = b->g.add_tensor(std::move(t));
      if (in.role == Role::input) b->g.inputs.push_back(id);
      n.inputs.push_back(id);
    }
    for (int k = 0; k < c.nout; ++k) {
      Tensor t;
      t.name = "out" + std::to_string(k);
      TensorId id = b->g.add_tensor(std::move(t));
      n.outputs.push_back(id);
      b->g.outputs.push_back(id);
    }
    b->g.add_node(std::move(n));
    // As in plans for a GPU: f16/bf16 ops of op_runs_low_precision_on_gpu run
    // natively (native_low_precision); other ops run staged in their workspace.
    infer_shapes(b->g);
    (void)mark_native_low_precision(b->g);
    b->p = plan_of(b->g);
    return b;
  };
  auto run = [&](Executor& ex, const Built& b) {
    for (const auto& [name, bytes] : b.state)
      ex.write(name, bytes);
    StepResult r = ex.step(b.feed);
    EXPECT_TRUE(r.finite) << r.first_nonfinite_op;
    std::vector<std::vector<uint8_t>> outs;
    for (int k = 0; k < c.nout; ++k)
      outs.push_back(ex.read("out" + std::to_string(k)));
    for (const auto& [name, bytes] : b.state)
      outs.push_back(ex.read(name)); // in-place updates
    return outs;
  };
  auto oracle = build(c.f32_oracle);
  auto cpu = make_cpu_executor(oracle->p, {.seed = 5});
  std::vector<std::vector<uint8_t>> want = run(*cpu, *oracle);
  auto target = c.f32_oracle ? build(false) : nullptr; // plans (and verifies) in CPU-only mode too
  if (cpu_only()) return;
  const Built& tb = target ? *target : *oracle;
  auto gpu = make_cuda_executor(tb.p, {.seed = 5});
  std::vector<std::vector<uint8_t>> got = run(*gpu, tb);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    const DType d =
        k < static_cast<size_t>(c.nout) ? tb.g.tensor(tb.g.outputs[k]).dtype : DType::f32;
    if (c.f32_oracle)
      EXPECT_LE(rel_l2(widen(got[k], d), want[k]), c.tol) << c.name << " output " << k;
    else if (d == DType::f32)
      EXPECT_LE(rel_l2(got[k], want[k]), c.tol) << c.name << " output " << k;
    else
      EXPECT_EQ(got[k], want[k]) << c.name << " output " << k << " (" << dtype_name(d) << ")";
  }
}

In f(Shape s) {
  return {std::move(s)};
}
In pos(Shape s) {
  return {std::move(s), DType::f32, Fill::positive};
}
In idx(Shape s, int64_t hi) {
  return {std::move(s), DType::i64, Fill::ints, hi};
}
In mask(Shape s) {
  return {std::move(s), DType::boolean, Fill::boolean};
}
In cint(std::vector<double> v) {
  return {
      {static_cast<int64_t>(v.size())}, DType::i64, Fill::given, 0, std::move(v), Role::constant};
}
In cf32(double v) {
  return {{}, DType::f32, Fill::given, 0, {v}, Role::constant};
}
In cbool(bool v) {
  return {{}, DType::boolean, Fill::given, 0, {v ? 1.0 : 0.0}, Role::constant};
}
In state(Shape s, Fill fill = Fill::uniform) {
  return {std::move(s), DType::f32, fill, 0, {}, Role::state};
}
In given(Shape s, double v) {
  return {std::move(s), DType::f32, Fill::given, 0, {v}};
}

std::vector<OpCase> cases() {
  std::vector<OpCase> v;
  for (const char* op : {"Relu", "Tanh", "Erf", "Neg", "Exp", "Sigmoid", "Abs"})
    v.push_back({op, op, {f({3, 5, 7})}});
  for (const char* op : {"Log", "Sqrt"})
    v.push_back({op, op, {pos({3, 5, 7})}});
  // Broadcasting [2,3,4,5] with [3,1,5] and with a scalar.
  for (const char* op : {"Add", "Sub", "Mul"}) {
    v.push_back({std::string(op) + "_bcast", op, {f({2, 3, 4, 5}), f({3, 1, 5})}});
    v.push_back({std::string(op) + "_scalar", op, {f({}), f({4, 6})}});
  }
  v.push_back({"Div", "Div", {f({2, 3, 4}), pos({3, 1})}});
  v.push_back({"Pow", "Pow", {pos({2, 3, 4}), f({4})}});
  for (const char* op : {"ReluGrad", "TanhGrad", "ErfGrad", "SigmoidGrad"})
    v.push_back({op, op, {f({4, 33}), f({4, 33})}});
  v.push_back({"Where", "Where", {mask({1, 4, 1}), f({3, 4, 5}), f({})}});
  v.push_back(
      {"Transpose", "Transpose", {f({2, 3, 4, 5})}, {{"perm", std::vector<int64_t>{0, 2, 3, 1}}}});
  v.push_back({"Expand", "Expand", {f({3, 1}), cint({2, 3, 4})}});
  v.push_back(
      {"Concat", "Concat", {f({2, 3, 4}), f({2, 5, 4}), f({2, 1, 4})}, {{"axis", int64_t{1}}}});
  v.push_back({"Split", "Split", {f({2, 3, 7}), cint({2, 5})}, {{"axis", int64_t{2}}}, 2});
  v.push_back({"Reshape", "Reshape", {f({2, 3, 4}), cint({6, 4})}});
  v.push_back({"Gather", "Gather", {f({10, 6}), idx({2, 3}, 10)}});
  v.push_back({"Gather_axis1", "Gather", {f({4, 10, 3}), idx({5}, 10)}, {{"axis", int64_t{1}}}});
  v.push_back({"GatherGrad", "GatherGrad", {f({2, 3, 6}), idx({2, 3}, 10), cint({10, 6})}});
  v.push_back({"ReduceSum", "ReduceSum", {f({3, 4, 5}), cint({0, 2})}});
  v.push_back({"ReduceSum_all", "ReduceSum", {f({3, 40, 50})}, {{"keepdims", int64_t{0}}}});
  v.push_back({"GlobalAveragePool", "GlobalAveragePool", {f({2, 3, 4, 5})}});
  v.push_back({"GlobalAveragePoolGrad",
               "GlobalAveragePoolGrad",
               {f({2, 3, 1, 1})},
               {{"input_shape", std::vector<int64_t>{2, 3, 4, 5}}}});
  v.push_back({"Softmax", "Softmax", {f({2, 7, 3})}, {{"axis", int64_t{1}}}});
  v.push_back({"Softmax_last", "Softmax", {f({4, 1000})}});
  v.push_back({"LogSoftmax", "LogSoftmax", {f({4, 9})}});
  v.push_back(
      {"SoftmaxGrad", "SoftmaxGrad", {f({2, 7, 3}), pos({2, 7, 3})}, {{"axis", int64_t{1}}}});
  v.push_back({"LogSoftmaxGrad", "LogSoftmaxGrad", {f({4, 9}), f({4, 9})}});
  v.push_back({"LayerNormalization", "LayerNormalization", {f({2, 3, 8}), f({8}), f({8})}, {}, 3});
  v.push_back({"LayerNormalizationGrad",
               "LayerNormalizationGrad",
               {f({2, 3, 8}), f({2, 3, 8}), f({8}), f({2, 3, 1}), pos({2, 3, 1})},
               {},
               3});
  v.push_back({"BatchNormTraining",
               "BatchNormTraining",
               {f({4, 3, 5, 5}), f({3}), f({3}), state({3}), state({3}, Fill::positive)},
               {{"momentum", 0.9}},
               5});
  v.push_back({"BatchNormTrainingGrad",
               "BatchNormTrainingGrad",
               {f({4, 3, 5, 5}), f({4, 3, 5, 5}), f({3}), f({3}), pos({3})},
               {},
               3});
  v.push_back(
      {"SoftmaxCrossEntropyLoss", "SoftmaxCrossEntropyLoss", {f({6, 5}), idx({6}, 5)}, {}, 2});
  v.push_back({"SoftmaxCrossEntropyLoss_none_3d",
               "SoftmaxCrossEntropyLoss",
               {f({2, 5, 3}), idx({2, 3}, 5)},
               {{"reduction", std::string("none")}},
               2});
  v.push_back({"SoftmaxCrossEntropyLoss_ignore",
               "SoftmaxCrossEntropyLoss",
               {f({8, 4}), idx({8}, 4)},
               {{"ignore_index", int64_t{1}}},
               2});
  v.push_back({"SoftmaxCrossEntropyLossGrad",
               "SoftmaxCrossEntropyLossGrad",
               {f({}), f({6, 5}), idx({6}, 5)}});
  Attrs pool = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                {"strides", std::vector<int64_t>{2, 2}},
                {"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  v.push_back({"MaxPool", "MaxPool", {f({2, 3, 9, 9})}, pool});
  v.push_back({"MaxPoolGrad", "MaxPoolGrad", {f({2, 3, 5, 5}), f({2, 3, 9, 9})}, pool});
  v.push_back({"Dropout", "Dropout", {f({4, 1000}), cf32(0.3), cbool(true)}, {}, 2});
  v.push_back({"Dropout_eval", "Dropout", {f({4, 10}), cf32(0.3), cbool(false)}, {}, 2});
  v.push_back(
      {"DropoutGrad", "DropoutGrad", {f({4, 100}), mask({4, 100}), cf32(0.3), cbool(true)}});
  v.push_back({"MatMul_batched", "MatMul", {f({2, 3, 4, 5}), f({5, 6})}});
  v.push_back({"MatMul_bcast", "MatMul", {f({3, 4}), f({2, 4, 5})}});
  // Attention-like batches: one strided-batched GEMM (B broadcast: stride 0).
  v.push_back({"MatMul_strided", "MatMul", {f({2, 3, 4, 5}), f({2, 3, 5, 6})}});
  v.push_back({"MatMul_strided_bcastB", "MatMul", {f({2, 3, 4, 5}), f({3, 5, 6})}});
  v.push_back({"MatMul_vec", "MatMul", {f({5}), f({5, 3})}});
  v.push_back(
      {"MatMulTrans_tb", "MatMulTrans", {f({2, 3, 4}), f({5, 4})}, {{"transB", int64_t{1}}}});
  v.push_back({"MatMulTrans_ta_sum",
               "MatMulTrans",
               {f({2, 3, 4}), f({2, 3, 5})},
               {{"transA", int64_t{1}}, {"batch_shape", std::vector<int64_t>{}}}});
  v.push_back(
      {"Gemm", "Gemm", {f({3, 4}), f({5, 4}), f({5})}, {{"transB", int64_t{1}}, {"alpha", 0.5}}});
  Attrs conv = {{"strides", std::vector<int64_t>{2, 2}},
                {"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  v.push_back({"Conv", "Conv", {f({2, 3, 9, 9}), f({4, 3, 3, 3}), f({4})}, conv});
  v.push_back({"Conv_pointwise", "Conv", {f({2, 3, 5, 5}), f({4, 3, 1, 1})}});
  Attrs gi = conv, gw = conv;
  gi["input_shape"] = std::vector<int64_t>{2, 3, 9, 9};
  gw["weight_shape"] = std::vector<int64_t>{4, 3, 3, 3};
  v.push_back({"ConvGradInput", "ConvGradInput", {f({2, 4, 5, 5}), f({4, 3, 3, 3})}, gi});
  v.push_back({"ConvGradWeight", "ConvGradWeight", {f({2, 4, 5, 5}), f({2, 3, 9, 9})}, gw});
  Attrs ct = conv;
  ct["output_padding"] = std::vector<int64_t>{1, 1};
  v.push_back({"ConvTranspose", "ConvTranspose", {f({2, 4, 5, 5}), f({4, 3, 3, 3}), f({3})}, ct});
  v.push_back({"StepIncrement", "StepIncrement", {given({}, 3)}});
  v.push_back({"SGDUpdate",
               "SGDUpdate",
               {f({50}), f({50}), f({50}), given({}, 0.5), given({}, 2)},
               {{"lr", 0.1}, {"momentum", 0.9}, {"weight_decay", 0.01}, {"nesterov", int64_t{1}}},
               2});
  v.push_back({"AdamUpdate",
               "AdamUpdate",
               {f({50}), f({50}), f({50}), pos({50}), given({}, 3), given({}, 0.5)},
               {{"lr", 0.01}, {"weight_decay", 0.01}, {"decoupled", int64_t{1}}},
               3});
  v.push_back(
      {"BatchSlice", "BatchSlice", {f({8, 3})}, {{"index", int64_t{2}}, {"count", int64_t{4}}}});
  v.push_back({"GradAccumulate", "GradAccumulate", {f({5, 6}), f({5, 6})}});
  for (DType d : {DType::f16, DType::bf16}) {
    const std::string dn(dtype_name(d));
    v.push_back({"Cast_f32_to_" + dn,
                 "Cast",
                 {f({5, 77})},
                 {{"to", static_cast<int64_t>(d == DType::f16 ? 10 : 16)}}});
    v.push_back({"Cast_" + dn + "_to_f32", "Cast", {In{{5, 77}, d}}, {{"to", int64_t{1}}}});
    const double tol = d == DType::bf16 ? 1e-2 : 2e-3;
    v.push_back(
        {"MatMul_" + dn, "MatMul", {In{{2, 3, 4, 40}, d}, In{{40, 6}, d}}, {}, 1, true, tol});
    v.push_back({"MatMul_strided_" + dn,
                 "MatMul",
                 {In{{2, 3, 4, 40}, d}, In{{2, 3, 40, 6}, d}},
                 {},
                 1,
                 true,
                 tol});
    v.push_back({"MatMulTrans_" + dn,
                 "MatMulTrans",
                 {In{{2, 3, 40}, d}, In{{2, 3, 5}, d}},
                 {{"transA", int64_t{1}}, {"batch_shape", std::vector<int64_t>{}}},
                 1,
                 true,
                 tol});
    v.push_back({"Gemm_" + dn,
                 "Gemm",
                 {In{{3, 40}, d}, In{{5, 40}, d}, In{{5}, d}},
                 {{"transB", int64_t{1}}},
                 1,
                 true,
                 tol});
    // Native cuDNN convolutions (f32 accumulation; the bias in our kernel).
    v.push_back({"Conv_" + dn, "Conv", {In{{2, 3, 9, 9}, d}, In{{4, 3, 3, 3}, d}, In{{4}, d}},
                 conv, 1, true, tol});
    v.push_back({"ConvGradInput_" + dn, "ConvGradInput",
                 {In{{2, 4, 5, 5}, d}, In{{4, 3, 3, 3}, d}}, gi, 1, true, tol});
    v.push_back({"ConvGradWeight_" + dn, "ConvGradWeight",
                 {In{{2, 4, 5, 5}, d}, In{{2, 3, 9, 9}, d}}, gw, 1, true, tol});
    v.push_back({"ConvTranspose_" + dn, "ConvTranspose",
                 {In{{2, 4, 5, 5}, d}, In{{4, 3, 3, 3}, d}, In{{3}, d}}, ct, 1, true, tol});
    // Native elementwise and pooling ops: f32 math on the widened values,
    // rounded once, as the CPU's staging computes: equal bit for bit.
    v.push_back({"Relu_" + dn, "Relu", {In{{5, 77}, d}}});
    v.push_back({"Add_" + dn, "Add", {In{{5, 77}, d}, In{{77}, d}}});
    v.push_back({"ReluGrad_" + dn, "ReluGrad", {In{{4, 33}, d}, In{{4, 33}, d}}});
    v.push_back({"MaxPool_" + dn, "MaxPool", {In{{2, 3, 9, 9}, d}}, pool});
    v.push_back(
        {"MaxPoolGrad_" + dn, "MaxPoolGrad", {In{{2, 3, 5, 5}, d}, In{{2, 3, 9, 9}, d}}, pool});
    // Native, but summing in another order than the CPU: against the f32 graph.
    v.push_back({"BatchNormTraining_" + dn, "BatchNormTraining",
                 {In{{4, 3, 5, 5}, d}, f({3}), f({3}), state({3}), state({3}, Fill::positive)},
                 {{"momentum", 0.9}}, 5, true, tol});
    v.push_back({"BatchNormTrainingGrad_" + dn, "BatchNormTrainingGrad",
                 {In{{4, 3, 5, 5}, d}, In{{4, 3, 5, 5}, d}, f({3}), f({3}), pos({3})}, {}, 3, true,
                 tol});
    v.push_back({"ReduceSum_" + dn, "ReduceSum", {In{{3, 4, 5}, d}, cint({0, 2})}, {}, 1, true,
                 tol});
    // Staged (f32 kernel on copies in the planned workspace, rounded once).
    v.push_back({"Softmax_staged_" + dn, "Softmax", {In{{4, 9}, d}}, {}, 1, true, tol});
  }
  v.push_back({"GlobalNormScale", "GlobalNormScale", {f({300}), f({7, 9})}, {{"max_norm", 0.5}}});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaOp, ::testing::ValuesIn(cases()),
                         [](const auto& i) { return i.param.name; });

} // namespace
} // namespace memplan
