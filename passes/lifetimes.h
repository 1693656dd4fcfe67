// Analysis: tensor lifetimes over a schedule (what is live when).
//
// Storage model: parameters, state and constants are resident (live for the
// whole step, outside the arena). Every other tensor whose storage is its own
// (an alias root) lives in the arena from the step that writes it (graph
// inputs: step 0) to the last step that reads it or any view of it (graph
// outputs: the last step). Views (is_view_op) share their root's storage.
//
// Each op's workspace (node_workspace_bytes) is an arena buffer live at its
// step only. The lower bound LB is the largest total size of arena tensors and
// workspaces live at one step, with sizes rounded up to the alignment: no
// offset assignment for this schedule can use less.
#pragma once

#include <cstdint>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

/// Parameters, state, constants and optimizer state are resident; everything
/// else (inputs, activations, gradients) lives in the arena.
bool is_resident(Role r);
int64_t align_up(int64_t x, int64_t alignment);

struct Lifetimes {
  std::vector<TensorId> root;   // alias root of each tensor
  std::vector<char> in_arena;   // per tensor: a root that the arena must hold
  std::vector<int32_t> start;   // per arena root: first live step
  std::vector<int32_t> end;     // per arena root: last live step (inclusive)
  std::vector<int64_t> workspace;  // per step: the op's scratch bytes (aligned), live at that step only
  int64_t lower_bound = 0;      // max over steps of live aligned bytes (tensors + workspace)
  int32_t peak_step = 0;        // a step where the lower bound is reached
};

/// Throws InternalError if `schedule` is not a topological order of all nodes.
Lifetimes compute_lifetimes(const Graph& g, const std::vector<NodeId>& schedule,
                            int64_t alignment);

}  // namespace memplan
