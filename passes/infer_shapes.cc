#include "passes/infer_shapes.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "compiler/const_eval.h"
#include "compiler/op_registry.h"

namespace memplan {

using Bytes = std::shared_ptr<const std::vector<uint8_t>>;

struct FoldCache::Impl {
  struct Entry {
    std::string op;
    int64_t opset = 0;
    Attrs attrs;
    std::vector<TensorType> in_types;  // dtype i8 + empty shape marks an absent input
    std::vector<Bytes> in_data;        // null where only the shape matters
    std::optional<std::vector<Bytes>> out;  // nullopt: const_eval declined
  };
  std::unordered_multimap<uint64_t, Entry> entries;
  int64_t hits = 0;
};
FoldCache::FoldCache() : impl(std::make_unique<Impl>()) {}
FoldCache::~FoldCache() = default;
int64_t FoldCache::hits() const { return impl->hits; }

namespace {

uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ULL + (h >> 29); }

/// The fold key of n: its hash, and an Entry without outputs to compare.
std::pair<uint64_t, FoldCache::Impl::Entry> fold_key(const Graph& g, const Node& n) {
  FoldCache::Impl::Entry e{n.op, g.opset, n.attrs, {}, {}, std::nullopt};
  const bool shapes_only = folds_from_shapes(n.op);
  uint64_t h = mix(std::hash<std::string>{}(n.op), static_cast<uint64_t>(g.opset));
  h = mix(h, n.attrs.size());
  for (TensorId in : n.inputs) {
    if (!in.valid()) {
      e.in_types.push_back({DType::i8, {}});
      e.in_data.push_back(nullptr);
      h = mix(h, 0xab5e47ULL);
      continue;
    }
    const Tensor& t = g.tensor(in);
    e.in_types.push_back({t.dtype, t.shape});
    h = mix(h, static_cast<uint64_t>(t.dtype));
    for (int64_t d : t.shape) h = mix(h, static_cast<uint64_t>(d));
    e.in_data.push_back(shapes_only ? nullptr : t.data);
    if (!shapes_only)
      h = mix(h, std::hash<std::string_view>{}(std::string_view(
                     reinterpret_cast<const char*>(t.data->data()), t.data->size())));
  }
  return {h, std::move(e)};
}

bool same_bytes(const Bytes& a, const Bytes& b) {
  if (a == b) return true;
  if (!a || !b || a->size() != b->size()) return false;
  return a->empty() || std::memcmp(a->data(), b->data(), a->size()) == 0;
}

bool same_key(const FoldCache::Impl::Entry& a, const FoldCache::Impl::Entry& b) {
  if (a.op != b.op || a.opset != b.opset || a.in_types != b.in_types || a.attrs != b.attrs)
    return false;
  for (size_t i = 0; i < a.in_data.size(); ++i)
    if (!same_bytes(a.in_data[i], b.in_data[i])) return false;
  return true;
}

/// const_eval through the cache.
std::optional<std::vector<Bytes>> fold(const Graph& g, const Node& n, const std::vector<TensorType>& types,
                        FoldCache& cache) {
  auto [h, key] = fold_key(g, n);
  auto range = cache.impl->entries.equal_range(h);
  for (auto it = range.first; it != range.second; ++it)
    if (same_key(it->second, key)) {
      ++cache.impl->hits;
      return it->second.out;
    }
  std::optional<std::vector<Bytes>> out;
  if (auto values = const_eval(g, n, types)) {
    out.emplace();
    for (std::vector<uint8_t>& bytes : *values)
      out->push_back(std::make_shared<const std::vector<uint8_t>>(std::move(bytes)));
  }
  key.out = out;
  cache.impl->entries.emplace(h, std::move(key));
  return out;
}

bool is_const_with_data(const Tensor& t) { return t.role == Role::constant && t.data != nullptr; }

/// True if every present input of n is available at compile time.
bool inputs_foldable(const Graph& g, const Node& n) {
  bool shapes_only = folds_from_shapes(n.op);
  for (TensorId in : n.inputs) {
    if (!in.valid()) continue;
    const Tensor& t = g.tensor(in);
    if (shapes_only ? !t.shape_known : !is_const_with_data(t)) return false;
  }
  return true;
}

bool fits_fold_cap(const std::vector<TensorType>& types, int64_t cap) {
  return std::all_of(types.begin(), types.end(),
                     [&](const TensorType& t) { return byte_size(t.dtype, t.shape) <= cap; });
}

}  // namespace

InferShapesStats infer_shapes(Graph& g, const InferShapesOptions& opts) {
  for (TensorId in : g.inputs) {
    const Tensor& t = g.tensor(in);
    if (!t.shape_known || t.has_symbolic_dims())
      throw Error("graph input '" + t.name + "' has no static shape; bind its dims first");
  }
  InferShapesStats stats;
  FoldCache local;
  FoldCache& cache = opts.cache ? *opts.cache : local;
  std::vector<NodeId> dead;
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    if (!find_op(n.op))
      throw Error("unsupported op '" + n.op + "' in node '" + n.name + "' (opset " +
                  std::to_string(g.opset) + "); memplan cannot plan this model until it is supported");
    std::vector<TensorType> types = infer_node(g, n);
    if (types.size() != n.outputs.size())
      throw InternalError(node_desc(n) + ": inference returned " + std::to_string(types.size()) +
                          " types for " + std::to_string(n.outputs.size()) + " outputs");
    std::optional<std::vector<Bytes>> folded;
    if (opts.fold_constants && inputs_foldable(g, n) && fits_fold_cap(types, opts.max_fold_bytes))
      folded = fold(g, n, types, cache);
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (!n.outputs[i].valid()) continue;
      Tensor& t = g.tensor(n.outputs[i]);
      t.dtype = types[i].dtype;
      t.shape = types[i].shape;
      t.sym.clear();
      t.shape_known = true;
      try {
        (void)t.bytes();  // a shape whose byte count overflows is an error here
      } catch (const Error& e) {
        throw Error(node_desc(n) + ": output '" + t.name + "': " + e.what() +
                    "; the bound dims are too large");
      }
      if (folded) {
        if (static_cast<int64_t>((*folded)[i]->size()) != t.bytes())
          throw InternalError(node_desc(n) + ": folded output " + std::to_string(i) + " has " +
                              std::to_string((*folded)[i]->size()) + " bytes, expected " +
                              std::to_string(t.bytes()));
        t.role = Role::constant;
        t.producer = NodeId();
        t.data = (*folded)[i];
      }
    }
    if (folded) dead.push_back(id);
  }
  stats.nodes_folded = static_cast<int64_t>(dead.size());
  g.remove_nodes_and_compact(dead);
  g.sort_topologically();
  stats.nodes_remaining = static_cast<int64_t>(g.num_nodes());
  verify(g, {.require_shapes = true});
  return stats;
}

}  // namespace memplan
