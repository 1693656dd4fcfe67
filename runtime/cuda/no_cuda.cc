// The CUDA entry points of a build without the backend (MEMPLAN_CUDA=OFF or
// no nvcc found): every one is a clear Error telling how to get it.
#include "runtime/cuda/cuda_executor.h"
#include "runtime/executor.h"

namespace memplan {

namespace {
[[noreturn]] void not_built() {
  throw Error(
      "this memplan was built without the CUDA backend; reconfigure with -DMEMPLAN_CUDA=ON");
}
} // namespace

bool cuda_backend_built() {
  return false;
}

std::vector<std::string> cuda_supported_ops() {
  return {};
}

std::unique_ptr<Executor> make_cuda_executor(const Plan&, const ExecOptions&) {
  not_built();
}

CudaDeviceInfo cuda_device_info() {
  not_built();
}

CudaMemoryReport cuda_memory_report(const Executor&) {
  not_built();
}

CudaProfile cuda_profile_ops(const Plan&, const ExecOptions&, int) {
  not_built();
}

} // namespace memplan
