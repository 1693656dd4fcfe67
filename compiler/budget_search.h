// The budget solver: chooses micro-batch count k, precision and
// rematerialization jointly, minimizing the estimated step time of a plan
// whose peak fits the budget (issue "fit the budget").
//
// Search: every candidate (precision p, micro-batch count k) is lowered by the
// caller (compiler/pipeline.cc: bind dims at batch/k, infer shapes, lower
// precision, build the k-replica training graph) and then fitted with
// try_fit_budget (passes/remat.h): planned as is, rematerialized when it does
// not fit. Its time is estimate_step_seconds() of the fitted plan: the cost
// model's time of every op the plan runs, recomputations included, so k
// micro-batches pay k times the launch costs and their smaller, less
// efficient kernels (node_time is a roofline: a 1/k-sized matmul still reads
// its whole weight, so its arithmetic intensity drops and it turns
// memory-bound; the efficiency factors themselves do not depend on size),
// and low precision pays for its casts.
//  - precisions: fp32 | bf16 | fp16 force one; auto tries fp32 and, when
//    `auto_low` (the user gave --budget), the device's fastest low-precision
//    type (bf16, or fp16 on devices without bf16), both with every eligible
//    op low and as a "mixed" candidate (LeverChoice::mixed: only the ops the
//    cost model says are faster low, casts included); a mixed candidate
//    whose selection keeps no op f32 is the all-low one and is not planned
//    again. A dtype the device lacks is never tried.
//  - k: the divisors of the batch in ascending order, or the one forced. For a
//    precision, once some k fits without recomputation, larger k are not
//    tried: they only add launches (recorded as skipped).
//  - order: low precision first, k ascending; a candidate whose time
//    without recomputation (a lower bound: recomputation only adds ops)
//    exceeds the best fitting plan's by more than 1e-9 relative is lowered
//    but not planned (recorded with planned=false): it could not win. (A
//    skipped candidate does not trigger the larger-k rule above, so the
//    winner is never slower than with every candidate planned.)
//  - the fastest fitting candidate wins; ties go to the smaller peak.
//  - a candidate whose remat floor (remat_peak_floor: no schedule goes below
//    it) is above the budget cannot fit; while other candidates may still
//    fit, it is not rematerialized at all (RematResult::not_solved): its
//    unconstrained plan and floor are what is recorded.
//  - nothing fits: Error naming the smallest budget found that fits and which
//    levers bottomed out. That figure is the lowest sure fit (RematFit) of
//    any candidate: the candidates whose floor is above the budget are
//    planned again, lowest floor first, with their peak lowered as far as the
//    remat solver gets, skipping those whose floor is at or above the lowest
//    sure fit found so far (they cannot go below it), in SearchOptions::threads
//    workers; a plan whose lower bound is above that sure fit gets no
//    offsets (PlanMemoryOptions::skip_offsets_above). A compile at that
//    figure fits: the candidate that reached it has its floor within that
//    budget, so its peak is lowered the same way there.
// The winning plan gets est_seconds per op and its PlanDecisions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "compiler/autodiff.h"
#include "compiler/cost_model.h"
#include "compiler/ir.h"
#include "compiler/plan.h"
#include "passes/plan_memory.h"

namespace memplan {

struct LeverChoice {
  int64_t micro_batches = 1;
  DType precision = DType::f32;  // f32, bf16 or f16
  /// Low precision only on the ops the cost model picks (passes/precision.h,
  /// PrecisionSelect::cost) instead of every eligible op. Only with auto.
  bool mixed = false;
};
std::string precision_label(DType d);  // "fp32", "bf16", "fp16"
/// precision_label, plus " mixed" for a cost-selected mix: "bf16 mixed".
std::string choice_label(const LeverChoice& c);

/// A candidate lowered to the training graph, ready to plan.
struct Lowered {
  Graph graph;
  int64_t ops_low_precision = 0;
  int64_t casts = 0;
  int64_t ops_kept_f32 = 0;  // mixed: eligible ops the cost model kept f32 (0: same as all-low)
  bool loss_scaling = false;
  TrainingStats training;
  std::vector<std::string> notes;  // warnings the user should see for this choice
};
using LowerFn = std::function<Lowered(const LeverChoice&)>;

struct SearchOptions {
  int64_t budget_bytes = 0;
  std::string budget_source = "--budget";  // or "device memory"
  std::string precision = "auto";          // auto | fp32 | bf16 | fp16
  bool auto_low = false;  // auto may choose low precision (the user gave --budget)
  std::vector<int64_t> micro_batches = {1};  // candidate k, ascending
  std::string micro_batch_note;  // why only k = 1 is possible (e.g. a fixed batch), or ""
  DeviceProfile device;
  std::string remat_solver = "fast";
  PlanMemoryOptions plan;
  /// Worker threads for the pass that lowers the peaks of candidates that
  /// cannot fit (only when nothing fits; the fast solver only); 0: one per
  /// hardware thread. The result does not depend on it.
  int threads = 0;
};

struct SearchResult {
  Graph graph;  // the winner's graph (after rematerialization)
  Plan plan;    // with decisions and est_seconds filled
  LeverChoice choice;
  TrainingStats training;
  std::vector<std::string> notes;
};

/// See the banner. Throws Error when no candidate fits, or when --precision
/// asks for a dtype the device lacks.
SearchResult search_budget(const LowerFn& lower, const SearchOptions& o);

/// Sum of node_time over the plan's ops (the plan's graph g), writing each
/// op's est_seconds and dtype into p.
double estimate_step_seconds(const Graph& g, Plan& p, const DeviceProfile& d);

/// True if some optimizer update (SGDUpdate, AdamUpdate) runs before the last
/// op that produces a gradient.
bool plan_has_early_updates(const Plan& p);

}  // namespace memplan
