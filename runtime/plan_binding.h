// What every planned executor (CPU, CUDA) checks and derives from a plan
// before it allocates anything:
//  1. parse plan.program and check that it describes the plan's tensors
//     (names, dtypes, shapes, byte sizes) and ops (names, types, operands);
//  2. resolve every alias to the tensor that owns its storage (its root);
//  3. check that every tensor and op workspace lies inside its region.
// Executors then bind root offsets to their own base addresses.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"
#include "compiler/plan.h"

namespace memplan {

struct PlanBinding {
  Graph g;                   // the parsed plan.program
  std::vector<TensorId> gid; // plan tensor index -> program tensor
  std::map<std::string, int32_t, std::less<>> by_name;
  std::vector<const Node*> node; // plan op index -> program node (points into g)
  std::vector<int32_t> root;     // plan tensor index -> tensor owning its storage
  std::vector<char> readable;    // resident-rooted tensors and graph outputs

  PlanBinding() = default;
  PlanBinding(const PlanBinding&) = delete; // `node` points into `g`
  PlanBinding& operator=(const PlanBinding&) = delete;
  PlanBinding(PlanBinding&&) = default;
  PlanBinding& operator=(PlanBinding&&) = default;

  /// Index of a plan tensor; Error naming it if the plan has none.
  int32_t index(std::string_view name) const;
};

/// Executor::write's checks: only resident tensors can be written, with
/// exactly their byte size. Throws Error naming the tensor otherwise.
void check_write(const PlanTensor& t, size_t bytes);

/// "op 12 'name' (Op)": how executors name an op in errors.
std::string plan_op_desc(size_t s, const PlanOp& op);

/// Steps 1-3 of the banner. Throws Error naming the tensor or op that does
/// not match, and "recompile the plan" where that is the fix.
void bind_plan(const Plan& plan, PlanBinding& b);

} // namespace memplan
