// CUDA-only entry points besides make_cuda_executor (runtime/executor.h):
// device discovery and the memory figures `memplan run --device cuda`
// prints, and per-op timing for `memplan profile`. Declared for every build;
// without the backend (runtime/cuda/no_cuda.cc) each throws the Error
// "this memplan was built without the CUDA backend; reconfigure with
// -DMEMPLAN_CUDA=ON".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/plan.h"
#include "runtime/executor.h"

namespace memplan {

/// Op types the CUDA backend has kernels for, sorted (empty without the backend).
std::vector<std::string> cuda_supported_ops();

struct CudaDeviceInfo {
  std::string name; // e.g. "NVIDIA H100 80GB HBM3"
  int sm_major = 0, sm_minor = 0;
  int64_t total_bytes = 0;
};

/// Device 0. Error "no CUDA device is visible (cudaGetDeviceCount: ...)"
/// when cudaGetDeviceCount fails or finds none.
CudaDeviceInfo cuda_device_info();

struct CudaMemoryReport {
  int64_t allocated_bytes = 0; // what memplan cudaMalloc'ed: arena + resident
  int64_t process_bytes = -1;  // the process's device usage; -1 unknown
  /// How process_bytes was measured: "NVML per-process", or "drop in free
  /// memory since before the executor was created" (includes the CUDA
  /// context and library handles when they were created by the executor).
  std::string process_source;
};

/// Memory figures of a CUDA executor (Error for another executor).
CudaMemoryReport cuda_memory_report(const Executor& ex);

/// Per-op device times of one step, measured with CUDA events around each
/// op (not captured as a graph, so launch gaps are included), the median of
/// `repeats` steps after one warm-up step.
struct CudaProfile {
  std::string device;
  std::vector<std::string> op_names, op_types;
  std::vector<double> seconds; // per plan op
  double step_seconds = 0;     // one replayed step (Executor::step), median of `repeats`
};
CudaProfile cuda_profile_ops(const Plan& plan, const ExecOptions& opts, int repeats);

} // namespace memplan
