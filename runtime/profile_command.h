// `memplan profile PLAN.json -o PROFILE.json`: measure a plan's ops on the
// GPU and write a device profile the cost model reads back
// (compiler/cost_model.h, parse_device_profile / --device-profile).
//
//  1. run one step of the plan on the CUDA executor (random weights,
//     synthetic inputs), then every op eagerly `--repeats` times between CUDA
//     events (cuda_profile_ops): per-op median seconds;
//  2. estimate every op with the built-in profile closest to the device
//     (closest_builtin_device) and fit three numbers to the measurements
//     (fit_device_profile): launch_s, the median time of the quarter of ops
//     with the smallest estimates; efficiency and bw_efficiency, the base's
//     divided by k = sum(measured - launch_s) / sum(estimated - base launch_s);
//  3. write PROFILE.json = {name, base, mem_bytes, launch_s, efficiency,
//     bw_efficiency} (only keys parse_device_profile knows), and beside it
//     PROFILE.ops.json: per op name, type, estimated and measured seconds
//     (an extension the cost model does not read), and print estimated
//     against measured step time.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "compiler/cost_model.h"
#include "compiler/ir.h"

namespace CLI {
class App;
}

namespace memplan {

struct ProfileArgs {
  std::string plan, out;
  int repeats = 5;
  uint64_t seed = 0;
  bool tf32 = false;
};

/// Built-in profile name for a CUDA device name ("NVIDIA A100-SXM4-40GB" ->
/// "a100-40g", H100/H200 -> "h100", ...; unknown -> "h100").
std::string closest_builtin_device(const std::string& device_name, int64_t total_bytes);

struct ProfileFit {
  double launch_s = 0, efficiency = 0, bw_efficiency = 0;
  double estimated_step_s = 0;   // sum of the base profile's node_time
  double measured_step_s = 0;    // sum of the measurements
  std::vector<double> estimated; // per node, with the base profile
};

/// Step 2 of the banner: `nodes` in plan order, `measured` seconds per node.
ProfileFit fit_device_profile(const Graph& g, const std::vector<const Node*>& nodes,
                              const std::vector<double>& measured, const DeviceProfile& base,
                              const CostOptions& opts = {});

/// PROFILE.json's text for a fit (parse_device_profile accepts it).
std::string device_profile_json(const std::string& name, const std::string& base, int64_t mem_bytes,
                                const ProfileFit& f);

int profile_command(const ProfileArgs& a, std::ostream& out, std::ostream& err);
void add_profile_options(CLI::App& sub, ProfileArgs& a);

} // namespace memplan
