// Counter-based random numbers: a pure function of (seed, step, key, index),
// so a step is reproducible, replays and recomputation give the same values,
// and no generator state has to be saved beyond (seed, step).
#pragma once

#include <cstdint>

// The CUDA Dropout kernel (runtime/cuda/elementwise.cu) calls these same
// functions on the device, so GPU masks equal the CPU's bit for bit.
#ifdef __CUDACC__
#define MEMPLAN_RNG_FN __host__ __device__ inline
#else
#define MEMPLAN_RNG_FN inline
#endif

namespace memplan {

MEMPLAN_RNG_FN uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Stream base for one node in one step.
MEMPLAN_RNG_FN uint64_t rng_stream(uint64_t seed, uint64_t step, uint64_t key) {
  return mix64(mix64(seed) ^ mix64(step + 0x632be59bd9b4e019ull) ^ key);
}

/// Uniform in [0, 1) for element i of a stream (53 random bits).
MEMPLAN_RNG_FN double rng_uniform(uint64_t stream, uint64_t i) {
  return static_cast<double>(mix64(stream + i * 0xd1b54a32d192ed03ull) >> 11) * 0x1.0p-53;
}

/// A sequential splitmix64 stream for host code (seeded searches, tests):
/// identical on every platform, unlike std:: distributions.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    const uint64_t z = mix64(state_);
    state_ += 0x9e3779b97f4a7c15ull;
    return z;
  }
  /// Uniform in [0, n), n > 0.
  uint64_t below(uint64_t n) { return next() % n; }
  /// Uniform in [0, 1) (53 random bits).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace memplan
