// Internal to runtime/cuda: how the CUDA executor turns one plan op into
// launches. For each op type a Prepare function runs once, when the executor
// is created: it checks dtypes and attributes (an Error naming the node for
// anything the backend does not support), computes shapes, strides and
// library descriptors, chooses cuDNN algorithms, reads constant inputs
// (Dropout's ratio, ReduceSum's axes) from the plan's program, and returns a
// Launch that only enqueues work on the stream. Launches are replayed by the
// captured CUDA graph, so they must not allocate, synchronize or read device
// memory on the host.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/cuda/device.h"
#include "runtime/kernel.h"

namespace memplan::cuda {

struct Ctx {
  Stream stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  Control* control = nullptr; // device control block of this executor
  const Graph* graph = nullptr;
  bool tf32 = false;
  /// Library descriptors owned by the executor, destroyed with it.
  std::vector<std::function<void()>> cleanup;
};

using Launch = std::function<void(Stream)>;
/// a.in / a.out hold device pointers; a.workspace is the op's planned
/// workspace in the device arena.
using Prepare = Launch (*)(const KernelArgs& a, Ctx& c);

/// Every op the CUDA backend supports (ops_basic.cc + ops_nn.cc + ops_lib.cc).
const std::map<std::string_view, Prepare>& op_table();
/// The executor's entry: op_table()'s Prepare for a.node's op, with the
/// f16/bf16 operands the plan stages copied to f32 in the op's planned
/// workspace around it (low_precision.cc). Error when the op has no kernel.
Launch prepare_op(const KernelArgs& a, Ctx& c);

// Registration, one per file.
void register_basic(std::map<std::string_view, Prepare>& t); // ops_basic.cc
void register_nn(std::map<std::string_view, Prepare>& t);    // ops_nn.cc
void register_lib(std::map<std::string_view, Prepare>& t);   // ops_lib.cc: cuBLAS, cuDNN

// Helpers for the Prepare functions (ops_basic.cc).
[[noreturn]] void fail(const KernelArgs& a, const std::string& msg); // "node 'n' (Op): msg"
/// Every present input and output must be f32, except the listed slots
/// (which may be anything the op's kernel interprets itself).
void require_f32(const KernelArgs& a, std::vector<int> skip_in = {},
                 std::vector<int> skip_out = {});
/// The one float type of an op's data slots `in` and `out` (f32, or f16 /
/// bf16 on a native_low_precision node; prepare_op hands a staged node f32
/// copies); every other present slot must be f32, except `other_in` and
/// `other_out` (the op's kernel interprets those itself, e.g. ReduceSum's
/// axes, MaxPool's i64 indices).
FloatType data_float_type(const KernelArgs& a, std::vector<int> in, std::vector<int> out,
                          std::vector<int> other_in = {}, std::vector<int> other_out = {});
/// The host data of constant input `slot` as int64 / double (Error when the
/// input is not a constant of the plan's program).
std::vector<int64_t> const_ints(const KernelArgs& a, const Ctx& c, size_t slot);
double const_scalar(const KernelArgs& a, const Ctx& c, size_t slot);
bool has_in(const KernelArgs& a, size_t slot);
bool has_out(const KernelArgs& a, size_t slot);
/// Walk of `out` with operand k broadcast from shapes[k] (numpy rules).
Walk make_walk(const KernelArgs& a, const Shape& out, const std::vector<Shape>& operands);
/// Walk of `shape` with explicit per-dim strides for operand 0.
Walk make_walk_strided(const KernelArgs& a, const Shape& shape, const std::vector<int64_t>& st);
void check_cuda(const KernelArgs& a, int err, const char* what);

/// The device float type of d; nullopt for a dtype other than f32, f16, bf16.
std::optional<FloatType> float_type(DType d);

inline float* f(const TensorArg& t) {
  return static_cast<float*>(t.data);
}
inline const float* cf(const TensorArg& t) {
  return static_cast<const float*>(t.data);
}

} // namespace memplan::cuda
