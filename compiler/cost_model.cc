// Device profiles and the roofline node time (see cost_model.h). The figures
// and their sources are listed in docs/device-profiles.md.
#include "compiler/cost_model.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "compiler/op_registry.h"

namespace memplan {

namespace {

constexpr double T = 1e12;     // TFLOP/s
constexpr double GBs = 1e9;    // GB/s (decimal, as data sheets state bandwidth)
constexpr int64_t GiB = int64_t{1} << 30;

DeviceProfile make(const char* name, double f32, double tf32, double bf16, double f16, double f64,
                   double bw, int64_t mem) {
  DeviceProfile d;
  d.name = name;
  d.flops_f32 = f32;
  d.flops_tf32 = tf32;
  d.flops_bf16 = bf16;
  d.flops_f16 = f16;
  d.flops_f64 = f64;
  d.mem_bw = bw;
  d.mem_bytes = mem;
  return d;
}

// Dense figures: data sheets list tensor-core peaks "with sparsity"; the dense
// peak is half of that. FP16/BF16 are the FP32-accumulate rates (training).
const std::vector<DeviceProfile>& builtins() {
  static const std::vector<DeviceProfile> kProfiles = {
      //    name        fp32      tf32       bf16       fp16       fp64       bw          memory
      make("h100", 67 * T, 494.5 * T, 989.5 * T, 989.5 * T, 34 * T, 3350 * GBs, 80 * GiB),
      make("a100-80g", 19.5 * T, 156 * T, 312 * T, 312 * T, 9.7 * T, 2039 * GBs, 80 * GiB),
      make("a100-40g", 19.5 * T, 156 * T, 312 * T, 312 * T, 9.7 * T, 1555 * GBs, 40 * GiB),
      make("rtx4090", 82.6 * T, 82.6 * T, 165.2 * T, 165.2 * T, 1.29 * T, 1008 * GBs, 24 * GiB),
      make("rtx3090", 35.6 * T, 35.6 * T, 71 * T, 71 * T, 0.556 * T, 936 * GBs, 24 * GiB),
      make("v100", 15.7 * T, 0, 0, 125 * T, 7.8 * T, 900 * GBs, 32 * GiB),
      make("t4", 8.1 * T, 0, 0, 65 * T, 0.253 * T, 320 * GBs, 16 * GiB),
  };
  return kProfiles;
}

using nlohmann::json;

double get_number(const json& j, const char* key, const std::string& what) {
  const json& v = j.at(key);
  if (!v.is_number())
    throw Error(what + ": key '" + key + "' must be a number, got " + std::string(v.type_name()));
  const double x = v.get<double>();
  if (!(x >= 0)) throw Error(what + ": key '" + key + "' must be >= 0, got " + v.dump());
  return x;
}

int64_t get_int(const json& j, const char* key, const std::string& what) {
  const json& v = j.at(key);
  if (!v.is_number_integer())
    throw Error(what + ": key '" + key + "' must be an integer (bytes), got " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x < 0) throw Error(what + ": key '" + key + "' must be >= 0, got " + v.dump());
  return x;
}

}  // namespace

std::vector<std::string_view> builtin_device_names() {
  std::vector<std::string_view> out;
  for (const DeviceProfile& d : builtins()) out.push_back(d.name);
  return out;
}

DeviceProfile builtin_device(std::string_view name) {
  for (const DeviceProfile& d : builtins())
    if (d.name == name) return d;
  std::string known;
  for (std::string_view n : builtin_device_names()) known += (known.empty() ? "" : ", ") + std::string(n);
  throw Error("unknown device '" + std::string(name) + "' (built-in: " + known + ")");
}

DeviceProfile parse_device_profile(const std::string& json_text, const std::string& what) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw Error(what + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(what + ": expected a JSON object");

  static constexpr std::array kKnown = {"name",     "base",       "flops_f32",  "flops_tf32",
                                        "flops_bf16", "flops_f16", "flops_f64",  "mem_bw",
                                        "mem_bytes", "launch_s",  "efficiency", "bw_efficiency",
                                        "context_reserve_bytes"};
  for (const auto& [key, value] : j.items()) {
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end())
      throw Error(what + ": unknown key '" + key + "'");
  }

  DeviceProfile d;
  const bool has_base = j.contains("base");
  if (has_base) {
    if (!j["base"].is_string()) throw Error(what + ": key 'base' must be a string");
    try {
      d = builtin_device(j["base"].get<std::string>());
    } catch (const Error& e) {
      throw Error(what + ": key 'base': " + e.what());
    }
  }
  if (!j.contains("name")) throw Error(what + ": missing key 'name'");
  if (!j["name"].is_string() || j["name"].get<std::string>().empty())
    throw Error(what + ": key 'name' must be a non-empty string");
  d.name = j["name"].get<std::string>();
  if (!has_base) {
    for (const char* req : {"flops_f32", "mem_bw", "mem_bytes"})
      if (!j.contains(req)) throw Error(what + ": missing key '" + req + "'");
  }

  struct NumField {
    const char* key;
    double DeviceProfile::*field;
  };
  static constexpr std::array kNums = {
      NumField{"flops_f32", &DeviceProfile::flops_f32},   NumField{"flops_tf32", &DeviceProfile::flops_tf32},
      NumField{"flops_bf16", &DeviceProfile::flops_bf16}, NumField{"flops_f16", &DeviceProfile::flops_f16},
      NumField{"flops_f64", &DeviceProfile::flops_f64},   NumField{"mem_bw", &DeviceProfile::mem_bw},
      NumField{"launch_s", &DeviceProfile::launch_s},     NumField{"efficiency", &DeviceProfile::efficiency},
      NumField{"bw_efficiency", &DeviceProfile::bw_efficiency}};
  for (const NumField& f : kNums)
    if (j.contains(f.key)) d.*(f.field) = get_number(j, f.key, what);
  if (j.contains("mem_bytes")) d.mem_bytes = get_int(j, "mem_bytes", what);
  if (j.contains("context_reserve_bytes"))
    d.context_reserve_bytes = get_int(j, "context_reserve_bytes", what);

  if (d.flops_f32 <= 0) throw Error(what + ": key 'flops_f32' must be > 0");
  if (d.mem_bw <= 0) throw Error(what + ": key 'mem_bw' must be > 0");
  for (const char* key : {"efficiency", "bw_efficiency"}) {
    const double e = std::string_view(key) == "efficiency" ? d.efficiency : d.bw_efficiency;
    if (!(e > 0 && e <= 1)) throw Error(what + ": key '" + key + "' must be in (0, 1]");
  }
  return d;
}

DeviceProfile load_device_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open device profile '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_device_profile(ss.str(), "device profile '" + path + "'");
}

bool is_matmul_class(std::string_view op) {
  static constexpr std::array<std::string_view, 7> kOps = {
      "Gemm", "MatMul", "MatMulTrans", "Conv", "ConvTranspose", "ConvGradInput", "ConvGradWeight"};
  return std::find(kOps.begin(), kOps.end(), op) != kOps.end();
}

DType node_compute_dtype(const Graph& g, const Node& n) {
  for (const auto* list : {&n.outputs, &n.inputs})
    for (TensorId id : *list)
      if (id.valid() && is_float(g.tensor(id).dtype)) return g.tensor(id).dtype;
  return DType::f32;
}

double node_peak_flops(const Graph& g, const Node& n, const DeviceProfile& d, const CostOptions& opts) {
  const DType dt = node_compute_dtype(g, n);
  double peak = d.flops_f32;
  if (dt == DType::f64) {
    peak = d.flops_f64;
  } else if (is_matmul_class(n.op)) {
    if (dt == DType::f16) peak = d.flops_f16;
    else if (dt == DType::bf16) peak = d.flops_bf16;
    else if (opts.allow_tf32 && d.flops_tf32 > 0) peak = d.flops_tf32;
  }
  if (peak <= 0)
    throw Error(node_desc(n) + ": dtype " + std::string(dtype_name(dt)) + " is not supported by device '" +
                d.name + "' (its peak is 0 in the profile)");
  return peak;
}

double node_time(const Graph& g, const Node& n, const DeviceProfile& d, const CostOptions& opts) {
  const double flops = node_flops(g, n);
  const double bytes = static_cast<double>(node_bytes_moved(g, n));
  const double compute_s = flops > 0 ? flops / (node_peak_flops(g, n, d, opts) * d.efficiency) : 0.0;
  const double memory_s = bytes / (d.mem_bw * d.bw_efficiency);
  return std::max(compute_s, memory_s) + d.launch_s;
}

}  // namespace memplan
