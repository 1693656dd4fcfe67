// Compile-time evaluation of nodes whose inputs are constants (constant
// folding). Used by the shape-inference pass once dims are bound.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "compiler/ir.h"
#include "compiler/op_registry.h"

namespace memplan {

/// True for ops that fold from input shapes alone (Shape, Size): they need no
/// input data.
bool folds_from_shapes(std::string_view op);

/// Evaluates n at compile time. Precondition: every present input is a
/// constant tensor with data, except for folds_from_shapes ops, whose input
/// needs only a known shape. `out` are the output types from infer_node.
/// Returns, per output slot, the raw little-endian bytes in that output's
/// dtype (empty vector for an omitted output), or nullopt when memplan has no
/// compile-time evaluator for the op (the node then stays in the graph).
/// Throws Error naming the node on invalid values (e.g. out-of-range index).
std::optional<std::vector<std::vector<uint8_t>>> const_eval(const Graph& g, const Node& n,
                                                           const std::vector<TensorType>& out);

}  // namespace memplan
