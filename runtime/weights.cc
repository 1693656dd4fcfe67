#include "runtime/weights.h"

#include <cmath>
#include <filesystem>
#include <numbers>
#include <fstream>
#include <set>

#include "compiler/dtype_codec.h"
#include "compiler/plan.h"
#include "python-free-frontends/onnx_external.h"
#include "python-free-frontends/onnx_importer.h"
#include "runtime/checkpoint.h"
#include "runtime/executor.h"
#include "runtime/rng.h"

namespace memplan {

namespace {

namespace fs = std::filesystem;

uint64_t name_key(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool is_norm_scale_op(const std::string& op) {
  return op == "BatchNormalization" || op == "BatchNormTraining" || op == "LayerNormalization" ||
         op == "InstanceNormalization" || op == "GroupNormalization";
}
bool is_batchnorm(const std::string& op) {
  return op == "BatchNormalization" || op == "BatchNormTraining";
}

/// How a resident tensor is read: the (node, slot) pairs of its consumers.
/// A Cast is looked through (precision lowering reads a weight through its
/// "<w>/to_bf16" cast), so the fan-in is the same as in the f32 plan.
struct Use {
  const Node* node;
  size_t slot;
};
std::vector<Use> uses_of(const Graph& g, TensorId t, int depth = 0) {
  std::vector<Use> r;
  for (const Node& n : g.nodes())
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (n.inputs[k] != t) continue;
      if (n.op == "Cast" && depth < 2 && n.outputs[0].valid()) {
        std::vector<Use> more = uses_of(g, n.outputs[0], depth + 1);
        r.insert(r.end(), more.begin(), more.end());
        continue;
      }
      r.push_back({&n, k});
    }
  return r;
}

int64_t fan_in(const Tensor& t, const std::vector<Use>& uses) {
  const Shape& s = t.shape;
  int64_t rest = 1;
  for (size_t k = 1; k < s.size(); ++k) rest *= s[k];
  for (const Use& u : uses) {
    if (u.node->op == "Conv" && u.slot == 1) return std::max<int64_t>(rest, 1);
    if (u.node->op == "MatMul" && u.slot == 1) return s[s.size() - 2];
    if (u.node->op == "Gemm" && u.slot == 1)
      return attr_int(*u.node, "transB", 0) ? s[1] : s[0];
  }
  return std::max<int64_t>(rest, 1);
}

void fill(Executor& ex, const Tensor& t, uint64_t seed, int kind, double bound) {
  // kind 0: constant `bound`; 1: U(-bound, bound); 2: N(0, 1)
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(t.bytes()));
  uint64_t stream = rng_stream(seed, 0, name_key(t.name));
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    double v = bound;
    if (kind == 1) v = (2 * rng_uniform(stream, static_cast<uint64_t>(i)) - 1) * bound;
    if (kind == 2) {  // Box-Muller from two independent uniforms
      double u1 = 1.0 - rng_uniform(stream, 2 * static_cast<uint64_t>(i));
      double u2 = rng_uniform(stream, 2 * static_cast<uint64_t>(i) + 1);
      v = std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
    }
    if (is_float(t.dtype)) encode_float(t.dtype, v, out);
    else encode_int(t.dtype, static_cast<int64_t>(v), out);
  }
  ex.write(t.name, out);
}

/// init_random's value for one state tensor: ones for BatchNorm running
/// variances, zeros otherwise.
void init_state(Executor& ex, const Graph& g, TensorId id) {
  bool var = false;
  for (const Use& u : uses_of(g, id)) {
    var |= is_batchnorm(u.node->op) && u.slot == 4;
    // The loss scale starts at LossScaleUpdate's init_scale (plans elide state data).
    if (u.node->op == "LossScaleUpdate" && u.slot == 0) {
      fill(ex, g.tensor(id), 0, 0, attr_float(*u.node, "init_scale", 65536.0));
      return;
    }
  }
  fill(ex, g.tensor(id), 0, 0, var ? 1.0 : 0.0);
}

std::vector<uint8_t> read_external(const std::string& model, const Tensor& t, const ExternalRef& r) {
  fs::path file = fs::path(model).parent_path() / r.location;
  std::string what = "parameter '" + t.name + "' of " + model;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw Error(what + ": its external data file '" + file.string() + "' does not exist");
  const int64_t need = t.bytes();
  if (r.length >= 0 && r.length != need)
    throw Error(what + ": external data length " + std::to_string(r.length) + " bytes, but " +
                std::string(dtype_name(t.dtype)) + shape_str(t.shape) + " needs " + std::to_string(need));
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  if (ec || r.offset > size || size - r.offset < need)
    throw Error(what + ": external data file '" + file.string() + "' is truncated (" +
                std::to_string(size) + " bytes; the tensor needs bytes [" + std::to_string(r.offset) +
                ", " + std::to_string(r.offset + need) + "))");
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> b(static_cast<size_t>(need));
  in.seekg(r.offset);
  in.read(reinterpret_cast<char*>(b.data()), need);
  if (!in) throw Error(what + ": read error in '" + file.string() + "'");
  return b;
}

void load_onnx(Executor& ex, const std::string& path) {
  Graph src = import_onnx_file(path).graph;
  const Graph& g = ex.graph();
  std::map<std::string, ExternalRef> ext;
  bool ext_read = false;
  for (TensorId id : checkpoint_tensors(g)) {
    const Tensor& t = g.tensor(id);
    if (t.role == Role::optimizer_state) continue;
    auto sid = src.find_tensor(t.name);
    const Tensor* s = sid ? &src.tensor(*sid) : nullptr;
    bool usable = s && !s->producer.valid() && (s->data || !s->external.empty());
    if (!usable) {
      if (t.role == Role::state) {
        init_state(ex, g, id);
        continue;
      }
      throw Error(path + ": the model has no initializer for parameter '" + t.name + "'");
    }
    // A frozen weight the precision pass stores in f16/bf16 is converted
    // from the model's f32 (round to nearest even).
    const bool lowered = s->dtype == DType::f32 && (t.dtype == DType::f16 || t.dtype == DType::bf16);
    if ((s->dtype != t.dtype && !lowered) || s->shape != t.shape)
      throw Error(path + ": initializer '" + t.name + "' is " + std::string(dtype_name(s->dtype)) +
                  shape_str(s->shape) + " but the plan has " + std::string(dtype_name(t.dtype)) +
                  shape_str(t.shape));
    std::vector<uint8_t> bytes;
    if (s->data) {
      bytes = *s->data;
    } else {
      if (!ext_read) ext = onnx_external_refs(path), ext_read = true;
      auto it = ext.find(t.name);
      if (it == ext.end()) throw Error(path + ": initializer '" + t.name + "' has no data");
      bytes = read_external(path, *s, it->second);
    }
    if (lowered) {
      std::vector<uint8_t> low;
      low.reserve(static_cast<size_t>(t.bytes()));
      for (int64_t i = 0; i < t.numel(); ++i)
        encode_float(t.dtype, decode_float(DType::f32, bytes.data(), static_cast<size_t>(i)), low);
      bytes = std::move(low);
    }
    ex.write(t.name, bytes);
  }
}

}  // namespace

void load_weights(Executor& ex, const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": weights file does not exist");
  std::string head;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the weights file");
    head.resize(8);
    in.read(head.data(), 8);
    head.resize(static_cast<size_t>(in.gcount()));
  }
  if (!is_checkpoint(head)) return load_onnx(ex, path);
  const Graph& g = ex.graph();
  for (TensorId id : checkpoint_tensors(g))
    if (g.tensor(id).role == Role::state) init_state(ex, g, id);
  restore_checkpoint(ex, read_checkpoint(path), path, /*restore_step=*/false,
                     /*optimizer_state_optional=*/true);
}

void init_random(Executor& ex, uint64_t seed) {
  const Graph& g = ex.graph();
  for (TensorId id : checkpoint_tensors(g)) {
    const Tensor& t = g.tensor(id);
    if (t.role == Role::state) {
      init_state(ex, g, id);
      continue;
    }
    if (t.role == Role::optimizer_state) {
      fill(ex, t, seed, 0, 0.0);
      continue;
    }
    std::vector<Use> uses = uses_of(g, id);
    bool embedding = false, scale = false;
    for (const Use& u : uses) {
      embedding |= u.node->op == "Gather" && u.slot == 0;
      scale |= is_norm_scale_op(u.node->op) && u.slot == 1;
    }
    if (embedding) fill(ex, t, seed, 2, 0);
    else if (t.shape.size() >= 2) fill(ex, t, seed, 1, 1.0 / std::sqrt(static_cast<double>(fan_in(t, uses))));
    else fill(ex, t, seed, 0, scale ? 1.0 : 0.0);
  }
  ex.set_step_count(0);
}

}  // namespace memplan
