// Micro-batching, the binding side. See microbatch.h.
#include "passes/microbatch.h"

namespace memplan {

namespace {

std::string type_of(const Tensor& t) {
  return std::string(dtype_name(t.dtype)) + shape_str(t.shape);
}

std::string list(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return s;
}

}  // namespace

BatchInfo find_batch(const Graph& g) {
  if (g.inputs.empty())
    throw Error("micro-batching splits the graph inputs along their batch axis, but the model "
                "has no graph inputs");
  BatchInfo b;
  for (TensorId id : g.inputs) {
    const Tensor& t = g.tensor(id);
    if (!t.shape_known) throw InternalError("find_batch: input '" + t.name + "' is unbound");
    if (t.shape.empty())
      throw Error("micro-batching splits every graph input along axis 0 (the batch), but input '" +
                  t.name + "' is a scalar " + type_of(t) +
                  "; give it a batch axis or train without micro-batches");
    if (b.input.empty()) {
      b = {t.shape[0], t.name};
      continue;
    }
    if (t.shape[0] != b.size)
      throw Error("micro-batching needs one batch size on axis 0 of every graph input, but input '" +
                  b.input + "' has " + std::to_string(b.size) + " and input '" + t.name +
                  "' has " + std::to_string(t.shape[0]) + " (" + type_of(t) +
                  "); bind them to the same batch");
  }
  return b;
}

std::vector<int64_t> batch_divisors(int64_t batch) {
  std::vector<int64_t> lo, hi;
  for (int64_t d = 1; d <= batch / d; ++d) {
    if (batch % d) continue;
    lo.push_back(d);
    if (d != batch / d) hi.push_back(batch / d);
  }
  lo.insert(lo.end(), hi.rbegin(), hi.rend());
  return lo;
}

BindOptions micro_binding(const Graph& imported, const BindOptions& full, int64_t k) {
  const std::string flag = "--micro-batches " + std::to_string(k);
  if (k < 1) throw Error(flag + ": the number of micro-batches must be at least 1");
  Graph bound = imported;
  bind_dims(bound, full);
  const BatchInfo batch = find_batch(bound);
  if (batch.size % k != 0)
    throw Error(flag + ": k=" + std::to_string(k) + " does not divide the batch " +
                std::to_string(batch.size) + " (axis 0 of input '" + batch.input +
                "'); choose one of " + list(batch_divisors(batch.size)));
  if (k == 1) return full;
  const int64_t micro = batch.size / k;

  // Divide axis 0 where the flags set it: --input-shape first (it wins over
  // the model's declaration), then the symbolic dim name.
  BindOptions r = full;
  for (TensorId id : imported.inputs) {
    const Tensor& t = imported.tensor(id);
    if (auto it = r.input_shapes.find(t.name); it != r.input_shapes.end()) {
      it->second.at(0) = micro;  // find_batch rejected scalars
      continue;
    }
    if (!t.sym.empty() && !t.sym[0].empty()) {
      r.dims[t.sym[0]] = micro;
      continue;
    }
    throw Error(flag + ": the batch (axis 0 = " + std::to_string(batch.size) + " of input '" +
                t.name + "') is fixed in the model; export it with a dynamic batch axis to "
                "micro-batch (memplan cannot resize a static batch: the model's Reshape "
                "constants would still say " + std::to_string(batch.size) + ")");
  }

  // The micro binding must change axis 0 of every input and nothing else.
  Graph micro_g = imported;
  bind_dims(micro_g, r);
  for (size_t j = 0; j < micro_g.inputs.size(); ++j) {
    const Tensor& m = micro_g.tensor(micro_g.inputs[j]);
    Shape want = bound.tensor(bound.inputs[j]).shape;
    want[0] = micro;
    if (m.shape != want) {
      const Tensor& t = imported.tensor(imported.inputs[j]);
      throw Error(flag + ": dividing the batch by " + std::to_string(k) + " gives input '" +
                  t.name + "' the shape " + shape_str(m.shape) + " instead of " +
                  shape_str(want) + ": its batch dim '" + (t.sym.empty() ? "" : t.sym[0]) +
                  "' is used on another axis too; bind that axis with --input-shape");
    }
  }
  return r;
}

}  // namespace memplan
