// Tests for the planned CPU executor (runtime/cpu/cpu_executor.cc).
//
// Op-free plans (inputs, parameters, state and constants only) exercise
// binding, input copies, loss read-back, read/write, poison and guard without
// kernels. Plans with Add / Relu / MatMul run against the reference
// interpreter and are skipped until those kernels land in main.
// The counting operator new below forwards to malloc/free; GCC cannot see
// that the replacement pair matches and warns at every inlined delete.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>

#include "compiler/dtype_codec.h"
#include "exec_test_util.h"
#include "runtime/executor.h"
#include "runtime/interpreter.h"

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer owns operator new: no counting replacement (the counting
// tests skip themselves; the sanitizer build runs only BadInput* suites).
#define MEMPLAN_COUNT_NEW 0
namespace {
std::atomic<int64_t> g_news{0};
std::atomic<int64_t> g_new_bytes{0};
std::atomic<int64_t> g_largest_new{0};
}  // namespace
#else
#define MEMPLAN_COUNT_NEW 1
// Counts every global operator new in this test binary, so that a test can
// check that Executor::step allocates nothing.
namespace {
std::atomic<int64_t> g_news{0};
std::atomic<int64_t> g_new_bytes{0};
std::atomic<int64_t> g_largest_new{0};
}
void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  g_new_bytes.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
  int64_t prev = g_largest_new.load();
  while (static_cast<int64_t>(n) > prev && !g_largest_new.compare_exchange_weak(prev, static_cast<int64_t>(n))) {
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace memplan::testing {
namespace {

/// inputs x f32[4] (also an output), loss f32[] (the plan's loss), y f32[2];
/// parameter w f32[3,2]; state s f32[2]; constant c f32[2] = {1.5, -2}.
Plan op_free_plan() {
  Graph g;
  g.name = "opfree";
  g.opset = 17;
  TensorId x = add_decl(g, "x", Role::input, {4});
  TensorId loss = add_decl(g, "loss", Role::input, {});
  add_decl(g, "y", Role::input, {2});
  add_decl(g, "w", Role::parameter, {3, 2});
  add_decl(g, "s", Role::state, {2});
  TensorId c = add_decl(g, "c", Role::constant, {2});
  g.tensor(c).data = std::make_shared<const std::vector<uint8_t>>(f32_bytes({1.5f, -2.0f}));
  g.outputs = {x, loss};
  Plan p = plan_of(g);
  p.loss = static_cast<int32_t>(loss.v);
  return p;
}

using Inputs = std::map<std::string, std::vector<uint8_t>>;

TEST(ExecutorTest, OpFreePlanBindsCopiesAndReadsBack) {
  Plan p = op_free_plan();
  auto ex = make_cpu_executor(p);
  // Exactly the planned sizes are allocated.
  EXPECT_EQ(ex->arena_bytes(), p.summary.arena_bytes);
  EXPECT_EQ(ex->resident_bytes(), p.summary.resident_bytes);
  // Constant data is in place; parameters and state start as zeros.
  EXPECT_EQ(as_f32(ex->read("c")), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(as_f32(ex->read("w")), std::vector<float>(6, 0.0f));
  ex->write("w", f32_bytes({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(as_f32(ex->read("w")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  // Two steps: the outputs are the inputs, the loss is the scalar fed.
  for (uint64_t k = 0; k < 2; ++k) {
    EXPECT_EQ(ex->step_count(), k);
    float l = 0.25f + static_cast<float>(k);
    StepResult r = ex->step({{"x", f32_bytes({1, 2, 3, 4})}, {"loss", f32_bytes({l})},
                             {"y", f32_bytes({7, 8})}});
    EXPECT_TRUE(r.finite);
    EXPECT_EQ(r.loss, static_cast<double>(l));
    EXPECT_EQ(as_f32(ex->read("x")), (std::vector<float>{1, 2, 3, 4}));
  }
  EXPECT_EQ(ex->step_count(), 2u);
  ex->set_step_count(41);
  EXPECT_EQ(ex->step_count(), 41u);
  // The program is the plan's: same tensor names.
  EXPECT_TRUE(ex->graph().find_tensor("w").has_value());
}

TEST(ExecutorTest, GuardModeAllocatesCanariesAroundEveryArenaTensor) {
  Plan p = op_free_plan();
  auto ex = make_cpu_executor(p, {.guard = true});
  // x (16 B), loss (4 B) and y (8 B) are live together at step 0: with 2 x 64
  // canary bytes each and 256-byte alignment every one needs its own 256
  // bytes, as without guards, so the arena is at least 3 x 256.
  EXPECT_GE(ex->arena_bytes(), 3 * 256);
  StepResult r = ex->step({{"x", f32_bytes({1, 2, 3, 4})}, {"loss", f32_bytes({3.0f})},
                           {"y", f32_bytes({7, 8})}});
  EXPECT_EQ(r.loss, 3.0);
  EXPECT_EQ(as_f32(ex->read("x")), (std::vector<float>{1, 2, 3, 4}));
}

TEST(ExecutorTest, StepAllocatesNothing) {
  if (!MEMPLAN_COUNT_NEW) GTEST_SKIP() << "allocation counting is off under AddressSanitizer";
  Plan p = op_free_plan();
  for (bool guard : {false, true}) {
    int64_t at_start = g_news.load();
    auto ex = make_cpu_executor(p, {.poison = true, .guard = guard});
    ASSERT_GT(g_news.load(), at_start) << "the counter must see the executor's own allocations";
    Inputs in{{"x", f32_bytes({1, 2, 3, 4})}, {"loss", f32_bytes({1.0f})}, {"y", f32_bytes({7, 8})}};
    ex->step(in);  // warm-up
    int64_t before = g_news.load();
    for (int k = 0; k < 3; ++k) ex->step(in);
    EXPECT_EQ(g_news.load() - before, 0) << "guard=" << guard;
  }
}

TEST(BadInputExecutor, RejectsBadInputsAndWrites) {
  Plan p = op_free_plan();
  auto ex = make_cpu_executor(p);
  Inputs ok{{"x", f32_bytes({1, 2, 3, 4})}, {"loss", f32_bytes({1.0f})}, {"y", f32_bytes({7, 8})}};
  Inputs missing = ok;
  missing.erase("y");
  expect_error([&] { ex->step(missing); }, "no data for input 'y'");
  Inputs short_x = ok;
  short_x["x"] = f32_bytes({1, 2, 3});
  expect_error([&] { ex->step(short_x); }, "input 'x': 12 bytes given, f32[4] needs 16");
  Inputs extra = ok;
  extra["w"] = f32_bytes({0});
  expect_error([&] { ex->step(extra); }, "'w' is not an input of the plan");
  expect_error([&] { ex->write("w", f32_bytes({1})); }, "4 bytes given, f32[3,2] needs 24");
  expect_error([&] { ex->write("x", f32_bytes({1, 2, 3, 4})); }, "cannot write tensor 'x'");
  expect_error([&] { ex->read("y"); }, "cannot read tensor 'y'");
  expect_error([&] { ex->read("nope"); }, "no tensor 'nope'");
}

TEST(BadInputExecutor, RejectsAProgramThatDoesNotMatchThePlan) {
  Plan p = op_free_plan();
  Plan empty = p;
  empty.program.clear();
  expect_error([&] { make_cpu_executor(empty); }, "no program");
  Plan shape = p;
  size_t at = shape.program.find("%w : f32[3,2]");
  ASSERT_NE(at, std::string::npos) << shape.program;
  shape.program.replace(at, 13, "%w : f32[2,3]");
  expect_error([&] { make_cpu_executor(shape); }, "plan tensor 'w' is f32[3,2] but the program says f32[2,3]");
  Plan renamed = p;
  renamed.tensors[0].name = "renamed";
  expect_error([&] { make_cpu_executor(renamed); }, "'renamed' is missing from the plan's program");
  Plan outside = p;
  for (PlanTensor& t : outside.tensors)
    if (t.name == "x") t.offset = outside.summary.arena_bytes;  // past the end
  expect_error([&] { make_cpu_executor(outside); }, "tensor 'x'");
}

// ---- with kernels -----------------------------------------------------------

/// x[4,8] -> MatMul w[8,16] -> Add b[16] -> Relu -> MatMul w2[16,4] -> out[4,4]
Graph mlp_graph() {
  Graph g;
  g.name = "mlp";
  g.opset = 17;
  TensorId x = add_decl(g, "x", Role::input, {4, 8});
  TensorId w = add_decl(g, "w", Role::parameter, {8, 16});
  TensorId b = add_decl(g, "b", Role::parameter, {16});
  TensorId w2 = add_decl(g, "w2", Role::parameter, {16, 4});
  TensorId h = add_op(g, "MatMul", {x, w}, "h");
  TensorId h2 = add_op(g, "Add", {h, b}, "h2");
  TensorId r = add_op(g, "Relu", {h2}, "r");
  g.outputs = {add_op(g, "MatMul", {r, w2}, "out")};
  return g;
}

/// Deterministic values in [-1, 1) (no two equal), so any mix-up shows.
std::vector<float> values(size_t n, float salt) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(static_cast<float>(i) * 0.731f + salt);
  return v;
}

std::map<std::string, std::vector<uint8_t>> mlp_values() {
  return {{"x", f32_bytes(values(32, 0.1f))},
          {"w", f32_bytes(values(128, 0.2f))},
          {"b", f32_bytes(values(16, 0.3f))},
          {"w2", f32_bytes(values(64, 0.4f))}};
}

/// Runs g on the reference interpreter; returns output `name`.
std::vector<uint8_t> interpret(const Graph& g, const std::map<std::string, std::vector<uint8_t>>& vals,
                               const std::string& name) {
  Interpreter in(g);
  for (const auto& [k, v] : vals) in.set(*g.find_tensor(k), v);
  in.run();
  return in.get(*g.find_tensor(name));
}

std::vector<uint8_t> execute(const Plan& p, const ExecOptions& o,
                             const std::map<std::string, std::vector<uint8_t>>& vals,
                             const std::string& name) {
  auto ex = make_cpu_executor(p, o);
  Inputs in;
  for (const auto& [k, v] : vals) {
    if (ex->graph().tensor(*ex->graph().find_tensor(k)).role == Role::input) in[k] = v;
    else ex->write(k, v);
  }
  StepResult r = ex->step(in);
  EXPECT_TRUE(r.finite) << r.first_nonfinite_op;
  return ex->read(name);
}

TEST(ExecutorKernelTest, PlannedEqualsInterpreterInEveryMode) {
  MEMPLAN_REQUIRE_KERNELS("MatMul", "Add", "Relu");
  Graph g = mlp_graph();
  Plan p = plan_of(g);
  auto vals = mlp_values();
  std::vector<uint8_t> want = interpret(g, vals, "out");
  EXPECT_EQ(execute(p, {}, vals, "out"), want);  // bit-identical
  EXPECT_EQ(execute(p, {.poison = true}, vals, "out"), want);
  EXPECT_EQ(execute(p, {.guard = true}, vals, "out"), want);
  EXPECT_EQ(execute(p, {.poison = true, .guard = true}, vals, "out"), want);
}

// Kernels may build small index tables (broadcast strides, batch offsets:
// O(rank) or O(batches) integers) on the heap; no tensor data may be
// allocated. mlp_graph's smallest tensor is 32 floats = 128 bytes, so every
// allocation during a step must stay below that, and the total small.
TEST(ExecutorKernelTest, StepWithKernelsAllocatesNoTensorData) {
  if (!MEMPLAN_COUNT_NEW) GTEST_SKIP() << "allocation counting is off under AddressSanitizer";
  MEMPLAN_REQUIRE_KERNELS("MatMul", "Add", "Relu");
  Graph g = mlp_graph();
  Plan p = plan_of(g);
  auto ex = make_cpu_executor(p);
  Inputs in{{"x", f32_bytes(values(32, 0.1f))}};
  ex->step(in);
  g_largest_new.store(0);
  int64_t before = g_new_bytes.load();
  ex->step(in);
  EXPECT_LT(g_largest_new.load(), 128) << "a kernel allocated a tensor-sized buffer";
  EXPECT_LT(g_new_bytes.load() - before, 2048);
}

/// a = Relu(x), b = Relu(y), out = Add(a, b): a and b are live together.
Graph two_branch_graph() {
  Graph g;
  g.name = "two";
  g.opset = 17;
  TensorId x = add_decl(g, "x", Role::input, {64});
  TensorId y = add_decl(g, "y", Role::input, {64});
  TensorId a = add_op(g, "Relu", {x}, "a");
  TensorId b = add_op(g, "Relu", {y}, "b");
  g.outputs = {add_op(g, "Add", {a, b}, "out")};
  return g;
}

TEST(ExecutorKernelTest, OverlappingPlanGivesWrongResultsButGuardReplansCorrectly) {
  MEMPLAN_REQUIRE_KERNELS("Add", "Relu");
  Graph g = two_branch_graph();
  Plan p = plan_of(g);
  std::map<std::string, std::vector<uint8_t>> vals{{"x", f32_bytes(values(64, 0.5f))},
                                                   {"y", f32_bytes(values(64, 2.5f))}};
  std::vector<uint8_t> want = interpret(g, vals, "out");
  ASSERT_EQ(execute(p, {}, vals, "out"), want);
  // Corrupt the plan: b on top of a, both live at the Add; the verifier objects.
  Plan bad = p;
  int32_t ia = -1, ib = -1;
  for (size_t i = 0; i < bad.tensors.size(); ++i) {
    if (bad.tensors[i].name == "a") ia = static_cast<int32_t>(i);
    if (bad.tensors[i].name == "b") ib = static_cast<int32_t>(i);
  }
  bad.tensors[ib].offset = bad.tensors[ia].offset;
  EXPECT_FALSE(verify_plan(bad).ok());
  // Executed anyway, the Add reads the same bytes twice: out = 2 * relu(second).
  EXPECT_NE(execute(bad, {}, vals, "out"), want);
  // Guard mode places tensors from the recomputed lifetimes, not the plan's
  // offsets, so it computes the right answer.
  EXPECT_EQ(execute(bad, {.guard = true}, vals, "out"), want);
}

TEST(ExecutorKernelTest, NonFiniteOutputStopsTheStepNamingTheOp) {
  MEMPLAN_REQUIRE_KERNELS("MatMul", "Add", "Relu");
  Graph g = mlp_graph();
  Plan p = plan_of(g);
  auto ex = make_cpu_executor(p);
  std::vector<float> x = values(32, 0.1f);
  x[5] = NAN;  // the MatMul spreads it into a row of h
  StepResult r = ex->step({{"x", f32_bytes(x)}});
  EXPECT_FALSE(r.finite);
  EXPECT_NE(r.first_nonfinite_op.find("'node_h' (MatMul) wrote NaN to 'h'"), std::string::npos)
      << r.first_nonfinite_op;
  EXPECT_EQ(ex->step_count(), 0u);  // a failed step does not count
}

/// A deliberately broken Relu: writes one element past the end of its output.
void overrunning_relu(const KernelArgs& a) {
  const float* x = a.in[0].as<float>();
  float* y = a.out[0].as<float>();
  for (int64_t i = 0; i <= a.out[0].numel; ++i) y[i] = x[i % a.in[0].numel] > 0 ? 1.0f : 0.0f;
}

TEST(ExecutorKernelTest, GuardCatchesAKernelWritingPastItsOutput) {
  Graph g;
  g.name = "overrun";
  g.opset = 17;
  TensorId x = add_decl(g, "x", Role::input, {64});
  TensorId y = add_op(g, "Relu", {x}, "y");
  g.outputs = {y};
  Plan p = plan_of(g);
  ScopedKernelOverride broken("Relu", &overrunning_relu);
  auto ex = make_cpu_executor(p, {.guard = true});
  try {
    ex->step({{"x", f32_bytes(values(64, 0.5f))}});
    FAIL() << "guard mode did not notice the write past 'y'";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("op 0 'node_y' (Relu) wrote outside tensor 'y'"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace memplan::testing
