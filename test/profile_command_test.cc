// `memplan profile` without a GPU: the fit of a device profile to per-op
// measurements (runtime/profile_command.h) and the JSON it writes, which the
// cost model must read back. Measurements are synthesized from the cost
// model's own estimates, so the expected fit follows from the formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "compiler/cost_model.h"
#include "compiler/pipeline.h"
#include "runtime/plan_binding.h"
#include "runtime/profile_command.h"

namespace memplan {
namespace {

struct Bound {
  Plan plan;
  PlanBinding b;
};

std::unique_ptr<Bound> tiny_cnn() {
  auto r = std::make_unique<Bound>();
  CompileOptions o;
  o.dims = {{"batch", 4}};
  r->plan = compile_model(std::string(MEMPLAN_SOURCE_DIR) + "/samples/tiny_cnn.onnx", o).plan;
  bind_plan(r->plan, r->b);
  return r;
}

TEST(ProfileFitTest, MeasurementsTwiceTheEstimatesHalveTheEfficiencies) {
  auto t = tiny_cnn();
  const DeviceProfile h100 = builtin_device("h100");
  // measured_i = launch + 2 * (estimate_i - launch): the same launch cost,
  // twice the work, so k = 2 and both efficiencies halve (0.6 -> 0.3, 0.8 -> 0.4).
  std::vector<double> est, meas;
  for (const Node* n : t->b.node)
    est.push_back(node_time(t->b.g, *n, h100));
  for (double e : est)
    meas.push_back(h100.launch_s + 2 * (e - h100.launch_s));
  ProfileFit f = fit_device_profile(t->b.g, t->b.node, meas, h100);
  EXPECT_NEAR(f.efficiency, h100.efficiency / 2, 1e-3);
  EXPECT_NEAR(f.bw_efficiency, h100.bw_efficiency / 2, 1e-3);
  // The cheapest quarter of ops is launch-bound (estimate == launch_s), so
  // their measurements are exactly launch_s.
  EXPECT_NEAR(f.launch_s, h100.launch_s, 1e-9);
  EXPECT_NEAR(f.measured_step_s, 2 * f.estimated_step_s - h100.launch_s * est.size(), 1e-9);
}

TEST(ProfileFitTest, WrittenProfileIsReadBackByTheCostModel) {
  auto t = tiny_cnn();
  const DeviceProfile a100 = builtin_device("a100-40g");
  std::vector<double> meas(t->b.node.size(), 20e-6);
  ProfileFit f = fit_device_profile(t->b.g, t->b.node, meas, a100);
  DeviceProfile d = parse_device_profile(
      device_profile_json("NVIDIA A100-SXM4-40GB (measured)", "a100-40g", int64_t{40} << 30, f),
      "PROFILE.json");
  EXPECT_EQ(d.name, "NVIDIA A100-SXM4-40GB (measured)");
  EXPECT_DOUBLE_EQ(d.flops_f32, a100.flops_f32); // from the base
  EXPECT_NEAR(d.launch_s, 20e-6, 1e-12);         // every op took 20 us
  EXPECT_NEAR(d.efficiency, f.efficiency, 1e-9);
}

TEST(ProfileFitTest, DeviceNamesMapToTheClosestBuiltinProfile) {
  EXPECT_EQ(closest_builtin_device("NVIDIA A100-SXM4-80GB", int64_t{80} << 30), "a100-80g");
  EXPECT_EQ(closest_builtin_device("NVIDIA A100-PCIE-40GB", int64_t{40} << 30), "a100-40g");
  EXPECT_EQ(closest_builtin_device("NVIDIA H100 80GB HBM3", int64_t{80} << 30), "h100");
  EXPECT_EQ(closest_builtin_device("NVIDIA GeForce RTX 4090", int64_t{24} << 30), "rtx4090");
  EXPECT_EQ(closest_builtin_device("Tesla T4", int64_t{16} << 30), "t4");
}

TEST(ProfileFitTest, MismatchedMeasurementsAreAnError) {
  auto t = tiny_cnn();
  EXPECT_THROW(fit_device_profile(t->b.g, t->b.node, {1e-3}, builtin_device("h100")), Error);
}

} // namespace
} // namespace memplan
