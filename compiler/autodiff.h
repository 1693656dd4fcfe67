// Pass: build the training step (forward, loss, backward, optimizer update).
//
// Requires: infer_shapes has run (static shapes, constants folded).
// Ensures:  the graph computes one training step:
//  1. loss: the model's own scalar output, or with `loss` set, a loss node
//     (SoftmaxCrossEntropyLoss or an MSE composition) on the logits output
//     and the `labels` input; the loss is the graph's first output;
//  2. forward rewrites for training: BatchNormalization(training_mode=1)
//     becomes BatchNormTraining, which updates the running statistics in place
//     and saves the batch mean and inverse standard deviation for backward;
//  3. reverse-mode autodiff from d(loss)=1 through every node on a path from a
//     trainable (non-frozen) parameter to the loss, using the gradient rules
//     (grad.h); contributions to a tensor used several times are summed;
//     backward work that only serves frozen parameters is pruned;
//  4. optional global-norm clipping: GlobalNormScale over all gradients gives
//     a scalar factor the updates apply;
//  5. optimizer: a StepIncrement of the resident step counter (role state),
//     then one SGDUpdate / AdamUpdate per parameter, in place on the parameter
//     and its optimizer state (role optimizer_state, zero-initialized);
//  6. the graph's outputs become: the loss, then the updated parameters,
//     state and optimizer state (so nothing is dead), plus every parameter
//     gradient when `grads_as_outputs` (tests compare them with PyTorch).
// Optimizer definitions follow torch.optim (SGD with momentum, dampening,
// nesterov, weight decay; Adam; AdamW with decoupled weight decay).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

enum class OptimizerKind { none, sgd, adam, adamw };

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::adamw;
  double lr = 1e-3;
  double momentum = 0.0;   // SGD
  double dampening = 0.0;  // SGD
  bool nesterov = false;   // SGD
  double weight_decay = 0.0;  // SGD/Adam: L2 added to the gradient; AdamW: decoupled
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam/AdamW
};

struct TrainingOptions {
  /// "" : the model's own scalar output is the loss (error if there is none
  /// or several). "cross-entropy" or "mse": build the loss on `logits`.
  std::string loss;
  std::string labels;  // graph input with the targets (with `loss`)
  std::string logits;  // graph output the loss applies to; "" = the only output
  OptimizerOptions optimizer;
  double clip_grad_norm = 0.0;  // 0: no clipping
  std::string freeze;           // ECMAScript regex over parameter names; "" = none
  bool grads_as_outputs = false;
};

struct TrainingStats {
  int64_t params_trained = 0;
  int64_t params_frozen = 0;
  int64_t backward_nodes = 0;
  int64_t optimizer_nodes = 0;
  std::vector<std::string> warnings;  // e.g. --freeze matched nothing
};

/// Throws Error on a non-scalar loss, a missing labels input, a --freeze
/// that matches every parameter (nothing to train), an op on the gradient
/// path without a gradient rule (naming op and node), or a bad regex.
TrainingStats build_training_graph(Graph& g, const TrainingOptions& opts);

std::string_view optimizer_name(OptimizerKind k);  // "none", "sgd", "adam", "adamw"

}  // namespace memplan
