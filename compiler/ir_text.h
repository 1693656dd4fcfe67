// Textual form of the memplan graph IR: a printer and a parser that round-trip.
// Full description with examples: docs/ir-text.md.
//
// Contract:
//  - print_graph(parse_graph(t)) == t for every text t that print_graph produced;
//  - parse_graph(print_graph(g)) reproduces g for every graph that passes
//    verify(g, {.require_shapes = false}): tensor names, dtypes, shapes,
//    symbolic dims, shape_known, roles, data (or its elision), external
//    locations; node ops, names, inputs, outputs and attributes (the exact
//    variant kind and the exact bits of every double); graph inputs, outputs,
//    name and opset. Tensor ids may be renumbered (declarations first, then
//    node outputs in node order); look tensors up by name.
//  - both run in time linear in the size of the graph / text.
//
// Syntax (one item per line; blank lines and `//` comments are ignored):
//
//   graph @resnet18 opset 14 {
//     input %input : f32[batch,3,224,224]
//     parameter %conv1.weight : f32[64,3,7,7] external "resnet18.weights.bin"
//     state %bn1.running_mean : f32[64] = dense<"0000803f...">
//     constant %"onnx::Reshape_12" : i64[2] = dense<"0100000000000000ffffffffffffffff">
//     constant %mask : bool[1024,1024] = elided
//     %"/conv1/Conv_output_0" = Conv "/conv1/Conv" (%input, %conv1.weight) {group = 1, pads = [3,
//     3, 3, 3]} : f32[2,64,112,112] %y, _ = Dropout "d0" (%x, _, %training) {seed = 0} : f32[2,10],
//     _
//     () = Print "p0" (%y)
//     output %y
//   }
//
//  1. Header `graph @NAME opset N {`, closed by a line `}`.
//  2. Declarations `ROLE %name : TYPE [external "loc"] [= dense<"HEX"> | = elided]`
//     where ROLE is input, parameter, state, constant (or activation, only
//     for an activation no node writes; verify() then rejects the graph).
//     The printer writes graph inputs first in graph-input order (each
//     `input` line appends to Graph::inputs; a role-input tensor missing
//     from Graph::inputs follows them and becomes one), then every other
//     tensor that is not a node output, in tensor-id order. HEX is the raw little-endian
//     bytes; its length must equal the byte size of a static shape. Data over
//     PrintOptions::max_inline_bytes prints as `elided`, which parses to null
//     data with Tensor::data_elided set.
//  3. Nodes in stored order: `OUTS = OP "node name" (INS) [{ATTRS}] [: TYPES]`.
//     OUTS and INS are comma-separated `%name` or `_` (omitted optional
//     value); a node without outputs writes `()` for OUTS and has no TYPES.
//     TYPES gives one type per output, `_` for an omitted one. Inputs may
//     name tensors defined later in the text (stored order need not be
//     topological). OP is bare when it matches [A-Za-z_][A-Za-z0-9_.]*,
//     otherwise quoted.
//  4. `output %name` lines, in Graph::outputs order.
//
// Names (`%tensor`, `@graph`) are bare when they match [A-Za-z0-9_.]+ and
// quoted otherwise. Quoted strings escape `\\`, `\"`, and bytes below 0x20
// or equal to 0x7f (`\n`, `\t`, `\r`, else `\xHH`); other bytes are raw.
//
// Types: `DTYPE[DIMS]`, e.g. `f32[2,3]`, `i64[]` (scalar). A dim is an
// integer, or a symbolic name (`batch`, or quoted) whose stored value is -1;
// a symbolic dim with another stored value prints `batch=8`. An unknown shape
// (shape_known false) prints `f32[?]`; if it still stores dims they follow as
// `f32[?][2,batch]`. Tensor::sym is normalised: empty when no dim is symbolic.
//
// Attributes, sorted by key: `key = VALUE`. Integers print as integers;
// floats as the shortest decimal that round-trips, always with a `.` or an
// exponent (`1.0`, `-0.0`, `1e-300`), or `inf`, `-inf`, `nan`, `-nan`, and
// `nan(0x7ff4000000000001)` for other NaN bit patterns. Strings are quoted.
// Lists are `[1, 2]`, `[0.5, 1.0]`, `["a", "b"]`; empty lists are typed:
// `ints[]`, `floats[]`, `strings[]`.
//
// Errors: parse_graph throws Error("SOURCE:LINE:COL: message") for bad
// syntax, unknown dtypes or roles, undefined or twice-defined tensors, bad
// hex or a data length that does not match the shape. Columns count bytes
// from 1. The parsed graph then goes through verify(g, {.require_shapes =
// false}); its failures are reported as "SOURCE: message".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "compiler/ir.h"

namespace memplan {

struct PrintOptions {
  /// Constant data larger than this many bytes prints as `elided`.
  int64_t max_inline_bytes = 4096;
  /// Limit for tensors whose role is not `constant` (parameters, state):
  /// weights come from a weights file at run time, so plans elide them.
  int64_t max_inline_weight_bytes = 4096;
};

/// Prints g in the syntax above. Never throws for a graph that verifies.
std::string print_graph(const Graph& g, const PrintOptions& opts = {});

/// Parses the syntax above; throws Error "source:line:col: message".
Graph parse_graph(std::string_view text, std::string_view source_name = "<input>");

}  // namespace memplan
