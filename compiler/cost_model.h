// Cost model: device profiles and a roofline time per node.
//
// A DeviceProfile holds a GPU's dense peak throughput per dtype, its memory
// bandwidth and capacity, a per-kernel launch overhead, achievable fractions
// of peak, and the memory the CUDA context and library handles take before
// any tensor is allocated. Built-in profiles come from the vendors' data
// sheets (docs/device-profiles.md names each source); others load from JSON.
//
// node_time() is a roofline:
//   time = max(flops / (peak(dtype) * efficiency),
//              bytes_moved / (mem_bw * bw_efficiency)) + launch_s
// with flops = node_flops() and bytes_moved = node_bytes_moved() from the op
// registry. Matmul-class ops (Gemm, MatMul, MatMulTrans, Conv, ConvTranspose,
// ConvGradInput, ConvGradWeight) run at the tensor-core peak of their compute
// dtype; f32 matmuls use flops_f32 unless CostOptions::allow_tf32. Every other
// op runs at flops_f32 (vector units) whatever its dtype: such ops are
// bandwidth-bound on every profile, so the choice rarely matters.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

struct DeviceProfile {
  std::string name;
  // Dense peak FLOP/s (never the 2:4-sparsity figures); 0 = dtype unsupported.
  double flops_f32 = 0;   // FP32 on vector units (non-tensor)
  double flops_tf32 = 0;  // TF32 tensor cores
  double flops_bf16 = 0;  // BF16 tensor cores, FP32 accumulate
  double flops_f16 = 0;   // FP16 tensor cores, FP32 accumulate
  double flops_f64 = 0;   // FP64 (vector units)
  double mem_bw = 0;      // bytes/s
  int64_t mem_bytes = 0;  // device memory capacity
  double launch_s = 5e-6;       // per-kernel launch and framework overhead
  double efficiency = 0.6;      // achievable fraction of a compute peak
  double bw_efficiency = 0.8;   // achievable fraction of mem_bw
  int64_t context_reserve_bytes = int64_t{512} << 20;  // CUDA context + cuBLAS/cuDNN handles
};

struct CostOptions {
  bool allow_tf32 = false;  // f32 matmul-class ops may use the TF32 tensor-core peak
};

/// Names of the built-in profiles: "h100", "a100-80g", "a100-40g", "rtx4090",
/// "rtx3090", "v100", "t4".
std::vector<std::string_view> builtin_device_names();
/// A built-in profile by name; throws Error listing the known names otherwise.
DeviceProfile builtin_device(std::string_view name);

/// Parses a profile from JSON text. Required keys: name, flops_f32, mem_bw,
/// mem_bytes. Optional: flops_tf32, flops_bf16, flops_f16, flops_f64 (0),
/// launch_s, efficiency, bw_efficiency, context_reserve_bytes (defaults
/// above), and "base": a built-in profile whose values the others override.
/// Throws Error naming `what` and the offending key (missing, wrong type,
/// negative, efficiency outside (0, 1], or an unknown key).
DeviceProfile parse_device_profile(const std::string& json_text, const std::string& what = "profile");
/// Reads a JSON file and parses it; Error names the path.
DeviceProfile load_device_profile(const std::string& path);

/// True for ops timed at the tensor-core (matmul) peak.
bool is_matmul_class(std::string_view op);
/// The dtype a node computes in: its first floating-point output, else its
/// first floating-point input, else f32.
DType node_compute_dtype(const Graph& g, const Node& n);
/// Peak FLOP/s the profile gives a node (before efficiency). Throws Error
/// naming the node, dtype and device when that peak is 0 (unsupported).
double node_peak_flops(const Graph& g, const Node& n, const DeviceProfile& d,
                       const CostOptions& opts = {});
/// Roofline seconds of one execution of n on d (see the banner).
double node_time(const Graph& g, const Node& n, const DeviceProfile& d, const CostOptions& opts = {});

}  // namespace memplan
