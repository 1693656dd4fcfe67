#include "runtime/data_feed.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <numeric>

#include "compiler/dtype_codec.h"
#include "runtime/npy.h"
#include "runtime/rng.h"

namespace memplan {

namespace {

uint64_t name_key(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// Calls f(node, slot) for every read of t or of a view / Cast / BatchSlice
/// (micro-batching's part of a full-batch input) of it.
template <class F>
void for_each_use(const Graph& g, const std::vector<std::vector<NodeId>>& cons, TensorId t, F f,
                  int depth = 0) {
  if (depth > 16) return;
  for (NodeId nid : cons[t.v]) {
    const Node& n = g.node(nid);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (n.inputs[k] != t) continue;
      f(n, k);
      if ((is_view_op(n.op) || n.op == "Cast" || n.op == "BatchSlice") && k == 0 && !n.outputs.empty() && n.outputs[0].valid())
        for_each_use(g, cons, n.outputs[0], f, depth + 1);
    }
  }
}

bool is_class_loss(const std::string& op) {
  return op == "SoftmaxCrossEntropyLoss" || op == "NegativeLogLikelihoodLoss";
}

/// C if t (through views / Cast) is the labels input of a classification loss, else 0.
int64_t label_classes(const Graph& g, const std::vector<std::vector<NodeId>>& cons, TensorId t) {
  int64_t c = 0;
  for_each_use(g, cons, t, [&](const Node& n, size_t slot) {
    if (!is_class_loss(n.op) || slot != 1) return;
    const Tensor& s = g.tensor(n.inputs[0]);
    if (s.shape.size() >= 2) c = s.shape[1];
  });
  return c;
}

int64_t int_range(const Graph& g, const std::vector<std::vector<NodeId>>& cons, TensorId t) {
  int64_t hi = 0;
  for_each_use(g, cons, t, [&](const Node& n, size_t slot) {
    if (hi) return;
    if (is_class_loss(n.op) && slot == 1) {
      const Tensor& s = g.tensor(n.inputs[0]);
      if (s.shape.size() >= 2) hi = s.shape[1];
    } else if (n.op == "Gather" && slot == 1) {
      const Tensor& d = g.tensor(n.inputs[0]);
      int64_t r = static_cast<int64_t>(d.shape.size());
      int64_t axis = attr_int(n, "axis", 0);
      if (axis < 0) axis += r;
      if (axis >= 0 && axis < r) hi = d.shape[axis];
    }
  });
  return hi > 0 ? hi : 2;
}

double normal(uint64_t stream, uint64_t i) {
  double u1 = 1.0 - rng_uniform(stream, 2 * i);
  double u2 = rng_uniform(stream, 2 * i + 1);
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

class PoolFeed final : public DataFeed {
 public:
  explicit PoolFeed(std::vector<InputMap> pool) : pool_(std::move(pool)) {}
  const InputMap& batch(uint64_t k) override { return pool_[k % pool_.size()]; }

 private:
  std::vector<InputMap> pool_;
};

InputMap synthetic_batch(const Graph& g, const std::vector<std::vector<NodeId>>& cons,
                         uint64_t seed, uint64_t b) {
  InputMap m;
  std::vector<TensorId> labels;
  for (TensorId id : g.inputs) {
    const Tensor& t = g.tensor(id);
    if (label_classes(g, cons, id) > 0 && is_integer(t.dtype)) {
      labels.push_back(id);
      continue;
    }
    uint64_t stream = rng_stream(seed, b, name_key(t.name));
    std::vector<uint8_t> out;
    out.reserve(static_cast<size_t>(t.bytes()));
    const int64_t n = t.numel();
    if (is_float(t.dtype)) {
      for (int64_t i = 0; i < n; ++i) encode_float(t.dtype, normal(stream, i), out);
    } else {
      int64_t hi = int_range(g, cons, id);
      for (int64_t i = 0; i < n; ++i)
        encode_int(t.dtype, static_cast<int64_t>(rng_uniform(stream, i) * static_cast<double>(hi)), out);
    }
    m.emplace(t.name, std::move(out));
  }
  for (TensorId id : labels) {
    const Tensor& t = g.tensor(id);
    const int64_t n = t.numel(), c = label_classes(g, cons, id);
    std::vector<int64_t> lab(static_cast<size_t>(n), 0);
    const Tensor* tokens = nullptr;
    const Tensor* feats = nullptr;
    for (TensorId o : g.inputs) {
      const Tensor& x = g.tensor(o);
      if (o == id || !m.count(x.name)) continue;
      if (!tokens && is_integer(x.dtype) && x.numel() == n) tokens = &x;
      if (!feats && is_float(x.dtype) && !x.shape.empty() && !t.shape.empty() && x.shape[0] == t.shape[0] &&
          x.numel() > 0)
        feats = &x;
    }
    if (tokens) {
      const uint8_t* d = m[tokens->name].data();
      // A fixed affine permutation of the token (not the identity, which a
      // model with tied embeddings could answer without learning): the
      // multiplier is the first one from 7 up that is coprime with C.
      int64_t mult = 7;
      while (std::gcd(mult, c) != 1) ++mult;
      for (int64_t i = 0; i < n; ++i)
        lab[i] = (((decode_int(tokens->dtype, d, i) * mult + 3) % c) + c) % c;
    } else if (feats && n > 0) {
      // label of position j of sample s = argmax_c sum_k W[c, j, k] x[s, f_k] over at
      // most 64 evenly spread features f_k (cheap for images, still a function of x).
      const int64_t batch = t.shape[0], per = n / batch;
      const int64_t fdim = feats->numel() / batch, nk = std::min<int64_t>(fdim, 64);
      const uint8_t* x = m[feats->name].data();
      uint64_t wstream = rng_stream(seed, 0, name_key("synthetic-projection"));
      for (int64_t s = 0; s < batch; ++s)
        for (int64_t j = 0; j < per; ++j) {
          double best = -INFINITY;
          for (int64_t cl = 0; cl < c; ++cl) {
            double acc = 0;
            for (int64_t k = 0; k < nk; ++k) {
              uint64_t w = static_cast<uint64_t>((cl * per + j) * nk + k);
              acc += (2 * rng_uniform(wstream, w) - 1) *
                     decode_float(feats->dtype, x, static_cast<size_t>(s * fdim + k * fdim / nk));
            }
            if (acc > best) best = acc, lab[s * per + j] = cl;
          }
        }
    } else {
      uint64_t stream = rng_stream(seed, b, name_key(t.name));
      for (int64_t i = 0; i < n; ++i) lab[i] = static_cast<int64_t>(rng_uniform(stream, i) * static_cast<double>(c));
    }
    std::vector<uint8_t> out;
    for (int64_t v : lab) encode_int(t.dtype, v, out);
    m.emplace(t.name, std::move(out));
  }
  return m;
}

class NpyFeed final : public DataFeed {
 public:
  NpyFeed(const Graph& g, const std::string& dir) {
    int64_t samples = -1;
    std::string first;
    for (TensorId id : g.inputs) {
      const Tensor& t = g.tensor(id);
      std::string file_name = t.name;
      for (char& ch : file_name)
        if (ch == '/' || ch == '\\') ch = '_';
      std::string path = (std::filesystem::path(dir) / (file_name + ".npy")).string();
      std::error_code ec;
      if (!std::filesystem::exists(path, ec))
        throw Error(path + ": no data file for graph input '" + t.name + "' (" +
                    std::string(dtype_name(t.dtype)) + shape_str(t.shape) + ")");
      NpyArray a = read_npy(path);
      if (a.dtype != t.dtype)
        throw Error(path + ": dtype " + std::string(dtype_name(a.dtype)) + " but input '" + t.name +
                    "' is " + std::string(dtype_name(t.dtype)));
      Shape trailing = t.shape.empty() ? Shape{} : Shape(t.shape.begin() + 1, t.shape.end());
      Shape got = a.shape.empty() ? Shape{} : Shape(a.shape.begin() + 1, a.shape.end());
      if (a.shape.empty() || got != trailing)
        throw Error(path + ": shape " + shape_str(a.shape) + " does not fit input '" + t.name +
                    "' " + shape_str(t.shape) + ": expected [samples," +
                    shape_str(trailing).substr(1));
      if (a.shape[0] == 0) throw Error(path + ": holds no samples");
      if (samples >= 0 && a.shape[0] != samples)
        throw Error(path + ": holds " + std::to_string(a.shape[0]) + " samples but " + first +
                    " holds " + std::to_string(samples));
      samples = a.shape[0];
      first = path;
      Source s;
      s.name = t.name;
      s.batch = t.shape.empty() ? 1 : t.shape[0];
      s.sample_bytes = static_cast<int64_t>(a.data.size()) / samples;
      s.data = std::move(a.data);
      cur_.emplace(t.name, std::vector<uint8_t>(static_cast<size_t>(t.bytes())));
      src_.push_back(std::move(s));
    }
    samples_ = samples;
  }

  const InputMap& batch(uint64_t k) override {
    const uint64_t n = static_cast<uint64_t>(samples_);
    for (Source& s : src_) {
      const int64_t first = static_cast<int64_t>((k % n) * (static_cast<uint64_t>(s.batch) % n) % n);
      std::vector<uint8_t>& out = cur_[s.name];
      for (int64_t r = 0; r < s.batch; ++r) {
        int64_t at = (first + r) % samples_;
        if (s.sample_bytes > 0)
          std::memcpy(out.data() + r * s.sample_bytes, s.data.data() + at * s.sample_bytes,
                      static_cast<size_t>(s.sample_bytes));
      }
    }
    return cur_;
  }

 private:
  struct Source {
    std::string name;
    int64_t batch = 1, sample_bytes = 0;
    std::vector<uint8_t> data;
  };
  std::vector<Source> src_;
  InputMap cur_;
  int64_t samples_ = 1;
};

}  // namespace

int64_t synthetic_int_range(const Graph& g, TensorId t) { return int_range(g, g.consumers(), t); }

std::unique_ptr<DataFeed> make_synthetic_feed(const Graph& g, uint64_t seed) {
  auto cons = g.consumers();
  std::vector<InputMap> pool;
  for (int b = 0; b < kSyntheticPool; ++b) pool.push_back(synthetic_batch(g, cons, seed, b));
  return std::make_unique<PoolFeed>(std::move(pool));
}

std::unique_ptr<DataFeed> make_npy_feed(const Graph& g, const std::string& dir) {
  return std::make_unique<NpyFeed>(g, dir);
}

}  // namespace memplan
