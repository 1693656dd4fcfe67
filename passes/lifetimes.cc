#include "passes/lifetimes.h"

#include <algorithm>

#include "compiler/op_registry.h"

namespace memplan {

bool is_resident(Role r) {
  return r == Role::parameter || r == Role::state || r == Role::constant ||
         r == Role::optimizer_state;
}

int64_t align_up(int64_t x, int64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

Lifetimes compute_lifetimes(const Graph& g, const std::vector<NodeId>& schedule,
                            int64_t alignment) {
  const size_t nt = g.num_tensors();
  if (schedule.size() != g.num_nodes())
    throw InternalError("schedule has " + std::to_string(schedule.size()) + " steps for " +
                        std::to_string(g.num_nodes()) + " nodes");
  Lifetimes lt;
  lt.root.resize(nt);
  lt.in_arena.assign(nt, 0);
  lt.start.assign(nt, -1);
  lt.end.assign(nt, -1);
  for (uint32_t i = 0; i < nt; ++i) {
    TensorId r = alias_root(g, TensorId(i));
    lt.root[i] = r;
    const Tensor& t = g.tensor(r);
    if (r.v == i && !is_resident(t.role) && t.bytes() > 0) lt.in_arena[i] = 1;
  }
  const int32_t last = std::max<int32_t>(0, static_cast<int32_t>(schedule.size()) - 1);
  for (TensorId in : g.inputs) lt.start[lt.root[in.v].v] = 0;
  std::vector<int32_t> step_of(g.num_nodes(), -1);
  for (int32_t s = 0; s < static_cast<int32_t>(schedule.size()); ++s) {
    NodeId id = schedule[s];
    if (step_of.at(id.v) != -1) throw InternalError("node scheduled twice: " + g.node(id).name);
    step_of[id.v] = s;
    const Node& n = g.node(id);
    for (TensorId in : n.inputs) {
      if (!in.valid()) continue;
      const Tensor& t = g.tensor(in);
      if (t.producer.valid() && step_of[t.producer.v] == -1)
        throw InternalError("schedule runs " + node_desc(n) + " before the producer of '" +
                            t.name + "'");
      uint32_t r = lt.root[in.v].v;
      lt.end[r] = std::max(lt.end[r], s);
    }
    for (TensorId out : n.outputs) {
      if (!out.valid()) continue;
      uint32_t r = lt.root[out.v].v;
      if (r == out.v) lt.start[r] = s;
      lt.end[r] = std::max(lt.end[r], s);
    }
  }
  for (TensorId out : g.outputs) lt.end[lt.root[out.v].v] = last;
  lt.workspace.assign(schedule.size(), 0);
  for (size_t s = 0; s < schedule.size(); ++s)
    lt.workspace[s] = align_up(node_workspace_bytes(g, g.node(schedule[s])), alignment);
  // Sweep: +size at start, -size after end.
  std::vector<int64_t> delta(schedule.size() + 2, 0);
  for (uint32_t i = 0; i < nt; ++i) {
    if (!lt.in_arena[i]) continue;
    if (lt.start[i] < 0) lt.start[i] = 0;
    if (lt.end[i] < lt.start[i]) lt.end[i] = lt.start[i];
    int64_t sz = align_up(g.tensor(TensorId(i)).bytes(), alignment);
    delta[lt.start[i]] += sz;
    delta[lt.end[i] + 1] -= sz;
  }
  int64_t live = 0;
  for (int32_t s = 0; s <= last; ++s) {
    live += delta[s];
    int64_t here = live + (s < static_cast<int32_t>(lt.workspace.size()) ? lt.workspace[s] : 0);
    if (here > lt.lower_bound) {
      lt.lower_bound = here;
      lt.peak_step = s;
    }
  }
  return lt;
}

}  // namespace memplan
