// Internal helpers shared by the op-family files (ops_*.cc). Not part of the
// public registry API: include only from compiler/ops_*.cc and op_registry.cc.
#pragma once

#include <optional>
#include <vector>

#include "compiler/op_registry.h"

namespace memplan::ops {

using Types = std::vector<TensorType>;

/// Numpy (multidirectional) broadcast of a and b; fails naming both shapes.
Shape broadcast(const InferCtx& c, const Shape& a, const Shape& b);
/// Maps axis from [-rank, rank) to [0, rank); fails naming `what` otherwise.
int64_t norm_axis(const InferCtx& c, int64_t axis, int64_t rank, const char* what = "axis");
/// Normalizes a list of axes, failing on out-of-range or repeated axes.
std::vector<int64_t> norm_axes(const InferCtx& c, std::vector<int64_t> axes, int64_t rank,
                               const char* what = "axes");
/// Integer values of constant input `slot`; fails with
/// "<what> is not a compile-time constant" when it has no data.
std::vector<int64_t> require_const_ints(const InferCtx& c, size_t slot, const char* what);
/// The list from attribute `attr` if present, else from constant input
/// `slot` if present (failing if that is not constant), else nullopt. Covers
/// ONNX ops whose attribute became an input in a later opset.
std::optional<std::vector<int64_t>> ints_attr_or_input(const InferCtx& c, const char* attr,
                                                       size_t slot, const char* what);
/// Fails unless every present input in [first, last] has input first's dtype.
void require_same_dtype(const InferCtx& c, size_t first, size_t last);
/// Maps an ONNX TensorProto.DataType enum value to DType.
std::optional<DType> dtype_from_onnx_enum(int64_t e);
/// A dtype-valued attribute given as a dtype name ("f32") or an ONNX enum.
DType attr_dtype(const InferCtx& c, const char* attr, DType dflt);

/// Element count of a tensor slot (input or output), 0 if absent or unknown.
double elems(const Graph& g, TensorId t);
double out_elems(const Graph& g, const Node& n, size_t slot = 0);
double in_elems(const Graph& g, const Node& n, size_t slot = 0);
/// FlopsFn for pure data movement.
double zero_flops(const Graph& g, const Node& n);
/// FlopsFn: 5 per output element (softmax, normalizations, losses).
double five_per_out(const Graph& g, const Node& n);
/// FlopsFn: one per element of input 0 (reductions).
double one_per_in(const Graph& g, const Node& n);

/// Slice's starts/ends/axes/steps from inputs (opset 10+) or attributes
/// (opset 1-9); axes normalized to [0, rank).
struct SliceParams {
  std::vector<int64_t> starts, ends, axes, steps;
};
SliceParams slice_params(const InferCtx& c);
/// Output extent of slicing a dim of size `dim` with ONNX clamping rules
/// (negative starts/ends count from the end, then clamp; step != 0). Stores
/// the clamped first index in *first when non-null.
int64_t slice_range(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t* first);

/// Reduce* axes after defaulting (all axes, or none for
/// noop_with_empty_axes), normalized and sorted.
std::vector<int64_t> reduce_axes(const InferCtx& c);

/// WorkspaceFn of Conv, ConvTranspose, ConvGradInput, ConvGradWeight: bytes
/// of one im2col column matrix (compiler/ops_grad_nn.cc).
int64_t conv_workspace_bytes(const Graph& g, const Node& n);

void register_elementwise(std::vector<OpDef>& t);
void register_nn(std::vector<OpDef>& t);
void register_pool_conv(std::vector<OpDef>& t);
void register_shape(std::vector<OpDef>& t);
void register_data(std::vector<OpDef>& t);
void register_grad_elementwise(std::vector<OpDef>& t);  // compiler/ops_grad_elementwise.cc
void register_grad_data(std::vector<OpDef>& t);         // compiler/ops_grad_data.cc
void register_grad_nn(std::vector<OpDef>& t);           // compiler/ops_grad_nn.cc
void register_optim(std::vector<OpDef>& t);             // compiler/ops_optim.cc

}  // namespace memplan::ops
