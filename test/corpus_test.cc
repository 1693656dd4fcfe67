// Every real model of the corpus (test/models/opset14, opset17, opset18plus)
// at two bindings, one ctest each:
//   small       batch=2, seq=64
//   realistic   CNNs batch=32; gpt2 batch=8 seq=1024; bert, t5 batch=8 seq=512
// (test/models/README.md). Each goes through import -> bind-dims ->
// infer-shapes -> plan-memory with the default options and must:
//  1. round-trip through the textual IR, after import and after infer-shapes
//     (print(parse(print(g))) == print(g));
//  2. give a plan that the independent verifier accepts;
//  3. reach arena/LB <= 1.02: the offsets waste at most 2% over the largest
//     set of simultaneously live tensors of the chosen schedule.
// `seq` is bound only for models whose inputs use it (detected on the
// imported graph, so a new model needs no list here).
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "compiler/ir_text.h"
#include "compiler/autodiff.h"
#include "compiler/plan_verify.h"
#include "passes/bind_dims.h"
#include "passes/infer_shapes.h"
#include "passes/plan_memory.h"
#include "python-free-frontends/onnx_importer.h"
#include "test/cli_test_util.h"

namespace memplan::testing {
namespace {

struct CorpusCase {
  CorpusModel model;
  std::string binding;  // "small" or "realistic"
  std::string mode;     // "inference" or "training"
};

void PrintTo(const CorpusCase& c, std::ostream* os) {
  *os << c.model.opset << "/" << c.model.name << " " << c.binding << " " << c.mode;
}

std::vector<CorpusCase> corpus_cases() {
  std::vector<CorpusCase> r;
  for (const CorpusModel& m : corpus_models())
    for (const char* b : {"small", "realistic"})
      for (const char* mode : {"inference", "training"}) r.push_back({m, b, mode});
  return r;
}

/// Symbolic dim names used by the graph inputs.
std::set<std::string> input_dims(const Graph& g) {
  std::set<std::string> r;
  for (TensorId id : g.inputs)
    for (const std::string& s : g.tensor(id).sym)
      if (!s.empty()) r.insert(s);
  return r;
}

/// The README's bindings; only dims the model has are returned.
std::map<std::string, int64_t> binding_dims(const std::string& model, const std::string& binding,
                                            const std::set<std::string>& has) {
  std::map<std::string, int64_t> d;
  if (binding == "small") {
    d = {{"batch", 2}, {"seq", 64}};
  } else if (model == "gpt2") {
    d = {{"batch", 8}, {"seq", 1024}};
  } else if (has.count("seq")) {
    d = {{"batch", 8}, {"seq", 512}};  // bert, t5
  } else {
    d = {{"batch", 32}};  // CNNs and ViT
  }
  std::erase_if(d, [&](const auto& kv) { return !has.count(kv.first); });
  return d;
}

void expect_round_trip(const Graph& g, const std::string& what) {
  const std::string text = print_graph(g);
  Graph back = parse_graph(text, what);
  EXPECT_EQ(print_graph(back), text) << what << ": textual IR is not a fixed point";
}

class Corpus : public ::testing::TestWithParam<CorpusCase> {};

TEST_P(Corpus, ImportsPlansAndVerifies) {
  const CorpusCase& c = GetParam();
  const auto t0 = std::chrono::steady_clock::now();

  ImportResult imp = import_onnx_file(c.model.path);
  Graph& g = imp.graph;
  ASSERT_GT(g.num_nodes(), 0u);
  expect_round_trip(g, c.model.path + " after import");

  const std::set<std::string> has = input_dims(g);
  ASSERT_TRUE(has.count("batch")) << "corpus models name their batch dim 'batch'";
  const std::map<std::string, int64_t> dims = binding_dims(c.model.name, c.binding, has);
  bind_dims(g, {.dims = dims});
  infer_shapes(g, {});
  expect_round_trip(g, c.model.path + " after infer-shapes");
  if (c.mode == "training") {
    // Default training step: the model's own loss, AdamW on every parameter.
    TrainingStats ts = build_training_graph(g, {});
    EXPECT_GT(ts.params_trained, 0);
    verify(g);
    expect_round_trip(g, c.model.path + " after autodiff");
  }

  Plan plan = plan_memory(g);
  PlanVerifyResult v = verify_plan(plan);
  ASSERT_TRUE(v.ok()) << c.model.path << ": " << v.errors.front();
  if (c.mode == "training") {
    // The role breakdown `inspect` prints: resident roles in total, so
    // parameters and optimizer state always show; gradients exist as tensors
    // (they show in bytes_by_role only when live at the peak step).
    for (const char* role : {"parameter", "optimizer_state"})
      EXPECT_GT(plan.summary.bytes_by_role.count(role), 0u) << role;
    EXPECT_TRUE(std::any_of(plan.tensors.begin(), plan.tensors.end(),
                            [](const PlanTensor& t) { return t.role == Role::gradient; }));
  }

  const PlanSummary& s = plan.summary;
  ASSERT_GT(s.lower_bound_bytes, 0);
  const double ratio =
      static_cast<double>(s.arena_bytes) / static_cast<double>(s.lower_bound_bytes);
  EXPECT_LE(ratio, 1.02) << c.model.path << " " << c.binding << ": arena " << s.arena_bytes
                         << " lower bound " << s.lower_bound_bytes;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("arena_bytes", std::to_string(s.arena_bytes));
  RecordProperty("arena_over_lb", std::to_string(ratio));
  RecordProperty("seconds", std::to_string(secs));
}

INSTANTIATE_TEST_SUITE_P(Models, Corpus, ::testing::ValuesIn(corpus_cases()),
                         [](const ::testing::TestParamInfo<CorpusCase>& info) {
                           const CorpusCase& c = info.param;
                           return c.model.opset + "_" + c.model.name + "_" + c.binding + "_" +
                                  c.mode;
                         });

TEST(CorpusFiles, TheCorpusIsThere) {
  // 9 architectures in each of opset14 and opset17 (README.md).
  EXPECT_GE(corpus_models().size(), 18u);
}

}  // namespace
}  // namespace memplan::testing
