#include "runtime/plan_binding.h"

#include <unordered_map>

#include "compiler/ir_text.h"

namespace memplan {

int32_t PlanBinding::index(std::string_view name) const {
  auto it = by_name.find(name);
  if (it == by_name.end()) throw Error("the plan has no tensor '" + std::string(name) + "'");
  return it->second;
}

void check_write(const PlanTensor& t, size_t bytes) {
  if (t.placement != Placement::resident)
    throw Error("cannot write tensor '" + t.name + "' (role " + std::string(role_name(t.role)) +
                "): only resident tensors (parameters, state, optimizer state) can be written");
  if (static_cast<int64_t>(bytes) != t.bytes)
    throw Error("writing tensor '" + t.name + "': " + std::to_string(bytes) + " bytes given, " +
                std::string(dtype_name(t.dtype)) + shape_str(t.shape) + " needs " +
                std::to_string(t.bytes));
}

std::string plan_op_desc(size_t s, const PlanOp& op) {
  return "op " + std::to_string(s) + " '" + op.name + "' (" + op.op + ")";
}

namespace {

void bind_tensors_and_ops(const Plan& plan, PlanBinding& b) {
  const int32_t n = static_cast<int32_t>(plan.tensors.size());
  if (b.g.num_tensors() != plan.tensors.size())
    throw Error("the plan's program has " + std::to_string(b.g.num_tensors()) +
                " tensors but the plan lists " + std::to_string(n) + "; recompile the plan");
  b.gid.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    const PlanTensor& pt = plan.tensors[i];
    auto id = b.g.find_tensor(pt.name);
    if (!id) throw Error("plan tensor '" + pt.name + "' is missing from the plan's program");
    const Tensor& t = b.g.tensor(*id);
    if (t.dtype != pt.dtype || t.shape != pt.shape)
      throw Error("plan tensor '" + pt.name + "' is " + std::string(dtype_name(pt.dtype)) +
                  shape_str(pt.shape) + " but the program says " +
                  std::string(dtype_name(t.dtype)) + shape_str(t.shape));
    if (t.bytes() != pt.bytes)
      throw Error("plan tensor '" + pt.name + "' claims " + std::to_string(pt.bytes) +
                  " bytes but needs " + std::to_string(t.bytes()));
    b.gid[i] = *id;
    b.by_name.emplace(pt.name, i);
  }
  std::unordered_map<std::string, NodeId> nodes;
  for (uint32_t k = 0; k < b.g.num_nodes(); ++k)
    nodes.emplace(b.g.node(NodeId(k)).name, NodeId(k));
  if (nodes.size() != plan.ops.size())
    throw Error("the plan has " + std::to_string(plan.ops.size()) + " ops but its program has " +
                std::to_string(nodes.size()) + " nodes; recompile the plan");
  for (size_t s = 0; s < plan.ops.size(); ++s) {
    const PlanOp& op = plan.ops[s];
    auto it = nodes.find(op.name);
    if (it == nodes.end()) throw Error(plan_op_desc(s, op) + " is missing from the plan's program");
    const Node& nd = b.g.node(it->second);
    auto same = [&](const std::vector<int32_t>& pl, const std::vector<TensorId>& gr) {
      if (pl.size() != gr.size()) return false;
      for (size_t k = 0; k < pl.size(); ++k) {
        if ((pl[k] < 0) != !gr[k].valid()) return false;
        if (pl[k] >= 0 && (pl[k] >= n || b.gid[pl[k]] != gr[k])) return false;
      }
      return true;
    };
    if (nd.op != op.op || !same(op.inputs, nd.inputs) || !same(op.outputs, nd.outputs))
      throw Error(plan_op_desc(s, op) + " does not match node '" + nd.name +
                  "' of the plan's program");
    b.node.push_back(&nd);
  }
  for (int32_t t : plan.inputs)
    if (t < 0 || t >= n) throw Error("plan input id " + std::to_string(t) + " is out of range");
  for (int32_t t : plan.outputs)
    if (t < 0 || t >= n) throw Error("plan output id " + std::to_string(t) + " is out of range");
  if (plan.loss >= n) throw Error("plan loss id " + std::to_string(plan.loss) + " is out of range");
  if (plan.loss >= 0 && !is_float(plan.tensors[plan.loss].dtype))
    throw Error("the loss '" + plan.tensors[plan.loss].name + "' is not a float tensor");
}

void resolve_roots(const Plan& plan, PlanBinding& b) {
  const int32_t n = static_cast<int32_t>(plan.tensors.size());
  b.root.assign(n, -1);
  for (int32_t i = 0; i < n; ++i) {
    int32_t cur = i;
    for (int32_t hops = 0; plan.tensors[cur].placement == Placement::alias; ++hops) {
      cur = plan.tensors[cur].alias_of;
      if (cur < 0 || cur >= n || hops > n)
        throw Error("tensor '" + plan.tensors[i].name + "' aliases an invalid or cyclic tensor");
    }
    if (plan.tensors[i].bytes > plan.tensors[cur].bytes)
      throw Error("tensor '" + plan.tensors[i].name + "' is larger than its storage '" +
                  plan.tensors[cur].name + "'");
    b.root[i] = cur;
  }
  b.readable.assign(n, 0);
  for (int32_t i = 0; i < n; ++i)
    b.readable[i] = plan.tensors[b.root[i]].placement == Placement::resident;
  for (int32_t t : plan.outputs)
    b.readable[t] = 1;
}

void check_bounds(const Plan& plan) {
  for (const PlanTensor& t : plan.tensors) {
    if (t.placement == Placement::alias || t.bytes == 0) continue;
    int64_t limit =
        t.placement == Placement::arena ? plan.summary.arena_bytes : plan.summary.resident_bytes;
    if (t.offset < 0 || t.offset > limit - t.bytes)
      throw Error("tensor '" + t.name + "' [" + std::to_string(t.offset) + ", +" +
                  std::to_string(t.bytes) + ") lies outside its region of " +
                  std::to_string(limit) + " bytes");
  }
  for (size_t s = 0; s < plan.ops.size(); ++s) {
    const PlanOp& op = plan.ops[s];
    if (op.workspace_bytes < 0 ||
        (op.workspace_bytes > 0 &&
         (op.workspace_offset < 0 ||
          op.workspace_offset > plan.summary.arena_bytes - op.workspace_bytes)))
      throw Error(plan_op_desc(s, op) + ": its workspace lies outside the arena");
  }
}

} // namespace

void bind_plan(const Plan& plan, PlanBinding& b) {
  if (plan.program.empty())
    throw Error("the plan has no program (IR text); recompile it with this version of memplan");
  b.g = parse_graph(plan.program, "plan program");
  bind_tensors_and_ops(plan, b);
  resolve_roots(plan, b);
  check_bounds(plan);
}

} // namespace memplan
