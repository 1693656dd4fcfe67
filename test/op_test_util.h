// Helpers for building one-node graphs as literals in registry / const_eval tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compiler/dtype_codec.h"
#include "compiler/op_registry.h"

namespace memplan::testing {

class OneNode {
 public:
  explicit OneNode(int64_t opset = 17) { g.opset = opset; }

  /// A graph input of the given shape.
  TensorId in(Shape s, DType d = DType::f32) {
    Tensor t;
    t.name = "t" + std::to_string(g.num_tensors());
    t.dtype = d;
    t.shape = std::move(s);
    t.shape_known = true;
    t.role = Role::input;
    TensorId id = g.add_tensor(std::move(t));
    g.inputs.push_back(id);
    return id;
  }
  /// A constant with data; shape defaults to 1-D.
  TensorId ints(std::vector<int64_t> v, DType d = DType::i64, std::optional<Shape> s = {}) {
    std::vector<uint8_t> b;
    for (int64_t x : v) encode_int(d, x, b);
    return cst(std::move(b), d, s ? *s : Shape{static_cast<int64_t>(v.size())});
  }
  TensorId floats(std::vector<double> v, DType d = DType::f32, std::optional<Shape> s = {}) {
    std::vector<uint8_t> b;
    for (double x : v) encode_float(d, x, b);
    return cst(std::move(b), d, s ? *s : Shape{static_cast<int64_t>(v.size())});
  }
  TensorId cst(std::vector<uint8_t> bytes, DType d, Shape s) {
    Tensor t;
    t.name = "t" + std::to_string(g.num_tensors());
    t.dtype = d;
    t.shape = std::move(s);
    t.shape_known = true;
    t.role = Role::constant;
    t.data = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
    return g.add_tensor(std::move(t));
  }
  /// Adds the node with `nout` fresh output tensors (shape unknown).
  const Node& node(std::string op, std::vector<TensorId> ins, Attrs attrs = {}, int nout = 1) {
    Node n;
    n.op = std::move(op);
    n.name = "n" + std::to_string(g.num_nodes());
    n.inputs = std::move(ins);
    n.attrs = std::move(attrs);
    for (int i = 0; i < nout; ++i) {
      Tensor t;
      t.name = "t" + std::to_string(g.num_tensors());
      n.outputs.push_back(g.add_tensor(std::move(t)));
    }
    return g.node(g.add_node(std::move(n)));
  }
  std::vector<TensorType> infer(std::string op, std::vector<TensorId> ins, Attrs attrs = {},
                                int nout = 1) {
    return infer_node(g, node(std::move(op), std::move(ins), std::move(attrs), nout));
  }
  /// Shape of output 0.
  Shape shape(std::string op, std::vector<TensorId> ins, Attrs attrs = {}, int nout = 1) {
    return infer(std::move(op), std::move(ins), std::move(attrs), nout).at(0).shape;
  }

  Graph g;
};

/// Runs f, expecting an Error whose message contains `needle`.
template <class F>
void expect_error(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace memplan::testing
