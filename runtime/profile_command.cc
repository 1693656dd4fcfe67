#include "runtime/profile_command.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>

#include "compiler/plan_verify.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/plan_binding.h"

namespace memplan {

std::string closest_builtin_device(const std::string& device_name, int64_t total_bytes) {
  std::string n = device_name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  auto has = [&](const char* s) { return n.find(s) != std::string::npos; };
  if (has("a100")) return total_bytes > (int64_t{50} << 30) ? "a100-80g" : "a100-40g";
  if (has("4090")) return "rtx4090";
  if (has("3090")) return "rtx3090";
  if (has("v100")) return "v100";
  if (has(" t4") || has("tesla t4")) return "t4";
  return "h100"; // H100, H200 and anything newer
}

ProfileFit fit_device_profile(const Graph& g, const std::vector<const Node*>& nodes,
                              const std::vector<double>& measured, const DeviceProfile& base,
                              const CostOptions& opts) {
  if (nodes.size() != measured.size() || nodes.empty())
    throw Error("fit_device_profile: " + std::to_string(measured.size()) + " measurements for " +
                std::to_string(nodes.size()) + " ops");
  ProfileFit f;
  for (const Node* n : nodes)
    f.estimated.push_back(node_time(g, *n, base, opts));
  for (size_t i = 0; i < nodes.size(); ++i) {
    f.estimated_step_s += f.estimated[i];
    f.measured_step_s += measured[i];
  }
  // launch_s: the median measurement of the quarter of ops estimated cheapest.
  std::vector<size_t> order(nodes.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return f.estimated[a] < f.estimated[b]; });
  std::vector<double> cheap;
  for (size_t i = 0; i < std::max<size_t>(1, order.size() / 4); ++i)
    cheap.push_back(measured[order[i]]);
  std::sort(cheap.begin(), cheap.end());
  f.launch_s = std::max(1e-7, cheap[cheap.size() / 2]);
  double work_meas = 0, work_est = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    work_meas += std::max(0.0, measured[i] - f.launch_s);
    work_est += std::max(0.0, f.estimated[i] - base.launch_s);
  }
  const double k = work_est > 0 && work_meas > 0 ? work_meas / work_est : 1.0;
  f.efficiency = std::clamp(base.efficiency / k, 0.01, 1.0);
  f.bw_efficiency = std::clamp(base.bw_efficiency / k, 0.01, 1.0);
  return f;
}

std::string device_profile_json(const std::string& name, const std::string& base, int64_t mem_bytes,
                                const ProfileFit& f) {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["base"] = base;
  if (mem_bytes > 0) j["mem_bytes"] = mem_bytes;
  j["launch_s"] = f.launch_s;
  j["efficiency"] = f.efficiency;
  j["bw_efficiency"] = f.bw_efficiency;
  return j.dump(1) + "\n";
}

int profile_command(const ProfileArgs& a, std::ostream& out, std::ostream& err) {
  if (a.repeats < 1)
    throw Error("--repeats must be at least 1 (got " + std::to_string(a.repeats) + ")");
  if (a.out.empty()) throw Error("give the output file: -o PROFILE.json");
  Plan plan = read_plan_file(a.plan);
  PlanVerifyResult v = verify_plan(plan);
  if (!v.ok())
    throw Error(a.plan + ": the plan is invalid; run `memplan verify " + a.plan +
                "`. First: " + v.errors.front());
  const CudaDeviceInfo dev = cuda_device_info();
  CudaProfile prof = cuda_profile_ops(
      plan, {.check_finite = false, .seed = a.seed, .allow_tf32 = a.tf32}, a.repeats);
  PlanBinding b;
  bind_plan(plan, b);
  const std::string base = closest_builtin_device(dev.name, dev.total_bytes);
  ProfileFit f =
      fit_device_profile(b.g, b.node, prof.seconds, builtin_device(base), {.allow_tf32 = a.tf32});
  write_file_atomic(a.out, device_profile_json(dev.name + " (measured)", base, dev.total_bytes, f));
  nlohmann::ordered_json ops = nlohmann::ordered_json::array();
  for (size_t s = 0; s < plan.ops.size(); ++s)
    ops.push_back({{"name", plan.ops[s].name},
                   {"op", plan.ops[s].op},
                   {"estimated_s", f.estimated[s]},
                   {"measured_s", prof.seconds[s]}});
  std::string ops_path = a.out;
  if (ops_path.size() > 5 && ops_path.ends_with(".json")) ops_path.resize(ops_path.size() - 5);
  ops_path += ".ops.json";
  nlohmann::ordered_json doc{{"device", dev.name}, {"plan", a.plan}, {"base", base}, {"ops", ops}};
  write_file_atomic(ops_path, doc.dump(1) + "\n");
  out << fmt::format(
      "{}: step estimated {:.3f} ms with '{}', measured {:.3f} ms (ops run one by one; "
      "the graph replay took {:.3f} ms)\n",
      dev.name, f.estimated_step_s * 1e3, base, f.measured_step_s * 1e3, prof.step_seconds * 1e3);
  out << fmt::format("wrote {} (launch_s {:.2e}, efficiency {:.3f}, bw_efficiency {:.3f}) and {}\n",
                     a.out, f.launch_s, f.efficiency, f.bw_efficiency, ops_path);
  (void)err;
  return 0;
}

void add_profile_options(CLI::App& sub, ProfileArgs& a) {
  sub.add_option("plan", a.plan, "Memory plan (JSON) written by `memplan compile`")->required();
  sub.add_option("-o,--output", a.out, "Device profile to write (JSON for --device-profile)")
      ->required();
  sub.add_option("--repeats", a.repeats, "Timed runs per op (median; one warm-up run first)")
      ->capture_default_str();
  sub.add_option("--seed", a.seed, "Seed for the random weights and synthetic inputs")
      ->capture_default_str();
  sub.add_flag("--tf32", a.tf32, "Let fp32 GEMMs and convolutions use TF32 tensor cores");
}

} // namespace memplan
