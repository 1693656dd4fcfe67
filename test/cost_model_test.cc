// Cost model: built-in device profiles, JSON profile errors, roofline times
// computed by hand.
#include "compiler/cost_model.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace memplan {
namespace {

/// A graph with one node `op` reading inputs of the given shapes and writing
/// one output of shape `out`, all of dtype d (shapes known, no inference).
Graph one_node(const std::string& op, const std::vector<Shape>& ins, const Shape& out, DType d) {
  Graph g;
  Node n;
  n.op = op;
  n.name = "n";
  for (size_t i = 0; i < ins.size(); ++i) {
    Tensor t;
    t.name = "in" + std::to_string(i);
    t.dtype = d;
    t.shape = ins[i];
    t.shape_known = true;
    t.role = Role::input;
    TensorId id = g.add_tensor(t);
    g.inputs.push_back(id);
    n.inputs.push_back(id);
  }
  Tensor o;
  o.name = "out";
  o.dtype = d;
  o.shape = out;
  o.shape_known = true;
  n.outputs.push_back(g.add_tensor(o));
  g.add_node(n);
  return g;
}

TEST(CostModel, BuiltinProfilesFromDataSheets) {
  EXPECT_EQ(builtin_device_names().size(), 7u);
  const DeviceProfile h100 = builtin_device("h100");
  EXPECT_DOUBLE_EQ(h100.flops_f32, 67e12);
  EXPECT_DOUBLE_EQ(h100.flops_bf16, 989.5e12);  // dense: half the data sheet's 1979 (sparsity)
  EXPECT_DOUBLE_EQ(h100.mem_bw, 3.35e12);
  EXPECT_EQ(h100.mem_bytes, int64_t{80} << 30);
  const DeviceProfile a40 = builtin_device("a100-40g");
  EXPECT_DOUBLE_EQ(a40.flops_tf32, 156e12);
  EXPECT_DOUBLE_EQ(a40.mem_bw, 1555e9);
  // V100 and T4 have no BF16 (or TF32) tensor cores.
  for (const char* name : {"v100", "t4"}) {
    EXPECT_EQ(builtin_device(name).flops_bf16, 0) << name;
    EXPECT_EQ(builtin_device(name).flops_tf32, 0) << name;
    EXPECT_GT(builtin_device(name).flops_f16, 0) << name;
  }
  for (std::string_view name : builtin_device_names()) {
    const DeviceProfile d = builtin_device(name);
    EXPECT_EQ(d.name, name);
    EXPECT_GT(d.flops_f32, 0);
    EXPECT_GT(d.mem_bw, 0);
    EXPECT_GT(d.mem_bytes, d.context_reserve_bytes);
    EXPECT_EQ(d.context_reserve_bytes, int64_t{512} << 20);
  }
  try {
    builtin_device("h200x");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown device 'h200x'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("a100-80g"), std::string::npos) << e.what();
  }
}

TEST(CostModel, JsonProfileRoundTripAndBase) {
  const DeviceProfile d = parse_device_profile(R"({"name": "mygpu", "flops_f32": 1e13, "flops_f16": 8e13,
      "mem_bw": 5e11, "mem_bytes": 8589934592, "launch_s": 1e-5, "efficiency": 0.5})");
  EXPECT_EQ(d.name, "mygpu");
  EXPECT_DOUBLE_EQ(d.flops_f32, 1e13);
  EXPECT_DOUBLE_EQ(d.flops_f16, 8e13);
  EXPECT_EQ(d.flops_bf16, 0);  // omitted: unsupported
  EXPECT_EQ(d.mem_bytes, int64_t{8} << 30);
  EXPECT_DOUBLE_EQ(d.launch_s, 1e-5);
  EXPECT_DOUBLE_EQ(d.efficiency, 0.5);
  EXPECT_DOUBLE_EQ(d.bw_efficiency, 0.8);  // default

  // "base" starts from a built-in profile and overrides some keys.
  const DeviceProfile b = parse_device_profile(R"({"name": "h100-pcie-ish", "base": "h100", "mem_bw": 2e12})");
  EXPECT_EQ(b.name, "h100-pcie-ish");
  EXPECT_DOUBLE_EQ(b.mem_bw, 2e12);
  EXPECT_DOUBLE_EQ(b.flops_bf16, 989.5e12);

  const std::string path = ::testing::TempDir() + "/cost_model_profile.json";
  std::ofstream(path) << R"({"name": "f", "flops_f32": 1e12, "mem_bw": 1e11, "mem_bytes": 1024})";
  EXPECT_EQ(load_device_profile(path).mem_bytes, 1024);
  std::remove(path.c_str());
}

void expect_error(const std::string& json, const std::string& fragment) {
  try {
    parse_device_profile(json, "profile x.json");
    FAIL() << "expected Error for " << json;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("profile x.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

TEST(CostModel, JsonProfileErrorsNameTheKey) {
  expect_error("{", "invalid JSON");
  expect_error("[1]", "expected a JSON object");
  expect_error(R"({"flops_f32": 1, "mem_bw": 1, "mem_bytes": 1})", "missing key 'name'");
  expect_error(R"({"name": "a", "mem_bw": 1, "mem_bytes": 1})", "missing key 'flops_f32'");
  expect_error(R"({"name": "a", "flops_f32": 1, "mem_bytes": 1})", "missing key 'mem_bw'");
  expect_error(R"({"name": "a", "flops_f32": 1, "mem_bw": 1})", "missing key 'mem_bytes'");
  expect_error(R"({"name": "a", "flops_f32": "fast", "mem_bw": 1, "mem_bytes": 1})",
               "key 'flops_f32' must be a number");
  expect_error(R"({"name": "a", "flops_f32": 1, "mem_bw": -1, "mem_bytes": 1})", "key 'mem_bw' must be >= 0");
  expect_error(R"({"name": "a", "flops_f32": 1, "mem_bw": 1, "mem_bytes": 1.5})",
               "key 'mem_bytes' must be an integer");
  expect_error(R"({"name": "a", "flops_f32": 1, "mem_bw": 1, "mem_bytes": 1, "efficiency": 1.5})",
               "key 'efficiency' must be in (0, 1]");
  expect_error(R"({"name": "a", "flops_f32": 1, "mem_bw": 1, "mem_bytes": 1, "flops_fp8": 1})",
               "unknown key 'flops_fp8'");
  expect_error(R"({"name": "a", "base": "tpu"})", "unknown device 'tpu'");
  try {
    load_device_profile("/nonexistent/dev.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dev.json"), std::string::npos);
  }
}

TEST(CostModel, RooflineComputeBoundMatmul) {
  // f32 MatMul [1024,1024] x [1024,1024] on A100-80GB:
  //   flops = 2 * 1024^3 = 2,147,483,648;
  //   bytes = 3 tensors * 4 MiB = 12,582,912;
  //   compute: 2147483648 / (19.5e12 * 0.6) = 183.5 us (FP32, no TF32);
  //   memory: 12582912 / (2039e9 * 0.8) = 7.7 us; compute-bound.
  const Graph g = one_node("MatMul", {{1024, 1024}, {1024, 1024}}, {1024, 1024}, DType::f32);
  const DeviceProfile a100 = builtin_device("a100-80g");
  const Node& n = g.node(NodeId(0));
  const double flops = 2.0 * 1024 * 1024 * 1024;
  EXPECT_NEAR(node_time(g, n, a100), flops / (19.5e12 * 0.6) + 5e-6, 1e-12);
  // With TF32 allowed: 2147483648 / (156e12 * 0.6) = 22.9 us, still above 7.7 us.
  EXPECT_NEAR(node_time(g, n, a100, {.allow_tf32 = true}), flops / (156e12 * 0.6) + 5e-6, 1e-12);
  // TF32 allowed on V100 (none): falls back to the FP32 peak 15.7 TFLOP/s.
  EXPECT_NEAR(node_time(g, n, builtin_device("v100"), {.allow_tf32 = true}), flops / (15.7e12 * 0.6) + 5e-6,
              1e-12);
}

TEST(CostModel, RooflineMemoryBoundElementwiseAndDtypes) {
  // Relu over 2^20 f32 elements on A100-80GB: bytes = 4 MiB in + 4 MiB out =
  // 8,388,608 -> 8388608 / (2039e9 * 0.8) = 5.14 us; flops = 2^20 ->
  // 2^20 / (19.5e12 * 0.6) = 0.09 us: memory-bound.
  const Graph g = one_node("Relu", {{1 << 20}}, {1 << 20}, DType::f32);
  const Node& n = g.node(NodeId(0));
  EXPECT_NEAR(node_time(g, n, builtin_device("a100-80g")), 8388608.0 / (2039e9 * 0.8) + 5e-6, 1e-15);

  // f16 MatMul [4096,4096]^2 on T4: 2*4096^3 = 137,438,953,472 flops at
  // 65e12 * 0.6 -> 3.52 ms; bytes 3 * 32 MiB / (320e9 * 0.8) = 0.39 ms.
  const Graph h = one_node("MatMul", {{4096, 4096}, {4096, 4096}}, {4096, 4096}, DType::f16);
  EXPECT_NEAR(node_time(h, h.node(NodeId(0)), builtin_device("t4")), 2.0 * 4096 * 4096 * 4096 / (65e12 * 0.6) + 5e-6,
              1e-12);

  // bf16 matmul on V100: unsupported dtype, named in the error.
  const Graph b = one_node("MatMul", {{64, 64}, {64, 64}}, {64, 64}, DType::bf16);
  try {
    node_time(b, b.node(NodeId(0)), builtin_device("v100"));
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'v100'"), std::string::npos) << msg;
  }
  EXPECT_TRUE(is_matmul_class("ConvGradWeight"));
  EXPECT_FALSE(is_matmul_class("Relu"));
}

}  // namespace
}  // namespace memplan
