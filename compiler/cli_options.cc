// The compile flags shared by `memplan compile` and `memplan sweep`, and the
// decision table both print.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <ostream>

#include "compiler/cli_internal.h"

namespace memplan {

void add_compile_options(CLI::App& c, CompileArgs& a, bool for_compile) {
  c.add_option("model", a.model, "ONNX model file (.onnx)")->required();
  if (for_compile) {
  c.add_option("-o,--output", a.output,
                      "Write the result here (atomically) and print a summary; default: stdout");
  c.add_option("--emit", a.emit, "What to write: plan (JSON) or ir (textual IR)")
      ->check(CLI::IsMember({"plan", "ir"}));
  c.add_option("--dump-after", a.dump_after,
                      "Print the IR (plan for plan-memory) to stderr after a pass: import, "
                      "bind-dims, infer-shapes, plan-memory (repeatable)");
  c.add_option("--budget", a.budget,
                      "Memory budget for the plan's peak, e.g. 16GiB, 16GB, 800MiB (default: the device's memory "
               "minus its context reserve); the planner chooses micro-batches, precision and "
               "recomputation to fit it at the least estimated step time");
  }
  c.add_option("--mode", a.mode,
                      "What to plan: training (forward, backward, optimizer update) or inference "
                      "(forward only)")
      ->capture_default_str();
  c.add_option("--optimizer", a.optimizer, "Training: sgd, adam, adamw or none")
      ->capture_default_str();
  c.add_option("--lr", a.lr, "Training: learning rate")->capture_default_str();
  c.add_option("--momentum", a.momentum, "SGD momentum")->capture_default_str();
  c.add_option("--dampening", a.dampening, "SGD dampening")->capture_default_str();
  c.add_flag("--nesterov", a.nesterov, "SGD: Nesterov momentum");
  c.add_option("--weight-decay", a.weight_decay,
                      "Weight decay (SGD/Adam: L2 in the gradient, default 0; AdamW: decoupled, default "
                      "0.01)");
  c.add_option("--beta1", a.beta1, "Adam/AdamW beta1")->capture_default_str();
  c.add_option("--beta2", a.beta2, "Adam/AdamW beta2")->capture_default_str();
  c.add_option("--eps", a.eps, "Adam/AdamW epsilon")->capture_default_str();
  c.add_option("--clip-grad-norm", a.clip,
                      "Clip gradients to this global L2 norm (0: off)")->capture_default_str();
  c.add_option("--freeze", a.freeze,
                      "Regex (ECMAScript) over parameter names: matching parameters are not trained");
  c.add_option("--loss", a.loss,
                      "Loss to build when the model has no scalar loss output: cross-entropy or mse");
  c.add_option("--labels", a.labels, "With --loss: the graph input holding the targets");
  c.add_option("--logits", a.logits,
                      "With --loss: the graph output the loss applies to (default: the only one)");
  c.add_option("--dim", a.dims, "Bind a symbolic dim, NAME=VALUE (repeatable), e.g. batch=32");
  c.add_option("--input-shape", a.input_shapes,
                      "Set a whole input shape, NAME=D0xD1x..., e.g. input=32x3x224x224 (repeatable)");
  c.add_option("--alignment", a.alignment, "Byte alignment of arena offsets (power of two)")
      ->capture_default_str();
  c.add_option("--schedule", a.schedule, "Node order: model, greedy, greedy-lifo or best")
      ->capture_default_str();
  c.add_option("--offset-method", a.offsets, "Offset assignment: greedy-size or best-of")
      ->capture_default_str();
  c.add_flag("--no-fold", a.no_fold, "Do not fold constant subgraphs");
  c.add_option("--remat-solver", a.remat_solver, "Rematerialization solver: fast, or exact (CBC MILP after the fast solver, "
               "10 s per solve, graphs over 40 ops coarsened to 40 groups; kept only when "
               "cheaper)")
      ->check(CLI::IsMember({"fast", "exact"}))
      ->capture_default_str();
  c.add_option("--device", a.device,
               "Device profile for the cost model and the default budget: h100, a100-80g, "
               "a100-40g, rtx4090, rtx3090, v100, t4")
      ->capture_default_str();
  c.add_option("--device-profile", a.device_profile,
               "A device profile JSON file (docs/device-profiles.md) instead of --device");
  c.add_option("--precision", a.precision,
               "auto (fp32, or with --budget whatever is fastest: fp32, every matmul/conv op in "
               "bf16 (fp16 on devices without bf16), or a per-op mix the cost model picks), "
               "fp32 (no lowering), bf16 or fp16 (every matmul/conv op in low precision)")
      ->capture_default_str();
  c.add_option("--micro-batches", a.micro_batches,
               "Split the batch into K micro-batches with gradient accumulation (default: the "
               "budget solver chooses K among the divisors of the batch)");
  c.add_option("--conv-workspace", a.conv_workspace,
               "Scratch each convolution may reserve for a GPU library's faster algorithms, up to "
               "its whole im2col matrix, e.g. 64MiB (default 0: only what the CPU kernel needs)")
      ->capture_default_str();
  c.add_option("--early-updates", a.early_updates,
               "on: an optimizer update may run as soon as its gradient is complete (frees the "
               "gradient early); off: all updates after the backward pass")
      ->capture_default_str();
  c.add_option("--offset-repack-work", a.offset_repack_work,
               "When the final plan's arena is more than 0.5% above its lower bound (after "
               "best-of again with first fit), re-place the buffers of time windows around its "
               "highest ones, at most this many placements (a few microseconds each on big "
               "graphs; 0: off)")
      ->capture_default_str();
  c.add_option("--offset-search-nodes", a.offset_search_nodes,
               "Then refine the offsets with a search of at most this many placements (tens of "
               "microseconds each on big graphs; 0: off; with --offset-repack-work 0 too, no "
               "refinement at all)")
      ->capture_default_str();
  c.add_option("--threads", a.threads,
               "Worker threads for the search when nothing fits the budget (it lowers each "
               "candidate's peak to find the smallest budget that fits; same answer for any "
               "count); default 0: one per hardware thread")
      ->capture_default_str();
}

void print_decisions(std::ostream& out, const Plan& p, int top) {
  const PlanDecisions& d = *p.decisions;
  auto ms = [](double s) { return fmt::format("{:.3f} ms", s * 1e3); };
  out << fmt::format("decisions (device {}, budget from {}; {} context reserve outside it)\n",
                     d.device, d.budget_source, human(d.reserve_bytes));
  out << fmt::format("  precision      {} ({} ops in low precision, {} casts{})\n", d.precision,
                     d.ops_low_precision, d.casts, d.loss_scaling ? ", dynamic loss scaling" : "");
  out << fmt::format("  micro-batches  k={}\n", d.micro_batches);
  double extra = 0;
  for (const RecomputeDecision& r : d.recomputed) extra += r.seconds;
  out << fmt::format("  recompute      {} node runs, +{}\n", d.recomputed.size(), ms(extra));
  out << fmt::format("  early updates  {}\n", d.early_updates ? "yes" : "no");
  out << fmt::format("  step time      {} estimated; unconstrained fp32 k=1 plan {} ({:+.1f}%), "
                     "peak {}\n",
                     ms(d.step_seconds), ms(d.unconstrained_step_seconds),
                     100.0 * (d.unconstrained_step_seconds > 0
                                  ? d.step_seconds / d.unconstrained_step_seconds - 1
                                  : 0.0),
                     human(d.unconstrained_peak_bytes));
  for (size_t i = 0; i < d.recomputed.size() && i < static_cast<size_t>(top); ++i) {
    const RecomputeDecision& r = d.recomputed[i];
    out << fmt::format("    recompute '{}' ({}) before '{}': +{}\n", r.node, human(r.bytes),
                       r.before, ms(r.seconds));
  }
  if (d.recomputed.size() > static_cast<size_t>(top))
    out << fmt::format("    ... {} more\n", d.recomputed.size() - static_cast<size_t>(top));
  if (d.candidates.size() > 1) {
    out << fmt::format("  candidates     {:>3} {:<10} {:<4} {:>12} {:>12} {:>9}  {}\n", "k",
                       "precision", "fits", "peak", "est. step", "recompute", "note");
    for (const CandidateRecord& c : d.candidates)
      out << fmt::format("                 {:>3} {:<10} {:<4} {:>12} {:>12} {:>9}  {}\n",
                         c.micro_batches, c.precision, !c.planned ? "-" : c.fits ? "yes" : "no",
                         c.peak_bytes > 0 ? human(c.peak_bytes) : "-",
                         c.fits ? ms(c.step_seconds) : "-", c.fits ? std::to_string(c.recomputed) : "-",
                         c.note);
  }
  for (const std::string& n : d.notes) out << "  note: " << n << "\n";
}

}  // namespace memplan
