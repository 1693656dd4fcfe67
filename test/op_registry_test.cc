#include "compiler/op_registry.h"

#include <gtest/gtest.h>

#include "test/op_test_util.h"

namespace memplan {
namespace {

using testing::expect_error;
using testing::OneNode;
using V = std::vector<int64_t>;

TEST(OpRegistryTest, LookupAndUnsupported) {
  ASSERT_NE(find_op("Conv"), nullptr);
  EXPECT_EQ(find_op("Conv")->name, "Conv");
  EXPECT_EQ(find_op("Einsum"), nullptr);
  EXPECT_EQ(find_op("conv"), nullptr);  // case-sensitive like ONNX
  auto ops = registered_ops();
  EXPECT_TRUE(std::is_sorted(ops.begin(), ops.end()));
  EXPECT_GE(ops.size(), 80u);
  OneNode t;
  TensorId x = t.in({2});
  expect_error([&] { t.infer("Einsum", {x}); }, "unsupported op 'Einsum'");
}

TEST(OpRegistryTest, ArityAndUnknownAttribute) {
  OneNode t;
  TensorId x = t.in({2, 3});
  expect_error([&] { t.infer("Add", {x}); }, "expects 2 inputs, got 1");
  expect_error([&] { t.infer("Relu", {x}, {{"alpha", 1.0}}); }, "unknown attribute 'alpha'");
  expect_error([&] { t.infer("Relu", {x}, {}, 2); }, "expects 1 outputs, got 2");
  expect_error([&] { t.infer("Gemm", {x, TensorId()}); }, "required input 1 is omitted");
}

TEST(OpRegistryTest, BroadcastingAndErrorsNameShapes) {
  OneNode t;
  // [2,1,4] + [3,1] -> [2,3,4]
  EXPECT_EQ(t.shape("Add", {t.in({2, 1, 4}), t.in({3, 1})}), (Shape{2, 3, 4}));
  EXPECT_EQ(t.shape("Mul", {t.in({}), t.in({5})}), (Shape{5}));
  expect_error([&] { t.infer("Sub", {t.in({2, 3}), t.in({4})}); },
               "shapes [2,3] and [4] are not broadcastable");
  expect_error([&] { t.infer("Add", {t.in({2}), t.in({2}, DType::i64)}); }, "dtype i64");
  auto r = t.infer("Less", {t.in({2, 1}), t.in({1, 3})});
  EXPECT_EQ(r[0], (TensorType{DType::boolean, {2, 3}}));
  // Variadic Max over three inputs: [3] [2,1] [] -> [2,3]
  EXPECT_EQ(t.shape("Max", {t.in({3}), t.in({2, 1}), t.in({})}), (Shape{2, 3}));
  auto w = t.infer("Where", {t.in({2, 1}, DType::boolean), t.in({3}, DType::i64), t.in({1}, DType::i64)});
  EXPECT_EQ(w[0], (TensorType{DType::i64, {2, 3}}));
  EXPECT_EQ(t.infer("Not", {t.in({4}, DType::boolean)})[0].dtype, DType::boolean);
}

TEST(OpRegistryTest, MatMulAndGemm) {
  OneNode t;
  EXPECT_EQ(t.shape("MatMul", {t.in({2, 1, 3, 4}), t.in({5, 4, 6})}), (Shape{2, 5, 3, 6}));
  EXPECT_EQ(t.shape("MatMul", {t.in({4}), t.in({3, 4, 6})}), (Shape{3, 6}));
  EXPECT_EQ(t.shape("MatMul", {t.in({3, 4}), t.in({4})}), (Shape{3}));
  EXPECT_EQ(t.shape("MatMul", {t.in({4}), t.in({4})}), (Shape{}));
  expect_error([&] { t.infer("MatMul", {t.in({3, 4}), t.in({5, 6})}); }, "inner dimensions");
  // Gemm A^T: A [4,3] -> M=3, K=4; B^T [5,4] -> N=5.
  const Node& n = t.node("Gemm", {t.in({4, 3}), t.in({5, 4}), t.in({5})},
                         {{"transA", int64_t{1}}, {"transB", int64_t{1}}});
  EXPECT_EQ(infer_node(t.g, n)[0].shape, (Shape{3, 5}));
  t.g.tensor(n.outputs[0]).shape = {3, 5};
  t.g.tensor(n.outputs[0]).shape_known = true;
  EXPECT_EQ(node_flops(t.g, n), 2.0 * 3 * 5 * 4);  // 2*M*N*K
  // bytes: A 48 + B 80 + C 20 + Y 60
  EXPECT_EQ(node_bytes_moved(t.g, n), 48 + 80 + 20 + 60);
  EXPECT_EQ(t.shape("Gemm", {t.in({2, 3}), t.in({3, 4})}), (Shape{2, 4}));
}

TEST(OpRegistryTest, ConvWithPadsStridesDilationGroups) {
  OneNode t;
  // H: (32 + 1 + 1 - 2*(3-1) - 1) / 2 + 1 = 29/2 + 1 = 15; W: (32 + 0 - 3) / 1 + 1 = 30.
  // Groups: Cin 8 = 4 * 2, Cout 6.
  const Node& n = t.node("Conv", {t.in({1, 8, 32, 32}), t.in({6, 4, 3, 2}), t.in({6})},
                         {{"pads", V{1, 0, 1, 0}}, {"strides", V{2, 1}},
                          {"dilations", V{2, 2}}, {"group", int64_t{2}}});
  auto r = infer_node(t.g, n);
  EXPECT_EQ(r[0].shape, (Shape{1, 6, 15, 30}));
  t.g.tensor(n.outputs[0]).shape = r[0].shape;
  t.g.tensor(n.outputs[0]).shape_known = true;
  // 2 * N*Cout*outspatial (1*6*15*30=2700) * Cin/groups*kernel (4*3*2=24)
  EXPECT_EQ(node_flops(t.g, n), 2.0 * 2700 * 24);
  // SAME_UPPER keeps ceil(in/stride): ceil(7/2) = 4.
  EXPECT_EQ(t.shape("Conv", {t.in({1, 3, 7, 7}), t.in({2, 3, 3, 3})},
                    {{"auto_pad", std::string("SAME_UPPER")}, {"strides", V{2, 2}}}),
            (Shape{1, 2, 4, 4}));
  expect_error([&] { t.infer("Conv", {t.in({1, 3, 7, 7}), t.in({2, 4, 3, 3})}); },
               "do not match W");
}

TEST(OpRegistryTest, ConvTranspose) {
  OneNode t;
  // out = stride*(in-1) + output_padding + (k-1)*dil + 1 - pads
  // H: 3*(3-1) + 1 + 2 + 1 - 0 = 10; W: 2*(3-1) + 0 + 2 + 1 - 2 = 5
  EXPECT_EQ(t.shape("ConvTranspose", {t.in({1, 1, 3, 3}), t.in({1, 2, 3, 3})},
                    {{"strides", V{3, 2}}, {"output_padding", V{1, 0}}, {"pads", V{0, 1, 0, 1}}}),
            (Shape{1, 2, 10, 5}));
  // Groups multiply output channels: W [4, 3, 2, 2] with group 2 -> Cout 6.
  EXPECT_EQ(t.shape("ConvTranspose", {t.in({1, 4, 5, 5}), t.in({4, 3, 2, 2})},
                    {{"group", int64_t{2}}}),
            (Shape{1, 6, 6, 6}));
  EXPECT_EQ(t.shape("ConvTranspose", {t.in({1, 1, 3, 3}), t.in({1, 2, 3, 3})},
                    {{"strides", V{3, 2}}, {"output_shape", V{10, 8}}}),
            (Shape{1, 2, 10, 8}));
  EXPECT_EQ(t.shape("ConvTranspose", {t.in({1, 1, 3, 3}), t.in({1, 2, 3, 3})},
                    {{"strides", V{2, 2}}, {"auto_pad", std::string("SAME_UPPER")}}),
            (Shape{1, 2, 6, 6}));
}

TEST(OpRegistryTest, PoolingCeilModeAndIndices) {
  OneNode t;
  // floor((32 - 3) / 2) + 1 = 15; ceil((32 - 3) / 2) + 1 = 16.
  Attrs a{{"kernel_shape", V{3, 3}}, {"strides", V{2, 2}}};
  EXPECT_EQ(t.shape("MaxPool", {t.in({1, 3, 32, 32})}, a), (Shape{1, 3, 15, 15}));
  a["ceil_mode"] = int64_t{1};
  auto r = t.infer("MaxPool", {t.in({1, 3, 32, 32})}, a, 2);
  EXPECT_EQ(r[0].shape, (Shape{1, 3, 16, 16}));
  EXPECT_EQ(r[1], (TensorType{DType::i64, {1, 3, 16, 16}}));
  // ceil_mode: in 5, k 2, s 2, pad_end 1: ceil((6-2)/2)+1 = 3; the third
  // window starts at 4 < 5, so it stays.
  EXPECT_EQ(t.shape("AveragePool", {t.in({1, 1, 5})},
                    {{"kernel_shape", V{2}}, {"strides", V{2}}, {"pads", V{0, 1}},
                     {"ceil_mode", int64_t{1}}, {"count_include_pad", int64_t{1}}}),
            (Shape{1, 1, 3}));
  EXPECT_EQ(t.shape("GlobalAveragePool", {t.in({2, 3, 7, 9})}), (Shape{2, 3, 1, 1}));
}

TEST(OpRegistryTest, Normalizations) {
  OneNode t;
  auto bn = t.infer("BatchNormalization",
                    {t.in({2, 4, 5, 5}), t.in({4}), t.in({4}), t.in({4}), t.in({4})},
                    {{"training_mode", int64_t{1}}}, 3);
  ASSERT_EQ(bn.size(), 3u);
  EXPECT_EQ(bn[0].shape, (Shape{2, 4, 5, 5}));
  EXPECT_EQ(bn[2].shape, (Shape{4}));
  auto ln = t.infer("LayerNormalization", {t.in({2, 3, 8}, DType::f16), t.in({8}, DType::f16)},
                    {{"axis", int64_t{-1}}}, 3);
  EXPECT_EQ(ln[0], (TensorType{DType::f16, {2, 3, 8}}));
  EXPECT_EQ(ln[1], (TensorType{DType::f32, {2, 3, 1}}));  // stash_type default 1 = f32
  EXPECT_EQ(t.shape("Softmax", {t.in({2, 3})}, {{"axis", int64_t{0}}}), (Shape{2, 3}));
  expect_error([&] { t.infer("Softmax", {t.in({2, 3})}, {{"axis", int64_t{2}}}); },
               "out of range");
}

TEST(OpRegistryTest, LossesAndDropout) {
  OneNode t;
  TensorId x = t.in({4, 10, 3});
  TensorId y = t.in({4, 3}, DType::i64);
  auto none = t.infer("SoftmaxCrossEntropyLoss", {x, y}, {{"reduction", std::string("none")}}, 2);
  EXPECT_EQ(none[0].shape, (Shape{4, 3}));
  EXPECT_EQ(none[1].shape, (Shape{4, 10, 3}));  // log_prob
  EXPECT_EQ(t.shape("SoftmaxCrossEntropyLoss", {x, y, t.in({10})},
                    {{"reduction", std::string("sum")}, {"ignore_index", int64_t{0}}}),
            (Shape{}));
  EXPECT_EQ(t.shape("SoftmaxCrossEntropyLoss", {x, y}), (Shape{}));  // default mean
  EXPECT_EQ(t.shape("NegativeLogLikelihoodLoss", {x, y}, {{"reduction", std::string("none")}}),
            (Shape{4, 3}));
  expect_error([&] { t.infer("SoftmaxCrossEntropyLoss", {x, t.in({4}, DType::i64)}); },
               "target shape [4]");
  auto d = t.infer("Dropout", {t.in({3, 5}), t.floats({0.1}, DType::f32, Shape{}),
                               t.ints({1}, DType::boolean, Shape{})}, {}, 2);
  EXPECT_EQ(d[1], (TensorType{DType::boolean, {3, 5}}));
}

TEST(OpRegistryTest, ReshapeZeroAndMinusOne) {
  OneNode t;
  TensorId x = t.in({2, 3, 4});
  EXPECT_EQ(t.shape("Reshape", {x, t.ints({0, -1})}), (Shape{2, 12}));
  EXPECT_EQ(t.shape("Reshape", {x, t.ints({-1, 0, 2})}), (Shape{4, 3, 2}));
  // allowzero=1: 0 is a real zero dim, so element counts differ.
  expect_error([&] { t.infer("Reshape", {x, t.ints({0, -1})}, {{"allowzero", int64_t{1}}}); },
               "cannot reshape");
  expect_error([&] { t.infer("Reshape", {x, t.in({2}, DType::i64)}); },
               "Reshape target shape is not a compile-time constant");
  expect_error([&] { t.infer("Reshape", {x, t.ints({5, -1})}); }, "cannot reshape [2,3,4]");
  EXPECT_EQ(t.shape("Flatten", {x}, {{"axis", int64_t{-1}}}), (Shape{6, 4}));
  EXPECT_EQ(t.shape("Flatten", {x}, {{"axis", int64_t{0}}}), (Shape{1, 24}));
}

TEST(OpRegistryTest, SliceNegativeStepsAndClamping) {
  OneNode t;
  TensorId x = t.in({10, 20, 5});
  // axis 0: starts -1 (=9), ends -11 (=-1, clamps to -1), step -2 -> 9,7,5,3,1 = 5
  // axis 1: starts 2, ends INT64_MAX (clamps to 20), step 3 -> 2,5,...,17 = 6
  EXPECT_EQ(t.shape("Slice", {x, t.ints({-1, 2}), t.ints({-11, INT64_MAX}), t.ints({0, 1}),
                              t.ints({-2, 3})}),
            (Shape{5, 6, 5}));
  // Opset-1 attribute form; start past the end gives an empty dim.
  EXPECT_EQ(t.shape("Slice", {x}, {{"starts", V{25}}, {"ends", V{30}}, {"axes", V{1}}}),
            (Shape{10, 0, 5}));
  expect_error([&] { t.infer("Slice", {x, t.ints({0}), t.ints({1}), t.ints({0}), t.ints({0})}); },
               "step must not be 0");
}

TEST(OpRegistryTest, SplitForms) {
  OneNode t(13);
  TensorId x = t.in({2, 10});
  auto r = t.infer("Split", {x, t.ints({3, 7})}, {{"axis", int64_t{1}}}, 2);  // opset 13 input
  EXPECT_EQ(r[0].shape, (Shape{2, 3}));
  EXPECT_EQ(r[1].shape, (Shape{2, 7}));
  r = t.infer("Split", {x}, {{"axis", int64_t{-1}}, {"split", V{4, 6}}}, 2);  // opset 11 attr
  EXPECT_EQ(r[1].shape, (Shape{2, 6}));
  r = t.infer("Split", {x}, {{"axis", int64_t{1}}}, 5);  // equal parts
  EXPECT_EQ(r[4].shape, (Shape{2, 2}));
  // Opset 18 num_outputs=3 on 10: chunks ceil(10/3)=4 -> 4, 4, 2.
  r = t.infer("Split", {x}, {{"axis", int64_t{1}}, {"num_outputs", int64_t{3}}}, 3);
  EXPECT_EQ(r[2].shape, (Shape{2, 2}));
  expect_error([&] { t.infer("Split", {x, t.ints({3, 3})}, {{"axis", int64_t{1}}}, 2); },
               "do not sum");
  expect_error([&] { t.infer("Split", {x}, {{"axis", int64_t{1}}}, 3); }, "evenly");
}

TEST(OpRegistryTest, SqueezeUnsqueezeBothOpsetForms) {
  OneNode t;
  TensorId x = t.in({1, 3, 1, 5});
  EXPECT_EQ(t.shape("Squeeze", {x}), (Shape{3, 5}));
  EXPECT_EQ(t.shape("Squeeze", {x}, {{"axes", V{-2}}}), (Shape{1, 3, 5}));  // opset 11
  EXPECT_EQ(t.shape("Squeeze", {x, t.ints({0})}), (Shape{3, 1, 5}));      // opset 13
  expect_error([&] { t.infer("Squeeze", {x, t.ints({1})}); }, "size is not 1");
  // Unsqueeze axes index the output: [3,5] with axes {0, -1} -> [1,3,5,1].
  EXPECT_EQ(t.shape("Unsqueeze", {t.in({3, 5}), t.ints({0, -1})}), (Shape{1, 3, 5, 1}));
  EXPECT_EQ(t.shape("Unsqueeze", {t.in({3, 5})}, {{"axes", V{1}}}), (Shape{3, 1, 5}));
  expect_error([&] { t.infer("Unsqueeze", {t.in({3}), t.in({1}, DType::i64)}); },
               "Unsqueeze axes is not a compile-time constant");
}

TEST(OpRegistryTest, ReduceBothOpsetForms) {
  OneNode t;
  TensorId x = t.in({2, 3, 4});
  EXPECT_EQ(t.shape("ReduceMean", {x}, {{"axes", V{1}}}), (Shape{2, 1, 4}));  // opset 13
  EXPECT_EQ(t.shape("ReduceMean", {x, t.ints({1})}, {{"keepdims", int64_t{0}}}),
            (Shape{2, 4}));  // opset 18 input
  EXPECT_EQ(t.shape("ReduceSum", {x}, {{"keepdims", int64_t{0}}}), (Shape{}));  // all axes
  EXPECT_EQ(t.shape("ReduceSum", {x, t.ints({})}, {{"noop_with_empty_axes", int64_t{1}}}),
            (Shape{2, 3, 4}));
  EXPECT_EQ(t.shape("ReduceMax", {x}, {{"axes", V{-1, 0}}}), (Shape{1, 3, 1}));
  expect_error([&] { t.infer("ReduceSum", {x, t.in({1}, DType::i64)}); },
               "ReduceSum axes is not a compile-time constant");
}

TEST(OpRegistryTest, ShapeAndCreationOps) {
  OneNode t;
  TensorId x = t.in({2, 3, 4, 5});
  EXPECT_EQ(t.infer("Shape", {x})[0], (TensorType{DType::i64, {4}}));
  EXPECT_EQ(t.shape("Shape", {x}, {{"start", int64_t{1}}, {"end", int64_t{-1}}}), (Shape{2}));
  EXPECT_EQ(t.infer("Size", {x})[0], (TensorType{DType::i64, {}}));
  EXPECT_EQ(t.infer("Cast", {x}, {{"to", std::string("f16")}})[0].dtype, DType::f16);
  EXPECT_EQ(t.infer("Cast", {x}, {{"to", int64_t{7}}})[0].dtype, DType::i64);  // ONNX enum
  EXPECT_EQ(t.infer("CastLike", {x, t.in({1}, DType::bf16)})[0].dtype, DType::bf16);
  EXPECT_EQ(t.infer("ConstantOfShape", {t.ints({3, 2})},
                    {{"value", 1.0}, {"dtype", std::string("i64")}})[0],
            (TensorType{DType::i64, {3, 2}}));
  // Range(1, 10, 3) -> 1, 4, 7: ceil(9/3) = 3. Range(5, 0, -2) -> 5, 3, 1.
  EXPECT_EQ(t.shape("Range", {t.ints({1}, DType::i64, Shape{}), t.ints({10}, DType::i64, Shape{}),
                              t.ints({3}, DType::i64, Shape{})}),
            (Shape{3}));
  EXPECT_EQ(t.shape("Range", {t.floats({5}, DType::f32, Shape{}), t.floats({0}, DType::f32, Shape{}),
                              t.floats({-2}, DType::f32, Shape{})}),
            (Shape{3}));
  EXPECT_EQ(t.shape("Transpose", {x}, {{"perm", V{0, 2, 3, 1}}}), (Shape{2, 4, 5, 3}));
  EXPECT_EQ(t.shape("Transpose", {x}), (Shape{5, 4, 3, 2}));
  EXPECT_EQ(t.shape("Concat", {x, t.in({2, 1, 4, 5})}, {{"axis", int64_t{1}}}), (Shape{2, 4, 4, 5}));
  expect_error([&] { t.infer("Concat", {x, t.in({2, 1, 4, 6})}, {{"axis", int64_t{1}}}); },
               "does not match input 0 shape");
  EXPECT_EQ(t.shape("Gather", {x, t.in({7, 8}, DType::i64)}, {{"axis", int64_t{1}}}),
            (Shape{2, 7, 8, 4, 5}));
  EXPECT_EQ(t.shape("Gather", {x, t.ints({1}, DType::i64, Shape{})}), (Shape{3, 4, 5}));
  EXPECT_EQ(t.shape("GatherElements", {x, t.in({2, 3, 4, 1}, DType::i64)}), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(t.shape("Expand", {t.in({3, 1}), t.ints({2, 1, 6})}), (Shape{2, 3, 6}));
  EXPECT_EQ(t.shape("Tile", {t.in({3, 1}), t.ints({2, 4})}), (Shape{6, 4}));
  // Pad opset 13: pads [begin..., end...] = [1,0, 2,3] on [3,1] -> [6,4].
  EXPECT_EQ(t.shape("Pad", {t.in({3, 1}), t.ints({1, 0, 2, 3})}), (Shape{6, 4}));
  // Opset 18 axes input: pad only axis 1 by 2 + 2.
  EXPECT_EQ(t.shape("Pad", {t.in({3, 1}), t.ints({2, 2}), TensorId(), t.ints({-1})}), (Shape{3, 5}));
  EXPECT_EQ(t.shape("Trilu", {t.in({4, 4}), t.ints({1}, DType::i64, Shape{})}), (Shape{4, 4}));
}

TEST(OpRegistryTest, TensorDataDecoding) {
  OneNode t;
  std::vector<uint8_t> half = {0x00, 0x3C, 0x00, 0xC0};  // f16 1.0, -2.0
  auto fh = tensor_floats(t.g.tensor(t.cst(half, DType::f16, {2})));
  EXPECT_EQ(fh, (std::vector<double>{1.0, -2.0}));
  std::vector<uint8_t> bf = {0x80, 0x3F, 0x40, 0x40};  // bf16 1.0, 3.0
  EXPECT_EQ(tensor_floats(t.g.tensor(t.cst(bf, DType::bf16, {2}))), (std::vector<double>{1.0, 3.0}));
  std::vector<uint8_t> b = {0, 1, 2};  // bool: any non-zero byte is true
  EXPECT_EQ(tensor_ints(t.g.tensor(t.cst(b, DType::boolean, {3}))), (std::vector<int64_t>{0, 1, 1}));
  std::vector<uint8_t> i32 = {0xFF, 0xFF, 0xFF, 0xFF};
  EXPECT_EQ(tensor_ints(t.g.tensor(t.cst(i32, DType::i32, {1}))), (std::vector<int64_t>{-1}));
  std::vector<uint8_t> f32 = {0x00, 0x00, 0xC0, 0xBF};  // -1.5 truncates to -1
  EXPECT_EQ(tensor_ints(t.g.tensor(t.cst(f32, DType::f32, {1}))), (std::vector<int64_t>{-1}));
  EXPECT_THROW(tensor_ints(t.g.tensor(t.in({2}))), InternalError);
}

}  // namespace
}  // namespace memplan
