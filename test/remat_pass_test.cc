// Rematerialization pass (passes/remat.h) through the pipeline (--budget).
//
//  - size parsing: each unit's multiplier written out (GiB = 2^30, GB = 10^9);
//  - samples (training mode): the unconstrained peak P is compiled first; at
//    budgets 90%, 70%, 50% of P and at the smallest budget bisection finds,
//    the plan verifies, its peak is within the budget, and executing it on the
//    CPU for 2 steps gives bit-identical losses and parameters to the
//    unconstrained plan (recomputation runs the same kernels on the same
//    values; the tiny transformer's Dropout must reproduce its mask through
//    the clone's rng_key, else the parameters would differ);
//  - a budget below the resident bytes is an Error naming the smallest peak;
//  - every budget from the sure fit (the try aimed below the solver's floor)
//    up to the unconstrained peak fits (try_fit_budget), samples and two
//    small corpus models;
//  - every corpus model, small binding, training: 90% of its peak fits, or
//    the error names a smallest peak that does fit when asked for.
#include <gtest/gtest.h>

#include <cstring>

#include "compiler/plan_verify.h"
#include "compiler/ir_text.h"
#include "compiler/pipeline.h"
#include "compiler/size_parse.h"
#include "passes/remat.h"
#include "passes/remat_fast.h"
#include "python-free-frontends/onnx_importer.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/weights.h"
#include "test/cli_test_util.h"
#include "test/train_test_util.h"

namespace memplan::testing {
namespace {

TEST(RematPassSizeParse, UnitsAndErrors) {
  EXPECT_EQ(parse_size("16GiB"), int64_t{16} << 30);
  EXPECT_EQ(parse_size("16GB"), int64_t{16} * 1000 * 1000 * 1000);
  EXPECT_EQ(parse_size("800MiB"), int64_t{800} << 20);
  EXPECT_EQ(parse_size("1.5GiB"), (int64_t{3} << 30) / 2);
  EXPECT_EQ(parse_size("4096"), 4096);
  EXPECT_EQ(parse_size("4096B"), 4096);
  EXPECT_EQ(parse_size("2kib"), 2048);
  EXPECT_EQ(parse_size("3KB"), 3000);
  EXPECT_EQ(parse_size("1TiB"), int64_t{1} << 40);
  for (const char* bad : {"", "GiB", "-1GiB", "16XB", "1.2.3GB", "1.5", "99999999999TiB", "16 GiB"})
    EXPECT_THROW(parse_size(bad, "--budget"), Error) << bad;
  try {
    parse_size("16XB", "--budget");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--budget '16XB'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unknown unit"), std::string::npos) << e.what();
  }
}

struct Sample {
  std::string path;
  std::map<std::string, int64_t> dims;
};

Sample cnn() { return {tiny_cnn(), {{"batch", 16}}}; }
Sample transformer() { return {tiny_transformer(), {{"batch", 8}, {"seq", 32}}}; }

CompileResult compile_at(const Sample& s, std::optional<int64_t> budget) {
  CompileOptions o;
  o.dims = s.dims;
  o.budget_bytes = budget;
  o.micro_batches = 1;  // rematerialization alone (budget_search_test.cc covers the joint search)
  o.precision = "fp32";
  return compile_model(s.path, o);
}

/// Losses of 2 steps and every resident tensor's bytes after them.
Trace execute(const Plan& p) { return execute_steps(p, 11, 5, 3); }

bool has_dropout(const Plan& p) {
  return std::any_of(p.ops.begin(), p.ops.end(), [](const PlanOp& o) { return o.op == "Dropout"; });
}

void check_sample(const Sample& s, bool expect_dropout, int min_fitting_pct) {
  CompileResult base = compile_at(s, std::nullopt);
  const int64_t P = base.plan.summary.peak_bytes;
  const int64_t R = base.plan.summary.resident_bytes;
  ASSERT_TRUE(verify_plan(base.plan).ok());
  const Trace ref = execute(base.plan);
  EXPECT_EQ(has_dropout(base.plan), expect_dropout);

  auto check_budget = [&](int64_t budget, const std::string& what) {
    CompileResult r = compile_at(s, budget);
    PlanVerifyResult v = verify_plan(r.plan);
    ASSERT_TRUE(v.ok()) << what << ": " << v.errors.front();
    ASSERT_TRUE(r.plan.budget_bytes.has_value());
    EXPECT_LE(r.plan.summary.peak_bytes, budget) << what;
    EXPECT_GT(r.remat_recomputed, 0) << what << ": a budget below P needs recomputation";
    std::cout << s.path << " " << what << ": budget " << budget << " peak "
              << r.plan.summary.peak_bytes << " (P " << P << ", resident " << R << "), "
              << r.remat_recomputed << " recomputed runs, +" << r.remat_extra_seconds << " s\n";
    for (const PlanOp& o : r.plan.ops)
      if (o.op == "BatchNormTraining" && o.name.find("/remat") != std::string::npos)
        std::cout << "  (a BatchNormTraining is recomputed: " << o.name << ")\n";
    if (expect_dropout) {
      bool cloned_dropout = false;
      for (const PlanOp& o : r.plan.ops)
        if (o.op == "Dropout" && o.name.find("/remat") != std::string::npos) cloned_dropout = true;
      if (cloned_dropout) std::cout << "  (a Dropout is recomputed)\n";
    }
    expect_identical(ref, execute(r.plan), what);
  };
  for (int pct : {90, 70, 50}) {
    const int64_t budget = P * pct / 100;
    if (pct >= min_fitting_pct) {
      check_budget(budget, std::to_string(pct) + "% of P");
      continue;
    }
    // Below what the runtime allows (see the callers): the error must say so.
    try {
      compile_at(s, budget);
      ADD_FAILURE() << pct << "% of P was expected not to fit; update the test";
    } catch (const Error& e) {
      const std::string m = e.what();
      std::cout << s.path << " " << pct << "% of P (" << budget << "): " << m << "\n";
      EXPECT_NE(m.find("cannot fit " + std::to_string(budget) + " bytes: the smallest budget found that fits is"),
                std::string::npos)
          << m;
    }
  }

  // Smallest budget that works: bisection between R (never enough: the
  // arena holds at least the inputs) and the smallest percentage that fits.
  int64_t lo = R, hi = P * min_fitting_pct / 100;
  for (int i = 0; i < 8 && hi - lo > 4096; ++i) {
    const int64_t mid = lo + (hi - lo) / 2;
    try {
      compile_at(s, mid);
      hi = mid;
    } catch (const Error&) {
      lo = mid;
    }
  }
  check_budget(hi, "smallest found");

  // Infeasible: below the resident bytes.
  try {
    compile_at(s, R / 2);
    ADD_FAILURE() << "a budget of half the resident bytes cannot fit";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cannot fit " + std::to_string(R / 2) + " bytes"), std::string::npos) << m;
    EXPECT_NE(m.find("the smallest budget found that fits is"), std::string::npos) << m;
    EXPECT_NE(m.find("resident storage alone is " + std::to_string(R)), std::string::npos) << m;
  }
}

// tiny_cnn (batch 16): P = 7211008 (6.88 MiB). 50% (3605504) is below the
// problem's floor of 3671808 bytes: the largest single step (an op's inputs,
// output and im2col workspace, plus resident storage, inputs and the saved
// BatchNorm statistics that must stay live) cannot be reduced by
// recomputation. 90% and 70% fit; at the smallest budget found a
// BatchNormTraining is recomputed (its Y-only clone), so that path runs too.
TEST(RematPass, TinyCnnFitsAndTrainsIdentically) { check_sample(cnn(), false, 70); }
// tiny_transformer (batch 8, seq 32): P = 6413056 with 1466880 resident;
// 90%, 70% and 50% (3206528) fit (the smallest found was ~3.26 MB before the
// fast solver's local search, remat_fast.h steps 5-7; ~3.19 MB with it).
TEST(RematPass, TinyTransformerFitsAndTrainsIdentically) { check_sample(transformer(), true, 50); }

// The sure fit (passes/remat.h): the peak of the try aimed below the
// solver's floor, whose result does not depend on the budget, so every budget
// from it up fits. Before that try existed, a budget above the lowest peak
// the solver had reached could fail (the tries aimed at a reachable budget
// stop at the first schedule they find, and the greedy is not monotone in
// the budget): GPT-2 b8 s1024 bf16 k=8 reached 2.60 GB aimed below its
// floor, yet failed at 3.06 GB. Checked at 16 budgets between the sure fit
// and the unconstrained peak, on the samples and two small corpus models.
TEST(RematPass, EveryBudgetFromTheSureFitUpFits) {
  std::vector<Sample> samples = {cnn(), transformer()};
  for (const CorpusModel& m : corpus_models())
    if (m.opset == "opset17" && (m.name == "gpt2" || m.name == "resnet18"))
      samples.push_back({m.path, m.name == "gpt2" ? std::map<std::string, int64_t>{{"batch", 4}, {"seq", 256}}
                                                  : std::map<std::string, int64_t>{{"batch", 2}}});
  ASSERT_EQ(samples.size(), 4u);
  for (const Sample& s : samples) {
    const Graph g = compile_at(s, std::nullopt).graph;
    Graph low_graph = g;
    const RematFit low = try_fit_budget(low_graph, {}, {.budget_bytes = 1});
    ASSERT_FALSE(low.fits) << s.path;
    const int64_t sure = low.sure_fit, P = low.unconstrained_peak;
    ASSERT_LT(sure, P) << s.path << ": recomputation lowers no peak";
    EXPECT_GE(sure, low.floor_bytes) << s.path;
    int fits = 0;
    for (int i = 0; i < 16; ++i) {
      const int64_t budget = sure + (P - sure) * i / 16;
      Graph h = g;
      const RematFit f = try_fit_budget(h, {}, {.budget_bytes = budget});
      EXPECT_TRUE(f.fits) << s.path << " at " << budget << " (sure fit " << sure << ", P " << P
                          << "): " << f.note;
      if (!f.fits) continue;
      ++fits;
      EXPECT_LE(f.plan.summary.peak_bytes, budget) << s.path;
      EXPECT_TRUE(verify_plan(f.plan).ok()) << s.path << " at " << budget;
    }
    std::cout << s.path << ": floor " << low.floor_bytes << ", sure fit " << sure << ", P " << P
              << ", " << fits << "/16 budgets from the sure fit up fit\n";
  }
}

// The budget search's second pass (compiler/budget_search.h) passes the
// unconstrained peak it already has and a limit above which a plan gets no
// offsets. Neither changes what a plan that is placed reaches: with the peak
// known, the sure fit, lowest peak and floor are those of the plain call;
// with the limit far below the sure fit, the try aimed below the floor is not
// placed and does not count as a sure fit (its peak is only a lower bound),
// and at the sure fit it is placed as before.
TEST(RematPass, KnownUnconstrainedPeakAndSkippedOffsetsKeepTheSureFit) {
  const Graph g = compile_at(transformer(), std::nullopt).graph;
  Graph plain_graph = g;
  const RematFit plain = try_fit_budget(plain_graph, {}, {.budget_bytes = 1});
  ASSERT_FALSE(plain.fits);
  ASSERT_LT(plain.sure_fit, plain.unconstrained_peak);
  const UnconstrainedPeak known{plain.unconstrained_peak, plain.plan.summary.resident_bytes};

  Graph h = g;
  const RematFit k = try_fit_budget(h, {}, {.budget_bytes = 1}, known);
  EXPECT_FALSE(k.fits);
  EXPECT_EQ(k.sure_fit, plain.sure_fit);
  EXPECT_EQ(k.best_peak, plain.best_peak);
  EXPECT_EQ(k.floor_bytes, plain.floor_bytes);
  EXPECT_EQ(k.unconstrained_peak, plain.unconstrained_peak);
  EXPECT_EQ(k.plan.summary.resident_bytes, known.resident_bytes);
  EXPECT_TRUE(k.plan.ops.empty());  // not planned again

  PlanMemoryOptions at;
  at.skip_offsets_above = plain.sure_fit;
  h = g;
  EXPECT_EQ(try_fit_budget(h, at, {.budget_bytes = 1}, known).sure_fit, plain.sure_fit);

  PlanMemoryOptions below;  // far below: resident storage plus the lower bound is above it
  below.skip_offsets_above = plain.floor_bytes / 2;
  h = g;
  const RematFit s = try_fit_budget(h, below, {.budget_bytes = 1}, known);
  EXPECT_FALSE(s.fits);
  EXPECT_EQ(s.sure_fit, plain.unconstrained_peak);
  EXPECT_LE(s.best_peak, plain.best_peak);  // a lower bound of the same schedule's peak
  EXPECT_GT(s.best_peak, *below.skip_offsets_above);

  Graph unused = g;
  EXPECT_THROW(try_fit_budget(unused, {}, {.budget_bytes = plain.unconstrained_peak}, known), InternalError);
}

// --remat-solver exact end to end: CBC on the coarsened problem after the fast
// solver, its schedule kept when cheaper; the plan fits, verifies and trains
// bit-identically to the plan without a budget (remat_compare_test.cc
// compares the solvers' schedules; this checks what the pipeline makes of
// them).
TEST(RematPass, ExactSolverPlansFitVerifyAndTrainIdentically) {
  for (const Sample& s : {cnn(), transformer()}) {
    const CompileResult base = compile_at(s, std::nullopt);
    const int64_t budget = base.plan.summary.peak_bytes * 8 / 10;
    CompileOptions o;
    o.dims = s.dims;
    o.budget_bytes = budget;
    o.micro_batches = 1;
    o.precision = "fp32";
    o.remat_solver = "exact";
    const CompileResult r = compile_model(s.path, o);
    const PlanVerifyResult v = verify_plan(r.plan);
    ASSERT_TRUE(v.ok()) << s.path << ": " << v.errors.front();
    EXPECT_LE(r.plan.summary.peak_bytes, budget) << s.path;
    EXPECT_GT(r.remat_recomputed, 0) << s.path;
    expect_identical(execute(base.plan), execute(r.plan), s.path + " exact at 80%");
  }
}

// The problem holds the graph inputs all step; a plan frees each after its
// last use. So the problem's floor is no bound on a plan's peak: resnet18
// (batch 32, k = 1, fp32) lowered to its problem floor peaks 256 bytes (its
// labels) below it. The reported floor_bytes leaves the inputs out and bounds
// every plan; before, that try did not count as a sure fit (its peak was
// below "the floor") and a compile at 100 MiB named the unconstrained peak,
// 771.5 MiB, as the smallest budget that fits instead of 446.2 MiB.
TEST(RematPass, TheFloorBoundsThePlansPeakAndAPeakBelowTheProblemFloorIsSure) {
  std::string path;
  for (const CorpusModel& m : corpus_models())
    if (m.opset == "opset17" && m.name == "resnet18") path = m.path;
  ASSERT_FALSE(path.empty());
  std::vector<Sample> samples = {cnn(), transformer(), {path, {{"batch", 32}}}};
  int below_problem_floor = 0;
  for (const Sample& s : samples) {
    Graph g = compile_at(s, std::nullopt).graph;
    const int64_t problem_floor = remat_peak_floor(remat_problem(g, {.budget_bytes = 1}));
    const RematFit f = try_fit_budget(g, {}, {.budget_bytes = 1});
    ASSERT_FALSE(f.fits) << s.path;
    EXPECT_LE(f.floor_bytes, f.best_peak) << s.path;
    EXPECT_LT(f.floor_bytes, problem_floor) << s.path;  // every model here has inputs
    EXPECT_LT(f.sure_fit, f.unconstrained_peak) << s.path;
    EXPECT_EQ(f.sure_fit, f.best_peak) << s.path;
    if (f.best_peak < problem_floor) ++below_problem_floor;
    // A compile at the sure fit fits.
    EXPECT_LE(compile_at(s, f.sure_fit).plan.summary.peak_bytes, f.sure_fit) << s.path;
  }
  EXPECT_GT(below_problem_floor, 0);
}

// Micro-batching unrolls k replicas, replica i >= 1 of node X named
// "X/mb<i>" (compiler/autodiff_microbatch.cc). The problem lines up their
// entries as replica sets, which the fast solver's greedy uses to try a
// recomputation in every replica at once (remat_fast.h, step 3). A set holds
// one entry per replica, in order, of the same bytes and cost (a misaligned
// entry would differ; recomputability and ordering inputs may: replica 0's
// gradients are the accumulators the others add to in place); most of the
// unrolled step is in sets.
TEST(RematPass, MicroBatchReplicasBecomeReplicaSets) {
  for (int64_t k : {2, 4}) {
    CompileOptions o;
    o.dims = transformer().dims;
    o.micro_batches = k;
    o.precision = "fp32";
    const RematProblem p = remat_problem(compile_model(tiny_transformer(), o).graph, {});
    ASSERT_EQ(p.replica_set.size(), p.nodes.size()) << "k=" << k;
    ASSERT_FALSE(p.replica_sets.empty()) << "k=" << k;
    size_t in_sets = 0;
    for (size_t j = 0; j < p.replica_sets.size(); ++j) {
      const std::vector<int32_t>& set = p.replica_sets[j];
      ASSERT_EQ(set.size(), static_cast<size_t>(k)) << "set " << j;
      for (size_t i = 0; i < set.size(); ++i) {
        const RematNode &a = p.nodes[static_cast<size_t>(set[0])], &b = p.nodes[static_cast<size_t>(set[i])];
        EXPECT_EQ(p.replica_set[static_cast<size_t>(set[i])], static_cast<int32_t>(j));
        if (i > 0) {
          EXPECT_LT(set[i - 1], set[i]) << "set " << j;
        }
        EXPECT_EQ(b.bytes, a.bytes) << "set " << j << " replica " << i;
        EXPECT_NEAR(b.cost, a.cost, 1e-9 * a.cost) << "set " << j << " replica " << i;
      }
      in_sets += set.size();
    }
    std::cout << "tiny_transformer k=" << k << ": " << p.nodes.size() << " entries, " << p.replica_sets.size()
              << " replica sets (" << in_sets << " entries)\n";
    EXPECT_GT(in_sets * 10, p.nodes.size() * 7) << "k=" << k;
  }
  // Without micro-batching there are none.
  const RematProblem one = remat_problem(compile_at(transformer(), std::nullopt).graph, {});
  EXPECT_TRUE(one.replica_sets.empty());
  EXPECT_TRUE(one.replica_set.empty());
}

// With lower_peak_floor_limit at or below the floor and a budget below it,
// the caller (the budget search's first pass) has no use for a lower peak:
// rematerialize() returns after the floor, solving and applying nothing,
// and try_fit_budget reports the floor with the unconstrained plan. With the
// limit above the floor the solver lowers the peak (the sure fit).
TEST(RematPass, BelowTheFloorWithNoUseForALowerPeakNothingIsSolved) {
  const Graph g = compile_at(transformer(), std::nullopt).graph;
  Graph solved_graph = g;
  const RematFit solved = try_fit_budget(solved_graph, {}, {.budget_bytes = 1});
  ASSERT_FALSE(solved.fits);
  ASSERT_GT(solved.floor_bytes, 1);
  EXPECT_LT(solved.sure_fit, solved.unconstrained_peak);
  EXPECT_LT(solved.best_peak, solved.unconstrained_peak);

  Graph skipped_graph = g;
  const RematFit skipped =
      try_fit_budget(skipped_graph, {}, {.budget_bytes = 1, .lower_peak_floor_limit = solved.floor_bytes});
  EXPECT_FALSE(skipped.fits);
  EXPECT_EQ(skipped.floor_bytes, solved.floor_bytes);
  EXPECT_EQ(skipped.best_peak, skipped.unconstrained_peak);
  EXPECT_EQ(skipped.sure_fit, skipped.unconstrained_peak);
  EXPECT_EQ(skipped.unconstrained_peak, solved.unconstrained_peak);
  EXPECT_NE(skipped.note.find("floor is " + std::to_string(solved.floor_bytes) + " bytes"), std::string::npos)
      << skipped.note;
  EXPECT_EQ(print_graph(skipped_graph), print_graph(g));

  Graph direct = g;
  const RematResult r = rematerialize(direct, {.budget_bytes = 1, .lower_peak_floor_limit = solved.floor_bytes});
  EXPECT_TRUE(r.not_solved);
  EXPECT_TRUE(r.schedule.empty());
  EXPECT_EQ(print_graph(direct), print_graph(g));
}

TEST(RematPass, CliBudgetFlag) {
  TempDir dir;
  CliRun bad = run({"compile", tiny_cnn(), "--dim", "batch=16", "--budget", "12XB", "-o", dir.file("p.json")});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("unknown unit"), std::string::npos) << bad.err;
  CompileResult base = compile_at(cnn(), std::nullopt);
  const std::string budget = std::to_string(base.plan.summary.peak_bytes * 9 / 10);
  CliRun ok = run({"compile", tiny_cnn(), "--dim", "batch=16", "--budget", budget,
                   "--micro-batches", "1", "--precision", "fp32", "-o", dir.file("p.json")});
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_NE(ok.out.find("k=1"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("recompute "), std::string::npos) << ok.out;
  EXPECT_EQ(ok.out.find("recompute      0 node runs"), std::string::npos) << ok.out;
  Plan p = read_plan_file(dir.file("p.json"));
  EXPECT_EQ(p.budget_bytes, std::stoll(budget));
  EXPECT_TRUE(verify_plan(p).ok());
}

class RematPassCorpus : public ::testing::TestWithParam<CorpusModel> {};

/// The number after `key` in an error message ("... the smallest budget found that fits is 123 ...").
int64_t number_after(const std::string& text, const std::string& key) {
  size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + key.size()));
}

// Rematerialization alone (fp32, k = 1; budget_search_test.cc covers the
// joint search) cannot reach 70% of P on most corpus models at batch 2:
// parameters and AdamW's moments are 67-80% of P there.
// What must hold today, for every model: at 90% of P the compiler either
// returns a verified plan within the budget, or fails with the smallest peak
// it can meet, and that figure is honest: compiling at exactly that budget
// succeeds.
TEST_P(RematPassCorpus, SmallTrainingFitsOrNamesAnAchievableBudget) {
  const CorpusModel& m = GetParam();
  Sample s{m.path, {}};
  // The small binding: batch 2, seq 64 where the model has a seq dim.
  {
    ImportResult imp = import_onnx_file(m.path);
    for (TensorId id : imp.graph.inputs)
      for (const std::string& d : imp.graph.tensor(id).sym) {
        if (d == "batch") s.dims["batch"] = 2;
        if (d == "seq") s.dims["seq"] = 64;
      }
  }
  CompileResult base = compile_at(s, std::nullopt);
  const int64_t P = base.plan.summary.peak_bytes;
  int64_t budget = P * 9 / 10;
  CompileResult r;
  try {
    r = compile_at(s, budget);
  } catch (const Error& e) {
    const std::string msg = e.what();
    const int64_t smallest = number_after(msg, "the smallest budget found that fits is ");
    ASSERT_GT(smallest, budget) << msg;
    // Equal to P where the peak is already at the floor (vgg16: one op's
    // inputs, outputs and workspace plus resident storage).
    ASSERT_LE(smallest, P) << msg;
    budget = smallest;
    r = compile_at(s, budget);  // must not throw: the reported figure is achievable
  }
  PlanVerifyResult v = verify_plan(r.plan);
  ASSERT_TRUE(v.ok()) << v.errors.front();
  EXPECT_LE(r.plan.summary.peak_bytes, budget);
  EXPECT_EQ(r.plan.budget_bytes, budget);
  std::cout << m.name << ": P " << P << " budget " << budget << " peak " << r.plan.summary.peak_bytes
            << " resident " << r.plan.summary.resident_bytes << " recomputed " << r.remat_recomputed
            << " +" << r.remat_extra_seconds << " s\n";
}

INSTANTIATE_TEST_SUITE_P(RematPassSmall, RematPassCorpus, ::testing::ValuesIn(corpus_models()),
                         [](const ::testing::TestParamInfo<CorpusModel>& i) {
                           return i.param.opset + "_" + i.param.name;
                         });

}  // namespace
}  // namespace memplan::testing
