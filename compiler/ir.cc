#include "compiler/ir.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>
#include <set>

namespace memplan {

// ---------------------------------------------------------------- dtypes

namespace {
struct DTypeInfo {
  DType d;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::f32, "f32", 4}, {DType::f16, "f16", 2}, {DType::bf16, "bf16", 2},
    {DType::f64, "f64", 8}, {DType::i64, "i64", 8}, {DType::i32, "i32", 4},
    {DType::i8, "i8", 1},   {DType::u8, "u8", 1},   {DType::boolean, "bool", 1},
};
constexpr std::string_view kRoles[] = {"input",      "parameter", "state",          "constant",
                                       "activation", "gradient",  "optimizer_state"};
}  // namespace

size_t dtype_size(DType d) { return kDTypes[static_cast<int>(d)].size; }
std::string_view dtype_name(DType d) { return kDTypes[static_cast<int>(d)].name; }
std::optional<DType> parse_dtype(std::string_view s) {
  for (const auto& i : kDTypes)
    if (i.name == s) return i.d;
  return std::nullopt;
}
bool is_float(DType d) {
  return d == DType::f32 || d == DType::f16 || d == DType::bf16 || d == DType::f64;
}
bool is_integer(DType d) {
  return d == DType::i64 || d == DType::i32 || d == DType::i8 || d == DType::u8;
}

std::string_view role_name(Role r) { return kRoles[static_cast<int>(r)]; }
std::optional<Role> parse_role(std::string_view s) {
  for (size_t i = 0; i < std::size(kRoles); ++i)
    if (kRoles[i] == s) return static_cast<Role>(i);
  return std::nullopt;
}

// ---------------------------------------------------------------- shapes

int64_t num_elements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("negative dimension " + std::to_string(d) + " in shape " + shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("element count of shape " + shape_str(s) + " overflows 64 bits");
    n *= d;
  }
  return n;
}

int64_t byte_size(DType d, const Shape& s) {
  int64_t n = num_elements(s);
  int64_t e = static_cast<int64_t>(dtype_size(d));
  if (n > std::numeric_limits<int64_t>::max() / e)
    throw Error("byte size of " + std::string(dtype_name(d)) + shape_str(s) + " overflows 64 bits");
  return n * e;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ",";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

bool Tensor::has_symbolic_dims() const {
  return std::any_of(sym.begin(), sym.end(), [](const std::string& x) { return !x.empty(); });
}

// ---------------------------------------------------------------- attributes

std::string node_desc(const Node& n) { return "node '" + n.name + "' (" + n.op + ")"; }

namespace {
[[noreturn]] void bad_attr(const Node& n, const std::string& k, const char* want) {
  throw Error(node_desc(n) + ": attribute '" + k + "' must be " + want);
}
}  // namespace

int64_t attr_int(const Node& n, const std::string& k, int64_t dflt) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end()) return dflt;
  if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
  bad_attr(n, k, "an integer");
}
double attr_float(const Node& n, const std::string& k, double dflt) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end()) return dflt;
  if (auto* v = std::get_if<double>(&it->second)) return *v;
  if (auto* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
  bad_attr(n, k, "a float");
}
std::string attr_str(const Node& n, const std::string& k, const std::string& dflt) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end()) return dflt;
  if (auto* v = std::get_if<std::string>(&it->second)) return *v;
  bad_attr(n, k, "a string");
}
std::vector<int64_t> attr_ints(const Node& n, const std::string& k, const std::vector<int64_t>& dflt) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end()) return dflt;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  if (auto* v = std::get_if<std::vector<double>>(&it->second); v && v->empty()) return {};
  bad_attr(n, k, "a list of integers");
}
std::vector<double> attr_floats(const Node& n, const std::string& k, const std::vector<double>& dflt) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end()) return dflt;
  if (auto* v = std::get_if<std::vector<double>>(&it->second)) return *v;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second))
    return std::vector<double>(v->begin(), v->end());
  bad_attr(n, k, "a list of floats");
}

// ---------------------------------------------------------------- graph

TensorId Graph::add_tensor(Tensor t) {
  if (by_name_.count(t.name)) throw Error("duplicate tensor name '" + t.name + "'");
  TensorId id(static_cast<uint32_t>(tensors_.size()));
  by_name_.emplace(t.name, id.v);
  tensors_.push_back(std::move(t));
  return id;
}

NodeId Graph::add_node(Node n) {
  NodeId id(static_cast<uint32_t>(nodes_.size()));
  for (TensorId o : n.outputs) {
    if (!o.valid()) continue;
    Tensor& t = tensor(o);
    if (t.producer.valid())
      throw Error("tensor '" + t.name + "' is produced by both " + node_desc(node(t.producer)) +
                  " and " + node_desc(n));
    t.producer = id;
  }
  nodes_.push_back(std::move(n));
  return id;
}

std::optional<TensorId> Graph::find_tensor(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return std::nullopt;
  return TensorId(it->second);
}

void Graph::rename_tensor(TensorId id, std::string new_name) {
  Tensor& t = tensor(id);
  if (t.name == new_name) return;
  if (by_name_.count(new_name)) throw Error("duplicate tensor name '" + new_name + "'");
  by_name_.erase(t.name);
  by_name_.emplace(new_name, id.v);
  t.name = std::move(new_name);
}

std::vector<std::vector<NodeId>> Graph::consumers() const {
  std::vector<std::vector<NodeId>> c(tensors_.size());
  for (uint32_t i = 0; i < nodes_.size(); ++i)
    for (TensorId in : nodes_[i].inputs)
      if (in.valid()) c[in.v].push_back(NodeId(i));
  return c;
}

std::vector<NodeId> Graph::topo_order() const {
  // Kahn's algorithm with a min-heap on the stored index: keeps stored order
  // whenever it is already topological.
  auto preds = node_predecessors(*this);
  std::vector<std::vector<uint32_t>> succ(nodes_.size());
  std::vector<int> pending(nodes_.size(), 0);
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    pending[i] = static_cast<int>(preds[i].size());
    for (NodeId p : preds[i]) succ[p.v].push_back(i);
  }
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> ready;
  for (uint32_t i = 0; i < nodes_.size(); ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<NodeId> order;
  order.reserve(nodes_.size());
  while (!ready.empty()) {
    uint32_t n = ready.top();
    ready.pop();
    order.push_back(NodeId(n));
    for (uint32_t c : succ[n])
      if (--pending[c] == 0) ready.push(c);
  }
  if (order.size() != nodes_.size()) {
    for (uint32_t i = 0; i < nodes_.size(); ++i)
      if (pending[i] > 0)
        throw Error("graph has a cycle through " + node_desc(nodes_[i]));
  }
  return order;
}

void Graph::remove_nodes_and_compact(const std::vector<NodeId>& dead) {
  std::vector<char> node_dead(nodes_.size(), 0);
  for (NodeId n : dead) node_dead.at(n.v) = 1;
  std::vector<char> used(tensors_.size(), 0);
  for (TensorId t : inputs) used[t.v] = 1;
  for (TensorId t : outputs) used[t.v] = 1;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (node_dead[i]) continue;
    for (TensorId t : nodes_[i].inputs)
      if (t.valid()) used[t.v] = 1;
    for (TensorId t : nodes_[i].outputs)
      if (t.valid()) used[t.v] = 1;
  }
  std::vector<uint32_t> tmap(tensors_.size(), TensorId::kInvalid);
  std::vector<Tensor> nt;
  for (uint32_t i = 0; i < tensors_.size(); ++i) {
    if (!used[i]) continue;
    tmap[i] = static_cast<uint32_t>(nt.size());
    nt.push_back(std::move(tensors_[i]));
    nt.back().producer = NodeId();
  }
  auto remap = [&](TensorId t) { return t.valid() ? TensorId(tmap[t.v]) : t; };
  std::vector<Node> nn;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (node_dead[i]) continue;
    Node n = std::move(nodes_[i]);
    for (auto& t : n.inputs) t = remap(t);
    for (auto& t : n.outputs) t = remap(t);
    NodeId id(static_cast<uint32_t>(nn.size()));
    for (TensorId o : n.outputs)
      if (o.valid()) nt[o.v].producer = id;
    nn.push_back(std::move(n));
  }
  for (auto& t : inputs) t = remap(t);
  for (auto& t : outputs) t = remap(t);
  tensors_ = std::move(nt);
  nodes_ = std::move(nn);
  by_name_.clear();
  for (uint32_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
}

void Graph::sort_topologically() {
  std::vector<NodeId> order = topo_order();
  std::vector<Node> nn;
  nn.reserve(nodes_.size());
  for (NodeId id : order) nn.push_back(std::move(nodes_[id.v]));
  nodes_ = std::move(nn);
  for (auto& t : tensors_) t.producer = NodeId();
  for (uint32_t i = 0; i < nodes_.size(); ++i)
    for (TensorId o : nodes_[i].outputs)
      if (o.valid()) tensors_[o.v].producer = NodeId(i);
}

namespace {
struct AliasEntry {
  std::string_view op;
  int out;
  int in;
  AliasKind kind;
};
constexpr AliasEntry kAliases[] = {
    {"Reshape", 0, 0, AliasKind::view},           {"Flatten", 0, 0, AliasKind::view},
    {"Squeeze", 0, 0, AliasKind::view},           {"Unsqueeze", 0, 0, AliasKind::view},
    {"Identity", 0, 0, AliasKind::view},          {"SGDUpdate", 0, 0, AliasKind::inplace},
    {"SGDUpdate", 1, 2, AliasKind::inplace},      {"AdamUpdate", 0, 0, AliasKind::inplace},
    {"AdamUpdate", 1, 2, AliasKind::inplace},     {"AdamUpdate", 2, 3, AliasKind::inplace},
    {"BatchNormTraining", 1, 3, AliasKind::inplace}, {"BatchNormTraining", 2, 4, AliasKind::inplace},
    {"GradAccumulate", 0, 0, AliasKind::inplace}, {"StepIncrement", 0, 0, AliasKind::inplace},
    {"LossScaleUpdate", 0, 0, AliasKind::inplace}, {"LossScaleUpdate", 1, 1, AliasKind::inplace},
};
}  // namespace

OutputAlias output_alias(std::string_view op, size_t output_slot) {
  // Variadic: UnscaleGradients(scale, g1..gn) -> (found_inf, g1'..gn'), g_k' in place of g_k.
  if (op == "UnscaleGradients" && output_slot >= 1)
    return {AliasKind::inplace, static_cast<int>(output_slot)};
  for (const AliasEntry& e : kAliases)
    if (e.op == op && static_cast<size_t>(e.out) == output_slot) return {e.kind, e.in};
  return {};
}

bool is_view_op(std::string_view op) { return output_alias(op, 0).kind == AliasKind::view; }

namespace {
/// The alias of tensor t through its producer, if any: (kind, input tensor).
std::pair<AliasKind, TensorId> producer_alias(const Graph& g, TensorId t) {
  const Tensor& x = g.tensor(t);
  if (!x.producer.valid()) return {AliasKind::none, TensorId()};
  const Node& n = g.node(x.producer);
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    if (n.outputs[k] != t) continue;
    OutputAlias a = output_alias(n.op, k);
    if (a.kind == AliasKind::none || a.input < 0 || static_cast<size_t>(a.input) >= n.inputs.size() ||
        !n.inputs[a.input].valid())
      return {AliasKind::none, TensorId()};
    return {a.kind, n.inputs[a.input]};
  }
  return {AliasKind::none, TensorId()};
}
}  // namespace

TensorId alias_root(const Graph& g, TensorId t) {
  for (size_t hops = 0; hops <= g.num_tensors(); ++hops) {
    auto [kind, in] = producer_alias(g, t);
    if (kind == AliasKind::none) return t;
    t = in;
  }
  throw Error("alias cycle through tensor '" + g.tensor(t).name + "'");
}

std::vector<std::vector<NodeId>> node_predecessors(const Graph& g) {
  const size_t nn = g.num_nodes();
  std::vector<std::vector<NodeId>> preds(nn);
  for (uint32_t i = 0; i < nn; ++i)
    for (TensorId in : g.node(NodeId(i)).inputs)
      if (in.valid() && g.tensor(in).producer.valid()) preds[i].push_back(g.tensor(in).producer);
  // In-place writes: the readers of the overwritten version (the input tensor
  // and every view of it) must run first.
  bool any_inplace = false;
  for (uint32_t i = 0; i < nn && !any_inplace; ++i)
    for (size_t k = 0; k < g.node(NodeId(i)).outputs.size(); ++k)
      if (output_alias(g.node(NodeId(i)).op, k).kind == AliasKind::inplace) any_inplace = true;
  if (any_inplace) {
    auto cons = g.consumers();
    // Readers of a tensor's value: its consumers plus the readers of its views.
    std::function<void(TensorId, std::vector<NodeId>&)> readers = [&](TensorId t,
                                                                       std::vector<NodeId>& out) {
      for (NodeId c : cons[t.v]) {
        out.push_back(c);
        const Node& cn = g.node(c);
        for (size_t k = 0; k < cn.outputs.size(); ++k)
          if (cn.outputs[k].valid() && output_alias(cn.op, k).kind == AliasKind::view &&
              cn.inputs[output_alias(cn.op, k).input] == t)
            readers(cn.outputs[k], out);
      }
    };
    for (uint32_t i = 0; i < nn; ++i) {
      const Node& n = g.node(NodeId(i));
      for (size_t k = 0; k < n.outputs.size(); ++k) {
        OutputAlias a = output_alias(n.op, k);
        if (a.kind != AliasKind::inplace || !n.outputs[k].valid()) continue;
        std::vector<NodeId> rs;
        readers(n.inputs.at(a.input), rs);
        for (NodeId r : rs)
          if (r.v != i) preds[i].push_back(r);
      }
    }
  }
  for (auto& p : preds) {
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
  }
  return preds;
}

// ---------------------------------------------------------------- verify

void verify(const Graph& g, const VerifyOptions& opts) {
  const size_t nt = g.num_tensors();
  auto check_id = [&](TensorId t, const Node& n) {
    if (t.valid() && t.v >= nt)
      throw Error(node_desc(n) + " refers to tensor id " + std::to_string(t.v) + " out of range");
  };
  std::set<std::string> names;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(NodeId(i));
    if (n.name.empty()) throw Error("node #" + std::to_string(i) + " (" + n.op + ") has no name");
    if (!names.insert(n.name).second) throw Error("duplicate node name '" + n.name + "'");
    for (TensorId t : n.inputs) check_id(t, n);
    for (TensorId t : n.outputs) {
      check_id(t, n);
      if (t.valid() && g.tensor(t).producer != NodeId(i))
        throw Error(node_desc(n) + " writes tensor '" + g.tensor(t).name +
                    "' whose producer is recorded as another node");
    }
  }
  for (TensorId t : g.inputs)
    if (t.v >= nt || g.tensor(t).role != Role::input)
      throw Error("graph input #" + std::to_string(t.v) + " is not a tensor with role input");
  for (TensorId t : g.outputs)
    if (t.v >= nt) throw Error("graph output id out of range");
  for (uint32_t i = 0; i < nt; ++i) {
    const Tensor& t = g.tensor(TensorId(i));
    const bool produced_role = t.role == Role::activation || t.role == Role::gradient;
    if (produced_role && !t.producer.valid())
      throw Error("tensor '" + t.name + "' is read but never written: no node produces it and it "
                  "is not a graph input or initializer");
    if (!produced_role && t.producer.valid() &&
        producer_alias(g, TensorId(i)).first != AliasKind::inplace)
      throw Error("tensor '" + t.name + "' has role " + std::string(role_name(t.role)) +
                  " but is produced by " + node_desc(g.node(t.producer)));
    if (t.producer.valid() && t.producer.v >= g.num_nodes())
      throw Error("tensor '" + t.name + "' has an out-of-range producer");
    if (opts.require_shapes) {
      if (!t.shape_known || t.has_symbolic_dims())
        throw Error("tensor '" + t.name + "' has no static shape");
      (void)t.bytes();  // throws on negative dims or overflow
    }
  }
  (void)g.topo_order();  // throws on a cycle
}

}  // namespace memplan
