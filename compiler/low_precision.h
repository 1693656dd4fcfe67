// Low-precision storage with f32 compute (the CPU backend's bf16/f16 model).
//
// Ops for which op_handles_low_precision is true move f16/bf16 elements
// natively (Cast and pure data movement). Every other op that reads or writes
// an f16/bf16 tensor runs its f32 kernel on f32 copies staged at the START of
// its workspace (runtime/low_precision_run.h run_kernel), one slot per f16/bf16
// input, then per f16/bf16 output, in slot order; the op's own workspace
// follows. node_workspace_bytes (compiler/op_registry.h) includes the
// staging, so it is planned memory like any workspace, except for a node
// with attribute native_low_precision = 1 (passes/precision.h
// mark_native_low_precision; in plans for a GPU, the ops of
// op_runs_low_precision_on_gpu, which its backend runs in the operands'
// dtype): its plan reserves only the op's own
// workspace, and the CPU backend stages it in scratch outside the arena
// (staged_outside_plan).
#pragma once

#include <cstdint>
#include <string_view>

#include "compiler/ir.h"

namespace memplan {

bool op_handles_low_precision(std::string_view op);
/// Bytes of one staged f32 copy of `numel` elements: numel * 4 rounded up to 64.
inline int64_t low_precision_slot_bytes(int64_t numel) {
  return (numel * 4 + 63) / 64 * 64;
}
/// True for the ops the CUDA backend runs on f16/bf16 operands in their own
/// dtype (f32 math inside, results rounded once to nearest even, as the
/// staging computes): GEMMs and convolutions (cuBLAS / cuDNN), BatchNorm
/// training and its grad, elementwise math and activation grads, ReduceSum,
/// MaxPool and MaxPoolGrad. Only these may carry native_low_precision = 1.
bool op_runs_low_precision_on_gpu(std::string_view op);
/// Sum of low_precision_slot_bytes over n's present f16/bf16 input and output
/// slots (every slot, in-place ones included); 0 for native ops.
int64_t low_precision_staging_bytes(const Graph& g, const Node& n);
/// True when n's staging is not in its planned workspace (attribute
/// native_low_precision = 1).
bool staged_outside_plan(const Node& n);

} // namespace memplan
