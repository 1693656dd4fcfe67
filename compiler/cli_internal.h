// Internal to the command line (compiler/cli*.cc): the compile flags shared
// by `compile` and `sweep`, and the printing helpers they share.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "compiler/pipeline.h"
#include "compiler/plan.h"

namespace CLI {
class App;
}

namespace memplan {

struct CompileArgs {
  std::string model, output, emit = "plan", mode = "training", schedule = "best",
                             offsets = "best-of";
  std::vector<std::string> dims, input_shapes, dump_after;
  int64_t alignment = 256;
  bool no_fold = false;
  // training
  std::string optimizer = "adamw", loss, labels, logits, freeze;
  double lr = 1e-3, momentum = 0, dampening = 0, weight_decay = -1 /* optimizer's default */,
         beta1 = 0.9, beta2 = 0.999, eps = 1e-8, clip = 0;
  bool nesterov = false;
  // memory budget
  std::string budget, remat_solver = "fast", device = "h100", device_profile;
  std::string precision = "auto", early_updates = "on", conv_workspace = "0";
  int64_t micro_batches = 0;  // 0: the solver chooses
  int64_t threads = 0;        // 0: one per hardware thread
  int64_t offset_search_nodes = 200000;
  int64_t offset_repack_work = 4'000'000;
};

/// Registers the compile flags on `c` (`compile`; `sweep` without the
/// output flags -o, --emit, --dump-after and without --budget).
void add_compile_options(CLI::App& c, CompileArgs& a, bool for_compile);
/// Checks the flags and turns them into pipeline options (Error on a bad one).
CompileOptions compile_options(const CompileArgs& a);

std::string human(int64_t bytes);  // "13.44 MiB"
double ratio(int64_t a, int64_t b);
/// The budget planner's decisions (plan.decisions) as a short table, with at
/// most `top` recomputations listed.
void print_decisions(std::ostream& out, const Plan& p, int top);

struct SweepArgs {
  CompileArgs compile;
  std::string budgets;  // "8GiB,16GiB"
  std::string budget;   // with a dim range
};
int do_sweep(const SweepArgs& a, std::ostream& out, std::ostream& err);

}  // namespace memplan
