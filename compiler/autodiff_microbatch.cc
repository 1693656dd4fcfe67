// Micro-batching in the training pass (autodiff.h, TrainingOptions::
// micro_batches = k > 1), unrolled in the graph so that every later pass
// (remat, schedule, lifetimes, offsets, verifier) and both executors work
// unchanged. The forward graph arrives micro-sized (batch B/k, see
// passes/microbatch.h).
//
//  1. slice_inputs (after the loss is built): every graph input becomes a
//     full-batch tensor [B, ...] with the same name, which the runtime feeds;
//     the micro-sized tensor the model reads is renamed "<input>/mb0" and is
//     produced by BatchSlice(index 0, count k).
//  2. micro_loss: each replica's loss is scaled so that the k losses (and
//     their gradients) sum to the full-batch mean: cross-entropy sums over
//     its micro-batch and multiplies by 1 / (non-ignored labels of the FULL
//     batch), computed once from the full labels; mse sums and divides by
//     the full batch's element count; the model's own loss is multiplied by
//     1/k (a warning: exact only for a plain batch mean).
//  3. replicate (after backward): the nodes that depend on a BatchSlice
//     output (forward, loss, backward: "the replica") are cloned k-1 times
//     as "<name>/mb<i>" (nodes and tensors); nodes that do not depend on the
//     batch (weight-only work, the label count) are shared. Replica i:
//     - slices part i; its BatchSlice nodes also take, as ordering-only
//       inputs, replica i-1's loss and accumulated gradients, so every
//       schedule finishes replica i-1's forward and backward before replica
//       i starts: peak = resident + accumulators + one replica's activations;
//     - reads state that replica i-1 updated in place (BatchNormTraining's
//       running statistics chain through the replicas, as PyTorch's do with
//       gradient accumulation);
//     - Dropout keeps the original's rng_key and gets rng_offset =
//       i * numel(X), so the masks of a batch-major X concatenate to the
//       full-batch mask (runtime/cpu/dropout.cc);
//     - adds its gradients into replica 0's with GradAccumulate (in place;
//       an Add makes a fresh accumulator first where replica 0's gradient
//       cannot be overwritten: a view, shared or not computed per replica).
//  4. the loss output is the sum of the replica losses, under the loss's
//     name; replica i's loss is "<loss>/mb<i>" (replica 0 too).
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "compiler/autodiff_internal.h"

namespace memplan::autodiff {

namespace {

/// ONNX TensorProto.DataType of a float dtype, for Cast's `to`.
int64_t onnx_float_enum(DType d) {
  switch (d) {
    case DType::f64:
      return 11;
    case DType::f16:
      return 10;
    case DType::bf16:
      return 16;
    default:
      return 1;
  }
}

TensorId input_named(const Graph& g, const std::string& name) {
  for (TensorId t : g.inputs)
    if (g.tensor(t).name == name) return t;
  return TensorId();
}

TensorId clone_tensor(Builder& b, TensorId t, const std::string& suffix) {
  Tensor c = b.g.tensor(t);
  c.name = b.tensor_name(c.name + suffix);
  c.producer = NodeId();
  c.data = nullptr;
  c.data_elided = false;
  c.external.clear();
  c.sym.clear();
  return b.g.add_tensor(std::move(c));
}

} // namespace

MicroBatch slice_inputs(Builder& b, int64_t k) {
  Graph& g = b.g;
  MicroBatch mb;
  mb.k = k;
  for (TensorId& in : g.inputs) {
    const TensorId micro = in;
    const Tensor& mt = g.tensor(micro);
    if (mt.shape.empty())
      throw Error("micro-batching (k=" + std::to_string(k) + ") splits every graph input along "
                  "axis 0, but input '" + mt.name + "' is a scalar");
    if (mb.rows == 0) mb.rows = mt.shape[0];
    if (mt.shape[0] != mb.rows)
      throw Error("micro-batching (k=" + std::to_string(k) + ") needs one batch on axis 0 of "
                  "every graph input, but input '" + g.tensor(g.inputs.front()).name + "' has " +
                  std::to_string(mb.rows) + " rows and '" + mt.name + "' has " +
                  std::to_string(mt.shape[0]));
    Tensor full = mt;
    full.shape[0] *= k;
    const std::string name = mt.name;
    g.rename_tensor(micro, b.tensor_name(name + "/mb0"));
    g.tensor(micro).role = Role::activation;
    const TensorId fid = g.add_tensor(std::move(full));
    in = fid;
    Node n;
    n.op = "BatchSlice";
    n.name = b.node_name("memplan/batch_slice/" + name);
    n.inputs = {fid};
    n.outputs = {micro};
    n.attrs = {{"index", int64_t{0}}, {"count", k}};
    mb.slices.push_back(g.add_node(std::move(n)));
  }
  return mb;
}

TensorId micro_loss(Builder& b, const TrainingOptions& opts, TensorId loss, const MicroBatch& mb,
                    TrainingStats& st) {
  Graph& g = b.g;
  const std::string name = g.tensor(loss).name;
  const DType dt = g.tensor(loss).dtype;
  const std::string k = std::to_string(mb.k);
  TensorId scale;
  if (opts.loss.empty()) {
    st.warnings.push_back("micro-batching (k=" + k + ") scales the model's own loss '" + name +
                          "' by 1/" + k + " per micro-batch: this equals the full-batch loss "
                          "only if it is a plain mean over the batch (no ignored targets, no "
                          "per-sample weights); use --loss cross-entropy|mse for an exact "
                          "global count");
    g.rename_tensor(loss, b.tensor_name(name + "/micro_batch_mean"));
    scale = b.filled_constant("memplan/loss/inv_micro_batches", dt, {}, 1.0 / double(mb.k));
  } else {
    Node& p = g.node(g.tensor(loss).producer);
    const std::vector<TensorId> ins = p.inputs;
    if (opts.loss == "cross-entropy") {
      p.attrs["reduction"] = std::string("sum");
      const TensorId labels = input_named(g, opts.labels.empty() ? "labels" : opts.labels);
      if (!labels.valid()) throw InternalError("micro_loss: the full labels input is missing");
      // inv_count = 1 / #(labels != ignore_index) over the full batch.
      const TensorId ign = b.filled_constant("memplan/loss/ignore_index", g.tensor(labels).dtype,
                                             {}, -100.0);
      const TensorId eq = b.emit("Equal", "memplan/loss/ignored", {labels, ign}, {},
                                 {{"memplan/loss/ignored", Role::activation}})[0];
      const TensorId kept = b.emit("Not", "memplan/loss/counted", {eq}, {},
                                   {{"memplan/loss/counted", Role::activation}})[0];
      const TensorId kf = b.emit("Cast", "memplan/loss/counted_float", {kept},
                                 {{"to", onnx_float_enum(dt)}},
                                 {{"memplan/loss/counted_float", Role::activation}})[0];
      const TensorId n = b.emit("ReduceSum", "memplan/loss/count", {kf}, {{"keepdims", int64_t{0}}},
                                {{"memplan/loss/count", Role::activation}})[0];
      scale = b.emit("Reciprocal", "memplan/loss/inv_count", {n}, {},
                     {{"memplan/loss/inv_count", Role::activation}})[0];
    } else {
      // mse: ReduceMean over the micro-batch -> ReduceSum / numel(full batch).
      p.op = "ReduceSum";
      const double full = double(g.tensor(ins.at(0)).numel()) * double(mb.k);
      scale = b.filled_constant("memplan/loss/inv_numel", dt, {}, 1.0 / full);
    }
    g.rename_tensor(loss, b.tensor_name("memplan/loss/micro_batch_sum"));
  }
  return b.emit("Mul", "memplan/loss/micro_batch", {loss, scale}, {}, {{name, Role::activation}})[0];
}

void replicate(Builder& b, const MicroBatch& mb, TensorId& loss, Backward& bw,
               std::vector<TensorId>& bn_state, TrainingStats& st) {
  Graph& g = b.g;
  const int64_t k = mb.k;
  // 1. The replica: nodes downstream of a BatchSlice output, in topological
  //    order; everything else is computed once and shared.
  std::vector<char> per(g.num_tensors(), 0);
  std::set<uint32_t> slice_set;
  for (NodeId s : mb.slices) {
    slice_set.insert(s.v);
    per[g.node(s).outputs[0].v] = 1;
  }
  std::vector<NodeId> body;
  int64_t batchnorms = 0;
  for (NodeId id : g.topo_order()) {
    if (slice_set.count(id.v)) continue;
    const Node& n = g.node(id);
    if (!std::any_of(n.inputs.begin(), n.inputs.end(),
                     [&](TensorId t) { return t.valid() && per[t.v]; }))
      continue;
    body.push_back(id);
    batchnorms += n.op == "BatchNormTraining";
    for (TensorId t : n.outputs)
      if (t.valid()) per[t.v] = 1;
  }
  // State a replica updates in place (BatchNorm running statistics): the
  // next replica reads the version this one wrote.
  std::map<uint32_t, TensorId> carry;  // shared tensor -> its latest version
  auto update_carry = [&](const std::unordered_map<uint32_t, TensorId>* map) {
    for (NodeId id : body) {
      const Node& n = g.node(id);
      for (size_t s = 0; s < n.outputs.size(); ++s) {
        const OutputAlias al = output_alias(n.op, s);
        if (al.kind != AliasKind::inplace || !n.outputs[s].valid()) continue;
        const TensorId src = n.inputs.at(static_cast<size_t>(al.input));
        if (per[src.v]) continue;
        carry[src.v] = map ? map->at(n.outputs[s].v) : n.outputs[s];
      }
    }
  };
  update_carry(nullptr);

  // 2. Accumulators: replica 0's gradients where they can be overwritten.
  std::vector<TensorId> acc = bw.grads;
  std::vector<char> in_place(acc.size(), 0);
  for (size_t p = 0; p < acc.size(); ++p) {
    const TensorId t = acc[p];
    in_place[p] = per[t.v] && g.tensor(t).role == Role::gradient && alias_root(g, t) == t &&
                  std::count(acc.begin(), acc.end(), t) == 1 &&
                  std::find(g.outputs.begin(), g.outputs.end(), t) == g.outputs.end();
  }

  // 3. Replicas 1..k-1.
  std::vector<TensorId> losses = {loss};
  std::unordered_map<uint32_t, TensorId> map;
  for (int64_t i = 1; i < k; ++i) {
    const std::string suffix = "/mb" + std::to_string(i);
    map.clear();
    auto m = [&](TensorId t) {
      if (!t.valid()) return t;
      if (per[t.v]) return map.at(t.v);
      if (auto c = carry.find(t.v); c != carry.end()) return c->second;
      return t;
    };
    std::vector<TensorId> after = {losses.back()};
    for (TensorId a : acc)
      if (std::find(after.begin(), after.end(), a) == after.end()) after.push_back(a);
    for (NodeId s : mb.slices) {
      Node n = g.node(s);
      n.name = b.node_name(n.name + suffix);
      n.attrs["index"] = i;
      n.inputs.resize(1);
      n.inputs.insert(n.inputs.end(), after.begin(), after.end());
      const TensorId out = clone_tensor(b, n.outputs[0], suffix);
      map[n.outputs[0].v] = out;
      n.outputs = {out};
      g.add_node(std::move(n));
    }
    for (NodeId id : body) {
      Node n = g.node(id);  // copy: add_node may reallocate
      const std::string orig = n.name;
      n.name = b.node_name(orig + suffix);
      for (TensorId& t : n.inputs) t = m(t);
      if (n.op == "Dropout") {
        if (!n.has_attr("rng_key")) n.attrs["rng_key"] = orig;
        const int64_t numel = g.tensor(g.node(id).inputs.at(0)).numel();
        n.attrs["rng_offset"] = attr_int(n, "rng_offset", 0) + i * numel;
      }
      for (TensorId& t : n.outputs) {
        if (!t.valid()) continue;
        const TensorId c = clone_tensor(b, t, suffix);
        map[t.v] = c;
        t = c;
      }
      g.add_node(std::move(n));
    }
    update_carry(&map);
    losses.push_back(map.at(loss.v));
    for (size_t p = 0; p < acc.size(); ++p) {
      const std::string pname = g.tensor(bw.params[p]).name;
      const TensorId gi = m(bw.grads[p]);
      const bool fresh = i == 1 && !in_place[p];
      acc[p] = b.emit(fresh ? "Add" : "GradAccumulate",
                      "memplan/grad_accumulate/" + pname + suffix, {acc[p], gi}, {},
                      {{pname + "/grad_acc" + std::to_string(i), Role::gradient}})[0];
    }
  }

  // 4. Outputs: summed loss under the loss's name, accumulated gradients,
  //    the last replica's running statistics.
  const std::string name = g.tensor(loss).name;
  g.rename_tensor(loss, b.tensor_name(name + "/mb0"));
  TensorId total = losses[0];
  for (size_t i = 1; i < losses.size(); ++i)
    total = b.emit("Add", "memplan/loss/sum" + std::to_string(i), {total, losses[i]}, {},
                   {{i + 1 == losses.size() ? name : name + "/sum" + std::to_string(i),
                     Role::activation}})[0];
  loss = total;
  bw.grads = acc;
  for (TensorId& t : bn_state)
    if (per[t.v]) t = map.at(t.v);

  st.micro_batches = k;
  st.micro_batch_rows = mb.rows;
  st.nodes_per_micro_batch = static_cast<int64_t>(body.size() + mb.slices.size());
  if (batchnorms > 0)
    st.warnings.push_back("BatchNorm statistics are per micro-batch (k=" + std::to_string(k) +
                          ", micro-batch " + std::to_string(mb.rows) + " of batch " +
                          std::to_string(mb.rows * k) + "): " + std::to_string(batchnorms) +
                          " BatchNormalization node(s) normalize each micro-batch with its own "
                          "mean and variance and update their running statistics " +
                          std::to_string(k) + " times per step");
}

} // namespace memplan::autodiff
