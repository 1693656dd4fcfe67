// Internal to runtime/cuda: what cuda_memory_report and cuda_profile_ops need
// from a CUDA executor beyond the Executor interface, and NVML access.
#pragma once

#include <cstdint>
#include <vector>

namespace memplan {

class CudaExecutorInfo {
 public:
  virtual ~CudaExecutorInfo() = default;
  /// Bytes memplan cudaMalloc'ed: arena + resident, exactly the plan's peak.
  virtual int64_t device_allocated_bytes() const = 0;
  /// cudaMemGetInfo's free bytes when the executor started (after the CUDA
  /// context existed, before the two allocations and library handles).
  virtual int64_t free_bytes_before() const = 0;
  /// Runs the ops eagerly (not the graph) `repeats` + 1 times with CUDA
  /// events between ops; seconds[s] is op s's median (first run dropped).
  virtual void time_ops(std::vector<double>& seconds, int repeats) = 0;
};

/// This process's device memory on device 0 as NVML reports it
/// (nvmlDeviceGetComputeRunningProcesses through dlopen of
/// libnvidia-ml.so.1), or -1 when NVML is missing or does not know.
int64_t nvml_process_bytes();

} // namespace memplan
