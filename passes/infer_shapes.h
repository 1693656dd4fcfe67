// Pass: shape inference with constant folding.
//
// Requires: every graph input has a static shape (run bind_dims first).
// Ensures:  every tensor has a static shape and dtype; every node whose inputs
//           are all constants with data (or, for Shape/Size, whose input
//           shape is known) and whose outputs fit under `max_fold_bytes` is
//           evaluated and replaced by constant tensors; the graph is compacted
//           (dead constants dropped) and its nodes are in topological order.
//
// Algorithm:
//  1. Visit nodes in topological order.
//  2. Infer each node's output types from the op registry; an op missing from
//     the registry is an error naming op type, node and opset.
//  3. If the node is foldable, evaluate it (const_eval) and turn its outputs
//     into constants; mark the node dead.
//  4. Remove dead nodes and unused tensors.
//
// Folding is memoized by content (FoldCache): a node whose op, opset,
// attributes, input types and input bytes equal an earlier folded node's
// shares that node's results (compared in full, never by hash alone). One
// cache lives for each call unless the caller passes its own to share it
// between calls (the budget solver binds and infers a model once per
// micro-batch count; GPT-2's causal mask is folded once, not once per layer
// and candidate).
#pragma once

#include <cstdint>
#include <memory>

#include "compiler/ir.h"

namespace memplan {

class FoldCache {
 public:
  FoldCache();
  ~FoldCache();
  FoldCache(const FoldCache&) = delete;
  FoldCache& operator=(const FoldCache&) = delete;
  int64_t hits() const;  // folds answered from the cache

  struct Impl;
  std::unique_ptr<Impl> impl;
};

struct InferShapesOptions {
  bool fold_constants = true;
  /// A node is folded only if each of its outputs is at most this large, so
  /// compile time and plan size stay bounded. Larger results stay as nodes.
  int64_t max_fold_bytes = 16 << 20;
  FoldCache* cache = nullptr;  // shared memo; nullptr = one for this call
};

struct InferShapesStats {
  int64_t nodes_folded = 0;
  int64_t nodes_remaining = 0;
};

InferShapesStats infer_shapes(Graph& g, const InferShapesOptions& opts = {});

}  // namespace memplan
