// Pass: choose the order in which nodes run (the schedule).
//
// Candidates:
//  1. model order: the graph's stored topological order (with early updates,
//     each optimizer update moved to right after the last node it must
//     follow, so its gradient dies as soon as it is complete);
//  2. greedy: list scheduling that, among ready nodes, runs the one whose
//     execution adds the fewest live arena bytes (outputs allocated minus
//     inputs freed), ties broken by model order;
//  3. greedy-lifo: the same score, ties broken by the most recently readied
//     node (finishes a branch before starting the next).
// `best` computes the lower bound LB (see lifetimes.h) of each candidate and
// keeps the smallest, as XLA's scheduler and Inductor keep the best of
// several orders; among equal LBs, the one with the least live area (sum over
// steps of live arena bytes), which frees memory soonest: rematerialization
// keeps this order, and a profile that falls after its peak leaves it less to
// recompute.
//
// Late updates (early_updates = false) move the optimizer updates of each
// candidate to its end, keeping their relative order.
//
// Requires: static shapes (infer_shapes). Ensures: the returned order is a
// topological order of every node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

enum class ScheduleMethod { model_order, greedy, greedy_lifo, best };
std::string_view schedule_method_name(ScheduleMethod m);  // "model", "greedy", "greedy-lifo", "best"
std::optional<ScheduleMethod> parse_schedule_method(std::string_view s);

struct ScheduleOptions {
  ScheduleMethod method = ScheduleMethod::best;
  int64_t alignment = 256;  // sizes are rounded up to this when scoring
  /// Early updates: an optimizer update (SGDUpdate, AdamUpdate) may run as
  /// soon as its inputs are ready, so its gradient dies there (the greedy
  /// orders do this). false: every update runs after all other nodes (as
  /// torch's optimizer.step() after backward), which needs every gradient
  /// alive at once. Updates whose outputs another node reads stay in place.
  bool early_updates = true;
};

struct ScheduleResult {
  std::vector<NodeId> order;
  ScheduleMethod chosen = ScheduleMethod::model_order;
  int64_t lower_bound = 0;  // LB of `order`
};

ScheduleResult schedule(const Graph& g, const ScheduleOptions& opts = {});

}  // namespace memplan
