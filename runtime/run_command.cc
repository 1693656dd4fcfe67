#include "runtime/run_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "compiler/plan_verify.h"
#include "runtime/checkpoint.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/weights.h"

namespace memplan {

namespace {

Plan load_verified(const std::string& path) {
  Plan p = read_plan_file(path);
  PlanVerifyResult r = verify_plan(p);
  if (!r.ok())
    throw Error(path + ": the plan is invalid (" + std::to_string(r.errors.size()) +
                " problem(s)); run `memplan verify " + path + "`. First: " + r.errors.front());
  return p;
}

void check_args(const RunArgs& a) {
  if (a.steps <= 0) throw Error("--steps must be at least 1 (got " + std::to_string(a.steps) + ")");
  if (!a.init.empty() && a.init != "random")
    throw Error("--init '" + a.init + "' is not supported; the only initializer is 'random'");
  int sources = !a.weights.empty() + !a.init.empty() + !a.resume.empty();
  if (sources != 1)
    throw Error(sources == 0 ? "give the weights: --weights FILE, --init random or --resume CHECKPOINT"
                             : "give only one of --weights, --init and --resume");
  if (a.device != "cpu" && a.device != "cuda")
    throw Error("--device '" + a.device + "' is not supported; use cpu or cuda");
  if (a.device == "cuda" && a.guard)
    throw Error("--guard is supported by the CPU backend only; use --device cpu --guard");
  if (a.device != "cuda" && a.tf32) throw Error("--tf32 applies to --device cuda only");
  if (a.synthetic == !a.data.empty())
    throw Error(a.synthetic ? "give only one of --data and --synthetic"
                            : "give the input data: --data DIR or --synthetic");
  if (!a.save.empty()) {
    std::filesystem::path dir = std::filesystem::path(a.save).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      throw Error(a.save + ": output directory '" + dir.string() + "' does not exist; create it first");
  }
}

bool is_terminal(const std::ostream& out) {
  return &out == &std::cout && isatty(STDOUT_FILENO);
}

}  // namespace

int run_command(const RunArgs& a, std::ostream& out, std::ostream& err) {
  check_args(a);
  Plan plan = load_verified(a.plan);
  Checkpoint resume;
  uint64_t seed = a.seed;
  if (!a.resume.empty()) {
    resume = read_checkpoint(a.resume);
    if (a.seed != 0 && a.seed != resume.seed)
      err << "note: --seed " << a.seed << " ignored; resuming with the checkpoint's seed "
          << resume.seed << "\n";
    seed = resume.seed;
  }
  const ExecOptions eo{.poison = a.poison, .guard = a.guard, .check_finite = true, .seed = seed,
                       .allow_tf32 = a.tf32};
  std::unique_ptr<Executor> ex = a.device == "cuda" ? make_cuda_executor(plan, eo) : make_cpu_executor(plan, eo);
  if (!a.weights.empty()) load_weights(*ex, a.weights);
  else if (!a.init.empty()) init_random(*ex, seed);
  else restore_checkpoint(*ex, resume, a.resume, /*restore_step=*/true);

  std::unique_ptr<DataFeed> feed =
      a.synthetic ? make_synthetic_feed(ex->graph(), seed) : make_npy_feed(ex->graph(), a.data);
  const bool tty = a.progress && is_terminal(out);
  for (int i = 1; i <= a.steps; ++i) {
    StepResult r = ex->step(feed->batch(ex->step_count()));
    if (!r.finite)
      throw Error(fmt::format("step {}/{}: {}; stopping (no checkpoint written)", i, a.steps,
                              r.first_nonfinite_op));
    if (!std::isfinite(r.loss))
      throw Error(fmt::format("step {}/{}: the loss is {}; stopping (no checkpoint written)", i,
                              a.steps, r.loss));
    std::string line = fmt::format("step {}/{} loss {:.6f} ({:.3f} s)", i, a.steps, r.loss, r.seconds);
    if (tty) {
      const int width = 30, done = static_cast<int>(static_cast<int64_t>(width) * i / a.steps);
      out << "\r[" << std::string(done, '#') << std::string(width - done, ' ') << "] " << line
          << (i == a.steps ? "\n" : "") << std::flush;
    } else {
      out << line << "\n";
    }
  }
  out << "arena: " << ex->arena_bytes() << " bytes allocated (plan: " << plan.summary.arena_bytes
      << "), resident: " << ex->resident_bytes() << " bytes\n";
  if (ex->scratch_bytes() > 0)
    out << "staging scratch: " << ex->scratch_bytes()
        << " bytes outside the plan (f32 copies for bf16/f16 ops that a GPU runs natively)\n";
  if (a.device == "cuda") {
    CudaMemoryReport m = cuda_memory_report(*ex);
    out << "device: plan peak " << plan.summary.peak_bytes << " bytes, memplan allocated "
        << m.allocated_bytes << " bytes, process uses ";
    if (m.process_bytes >= 0)
      out << m.process_bytes << " bytes (" << m.process_source << ")\n";
    else
      out << "an unknown amount (neither NVML nor cudaMemGetInfo answered)\n";
  }
  if (!a.save.empty()) {
    write_checkpoint(a.save, capture_checkpoint(*ex, seed));
    out << "saved checkpoint " << a.save << " at step " << ex->step_count() << "\n";
  }
  return 0;
}

void add_run_options(CLI::App& sub, RunArgs& a) {
  sub.add_option("plan", a.plan, "Memory plan (JSON) written by `memplan compile`")->required();
  sub.add_option("--steps", a.steps, "Number of steps to run (at least 1)")->capture_default_str();
  sub.add_option("--weights", a.weights, "Load parameters from an .onnx model or a memplan checkpoint");
  sub.add_option("--init", a.init, "Initialize parameters instead of loading them: random (PyTorch-like defaults)");
  sub.add_option("--seed", a.seed, "Seed for --init random, --synthetic data and Dropout")->capture_default_str();
  sub.add_option("--data", a.data, "Directory with one NAME.npy per graph input ([samples, ...])");
  sub.add_flag("--synthetic", a.synthetic, "Feed deterministic, learnable random inputs from the seed");
  sub.add_option("--save", a.save, "Write a checkpoint (parameters, state, optimizer state, step) at the end");
  sub.add_option("--resume", a.resume, "Continue from a checkpoint written by --save (bit for bit)");
  sub.add_flag("--poison", a.poison, "Fill the arena with NaN before each step (catches reads of unwritten memory)");
  sub.add_flag("--guard", a.guard, "Re-plan with canaries around every arena tensor and check them after each op");
  sub.add_flag("!--no-progress", a.progress, "Print one line per step even on a terminal");
  sub.add_option("--device", a.device, "Where to run the step: cpu or cuda (needs a build with MEMPLAN_CUDA and a GPU)")
      ->capture_default_str();
  sub.add_flag("--tf32", a.tf32, "cuda: let fp32 GEMMs and convolutions use TF32 tensor cores");
}

}  // namespace memplan
