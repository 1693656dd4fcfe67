// The CUDA backend as far as it can be checked without a GPU (the GPU tests
// are test/gpu/, label `gpu`):
//  - `memplan run --device cuda` fails with a clear message and exit code 1
//    when the backend is not built or no device is visible (skipped when a
//    GPU is visible);
//  - every op of the training plans of the samples and of the PyTorch
//    fixtures has a CUDA kernel, so executor creation on a GPU cannot fail
//    for a missing op (skipped without the backend).
#include <gtest/gtest.h>

#include <set>

#include "cli_test_util.h"
#include "compiler/pipeline.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/executor.h"

namespace memplan::testing {
namespace {

bool gpu_visible() {
  if (!cuda_backend_built()) return false;
  try {
    (void)cuda_device_info();
    return true;
  } catch (const Error&) {
    return false;
  }
}

Plan training_plan(const std::string& model, std::map<std::string, int64_t> dims = {}) {
  CompileOptions o;
  o.mode = "training";
  o.dims = std::move(dims);
  return compile_model(model, o).plan;
}

TEST(CudaBackendTest, RunOnCudaWithoutAGpuFailsClearly) {
  if (gpu_visible()) GTEST_SKIP() << "a GPU is visible; test/gpu covers this case";
  TempDir d;
  CliRun c = run({"compile", std::string(MEMPLAN_SOURCE_DIR) + "/samples/tiny_cnn.onnx", "--dim",
                  "batch=2", "-o", d.file("p.json")});
  ASSERT_EQ(c.rc, 0) << c.err;
  CliRun r = run({"run", d.file("p.json"), "--init", "random", "--synthetic", "--device", "cuda"});
  EXPECT_EQ(r.rc, 1);
  if (cuda_backend_built())
    EXPECT_NE(r.err.find("no CUDA device is visible (cudaGetDeviceCount: "), std::string::npos)
        << r.err;
  else
    EXPECT_NE(r.err.find("built without the CUDA backend; reconfigure with -DMEMPLAN_CUDA=ON"),
              std::string::npos)
        << r.err;
}

TEST(CudaBackendTest, UnknownDeviceAndGuardOnCudaAreRefused) {
  TempDir d;
  CliRun c = run({"compile", std::string(MEMPLAN_SOURCE_DIR) + "/samples/tiny_cnn.onnx", "--dim",
                  "batch=2", "-o", d.file("p.json")});
  ASSERT_EQ(c.rc, 0) << c.err;
  CliRun r = run({"run", d.file("p.json"), "--init", "random", "--synthetic", "--device", "tpu"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--device 'tpu' is not supported; use cpu or cuda"), std::string::npos)
      << r.err;
  r = run(
      {"run", d.file("p.json"), "--init", "random", "--synthetic", "--device", "cuda", "--guard"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--guard is supported by the CPU backend only"), std::string::npos) << r.err;
}

TEST(CudaBackendTest, EveryOpOfTheTrainingSamplesAndFixturesHasACudaKernel) {
  if (!cuda_backend_built()) GTEST_SKIP() << "built without the CUDA backend";
  const std::vector<std::string> have = cuda_supported_ops();
  const std::set<std::string> ops(have.begin(), have.end());
  const std::string src = MEMPLAN_SOURCE_DIR;
  std::vector<Plan> plans;
  plans.push_back(training_plan(src + "/samples/tiny_cnn.onnx", {{"batch", 4}}));
  plans.push_back(
      training_plan(src + "/samples/tiny_transformer.onnx", {{"batch", 2}, {"seq", 16}}));
  for (const char* f : {"resnet18_tiny", "gpt2_tiny", "unet_tiny"})
    plans.push_back(training_plan(src + "/test/fixtures/" + f + "/model.onnx"));
  {  // micro-batching adds BatchSlice and GradAccumulate
    CompileOptions o;
    o.dims = {{"batch", 16}};
    o.micro_batches = 4;
    plans.push_back(compile_model(src + "/samples/tiny_cnn.onnx", o).plan);
  }
  // bf16 plans add Casts; their other lowered ops run staged (runtime/cuda/low_precision.cc).
  for (const auto& [model, dims] :
       std::vector<std::pair<std::string, std::map<std::string, int64_t>>>{
           {"/samples/tiny_cnn.onnx", {{"batch", 4}}},
           {"/samples/tiny_transformer.onnx", {{"batch", 2}, {"seq", 16}}},
           {"/test/fixtures/resnet18_tiny/model.onnx", {}}}) {
    CompileOptions o;
    o.dims = dims;
    o.precision = "bf16";
    plans.push_back(compile_model(src + model, o).plan);
    EXPECT_NE(plans.back().program.find("native_low_precision = 1"), std::string::npos) << model;
  }
  int checked = 0;
  for (const Plan& p : plans)
    for (const PlanOp& op : p.ops) {
      EXPECT_TRUE(ops.count(op.op))
          << p.model << ": op " << op.op << " (node " << op.name << ") has no CUDA kernel";
      ++checked;
    }
  EXPECT_GT(checked, 500); // nine training steps: hundreds of ops in all
}

} // namespace
} // namespace memplan::testing
