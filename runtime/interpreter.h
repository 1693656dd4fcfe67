// Reference interpreter: runs a graph once with one heap buffer per storage
// (no planning, no arena). It is the oracle for planned executors and the
// engine of the gradient-check harness. Views and in-place outputs share their
// input's buffer, as the kernel contract (runtime/kernel.h) says.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

class Interpreter {
 public:
  explicit Interpreter(const Graph& g, uint64_t seed = 0, uint64_t step = 0);
  /// Sets the bytes of a tensor no node produces (input, parameter, state,
  /// optimizer state). Constants with data are loaded automatically.
  void set(TensorId t, std::vector<uint8_t> bytes);
  /// Runs every node in topological order. Error if a kernel is missing.
  void run();
  /// Bytes of any tensor after run() (or after set()).
  const std::vector<uint8_t>& get(TensorId t) const;

 private:
  const Graph& g_;
  uint64_t seed_, step_;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> buf_;
};

}  // namespace memplan
