// Precision per op: see passes/precision.h for the policy.
//
//  1. Visit nodes in topological order, keeping for every f32 tensor its low
//     version (a Cast output or the low output of a lowered producer).
//  2. Decide per node (rule 1 or 2 of the header); a lowered node reads the
//     low versions of its float inputs (creating casts on demand) and writes
//     new low outputs; its old f32 outputs are re-produced by back casts.
//  3. Store frozen parameters in low precision where every reader is low.
//  4. Drop back casts nobody reads, compact, re-check every lowered node
//     against the registry's type inference.
#include "passes/precision.h"

#include <algorithm>
#include <optional>
#include <regex>
#include <set>

#include "compiler/cost_model.h"
#include "compiler/dtype_codec.h"
#include "compiler/low_precision.h"
#include "compiler/op_registry.h"
#include "passes/precision_select.h"

namespace memplan {

namespace {

/// Ops of rule 2: cheap elementwise math and data movement.
bool is_low_op(std::string_view op) {
  static constexpr std::string_view kLowOps[] = {
      "Add",  "Concat",  "Flatten", "Identity", "LeakyRelu", "Mul",       "Neg",      "MaxPool",
      "Relu", "Reshape", "Split",   "Squeeze",  "Sub",       "Transpose", "Unsqueeze"};
  return std::find(std::begin(kLowOps), std::end(kLowOps), op) != std::end(kLowOps);
}

class Lowering {
 public:
  Lowering(Graph& g, const PrecisionOptions& o) : g_(g), o_(o), low_name_(dtype_name(o.low)) {}

  PrecisionStats run() {
    low_of_.assign(g_.num_tensors(), TensorId());
    produced_low_.assign(g_.num_tensors(), 0);
    for (NodeId id : g_.topo_order())
      visit(id);
    store_frozen_weights();
    finish();
    return std::move(st_);
  }

 private:
  bool float_slot(TensorId t) const { return t.valid() && is_float(g_.tensor(t).dtype); }

  /// Rule 1, 2 or 2b of the header; "" when the node stays as it is.
  std::string reason(const Node& n) const {
    for (TensorId t : n.inputs)
      if (float_slot(t) && g_.tensor(t).dtype != DType::f32) return "";
    for (TensorId t : n.outputs)
      if (float_slot(t) && g_.tensor(t).dtype != DType::f32) return "";
    if (is_matmul_class(n.op)) {
      if (o_.only_nodes && !o_.only_nodes->count(n.name)) return "";
      bool any =
          std::any_of(n.inputs.begin(), n.inputs.end(), [&](TensorId t) { return float_slot(t); });
      return any ? "matmul-class" : "";
    }
    if (n.op == "BatchNormalization") {
      // Rule 2b: X and Y low when X is a lowered op's output; the rest stays f32.
      TensorId x = n.inputs[0];
      return float_slot(x) && produced_low_[x.v] ? "input already " + low_name_ + ", statistics f32"
                                                 : "";
    }
    if (!is_low_op(n.op)) return "";
    bool fed_low = false;
    for (TensorId t : n.inputs) {
      if (!float_slot(t)) continue;
      fed_low |= produced_low_[t.v] != 0;
      Role r = g_.tensor(t).role;
      if (!produced_low_[t.v] && r != Role::parameter && r != Role::constant) return "";
    }
    return fed_low ? "input already " + low_name_ : "";
  }

  /// The low version of f32 tensor t, inserting "<t>/to_<low>" if needed.
  TensorId low_version(TensorId t) {
    if (low_of_[t.v].valid()) return low_of_[t.v];
    const Tensor& src = g_.tensor(t);
    Tensor c;
    c.name = src.name + "/to_" + low_name_;
    c.dtype = o_.low;
    c.shape = src.shape;
    c.shape_known = true;
    TensorId ct = add_tensor(std::move(c));
    Node cast;
    cast.op = "Cast";
    cast.name = g_.tensor(ct).name;
    cast.inputs = {t};
    cast.outputs = {ct};
    cast.attrs["to"] = low_name_;
    casts_.insert(cast.name);
    g_.add_node(std::move(cast));
    low_of_[t.v] = ct;
    return ct;
  }

  TensorId add_tensor(Tensor t) {
    TensorId id = g_.add_tensor(std::move(t));
    low_of_.resize(g_.num_tensors());
    produced_low_.resize(g_.num_tensors(), 0);
    return id;
  }

  void visit(NodeId id) {
    std::string why = reason(g_.node(id));
    if (why.empty()) return;
    // BatchNormalization (rule 2b) lowers only X and Y; every other op all its float slots.
    const bool norm = g_.node(id).op == "BatchNormalization";
    const size_t nin = norm ? 1 : g_.node(id).inputs.size();
    const size_t nout = norm ? 1 : g_.node(id).outputs.size();
    for (size_t i = 0; i < nin; ++i) {
      TensorId t = g_.node(id).inputs[i];
      if (float_slot(t)) {
        TensorId l = low_version(t);
        g_.node(id).inputs[i] = l;
      }
    }
    for (size_t k = 0; k < nout; ++k) {
      TensorId out = g_.node(id).outputs[k];
      if (!float_slot(out)) continue;
      Tensor l;
      l.name = g_.tensor(out).name + "/" + low_name_;
      l.dtype = o_.low;
      l.shape = g_.tensor(out).shape;
      l.shape_known = true;
      TensorId lt = add_tensor(std::move(l));
      g_.tensor(lt).producer = id;
      g_.node(id).outputs[k] = lt;
      g_.tensor(out).producer = NodeId(); // re-produced by the back cast
      Node back;
      back.op = "Cast";
      back.name = g_.tensor(out).name + "/to_f32";
      back.inputs = {lt};
      back.outputs = {out};
      back.attrs["to"] = std::string("f32");
      casts_.insert(back.name);
      back_casts_.insert(back.name);
      g_.add_node(std::move(back));
      low_of_[out.v] = lt;
      produced_low_[out.v] = 1;
    }
    lowered_.push_back(id);
    const Node& n = g_.node(id);
    st_.decisions.push_back(n.op + " '" + n.name + "': " + low_name_ + " (" + why + ")");
  }

  /// Step 3: a frozen parameter whose only reader is its cast is stored low.
  void store_frozen_weights() {
    std::optional<std::regex> re;
    if (!o_.frozen.empty()) {
      try {
        re.emplace(o_.frozen, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw Error("precision: frozen-weight pattern '" + o_.frozen +
                    "' is not a valid regular expression: " + e.what());
      }
    }
    const auto consumers = g_.consumers();
    for (uint32_t i = 0; i < consumers.size(); ++i) {
      TensorId p(i);
      Tensor& t = g_.tensor(p);
      if (t.role != Role::parameter || !low_of_[i].valid() || t.dtype != DType::f32) continue;
      if (o_.training && !(re && std::regex_search(t.name, *re))) continue;
      TensorId cast_out = low_of_[i];
      if (consumers[i].size() != 1 || g_.tensor(cast_out).producer != consumers[i][0]) continue;
      if (std::find(g_.outputs.begin(), g_.outputs.end(), p) != g_.outputs.end()) continue;
      if (t.data) {
        std::vector<uint8_t> bytes;
        bytes.reserve(static_cast<size_t>(t.numel()) * dtype_size(o_.low));
        for (int64_t k = 0; k < t.numel(); ++k)
          encode_float(o_.low, decode_float(DType::f32, t.data->data(), static_cast<size_t>(k)),
                       bytes);
        t.data = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
      }
      t.dtype = o_.low;
      for (NodeId r : consumers[cast_out.v])
        for (TensorId& in : g_.node(r).inputs)
          if (in == cast_out) in = p;
      dead_.push_back(consumers[i][0]);
      low_of_[i] = p;
      ++st_.frozen_weights_lowered;
      st_.decisions.push_back("parameter '" + t.name + "': stored in " + low_name_ + " (frozen)");
    }
  }

  void finish() {
    const auto consumers = g_.consumers();
    for (uint32_t k = 0; k < g_.num_nodes(); ++k) {
      const Node& n = g_.node(NodeId(k));
      if (!back_casts_.count(n.name)) continue;
      TensorId out = n.outputs[0];
      bool is_output = std::find(g_.outputs.begin(), g_.outputs.end(), out) != g_.outputs.end();
      if (consumers[out.v].empty() && !is_output) dead_.push_back(NodeId(k));
    }
    // Names survive compaction; ids do not.
    std::set<std::string> lowered;
    for (NodeId id : lowered_)
      lowered.insert(g_.node(id).name);
    std::sort(dead_.begin(), dead_.end());
    dead_.erase(std::unique(dead_.begin(), dead_.end()), dead_.end());
    if (lowered.empty() && dead_.empty()) return; // nothing eligible: g is untouched
    g_.remove_nodes_and_compact(dead_);
    g_.sort_topologically();
    st_.ops_lowered = static_cast<int64_t>(lowered.size());
    std::vector<char> is_lowered(g_.num_nodes(), 0);
    for (uint32_t k = 0; k < g_.num_nodes(); ++k) {
      const Node& n = g_.node(NodeId(k));
      if (lowered.count(n.name)) is_lowered[k] = 1;
      if (casts_.count(n.name)) {
        ++st_.casts_inserted;
        st_.cast_bytes += g_.tensor(n.outputs[0]).bytes();
      }
      if (!is_lowered[k]) continue;
      std::vector<TensorType> types = infer_node(g_, n);
      for (size_t s = 0; s < n.outputs.size(); ++s) {
        if (!n.outputs[s].valid()) continue;
        const Tensor& t = g_.tensor(n.outputs[s]);
        if (types[s].dtype != t.dtype || types[s].shape != t.shape)
          throw InternalError("precision: lowered " + node_desc(n) + " infers " +
                              std::string(dtype_name(types[s].dtype)) + shape_str(types[s].shape) +
                              " for '" + t.name + "' but the pass wrote " +
                              std::string(dtype_name(t.dtype)) + shape_str(t.shape));
      }
    }
    verify(g_);
  }

  Graph& g_;
  const PrecisionOptions& o_;
  std::string low_name_;
  std::vector<TensorId> low_of_;   // per tensor: its low version, if any
  std::vector<char> produced_low_; // per f32 tensor: its low version is a lowered op's output
  std::vector<NodeId> lowered_;
  std::vector<NodeId> dead_;
  std::set<std::string> casts_, back_casts_; // names of inserted cast nodes
  PrecisionStats st_;
};

} // namespace

int64_t mark_native_low_precision(Graph& g) {
  int64_t marked = 0;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    Node& n = g.node(NodeId(i));
    if (!op_runs_low_precision_on_gpu(n.op)) continue;
    if (low_precision_staging_bytes(g, n) == 0) continue;
    n.attrs["native_low_precision"] = int64_t{1};
    ++marked;
  }
  return marked;
}

PrecisionStats lower_precision(Graph& g, const PrecisionOptions& o) {
  if (o.low != DType::bf16 && o.low != DType::f16)
    throw Error("precision: the low-precision dtype must be bf16 or f16, not " +
                std::string(dtype_name(o.low)));
  if (o.only_nodes) {
    std::set<std::string> matmuls;
    for (const Node& n : g.nodes())
      if (is_matmul_class(n.op)) matmuls.insert(n.name);
    for (const std::string& name : *o.only_nodes)
      if (!matmuls.count(name))
        throw Error("precision: node '" + name +
                    "' is not a MatMul, Gemm, Conv or ConvTranspose node of the graph; only those "
                    "can be chosen for low precision");
  }
  if (o.select == PrecisionSelect::all) return Lowering(g, o).run();
  if (!o.device)
    throw Error("precision: the cost-aware selection (select = cost) needs a device profile");
  PrecisionSelection sel = select_low_precision_ops(g, o, *o.device);
  PrecisionOptions chosen = o;
  chosen.select = PrecisionSelect::all;
  chosen.only_nodes = sel.low;
  PrecisionStats st = Lowering(g, chosen).run();
  st.ops_kept_f32 = static_cast<int64_t>(sel.kept_f32.size());
  st.est_seconds_f32 = sel.seconds_f32;
  st.est_seconds_all_low = sel.seconds_all_low;
  st.est_seconds = sel.seconds;
  for (const std::string& d : sel.decisions)
    st.decisions.push_back(d);
  return st;
}

} // namespace memplan
