// Kernel interface shared by the CPU reference backend and the tests.
//
// A kernel executes one node on host memory. It receives the node (op type
// and attributes), one TensorArg per input and output slot (data == nullptr
// for an omitted optional slot), the op's planned workspace, and the RNG
// coordinates. Kernels never allocate tensors: outputs are preallocated at
// their planned offsets. In-place ops (output_alias(...) == inplace) get the
// same pointer for the aliased input and output.
//
// Dtypes: every differentiable op has f32 and f64 kernels (f64 serves the
// gradient checks); index and mask ops also take i64/i32/bool. A kernel given
// a dtype it does not support throws Error naming the node.
//
// Dropout randomness is counter based: the mask element i of a node is a pure
// function of (seed, step, rng_key, i) (runtime/rng.h), so a step is
// reproducible and a recomputed Dropout (same rng_key) reproduces its mask.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

struct TensorArg {
  void* data = nullptr;  // nullptr: omitted optional input/output
  DType dtype = DType::f32;
  Shape shape;
  int64_t numel = 0;
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  bool present() const { return data != nullptr; }
};

struct KernelArgs {
  const Node* node = nullptr;
  std::vector<TensorArg> in;
  std::vector<TensorArg> out;
  void* workspace = nullptr;  // node_workspace_bytes(g, node) bytes, or nullptr
  int64_t workspace_bytes = 0;
  uint64_t seed = 0;     // run seed (--seed)
  uint64_t step = 0;     // training step counter (advances every step)
  uint64_t rng_key = 0;  // per-node stream: hash of attr "rng_key" if set, else of the node name
};

using KernelFn = void (*)(const KernelArgs&);

/// The kernel for `op`, or nullptr if the CPU backend has none.
KernelFn find_kernel(std::string_view op);
/// Ops that have a CPU kernel, sorted.
std::vector<std::string_view> kernel_ops();

/// Test seam: while alive, `op` runs `fn` instead of its registered kernel
/// (or gains one). Used to prove that guard mode catches a kernel writing
/// out of bounds, which no correct kernel does. Not thread-safe.
class ScopedKernelOverride {
 public:
  ScopedKernelOverride(std::string_view op, KernelFn fn);
  ~ScopedKernelOverride();
  ScopedKernelOverride(const ScopedKernelOverride&) = delete;
  ScopedKernelOverride& operator=(const ScopedKernelOverride&) = delete;

 private:
  std::string_view op_;
};

/// Builds KernelArgs::rng_key for a node (stable across recomputation).
uint64_t node_rng_key(const Node& n);

}  // namespace memplan
