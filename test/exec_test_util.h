// Helpers for executor and `memplan run` tests: tiny graphs as literals,
// planned the way the pipeline plans them.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "compiler/ir_text.h"
#include "compiler/plan_verify.h"
#include "passes/infer_shapes.h"
#include "passes/plan_memory.h"
#include "runtime/kernel.h"
#include "op_test_util.h"

namespace memplan::testing {

inline TensorId add_decl(Graph& g, const std::string& name, Role role, Shape s,
                         DType d = DType::f32) {
  Tensor t;
  t.name = name;
  t.role = role;
  t.dtype = d;
  t.shape = std::move(s);
  t.shape_known = true;
  TensorId id = g.add_tensor(std::move(t));
  if (role == Role::input) g.inputs.push_back(id);
  return id;
}

/// Adds a node with one fresh output (shape inferred later).
inline TensorId add_op(Graph& g, const std::string& op, std::vector<TensorId> ins,
                       const std::string& out, Attrs attrs = {}) {
  Tensor t;
  t.name = out;
  TensorId o = g.add_tensor(std::move(t));
  Node n;
  n.op = op;
  n.name = "node_" + out;
  n.inputs = std::move(ins);
  n.outputs = {o};
  n.attrs = std::move(attrs);
  g.add_node(std::move(n));
  return o;
}

/// Shape inference, memory plan, embedded program (as compile_model does);
/// the plan must verify.
inline Plan plan_of(Graph& g) {
  if (g.num_nodes() > 0) infer_shapes(g);
  Plan p = plan_memory(g);
  p.program = print_graph(g, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  PlanVerifyResult r = verify_plan(p);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.errors.front());
  return p;
}

inline bool have_kernels(std::initializer_list<std::string_view> ops) {
  for (std::string_view op : ops)
    if (!find_kernel(op)) return false;
  return true;
}

#define MEMPLAN_REQUIRE_KERNELS(...)                                                      \
  do {                                                                                    \
    if (!::memplan::testing::have_kernels({__VA_ARGS__}))                                 \
      GTEST_SKIP() << "waits for CPU kernels (" #__VA_ARGS__ ") to land in main";         \
  } while (0)

inline std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
inline std::vector<float> as_f32(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  if (!v.empty()) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

/// A fresh empty directory under the system temp dir, removed by the destructor.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("memplan_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

}  // namespace memplan::testing
