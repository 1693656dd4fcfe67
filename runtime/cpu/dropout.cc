// CPU kernels: Dropout and DropoutGrad.
//
// Dropout(X, ratio?, training_mode?) -> (Y, mask?). ratio: input 1 if given,
// else attribute `ratio` (default 0.5). Training iff input 2 is given and
// true (opset 12+; without it Dropout is the identity, as in inference).
// In training, element i is kept iff
//   rng_uniform(rng_stream(seed, step, rng_key), i) >= ratio
// and Y = X * mask / (1 - ratio); otherwise (or when ratio == 0) Y = X and
// the mask is all true. The mask is a pure function of (seed, step, rng_key),
// so a recomputed Dropout reproduces it.
//
// Attribute rng_offset (default 0, set by micro-batching) shifts the element
// counter: element i draws rng_uniform(stream, i + rng_offset). Replica j of
// k micro-batches keeps the original's rng_key and gets rng_offset =
// j * numel(X), so for a batch-major X (axis 0 = batch) the k micro-batch
// masks concatenate to exactly the mask of the full batch in one step.
//
// DropoutGrad(dY, mask, ratio?, training_mode?) -> dX = dY * mask / (1 - ratio)
// with the same ratio / training rules (dX = dY when not training).
#include <algorithm>
#include <cstring>

#include "runtime/cpu/nn_util.h"
#include "runtime/rng.h"

namespace memplan::kernels::nn {

namespace {

struct DropParams {
  double ratio;
  bool training;
  double scale() const { return training && ratio > 0 ? 1.0 / (1.0 - ratio) : 1.0; }
};

/// ratio / training_mode from inputs at slots r and r + 1, or the attribute.
DropParams params(const KernelArgs& a, size_t r) {
  DropParams p{attr_float(*a.node, "ratio", 0.5), false};
  if (a.in.size() > r && a.in[r].present()) p.ratio = load(a.in[r], 0);
  if (a.in.size() > r + 1 && a.in[r + 1].present()) p.training = load_int(a.in[r + 1], 0) != 0;
  if (p.ratio < 0 || p.ratio >= 1)
    fail(a, "ratio must be in [0, 1), got " + std::to_string(p.ratio));
  return p;
}

void dropout(const KernelArgs& a) {
  const TensorArg &x = a.in[0], &y = a.out[0];
  uint8_t* mask = a.out.size() > 1 && a.out[1].present() ? a.out[1].as<uint8_t>() : nullptr;
  const DropParams p = params(a, 1);
  const bool drop = p.training && p.ratio > 0;
  const uint64_t stream = rng_stream(a.seed, a.step, a.rng_key);
  const int64_t offset = attr_int(*a.node, "rng_offset", 0);
  if (offset < 0) fail(a, "rng_offset must be non-negative, got " + std::to_string(offset));
  float_dispatch(a, x.dtype, [&]<class T>() {
    const T* xp = x.as<T>();
    T* yp = y.as<T>();
    if (!drop) {
      if (yp != xp) std::memcpy(yp, xp, static_cast<size_t>(x.numel) * sizeof(T));
      if (mask) std::fill(mask, mask + x.numel, uint8_t{1});
      return;
    }
    const T s = static_cast<T>(p.scale());
    for (int64_t i = 0; i < x.numel; ++i) {
      const bool keep = rng_uniform(stream, static_cast<uint64_t>(i + offset)) >= p.ratio;
      yp[i] = keep ? xp[i] * s : T(0);
      if (mask) mask[i] = keep;
    }
  });
}

void dropout_grad(const KernelArgs& a) {
  const TensorArg &dy = a.in[0], &mask = a.in[1], &dx = a.out[0];
  const DropParams p = params(a, 2);
  if (mask.dtype != DType::boolean) fail(a, "mask must be bool");
  float_dispatch(a, dy.dtype, [&]<class T>() {
    const T* g = dy.as<T>();
    const uint8_t* m = mask.as<uint8_t>();
    T* d = dx.as<T>();
    if (!p.training || p.ratio == 0) {
      if (d != g) std::memcpy(d, g, static_cast<size_t>(dy.numel) * sizeof(T));
      return;
    }
    const T s = static_cast<T>(p.scale());
    for (int64_t i = 0; i < dy.numel; ++i)
      d[i] = m[i] ? g[i] * s : T(0);
  });
}

} // namespace

void register_dropout(Table& t) {
  t["Dropout"] = dropout;
  t["DropoutGrad"] = dropout_grad;
}

} // namespace memplan::kernels::nn
