// Micro-batching, the binding side: which axis is the batch, and the dim
// binding that makes the forward graph micro-sized.
//
// The micro-batch lever trains on k micro-batches of B/k rows with gradient
// accumulation (same effective batch B). memplan unrolls it in the graph
// (compiler/autodiff.h, TrainingOptions::micro_batches): the forward graph is
// bound at the micro batch B/k and shape-inferred (constant folding bakes
// B/k into Reshape constants), then the training pass replicates forward,
// loss and backward k times over slices of the full-batch inputs. This file
// provides the binding for that first step:
//  1. the batch is axis 0, shared by every graph input (data and labels);
//     inputs that disagree, or a scalar input, are an Error naming them;
//  2. micro_binding divides the batch by k in the flags that set it: the
//     symbolic dim of axis 0 (--dim) and axis 0 of every --input-shape;
//  3. a batch that is static in the model cannot be divided (its Reshape
//     constants would still say B): an Error says to export a dynamic axis.
//
// Precondition: `imported` is the graph as imported (symbolic dims unbound).
// Nothing here modifies it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir.h"
#include "passes/bind_dims.h"

namespace memplan {

struct BatchInfo {
  int64_t size = 0;   // B: axis 0 of every graph input
  std::string input;  // the first graph input (for messages)
};

/// The batch of a graph whose inputs have static shapes (after bind_dims).
/// Throws Error naming the inputs when their axis 0 differ, when an input is
/// a scalar, or when the graph has no inputs.
BatchInfo find_batch(const Graph& bound);

/// The binding that makes the batch B/k, from the full binding `full` (the
/// user's --dim / --input-shape flags). Throws Error when k < 1, when k does
/// not divide B ("k=3 does not divide the batch 16; choose one of 1, 2, 4,
/// 8, 16"), when the batch is static in the model, or when a dividing the
/// symbolic batch dim would change another axis.
BindOptions micro_binding(const Graph& imported, const BindOptions& full, int64_t k);

/// The divisors of batch (> 0), ascending: the micro-batch counts k the
/// planner may choose.
std::vector<int64_t> batch_divisors(int64_t batch);

}  // namespace memplan
