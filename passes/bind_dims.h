// bind_dims: give every graph input a static shape from command-line flags.
//
// The importer leaves symbolic dims on graph inputs (Tensor::sym[i] = name,
// shape[i] = -1) and may leave an input with no declared shape at all
// (shape_known = false). This pass:
//  1. applies each --input-shape: checks the input exists, the rank matches
//     and static dims agree; a symbolic dim it covers binds that dim name
//     for every input that uses it;
//  2. merges the --dim bindings (a name must occur in the model; a value
//     conflicting with one implied by --input-shape is an error);
//  3. substitutes the bound values into every graph input and clears sym;
//  4. fails, naming the input and dim, if anything is still unbound.
//
// Precondition: graph imported (inputs have role input). Postcondition: every
// graph input has shape_known, no symbolic dims, and positive bound values.
// Only graph inputs are touched; run shape inference afterwards.
// Errors are memplan::Error naming the flag / input / dim and the fix.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "compiler/ir.h"

namespace memplan {

struct BindOptions {
  std::map<std::string, int64_t> dims = {};        // --dim NAME=VALUE
  std::map<std::string, Shape> input_shapes = {};  // --input-shape INPUT=AxBxC
};

void bind_dims(Graph& g, const BindOptions& opts);

/// Parses "batch=32". Throws Error on anything else (missing '=', empty name
/// or value, non-numeric, non-positive or overflowing values).
std::pair<std::string, int64_t> parse_dim_flag(const std::string& s);
/// Parses "x=32x3x224x224" (dims separated by 'x', each positive). The name is
/// everything before the last '='.
std::pair<std::string, Shape> parse_input_shape_flag(const std::string& s);

}  // namespace memplan
