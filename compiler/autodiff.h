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
//
// Details:
//  - loss "": the only float scalar (one element) among the model's outputs.
//    "cross-entropy": SoftmaxCrossEntropyLoss(logits, labels) {reduction
//    "mean", ignore_index -100} (F.cross_entropy); labels must be integer.
//    "mse": ReduceMean((logits - labels)^2) over every axis (F.mse_loss);
//    labels must have the logits' type. `labels` defaults to "labels". The
//    loss tensor is named "loss" (or the model's own name for it).
//  - BatchNormTraining keeps the node's name; attrs epsilon (default 1e-5)
//    and momentum (ONNX meaning, default 0.9: running = running * momentum +
//    batch * (1 - momentum)). Its running-statistics inputs must have role
//    state (the importer's default).
//  - freeze: std::regex_search over parameter names (a match anywhere, as
//    grep; anchor with ^...$ for whole names). Frozen parameters stay role
//    parameter but get no gradient, update or optimizer state.
//  - a trainable parameter the loss does not depend on gets no gradient and
//    no update (a warning), as torch skips parameters whose .grad is None.
//  - names: gradients "<param>/grad" (where unambiguous), optimizer state
//    "<param>/momentum", "<param>/adam_m", "<param>/adam_v" (role
//    optimizer_state, zero data), the step counter "memplan/step" (role
//    state, f32 scalar, zero data; f32 counts exactly up to 2^24 steps),
//    in-place results "<tensor>/updated" (same role as the tensor), backward
//    nodes "memplan/grad/<forward node>/...".
//  - op signatures (StepIncrement, SGDUpdate, AdamUpdate, GlobalNormScale,
//    GradAccumulate): compiler/ops_optim.cc.
//  - outputs, in order: loss; param' per trained parameter; BatchNorm running
//    statistics'; step'; optimizer state' (momentum', or m', v' per
//    parameter); gradients (grads_as_outputs, or always with
//    OptimizerKind::none, which emits no step counter and no updates).
//  - micro-batching (micro_batches = k > 1; compiler/autodiff_microbatch.cc):
//    the graph arrives bound at the micro batch B/k. Graph inputs become
//    full-batch tensors [B, ...] with the same names; replica i (0..k-1)
//    reads part i through BatchSlice; forward, loss and backward are cloned
//    per replica ("<name>/mb<i>"); the gradients accumulate (GradAccumulate)
//    into replica 0's; clipping and the optimizer run once. Each replica's
//    loss is scaled so that their sum is the full-batch loss: cross-entropy
//    by 1 / (non-ignored labels of the full batch), mse by 1 / (elements of
//    the full batch), the model's own loss by 1/k (a warning). The loss
//    output is the sum. BatchNorm running statistics chain through the
//    replicas (a warning: per-micro-batch statistics). Replica i starts
//    after replica i-1's backward (ordering-only BatchSlice inputs), so
//    every schedule holds one replica's activations at a time.
//  - nodes no output depends on are removed (e.g. a second model head that
//    does not feed the loss), then the node order is made topological.
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

/// Dynamic loss scaling for f16 training (compiler/autodiff_loss_scale.cc),
/// with torch.cuda.amp.GradScaler's defaults and semantics:
///  - the backward seed is the resident scale S ("memplan/loss_scale", role
///    state, f32 scalar, initially init_scale) instead of 1, so every
///    gradient is S times the true one;
///  - once every parameter gradient is complete, ONE UnscaleGradients op
///    divides them all by S in place and writes found_inf ("memplan/found_inf",
///    f32 scalar: 1 if any gradient element is inf or NaN, else 0);
///  - StepIncrement, SGDUpdate and AdamUpdate read found_inf and change
///    nothing when it is 1 (a skipped step: parameters, optimizer state and
///    the step counter keep their values, so Adam's step count does not
///    advance); the decision is made on the device, no host round trip;
///  - LossScaleUpdate: overflow -> S *= backoff_factor, tracker = 0; else
///    tracker += 1 and, when it reaches growth_interval, S *= growth_factor
///    and tracker = 0 (tracker: "memplan/loss_scale_growth", role state).
/// An overflow is a skipped step, not an error: the CPU executor does not
/// NaN-check gradient-role tensors of a graph with UnscaleGradients.
struct LossScaling {
  bool enabled = false;
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
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
  LossScaling loss_scaling;  // off by default; the f16 precision policy turns it on
  /// k > 1: gradient accumulation over k micro-batches, unrolled in the
  /// graph (see "Micro-batching" below). The graph must be bound at the
  /// micro batch B/k (passes/microbatch.h, micro_binding).
  int64_t micro_batches = 1;
};

struct TrainingStats {
  int64_t params_trained = 0;
  int64_t params_frozen = 0;
  int64_t backward_nodes = 0;   // nodes with a gradient-role output, besides the ones below
  int64_t optimizer_nodes = 0;  // StepIncrement, SGDUpdate, AdamUpdate, GlobalNormScale,
                                // UnscaleGradients, LossScaleUpdate
  int64_t nodes_pruned = 0;  // nodes no output depends on, removed
  std::string loss;          // name of the loss tensor
  int64_t micro_batches = 1;          // k
  int64_t micro_batch_rows = 0;       // B/k, with k > 1
  int64_t nodes_per_micro_batch = 0;  // nodes replicated per micro-batch, with k > 1
  std::vector<std::string> warnings;  // e.g. --freeze matched nothing
};

/// Throws Error on a non-scalar loss, a missing labels input, a --freeze
/// that matches every parameter (nothing to train), an op on the gradient
/// path without a gradient rule (naming op and node), or a bad regex.
TrainingStats build_training_graph(Graph& g, const TrainingOptions& opts);

std::string_view optimizer_name(OptimizerKind k);  // "none", "sgd", "adam", "adamw"

/// The all-zero initial values of optimizer states are shared by every graph
/// alive in the process. While a KeepZeroData is alive they are also kept
/// after the last graph using them is gone, so that a search that builds and
/// drops one training graph per candidate zero-fills each size once (vgg16's
/// AdamW moments: 0.5 GB per candidate). Scopes nest; thread-safe.
class KeepZeroData {
 public:
  KeepZeroData();
  ~KeepZeroData();
  KeepZeroData(const KeepZeroData&) = delete;
  KeepZeroData& operator=(const KeepZeroData&) = delete;
};

}  // namespace memplan
