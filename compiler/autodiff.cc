// The training pass (contract in autodiff.h): driver, loss selection,
// BatchNorm rewrite, outputs and pruning. Differentiation lives in
// autodiff_backward.cc, clipping and the optimizer in autodiff_optim.cc.
#include "compiler/autodiff.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <regex>

#include "compiler/autodiff_internal.h"
#include "compiler/dtype_codec.h"
#include "compiler/op_registry.h"

namespace memplan {

std::string_view optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::none:
      return "none";
    case OptimizerKind::sgd:
      return "sgd";
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
  }
  return "?";
}

namespace autodiff {

// ---------------------------------------------------------------- Builder

Builder::Builder(Graph& graph) : g(graph) {
  for (const Node& n : g.nodes())
    node_names_.insert(n.name);
}

std::string Builder::node_name(const std::string& base) {
  std::string name = base;
  for (int k = 1; node_names_.count(name); ++k)
    name = base + "." + std::to_string(k);
  node_names_.insert(name);
  return name;
}

std::string Builder::tensor_name(const std::string& base) const {
  std::string name = base;
  for (int k = 1; g.find_tensor(name); ++k)
    name = base + "." + std::to_string(k);
  return name;
}

std::vector<TensorId> Builder::emit(const std::string& op, const std::string& name,
                                    const std::vector<TensorId>& inputs, const Attrs& attrs,
                                    const std::vector<Out>& outs) {
  Node n;
  n.op = op;
  n.name = node_name(name);
  n.inputs = inputs;
  n.attrs = attrs;
  std::vector<TensorId> ids;
  for (const Out& o : outs) {
    Tensor t;
    t.name = tensor_name(o.name);
    t.role = o.role;
    ids.push_back(g.add_tensor(std::move(t)));
  }
  n.outputs = ids;
  const std::vector<TensorType> types = infer_node(g, n);
  for (size_t k = 0; k < ids.size(); ++k) {
    Tensor& t = g.tensor(ids[k]);
    t.dtype = types.at(k).dtype;
    t.shape = types.at(k).shape;
    t.shape_known = true;
  }
  g.add_node(std::move(n));
  return ids;
}

TensorId Builder::filled_constant(const std::string& name, DType d, const Shape& s, double v) {
  Tensor t;
  t.name = tensor_name(name);
  t.role = Role::constant;
  t.dtype = d;
  t.shape = s;
  t.shape_known = true;
  std::vector<uint8_t> bytes;
  for (int64_t i = 0; i < num_elements(s); ++i)
    encode_float(d, v, bytes);
  t.data = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  return g.add_tensor(std::move(t));
}

struct ZeroPool {
  std::mutex mu;
  std::unordered_map<size_t, std::weak_ptr<const std::vector<uint8_t>>> shared;
  int keepers = 0;  // live KeepZeroData scopes
  std::unordered_map<size_t, std::shared_ptr<const std::vector<uint8_t>>> kept;
};
ZeroPool& zero_pool() {
  static ZeroPool pool;
  return pool;
}

static std::shared_ptr<const std::vector<uint8_t>> shared_zeros(size_t bytes) {
  // Shared by every graph alive in the process (and kept across graphs inside
  // a KeepZeroData scope): optimizer states are zeros as large as the
  // parameters, and the budget solver builds one training graph per candidate.
  ZeroPool& p = zero_pool();
  std::lock_guard<std::mutex> lock(p.mu);
  std::weak_ptr<const std::vector<uint8_t>>& slot = p.shared[bytes];
  auto z = slot.lock();
  if (!z) {
    z = std::make_shared<const std::vector<uint8_t>>(bytes, 0);
    slot = z;
  }
  if (p.keepers > 0) p.kept.emplace(bytes, z);
  return z;
}

TensorId Builder::zero_tensor(const std::string& name, DType d, const Shape& s, Role role) {
  Tensor t;
  t.name = tensor_name(name);
  t.role = role;
  t.dtype = d;
  t.shape = s;
  t.shape_known = true;
  t.data = shared_zeros(static_cast<size_t>(t.bytes()));
  return g.add_tensor(std::move(t));
}

namespace {

// ---------------------------------------------------------------- loss

std::string type_str(const Tensor& t) {
  return std::string(dtype_name(t.dtype)) + shape_str(t.shape);
}

std::string names_of(const Graph& g, const std::vector<TensorId>& ts) {
  std::string s;
  for (TensorId t : ts)
    s += (s.empty() ? "'" : ", '") + g.tensor(t).name + "' " + type_str(g.tensor(t));
  return s;
}

bool is_scalar_float(const Tensor& t) {
  return is_float(t.dtype) && t.numel() == 1;
}

/// The model's own loss: its only scalar float output.
TensorId model_loss(const Graph& g) {
  if (g.outputs.empty()) throw Error("the model has no outputs: there is no loss to train");
  std::vector<TensorId> scalars;
  for (TensorId t : g.outputs)
    if (is_scalar_float(g.tensor(t)) &&
        std::find(scalars.begin(), scalars.end(), t) == scalars.end())
      scalars.push_back(t);
  if (scalars.size() == 1) return scalars[0];
  if (scalars.empty() && g.outputs.size() == 1)
    throw Error("the loss must be a float scalar, but the model's only output '" +
                g.tensor(g.outputs[0]).name + "' is " + type_str(g.tensor(g.outputs[0])) +
                "; build a loss on it with --loss cross-entropy|mse");
  if (scalars.empty())
    throw Error("none of the model's outputs is a float scalar loss (outputs: " +
                names_of(g, g.outputs) + "); build one with --loss cross-entropy|mse and --logits");
  throw Error(
      "several outputs could be the loss (" + names_of(g, scalars) +
      "): the model must have exactly one float scalar output, or use --loss with --logits");
}

/// The graph output named by `logits` ("" = the only output).
TensorId logits_output(const Graph& g, const TrainingOptions& o) {
  if (o.logits.empty()) {
    if (g.outputs.size() == 1) return g.outputs[0];
    throw Error("--loss " + o.loss + ": the model has " + std::to_string(g.outputs.size()) +
                " outputs (" + names_of(g, g.outputs) + "); name the logits with --logits");
  }
  for (TensorId t : g.outputs)
    if (g.tensor(t).name == o.logits) return t;
  throw Error("--logits '" + o.logits +
              "' is not an output of the model (outputs: " + names_of(g, g.outputs) + ")");
}

/// Builds the loss of opts.loss on the logits and the labels input.
TensorId built_loss(Builder& b, const TrainingOptions& o) {
  Graph& g = b.g;
  if (o.loss != "cross-entropy" && o.loss != "mse")
    throw Error("--loss must be cross-entropy or mse, got '" + o.loss + "'");
  const TensorId logits = logits_output(g, o);
  const std::string labels_name = o.labels.empty() ? "labels" : o.labels;
  TensorId labels;
  for (TensorId t : g.inputs)
    if (g.tensor(t).name == labels_name) labels = t;
  if (!labels.valid())
    throw Error("--loss " + o.loss +
                " needs the targets as a graph input, but the model has no "
                "input '" +
                labels_name + "' (inputs: " + names_of(g, g.inputs) + "); name it with --labels");
  const Tensor& lt = g.tensor(logits);
  const Tensor& yt = g.tensor(labels);
  if (!is_float(lt.dtype))
    throw Error("--loss " + o.loss + ": logits '" + lt.name + "' must be floating-point, got " +
                type_str(lt));
  if (o.loss == "cross-entropy") {
    if (!is_integer(yt.dtype))
      throw Error("--loss cross-entropy: labels '" + yt.name +
                  "' must hold class indices (an integer dtype), got " + type_str(yt));
    // F.cross_entropy defaults: mean over the batch, ignore_index -100.
    return b.emit("SoftmaxCrossEntropyLoss", "memplan/loss", {logits, labels},
                  {{"reduction", std::string("mean")}, {"ignore_index", int64_t{-100}}},
                  {{"loss", Role::activation}})[0];
  }
  if (yt.dtype != lt.dtype || yt.shape != lt.shape)
    throw Error("--loss mse: labels '" + yt.name + "' must have the logits' type " + type_str(lt) +
                ", got " + type_str(yt));
  // F.mse_loss (mean): ReduceMean((logits - labels)^2) over every axis.
  TensorId d = b.emit("Sub", "memplan/loss/diff", {logits, labels}, {},
                      {{"memplan/loss/diff", Role::activation}})[0];
  TensorId sq = b.emit("Mul", "memplan/loss/square", {d, d}, {},
                       {{"memplan/loss/square", Role::activation}})[0];
  return b.emit("ReduceMean", "memplan/loss", {sq}, {{"keepdims", int64_t{0}}},
                {{"loss", Role::activation}})[0];
}

// ---------------------------------------------------------------- BatchNorm

bool is_training_bn(const Graph& g, const Node& n) {
  if (n.op != "BatchNormalization") return false;
  if (n.has_attr("training_mode")) return attr_int(n, "training_mode", 0) == 1;
  // Before opset 14 a training-mode export is recognized by its extra outputs.
  return g.opset < 14 && n.outputs.size() > 1 && n.outputs[1].valid();
}

/// BatchNormalization(training_mode=1) -> BatchNormTraining(X, scale, B,
/// running_mean, running_var) -> (Y, running_mean', running_var', saved_mean,
/// saved_invstd), same node name. Returns the running statistics' updates.
std::vector<TensorId> rewrite_batchnorm(Builder& b) {
  Graph& g = b.g;
  std::vector<TensorId> updated;
  const auto consumers = g.consumers();
  std::set<uint32_t> written;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const NodeId id(i);
    if (!is_training_bn(g, g.node(id))) continue;
    const Node old = g.node(id);
    for (size_t k = 1; k < 3; ++k) {
      const Tensor& st = g.tensor(old.inputs.at(k + 2));
      if (st.role != Role::state)
        throw Error(node_desc(old) + ": running statistic '" + st.name + "' has role " +
                    std::string(role_name(st.role)) +
                    "; training updates it in place, so it must "
                    "be state");
      if (!written.insert(old.inputs[k + 2].v).second)
        throw Error(node_desc(old) + ": running statistic '" + st.name +
                    "' is shared with another BatchNormalization; each must have its own");
    }
    for (size_t k = 3; k < old.outputs.size(); ++k)
      if (old.outputs[k].valid() && !consumers[old.outputs[k].v].empty())
        throw Error(node_desc(old) + ": its saved statistics output " + std::to_string(k) +
                    " is read by the model; memplan's training rewrite does not support that");
    const Tensor& x = g.tensor(old.inputs.at(0));
    const TensorType stat{g.tensor(old.inputs[3]).dtype, g.tensor(old.inputs[3]).shape};
    std::vector<TensorType> types = {{x.dtype, x.shape}, stat, stat, stat, stat};
    std::vector<TensorId> outs(5);
    outs[0] = old.outputs.at(0);
    const char* suffix[] = {"", "/updated", "/updated", "/saved_mean", "/saved_invstd"};
    for (size_t k = 1; k < 5; ++k) {
      if (k < 3 && k < old.outputs.size() && old.outputs[k].valid()) {
        outs[k] = old.outputs[k];
        g.tensor(outs[k]).role = Role::state;
        continue;
      }
      Tensor t;
      t.name = b.tensor_name(k < 3 ? g.tensor(old.inputs[k + 2]).name + suffix[k]
                                   : old.name + suffix[k]);
      t.role = k < 3 ? Role::state : Role::activation;
      outs[k] = g.add_tensor(std::move(t));
    }
    for (size_t k = 3; k < old.outputs.size(); ++k)
      if (old.outputs[k].valid()) g.tensor(old.outputs[k]).producer = NodeId(); // now unused
    Node& n = g.node(id);
    n.op = "BatchNormTraining";
    n.attrs = {{"epsilon", attr_float(old, "epsilon", 1e-5)},
               {"momentum", attr_float(old, "momentum", 0.9)}};
    n.outputs = outs;
    // The op's definition lands with the nn kernels; until then the types
    // follow its contract (Y like X, statistics like the running mean).
    if (find_op("BatchNormTraining")) types = infer_node(g, n);
    for (size_t k = 0; k < 5; ++k) {
      Tensor& t = g.tensor(outs[k]);
      t.producer = id;
      t.dtype = types.at(k).dtype;
      t.shape = types.at(k).shape;
      t.shape_known = true;
    }
    updated.push_back(outs[1]);
    updated.push_back(outs[2]);
  }
  return updated;
}

// ---------------------------------------------------------------- parameters

/// trainable[t] for every float parameter not matched by the freeze regex.
std::vector<char> trainable_params(const Graph& g, const std::string& freeze, TrainingStats& st) {
  std::optional<std::regex> re;
  if (!freeze.empty()) {
    try {
      re.emplace(freeze, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw Error("--freeze '" + freeze + "' is not a valid regular expression: " + e.what());
    }
  }
  std::vector<char> trainable(g.num_tensors(), 0);
  int64_t total = 0;
  for (uint32_t i = 0; i < g.num_tensors(); ++i) {
    const Tensor& t = g.tensor(TensorId(i));
    if (t.role != Role::parameter || !is_float(t.dtype)) continue;
    ++total;
    if (re && std::regex_search(t.name, *re)) {
      ++st.params_frozen;
      continue;
    }
    trainable[i] = 1;
  }
  if (total == 0) throw Error("the model has no floating-point parameters to train");
  if (re && st.params_frozen == 0)
    st.warnings.push_back("--freeze '" + freeze + "' matches no parameter");
  if (st.params_frozen == total)
    throw Error("--freeze '" + freeze + "' matches every parameter (" + std::to_string(total) +
                "): nothing to train");
  return trainable;
}

// ---------------------------------------------------------------- outputs

/// Gives each parameter's gradient the name "<param>/grad": the gradient
/// tensor itself is renamed when it is the parameter's own (role gradient,
/// not shared with another parameter); otherwise, when gradients are outputs,
/// an Identity view (no storage of its own) carries the name. Returns the
/// gradients to output, in parameter order.
std::vector<TensorId> name_gradients(Builder& b, const Backward& bw, bool as_outputs) {
  Graph& g = b.g;
  std::vector<TensorId> named;
  for (size_t k = 0; k < bw.params.size(); ++k) {
    const TensorId gt = bw.grads[k];
    const std::string name = g.tensor(bw.params[k]).name + "/grad";
    const bool shared = std::count(bw.grads.begin(), bw.grads.end(), gt) > 1;
    if (!shared && g.tensor(gt).role == Role::gradient && !g.find_tensor(name)) {
      g.rename_tensor(gt, name);
      named.push_back(gt);
    } else if (as_outputs) {
      named.push_back(
          b.emit("Identity", "memplan/grad_name/" + name, {gt}, {}, {{name, Role::gradient}})[0]);
    } else {
      named.push_back(gt);
    }
  }
  return named;
}

/// Removes every node no graph output depends on (then unused tensors).
int64_t prune_dead(Graph& g) {
  std::vector<char> live(g.num_nodes(), 0), seen(g.num_tensors(), 0);
  std::vector<TensorId> stack(g.outputs.begin(), g.outputs.end());
  while (!stack.empty()) {
    TensorId t = stack.back();
    stack.pop_back();
    if (seen[t.v]) continue;
    seen[t.v] = 1;
    NodeId p = g.tensor(t).producer;
    if (!p.valid() || live[p.v]) continue;
    live[p.v] = 1;
    for (TensorId in : g.node(p).inputs)
      if (in.valid()) stack.push_back(in);
  }
  std::vector<NodeId> dead;
  for (uint32_t i = 0; i < g.num_nodes(); ++i)
    if (!live[i]) dead.push_back(NodeId(i));
  g.remove_nodes_and_compact(dead);
  return static_cast<int64_t>(dead.size());
}

bool is_optimizer_op(std::string_view op) {
  return op == "StepIncrement" || op == "SGDUpdate" || op == "AdamUpdate" ||
         op == "GlobalNormScale" || op == "UnscaleGradients" || op == "LossScaleUpdate";
}

} // namespace
} // namespace autodiff

KeepZeroData::KeepZeroData() {
  autodiff::ZeroPool& p = autodiff::zero_pool();
  std::lock_guard<std::mutex> lock(p.mu);
  ++p.keepers;
}

KeepZeroData::~KeepZeroData() {
  autodiff::ZeroPool& p = autodiff::zero_pool();
  std::lock_guard<std::mutex> lock(p.mu);
  if (--p.keepers == 0) p.kept.clear();
}

TrainingStats build_training_graph(Graph& g, const TrainingOptions& opts) {
  using namespace autodiff;
  verify(g);
  TrainingStats st;
  Builder b(g);
  if (opts.micro_batches < 1)
    throw Error("micro_batches must be at least 1, got " + std::to_string(opts.micro_batches));
  TensorId loss = opts.loss.empty() ? model_loss(g) : built_loss(b, opts);
  {
    const Tensor& l = g.tensor(loss);
    if (!is_scalar_float(l))
      throw Error("the loss '" + l.name + "' must be a float scalar, got " + type_str(l));
  }
  st.loss = g.tensor(loss).name;
  MicroBatch mb;
  if (opts.micro_batches > 1) {
    mb = slice_inputs(b, opts.micro_batches);
    loss = micro_loss(b, opts, loss, mb, st);
  }
  std::vector<TensorId> bn_state = rewrite_batchnorm(b);
  const std::vector<char> trainable = trainable_params(g, opts.freeze, st);
  const LossScaling& ls = opts.loss_scaling;
  const TensorId scale = ls.enabled ? loss_scale_tensor(b, ls, g.tensor(loss)) : TensorId();
  Backward bw = build_backward(b, loss, trainable, st.warnings, scale);
  // Replicas share the (resident) seed; their gradients accumulate scaled.
  if (opts.micro_batches > 1) replicate(b, mb, loss, bw, bn_state, st);
  const std::vector<TensorId> scale_state =
      ls.enabled ? unscale_gradients(b, ls, scale, bw) : std::vector<TensorId>{};
  Updates up = build_optimizer(b, opts, bw, st.warnings);
  up.state.insert(up.state.end(), scale_state.begin(), scale_state.end());
  st.params_trained = static_cast<int64_t>(bw.params.size());
  const bool grads_out = opts.grads_as_outputs || opts.optimizer.kind == OptimizerKind::none;
  const std::vector<TensorId> grads = name_gradients(b, bw, grads_out);

  std::vector<TensorId> outs = {loss};
  outs.insert(outs.end(), up.params.begin(), up.params.end());
  outs.insert(outs.end(), bn_state.begin(), bn_state.end());
  outs.insert(outs.end(), up.state.begin(), up.state.end());
  outs.insert(outs.end(), up.opt_state.begin(), up.opt_state.end());
  if (grads_out) outs.insert(outs.end(), grads.begin(), grads.end());
  g.outputs = outs;

  st.nodes_pruned = prune_dead(g);
  g.sort_topologically();
  for (const Node& n : g.nodes()) {
    if (is_optimizer_op(n.op)) {
      ++st.optimizer_nodes;
      continue;
    }
    for (TensorId t : n.outputs)
      if (t.valid() && g.tensor(t).role == Role::gradient) {
        ++st.backward_nodes;
        break;
      }
  }
  verify(g);
  return st;
}

} // namespace memplan
