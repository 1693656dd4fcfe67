#include "runtime/interpreter.h"

#include <cstring>

#include "compiler/op_registry.h"
#include "runtime/kernel.h"
#include "runtime/low_precision_run.h"

namespace memplan {

Interpreter::Interpreter(const Graph& g, uint64_t seed, uint64_t step)
    : g_(g), seed_(seed), step_(step), buf_(g.num_tensors()) {
  for (uint32_t i = 0; i < g.num_tensors(); ++i) {
    const Tensor& t = g.tensor(TensorId(i));
    if (t.producer.valid()) continue;
    buf_[i] = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(t.bytes()), 0);
    if (t.data && t.data->size() == buf_[i]->size()) *buf_[i] = *t.data;
  }
}

void Interpreter::set(TensorId t, std::vector<uint8_t> bytes) {
  const Tensor& x = g_.tensor(t);
  if (x.producer.valid()) throw Error("cannot set '" + x.name + "': a node produces it");
  if (static_cast<int64_t>(bytes.size()) != x.bytes())
    throw Error("setting '" + x.name + "': " + std::to_string(bytes.size()) + " bytes given, " +
                std::to_string(x.bytes()) + " expected");
  *buf_[t.v] = std::move(bytes);
}

const std::vector<uint8_t>& Interpreter::get(TensorId t) const {
  if (!buf_.at(t.v)) throw Error("tensor '" + g_.tensor(t).name + "' has no value yet");
  return *buf_[t.v];
}

void Interpreter::run() {
  for (NodeId id : g_.topo_order()) {
    const Node& n = g_.node(id);
    KernelFn k = find_kernel(n.op);
    if (!k) throw Error(node_desc(n) + ": the CPU backend has no kernel for op " + n.op);
    KernelArgs a;
    a.node = &n;
    a.seed = seed_;
    a.step = step_;
    a.rng_key = node_rng_key(n);
    auto arg = [&](TensorId t) {
      TensorArg x;
      if (!t.valid()) return x;
      const Tensor& tt = g_.tensor(t);
      x.data = buf_[t.v] ? buf_[t.v]->data() : nullptr;
      x.dtype = tt.dtype;
      x.shape = tt.shape;
      x.numel = tt.numel();
      return x;
    };
    for (TensorId t : n.inputs) a.in.push_back(arg(t));
    for (size_t s = 0; s < n.outputs.size(); ++s) {
      TensorId t = n.outputs[s];
      if (!t.valid()) {
        a.out.emplace_back();
        continue;
      }
      OutputAlias al = output_alias(n.op, s);
      if (al.kind != AliasKind::none)
        buf_[t.v] = buf_[n.inputs.at(al.input).v];  // shares storage
      else
        buf_[t.v] = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(g_.tensor(t).bytes()), 0);
      a.out.push_back(arg(t));
      if (!buf_[t.v]->empty() && a.out.back().data == nullptr) a.out.back().data = buf_[t.v]->data();
    }
    std::vector<uint8_t> ws(static_cast<size_t>(cpu_workspace_bytes(g_, n)));
    a.workspace = ws.empty() ? nullptr : ws.data();
    a.workspace_bytes = static_cast<int64_t>(ws.size());
    run_kernel(k, a);
  }
}

}  // namespace memplan
