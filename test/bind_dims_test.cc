// Tests for bind_dims and its flag parsers. Graphs are built as literals:
// x: [batch, 3, seq] (symbolic batch and seq), m: [batch, 7], s: no declared shape.
#include "passes/bind_dims.h"

#include <gtest/gtest.h>

namespace memplan {
namespace {

#define EXPECT_ERROR_CONTAINS(stmt, ...)                                       \
  do {                                                                         \
    try {                                                                      \
      stmt;                                                                    \
      ADD_FAILURE() << "expected memplan::Error from " #stmt;                  \
    } catch (const Error& e) {                                                 \
      for (const char* needle : {__VA_ARGS__})                                 \
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)       \
            << "message: " << e.what() << "\nexpected to contain: " << needle; \
    }                                                                          \
  } while (0)

TensorId add_input(Graph& g, const std::string& name, Shape shape, std::vector<std::string> sym,
                   bool known = true) {
  Tensor t;
  t.name = name;
  t.role = Role::input;
  t.shape = std::move(shape);
  t.sym = std::move(sym);
  t.shape_known = known;
  TensorId id = g.add_tensor(std::move(t));
  g.inputs.push_back(id);
  return id;
}

Graph two_inputs() {
  Graph g;
  add_input(g, "x", {-1, 3, -1}, {"batch", "", "seq"});
  add_input(g, "m", {-1, 7}, {"batch", ""});
  return g;
}

TEST(BindDimsTest, DimFlagsBindEveryInputUsingTheName) {
  Graph g = two_inputs();
  bind_dims(g, {.dims = {{"batch", 8}, {"seq", 128}}});
  EXPECT_EQ(g.tensor(g.inputs[0]).shape, (Shape{8, 3, 128}));
  EXPECT_EQ(g.tensor(g.inputs[1]).shape, (Shape{8, 7}));
  for (TensorId id : g.inputs) {
    EXPECT_TRUE(g.tensor(id).shape_known);
    EXPECT_FALSE(g.tensor(id).has_symbolic_dims());
  }
}

TEST(BindDimsTest, InputShapeBindsItsSymbolicDimsForOtherInputs) {
  Graph g = two_inputs();
  // x's shape fixes batch=4 and seq=16, which m also uses.
  bind_dims(g, {.input_shapes = {{"x", {4, 3, 16}}}});
  EXPECT_EQ(g.tensor(g.inputs[0]).shape, (Shape{4, 3, 16}));
  EXPECT_EQ(g.tensor(g.inputs[1]).shape, (Shape{4, 7}));
}

TEST(BindDimsTest, InputShapeGivesAnUndeclaredInputItsShape) {
  Graph g;
  add_input(g, "s", {}, {}, /*known=*/false);
  bind_dims(g, {.input_shapes = {{"s", {2, 5}}}});
  EXPECT_TRUE(g.tensor(g.inputs[0]).shape_known);
  EXPECT_EQ(g.tensor(g.inputs[0]).shape, (Shape{2, 5}));
}

TEST(BindDimsTest, StaticGraphNeedsNoFlags) {
  Graph g;
  add_input(g, "x", {2, 3}, {});
  bind_dims(g, {});
  EXPECT_EQ(g.tensor(g.inputs[0]).shape, (Shape{2, 3}));
}

TEST(BindDimsTest, UnboundDimNamesInputDimAndFlag) {
  Graph g = two_inputs();
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.dims = {{"batch", 8}}}), "input 'x'", "dim 2", "'seq'",
                        "--dim seq=VALUE");
  // Nothing was changed by the failed call.
  EXPECT_EQ(g.tensor(g.inputs[0]).shape, (Shape{-1, 3, -1}));
}

TEST(BindDimsTest, InputWithoutShapeNeedsInputShape) {
  Graph g;
  add_input(g, "s", {}, {}, /*known=*/false);
  EXPECT_ERROR_CONTAINS(bind_dims(g, {}), "graph input 's'", "--input-shape s=");
}

TEST(BindDimsTest, UnknownDimNameListsTheModelsDims) {
  Graph g = two_inputs();
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.dims = {{"btach", 8}}}), "--dim btach=8",
                        "no symbolic dim 'btach'", "batch, seq");
}

TEST(BindDimsTest, InputShapeForMissingInputListsInputs) {
  Graph g = two_inputs();
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.input_shapes = {{"y", {1}}}}), "--input-shape y",
                        "no graph input 'y'", "x, m");
}

TEST(BindDimsTest, RankMismatch) {
  Graph g = two_inputs();
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.input_shapes = {{"x", {4, 3}}}}), "--input-shape x",
                        "gives 2 dims", "rank 3", "[batch,3,seq]");
}

TEST(BindDimsTest, ValueConflictingWithStaticDim) {
  Graph g = two_inputs();
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.input_shapes = {{"x", {4, 5, 16}}}}), "--input-shape x",
                        "dim 1 is 5", "declares it as 3");
}

TEST(BindDimsTest, ConflictingFlagsForTheSameDim) {
  Graph g = two_inputs();
  // --input-shape x implies batch=4; --dim says 8.
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.dims = {{"batch", 8}}, .input_shapes = {{"x", {4, 3, 16}}}}),
                        "dim 'batch'", "8", "4", "--input-shape x");
  // Two --input-shape flags disagreeing on batch.
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.input_shapes = {{"x", {4, 3, 16}}, {"m", {2, 7}}}}),
                        "dim 'batch'");
}

TEST(BindDimsTest, NonPositiveValuesInOptionsAreErrors) {
  Graph g = two_inputs();
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.dims = {{"batch", 0}, {"seq", 1}}}), "--dim batch=0",
                        "positive");
  EXPECT_ERROR_CONTAINS(bind_dims(g, {.input_shapes = {{"x", {-2, 3, 4}}}}), "--input-shape x",
                        "positive");
}

TEST(BindDimsTest, ParseDimFlag) {
  EXPECT_EQ(parse_dim_flag("batch=32"), (std::pair<std::string, int64_t>{"batch", 32}));
  EXPECT_ERROR_CONTAINS(parse_dim_flag("a=b=2"), "'b=2' is not an integer");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("batch"), "--dim 'batch'", "NAME=VALUE");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("batch="), "--dim 'batch='", "missing value");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("batch=abc"), "'abc' is not an integer");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("batch=12abc"), "not an integer");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("=3"), "NAME=VALUE");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("batch=0"), "must be positive");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("batch=-4"), "must be positive");
  EXPECT_ERROR_CONTAINS(parse_dim_flag("batch=99999999999999999999"), "does not fit in 64 bits");
}

TEST(BindDimsTest, ParseInputShapeFlag) {
  EXPECT_EQ(parse_input_shape_flag("x=32x3x224x224"),
            (std::pair<std::string, Shape>{"x", {32, 3, 224, 224}}));
  EXPECT_EQ(parse_input_shape_flag("input.1=7"), (std::pair<std::string, Shape>{"input.1", {7}}));
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("x"), "--input-shape 'x'", "INPUT=D0xD1");
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("x="), "missing dims");
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("=3x4"), "INPUT=D0xD1");
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("x=3xx4"), "--input-shape 'x=3xx4'",
                        "missing value");
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("x=3x4x"), "missing value");
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("x=3x0"), "must be positive");
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("x=3xfoo"), "'foo' is not an integer");
  EXPECT_ERROR_CONTAINS(parse_input_shape_flag("x=99999999999999999999x2"),
                        "does not fit in 64 bits");
}

}  // namespace
}  // namespace memplan
