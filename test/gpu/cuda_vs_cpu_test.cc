// GPU tests (CTest label `gpu`, binary memplan_gpu_tests): the CUDA executor
// against the CPU executor, which is the oracle, and against PyTorch.
// Every test starts by skipping when no GPU is visible, and CTest reports
// those as skipped (test/CMakeLists.txt sets SKIP_REGULAR_EXPRESSION).
//
// Tolerances (fp32; bf16 cases: see cases()): relative L2 error ||gpu - cpu|| / ||cpu|| <= 1e-4 per
// tensor. The kernels accumulate statistics in double like the CPU, but
// cuBLAS / cuDNN sum in another order and GatherGrad / MaxPoolGrad /
// gradient-norm add with float atomics, so bitwise equality is not expected;
// 1e-4 is the fixtures' own gradient tolerance. Dropout masks must be equal
// bit for bit (same counter-based RNG).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "compiler/cost_model.h"
#include "compiler/pipeline.h"
#include "compiler/plan_verify.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/weights.h"

namespace memplan {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

#define REQUIRE_GPU()                                                                              \
  do {                                                                                             \
    try {                                                                                          \
      (void)cuda_device_info();                                                                    \
    } catch (const Error& e) {                                                                     \
      GTEST_SKIP() << e.what();                                                                    \
    }                                                                                              \
  } while (0)

std::string data_dir() {
  // The bundle sets MEMPLAN_TEST_DATA to its copy of samples/ and test/fixtures/.
  const char* d = std::getenv("MEMPLAN_TEST_DATA");
  return d ? d : MEMPLAN_SOURCE_DIR;
}

std::vector<double> floats(const std::vector<uint8_t>& b) {
  std::vector<double> v(b.size() / 4);
  for (size_t i = 0; i < v.size(); ++i) {
    float x;
    std::memcpy(&x, b.data() + 4 * i, 4);
    v[i] = x;
  }
  return v;
}

double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    n += b[i] * b[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

struct Case {
  std::string name, model;
  friend void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }
  std::map<std::string, int64_t> dims;
  std::string optimizer;
  std::optional<int64_t> budget = std::nullopt;        // --budget: a plan with recomputation
  std::optional<int64_t> micro_batches = std::nullopt; // --micro-batches
  std::string precision = "auto";                      // --precision
  double tol = 1e-4; // relative L2 per tensor (bf16: see cases())
};

Plan compile(const Case& c, bool grads_as_outputs) {
  CompileOptions o;
  o.mode = "training";
  o.dims = c.dims;
  o.training.grads_as_outputs = grads_as_outputs;
  if (c.optimizer == "sgd") o.training.optimizer.kind = OptimizerKind::sgd;
  if (c.optimizer == "adam") o.training.optimizer.kind = OptimizerKind::adam;
  if (c.optimizer == "none") o.training.optimizer.kind = OptimizerKind::none;
  o.budget_bytes = c.budget;
  o.micro_batches = c.micro_batches;
  o.precision = c.precision;
  Plan p = compile_model(data_dir() + "/" + c.model, o).plan;
  PlanVerifyResult v = verify_plan(p);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.errors.front());
  return p;
}

std::vector<Case> cases() {
  return {
      {"tiny_cnn", "samples/tiny_cnn.onnx", {{"batch", 8}}, "adamw"},
      {"tiny_transformer", "samples/tiny_transformer.onnx", {{"batch", 2}, {"seq", 16}}, "adamw"},
      {"resnet18_tiny", "test/fixtures/resnet18_tiny/model.onnx", {}, "sgd"},
      {"gpt2_tiny", "test/fixtures/gpt2_tiny/model.onnx", {}, "adam"},
      {"unet_tiny", "test/fixtures/unet_tiny/model.onnx", {}, "adamw"},
      // tiny_cnn at batch 16 plans a peak of 6.88 MiB unconstrained; a
      // 5 MiB budget makes RematPass recompute convolutions (59 ops
      // instead of 57, peak 4.88 MiB), whose clones must give the same
      // step on the GPU.
      {"tiny_cnn_remat", "samples/tiny_cnn.onnx", {{"batch", 16}}, "adamw", int64_t{5} << 20},
      // 4 micro-batches of 4 rows: BatchSlice + GradAccumulate on the GPU.
      {"tiny_cnn_microbatch", "samples/tiny_cnn.onnx", {{"batch", 16}}, "adamw", std::nullopt, 4},
      // bf16 plans (--precision bf16): convolutions and GEMMs run natively
      // in bf16 on cuDNN / cuBLAS (f32 accumulation), every other lowered op
      // on its f32 kernel over copies staged in its planned workspace. The
      // CPU computes those convolutions and GEMMs in f32 and rounds once, so
      // an output element may round to the neighbouring bf16 value (2^-8
      // relative); 3e-2 is the CPU's own bf16-against-f32 gradient tolerance
      // (test/precision_exec_test.cc), an upper bound for two bf16 runs.
      {"tiny_cnn_bf16", "samples/tiny_cnn.onnx", {{"batch", 8}}, "adamw", std::nullopt,
       std::nullopt, "bf16", 3e-2},
      {"tiny_transformer_bf16", "samples/tiny_transformer.onnx", {{"batch", 2}, {"seq", 16}},
       "adamw", std::nullopt, std::nullopt, "bf16", 3e-2},
      {"resnet18_tiny_bf16", "test/fixtures/resnet18_tiny/model.onnx", {}, "sgd", std::nullopt,
       std::nullopt, "bf16", 3e-2},
      {"tiny_cnn_bf16_microbatch", "samples/tiny_cnn.onnx", {{"batch", 16}}, "adamw",
       std::nullopt, 4, "bf16", 3e-2}};
}

class CudaVsCpu : public ::testing::TestWithParam<Case> {};

// Two training steps on both backends from the same random weights and
// synthetic batches: the loss of each step, every gradient (graph outputs)
// and every resident tensor (parameters, optimizer state, BatchNorm running
// statistics) after them agree within 1e-4. This checks every op of the
// plan, forward and backward, on the GPU against the CPU kernels.
TEST_P(CudaVsCpu, TwoStepsMatchTheCpuExecutor) {
  REQUIRE_GPU();
  const Case& c = GetParam();
  Plan p = compile(c, /*grads_as_outputs=*/true);
  auto cpu = make_cpu_executor(p, {.seed = 7});
  auto gpu = make_cuda_executor(p, {.seed = 7});
  init_random(*cpu, 7);
  init_random(*gpu, 7);
  auto feed = make_synthetic_feed(cpu->graph(), 7);
  for (int s = 0; s < 2; ++s) {
    auto batch = feed->batch(static_cast<uint64_t>(s));
    StepResult rc = cpu->step(batch), rg = gpu->step(batch);
    ASSERT_TRUE(rc.finite) << rc.first_nonfinite_op;
    ASSERT_TRUE(rg.finite) << rg.first_nonfinite_op;
    EXPECT_LE(std::abs(rg.loss - rc.loss), c.tol * std::max(1.0, std::abs(rc.loss)))
        << "step " << s;
    for (int32_t t : p.outputs) {
      const PlanTensor& pt = p.tensors[static_cast<size_t>(t)];
      if (pt.dtype != DType::f32) continue;
      EXPECT_LE(rel_l2(floats(gpu->read(pt.name)), floats(cpu->read(pt.name))), c.tol)
          << "output " << pt.name << " after step " << s;
    }
  }
  int compared = 0;
  for (const PlanTensor& t : p.tensors) {
    if (t.placement != Placement::resident || t.dtype != DType::f32) continue;
    EXPECT_LE(rel_l2(floats(gpu->read(t.name)), floats(cpu->read(t.name))), c.tol) << t.name;
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

// The plan's peak is exactly what memplan allocated on the device (arena +
// resident, one cudaMalloc each); the process's usage is at least that.
TEST_P(CudaVsCpu, AllocatedBytesEqualThePlannedPeak) {
  REQUIRE_GPU();
  Plan p = compile(GetParam(), false);
  auto gpu = make_cuda_executor(p, {});
  init_random(*gpu, 1);
  auto feed = make_synthetic_feed(gpu->graph(), 1);
  ASSERT_TRUE(gpu->step(feed->batch(0)).finite);
  CudaMemoryReport m = cuda_memory_report(*gpu);
  EXPECT_EQ(m.allocated_bytes, p.summary.peak_bytes);
  EXPECT_EQ(gpu->arena_bytes() + gpu->resident_bytes(), p.summary.peak_bytes);
  if (m.process_bytes >= 0) {
    EXPECT_GE(m.process_bytes, m.allocated_bytes) << m.process_source;
    // Within the plan's peak plus the context reserve the planner assumes
    // (compiler/cost_model.h: 512 MiB for the CUDA context and library handles).
    EXPECT_LE(m.process_bytes, p.summary.peak_bytes + builtin_device("h100").context_reserve_bytes)
        << m.process_source;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaVsCpu, ::testing::ValuesIn(cases()),
                         [](const auto& i) { return i.param.name; });

// The PyTorch fixtures on the GPU: loss and every parameter gradient within
// the tolerances the fixtures carry (test/fixtures/README.md).
class CudaPyTorchFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaPyTorchFixture, LossAndGradientsMatchPyTorch) {
  REQUIRE_GPU();
  const std::string name = GetParam();
  const fs::path dir = fs::path(data_dir()) / "test" / "fixtures" / name;
  json e = json::parse(std::ifstream(dir / "expected.json"));
  Plan p = compile({name, "test/fixtures/" + name + "/model.onnx", {}, "none"}, true);
  auto gpu = make_cuda_executor(p, {});
  load_weights(*gpu, (dir / "model.onnx").string());
  std::map<std::string, std::vector<uint8_t>> in;
  for (auto it = e["inputs"].begin(); it != e["inputs"].end(); ++it)
    in[it.key()] = read_npy((dir / it.value()["file"].get<std::string>()).string()).data;
  StepResult r = gpu->step(in);
  ASSERT_TRUE(r.finite) << r.first_nonfinite_op;
  const double ref = e["loss"].get<double>();
  EXPECT_LE(std::abs(r.loss - ref) / std::max(1.0, std::abs(ref)), 1e-4) << r.loss << " vs " << ref;
  for (auto it = e["grads"].begin(); it != e["grads"].end(); ++it) {
    auto want = floats(read_npy((dir / it.value().get<std::string>()).string()).data);
    EXPECT_LE(rel_l2(floats(gpu->read(it.key() + "/grad")), want), 1e-4) << it.key();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaPyTorchFixture,
                         ::testing::Values("resnet18_tiny", "gpt2_tiny", "unet_tiny"));

// Dropout on the replayed graph: the device step advances on each replay, so
// two steps use different masks, and each mask is the CPU's for that step.
// tiny_transformer's Dropout ratio is nonzero in training (checked below).
TEST(CudaDropout, ReplayedStepsUseDifferentMasksEqualToTheCpu) {
  REQUIRE_GPU();
  Case c{"tiny_transformer", "samples/tiny_transformer.onnx", {{"batch", 2}, {"seq", 16}}, "none"};
  Plan p = compile(c, false);
  std::string mask;
  for (const PlanOp& op : p.ops)
    if (op.op == "Dropout" && op.outputs.size() > 1 && op.outputs[1] >= 0) {
      mask = p.tensors[static_cast<size_t>(op.outputs[1])].name;
      p.outputs.push_back(op.outputs[1]); // make the mask readable after the step
      break;
    }
  if (mask.empty()) GTEST_SKIP() << "the sample has no Dropout with a mask output";
  auto cpu = make_cpu_executor(p, {.seed = 3});
  auto gpu = make_cuda_executor(p, {.seed = 3});
  init_random(*cpu, 3);
  init_random(*gpu, 3);
  auto feed = make_synthetic_feed(cpu->graph(), 3);
  std::vector<std::vector<uint8_t>> masks;
  for (int s = 0; s < 2; ++s) {
    auto b = feed->batch(0); // the same batch: only the step differs
    ASSERT_TRUE(cpu->step(b).finite);
    ASSERT_TRUE(gpu->step(b).finite);
    masks.push_back(gpu->read(mask));
    EXPECT_EQ(masks.back(), cpu->read(mask)) << "step " << s;
  }
  EXPECT_NE(masks[0], masks[1]);
}

} // namespace
} // namespace memplan
