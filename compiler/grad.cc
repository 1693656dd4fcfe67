#include "compiler/grad.h"

#include <cstring>

#include "compiler/dtype_codec.h"
#include "compiler/grad_internal.h"
#include "compiler/op_registry.h"

namespace memplan {

namespace {
const grads::Table& table() {
  static const grads::Table t = [] {
    grads::Table t;
    grads::register_elementwise(t);
    grads::register_data(t);
    grads::register_nn(t);
    return t;
  }();
  return t;
}
}  // namespace

GradFn find_grad_rule(std::string_view op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : it->second;
}

std::vector<std::string_view> grad_rule_ops() {
  std::vector<std::string_view> r;
  for (const auto& [k, v] : table()) r.push_back(k);
  return r;
}

GradCtx::GradCtx(Graph& g, NodeId node, std::vector<TensorId> out_grads, std::vector<char> needs,
                 std::string name_prefix)
    : g_(g),
      node_(node),
      out_grads_(std::move(out_grads)),
      needs_(std::move(needs)),
      in_grads_(g.node(node).inputs.size()),
      prefix_(std::move(name_prefix)) {}

TensorId GradCtx::output_grad(size_t i) const {
  return i < out_grads_.size() ? out_grads_[i] : TensorId();
}

bool GradCtx::needs_input_grad(size_t i) const { return i < needs_.size() && needs_[i]; }

void GradCtx::set_input_grad(size_t i, TensorId grad) {
  if (!needs_input_grad(i))
    throw InternalError(node_desc(node()) + ": gradient rule set input " + std::to_string(i) +
                        " which needs no gradient");
  const Tensor& in = g_.tensor(input(i));
  const Tensor& gt = g_.tensor(grad);
  if (gt.shape != in.shape || gt.dtype != in.dtype)
    throw InternalError(node_desc(node()) + ": gradient of input " + std::to_string(i) + " is " +
                        std::string(dtype_name(gt.dtype)) + shape_str(gt.shape) + ", expected " +
                        std::string(dtype_name(in.dtype)) + shape_str(in.shape));
  in_grads_[i] = grad;
}

std::vector<TensorId> GradCtx::emit(const std::string& op, const std::vector<TensorId>& inputs,
                                    const Attrs& attrs, size_t num_outputs) {
  std::string base = prefix_ + "/" + op + "_" + std::to_string(counter_++);
  Node n;
  n.op = op;
  n.name = base;
  n.inputs = inputs;
  n.attrs = attrs;
  std::vector<TensorId> outs;
  for (size_t k = 0; k < num_outputs; ++k) {
    Tensor t;
    t.name = base + ":" + std::to_string(k);
    t.role = Role::gradient;
    outs.push_back(g_.add_tensor(std::move(t)));
  }
  n.outputs = outs;
  std::vector<TensorType> types = infer_node(g_, n);
  for (size_t k = 0; k < num_outputs; ++k) {
    Tensor& t = g_.tensor(outs[k]);
    t.dtype = types.at(k).dtype;
    t.shape = types.at(k).shape;
    t.shape_known = true;
  }
  g_.add_node(std::move(n));
  return outs;
}

TensorId GradCtx::emit1(const std::string& op, const std::vector<TensorId>& inputs,
                        const Attrs& attrs) {
  return emit(op, inputs, attrs, 1)[0];
}

TensorId GradCtx::scalar(double v, DType dtype) {
  Tensor t;
  t.name = prefix_ + "/const_" + std::to_string(counter_++);
  t.role = Role::constant;
  t.dtype = dtype;
  t.shape = {};
  t.shape_known = true;
  std::vector<uint8_t> bytes;
  if (is_float(dtype))
    encode_float(dtype, v, bytes);
  else
    encode_int(dtype, static_cast<int64_t>(v), bytes);
  t.data = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  return g_.add_tensor(std::move(t));
}

TensorId GradCtx::ints(const std::vector<int64_t>& v) {
  Tensor t;
  t.name = prefix_ + "/const_" + std::to_string(counter_++);
  t.role = Role::constant;
  t.dtype = DType::i64;
  t.shape = {static_cast<int64_t>(v.size())};
  t.shape_known = true;
  std::vector<uint8_t> bytes(8 * v.size());
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  t.data = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  return g_.add_tensor(std::move(t));
}

TensorId GradCtx::unbroadcast(TensorId g, Shape to) {
  const Shape from = g_.tensor(g).shape;
  if (from == to) return g;
  std::vector<int64_t> axes;
  size_t lead = from.size() - to.size();
  for (size_t k = 0; k < from.size(); ++k)
    if (k < lead || (to[k - lead] == 1 && from[k] != 1)) axes.push_back(static_cast<int64_t>(k));
  TensorId r = g;
  if (!axes.empty())
    r = emit1("ReduceSum", {g, ints(axes)}, {{"keepdims", int64_t{1}}});
  if (g_.tensor(r).shape != to) r = emit1("Reshape", {r, ints(to)});
  return r;
}

TensorId GradCtx::ensure_output(size_t k) {
  Node& n = g_.node(node_);
  if (k < n.outputs.size() && n.outputs[k].valid()) return n.outputs[k];
  if (n.outputs.size() <= k) n.outputs.resize(k + 1);
  Tensor t;
  t.name = n.name + ":saved" + std::to_string(k);
  t.role = Role::activation;
  TensorId id = g_.add_tensor(std::move(t));
  Node& node = g_.node(node_);  // add_tensor does not touch nodes; re-fetch for clarity
  node.outputs[k] = id;
  g_.tensor(id).producer = node_;
  std::vector<TensorType> types = infer_node(g_, node);
  Tensor& x = g_.tensor(id);
  x.dtype = types.at(k).dtype;
  x.shape = types.at(k).shape;
  x.shape_known = true;
  return id;
}

}  // namespace memplan
