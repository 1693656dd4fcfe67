// Op registry: per ONNX op, arity, allowed attributes, shape and dtype
// inference, and the cost model's FLOPs (bytes moved are derived from tensor
// sizes).
//
// Inference reads only shapes, dtypes, attributes and the data of constant
// inputs (e.g. Reshape's target shape). Both opset forms are handled where
// ONNX moved an attribute into an input: Reduce* axes (opset 18; ReduceSum 13),
// Split sizes (13; num_outputs in 18), Squeeze/Unsqueeze axes (13), Pad, Slice.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

struct TensorType {
  DType dtype = DType::f32;
  Shape shape;
  bool operator==(const TensorType&) const = default;
};

/// What an inference function may read about one node.
class InferCtx {
 public:
  InferCtx(const Graph& g, const Node& n) : g_(g), n_(n) {}
  const Graph& graph() const { return g_; }
  const Node& node() const { return n_; }
  size_t num_inputs() const { return n_.inputs.size(); }
  size_t num_outputs() const { return n_.outputs.size(); }
  /// True if input slot i exists and is not an omitted optional input.
  bool has_input(size_t i) const { return i < n_.inputs.size() && n_.inputs[i].valid(); }
  /// Throws Error (via fail) if the input is missing or its shape is unknown.
  const Tensor& input(size_t i) const;
  DType dtype(size_t i) const { return input(i).dtype; }
  const Shape& shape(size_t i) const { return input(i).shape; }
  int64_t rank(size_t i) const { return static_cast<int64_t>(shape(i).size()); }
  /// Values of input i when it is a constant with data (integer or bool
  /// dtypes, converted to int64); nullopt otherwise.
  std::optional<std::vector<int64_t>> const_ints(size_t i) const;
  /// Values of input i when it is a constant with data (any numeric dtype).
  std::optional<std::vector<double>> const_floats(size_t i) const;
  /// Throws Error("node 'NAME' (Op): " + msg).
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  const Graph& g_;
  const Node& n_;
};

using InferFn = std::vector<TensorType> (*)(const InferCtx&);
using FlopsFn = double (*)(const Graph&, const Node&);
using WorkspaceFn = int64_t (*)(const Graph&, const Node&);

struct OpDef {
  std::string_view name;
  int min_inputs = 1;
  int max_inputs = 1;   // -1: variadic
  int min_outputs = 1;
  int max_outputs = 1;
  std::vector<std::string_view> attrs{};  // every attribute the op accepts
  InferFn infer = nullptr;              // returns one TensorType per node output slot
  FlopsFn flops = nullptr;              // nullptr: one FLOP per output element
  /// Scratch bytes the CPU kernel needs while it runs (e.g. im2col); the
  /// planner gives each op its workspace in the arena. nullptr: none.
  WorkspaceFn workspace = nullptr;
};

/// The definition of `op` (default ONNX domain), or nullptr if unsupported.
const OpDef* find_op(std::string_view op);
/// Names of all registered ops, sorted.
std::vector<std::string_view> registered_ops();

/// Checks arity and attribute names, then infers the types of every output
/// slot of n. Throws Error naming the node on unsupported op, wrong arity,
/// unknown attribute, or inconsistent input shapes.
std::vector<TensorType> infer_node(const Graph& g, const Node& n);

/// Cost model: floating-point operations of one execution of n.
double node_flops(const Graph& g, const Node& n);
/// Scratch bytes the plan reserves for node n while it runs (0 if none or op
/// unknown): its own workspace plus its f32 staging (compiler/low_precision.h)
/// unless the staging lies outside the plan (staged_outside_plan).
int64_t node_workspace_bytes(const Graph& g, const Node& n);
/// What the CPU kernel of n needs through run_kernel: its own workspace plus
/// its staging, wherever the plan puts the staging.
int64_t cpu_workspace_bytes(const Graph& g, const Node& n);
/// Cost model: bytes read plus bytes written by one execution of n.
int64_t node_bytes_moved(const Graph& g, const Node& n);

/// Decodes constant data of tensor t to int64 / double. Throws InternalError
/// if t has no data.
std::vector<int64_t> tensor_ints(const Tensor& t);
std::vector<double> tensor_floats(const Tensor& t);

}  // namespace memplan
