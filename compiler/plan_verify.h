// Independent plan verifier. Trusts nothing stored in the plan except the op
// list, the tensor sizes/placements/offsets and the claimed summary:
//  1. recomputes every tensor's lifetime from the op list (aliases extend
//     their root's lifetime; graph inputs live from step 0, outputs to the end);
//  2. checks that every read follows a write (graph inputs and resident
//     tensors are written before step 0) and that no tensor is written twice;
//  3. checks that every arena tensor lies inside the arena at an aligned
//     offset and that no two arena tensors live at the same step overlap
//     (sweep over steps with an ordered set of occupied ranges);
//  4. checks that resident tensors do not overlap one another;
//  5. recomputes the lower bound, resident bytes, peak and per-role totals and
//     compares them with the summary; checks peak <= budget when a budget is set.
#pragma once

#include <string>
#include <vector>

#include "compiler/plan.h"

namespace memplan {

struct PlanVerifyResult {
  std::vector<std::string> errors;  // empty: the plan is valid
  bool ok() const { return errors.empty(); }
};

PlanVerifyResult verify_plan(const Plan& p);

}  // namespace memplan
