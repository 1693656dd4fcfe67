// The memory plan: what memplan hands to a runtime, and what `verify`,
// `inspect` and `check` read. JSON, versioned; docs/plan-format.md describes
// every key. Tensors and ops are referred to by index into `tensors`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

inline constexpr int kPlanFormatVersion = 1;

enum class Placement : uint8_t { arena, resident, alias };
std::string_view placement_name(Placement p);  // "arena", "resident", "alias"

struct PlanTensor {
  std::string name;
  Role role = Role::activation;
  DType dtype = DType::f32;
  Shape shape;
  int64_t bytes = 0;  // dtype size x elements (unaligned)
  Placement placement = Placement::arena;
  int64_t offset = 0;     // arena or resident offset; unused for aliases
  int32_t alias_of = -1;  // Placement::alias: the tensor whose storage this one uses
  AliasKind alias_kind = AliasKind::none;  // Placement::alias: view or inplace
};

struct PlanOp {
  std::string name;
  std::string op;
  std::vector<int32_t> inputs;   // tensor indices, -1 = omitted
  std::vector<int32_t> outputs;  // tensor indices, -1 = omitted
  int64_t workspace_bytes = 0;   // scratch live during this op only (0: none)
  int64_t workspace_offset = 0;  // its arena offset
  DType dtype = DType::f32;      // the dtype it computes in (cost_model.h node_compute_dtype)
  double est_seconds = 0;        // the cost model's time for one run on the plan's device
};

/// One recomputation the budget planner chose (passes/remat.h).
struct RecomputeDecision {
  std::string node;    // the node run again
  std::string before;  // the node whose stage needs it
  int64_t bytes = 0;   // arena bytes its outputs would otherwise hold
  double seconds = 0;  // estimated time of the extra run
};

/// One combination of levers the budget solver tried (compiler/budget_search.h).
struct CandidateRecord {
  int64_t micro_batches = 1;
  std::string precision = "fp32";
  bool fits = false;
  int64_t peak_bytes = 0;    // the plan's peak (the smallest reached when it does not fit)
  double step_seconds = 0;   // estimated; 0 when it does not fit
  int64_t recomputed = 0;    // extra node runs
  std::string note;          // why it was skipped or did not fit
  bool planned = true;       // false: skipped before planning (see note)
};

/// What the budget planner decided and why (absent in plans from older
/// versions and in inference plans).
struct PlanDecisions {
  std::string device;              // cost-model profile name
  std::string budget_source;       // "--budget" or "device memory"
  int64_t reserve_bytes = 0;       // CUDA context + handles, outside the budget
  std::string precision = "fp32";  // fp32 | bf16 | fp16
  int64_t ops_low_precision = 0;   // ops that compute in bf16/fp16
  int64_t casts = 0;               // Cast nodes the precision pass inserted
  int64_t micro_batches = 1;       // k
  bool loss_scaling = false;       // fp16 dynamic loss scaling in the graph
  bool early_updates = false;      // some update runs before the last backward op
  std::vector<RecomputeDecision> recomputed;
  double step_seconds = 0;               // estimated step time of this plan
  double unconstrained_step_seconds = 0; // fp32, k = 1, no recomputation
  int64_t unconstrained_peak_bytes = 0;  // its peak
  std::vector<CandidateRecord> candidates;
  std::vector<std::string> notes;  // warnings and reasons (e.g. per-micro-batch BatchNorm)
};

struct PlanSummary {
  int64_t arena_bytes = 0;        // size of the one arena allocation
  int64_t lower_bound_bytes = 0;  // max live arena bytes at one step (aligned sizes)
  int64_t resident_bytes = 0;     // parameters, state, constants (aligned, packed)
  int64_t peak_bytes = 0;         // arena + resident: everything memplan allocates
  int32_t peak_step = 0;          // a step where the lower bound is reached
  /// Aligned bytes per role: resident roles in total, arena roles live at
  /// peak_step. They add up to resident_bytes + lower_bound_bytes.
  std::map<std::string, int64_t> bytes_by_role;
};

struct Plan {
  int version = kPlanFormatVersion;
  std::string model;  // source file as given
  std::string mode = "inference";
  std::map<std::string, int64_t> dims;  // bound symbolic dims
  int64_t alignment = 256;
  std::string schedule_method;
  std::string offset_method;
  std::optional<int64_t> budget_bytes;
  std::vector<PlanTensor> tensors;
  std::vector<PlanOp> ops;  // in schedule order
  std::vector<int32_t> inputs;
  std::vector<int32_t> outputs;
  int32_t loss = -1;  // the scalar loss tensor (training plans), -1 if none
  PlanSummary summary;
  std::optional<PlanDecisions> decisions;
  /// The textual IR (docs/ir-text.md) of the planned graph with every
  /// constant's data inline and parameter data elided: what a runtime needs
  /// besides weights. Tensor names match `tensors`. May be empty.
  std::string program;
};

/// Pretty JSON with a stable key order (diffs read well).
std::string plan_to_json(const Plan& p);
/// Parses and type-checks a plan. Throws Error("SOURCE: ...") naming the key
/// that is missing or of the wrong type, or the position of a syntax error.
/// Does not check semantics: that is verify_plan's job.
Plan plan_from_json(std::string_view text, std::string_view source);
/// Reads a plan file; Error on a missing or unreadable file.
Plan read_plan_file(const std::string& path);

/// Writes `contents` to `path` atomically: a temp file in the same directory,
/// fsync, rename. Throws Error naming the path (e.g. missing directory); no
/// partial file is left behind.
void write_file_atomic(const std::string& path, std::string_view contents);
/// Reads a whole file; Error naming the path if missing or unreadable.
std::string read_file(const std::string& path);

}  // namespace memplan
