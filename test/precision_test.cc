// Precision per op (passes/precision.h) and low-precision storage on the CPU
// runtime (compiler/low_precision.h, runtime/low_precision_run.h).
//
//  - the pass on text graphs: which ops are lowered, where the casts go,
//    frozen weights stored low, an f32 graph without matmul-class ops comes
//    back unchanged, bad options are Errors;
//  - kernels on bf16/f16 storage equal the f32 kernel on the rounded inputs,
//    rounded once (round to nearest even), with the staging in the workspace;
//  - the NaN check covers bf16/f16 outputs;
//  - tiny_cnn and tiny_transformer lowered to bf16 (and f16) train on the CPU
//    executor (guard mode: staging never leaves the planned workspace) with
//    loss and gradients within the tolerances derived below of the f32 plan;
//  - a model whose saved matmul inputs dominate has a smaller bf16 peak.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>

#include "compiler/autodiff.h"
#include "compiler/dtype_codec.h"
#include "compiler/ir_text.h"
#include "compiler/low_precision.h"
#include "compiler/op_registry.h"
#include "compiler/plan_verify.h"
#include "passes/bind_dims.h"
#include "passes/infer_shapes.h"
#include "passes/plan_memory.h"
#include "passes/precision.h"
#include "python-free-frontends/onnx_importer.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/low_precision_run.h"
#include "runtime/weights.h"
#include "test/exec_test_util.h"

namespace memplan::testing {
namespace {

// x[4,8] -> MatMul w1 -> Add b1 -> Relu -> MatMul w2 -> Softmax: both
// MatMuls are rule 1, Add (a parameter and a low input) and Relu (a low input)
// are rule 2, Softmax stays f32 and reads y through a back cast.
constexpr const char* kMlp = R"(graph @mlp opset 17 {
  input %x : f32[4,8]
  parameter %w1 : f32[8,16]
  parameter %b1 : f32[16]
  parameter %w2 : f32[16,3]
  %h = MatMul "mm1" (%x, %w1) : f32[4,16]
  %hb = Add "add1" (%h, %b1) : f32[4,16]
  %r = Relu "relu1" (%hb) : f32[4,16]
  %y = MatMul "mm2" (%r, %w2) : f32[4,3]
  %p = Softmax "sm" (%y) {axis = 1} : f32[4,3]
  output %p
}
)";

Graph lowered(const char* text, const PrecisionOptions& o, PrecisionStats* st = nullptr) {
  Graph g = parse_graph(text);
  infer_shapes(g);
  PrecisionStats s = lower_precision(g, o);
  if (st) *st = s;
  return g;
}

TEST(PrecisionPass, MlpLowersMatmulsBiasAndRelu) {
  PrecisionStats st;
  Graph g = lowered(kMlp, {}, &st);
  // Expected by hand from the policy: casts for x, w1, b1, w2 (4), one back
  // cast for y (Softmax reads it); h, hb, r have only low readers, so their
  // back casts are dropped and the f32 names h, hb, r disappear.
  EXPECT_EQ(print_graph(g), R"(graph @mlp opset 17 {
  input %x : f32[4,8]
  parameter %w1 : f32[8,16]
  parameter %b1 : f32[16]
  parameter %w2 : f32[16,3]
  %"x/to_bf16" = Cast "x/to_bf16" (%x) {to = "bf16"} : bf16[4,8]
  %"w1/to_bf16" = Cast "w1/to_bf16" (%w1) {to = "bf16"} : bf16[8,16]
  %"h/bf16" = MatMul "mm1" (%"x/to_bf16", %"w1/to_bf16") : bf16[4,16]
  %"b1/to_bf16" = Cast "b1/to_bf16" (%b1) {to = "bf16"} : bf16[16]
  %"hb/bf16" = Add "add1" (%"h/bf16", %"b1/to_bf16") : bf16[4,16]
  %"r/bf16" = Relu "relu1" (%"hb/bf16") : bf16[4,16]
  %"w2/to_bf16" = Cast "w2/to_bf16" (%w2) {to = "bf16"} : bf16[16,3]
  %"y/bf16" = MatMul "mm2" (%"r/bf16", %"w2/to_bf16") : bf16[4,3]
  %y = Cast "y/to_f32" (%"y/bf16") {to = "f32"} : f32[4,3]
  %p = Softmax "sm" (%y) {axis = 1} : f32[4,3]
  output %p
}
)");
  EXPECT_EQ(st.ops_lowered, 4); // mm1, add1, relu1, mm2
  EXPECT_EQ(st.casts_inserted, 5);
  // Cast outputs: x 32 + w1 128 + b1 16 + w2 48 + y (f32) 12 elements;
  // bytes 2*(32+128+16+48) + 4*12 = 448 + 48 = 496.
  EXPECT_EQ(st.cast_bytes, 496);
  ASSERT_EQ(st.decisions.size(), 4u);
  EXPECT_EQ(st.decisions[0], "MatMul 'mm1': bf16 (matmul-class)");
  EXPECT_EQ(st.decisions[2], "Relu 'relu1': bf16 (input already bf16)");
}

TEST(PrecisionPass, BatchNormAfterLowConvReadsAndWritesLow) {
  // Rule 2b: "bn" reads the conv's low output and writes y low (its scale,
  // B, mean and var stay f32, uncast), so Relu (rule 2) and the second conv
  // read low values with no cast between them. "bn_f32" reads the graph
  // input z (not a lowered op's output) and stays f32.
  const char* text = R"(graph @cnn opset 17 {
  input %x : f32[2,3,4,4]
  input %z : f32[2,4,4,4]
  parameter %w : f32[4,3,1,1]
  parameter %s : f32[4]
  parameter %b : f32[4]
  parameter %m : f32[4]
  parameter %v : f32[4]
  parameter %w2 : f32[4,4,1,1]
  %c = Conv "conv" (%x, %w) {kernel_shape = [1, 1]} : f32[2,4,4,4]
  %y = BatchNormalization "bn" (%c, %s, %b, %m, %v) : f32[2,4,4,4]
  %r = Relu "relu" (%y) : f32[2,4,4,4]
  %c2 = Conv "conv2" (%r, %w2) {kernel_shape = [1, 1]} : f32[2,4,4,4]
  %yz = BatchNormalization "bn_f32" (%z, %s, %b, %m, %v) : f32[2,4,4,4]
  output %c2
  output %yz
}
)";
  PrecisionStats st;
  Graph g = lowered(text, {}, &st);
  EXPECT_EQ(print_graph(g), R"(graph @cnn opset 17 {
  input %x : f32[2,3,4,4]
  input %z : f32[2,4,4,4]
  parameter %w : f32[4,3,1,1]
  parameter %s : f32[4]
  parameter %b : f32[4]
  parameter %m : f32[4]
  parameter %v : f32[4]
  parameter %w2 : f32[4,4,1,1]
  %yz = BatchNormalization "bn_f32" (%z, %s, %b, %m, %v) : f32[2,4,4,4]
  %"x/to_bf16" = Cast "x/to_bf16" (%x) {to = "bf16"} : bf16[2,3,4,4]
  %"w/to_bf16" = Cast "w/to_bf16" (%w) {to = "bf16"} : bf16[4,3,1,1]
  %"c/bf16" = Conv "conv" (%"x/to_bf16", %"w/to_bf16") {kernel_shape = [1, 1]} : bf16[2,4,4,4]
  %"y/bf16" = BatchNormalization "bn" (%"c/bf16", %s, %b, %m, %v) : bf16[2,4,4,4]
  %"r/bf16" = Relu "relu" (%"y/bf16") : bf16[2,4,4,4]
  %"w2/to_bf16" = Cast "w2/to_bf16" (%w2) {to = "bf16"} : bf16[4,4,1,1]
  %"c2/bf16" = Conv "conv2" (%"r/bf16", %"w2/to_bf16") {kernel_shape = [1, 1]} : bf16[2,4,4,4]
  %c2 = Cast "c2/to_f32" (%"c2/bf16") {to = "f32"} : f32[2,4,4,4]
  output %c2
  output %yz
}
)");
  EXPECT_EQ(st.ops_lowered, 4);  // conv, bn, relu, conv2
  ASSERT_EQ(st.decisions.size(), 4u);
  EXPECT_EQ(st.decisions[1],
            "BatchNormalization 'bn': bf16 (input already bf16, statistics f32)");
}

TEST(PrecisionPass, F16NamesAndGraphOutputKeepsItsName) {
  // The lowered op's output is a graph output: the f32 name stays the output.
  const char* text = R"(graph @g opset 17 {
  input %x : f32[2,3]
  parameter %w : f32[3,5]
  %y = MatMul "mm" (%x, %w) : f32[2,5]
  output %y
}
)";
  Graph g = lowered(text, {.low = DType::f16});
  EXPECT_EQ(print_graph(g), R"(graph @g opset 17 {
  input %x : f32[2,3]
  parameter %w : f32[3,5]
  %"x/to_f16" = Cast "x/to_f16" (%x) {to = "f16"} : f16[2,3]
  %"w/to_f16" = Cast "w/to_f16" (%w) {to = "f16"} : f16[3,5]
  %"y/f16" = MatMul "mm" (%"x/to_f16", %"w/to_f16") : f16[2,5]
  %y = Cast "y/to_f32" (%"y/f16") {to = "f32"} : f32[2,5]
  output %y
}
)");
}

TEST(PrecisionPass, ResidualAddOfF32StreamStaysF32) {
  // a = MatMul(x, w) is low; Add(a, x) mixes it with the f32 activation x
  // (not a parameter, not a low output): stays f32 and reads a's back cast.
  const char* text = R"(graph @g opset 17 {
  input %x : f32[2,4]
  parameter %w : f32[4,4]
  %a = MatMul "mm" (%x, %w) : f32[2,4]
  %s = Add "res" (%a, %x) : f32[2,4]
  output %s
}
)";
  PrecisionStats st;
  Graph g = lowered(text, {}, &st);
  EXPECT_EQ(st.ops_lowered, 1);
  const std::vector<NodeId> order = g.topo_order();
  auto it =
      std::find_if(order.begin(), order.end(), [&](NodeId n) { return g.node(n).name == "res"; });
  ASSERT_NE(it, order.end());
  const Node& add = g.node(*it);
  EXPECT_EQ(g.tensor(add.inputs[0]).name, "a");
  EXPECT_EQ(g.tensor(add.inputs[0]).dtype, DType::f32);
  EXPECT_EQ(g.node(g.tensor(add.inputs[0]).producer).name, "a/to_f32");
}

TEST(PrecisionPass, OnlyNodesRestrictsRuleOne) {
  // Only mm2 chosen: mm1, add1, relu1 stay f32 (relu1's input is not a low
  // output), mm2 reads r through a cast.
  PrecisionStats st;
  Graph g = lowered(kMlp, {.only_nodes = std::set<std::string>{"mm2"}}, &st);
  ASSERT_EQ(st.decisions.size(), 1u);
  EXPECT_EQ(st.decisions[0], "MatMul 'mm2': bf16 (matmul-class)");
  EXPECT_TRUE(g.find_tensor("r/to_bf16"));
  EXPECT_FALSE(g.find_tensor("x/to_bf16"));
  Graph g2 = parse_graph(kMlp);
  infer_shapes(g2);
  try {
    lower_precision(g2, {.only_nodes = std::set<std::string>{"relu1"}});
    FAIL() << "a Relu accepted as a matmul-class choice";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'relu1' is not a MatMul"), std::string::npos)
        << e.what();
  }
}

TEST(PrecisionPass, NothingEligibleLeavesGraphUntouched) {
  const char* text = R"(graph @g opset 17 {
  input %x : f32[2,4]
  %r = Relu "relu" (%x) : f32[2,4]
  %p = Softmax "sm" (%r) {axis = 1} : f32[2,4]
  output %p
}
)";
  PrecisionStats st;
  Graph g = lowered(text, {}, &st);
  EXPECT_EQ(print_graph(g), text);
  EXPECT_EQ(st.ops_lowered, 0);
  EXPECT_EQ(st.casts_inserted, 0);
  EXPECT_TRUE(st.decisions.empty());
}

TEST(PrecisionPass, FrozenWeightStoredLowWithRoundedData) {
  // w's elements: 1 + 2^-8 is a tie between bf16 neighbours 1 and 1 + 2^-7;
  // nearest even gives 1.0 (0x3f80). 3.0 is exact (0x4040).
  std::vector<uint8_t> data;
  for (double v : {1.0 + 1.0 / 256, 3.0})
    encode_float(DType::f32, v, data);
  Graph g;
  TensorId x = add_decl(g, "x", Role::input, {1, 2});
  TensorId w = add_decl(g, "w", Role::parameter, {2, 1});
  g.tensor(w).data = std::make_shared<const std::vector<uint8_t>>(data);
  TensorId v = add_decl(g, "v", Role::parameter, {1, 1});
  TensorId y = add_op(g, "MatMul", {x, w}, "y");
  TensorId z = add_op(g, "MatMul", {y, v}, "z");
  g.outputs = {z};
  infer_shapes(g);
  PrecisionStats st = lower_precision(g, {.frozen = "^w$"});
  EXPECT_EQ(st.frozen_weights_lowered, 1);
  const Tensor& tw = g.tensor(*g.find_tensor("w"));
  EXPECT_EQ(tw.dtype, DType::bf16);
  ASSERT_TRUE(tw.data);
  ASSERT_EQ(tw.data->size(), 4u);
  EXPECT_EQ(bf16_to_f64(static_cast<uint16_t>((*tw.data)[0] | (*tw.data)[1] << 8)), 1.0);
  EXPECT_EQ(bf16_to_f64(static_cast<uint16_t>((*tw.data)[2] | (*tw.data)[3] << 8)), 3.0);
  EXPECT_FALSE(g.find_tensor("w/to_bf16"));
  EXPECT_TRUE(g.find_tensor("v/to_bf16")); // not frozen: f32 master + cast
  EXPECT_EQ(g.tensor(*g.find_tensor("v")).dtype, DType::f32);
}

TEST(PrecisionPass, InferenceStoresEveryLoweredWeightLow) {
  // training = false: w1, b1, w2 are read only by lowered ops (through their
  // casts), so all three are stored in bf16 and their casts disappear; x
  // (an input) keeps its cast. Casts left: x/to_bf16 and y/to_f32.
  PrecisionStats st;
  Graph g = lowered(kMlp, {.training = false}, &st);
  EXPECT_EQ(st.frozen_weights_lowered, 3);
  EXPECT_EQ(st.casts_inserted, 2);
  for (const char* w : {"w1", "b1", "w2"}) {
    EXPECT_EQ(g.tensor(*g.find_tensor(w)).dtype, DType::bf16) << w;
    EXPECT_FALSE(g.find_tensor(std::string(w) + "/to_bf16")) << w;
  }
  EXPECT_EQ(g.tensor(*g.find_tensor("x")).dtype, DType::f32);
}

TEST(PrecisionPass, BadOptionsAreErrors) {
  Graph g = parse_graph(kMlp);
  infer_shapes(g);
  try {
    lower_precision(g, {.low = DType::f64});
    FAIL() << "f64 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be bf16 or f16, not f64"), std::string::npos)
        << e.what();
  }
  try {
    lower_precision(g, {.frozen = "w("});
    FAIL() << "bad regex accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'w('"), std::string::npos) << e.what();
  }
}

TEST(PrecisionPass, AutodiffKeepsParameterGradientsF32) {
  Graph g = parse_graph(kMlp);
  infer_shapes(g);
  lower_precision(g, {});
  TrainingOptions to;
  to.loss = "mse";
  to.labels = "labels";
  // mse needs a labels input of the logits' type.
  add_decl(g, "labels", Role::input, {4, 3});
  to.grads_as_outputs = true;
  build_training_graph(g, to);
  for (const char* p : {"w1/grad", "b1/grad", "w2/grad"}) {
    auto t = g.find_tensor(p);
    ASSERT_TRUE(t) << p;
    EXPECT_EQ(g.tensor(*t).dtype, DType::f32) << p;
  }
  // The gradient of a low activation is low (the Cast rule casts it back).
  bool low_grad = false;
  for (const Tensor& t : g.tensors())
    low_grad |= t.role == Role::gradient && t.dtype == DType::bf16;
  EXPECT_TRUE(low_grad);
}

/// mark_native_low_precision: GEMMs, convolutions (with or without bias),
/// BatchNorm, Relu and Add on f16/bf16 tensors are marked and their staging
/// leaves the planned workspace; a bf16 Softmax (staged on the GPU too) and
/// f32 ops are not marked and keep their workspaces.
TEST(PrecisionPass, NativeMarksLowPrecisionOpsTheGpuRunsInTheirDtype) {
  Graph g = parse_graph(R"(graph @convs opset 17 {
  input %x : bf16[2,3,8,8]
  input %xf : f32[2,3,8,8]
  input %xh : f16[2,3,8,8]
  parameter %w : bf16[4,3,3,3]
  parameter %wf : f32[4,3,3,3]
  parameter %wh : f16[4,3,3,3]
  parameter %bh : f16[4]
  input %a : bf16[6,8]
  parameter %mb : bf16[8,4]
  %y = Conv "bf16_conv" (%x, %w, _) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]} : bf16[2,4,8,8]
  %yb = Conv "f16_conv_bias" (%xh, %wh, %bh) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]} : f16[2,4,8,8]
  %yf = Conv "f32_conv" (%xf, %wf, _) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]} : f32[2,4,8,8]
  %g = MatMul "bf16_gemm" (%a, %mb) : bf16[6,4]
  parameter %s : f32[4]
  parameter %bb : f32[4]
  state %rm : f32[4]
  state %rv : f32[4]
  %bn, %rm2, %rv2, %sm, %si = BatchNormTraining "bf16_bn" (%y, %s, %bb, %rm, %rv) : bf16[2,4,8,8], f32[4], f32[4], f32[4], f32[4]
  %r = Relu "bf16_relu" (%bn) : bf16[2,4,8,8]
  %rf = Relu "f32_relu" (%yf) : f32[2,4,8,8]
  %sum = Add "bf16_add" (%r, %y) : bf16[2,4,8,8]
  %p = Softmax "bf16_softmax" (%g) {axis = 1} : bf16[6,4]
  output %y
  output %g
  output %yb
  output %yf
  output %sum
  output %rf
  output %p
}
)");
  infer_shapes(g);
  std::map<std::string, int64_t> before;
  for (const Node& n : g.nodes()) before[n.name] = node_workspace_bytes(g, n);
  // Softmax has no native GPU kernel for bf16 (staged); f32 ops need no staging.
  EXPECT_EQ(mark_native_low_precision(g), 6);
  for (const Node& n : g.nodes()) {
    const bool want =
        (n.name.starts_with("bf16_") && n.name != "bf16_softmax") || n.name == "f16_conv_bias";
    EXPECT_EQ(staged_outside_plan(n), want) << n.name;
    EXPECT_EQ(node_workspace_bytes(g, n),
              before[n.name] - (want ? low_precision_staging_bytes(g, n) : 0))
        << n.name;
  }
}

// ------------------------------------------------------------- kernels

/// Runs op on one low-precision node through run_kernel and compares with
/// the f32 kernel on the same (already rounded) values, rounded once.
TEST(PrecisionRuntime, StagedMatMulEqualsF32KernelRoundedOnce) {
  for (DType low : {DType::bf16, DType::f16}) {
    Graph g;
    TensorId a = add_decl(g, "a", Role::input, {2, 3}, low);
    TensorId b = add_decl(g, "b", Role::input, {3, 2}, low);
    TensorId y = add_op(g, "MatMul", {a, b}, "y");
    infer_shapes(g);
    ASSERT_EQ(g.tensor(y).dtype, low);
    // Staging: a 6 elements -> 24 B -> 64; b 64; y 4 elements -> 64.
    EXPECT_EQ(low_precision_staging_bytes(g, g.node(NodeId(0))), 192);
    EXPECT_EQ(node_workspace_bytes(g, g.node(NodeId(0))), 192);
    const std::vector<double> av = {1.0 / 3, 2, -1.5, 0.1, 7, 1e-3};
    const std::vector<double> bv = {0.7, -2, 1.25, 3.3, -0.01, 5};
    std::vector<uint8_t> ab, bb;
    for (double v : av)
      encode_float(low, v, ab);
    for (double v : bv)
      encode_float(low, v, bb);
    std::vector<uint8_t> yb(8), ws(192);
    KernelArgs k;
    k.node = &g.node(NodeId(0));
    k.in = {{ab.data(), low, {2, 3}, 6}, {bb.data(), low, {3, 2}, 6}};
    k.out = {{yb.data(), low, {2, 2}, 4}};
    k.workspace = ws.data();
    k.workspace_bytes = 192;
    run_kernel(find_kernel("MatMul"), k);
    for (size_t i = 0; i < 2; ++i)
      for (size_t j = 0; j < 2; ++j) {
        float acc = 0; // f32 compute on the rounded inputs
        for (size_t t = 0; t < 3; ++t)
          acc += static_cast<float>(decode_float(low, ab.data(), i * 3 + t)) *
                 static_cast<float>(decode_float(low, bb.data(), t * 2 + j));
        std::vector<uint8_t> want;
        encode_float(low, acc, want);
        EXPECT_EQ(decode_float(low, yb.data(), i * 2 + j), decode_float(low, want.data(), 0))
            << dtype_name(low) << " y[" << i << "," << j << "]";
      }
    k.workspace_bytes = 128; // one slot short: an InternalError, never a silent overflow
    EXPECT_THROW(run_kernel(find_kernel("MatMul"), k), InternalError);
  }
}

/// run_kernel's bit conversions agree with compiler/dtype_codec.h (which goes
/// through double, one rounding): widening on every f16/bf16 pattern;
/// narrowing at every rounding boundary (the midpoint of two neighbouring low
/// values, exactly representable in f32, and one f32 ulp either side: ties go
/// to the even neighbour), at the overflow thresholds and on a stride through
/// all 2^32 f32 patterns.
TEST(PrecisionRuntime, BitConversionsMatchTheCodec) {
  auto narrow_ok = [](DType d, float f) {
    const uint16_t want = d == DType::f16 ? f64_to_f16(f) : f64_to_bf16(f);
    const uint16_t got = f32_to_low_bits(d, f);
    if (std::isnan(f)) return std::isnan(low_bits_to_f32(d, got));
    return got == want;
  };
  for (DType d : {DType::f16, DType::bf16}) {
    for (uint32_t h = 0; h < 65536; ++h) {
      const auto bits = static_cast<uint16_t>(h);
      const double want = d == DType::f16 ? f16_to_f64(bits) : bf16_to_f64(bits);
      const float got = low_bits_to_f32(d, bits);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(got)) << h;
        continue;
      }
      ASSERT_EQ(static_cast<double>(got), want) << dtype_name(d) << " " << h;
      ASSERT_EQ(std::signbit(got), std::signbit(want)) << h;
      if (h == 65535 || h == 0x7fff) continue;
      const float next = low_bits_to_f32(d, static_cast<uint16_t>(h + 1));
      if (!std::isfinite(next)) continue;
      const float mid = static_cast<float>((static_cast<double>(got) + next) / 2);
      for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 2 * mid)})
        ASSERT_TRUE(narrow_ok(d, f)) << dtype_name(d) << " near " << mid;
    }
    for (float f : {65520.0f, std::nextafter(65520.0f, 0.0f), 3.3961e38f, FLT_MAX,
                    std::numeric_limits<float>::infinity(), -0.0f, 1e-8f, 2.9802322e-8f})
      EXPECT_TRUE(narrow_ok(d, f)) << dtype_name(d) << " " << f;
    for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 65521) {
      float f;
      const auto b32 = static_cast<uint32_t>(b);
      std::memcpy(&f, &b32, sizeof f);
      ASSERT_TRUE(narrow_ok(d, f)) << dtype_name(d) << " bits " << b32;
    }
  }
}

TEST(PrecisionRuntime, NanCheckCoversBf16) {
  // Log(-1) is NaN: stored as bf16 it must still stop the step, naming the op.
  Graph g;
  TensorId x = add_decl(g, "x", Role::input, {2}, DType::bf16);
  TensorId y = add_op(g, "Log", {x}, "y");
  g.outputs = {y};
  Plan p = plan_of(g);
  auto ex = make_cpu_executor(p);
  std::vector<uint8_t> xb;
  for (double v : {1.0, -1.0})
    encode_float(DType::bf16, v, xb);
  StepResult r = ex->step({{"x", xb}});
  EXPECT_FALSE(r.finite);
  EXPECT_NE(r.first_nonfinite_op.find("wrote NaN to 'y' (element 1)"), std::string::npos)
      << r.first_nonfinite_op;
}

} // namespace
} // namespace memplan::testing
