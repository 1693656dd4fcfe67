#include "passes/plan_memory.h"

#include "passes/lifetimes.h"

#include <cstdint>

namespace memplan {

Plan plan_memory(const Graph& g, const PlanMemoryOptions& opts) {
  ScheduleResult sched;
  if (opts.order)
    sched.order = *opts.order;
  else
    sched = schedule(g, {.method = opts.schedule, .alignment = opts.alignment,
                          .early_updates = opts.early_updates});
  Lifetimes lt = compute_lifetimes(g, sched.order, opts.alignment);

  std::vector<Buffer> bufs;
  std::vector<uint32_t> buf_tensor;
  for (uint32_t i = 0; i < g.num_tensors(); ++i) {
    if (!lt.in_arena[i]) continue;
    bufs.push_back({g.tensor(TensorId(i)).bytes(), lt.start[i], lt.end[i]});
    buf_tensor.push_back(i);
  }
  const size_t num_tensor_bufs = bufs.size();
  std::vector<size_t> ws_buf(sched.order.size(), SIZE_MAX);
  for (size_t s = 0; s < sched.order.size(); ++s) {
    if (lt.workspace[s] == 0) continue;
    ws_buf[s] = bufs.size();
    bufs.push_back({lt.workspace[s], static_cast<int32_t>(s), static_cast<int32_t>(s)});
  }
  Plan p;
  p.alignment = opts.alignment;
  p.schedule_method = opts.order ? "given" : std::string(schedule_method_name(sched.chosen));
  p.budget_bytes = opts.budget_bytes;
  p.tensors.resize(g.num_tensors());
  for (uint32_t i = 0; i < g.num_tensors(); ++i) {
    const Tensor& t = g.tensor(TensorId(i));
    PlanTensor& pt = p.tensors[i];
    pt.name = t.name;
    pt.role = t.role;
    pt.dtype = t.dtype;
    pt.shape = t.shape;
    pt.bytes = t.bytes();
    if (lt.root[i].v != i) {
      // Record the immediate storage link (view or in-place), not the root:
      // the verifier follows chains itself.
      const Node& prod = g.node(t.producer);
      for (size_t k = 0; k < prod.outputs.size(); ++k)
        if (prod.outputs[k] == TensorId(i)) {
          OutputAlias a = output_alias(prod.op, k);
          pt.placement = Placement::alias;
          pt.alias_kind = a.kind;
          pt.alias_of = static_cast<int32_t>(prod.inputs[a.input].v);
        }
    } else if (is_resident(t.role)) {
      pt.placement = Placement::resident;
      pt.offset = p.summary.resident_bytes;
      p.summary.resident_bytes += align_up(pt.bytes, opts.alignment);
      p.summary.bytes_by_role[std::string(role_name(t.role))] += align_up(pt.bytes, opts.alignment);
    } else {
      pt.placement = Placement::arena;  // offset filled below; zero-size tensors stay at 0
    }
  }
  if (opts.skip_offsets_above && p.summary.resident_bytes + lt.lower_bound > *opts.skip_offsets_above) {
    p.offset_method = kOffsetsSkipped;
    p.summary.arena_bytes = lt.lower_bound;
    p.summary.lower_bound_bytes = lt.lower_bound;
    p.summary.peak_step = lt.peak_step;
    p.summary.peak_bytes = lt.lower_bound + p.summary.resident_bytes;
    return p;
  }
  OffsetOptions oo{.method = opts.offsets, .alignment = opts.alignment};
  if (opts.offsets_until_fit && opts.budget_bytes)
    oo.fit_bytes = *opts.budget_bytes - p.summary.resident_bytes;
  OffsetResult off = assign_offsets(bufs, oo);
  p.offset_method = std::string(offset_method_name(opts.offsets)) + ":" + off.order;

  for (size_t b = 0; b < num_tensor_bufs; ++b) {
    uint32_t i = buf_tensor[b];
    p.tensors[i].offset = off.offsets[b];
    if (lt.start[i] <= lt.peak_step && lt.peak_step <= lt.end[i])
      p.summary.bytes_by_role[std::string(role_name(p.tensors[i].role))] +=
          align_up(p.tensors[i].bytes, opts.alignment);
  }
  auto idx = [](TensorId t) { return t.valid() ? static_cast<int32_t>(t.v) : -1; };
  for (size_t s = 0; s < sched.order.size(); ++s) {
    const Node& n = g.node(sched.order[s]);
    PlanOp op{n.name, n.op, {}, {}};
    for (TensorId t : n.inputs) op.inputs.push_back(idx(t));
    for (TensorId t : n.outputs) op.outputs.push_back(idx(t));
    if (ws_buf[s] != SIZE_MAX) {
      op.workspace_bytes = bufs[ws_buf[s]].size;
      op.workspace_offset = off.offsets[ws_buf[s]];
      if (s == static_cast<size_t>(lt.peak_step)) p.summary.bytes_by_role["workspace"] += op.workspace_bytes;
    }
    p.ops.push_back(std::move(op));
  }
  for (TensorId t : g.inputs) p.inputs.push_back(idx(t));
  for (TensorId t : g.outputs) p.outputs.push_back(idx(t));
  p.summary.arena_bytes = off.arena_bytes;
  p.summary.lower_bound_bytes = lt.lower_bound;
  p.summary.peak_step = lt.peak_step;
  p.summary.peak_bytes = p.summary.arena_bytes + p.summary.resident_bytes;
  return p;
}

}  // namespace memplan
