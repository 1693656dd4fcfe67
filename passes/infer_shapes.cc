#include "passes/infer_shapes.h"

#include <algorithm>

#include "compiler/const_eval.h"
#include "compiler/op_registry.h"

namespace memplan {

namespace {

bool is_const_with_data(const Tensor& t) { return t.role == Role::constant && t.data != nullptr; }

/// True if every present input of n is available at compile time.
bool inputs_foldable(const Graph& g, const Node& n) {
  bool shapes_only = folds_from_shapes(n.op);
  for (TensorId in : n.inputs) {
    if (!in.valid()) continue;
    const Tensor& t = g.tensor(in);
    if (shapes_only ? !t.shape_known : !is_const_with_data(t)) return false;
  }
  return true;
}

bool fits_fold_cap(const std::vector<TensorType>& types, int64_t cap) {
  return std::all_of(types.begin(), types.end(),
                     [&](const TensorType& t) { return byte_size(t.dtype, t.shape) <= cap; });
}

}  // namespace

InferShapesStats infer_shapes(Graph& g, const InferShapesOptions& opts) {
  for (TensorId in : g.inputs) {
    const Tensor& t = g.tensor(in);
    if (!t.shape_known || t.has_symbolic_dims())
      throw Error("graph input '" + t.name + "' has no static shape; bind its dims first");
  }
  InferShapesStats stats;
  std::vector<NodeId> dead;
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    if (!find_op(n.op))
      throw Error("unsupported op '" + n.op + "' in node '" + n.name + "' (opset " +
                  std::to_string(g.opset) + "); memplan cannot plan this model until it is supported");
    std::vector<TensorType> types = infer_node(g, n);
    if (types.size() != n.outputs.size())
      throw InternalError(node_desc(n) + ": inference returned " + std::to_string(types.size()) +
                          " types for " + std::to_string(n.outputs.size()) + " outputs");
    std::optional<std::vector<std::vector<uint8_t>>> folded;
    if (opts.fold_constants && inputs_foldable(g, n) && fits_fold_cap(types, opts.max_fold_bytes))
      folded = const_eval(g, n, types);
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (!n.outputs[i].valid()) continue;
      Tensor& t = g.tensor(n.outputs[i]);
      t.dtype = types[i].dtype;
      t.shape = types[i].shape;
      t.sym.clear();
      t.shape_known = true;
      try {
        (void)t.bytes();  // a shape whose byte count overflows is an error here
      } catch (const Error& e) {
        throw Error(node_desc(n) + ": output '" + t.name + "': " + e.what() +
                    "; the bound dims are too large");
      }
      if (folded) {
        if (static_cast<int64_t>((*folded)[i].size()) != t.bytes())
          throw InternalError(node_desc(n) + ": folded output " + std::to_string(i) + " has " +
                              std::to_string((*folded)[i].size()) + " bytes, expected " +
                              std::to_string(t.bytes()));
        t.role = Role::constant;
        t.producer = NodeId();
        t.data = std::make_shared<const std::vector<uint8_t>>(std::move((*folded)[i]));
      }
    }
    if (folded) dead.push_back(id);
  }
  stats.nodes_folded = static_cast<int64_t>(dead.size());
  g.remove_nodes_and_compact(dead);
  g.sort_topologically();
  stats.nodes_remaining = static_cast<int64_t>(g.num_nodes());
  verify(g, {.require_shapes = true});
  return stats;
}

}  // namespace memplan
