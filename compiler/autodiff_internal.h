// Internal: the pieces of the training pass (autodiff.h), one file each:
//   autodiff.cc           driver, loss selection, BatchNorm rewrite, outputs, pruning
//   autodiff_backward.cc  reverse-mode differentiation with the gradient rules
//   autodiff_optim.cc     gradient clipping, step counter, optimizer updates
//   autodiff_microbatch.cc  micro-batch slicing, loss scaling, replication
//   autodiff_loss_scale.cc dynamic loss scaling (seed, unscale, scale update)
// Include only from those files.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "compiler/autodiff.h"

namespace memplan::autodiff {

/// What the pass adds to a graph: nodes with fresh names, constants, and
/// zero-initialized resident tensors.
class Builder {
 public:
  explicit Builder(Graph& g);
  Graph& g;

  /// `base`, or `base.1`, `base.2`, ... : a name no node / tensor has yet.
  std::string node_name(const std::string& base);
  std::string tensor_name(const std::string& base) const;

  struct Out {
    std::string name; // made unique with tensor_name
    Role role = Role::activation;
  };
  /// Adds node `op` (name made unique) with one output per `outs` entry;
  /// output types come from the op registry (infer_node).
  std::vector<TensorId> emit(const std::string& op, const std::string& name,
                             const std::vector<TensorId>& inputs, const Attrs& attrs,
                             const std::vector<Out>& outs);
  /// A constant of the given type with every element equal to v.
  TensorId filled_constant(const std::string& name, DType d, const Shape& s, double v);
  /// A resident tensor (role `role`) with zero data. Tensors of equal byte
  /// size share one zero buffer.
  TensorId zero_tensor(const std::string& name, DType d, const Shape& s, Role role);

 private:
  std::set<std::string> node_names_;
};

/// Result of differentiation: trained parameters that receive a gradient.
struct Backward {
  std::vector<TensorId> params; // in tensor order
  std::vector<TensorId> grads;  // grads[k] = d(loss)/d(params[k]), same type as params[k]
  TensorId found_inf;           // loss scaling: f32 scalar, 1 = skip this step's update
};

/// Differentiates `loss` with respect to every tensor t with trainable[t.v]
/// (autodiff_backward.cc). Throws Error on an op without a gradient rule on
/// the gradient path, or when no trainable parameter reaches the loss.
/// Appends a warning per trainable parameter the loss does not depend on.
/// `seed` (optional): d(loss) starts as this tensor (of the loss's type)
/// instead of the constant 1 (loss scaling).
Backward build_backward(Builder& b, TensorId loss, const std::vector<char>& trainable,
                        std::vector<std::string>& warnings, TensorId seed = TensorId());

/// Loss scaling (autodiff_loss_scale.cc, see LossScaling in autodiff.h).
/// The resident scale "memplan/loss_scale", to seed the backward pass with.
TensorId loss_scale_tensor(Builder& b, const LossScaling& o, const Tensor& loss);
/// Emits UnscaleGradients over bw.grads (replaced by the unscaled tensors,
/// bw.found_inf set) and LossScaleUpdate; returns scale' and tracker'.
std::vector<TensorId> unscale_gradients(Builder& b, const LossScaling& o, TensorId scale,
                                        Backward& bw);

/// What the optimizer writes in place (autodiff_optim.cc).
struct Updates {
  std::vector<TensorId> params;    // param' per trained parameter
  std::vector<TensorId> state;     // step counter'
  std::vector<TensorId> opt_state; // momentum' / adam_m' / adam_v'
};

/// Emits clipping (when opts.clip_grad_norm > 0), the step counter and one
/// update per trained parameter. OptimizerKind::none emits nothing.
Updates build_optimizer(Builder& b, const TrainingOptions& opts, const Backward& bw,
                        std::vector<std::string>& warnings);

/// Micro-batching (autodiff_microbatch.cc), used when opts.micro_batches > 1.
struct MicroBatch {
  int64_t k = 1;
  int64_t rows = 0;             // micro-batch size B/k (axis 0 of the model's inputs)
  std::vector<NodeId> slices;   // replica 0's BatchSlice nodes, one per graph input
};
/// Makes every graph input full-batch (same name); the micro-sized tensor
/// becomes "<input>/mb0", produced by BatchSlice(index 0, count k). Throws
/// Error on a scalar input or inputs with different axis 0.
MicroBatch slice_inputs(Builder& b, int64_t k);
/// Scales one replica's loss so that the k replica losses sum to the
/// full-batch mean (cross-entropy: global count of non-ignored labels; mse:
/// full element count; the model's own loss: 1/k with a warning). Returns
/// the scaled loss, which takes the loss's name.
TensorId micro_loss(Builder& b, const TrainingOptions& opts, TensorId loss, const MicroBatch& mb,
                    TrainingStats& st);
/// After build_backward: clones the replica k-1 times, accumulates the
/// gradients, sums the losses. Updates loss (the sum, same name), bw.grads
/// (the accumulated gradients) and bn_state (the last replica's).
void replicate(Builder& b, const MicroBatch& mb, TensorId& loss, Backward& bw,
               std::vector<TensorId>& bn_state, TrainingStats& st);

} // namespace memplan::autodiff
