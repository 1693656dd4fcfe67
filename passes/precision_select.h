// Cost-aware choice of the matmul-class ops that run in low precision
// (PrecisionOptions::select = cost, passes/precision.h).
//
// Lowering a MatMul/Gemm/Conv/ConvTranspose makes it run at the device's
// tensor-core peak but adds casts (its f32 inputs to low, its output back to
// f32 for an f32 reader); lowering a neighbour may share or remove those casts,
// and rule 2 of the precision pass then keeps cheap elementwise ops low, which
// halves their bytes. For a tiny op the casts' launches and bytes cost more
// than the tensor cores gain, so it should stay f32.
//
// Algorithm (a deterministic single-flip local search):
//  1. Candidates: the matmul-class nodes that rule 1 may lower (f32 operands,
//     restricted to PrecisionOptions::only_nodes when set), topological order.
//  2. cost(S) = precision_step_seconds of the graph lowered with exactly the
//     candidates in S (lower_precision with only_nodes = S on a copy), so
//     every cast inserted or avoided and every op rule 2 keeps low is priced
//     by the cost model (compiler/cost_model.h, node_time) as it will run.
//     fp16 training with S non-empty adds dynamic loss scaling's fixed cost
//     (the pipeline turns it on for f16): UnscaleGradients reads and writes
//     every trained parameter's f32 gradient, plus two launches.
//  3. S starts as every candidate (today's all-low). A sweep visits the
//     candidates in topological order and flips one (low -> f32 or back)
//     when that lowers cost(S) by more than a relative 1e-9; sweeps repeat
//     until one changes nothing (a local optimum: no single op's flip helps),
//     at most kMaxSweeps times. Each flip strictly lowers the cost, so the
//     search ends; ties keep the op low. A flip to f32 is not priced when
//     a bound rules it out: it slows the op by w (t_f32 - t_low) and can at
//     most remove the casts around the low region the op starts (its input
//     casts and those of the rule 2 ops downstream, and the casts reading
//     from them); if those cost less, the flip cannot help.
//  4. If lowering nothing is cheaper than that local optimum, nothing is
//     lowered (the result is never worse than all-f32 or all-low).
// Cost: one lowering of the forward graph per candidate per sweep, less the
// screened flips (t5 at batch 8, seq 512: 50 lowerings instead of 195, 0.32 s;
// gpt2 at batch 8, seq 1024: 2 instead of 75).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "passes/precision.h"

namespace memplan {

struct DeviceProfile;

struct PrecisionSelection {
  std::set<std::string> low;          // candidates to lower (names)
  std::vector<std::string> kept_f32;  // candidates left f32, topological order
  std::vector<std::string> decisions; // one line per candidate kept f32, with its saving
  double seconds_f32 = 0;             // cost(empty set)
  double seconds_all_low = 0;         // cost(every candidate)
  double seconds = 0;                 // cost(low)
  int64_t evaluations = 0;            // lowerings priced
  int64_t screened = 0;               // flips to f32 ruled out without pricing (step 3)
  int64_t sweeps = 0;
};

/// Estimated seconds of one training step's work that the forward graph g
/// implies (inference: of one forward pass): sum over nodes of weight(n) *
/// node_time(g, n, d). weight = 1 without training. With o.training, a node
/// whose float inputs depend on a trained parameter (not matched by
/// o.frozen) also pays its backward: a matmul-class node once more per such
/// operand among its first two (dA = dY B^T and dB = A^T dY have the
/// forward's FLOPs and precision; autodiff keeps them in the forward's
/// dtype), any other node once more (its gradient op moves about the same
/// bytes; a Cast's gradient is the reverse Cast). An approximation of the
/// backward pass that autodiff will build, fit to compare precisions.
double precision_step_seconds(const Graph& g, const PrecisionOptions& o, const DeviceProfile& d);

/// Runs the search of the banner on g (shapes inferred, not modified). o.low
/// and o.only_nodes as for lower_precision; o.select is ignored.
PrecisionSelection select_low_precision_ops(const Graph& g, const PrecisionOptions& o,
                                            const DeviceProfile& d);

} // namespace memplan
