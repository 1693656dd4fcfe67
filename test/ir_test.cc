#include <gtest/gtest.h>

#include "compiler/ir.h"

namespace memplan {
namespace {

Tensor make(std::string name, Role role, Shape s = {2, 3}) {
  Tensor t;
  t.name = std::move(name);
  t.role = role;
  t.shape = std::move(s);
  t.shape_known = true;
  return t;
}

TEST(IrTest, DTypeAndRoleNamesRoundTrip) {
  for (DType d : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i64, DType::i32,
                  DType::i8, DType::u8, DType::boolean})
    EXPECT_EQ(parse_dtype(dtype_name(d)), d);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(parse_role("state"), Role::state);
  EXPECT_FALSE(parse_dtype("f33").has_value());
}

TEST(IrTest, ByteSizeOverflowIsAnError) {
  EXPECT_EQ(byte_size(DType::f32, {2, 3}), 24);
  EXPECT_THROW(byte_size(DType::f32, {int64_t{1} << 40, int64_t{1} << 30}), Error);
  EXPECT_THROW(num_elements({-1, 3}), Error);
}

TEST(IrTest, TopoOrderDetectsCycle) {
  Graph g;
  TensorId x = g.add_tensor(make("x", Role::input));
  g.inputs.push_back(x);
  TensorId a = g.add_tensor(make("a", Role::activation));
  TensorId b = g.add_tensor(make("b", Role::activation));
  g.add_node({"Add", "n0", {x, b}, {a}, {}});
  g.add_node({"Relu", "n1", {a}, {b}, {}});
  EXPECT_THROW(
      {
        try {
          verify(g);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
}

TEST(IrTest, VerifyNamesTensorWithoutProducer) {
  Graph g;
  TensorId x = g.add_tensor(make("x", Role::input));
  g.inputs.push_back(x);
  TensorId dangling = g.add_tensor(make("dangling", Role::activation));
  TensorId y = g.add_tensor(make("y", Role::activation));
  g.add_node({"Add", "n0", {x, dangling}, {y}, {}});
  g.outputs.push_back(y);
  try {
    verify(g);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'dangling'"), std::string::npos) << e.what();
  }
}

TEST(IrTest, CompactRemovesDeadNodesAndRenumbers) {
  Graph g;
  TensorId x = g.add_tensor(make("x", Role::input));
  g.inputs.push_back(x);
  TensorId a = g.add_tensor(make("a", Role::activation));
  TensorId b = g.add_tensor(make("b", Role::activation));
  NodeId n0 = g.add_node({"Relu", "n0", {x}, {a}, {}});
  g.add_node({"Relu", "n1", {x}, {b}, {}});
  g.outputs.push_back(b);
  g.remove_nodes_and_compact({n0});
  ASSERT_EQ(g.num_nodes(), 1u);
  ASSERT_EQ(g.num_tensors(), 2u);
  EXPECT_EQ(g.node(NodeId(0)).name, "n1");
  EXPECT_EQ(g.tensor(g.outputs[0]).name, "b");
  EXPECT_EQ(g.tensor(g.outputs[0]).producer, NodeId(0));
  EXPECT_FALSE(g.find_tensor("a").has_value());
  verify(g);
}

TEST(IrTest, AliasRootFollowsViews) {
  Graph g;
  TensorId x = g.add_tensor(make("x", Role::input));
  g.inputs.push_back(x);
  TensorId a = g.add_tensor(make("a", Role::activation));
  TensorId b = g.add_tensor(make("b", Role::activation, {6}));
  TensorId c = g.add_tensor(make("c", Role::activation, {6}));
  g.add_node({"Relu", "n0", {x}, {a}, {}});
  g.add_node({"Flatten", "n1", {a}, {b}, {}});
  g.add_node({"Identity", "n2", {b}, {c}, {}});
  EXPECT_EQ(alias_root(g, c), a);
  EXPECT_EQ(alias_root(g, a), a);
}

}  // namespace
}  // namespace memplan
