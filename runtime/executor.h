// Executor interface shared by every backend (CPU reference now, CUDA later).
//
// An executor runs exactly the plan: the op order of `plan.ops`, every arena
// tensor and op workspace at its planned offset inside ONE arena allocation,
// and resident tensors (parameters, state, constants, optimizer state) at
// their planned offsets inside ONE resident allocation. Both are taken when
// the executor is created; a step allocates nothing.
//
// Modes for catching planner and kernel bugs that sanitizers cannot see:
//  - poison: the arena is filled with NaN bytes before each step, so a read of
//    memory nobody wrote shows up as NaN in the results;
//  - guard: arena offsets are re-planned with canary bytes around every
//    tensor (same schedule and lifetimes); the canaries of an op's outputs and
//    workspace are checked after the op, and a broken canary is an Error
//    naming the op and tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"
#include "compiler/plan.h"

namespace memplan {

struct ExecOptions {
  bool poison = false;
  bool guard = false;
  bool check_finite = true;  // after each op, f32/f64 outputs must hold no NaN; the loss must be finite
  uint64_t seed = 0;         // Dropout and --init random
  bool allow_tf32 = false;   // CUDA: fp32 GEMMs and convolutions may use TF32 tensor cores
};

struct StepResult {
  double loss = 0;            // value of plan.loss (0 if the plan has none)
  bool finite = true;         // false: stopped early, see first_nonfinite_op
  /// "op 12 'name' (Op) wrote NaN to 'tensor' (element i)", or the loss
  /// overflowed to inf. Per op only NaN is an error: -inf is a legitimate
  /// intermediate (attention masks).
  std::string first_nonfinite_op;
  double seconds = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  /// Runs one step. `inputs` maps every graph input name to host data of
  /// exactly its planned byte size (Error otherwise).
  virtual StepResult step(const std::map<std::string, std::vector<uint8_t>>& inputs) = 0;
  /// Bytes of a resident tensor (parameters, state, constants, optimizer
  /// state) or of a graph output after a step; Error for other tensors.
  virtual std::vector<uint8_t> read(std::string_view tensor) const = 0;
  /// Overwrites a resident tensor (weights loading, checkpoint resume).
  virtual void write(std::string_view tensor, const std::vector<uint8_t>& bytes) = 0;
  /// The step counter (advanced by each step; drives Dropout's RNG).
  virtual uint64_t step_count() const = 0;
  virtual void set_step_count(uint64_t s) = 0;
  /// Bytes this executor allocated for the arena and the resident region.
  virtual int64_t arena_bytes() const = 0;
  virtual int64_t resident_bytes() const = 0;
  /// Bytes allocated outside the plan: the CPU backend's f32 staging of ops
  /// whose plan leaves it out (staged_outside_plan, compiler/low_precision.h;
  /// ops the CUDA backend runs natively in bf16/f16). 0 for
  /// the CUDA backend.
  virtual int64_t scratch_bytes() const { return 0; }
  virtual const Graph& graph() const = 0;
};

/// Creates the CPU executor for a plan: parses plan.program, checks it
/// matches plan.tensors (names, dtypes, shapes), allocates arena and resident
/// memory, and copies constant data into place. Parameters start as zeros
/// until written (see runtime/weights.h for loading and initialization).
std::unique_ptr<Executor> make_cpu_executor(const Plan& plan, const ExecOptions& opts = {});

/// Creates the CUDA executor (runtime/cuda/cuda_executor.cc) on device 0:
/// one cudaMalloc for the arena and one for the resident region, every op
/// prepared (library descriptors, cuDNN algorithms chosen within the plan's
/// workspaces), the step captured once as a CUDA graph. Errors: a build
/// without the backend, no visible device, an op or dtype without a CUDA
/// kernel (naming op and node), guard mode (CPU only).
std::unique_ptr<Executor> make_cuda_executor(const Plan& plan, const ExecOptions& opts = {});

/// True when this memplan was built with the CUDA backend (MEMPLAN_CUDA).
bool cuda_backend_built();

}  // namespace memplan
