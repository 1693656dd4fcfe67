#include "passes/plan_memory.h"

#include "passes/lifetimes.h"
#include "passes/offset_repack.h"
#include "passes/offset_search.h"

#include <cstdint>
#include <string>

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

bool refine_plan_offsets(Plan& p, int64_t search_nodes, int64_t repack_work) {
  if ((search_nodes <= 0 && repack_work <= 0) || p.offset_method == kOffsetsSkipped) return false;
  const int32_t n = static_cast<int32_t>(p.tensors.size());
  const int32_t steps = static_cast<int32_t>(p.ops.size());
  auto root = [&](int32_t t) {
    for (int32_t hops = 0; hops <= n && p.tensors[t].placement == Placement::alias; ++hops)
      t = p.tensors[t].alias_of;
    return t;
  };
  // Lifetimes of storage roots: from the step that writes the root (graph
  // inputs: step 0) to the last step that reads or writes it or a view of it
  // (graph outputs: the last step).
  std::vector<int32_t> start(n, -1), end(n, -1);
  for (int32_t t : p.inputs) start[root(t)] = 0;
  for (int32_t s = 0; s < steps; ++s) {
    for (int32_t t : p.ops[s].inputs)
      if (t >= 0) end[root(t)] = std::max(end[root(t)], s);
    for (int32_t t : p.ops[s].outputs) {
      if (t < 0) continue;
      const int32_t r = root(t);
      if (r == t) start[r] = s;
      end[r] = std::max(end[r], s);
    }
  }
  for (int32_t t : p.outputs) end[root(t)] = std::max(0, steps - 1);
  std::vector<Buffer> bufs;
  std::vector<int32_t> owner;  // tensor index, or -1 - step for a workspace
  OffsetResult cur;
  for (int32_t i = 0; i < n; ++i) {
    const PlanTensor& t = p.tensors[i];
    if (t.placement != Placement::arena || t.bytes <= 0) continue;
    const int32_t s = std::max(start[i], 0);
    bufs.push_back({t.bytes, s, std::max(end[i], s)});
    owner.push_back(i);
    cur.offsets.push_back(t.offset);
  }
  for (int32_t s = 0; s < steps; ++s)
    if (p.ops[s].workspace_bytes > 0) {
      bufs.push_back({p.ops[s].workspace_bytes, s, s});
      owner.push_back(-1 - s);
      cur.offsets.push_back(p.ops[s].workspace_offset);
    }
  cur.arena_bytes = p.summary.arena_bytes;
  const int64_t lb = p.summary.lower_bound_bytes;
  if (cur.arena_bytes * 200 <= lb * 201) return false;
  std::string how;
  // Best-of again with first fit: a different packing, sometimes lower.
  OffsetResult ff = assign_offsets(bufs, {.alignment = p.alignment, .first_fit = true});
  if (ff.offsets.size() == bufs.size() && ff.arena_bytes > 0 && ff.arena_bytes < cur.arena_bytes) {
    cur = std::move(ff);
    how = "+first-fit";
  }
  if (repack_work > 0 &&
      repack_windows(bufs, cur, lb, {.alignment = p.alignment, .max_work = repack_work}))
    how += "+repack";
  if (search_nodes > 0 &&
      lower_arena_by_search(bufs, cur, lb, {.alignment = p.alignment, .max_nodes = search_nodes}))
    how += "+search";
  if (how.empty()) return false;
  for (size_t b = 0; b < bufs.size(); ++b) {
    if (owner[b] >= 0)
      p.tensors[owner[b]].offset = cur.offsets[b];
    else
      p.ops[-1 - owner[b]].workspace_offset = cur.offsets[b];
  }
  p.summary.peak_bytes += cur.arena_bytes - p.summary.arena_bytes;
  p.summary.arena_bytes = cur.arena_bytes;
  p.offset_method += how;
  return true;
}

}  // namespace memplan
