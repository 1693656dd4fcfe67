// Gradients and optimizer steps checked against PyTorch.
//
// tools/export_fixtures.py wrote, for three small models (test/fixtures/),
// real weights, one batch, PyTorch's loss, every parameter gradient, the
// BatchNorm running statistics after the step, and the parameters after three
// steps of SGD (momentum, nesterov, weight decay), Adam and AdamW. Here each
// model is compiled by memplan in training mode, run by the planned CPU
// executor (poison mode on: every arena byte is NaN before the step), and
// compared with the tolerances the fixtures carry (test/fixtures/README.md:
// loss 1e-5; ||g - g_ref|| / ||g_ref|| <= 1e-4 per parameter; parameters after
// three steps <= 1e-5 relative L2, widened only where PyTorch's own fp32 result
// is that far from fp64).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "compiler/pipeline.h"
#include "compiler/plan_verify.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/weights.h"

namespace memplan {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path fixture_dir(const std::string& name) {
  return fs::path(MEMPLAN_SOURCE_DIR) / "test" / "fixtures" / name;
}

json expected(const std::string& name) {
  std::ifstream f(fixture_dir(name) / "expected.json");
  return json::parse(f);
}

double tol_for(const json& table, const std::string& tensor) {
  if (table.is_number()) return table.get<double>();
  if (table.contains("overrides") && table["overrides"].contains(tensor))
    return table["overrides"][tensor].get<double>();
  return table["default"].get<double>();
}

std::vector<double> as_doubles(const std::vector<uint8_t>& bytes) {
  std::vector<double> v(bytes.size() / 4);
  for (size_t i = 0; i < v.size(); ++i) {
    float f;
    std::memcpy(&f, bytes.data() + 4 * i, 4);
    v[i] = f;
  }
  return v;
}

/// ||a - b|| / ||b|| (absolute ||a - b|| when b is all zeros).
double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    n += b[i] * b[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

std::map<std::string, std::vector<uint8_t>> batch(const std::string& name, const json& e) {
  std::map<std::string, std::vector<uint8_t>> in;
  for (auto it = e["inputs"].begin(); it != e["inputs"].end(); ++it)
    in[it.key()] = read_npy((fixture_dir(name) / it.value()["file"].get<std::string>()).string()).data;
  return in;
}

std::unique_ptr<Executor> compile_and_load(const std::string& name, const TrainingOptions& t) {
  CompileOptions o;
  o.mode = "training";
  o.training = t;
  std::string model = (fixture_dir(name) / "model.onnx").string();
  CompileResult r = compile_model(model, o);
  PlanVerifyResult v = verify_plan(r.plan);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.errors.front());
  auto ex = make_cpu_executor(r.plan, {.poison = true});
  load_weights(*ex, model);
  return ex;
}

class PyTorchFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(PyTorchFixture, LossGradientsAndBatchNormStatsMatch) {
  const std::string name = GetParam();
  json e = expected(name);
  TrainingOptions t;
  t.optimizer.kind = OptimizerKind::none;
  t.grads_as_outputs = true;
  auto ex = compile_and_load(name, t);
  StepResult r = ex->step(batch(name, e));
  ASSERT_TRUE(r.finite) << r.first_nonfinite_op;
  const double ref_loss = e["loss"].get<double>();
  EXPECT_LE(std::abs(r.loss - ref_loss) / std::max(1.0, std::abs(ref_loss)),
            tol_for(e["tolerance"]["loss"], "loss"))
      << "loss " << r.loss << " vs PyTorch " << ref_loss;
  for (auto it = e["grads"].begin(); it != e["grads"].end(); ++it) {
    std::vector<double> ref = as_doubles(read_npy((fixture_dir(name) / it.value().get<std::string>()).string()).data);
    std::vector<double> got = as_doubles(ex->read(it.key() + "/grad"));
    ASSERT_EQ(got.size(), ref.size()) << it.key();
    EXPECT_LE(rel_l2(got, ref), tol_for(e["tolerance"]["grads"], it.key())) << "gradient of " << it.key();
  }
  for (auto it = e["state_after"].begin(); it != e["state_after"].end(); ++it) {
    std::vector<double> ref = as_doubles(read_npy((fixture_dir(name) / it.value().get<std::string>()).string()).data);
    std::vector<double> got = as_doubles(ex->read(it.key()));
    EXPECT_LE(rel_l2(got, ref), tol_for(e["tolerance"]["state_after"], it.key())) << it.key();
  }
}

TEST_P(PyTorchFixture, ThreeOptimizerStepsMatchTorchOptim) {
  const std::string name = GetParam();
  json e = expected(name);
  for (const char* opt : {"sgd", "adam", "adamw"}) {
    SCOPED_TRACE(opt);
    const json& o = e["optim"][opt];
    const json& h = o["hyper"];
    TrainingOptions t;
    OptimizerOptions& oo = t.optimizer;
    oo.kind = std::string(opt) == "sgd" ? OptimizerKind::sgd
              : std::string(opt) == "adam" ? OptimizerKind::adam
                                           : OptimizerKind::adamw;
    oo.lr = h["lr"].get<double>();
    oo.weight_decay = h["weight_decay"].get<double>();
    if (oo.kind == OptimizerKind::sgd) {
      oo.momentum = h["momentum"].get<double>();
      oo.dampening = h["dampening"].get<double>();
      oo.nesterov = h["nesterov"].get<bool>();
    } else {
      oo.beta1 = h["betas"][0].get<double>();
      oo.beta2 = h["betas"][1].get<double>();
      oo.eps = h["eps"].get<double>();
    }
    auto ex = compile_and_load(name, t);
    auto in = batch(name, e);
    for (int s = 0; s < 3; ++s) {
      StepResult r = ex->step(in);
      ASSERT_TRUE(r.finite) << r.first_nonfinite_op;
      double ref = o["losses"][s].get<double>();
      EXPECT_LE(std::abs(r.loss - ref) / std::max(1.0, std::abs(ref)),
                tol_for(o["tolerance"]["losses"], "losses"))
          << "step " << s << " loss " << r.loss << " vs " << ref;
    }
    for (auto it = o["params_after"].begin(); it != o["params_after"].end(); ++it) {
      std::vector<double> ref =
          as_doubles(read_npy((fixture_dir(name) / it.value().get<std::string>()).string()).data);
      std::vector<double> got = as_doubles(ex->read(it.key()));
      EXPECT_LE(rel_l2(got, ref), tol_for(o["tolerance"]["params_after"], it.key()))
          << it.key() << " after 3 steps";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PyTorchFixture,
                         ::testing::Values("resnet18_tiny", "gpt2_tiny", "unet_tiny"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace memplan
