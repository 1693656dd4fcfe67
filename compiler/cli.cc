// memplan's command line: compile, inspect, verify, check.
#include "compiler/cli.h"
#include "compiler/cli_internal.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>

#include "compiler/ir_text.h"
#include "compiler/pipeline.h"
#include "compiler/plan_verify.h"
#include "compiler/cost_model.h"
#include "compiler/size_parse.h"
#include "passes/bind_dims.h"
#include "runtime/profile_command.h"
#include "runtime/run_command.h"

namespace memplan {

std::string human(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", v, units[u]);
}

std::string dims_str(const std::map<std::string, int64_t>& dims) {
  std::string s;
  for (const auto& [k, v] : dims) s += (s.empty() ? "" : ",") + k + "=" + std::to_string(v);
  return s.empty() ? "-" : s;
}

double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 1.0; }

namespace {

/// Fails early, before any work, when an output path cannot be written.
void check_output_dir(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) return;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(path + ": output directory '" + dir.string() + "' does not exist; create it first");
}

/// Reads a plan and refuses it unless the verifier accepts it.
Plan load_verified_plan(const std::string& path) {
  Plan p = read_plan_file(path);
  PlanVerifyResult r = verify_plan(p);
  if (!r.ok()) {
    std::string msg = path + ": the plan is invalid (" + std::to_string(r.errors.size()) +
                      " problem(s)); run `memplan verify " + path + "` for all of them. First: " +
                      r.errors.front();
    throw Error(msg);
  }
  return p;
}

void print_summary(std::ostream& out, const Plan& p) {
  const PlanSummary& s = p.summary;
  out << fmt::format("peak      {:>12}  = arena {} + resident {}\n", human(s.peak_bytes),
                     human(s.arena_bytes), human(s.resident_bytes));
  out << fmt::format("arena     {:>12}  lower bound {}  arena/LB {:.4f}\n", human(s.arena_bytes),
                     human(s.lower_bound_bytes), ratio(s.arena_bytes, s.lower_bound_bytes));
}

// ---------------------------------------------------------------- compile



OptimizerKind parse_optimizer(const std::string& s) {
  for (auto k : {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::none})
    if (optimizer_name(k) == s) return k;
  throw Error("--optimizer " + s + ": use sgd, adam, adamw or none");
}

TrainingOptions training_options(const CompileArgs& a) {
  TrainingOptions t;
  t.loss = a.loss;
  if (!t.loss.empty() && t.loss != "cross-entropy" && t.loss != "mse")
    throw Error("--loss " + t.loss + ": use cross-entropy or mse");
  if (!t.loss.empty() && a.labels.empty())
    throw Error("--loss " + t.loss + " needs --labels NAME (the graph input with the targets)");
  t.labels = a.labels;
  t.logits = a.logits;
  t.freeze = a.freeze;
  t.clip_grad_norm = a.clip;
  if (a.clip < 0) throw Error("--clip-grad-norm must be positive (0 turns clipping off)");
  OptimizerOptions& o = t.optimizer;
  o.kind = parse_optimizer(a.optimizer);
  if (!(a.lr > 0)) throw Error("--lr must be positive");
  o.lr = a.lr;
  o.momentum = a.momentum;
  o.dampening = a.dampening;
  o.nesterov = a.nesterov;
  if (a.nesterov && (a.momentum <= 0 || a.dampening != 0))
    throw Error("--nesterov needs --momentum > 0 and --dampening 0 (as torch.optim.SGD)");
  if (a.weight_decay < -0.5)
    o.weight_decay = o.kind == OptimizerKind::adamw ? 0.01 : 0.0;  // torch.optim's defaults
  else if (a.weight_decay < 0)
    throw Error("--weight-decay must not be negative");
  else
    o.weight_decay = a.weight_decay;
  o.beta1 = a.beta1;
  o.beta2 = a.beta2;
  o.eps = a.eps;
  return t;
}

}  // namespace

CompileOptions compile_options(const CompileArgs& a) {
  if (a.mode != "inference" && a.mode != "training")
    throw Error("--mode " + a.mode + ": unknown mode; use --mode training or --mode inference");
  CompileOptions o;
  o.mode = a.mode;
  if (a.mode == "training") o.training = training_options(a);
  for (const std::string& d : a.dims) {
    auto [k, v] = parse_dim_flag(d);
    auto [it, fresh] = o.dims.emplace(k, v);
    if (!fresh && it->second != v)
      throw Error("--dim " + k + " given twice with different values (" +
                  std::to_string(it->second) + " and " + std::to_string(v) + ")");
  }
  for (const std::string& s : a.input_shapes) {
    auto [k, v] = parse_input_shape_flag(s);
    if (!o.input_shapes.emplace(k, v).second) throw Error("--input-shape " + k + " given twice");
  }
  if (a.alignment <= 0 || (a.alignment & (a.alignment - 1)) != 0)
    throw Error("--alignment " + std::to_string(a.alignment) + ": must be a power of two (e.g. 256)");
  o.plan.alignment = a.alignment;
  auto sm = parse_schedule_method(a.schedule);
  if (!sm) throw Error("--schedule " + a.schedule + ": use model, greedy, greedy-lifo or best");
  o.plan.schedule = *sm;
  auto om = parse_offset_method(a.offsets);
  if (!om) throw Error("--offset-method " + a.offsets + ": use greedy-size or best-of");
  o.plan.offsets = *om;
  if (a.no_fold) o.disabled.insert("fold");
  if (!a.budget.empty()) o.budget_bytes = parse_size(a.budget, "--budget");
  o.remat_solver = a.remat_solver;
  o.device = a.device;
  o.device_profile = a.device_profile;
  (void)compile_device(o);  // Error listing the known devices, or naming the bad profile file
  if (a.precision != "auto" && a.precision != "fp32" && a.precision != "bf16" && a.precision != "fp16")
    throw Error("--precision " + a.precision + ": use auto, fp32, bf16 or fp16");
  o.precision = a.precision;
  if (a.micro_batches != 0) {
    if (a.micro_batches < 1) throw Error("--micro-batches must be at least 1");
    o.micro_batches = a.micro_batches;
  }
  if (a.early_updates != "on" && a.early_updates != "off")
    throw Error("--early-updates " + a.early_updates + ": use on or off");
  o.early_updates = a.early_updates == "on";
  o.conv_workspace_bytes = parse_size(a.conv_workspace, "--conv-workspace");
  o.plan.early_updates = o.early_updates;
  if (a.threads < 0 || a.threads > 1024)
    throw Error("--threads " + std::to_string(a.threads) + ": use 0 (one per hardware thread) to 1024");
  o.threads = static_cast<int>(a.threads);
  if (a.offset_search_nodes < 0)
    throw Error("--offset-search-nodes " + std::to_string(a.offset_search_nodes) +
                ": use 0 (off) or a positive number of placements");
  o.offset_search_nodes = a.offset_search_nodes;
  if (a.offset_repack_work < 0)
    throw Error("--offset-repack-work " + std::to_string(a.offset_repack_work) +
                ": use 0 (off) or a positive number of placements");
  o.offset_repack_work = a.offset_repack_work;
  return o;
}

namespace {

int do_compile(const CompileArgs& a, std::ostream& out, std::ostream& err) {
  CompileOptions o = compile_options(a);
  o.dump_after.insert(a.dump_after.begin(), a.dump_after.end());
  o.dump = [&err](const std::string& pass, const std::string& text) {
    err << "// ----- IR after " << pass << "\n" << text;
  };
  if (!a.output.empty()) check_output_dir(a.output);

  CompileResult r = compile_model(a.model, o);
  PlanVerifyResult v = verify_plan(r.plan);
  if (!v.ok()) throw InternalError("the planner produced an invalid plan: " + v.errors.front());
  for (const std::string& n : r.notes) err << "note: " << n << "\n";

  std::string text = a.emit == "ir" ? print_graph(r.graph) : plan_to_json(r.plan);
  if (a.output.empty()) {
    out << text;
    return 0;
  }
  write_file_atomic(a.output, text);
  out << fmt::format("compiled {} ({} mode, dims {}): {} ops ({} folded at compile time), {} tensors\n",
                     a.model, r.plan.mode, dims_str(r.plan.dims), r.plan.ops.size(),
                     r.nodes_folded, r.plan.tensors.size());
  print_summary(out, r.plan);
  if (r.plan.budget_bytes)
    out << fmt::format("budget    {:>12}  peak {} fits\n", human(*r.plan.budget_bytes),
                       human(r.plan.summary.peak_bytes));
  if (r.plan.decisions) {
    print_decisions(out, r.plan, 5);
  } else if (r.plan.budget_bytes) {
    out << fmt::format("          {} recomputed node runs, +{:.3g} s estimated ({})\n",
                       r.remat_recomputed, r.remat_extra_seconds, a.device);
    for (size_t i = 0; i < r.remat_decisions.size() && i < 5; ++i)
      out << "  " << r.remat_decisions[i] << "\n";
    if (r.remat_decisions.size() > 5) out << "  ... " << r.remat_decisions.size() - 5 << " more\n";
  }
  out << "wrote " << a.output << "\n";
  return 0;
}

// ---------------------------------------------------------------- inspect

int do_inspect(const std::string& path, int top, std::ostream& out) {
  Plan p = load_verified_plan(path);
  const PlanSummary& s = p.summary;
  out << fmt::format("plan      {} ({} mode, dims {})\n", p.model, p.mode, dims_str(p.dims));
  out << fmt::format("ops       {}  tensors {}  schedule {}  offsets {}  alignment {}\n",
                     p.ops.size(), p.tensors.size(), p.schedule_method, p.offset_method,
                     p.alignment);
  print_summary(out, p);
  if (p.budget_bytes)
    out << fmt::format("budget    {:>12}  {}\n", human(*p.budget_bytes),
                       s.peak_bytes <= *p.budget_bytes ? "fits" : "DOES NOT FIT");
  if (p.decisions) print_decisions(out, p, top);
  const bool step_ok = s.peak_step >= 0 && static_cast<size_t>(s.peak_step) < p.ops.size();
  std::string peak_op = step_ok ? p.ops[static_cast<size_t>(s.peak_step)].name : "-";
  out << fmt::format("\nbytes by role (resident roles in total; arena roles live at step {}, op '{}')\n",
                     s.peak_step, peak_op);
  for (const auto& [role, bytes] : s.bytes_by_role)
    out << fmt::format("  {:<16} {:>12}  {:5.1f}%\n", role, human(bytes),
                       100.0 * ratio(bytes, s.peak_bytes));
  out << fmt::format("  {:<16} {:>12}  {:5.1f}%\n", "fragmentation", human(s.arena_bytes - s.lower_bound_bytes),
                     100.0 * ratio(s.arena_bytes - s.lower_bound_bytes, s.peak_bytes));

  // Live range of each arena tensor, recomputed from the op list.
  const size_t n = p.tensors.size();
  std::vector<int32_t> first(n, -1), last(n, -1);
  for (int32_t t : p.inputs) first[t] = 0;
  for (size_t st = 0; st < p.ops.size(); ++st) {
    for (int32_t t : p.ops[st].outputs)
      if (t >= 0 && first[t] < 0) first[t] = static_cast<int32_t>(st);
    for (int32_t t : p.ops[st].inputs)
      if (t >= 0) {
        int32_t r = t;
        while (p.tensors[r].placement == Placement::alias) r = p.tensors[r].alias_of;
        last[r] = std::max(last[r], static_cast<int32_t>(st));
      }
  }
  for (int32_t t : p.outputs) last[t] = static_cast<int32_t>(p.ops.size()) - 1;
  std::vector<size_t> idx;
  for (size_t i = 0; i < n; ++i)
    if (p.tensors[i].placement != Placement::alias) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return p.tensors[a].bytes > p.tensors[b].bytes; });
  out << fmt::format("\nlargest tensors (top {})\n", std::min<size_t>(top, idx.size()));
  out << fmt::format("  {:>12}  {:<10} {:<9} {:<18} {}\n", "bytes", "role", "placement", "live steps", "name");
  for (size_t k = 0; k < idx.size() && k < static_cast<size_t>(top); ++k) {
    const PlanTensor& t = p.tensors[idx[k]];
    std::string live = t.placement == Placement::resident
                           ? "whole step"
                           : fmt::format("{}..{}", std::max(first[idx[k]], 0), std::max(last[idx[k]], first[idx[k]]));
    out << fmt::format("  {:>12}  {:<10} {:<9} {:<18} {}\n", human(t.bytes), role_name(t.role),
                       placement_name(t.placement), live, t.name);
  }
  return 0;
}

// ---------------------------------------------------------------- verify

int do_verify(const std::string& path, std::ostream& out, std::ostream& err) {
  Plan p = read_plan_file(path);
  PlanVerifyResult r = verify_plan(p);
  if (r.ok()) {
    out << fmt::format("{}: plan is valid ({} ops, {} tensors, arena {} >= lower bound {}, peak {})\n",
                       path, p.ops.size(), p.tensors.size(), p.summary.arena_bytes,
                       p.summary.lower_bound_bytes, p.summary.peak_bytes);
    return 0;
  }
  err << path << ": plan is INVALID (" << r.errors.size() << " problem(s)):\n";
  for (const std::string& e : r.errors) err << "  " << e << "\n";
  return 1;
}

// ---------------------------------------------------------------- check

double parse_tolerance(const std::string& s) {
  std::string num = s;
  if (num.empty() || num.back() != '%')
    throw Error("--tolerance " + s + ": give a percentage such as 1% or 0.5%");
  num.pop_back();
  try {
    size_t used = 0;
    double v = std::stod(num, &used);
    if (used != num.size() || v < 0 || v > 1000) throw std::invalid_argument("range");
    return v / 100.0;
  } catch (const std::exception&) {
    throw Error("--tolerance " + s + ": give a percentage such as 1% or 0.5%");
  }
}

int do_check(const std::string& plan_path, const std::string& base_path, const std::string& tol,
             bool update, std::ostream& out, std::ostream& err) {
  using json = nlohmann::ordered_json;
  double t = parse_tolerance(tol);
  Plan p = load_verified_plan(plan_path);
  std::string key = p.model + " " + p.mode + " " + dims_str(p.dims);
  json base = {{"format", "memplan-baseline"}, {"version", 1}, {"plans", json::object()}};
  bool exists = std::filesystem::exists(base_path);
  if (exists) {
    std::string text = read_file(base_path);
    try {
      base = json::parse(text);
    } catch (const json::parse_error& e) {
      throw Error(base_path + ": not valid JSON (byte " + std::to_string(e.byte) +
                  "); fix or delete the baseline and rerun with --update");
    }
    if (!base.is_object() || base.value("format", "") != "memplan-baseline" ||
        !base.contains("plans") || !base["plans"].is_object())
      throw Error(base_path + ": not a memplan baseline (expected \"format\": \"memplan-baseline\" "
                  "and a \"plans\" object)");
  }
  json& plans = base["plans"];
  if (update) {
    plans[key] = {{"peak_bytes", p.summary.peak_bytes}, {"arena_bytes", p.summary.arena_bytes}};
    write_file_atomic(base_path,
                      base.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
    out << fmt::format("{}: recorded '{}': peak {} arena {}\n", base_path, key,
                       p.summary.peak_bytes, p.summary.arena_bytes);
    return 0;
  }
  if (!exists) throw Error(base_path + ": baseline file does not exist; create it with --update");
  if (!plans.contains(key))
    throw Error(base_path + ": no baseline entry for '" + key + "'; record it with --update");
  const json& e = plans[key];
  int rc = 0;
  for (const char* k : {"peak_bytes", "arena_bytes"}) {
    if (!e.contains(k) || !e[k].is_number_integer())
      throw Error(base_path + ": entry '" + key + "' has no integer '" + k + "'");
    int64_t old = e[k].get<int64_t>();
    int64_t now = std::string(k) == "peak_bytes" ? p.summary.peak_bytes : p.summary.arena_bytes;
    double limit = static_cast<double>(old) * (1.0 + t);
    const char* verdict = static_cast<double>(now) > limit ? "GREW beyond tolerance"
                          : now < old                      ? "shrank (update the baseline)"
                                                           : "ok";
    (static_cast<double>(now) > limit ? err : out)
        << fmt::format("{:<12} baseline {:>14}  now {:>14}  ({:+.3f}%)  {}\n", k, old, now,
                       100.0 * (ratio(now, old) - 1.0), verdict);
    if (static_cast<double>(now) > limit) rc = 1;
  }
  if (rc) err << plan_path << ": memory regression against " << base_path << " (tolerance " << tol << ")\n";
  return rc;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"memplan: a memory-planning compiler for neural-network training.\n"
               "Plans every byte of a model's step ahead of time, in one arena.",
               "memplan"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "memplan 0.1.0");

  CompileArgs ca;
  CLI::App* compile = app.add_subcommand("compile", "Compile an ONNX model into a memory plan");
  add_compile_options(*compile, ca, true);

  SweepArgs sa;
  CLI::App* sweep = app.add_subcommand(
      "sweep", "Compile a model at several budgets (--budgets A,B,...), or find the largest value "
               "of a dim that fits one budget (--budget B --dim NAME=LO:HI)");
  add_compile_options(*sweep, sa.compile, false);
  sweep->add_option("--budgets", sa.budgets, "Comma-separated budgets, e.g. 8GiB,16GiB,80GiB");
  sweep->add_option("--budget", sa.budget, "With a --dim NAME=LO:HI range: the budget to fit");

  std::string plan_path;
  int top = 15;
  CLI::App* inspect = app.add_subcommand("inspect", "Show what a plan spends memory on");
  inspect->add_option("plan", plan_path, "Plan file (JSON)")->required();
  inspect->add_option("--top", top, "How many of the largest tensors to list")->capture_default_str();

  CLI::App* verify_cmd = app.add_subcommand(
      "verify", "Check a plan independently: no live tensors overlap, alignment, reads after "
                "writes, summary figures; exit 0 only if valid");
  verify_cmd->add_option("plan", plan_path, "Plan file (JSON)")->required();

  RunArgs ra;
  CLI::App* run = app.add_subcommand(
      "run", "Execute a plan's training step on the CPU in one preallocated arena");
  add_run_options(*run, ra);

  ProfileArgs pa;
  CLI::App* profile_cmd = app.add_subcommand(
      "profile", "Measure a plan's ops on the GPU (CUDA backend) and write a device profile");
  add_profile_options(*profile_cmd, pa);

  std::string baseline, tolerance = "1%";
  bool update = false;
  CLI::App* check = app.add_subcommand(
      "check", "CI guard: exit 1 if peak_bytes or arena_bytes grew beyond the tolerance");
  check->add_option("plan", plan_path, "Plan file (JSON)")->required();
  check->add_option("--baseline", baseline, "Baseline file (JSON, one entry per model/mode/dims)")
      ->required();
  check->add_option("--tolerance", tolerance, "Allowed growth, as a percentage")->capture_default_str();
  check->add_flag("--update", update, "Record this plan's figures in the baseline instead");

  try {
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    err << "memplan: error: " << e.what() << "\nRun 'memplan --help' or 'memplan COMMAND --help'.\n";
    return 1;
  }
  try {
    if (*compile) return do_compile(ca, out, err);
    if (*sweep) return do_sweep(sa, out, err);
    if (*inspect) return do_inspect(plan_path, top, out);
    if (*verify_cmd) return do_verify(plan_path, out, err);
    if (*check) return do_check(plan_path, baseline, tolerance, update, out, err);
    if (*run) return run_command(ra, out, err);
    if (*profile_cmd) return profile_command(pa, out, err);
  } catch (const Error& e) {
    err << "memplan: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "memplan: internal error: " << e.what() << "\nThis is a bug in memplan; please report it.\n";
    return 2;
  }
  return 2;
}

}  // namespace memplan
