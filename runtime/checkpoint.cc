#include "runtime/checkpoint.h"

#include <cstring>
#include <map>

#include "compiler/plan.h"
#include "runtime/executor.h"

namespace memplan {

namespace {

constexpr char kMagic[8] = {'M', 'E', 'M', 'P', 'L', 'C', 'K', '\n'};
constexpr uint32_t kMaxName = 1u << 16;
constexpr uint32_t kMaxRank = 64;

uint64_t fnv1a(const char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<uint8_t>(p[i]);
    h *= 1099511628211ull;
  }
  return h;
}

void put(std::string& o, uint64_t v, int n) {
  for (int k = 0; k < n; ++k) o += static_cast<char>((v >> (8 * k)) & 0xFF);
}

class Reader {
 public:
  Reader(const std::string& b, const std::string& src) : b_(b), src_(src) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(src_ + ": checkpoint " + what);
  }
  uint64_t u(int n, const char* what) {
    if (b_.size() - pos_ < static_cast<size_t>(n)) fail(std::string("is truncated (in ") + what + ")");
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = v << 8 | static_cast<uint8_t>(b_[pos_ + k]);
    pos_ += n;
    return v;
  }
  std::string bytes(uint64_t n, const std::string& what) {
    if (b_.size() - pos_ < n) fail("is truncated (in " + what + ")");
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }

 private:
  const std::string& b_;
  const std::string& src_;
  size_t pos_ = 0;
};

}  // namespace

bool is_checkpoint(const std::string& b) {
  return b.size() >= sizeof kMagic && std::memcmp(b.data(), kMagic, sizeof kMagic) == 0;
}

std::string checkpoint_bytes(const Checkpoint& c) {
  std::string o(kMagic, sizeof kMagic);
  put(o, kCheckpointVersion, 4);
  put(o, 0, 4);  // flags, reserved
  put(o, c.step, 8);
  put(o, c.seed, 8);
  put(o, c.tensors.size(), 8);
  for (const CheckpointTensor& t : c.tensors) {
    if (static_cast<int64_t>(t.data.size()) != byte_size(t.dtype, t.shape))
      throw InternalError("checkpoint tensor '" + t.name + "' has the wrong byte count");
    put(o, t.name.size(), 4);
    o += t.name;
    std::string_view role = role_name(t.role), dt = dtype_name(t.dtype);
    put(o, role.size(), 1);
    o += role;
    put(o, dt.size(), 1);
    o += dt;
    put(o, t.shape.size(), 4);
    for (int64_t d : t.shape) put(o, static_cast<uint64_t>(d), 8);
    put(o, t.data.size(), 8);
    o.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  put(o, fnv1a(o.data(), o.size()), 8);
  return o;
}

Checkpoint parse_checkpoint(const std::string& b, const std::string& src) {
  Reader r(b, src);
  if (!is_checkpoint(b)) r.fail("has a bad magic number: not a memplan checkpoint");
  r.bytes(sizeof kMagic, "magic");
  uint32_t version = static_cast<uint32_t>(r.u(4, "version"));
  if (version != kCheckpointVersion)
    r.fail("has format version " + std::to_string(version) + "; this memplan reads version " +
           std::to_string(kCheckpointVersion));
  r.u(4, "flags");
  Checkpoint c;
  c.step = r.u(8, "step");
  c.seed = r.u(8, "seed");
  uint64_t count = r.u(8, "tensor count");
  if (count > b.size()) r.fail("claims " + std::to_string(count) + " tensors: the file is corrupt");
  std::map<std::string, int> seen;
  for (uint64_t i = 0; i < count; ++i) {
    std::string what = "tensor " + std::to_string(i);
    CheckpointTensor t;
    uint32_t nlen = static_cast<uint32_t>(r.u(4, what.c_str()));
    if (nlen == 0 || nlen > kMaxName) r.fail("has a bad name length in " + what);
    t.name = r.bytes(nlen, what);
    what = "tensor '" + t.name + "'";
    if (seen[t.name]++) r.fail("holds " + what + " twice");
    std::string role = r.bytes(r.u(1, what.c_str()), what);
    auto ro = parse_role(role);
    if (!ro || !(*ro == Role::parameter || *ro == Role::state || *ro == Role::optimizer_state))
      r.fail("gives " + what + " the bad role '" + role + "'");
    t.role = *ro;
    std::string dt = r.bytes(r.u(1, what.c_str()), what);
    auto d = parse_dtype(dt);
    if (!d) r.fail("gives " + what + " the unknown dtype '" + dt + "'");
    t.dtype = *d;
    uint32_t rank = static_cast<uint32_t>(r.u(4, what.c_str()));
    if (rank > kMaxRank) r.fail("gives " + what + " rank " + std::to_string(rank));
    for (uint32_t k = 0; k < rank; ++k) {
      uint64_t dim = r.u(8, what.c_str());
      if (dim > (uint64_t{1} << 62)) r.fail("gives " + what + " a bad dimension");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    int64_t need = 0;
    try {
      need = byte_size(t.dtype, t.shape);
    } catch (const Error& e) {
      r.fail("gives " + what + " a shape that is too large: " + e.what());
    }
    uint64_t n = r.u(8, what.c_str());
    if (n != static_cast<uint64_t>(need))
      r.fail("gives " + what + " " + std::to_string(n) + " data bytes but " + dt +
             shape_str(t.shape) + " needs " + std::to_string(need));
    std::string data = r.bytes(n, what);
    t.data.assign(data.begin(), data.end());
    c.tensors.push_back(std::move(t));
  }
  size_t body = r.pos();
  uint64_t sum = r.u(8, "checksum");
  if (sum != fnv1a(b.data(), body)) r.fail("is corrupt (checksum mismatch)");
  if (r.left() != 0) r.fail("has " + std::to_string(r.left()) + " unexpected bytes at its end");
  return c;
}

Checkpoint read_checkpoint(const std::string& path) { return parse_checkpoint(read_file(path), path); }

void write_checkpoint(const std::string& path, const Checkpoint& c) {
  write_file_atomic(path, checkpoint_bytes(c));
}

std::vector<TensorId> checkpoint_tensors(const Graph& g) {
  std::vector<TensorId> r;
  for (uint32_t i = 0; i < g.num_tensors(); ++i) {
    const Tensor& t = g.tensor(TensorId(i));
    if (t.producer.valid()) continue;
    if (t.role == Role::parameter || t.role == Role::state || t.role == Role::optimizer_state)
      r.push_back(TensorId(i));
  }
  return r;
}

Checkpoint capture_checkpoint(const Executor& ex, uint64_t seed) {
  Checkpoint c;
  c.step = ex.step_count();
  c.seed = seed;
  const Graph& g = ex.graph();
  for (TensorId id : checkpoint_tensors(g)) {
    const Tensor& t = g.tensor(id);
    c.tensors.push_back({t.name, t.role, t.dtype, t.shape, ex.read(t.name)});
  }
  return c;
}

void restore_checkpoint(Executor& ex, const Checkpoint& c, const std::string& src,
                        bool restore_step, bool optimizer_state_optional) {
  const Graph& g = ex.graph();
  std::map<std::string, TensorId> wanted;
  for (TensorId id : checkpoint_tensors(g)) wanted.emplace(g.tensor(id).name, id);
  std::map<std::string, const CheckpointTensor*> have;
  for (const CheckpointTensor& t : c.tensors) {
    auto it = wanted.find(t.name);
    if (it == wanted.end())
      throw Error(src + ": checkpoint tensor '" + t.name +
                  "' is not a parameter, state or optimizer-state tensor of the plan; was the "
                  "checkpoint written for another model or optimizer?");
    const Tensor& x = g.tensor(it->second);
    if (x.dtype != t.dtype || x.shape != t.shape)
      throw Error(src + ": checkpoint tensor '" + t.name + "' is " +
                  std::string(dtype_name(t.dtype)) + shape_str(t.shape) + " but the plan has " +
                  std::string(dtype_name(x.dtype)) + shape_str(x.shape));
    have.emplace(t.name, &t);
  }
  for (const auto& [name, id] : wanted) {
    if (have.count(name)) continue;
    if (optimizer_state_optional && g.tensor(id).role != Role::parameter) continue;
    throw Error(src + ": checkpoint has no tensor '" + name + "' (" +
                std::string(role_name(g.tensor(id).role)) + ") that the plan needs");
  }
  for (const auto& [name, t] : have) ex.write(name, t->data);
  if (restore_step) ex.set_step_count(c.step);
}

}  // namespace memplan
