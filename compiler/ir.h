// memplan graph IR: tensors and nodes addressed by dense typed ids.
//
// A Graph owns a vector of Tensors and a vector of Nodes. Analyses index them
// by TensorId / NodeId (dense, 0..n-1); names are kept only for the importer,
// the printer and error messages.
//
// Contract:
//  - every tensor has at most one producer node; graph inputs, parameters,
//    state and constants have none;
//  - a node input may be an invalid TensorId, meaning "optional input omitted";
//  - after shape inference every tensor has a known static shape
//    (`shape_known`), checked by verify(Graph, {.require_shapes = true}).
//  - view ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity) produce a tensor
//    whose storage is its input's; `alias_root()` follows such chains.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace memplan {

/// A problem the user can cause (bad file, bad flag, unsupported op). The CLI
/// prints the message and exits 1. Internal invariants use assert / InternalError.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// A bug in memplan. The CLI exits 2.
struct InternalError : std::logic_error {
  using std::logic_error::logic_error;
};

// ---------------------------------------------------------------- dtypes

enum class DType : uint8_t { f32, f16, bf16, f64, i64, i32, i8, u8, boolean };

size_t dtype_size(DType d);
std::string_view dtype_name(DType d);  // "f32", ..., "bool"
std::optional<DType> parse_dtype(std::string_view s);
bool is_float(DType d);
bool is_integer(DType d);  // i64, i32, i8, u8 (not bool)

// ---------------------------------------------------------------- roles

/// input: fed each step. parameter: trainable weights. state: resident,
/// updated by the step but not trained (BatchNorm running statistics, step
/// counters). constant: initializers and folded values. activation: produced
/// by a forward node. gradient: produced by the backward pass.
/// optimizer_state: resident optimizer buffers (momentum, Adam moments).
enum class Role : uint8_t {
  input,
  parameter,
  state,
  constant,
  activation,
  gradient,
  optimizer_state
};

/// "input", "parameter", "state", "constant", "activation", "gradient", "optimizer_state"
std::string_view role_name(Role r);
std::optional<Role> parse_role(std::string_view s);

// ---------------------------------------------------------------- ids

template <class Tag>
struct Id {
  static constexpr uint32_t kInvalid = UINT32_MAX;
  uint32_t v = kInvalid;
  constexpr Id() = default;
  constexpr explicit Id(uint32_t x) : v(x) {}
  constexpr bool valid() const { return v != kInvalid; }
  constexpr auto operator<=>(const Id&) const = default;
};
using TensorId = Id<struct TensorTag>;
using NodeId = Id<struct NodeTag>;

// ---------------------------------------------------------------- attributes

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>,
                               std::vector<double>, std::vector<std::string>>;
using Attrs = std::map<std::string, AttrValue>;  // ordered: stable printing

// ---------------------------------------------------------------- tensors

using Shape = std::vector<int64_t>;

/// Element count of a static shape; throws Error on overflow or negative dims.
int64_t num_elements(const Shape& s);
/// Byte size of a static shape of dtype d; throws Error if it overflows 64 bits.
int64_t byte_size(DType d, const Shape& s);
std::string shape_str(const Shape& s);  // "[2,3]"

struct Tensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;                    // valid when shape_known
  std::vector<std::string> sym;   // symbolic dim names (graph inputs before binding); "" = static
  bool shape_known = false;
  Role role = Role::activation;
  NodeId producer;                // invalid for inputs / parameters / state / constants
  /// Raw little-endian element bytes for constants (and for initializers
  /// whose data was inline). Null when the data lives outside (external data)
  /// or was elided; planning never needs weight bytes.
  std::shared_ptr<const std::vector<uint8_t>> data;
  /// True when inline data existed but was dropped to keep a dump small (the
  /// text form's `= elided`). Meaningful only while `data` is null.
  bool data_elided = false;
  std::string external;           // ONNX external-data location, "" if none

  int64_t bytes() const { return byte_size(dtype, shape); }
  int64_t numel() const { return num_elements(shape); }
  bool has_symbolic_dims() const;
};

// ---------------------------------------------------------------- nodes

struct Node {
  std::string op;    // ONNX op type, e.g. "Conv"
  std::string name;  // unique within the graph
  std::vector<TensorId> inputs;   // invalid id = omitted optional input
  std::vector<TensorId> outputs;  // invalid id = omitted optional output
  Attrs attrs;

  bool has_attr(const std::string& k) const { return attrs.count(k) != 0; }
};

// Typed attribute access. A present attribute of the wrong kind throws Error
// naming the node, op and attribute. (An int attribute is accepted where a
// float is asked for.)
int64_t attr_int(const Node& n, const std::string& k, int64_t dflt);
double attr_float(const Node& n, const std::string& k, double dflt);
std::string attr_str(const Node& n, const std::string& k, const std::string& dflt);
std::vector<int64_t> attr_ints(const Node& n, const std::string& k,
                               const std::vector<int64_t>& dflt = {});
std::vector<double> attr_floats(const Node& n, const std::string& k,
                                const std::vector<double>& dflt = {});
/// "node 'n' (Op)": the prefix every node-level message starts with.
std::string node_desc(const Node& n);

// ---------------------------------------------------------------- graph

class Graph {
 public:
  std::string name;
  int64_t opset = 0;  // default-domain opset the model was exported with
  std::vector<TensorId> inputs;   // graph inputs (role input), in order
  std::vector<TensorId> outputs;  // graph outputs, in order

  TensorId add_tensor(Tensor t);  // throws Error on duplicate name
  NodeId add_node(Node n);        // sets producer of its outputs; throws on 2nd producer

  size_t num_tensors() const { return tensors_.size(); }
  size_t num_nodes() const { return nodes_.size(); }
  Tensor& tensor(TensorId id) { return tensors_.at(id.v); }
  const Tensor& tensor(TensorId id) const { return tensors_.at(id.v); }
  Node& node(NodeId id) { return nodes_.at(id.v); }
  const Node& node(NodeId id) const { return nodes_.at(id.v); }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const std::vector<Node>& nodes() const { return nodes_; }

  std::optional<TensorId> find_tensor(std::string_view name) const;
  /// Renames a tensor, keeping the name index current; throws Error on clash.
  void rename_tensor(TensorId id, std::string new_name);

  /// Nodes that read each tensor (a node appears once per input slot).
  std::vector<std::vector<NodeId>> consumers() const;
  /// A topological order of nodes (stable: keeps stored order where allowed).
  /// Throws Error naming a node on a cycle.
  std::vector<NodeId> topo_order() const;

  /// Removes the given nodes, then every tensor no node reads or writes that
  /// is not a graph input or output, and renumbers ids densely (stable order).
  void remove_nodes_and_compact(const std::vector<NodeId>& dead);

  /// Makes node order topological (renumbers NodeIds).
  void sort_topologically();

 private:
  std::vector<Tensor> tensors_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, uint32_t> by_name_;
};

/// Storage sharing between a node's output and one of its inputs.
///  - view: the output reads the input's storage (Reshape, Flatten, Squeeze,
///    Unsqueeze, Identity: output 0 views input 0);
///  - inplace: the op overwrites the input's storage with the output's value
///    (optimizer updates, BatchNormTraining's running statistics,
///    GradAccumulate, StepIncrement). Every other reader of the old value must
///    run before the in-place op (see node_predecessors).
enum class AliasKind : uint8_t { none, view, inplace };
struct OutputAlias {
  AliasKind kind = AliasKind::none;
  int input = -1;  // input slot whose storage the output uses
};
OutputAlias output_alias(std::string_view op, size_t output_slot);
/// True for ops whose output 0 views input 0.
bool is_view_op(std::string_view op);
/// Follows view and in-place producers back to the tensor that owns the storage.
TensorId alias_root(const Graph& g, TensorId t);
/// For each node, the nodes that must run before it: producers of its inputs
/// and, for in-place ops, every other reader of the storage version they
/// overwrite. Each list is sorted and free of duplicates.
std::vector<std::vector<NodeId>> node_predecessors(const Graph& g);

struct VerifyOptions {
  bool require_shapes = true;  // every tensor must have a known static shape
};
/// Checks structural invariants: ids in range, one producer per tensor,
/// producers consistent, no cycles, node names unique, graph inputs have role
/// input, non-activation tensors have no producer, activations have one,
/// shapes known (optional) and byte sizes representable. Throws Error with a
/// message naming the offending node or tensor.
void verify(const Graph& g, const VerifyOptions& opts = {});

}  // namespace memplan
