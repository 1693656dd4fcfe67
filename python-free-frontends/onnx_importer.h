// ONNX model -> memplan Graph.
//
// Parses the ModelProto itself (no ONNX checker, no ONNX shape inference, so
// models newer than the system libonnx import too) and builds a Graph:
//  1. checks the file is a model: ir_version, a graph, a default-domain
//     opset_import in [kMinOpset, kMaxOpset];
//  2. inlines model-local functions (ModelProto.functions) at every call
//     site, recursively: internal names get a unique "<call node>/" prefix,
//     formal inputs/outputs map to the caller's, `ref_attr_name` attributes
//     take the caller's value or the function's default;
//  3. initializers -> parameter (floating point; BatchNormalization running
//     mean/var -> state) or constant (integer, bool) tensors with their bytes;
//     external data is recorded (Tensor::external), never read;
//  4. Constant nodes -> constant tensors (no node);
//  5. graph inputs that are not initializers -> role input with the declared
//     shape; dim_param -> symbolic dim (Tensor::sym), unnamed unknown dims get
//     "<input>_dim<i>"; an input with no shape at all has shape_known=false
//     (bind_dims needs an --input-shape for it);
//  6. every other node -> a Node; its outputs are activations with
//     shape_known=false (a later pass infers shapes) and the dtype declared in
//     value_info / graph outputs (f32 placeholder otherwise);
//  7. verify(graph, {.require_shapes = false}).
//
// The importer does not check op support; a later pass does.
//
// Errors: every problem in the file throws memplan::Error whose message names
// the file, what is wrong and how to fix it. Malformed input never crashes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

inline constexpr int64_t kMinOpset = 13;
inline constexpr int64_t kMaxOpset = 21;

struct ImportOptions {};  // room for later

struct ImportResult {
  Graph graph;
  std::vector<std::string> notes;  // things to tell the user (not errors)
};

/// Reads and imports an .onnx file. External-data files are looked up (not
/// read) relative to the model's directory.
ImportResult import_onnx_file(const std::string& path, const ImportOptions& = {});

/// Imports a serialized ModelProto. `display_name` names the model in
/// messages; its directory part (if any) is where external-data files are
/// looked up.
ImportResult import_onnx_bytes(const std::string& bytes, const std::string& display_name,
                               const ImportOptions& = {});

}  // namespace memplan
