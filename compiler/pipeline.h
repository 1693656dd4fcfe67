// The compilation pipeline as data: an ordered list of named passes over one
// Graph, with verify() after each and optional IR dumps.
//
//   import        ONNX file -> Graph (python-free-frontends/onnx_importer.h)
//   bind-dims     symbolic dims from --dim / --input-shape (passes/bind_dims.h)
//   infer-shapes  shape inference + constant folding (passes/infer_shapes.h)
//   precision     training mode: bf16/fp16 for matmul-class ops (passes/precision.h)
//   autodiff      training mode only: loss, backward, optimizer (compiler/autodiff.h);
//                 with k micro-batches, k replicas and gradient accumulation
//   plan-memory   schedule, lifetimes, offsets -> Plan (passes/plan_memory.h);
//                 in training mode the budget solver (compiler/budget_search.h)
//                 runs bind-dims .. autodiff once per candidate (k, precision)
//                 and rematerializes (passes/remat.h) where a plan does not fit.
//                 The budget is --budget, or the device's memory minus its
//                 context reserve.
//
// Passes listed in `disabled` are skipped where that is meaningful
// ("fold" turns constant folding off inside infer-shapes).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/autodiff.h"
#include "compiler/cost_model.h"
#include "compiler/ir.h"
#include "compiler/plan.h"
#include "passes/plan_memory.h"

namespace memplan {

struct CompileOptions {
  std::string mode = "training";  // or "inference" (forward only)
  TrainingOptions training;
  std::map<std::string, int64_t> dims;
  std::map<std::string, Shape> input_shapes;
  PlanMemoryOptions plan;
  std::set<std::string> disabled;   // pass names to skip ("fold")
  std::set<std::string> dump_after; // pass names after which to print the IR
  std::function<void(const std::string& pass, const std::string& ir)> dump;  // sink for dumps
  // --- memory budget (passes/remat.h) -------------------------------------
  std::optional<int64_t> budget_bytes;  // --budget: the plan's peak must fit
  std::string remat_solver = "fast";    // --remat-solver fast|exact
  std::string device = "h100";          // --device: built-in cost-model profile
  std::string device_profile;           // --device-profile FILE (overrides `device`)
  std::string precision = "auto";       // --precision auto|fp32|bf16|fp16
  std::optional<int64_t> micro_batches; // --micro-batches K (default: the solver chooses)
  bool early_updates = true;            // --early-updates on|off
  /// --conv-workspace: each convolution may reserve up to this much scratch
  /// (at most its whole im2col matrix) for a GPU library's faster algorithms,
  /// beyond the CPU kernel's own need. 0: only the CPU kernel's need.
  int64_t conv_workspace_bytes = 0;
  int threads = 0;  // --threads: SearchOptions::threads
  /// --offset-search-nodes: the final plan's arena offsets are refined by
  /// the offset search (passes/plan_memory.h refine_plan_offsets) with at
  /// most this many placements when its arena is more than 0.5% above the
  /// lower bound. 0: off.
  int64_t offset_search_nodes = 200000;
  /// --offset-repack-work: before that search, window repacking
  /// (passes/offset_repack.h) with at most this many placements. 0: off.
  /// Both 0: no refinement at all.
  int64_t offset_repack_work = 4'000'000;
};

struct CompileResult {
  Graph graph;  // after infer-shapes
  Plan plan;
  std::vector<std::string> notes;  // things the user should know (e.g. absent weights)
  int64_t nodes_imported = 0;
  int64_t nodes_folded = 0;
  TrainingStats training;  // training mode only
  // --- memory budget: what rematerialization did (empty without one) ------
  int64_t remat_recomputed = 0;        // extra node runs
  double remat_extra_seconds = 0;      // estimated by the cost model
  std::vector<std::string> remat_decisions;
};

/// The device profile the options name (--device-profile FILE, else --device).
DeviceProfile compile_device(const CompileOptions& opts);

/// Names of the pipeline's passes, in order.
const std::vector<std::string>& pipeline_pass_names();

/// Runs the whole pipeline on an ONNX file. Throws Error on bad input.
CompileResult compile_model(const std::string& onnx_path, const CompileOptions& opts);

}  // namespace memplan
