// Pass: build the memory plan of a shape-inferred graph.
//
// Steps (three layers, as in STYLE.md):
//  1. schedule (schedule.h) chooses the node order;
//  2. lifetimes (lifetimes.h) says what is live when, and the lower bound;
//  3. assign_offsets (assign_offsets.h) places arena tensors; resident tensors
//     are packed one after another in a second region;
//  4. the result is written into a Plan (plan.h) with its summary.
// Requires: infer_shapes has run (static shapes). The returned plan passes
// verify_plan (checked by the tests, and by the CLI before writing).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "compiler/ir.h"
#include "compiler/plan.h"
#include "passes/assign_offsets.h"
#include "passes/schedule.h"

namespace memplan {

struct PlanMemoryOptions {
  int64_t alignment = 256;
  ScheduleMethod schedule = ScheduleMethod::best;
  OffsetMethod offsets = OffsetMethod::best_of;
  std::optional<int64_t> budget_bytes;
  bool early_updates = true;  // ScheduleOptions::early_updates
  /// With budget_bytes, for feasibility probes: offset improvement stops as
  /// soon as the peak fits the budget (OffsetOptions::fit_bytes). The plan
  /// fits exactly when it would without this, and a plan that does not fit
  /// is the same; one that fits may be less tight.
  bool offsets_until_fit = false;
  /// For comparisons only (the budget search's pass over candidates that
  /// cannot fit): when resident storage plus the schedule's lower bound is
  /// above this, no plan can come out at or below it, so offsets are not
  /// assigned. The plan then has offset_method kOffsetsSkipped, arena_bytes = the
  /// lower bound and peak_bytes = resident + lower bound (a lower bound on
  /// the real peak), no ops and no arena offsets: it does not verify.
  std::optional<int64_t> skip_offsets_above;
  /// A given run order (e.g. rematerialize's): used instead of scheduling;
  /// must be a topological order of every node. Recorded as schedule "given".
  std::optional<std::vector<NodeId>> order;
};

/// Plan::offset_method of a plan made without offsets (skip_offsets_above).
inline constexpr std::string_view kOffsetsSkipped = "skipped";

Plan plan_memory(const Graph& g, const PlanMemoryOptions& opts = {});

/// Refines a finished plan's arena offsets when its arena is more than 0.5%
/// above the lower bound: best-of again with first fit
/// (OffsetOptions::first_fit), kept if lower; then window repacking
/// (offset_repack.h, at most `repack_work` placements; 0: skipped); then
/// the offset search (offset_search.h: lower_arena_by_search, at most
/// `search_nodes` placements; 0: skipped). Nothing runs when both are 0.
/// The buffers are the plan's arena tensors and op workspaces with the
/// lifetimes its op list gives them (as the verifier computes them). When
/// the arena shrinks, rewrites the offsets, the summary's arena and peak,
/// and appends "+first-fit", "+repack" and/or "+search" to offset_method.
/// Schedule, sizes and everything else stay. Returns whether it changed.
/// Requires: a plan with offsets (not kOffsetsSkipped) that verifies.
bool refine_plan_offsets(Plan& p, int64_t search_nodes, int64_t repack_work = 4'000'000);

}  // namespace memplan
