// memplan checkpoints: every parameter, state and optimizer-state tensor of a
// training run plus the step counter and seed, so `memplan run --resume`
// continues bit for bit. Binary layout: docs/checkpoint-format.md.
//
// Writing is atomic (temp file, fsync, rename). Reading validates everything:
// magic, version, sizes, dtype names, shapes against byte counts, the
// trailing checksum, and nothing after it. Every problem is an Error naming
// the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

class Executor;

inline constexpr uint32_t kCheckpointVersion = 1;

struct CheckpointTensor {
  std::string name;
  Role role = Role::parameter;  // parameter, state or optimizer_state
  DType dtype = DType::f32;
  Shape shape;
  std::vector<uint8_t> data;  // little-endian, dtype_size x numel bytes
};

struct Checkpoint {
  uint64_t step = 0;  // the executor's step counter
  uint64_t seed = 0;  // the run seed (Dropout masks depend on it)
  std::vector<CheckpointTensor> tensors;
};

std::string checkpoint_bytes(const Checkpoint& c);
/// Throws Error("SOURCE: ...") on any malformed, truncated or corrupt input.
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& source);
/// True if the bytes start with the checkpoint magic.
bool is_checkpoint(const std::string& bytes);
Checkpoint read_checkpoint(const std::string& path);
void write_checkpoint(const std::string& path, const Checkpoint& c);

/// The tensors a checkpoint holds for an executor: parameters, state and
/// optimizer state (resident, written by no op), in graph order.
std::vector<TensorId> checkpoint_tensors(const Graph& g);
/// Snapshot of an executor (its step counter, the given seed, every
/// checkpoint tensor).
Checkpoint capture_checkpoint(const Executor& ex, uint64_t seed);
/// Writes a checkpoint's tensors into an executor. Error (naming `source` and
/// the tensor) if the checkpoint has a tensor the plan lacks, a dtype or shape
/// differs, or a tensor of the plan is absent. With `optimizer_state_optional`
/// absent optimizer-state tensors keep their current value (loading weights
/// from a checkpoint into a different optimizer). Sets the step counter when
/// `restore_step`.
void restore_checkpoint(Executor& ex, const Checkpoint& c, const std::string& source,
                        bool restore_step, bool optimizer_state_optional = false);

}  // namespace memplan
