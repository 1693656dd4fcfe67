// Gradient rules: per forward op, how to emit its backward nodes.
//
// A rule reads the forward node and the gradients flowing into its outputs,
// and emits nodes into the graph whose results are the gradients of the
// node's inputs. Backward ops are ordinary registered ops (shape inference in
// the op registry, CPU kernels in runtime/), e.g. ConvGradInput,
// ConvGradWeight, ReluGrad, SoftmaxCrossEntropyLossGrad, or compositions of
// forward ops (Mul, ReduceSum, Transpose, ...).
//
// Beware: emit(), scalar(), ints() and ensure_output() add tensors and nodes,
// which invalidates references obtained from graph(), node() and tensor().
// Copy shapes and ids into locals before emitting.
//
// Contract for a rule:
//  - call set_input_grad(i, g) only for inputs with needs_input_grad(i), with
//    g of exactly input i's shape and dtype (use unbroadcast());
//  - tensors a rule reads from the forward pass (inputs, outputs, saved
//    statistics) are ordinary activations: the planner keeps them alive until
//    their last backward use;
//  - a rule may add an optional output to the forward node (ensure_output)
//    when the backward needs it saved (Dropout mask, LayerNormalization Mean
//    and InvStdDev).
// "An op without a passing gradient check cannot be registered as
// differentiable": test/grad_check_test.cc runs central finite differences in
// float64 over every rule.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

class GradCtx {
 public:
  /// Used by autodiff; rules only call the methods below.
  GradCtx(Graph& g, NodeId node, std::vector<TensorId> out_grads, std::vector<char> needs,
          std::string name_prefix);

  const Graph& graph() const { return g_; }
  const Node& node() const { return g_.node(node_); }
  size_t num_inputs() const { return node().inputs.size(); }
  TensorId input(size_t i) const { return node().inputs.at(i); }
  TensorId output(size_t i) const { return node().outputs.at(i); }
  const Tensor& tensor(TensorId t) const { return g_.tensor(t); }
  /// Gradient flowing into output i, or an invalid id if none reaches it.
  TensorId output_grad(size_t i) const;
  /// False for omitted, integer/bool, constant or frozen inputs, and inputs
  /// from which no trainable parameter is reachable.
  bool needs_input_grad(size_t i) const;
  void set_input_grad(size_t i, TensorId grad);

  /// Emits one node; output types come from the op registry (infer_node).
  /// Returns its outputs (role gradient). `num_outputs` output slots are made.
  std::vector<TensorId> emit(const std::string& op, const std::vector<TensorId>& inputs,
                             const Attrs& attrs = {}, size_t num_outputs = 1);
  TensorId emit1(const std::string& op, const std::vector<TensorId>& inputs,
                 const Attrs& attrs = {});
  /// A constant scalar (shape []) or 1-D int64 constant.
  TensorId scalar(double v, DType dtype);
  TensorId ints(const std::vector<int64_t>& v);
  /// Sums g over the axes where `to` was broadcast (numpy rules), then
  /// reshapes to `to`. Returns g unchanged if shapes already match.
  TensorId unbroadcast(TensorId g, Shape to);  // by value: emit() may move the graph's storage
  /// Makes the forward node's optional output k exist (creating an
  /// activation tensor of the inferred type) and returns it.
  TensorId ensure_output(size_t k);

  /// Results, read by autodiff.
  const std::vector<TensorId>& input_grads() const { return in_grads_; }

 private:
  Graph& g_;
  NodeId node_;
  std::vector<TensorId> out_grads_;
  std::vector<char> needs_;
  std::vector<TensorId> in_grads_;
  std::string prefix_;
  int counter_ = 0;
};

using GradFn = void (*)(GradCtx&);

/// The gradient rule for a forward op, or nullptr if the op is not differentiable.
GradFn find_grad_rule(std::string_view op);
/// Ops with a gradient rule, sorted.
std::vector<std::string_view> grad_rule_ops();

}  // namespace memplan
