// `memplan run PLAN`: execute a verified plan on the CPU for N steps.
//
//  1. read the plan and refuse it unless verify_plan accepts it;
//  2. create the planned executor: --device cpu (default; --poison, --guard)
//     or cuda (--poison; runtime/cuda/, a clear Error when the backend is not
//     built or no GPU is visible);
//  3. fill the resident tensors from exactly one of --weights FILE (.onnx or
//     checkpoint), --init random, --resume CHECKPOINT (which also restores the
//     step counter and the seed, so Dropout masks continue bit for bit);
//  4. feed inputs from --data DIR (.npy per input) or --synthetic;
//  5. run the steps, printing `step i/N loss L (T s)` per step (a one-line
//     progress display when `out` is std::cout on a terminal), then the
//     arena and resident bytes actually allocated; on cuda also the plan's
//     peak, the bytes memplan allocated on the device and the process's
//     device usage (NVML, or the drop in free memory);
//  6. --save FILE writes a checkpoint at the end.
// A non-finite loss or op output stops the run with an Error naming the step
// and the first op; no checkpoint is written then. Every user error throws
// memplan::Error (the CLI prints it and exits 1); success returns 0.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace CLI {
class App;
}

namespace memplan {

struct RunArgs {
  std::string plan;
  int steps = 1;
  std::string weights;
  std::string init = "";
  uint64_t seed = 0;
  std::string data;
  bool synthetic = false;
  std::string save, resume;
  bool poison = false, guard = false;
  bool progress = true;
  std::string device = "cpu";  // cpu or cuda
  bool tf32 = false;           // cuda: allow TF32 tensor cores for fp32 GEMMs / convolutions
};

int run_command(const RunArgs& a, std::ostream& out, std::ostream& err);

/// Declares PLAN and every flag of `memplan run` on `sub`, bound to `a`.
void add_run_options(CLI::App& sub, RunArgs& a);

}  // namespace memplan
