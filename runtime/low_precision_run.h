// Running kernels on low-precision storage (see compiler/low_precision.h).
#pragma once

#include <optional>

#include "runtime/kernel.h"

namespace memplan {

/// Runs kernel k on a. When a present input or output is f16/bf16 and the op
/// does not move such elements natively (op_handles_low_precision), each such
/// slot is staged as an f32 copy at the start of a.workspace (one
/// low_precision_slot_bytes slot per f16/bf16 input, then output, in slot
/// order), k runs on the copies with the rest of the workspace, and the f32
/// results are rounded back to nearest even. An in-place output shares its
/// input's copy (the kernel contract). The executor and the interpreter call
/// every kernel through this. InternalError if the workspace is too small.
void run_kernel(KernelFn k, const KernelArgs& a);

/// run_kernel's staging layout, shared with the CUDA backend: a copy of a
/// whose f16/bf16 slots are f32 and point into a.workspace (one
/// low_precision_slot_bytes slot per f16/bf16 input, then output, in slot
/// order; an in-place output shares its input's copy), with the rest of the
/// workspace as its own. nullopt when a.workspace cannot hold the copies.
/// The caller widens a's f16/bf16 inputs into the copies before the f32
/// kernel and narrows the copies of its f16/bf16 outputs after it.
std::optional<KernelArgs> stage_low_precision(const KernelArgs& a);
/// True for a present f16/bf16 tensor.
bool is_low_precision(const TensorArg& t);

/// The conversions run_kernel uses, bit-exact with compiler/dtype_codec.h
/// (f16/bf16 -> f32 exact; f32 -> f16/bf16 round to nearest even, NaN stays
/// NaN) without going through double. Exposed for tests.
float low_bits_to_f32(DType d, uint16_t h);
uint16_t f32_to_low_bits(DType d, float f);

} // namespace memplan
