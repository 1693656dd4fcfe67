// Pass: precision per op (issue 4, lever 2). Lowers matmul- and conv-class
// ops of the FORWARD graph to bf16 or f16, inserting every cast as a node so
// that its memory is planned like any other tensor.
//
// Requires: shapes inferred (run after infer_shapes, before
//           build_training_graph). Works on inference graphs too.
// Ensures:  verify(g) holds; nodes are in topological order; every graph
//           output and every tensor that existed before keeps its name, its
//           dtype (f32 stays f32) and its value up to rounding, except frozen
//           parameters stored in `low` (below). Nothing changes when no op is
//           eligible (an f32-only graph without MatMul/Gemm/Conv/ConvTranspose
//           comes back identical).
//
// Policy:
//  1. Matmul-class ops (MatMul, Gemm, Conv, ConvTranspose: is_matmul_class in
//     compiler/cost_model.h) whose float inputs and outputs are all f32 run
//     in `low`: each float input is read through a Cast(to=low) (one per
//     tensor, "<tensor>/to_bf16", shared by every lowered reader) and each
//     output is written in `low` as "<tensor>/bf16" (f16: "/to_f16", "/f16").
//     PrecisionOptions::only_nodes restricts this rule to the named nodes.
//     With select = cost, rule 1 lowers only the ops that the cost model says
//     gain more than the casts they add (passes/precision_select.h: a
//     deterministic local search pricing whole lowered graphs on `device`);
//     select = all (the default, forced --precision) lowers every one.
//  2. Cheap elementwise and data-movement ops (kLowOps in precision.cc: Relu,
//     LeakyRelu, Add, Sub, Mul, Neg, MaxPool, views, Transpose, Concat,
//     Split) run in `low` when every float input is the low output of an op
//     lowered by rule 1, 2 or 2b, or a parameter or constant (cast, like
//     weights), and at least one is such a low output. So bias + Relu after a
//     MatMul (or a BatchNorm, rule 2b) stay low and the
//     activation saved for backward is stored in its producer's precision,
//     while a residual Add of an f32 stream and a low branch stays f32 (as
//     torch.autocast promotes it).
//  2b. BatchNormalization whose X is the low output of an op lowered by rule
//     1, 2 or 2b reads X and writes Y in `low`; scale, B, the running statistics
//     and the statistics outputs stay f32, and the statistics are computed
//     in f32 (as cuDNN's batch norm with half data and float parameters). So
//     Conv -> BatchNorm -> Relu stays low end to end and the BatchNorm input
//     saved for backward is stored in its producer's precision. Autodiff's
//     BatchNormTrainingGrad then reads dY and X in `low` and writes dX in
//     `low`, dscale and dB in f32.
//  3. Everything else (softmax, other normalizations, reductions, exp/log/pow,
//     losses, Dropout, optimizer math) stays f32 and reads the original
//     tensor name, now produced by a Cast back to f32 ("<tensor>/to_f32")
//     from the low output. Back casts nobody reads are removed.
//  4. Parameters stay f32 (master weights): their low copies are activations
//     recomputed each step, and autodiff's Cast rule casts their gradients
//     back to f32, so parameter gradients, their sums and the optimizer run
//     in f32. A parameter matching `frozen` (ECMAScript regex_search, as
//     TrainingOptions::freeze) whose every reader is lowered is stored in
//     `low` instead (dtype changed, inline data converted with round to
//     nearest even) and its cast is dropped. Pass the same regex as
//     TrainingOptions::freeze: a low parameter must not be trained. With
//     training = false every parameter counts as frozen.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

struct DeviceProfile;

/// Which eligible matmul-class ops rule 1 lowers.
enum class PrecisionSelect {
  all,  // every one (--precision bf16|fp16)
  cost, // those the cost model on `device` says are faster low, casts included
};

struct PrecisionOptions {
  DType low = DType::bf16; // bf16 or f16; anything else is an Error
  /// Regex over parameter names (same semantics as TrainingOptions::freeze):
  /// frozen weights whose every reader is lowered are STORED in `low`.
  std::string frozen;
  bool training = true; // false: every parameter counts as frozen
  /// When set, rule 1 lowers only the matmul-class nodes named here (the
  /// budget solver's per-op choice); rule 2 follows as usual. A name that is
  /// not a matmul-class node of the graph is an Error.
  std::optional<std::set<std::string>> only_nodes;
  PrecisionSelect select = PrecisionSelect::all;
  /// The device the cost selection prices ops on; required with select = cost
  /// (an Error otherwise), unused with all. Not owned.
  const DeviceProfile* device = nullptr;
};

struct PrecisionStats {
  int64_t ops_lowered = 0;
  int64_t casts_inserted = 0; // cast nodes in the final graph (both directions)
  int64_t frozen_weights_lowered = 0;
  int64_t cast_bytes = 0;             // bytes of the cast nodes' outputs
  std::vector<std::string> decisions; // one line per lowered op (and per op kept f32)
  // select = cost only (precision_select.h, precision_step_seconds):
  int64_t ops_kept_f32 = 0;       // eligible matmul-class ops the selection left f32
  double est_seconds_f32 = 0;     // nothing lowered
  double est_seconds_all_low = 0; // every eligible op lowered (select = all)
  double est_seconds = 0;         // the selection
};

/// Lowers g in place (see the banner). Throws Error on a bad `low` dtype, an
/// invalid `frozen` regex, an `only_nodes` name that is not a matmul-class
/// node, or select = cost without a device (or with a device lacking `low`).
PrecisionStats lower_precision(Graph& g, const PrecisionOptions& o);

/// Target staging (compiler/low_precision.h): marks with
/// native_low_precision = 1, which takes the node's f32 staging out of its
/// planned workspace, every node that reads or writes an f16/bf16 tensor and
/// whose op the CUDA backend runs in the operands' own dtype
/// (op_runs_low_precision_on_gpu: GEMMs and convolutions on cuBLAS / cuDNN,
/// BatchNorm training and its grad, elementwise math, activation grads,
/// ReduceSum, MaxPool and MaxPoolGrad; f32 math inside). The IR gives the
/// inputs and outputs of one convolution one dtype, which is what cuDNN's
/// pseudo-half configurations take. For plans of a GPU device profile; the
/// CPU backend stages marked nodes in scratch outside the arena.
/// Run after build_training_graph (backward GEMMs and convolutions and
/// micro-batch copies are marked too); recomputed clones keep the mark.
/// Returns the number of nodes marked.
int64_t mark_native_low_precision(Graph& g);

} // namespace memplan
