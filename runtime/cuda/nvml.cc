// NVML through dlopen (runtime/cuda/cuda_internal.h): the driver ships
// libnvidia-ml.so.1, the toolkit does not always ship its headers, and a
// missing NVML must not stop `memplan run`, so the few entry points used are
// declared here with NVML's documented C signatures.
#include <dlfcn.h>
#include <unistd.h>

#include "runtime/cuda/cuda_internal.h"

namespace memplan {

namespace {

struct NvmlProcessInfo { // nvmlProcessInfo_t (v2/v3 layout)
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

using InitFn = int (*)();
using HandleFn = int (*)(unsigned int, void**);
using ProcsFn = int (*)(void*, unsigned int*, NvmlProcessInfo*);

} // namespace

int64_t nvml_process_bytes() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return -1;
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "nvmlInit_v2"));
  auto handle = reinterpret_cast<HandleFn>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  auto procs = reinterpret_cast<ProcsFn>(dlsym(lib, "nvmlDeviceGetComputeRunningProcesses_v3"));
  int64_t result = -1;
  void* dev = nullptr;
  if (init && handle && procs && init() == 0 && handle(0, &dev) == 0) {
    NvmlProcessInfo info[64];
    unsigned int n = 64;
    if (procs(dev, &n, info) == 0) {
      const unsigned int me = static_cast<unsigned int>(getpid());
      for (unsigned int i = 0; i < n; ++i)
        if (info[i].pid == me && info[i].usedGpuMemory != ~0ull) // NVML_VALUE_NOT_AVAILABLE
          result = static_cast<int64_t>(info[i].usedGpuMemory);
    }
  }
  // NVML stays loaded (nvmlShutdown is not needed for a one-shot query).
  return result;
}

} // namespace memplan
