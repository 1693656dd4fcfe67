#include "compiler/pipeline.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "compiler/autodiff.h"
#include "compiler/budget_search.h"
#include "compiler/ir_text.h"
#include "passes/bind_dims.h"
#include "passes/infer_shapes.h"
#include "passes/microbatch.h"
#include "passes/plan_memory.h"
#include "passes/precision.h"
#include "passes/remat.h"
#include "python-free-frontends/onnx_importer.h"

namespace memplan {

namespace {

/// What the user bound, for "too large" messages: "--dim batch=8, --input-shape x".
std::string bound_flags(const CompileOptions& opts) {
  std::string s;
  for (const auto& [k, v] : opts.dims)
    s += (s.empty() ? "" : ", ") + ("--dim " + k + "=" + std::to_string(v));
  for (const auto& [k, v] : opts.input_shapes)
    s += (s.empty() ? "" : ", ") + ("--input-shape " + k);
  return s.empty() ? "the model's static shapes" : s;
}

/// After bind-dims: every graph input's byte size fits in 64 bits. Names the
/// input, its shape and the flags that made it too large.
void check_input_sizes(const Graph& g, const CompileOptions& opts) {
  for (TensorId id : g.inputs) {
    const Tensor& t = g.tensor(id);
    try {
      (void)t.bytes();
    } catch (const Error&) {
      throw Error("graph input '" + t.name + "' " + std::string(dtype_name(t.dtype)) +
                  shape_str(t.shape) + ": its byte size overflows 64 bits; the dims set by " +
                  bound_flags(opts) + " are too large");
    }
  }
}

/// Before plan-memory: the total of all tensors, each rounded up to the
/// alignment, fits in int64. Every offset, the arena, resident region and
/// peak are at most this total, so planning cannot overflow after it.
void check_total_size(const Graph& g, const CompileOptions& opts) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t a = std::max<int64_t>(opts.plan.alignment, 1);  // plan-memory rejects bad ones
  int64_t total = 0;
  for (size_t i = 0; i < g.num_tensors(); ++i) {
    const Tensor& t = g.tensor(TensorId{static_cast<uint32_t>(i)});
    const int64_t b = t.bytes();
    if (b > kMax - (a - 1) || (b + a - 1) / a * a > kMax - total) {
      throw Error("the tensors of this model add up to more than 2^63 bytes (tensor '" + t.name +
                  "' " + std::string(dtype_name(t.dtype)) + shape_str(t.shape) + " alone is " +
                  std::to_string(b) +
                  " bytes), too much to plan with 64-bit offsets; the dims set by " +
                  bound_flags(opts) + " are too large");
    }
    total += (b + a - 1) / a * a;
  }
}

}  // namespace

const std::vector<std::string>& pipeline_pass_names() {
  static const std::vector<std::string> names = {"import",    "bind-dims", "infer-shapes",
                                                 "precision", "autodiff",  "plan-memory"};
  return names;
}

DeviceProfile compile_device(const CompileOptions& opts) {
  return opts.device_profile.empty() ? builtin_device(opts.device)
                                     : load_device_profile(opts.device_profile);
}

namespace {

struct Dumper {
  const CompileOptions& opts;
  bool on = true;
  void operator()(const Graph& g, const std::string& pass, const VerifyOptions& vo) const {
    verify(g, vo);
    if (on && opts.dump_after.count(pass) && opts.dump) opts.dump(pass, print_graph(g));
  }
};

/// bind-dims and infer-shapes on a copy of the imported graph, with the batch
/// divided by k (passes/microbatch.h).
Graph bind_and_infer(const Graph& imported, const CompileOptions& opts, const Dumper& after,
                     int64_t* folded, int64_t k = 1, FoldCache* folds = nullptr) {
  Graph g = imported;
  const BindOptions full{.dims = opts.dims, .input_shapes = opts.input_shapes};
  bind_dims(g, k == 1 ? full : micro_binding(imported, full, k));
  check_input_sizes(g, opts);
  after(g, "bind-dims", {.require_shapes = false});
  InferShapesStats st =
      infer_shapes(g, {.fold_constants = !opts.disabled.count("fold"), .cache = folds});
  if (folded) *folded = st.nodes_folded;
  after(g, "infer-shapes", {.require_shapes = true});
  return g;
}

/// --conv-workspace: attr workspace_limit on every convolution-class node
/// (its registry workspace then reserves up to that much, compiler/ops_grad_nn.cc).
void limit_conv_workspaces(Graph& g, int64_t bytes) {
  if (bytes <= 0) return;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    Node& n = g.node(NodeId(i));
    if (n.op == "Conv" || n.op == "ConvTranspose" || n.op == "ConvGradInput" ||
        n.op == "ConvGradWeight")
      n.attrs["workspace_limit"] = bytes;
  }
}

/// One candidate of the budget solver: the training graph for k micro-batches
/// at the given precision, from the model bound and inferred for that k.
Lowered lower_candidate(const Graph& bound, const CompileOptions& opts, const LeverChoice& c,
                        const DeviceProfile& device, const Dumper& after) {
  Lowered l;
  l.graph = bound;
  TrainingOptions t = opts.training;
  t.micro_batches = c.micro_batches;
  if (c.precision != DType::f32) {
    PrecisionStats ps = lower_precision(
        l.graph, {.low = c.precision, .frozen = t.freeze,
                  .select = c.mixed ? PrecisionSelect::cost : PrecisionSelect::all,
                  .device = &device});
    l.ops_low_precision = ps.ops_lowered;
    l.casts = ps.casts_inserted;
    l.ops_kept_f32 = ps.ops_kept_f32;
    // A mix equal to all-low or to fp32 is not planned (budget_search.cc):
    // skip the training graph.
    if (c.mixed && (ps.ops_kept_f32 == 0 || ps.ops_lowered == 0)) return l;
    if (c.mixed && ps.ops_kept_f32 > 0)
      l.notes.push_back(fmt::format(
          "precision: the cost model kept {} matmul-class op(s) fp32 (forward + backward estimate "
          "{:.4g} ms against {:.4g} ms with every op {})",
          ps.ops_kept_f32, ps.est_seconds * 1e3, ps.est_seconds_all_low * 1e3,
          precision_label(c.precision)));
    // fp16's narrow range needs dynamic loss scaling (bf16 has f32's range).
    l.loss_scaling = t.loss_scaling.enabled = c.precision == DType::f16;
    after(l.graph, "precision", {.require_shapes = true});
  }
  l.training = build_training_graph(l.graph, t);
  l.notes.insert(l.notes.end(), l.training.warnings.begin(), l.training.warnings.end());
  (void)mark_native_low_precision(l.graph);
  limit_conv_workspaces(l.graph, opts.conv_workspace_bytes);
  after(l.graph, "autodiff", {.require_shapes = true});
  check_total_size(l.graph, opts);
  return l;
}

/// The micro-batch counts the solver may try: --micro-batches K, or the
/// divisors of the batch up to max_k. Sets *note when only k = 1 is possible.
std::vector<int64_t> micro_batch_candidates(const Graph& imported, const CompileOptions& opts,
                                            std::string* note) {
  constexpr int64_t max_k = 64;  // the unrolled graph grows with k
  const BindOptions full{.dims = opts.dims, .input_shapes = opts.input_shapes};
  if (opts.micro_batches) {
    if (*opts.micro_batches != 1) (void)micro_binding(imported, full, *opts.micro_batches);
    return {*opts.micro_batches};
  }
  Graph g = imported;
  bind_dims(g, full);
  int64_t batch = 0;
  try {
    batch = find_batch(g).size;
  } catch (const Error& e) {
    *note = e.what();
    return {1};
  }
  std::vector<int64_t> ks;
  for (int64_t k : batch_divisors(batch))
    if (k <= max_k) ks.push_back(k);
  if (ks.size() > 1) {
    try {
      (void)micro_binding(imported, full, ks[1]);
    } catch (const Error& e) {
      // The user gave no --micro-batches: drop the flag micro_binding names.
      const std::string flag = "--micro-batches " + std::to_string(ks[1]) + ": ";
      *note = e.what();
      if (note->starts_with(flag)) *note = note->substr(flag.size());
      return {1};
    }
  } else if (batch == 1) {
    *note = "the batch is 1";
  }
  return ks;
}

/// The final plan's offsets, refined by window repacking and the offset
/// search (the budget search plans many candidates without them: they take
/// seconds on big graphs). The chosen candidate's record gets the lower
/// peak too.
void refine_offsets(Plan& p, int64_t search_nodes, int64_t repack_work) {
  const int64_t old_peak = p.summary.peak_bytes;
  if (!refine_plan_offsets(p, search_nodes, repack_work) || !p.decisions) return;
  for (CandidateRecord& c : p.decisions->candidates)
    if (c.fits && c.peak_bytes == old_peak && c.micro_batches == p.decisions->micro_batches &&
        c.precision == p.decisions->precision)
      c.peak_bytes = p.summary.peak_bytes;
}

}  // namespace

CompileResult compile_model(const std::string& onnx_path, const CompileOptions& opts) {
  if (opts.mode != "inference" && opts.mode != "training")
    throw Error("--mode " + opts.mode + ": unknown mode; use training (the default) or inference");
  for (const std::string& d : opts.dump_after) {
    const auto& names = pipeline_pass_names();
    if (std::find(names.begin(), names.end(), d) == names.end())
      throw Error("--dump-after " + d +
                  ": no such pass (passes: import, bind-dims, "
                  "infer-shapes, precision, autodiff, plan-memory)");
  }
  CompileResult r;
  const DeviceProfile device = compile_device(opts);
  Dumper after{opts};

  ImportResult imp = import_onnx_file(onnx_path);
  const Graph imported = std::move(imp.graph);
  r.notes = std::move(imp.notes);
  r.nodes_imported = static_cast<int64_t>(imported.num_nodes());
  after(imported, "import", {.require_shapes = false});

  // Errors past the importer (which names the file itself) are prefixed with
  // the model path, so every message says which model it is about.
  try {
    if (opts.mode == "inference") {
      r.graph = bind_and_infer(imported, opts, after, &r.nodes_folded);
      if (opts.precision == "bf16" || opts.precision == "fp16") {
        // Inference: every weight read only by lowered ops is stored low.
        (void)lower_precision(r.graph, {.low = opts.precision == "bf16" ? DType::bf16 : DType::f16,
                                        .training = false});
        (void)mark_native_low_precision(r.graph);  // GEMMs run in bf16/f16 on the GPU
        after(r.graph, "precision", {.require_shapes = true});
      }
      limit_conv_workspaces(r.graph, opts.conv_workspace_bytes);
      check_total_size(r.graph, opts);
      if (opts.budget_bytes) {
        // Memory budget: plan, and rematerialize when the plan does not fit.
        RematOptions ro{.budget_bytes = *opts.budget_bytes, .solver = opts.remat_solver,
                        .device = device, .alignment = opts.plan.alignment,
                        .early_updates = opts.plan.early_updates};
        RematFit fit = fit_to_budget(r.graph, opts.plan, ro);
        r.plan = std::move(fit.plan);
        r.remat_recomputed = fit.remat.recomputed_nodes;
        r.remat_extra_seconds = fit.remat.extra_seconds;
        r.remat_decisions = std::move(fit.remat.decisions);
      } else {
        r.plan = plan_memory(r.graph, opts.plan);
      }
    } else {
      SearchOptions so;
      so.budget_bytes = opts.budget_bytes.value_or(
          std::max<int64_t>(device.mem_bytes - device.context_reserve_bytes, 0));
      so.budget_source = opts.budget_bytes ? "--budget" : "device memory (" + device.name + ")";
      so.precision = opts.precision;
      so.auto_low = opts.budget_bytes.has_value();
      so.device = device;
      so.remat_solver = opts.remat_solver;
      so.plan = opts.plan;
      so.threads = opts.threads;
      so.micro_batches = micro_batch_candidates(imported, opts, &so.micro_batch_note);
      Dumper quiet{opts, false};
      // The precisions of one k share its binding and shape inference, and
      // all candidates one fold memo (the folded constants barely depend on k).
      FoldCache folds;
      std::map<int64_t, Graph> bound;
      std::map<int64_t, int64_t> folded;  // per k
      auto bound_for = [&](int64_t k) -> const Graph& {
        auto it = bound.find(k);
        if (it == bound.end())
          it = bound.emplace(k, bind_and_infer(imported, opts, quiet, &folded[k], k, &folds)).first;
        return it->second;
      };
      const KeepZeroData keep_zeros;  // each candidate builds a training graph
      SearchResult sr = search_budget(
          [&](const LeverChoice& c) {
            return lower_candidate(bound_for(c.micro_batches), opts, c, device, quiet);
          },
          so);
      bound.clear();
      r.nodes_folded = folded[sr.choice.micro_batches];
      if (!opts.dump_after.empty())  // dumps show the chosen candidate's passes
        (void)lower_candidate(bind_and_infer(imported, opts, after, nullptr, sr.choice.micro_batches),
                              opts, sr.choice, device, after);
      r.graph = std::move(sr.graph);
      r.plan = std::move(sr.plan);
      r.training = sr.training;
      for (const std::string& w : sr.notes) r.notes.push_back(w);
      const PlanDecisions& d = *r.plan.decisions;
      r.remat_recomputed = static_cast<int64_t>(d.recomputed.size());
      for (const RecomputeDecision& x : d.recomputed) {
        r.remat_extra_seconds += x.seconds;
        r.remat_decisions.push_back(fmt::format("recompute '{}' ({} bytes) before '{}': +{:.3g} s",
                                                x.node, x.bytes, x.before, x.seconds));
      }
      if (!opts.budget_bytes) r.plan.budget_bytes.reset();
    }
    refine_offsets(r.plan, opts.offset_search_nodes, opts.offset_repack_work);
  } catch (const Error& e) {
    throw Error(onnx_path + ": " + e.what());
  }
  r.plan.model = onnx_path;
  r.plan.mode = opts.mode;
  r.plan.dims = opts.dims;
  // The loss: in training mode the first output (autodiff's contract); in
  // inference mode the first output too when it is a scalar (models with the
  // loss inside the graph), so `memplan run` can report it.
  if (!r.graph.outputs.empty()) {
    const Tensor& first = r.graph.tensor(r.graph.outputs[0]);
    if (opts.mode == "training" || (first.shape.empty() && is_float(first.dtype)))
      r.plan.loss = static_cast<int32_t>(r.graph.outputs[0].v);
  }
  r.plan.program = print_graph(r.graph, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  if (opts.dump_after.count("plan-memory") && opts.dump)
    opts.dump("plan-memory", plan_to_json(r.plan));
  return r;
}

}  // namespace memplan
