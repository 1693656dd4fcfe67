// The budget solver (compiler/budget_search.h) through compile_model and the
// CLI: at 90%, 70% and 50% of the unconstrained training peak P and at the
// smallest budget found, the plan fits and verifies, records its decisions,
// and — executed — gives the unplanned step's results:
//  - the reference for a plan with k micro-batches is the plan compiled with
//    --micro-batches k and no budget (the same graph without recomputation):
//    recomputation must not change a bit;
//  - for BatchNorm-free models the k-micro-batch step also matches the k = 1
//    step within 1e-5 relative (BatchNorm's statistics are per micro-batch,
//    so tiny_cnn is only compared against its own k).
// Low precision is covered in precision_test.cc; here --precision fp32.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "compiler/budget_search.h"
#include "compiler/pipeline.h"
#include "compiler/plan_verify.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/weights.h"
#include "python-free-frontends/onnx_importer.h"
#include "test/cli_test_util.h"
#include "test/train_test_util.h"

namespace memplan::testing {
namespace {

struct Sample {
  std::string path;
  std::map<std::string, int64_t> dims;
  bool batchnorm = false;
  bool static_batch = false;  // micro-batching impossible (batch fixed in the model)
};

Sample cnn() { return {tiny_cnn(), {{"batch", 32}}, true}; }
Sample transformer() { return {tiny_transformer(), {{"batch", 8}, {"seq", 32}}, false}; }

CompileOptions options(const Sample& s, std::optional<int64_t> budget) {
  CompileOptions o;
  o.dims = s.dims;
  o.budget_bytes = budget;
  o.precision = "fp32";
  // SGD: Adam's m / sqrt(v) turns rounding noise in a near-zero gradient into
  // a full-size step, so only SGD makes "k micro-batches == k = 1 within
  // 1e-5" a meaningful check. (Bit-identity checks hold for any optimizer;
  // remat_pass_test.cc runs them with AdamW.)
  o.training.optimizer.kind = OptimizerKind::sgd;
  o.training.optimizer.lr = 0.1;
  return o;
}

Trace execute(const Plan& p) { return execute_steps(p, 7, 3, 5); }

/// Relative L2 distance of two f32 buffers.
double rel_l2(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  const float* x = reinterpret_cast<const float*>(a.data());
  const float* y = reinterpret_cast<const float*>(b.data());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() / 4; ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(y[i]) * y[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

void expect_close(const Trace& a, const Trace& b, double tol, const std::string& what) {
  for (size_t i = 0; i < a.losses.size(); ++i)
    EXPECT_NEAR(a.losses[i], b.losses[i], tol * std::abs(b.losses[i])) << what << " step " << i;
  for (const auto& [name, bytes] : a.resident)
    if (name != "memplan/step") {
      EXPECT_LE(rel_l2(bytes, b.resident.at(name)), tol) << what << ": " << name;
    }
}

int64_t number_after(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size()));
}

/// The smallest budget the solver reports for an impossible one (1 KiB).
int64_t smallest_budget(const Sample& s) {
  try {
    compile_model(s.path, options(s, 1024));
  } catch (const Error& e) {
    const int64_t b = number_after(e.what(), "the smallest budget found that fits is ");
    EXPECT_GT(b, 1024) << e.what();
    // Rematerialization's lever in the user's terms: the winner's floor, not
    // the solver's note against its internal target.
    const int64_t floor = number_after(e.what(), "no plan of that candidate goes below its floor of ");
    EXPECT_GT(floor, 1024) << e.what();
    EXPECT_LE(floor, b) << e.what();
    EXPECT_EQ(std::string(e.what()).find("best peak reached"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(s.static_batch ? "Levers: micro-batching unavailable: "
                                                        : "Levers: micro-batching reached k="),
              std::string::npos)
        << e.what();
    if (s.static_batch) {  // the user gave no --micro-batches: the note does not name the flag
      EXPECT_EQ(std::string(e.what()).find("--micro-batches"), std::string::npos) << e.what();
    }
    return b;
  }
  ADD_FAILURE() << "1 KiB cannot hold the parameters";
  return -1;
}

void check_sample(const Sample& s) {
  CompileResult base = compile_model(s.path, options(s, std::nullopt));
  const int64_t P = base.plan.summary.peak_bytes;
  ASSERT_TRUE(base.plan.decisions.has_value());
  EXPECT_EQ(base.plan.decisions->micro_batches, 1) << "no budget: the device's memory is plenty";
  EXPECT_EQ(base.plan.decisions->unconstrained_peak_bytes, P);
  const Trace k1 = execute(base.plan);

  std::vector<std::pair<std::string, int64_t>> budgets = {
      {"90%", P * 9 / 10}, {"70%", P * 7 / 10}, {"50%", P / 2}, {"smallest", smallest_budget(s)}};
  for (const auto& [what, budget] : budgets) {
    SCOPED_TRACE(s.path + " at " + what);
    CompileResult r;
    try {
      r = compile_model(s.path, options(s, budget));
    } catch (const Error& e) {
      // Only a static-batch model may run out of levers above the smallest
      // budget (recomputation alone); the reported figure must be above.
      ASSERT_TRUE(s.static_batch) << e.what();
      EXPECT_GT(number_after(e.what(), "the smallest budget found that fits is "), budget);
      std::cout << s.path << " " << what << " of P=" << P << ": does not fit (" << e.what() << ")\n";
      continue;
    }
    PlanVerifyResult v = verify_plan(r.plan);
    ASSERT_TRUE(v.ok()) << v.errors.front();
    EXPECT_LE(r.plan.summary.peak_bytes, budget);
    ASSERT_TRUE(r.plan.decisions.has_value());
    const PlanDecisions& d = *r.plan.decisions;
    EXPECT_GE(d.step_seconds, d.unconstrained_step_seconds * 0.999)
        << "fp32 levers only add time";
    std::cout << s.path << " " << what << " of P=" << P << ": budget " << budget << " peak "
              << r.plan.summary.peak_bytes << " k=" << d.micro_batches << " recomputed "
              << d.recomputed.size() << " est " << d.step_seconds * 1e3 << " ms (x"
              << d.step_seconds / d.unconstrained_step_seconds << ")\n";
    // The same k without a budget: recomputation must not change a bit.
    CompileOptions ref_o = options(s, std::nullopt);
    ref_o.micro_batches = d.micro_batches;
    const Trace ref = execute(compile_model(s.path, ref_o).plan);
    const Trace got = execute(r.plan);
    expect_identical(got, ref, what);
    if (!s.batchnorm) expect_close(got, k1, 1e-5, what + " against k=1");
  }
}

TEST(BudgetSearch, TinyCnnAtEveryBudget) { check_sample(cnn()); }
TEST(BudgetSearch, TinyTransformerAtEveryBudget) { check_sample(transformer()); }

// The PyTorch fixtures (test/fixtures) have a static batch: recomputation is
// the only fp32 lever, and every budget's plan trains bit-identically to the
// unconstrained one (which pytorch_fixture_test.cc checks against PyTorch).
class BudgetSearchFixture : public ::testing::TestWithParam<std::string> {};
TEST_P(BudgetSearchFixture, AtEveryBudget) {
  const std::string name = GetParam();
  check_sample({source_path("test/fixtures/" + name + "/model.onnx"), {},
                name != "gpt2_tiny", true});
}
INSTANTIATE_TEST_SUITE_P(Fixtures, BudgetSearchFixture,
                         ::testing::Values("resnet18_tiny", "gpt2_tiny", "unet_tiny"));

// The fastest fitting candidate wins: with room for the whole step nothing is
// split or recomputed; just below P, micro-batching and recomputation compete
// on estimated time, and the winner is never slower than another fitting one.
TEST(BudgetSearch, ChoosesTheFastestFittingCandidate) {
  const Sample s = cnn();
  const int64_t P = compile_model(s.path, options(s, std::nullopt)).plan.summary.peak_bytes;
  CompileResult roomy = compile_model(s.path, options(s, P));
  EXPECT_EQ(roomy.plan.decisions->micro_batches, 1);
  EXPECT_TRUE(roomy.plan.decisions->recomputed.empty());
  CompileResult tight = compile_model(s.path, options(s, P * 6 / 10));
  const PlanDecisions& d = *tight.plan.decisions;
  int fitting = 0;
  for (const CandidateRecord& c : d.candidates)
    if (c.fits) {
      ++fitting;
      EXPECT_LE(d.step_seconds, c.step_seconds + 1e-15) << "k=" << c.micro_batches;
      EXPECT_LE(c.peak_bytes, P * 6 / 10);
    }
  EXPECT_GE(fitting, 1);
}

// Low precision is searched first and a candidate whose time without
// recomputation exceeds the best fit is not planned. Each such candidate,
// compiled alone (forced precision and k), must indeed be slower than the
// winner, and each planned one must come out as the search recorded it.
TEST(BudgetSearch, CandidatesSkippedBeforePlanningCouldNotWin) {
  const Sample s = transformer();
  CompileOptions o = options(s, std::nullopt);
  const int64_t P = compile_model(s.path, o).plan.summary.peak_bytes;
  o.budget_bytes = P * 8 / 10;
  o.precision = "auto";
  const PlanDecisions d = *compile_model(s.path, o).plan.decisions;
  int skipped = 0;
  for (const CandidateRecord& c : d.candidates) {
    if (c.note.find("a smaller k fits") != std::string::npos) continue;  // the k rule
    CompileOptions one = o;
    one.precision = c.precision;
    one.micro_batches = c.micro_batches;
    std::optional<PlanDecisions> alone;
    try {
      alone = *compile_model(s.path, one).plan.decisions;
    } catch (const Error&) {
    }
    const std::string what = c.precision + " k=" + std::to_string(c.micro_batches);
    if (!c.planned) {
      ++skipped;
      if (alone) {
        EXPECT_GT(alone->step_seconds, d.step_seconds) << what;
      }
    } else {
      ASSERT_EQ(alone.has_value(), c.fits) << what;
      if (c.fits) {
        EXPECT_DOUBLE_EQ(alone->step_seconds, c.step_seconds) << what;
      }
    }
  }
  EXPECT_GT(skipped, 0) << "bf16 fits at 80% on the h100 profile, so fp32 should be skipped";
}

// A candidate that does not fit says why in the user's terms: its lowest
// peak (or its peak without recomputation, when it was not rematerialized)
// and, when that is the reason, that its floor is above the budget; never
// the solver's internal target. At the smallest budget found, the smaller k
// cannot fit.
TEST(BudgetSearch, CandidatesThatCannotFitSayWhy) {
  const Sample s = cnn();
  int64_t figure = -1;
  try {
    compile_model(s.path, options(s, 1));
  } catch (const Error& e) {
    figure = number_after(e.what(), "fits is ");
  }
  ASSERT_GT(figure, 0);
  const PlanDecisions d = *compile_model(s.path, options(s, figure)).plan.decisions;
  int below_floor = 0, not_fitting = 0;
  for (const CandidateRecord& c : d.candidates) {
    if (c.fits || !c.planned) continue;
    ++not_fitting;
    const std::string what = c.precision + " k=" + std::to_string(c.micro_batches) + ": " + c.note;
    EXPECT_EQ(c.note.find("budget 0 bytes"), std::string::npos) << what;
    EXPECT_EQ(c.note.rfind("does not fit: ", 0), 0u) << what;
    if (c.note.find("no schedule goes below its floor of ") != std::string::npos) ++below_floor;
    std::cout << what << "\n";
  }
  EXPECT_GT(not_fitting, 0);
  EXPECT_GT(below_floor, 0);
}

TEST(BudgetSearch, InfeasibleNamesAnAchievableBudget) {
  const Sample s = transformer();
  const int64_t b = smallest_budget(s);
  ASSERT_GT(b, 0);
  CompileResult r = compile_model(s.path, options(s, b));  // must not throw
  EXPECT_LE(r.plan.summary.peak_bytes, b);
  // Micro-batching was allowed, so the floor is below the remat-only one.
  CompileOptions remat_only = options(s, 1024);
  remat_only.micro_batches = 1;
  try {
    compile_model(s.path, remat_only);
    FAIL();
  } catch (const Error& e) {
    EXPECT_GT(number_after(e.what(), "the smallest budget found that fits is "), b) << e.what();
    EXPECT_NE(std::string(e.what()).find("micro-batching fixed at k=1"), std::string::npos);
  }
}

// The figure named for an impossible budget is the lowest any single
// candidate reaches: the search lowers only the candidates whose floor is
// below the best figure so far, lowest floor first, and must not lose the
// best one that way. Each k compiled alone (forced) names its own figure;
// the search names the least of them, which rematerialization brought below
// that candidate's peak without recomputation.
TEST(BudgetSearch, SmallestBudgetIsTheLeastOfTheCandidates) {
  const Sample s = transformer();
  const int64_t b = smallest_budget(s);
  int64_t least = INT64_MAX, least_k = 0;
  for (int64_t k : {1, 2, 4, 8}) {
    CompileOptions one = options(s, 1024);
    one.micro_batches = k;
    try {
      compile_model(s.path, one);
      ADD_FAILURE() << "k=" << k << " fits 1 KiB";
    } catch (const Error& e) {
      const int64_t f = number_after(e.what(), "the smallest budget found that fits is ");
      ASSERT_GT(f, 1024) << e.what();
      if (f < least) {
        least = f;
        least_k = k;
      }
    }
  }
  EXPECT_EQ(b, least);
  CompileOptions plain = options(s, std::nullopt);
  plain.micro_batches = least_k;
  EXPECT_LT(least, compile_model(s.path, plain).plan.summary.peak_bytes) << "k=" << least_k;
}

// When nothing fits, the second pass lowers the candidates' peaks in worker
// threads (SearchOptions::threads); the answer, and the whole message, do
// not depend on how many.
TEST(BudgetSearch, SmallestBudgetIsTheSameOnAnyNumberOfThreads) {
  for (const Sample& s : {transformer(), cnn()}) {
    std::string first;
    for (int threads : {1, 2, 3, 8}) {
      CompileOptions o = options(s, 1024);
      o.precision = "auto";
      o.threads = threads;
      try {
        compile_model(s.path, o);
        ADD_FAILURE() << s.path << " fits 1 KiB";
      } catch (const Error& e) {
        ASSERT_GT(number_after(e.what(), "the smallest budget found that fits is "), 1024) << e.what();
        if (first.empty()) first = e.what();
        EXPECT_EQ(e.what(), first) << s.path << ", " << threads << " threads";
      }
    }
  }
}

TEST(BudgetSearch, DecisionsRoundTripThroughJson) {
  const Sample s = cnn();
  CompileResult r = compile_model(s.path, options(s, 6 << 20));
  Plan back = plan_from_json(plan_to_json(r.plan), "mem");
  ASSERT_TRUE(back.decisions.has_value());
  EXPECT_EQ(plan_to_json(back), plan_to_json(r.plan));
  EXPECT_EQ(back.decisions->micro_batches, r.plan.decisions->micro_batches);
  EXPECT_EQ(back.decisions->candidates.size(), r.plan.decisions->candidates.size());
  double sum = 0;
  for (const PlanOp& o : back.ops) sum += o.est_seconds;
  EXPECT_NEAR(sum, back.decisions->step_seconds, 1e-12) << "step time is the sum over the ops";
}

// Early updates: each update runs when its gradient is complete, so the
// gradients never all live at once. Off: every update after backward. Where
// the peak is at the end of backward (gpt2 at batch 1: parameters and their
// gradients dominate) that is a large saving; results never change.
TEST(BudgetSearch, EarlyUpdatesLowerThePeakAndChangeNothing) {
  CompileOptions on;
  on.dims = {{"batch", 1}, {"seq", 16}};
  on.precision = "fp32";
  CompileOptions off = on;
  off.early_updates = false;
  off.plan.early_updates = false;
  const std::string gpt2 = source_path("test/models/opset17/gpt2.onnx");
  CompileResult a = compile_model(gpt2, on), b = compile_model(gpt2, off);
  EXPECT_TRUE(a.plan.decisions->early_updates);
  EXPECT_FALSE(b.plan.decisions->early_updates);
  EXPECT_TRUE(plan_has_early_updates(a.plan));
  EXPECT_FALSE(plan_has_early_updates(b.plan));
  EXPECT_LT(a.plan.summary.peak_bytes, b.plan.summary.peak_bytes * 9 / 10);
  std::cout << "gpt2 b1 s16: early updates peak " << a.plan.summary.peak_bytes << " vs late "
            << b.plan.summary.peak_bytes << "\n";

  const Sample s = transformer();
  CompileOptions t_on = options(s, std::nullopt), t_off = t_on;
  t_off.early_updates = false;
  t_off.plan.early_updates = false;
  CompileResult c = compile_model(s.path, t_on), d = compile_model(s.path, t_off);
  EXPECT_LE(c.plan.summary.peak_bytes, d.plan.summary.peak_bytes);
  EXPECT_FALSE(plan_has_early_updates(d.plan));
  expect_identical(execute(c.plan), execute(d.plan), "early vs late updates");

  // Micro-batched: a parameter's update waits for its gradient to be complete
  // (the last micro-batch's accumulation into it), then may run before other
  // parameters' gradients are done. Same results as all updates at the end.
  // (The peak need not drop: here it lies in a micro-batch's backward, and
  // the early order's is 256 bytes higher.)
  t_on.micro_batches = t_off.micro_batches = 4;
  CompileResult e = compile_model(s.path, t_on), f = compile_model(s.path, t_off);
  EXPECT_TRUE(plan_has_early_updates(e.plan));
  EXPECT_FALSE(plan_has_early_updates(f.plan));
  std::cout << "tiny_transformer k=4: early updates peak " << e.plan.summary.peak_bytes << " vs late "
            << f.plan.summary.peak_bytes << "\n";
  expect_identical(execute(e.plan), execute(f.plan), "k=4: early vs late updates");
}

/// Sample s compiled at `budget` with --precision `precision`: the plan fits,
/// records that precision and some op computing in `dtype`.
CompileResult compile_low(const Sample& s, const std::string& precision, DType dtype, int64_t budget) {
  CompileOptions o = options(s, budget);
  o.precision = precision;
  CompileResult r = compile_model(s.path, o);
  EXPECT_LE(r.plan.summary.peak_bytes, budget) << precision;
  EXPECT_EQ(r.plan.decisions->precision, precision);
  EXPECT_GT(r.plan.decisions->ops_low_precision, 0) << precision;
  bool low_op = false;
  for (const PlanOp& op : r.plan.ops) low_op |= op.dtype == dtype;
  EXPECT_TRUE(low_op) << "the plan records the dtype each op computes in";
  return r;
}

/// Executed, the low-precision plan's losses stay within 2e-2 relative of
/// the fp32 plan's.
void expect_losses_close(const Trace& got, const Trace& ref) {
  for (size_t i = 0; i < got.losses.size(); ++i)
    EXPECT_NEAR(got.losses[i], ref.losses[i], 2e-2 * std::abs(ref.losses[i])) << "step " << i;
}

// bf16 under a budget: the lowered plan fits, runs on the CPU (bf16 storage,
// f32 compute) and stays close to the fp32 step. Tolerance 2e-2 relative on
// the loss: bf16 keeps 8 mantissa bits (relative rounding 2^-9 = 2e-3 per
// stored value); precision_test.cc measures 4e-4 on this model.
TEST(BudgetSearch, Bf16PlanUnderABudgetRunsCloseToFp32) {
  const Sample s = transformer();
  const Plan fp32 = compile_model(s.path, options(s, std::nullopt)).plan;
  CompileResult r = compile_low(s, "bf16", DType::bf16, fp32.summary.peak_bytes * 8 / 10);
  ASSERT_TRUE(verify_plan(r.plan).ok());
  const PlanDecisions& d = *r.plan.decisions;
  // fp32 is no candidate here, but the reference is still the fp32 k=1 plan.
  EXPECT_EQ(d.unconstrained_peak_bytes, fp32.summary.peak_bytes);
  // The same ops summed in graph order versus schedule order: equal up to
  // rounding.
  EXPECT_NEAR(d.unconstrained_step_seconds, fp32.decisions->step_seconds,
              1e-12 * fp32.decisions->step_seconds);
  EXPECT_GT(d.casts, 0);
  // A GPU plan: its bf16 GEMMs run natively there (no staging in the plan).
  EXPECT_NE(r.plan.program.find("native_low_precision = 1"), std::string::npos);
  expect_losses_close(execute(r.plan), execute(fp32));
}

// fp16 under a budget: the same as bf16 above, with dynamic loss scaling in
// the graph. fp16 keeps 11 mantissa bits (relative rounding 2^-12 per stored
// value), so the bf16 tolerance holds with room; no step overflows at the
// initial scale here, so every step updates.
TEST(BudgetSearch, Fp16PlanUnderABudgetRunsCloseToFp32) {
  const Sample s = transformer();
  const Plan fp32 = compile_model(s.path, options(s, std::nullopt)).plan;
  CompileResult r = compile_low(s, "fp16", DType::f16, fp32.summary.peak_bytes * 7 / 10);
  ASSERT_TRUE(verify_plan(r.plan).ok());
  EXPECT_TRUE(r.plan.decisions->loss_scaling);
  const Trace got = execute(r.plan), ref = execute(fp32);
  ASSERT_EQ(got.losses.size(), ref.losses.size());
  expect_losses_close(got, ref);
}

TEST(BudgetSearch, PrecisionFlagsAreChecked) {
  const Sample s = cnn();
  CompileOptions o = options(s, std::nullopt);
  o.precision = "bf16";
  o.device = "v100";  // no bf16 tensor cores
  try {
    compile_model(s.path, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no bf16"), std::string::npos) << e.what();
  }
  o.precision = "fp8";
  EXPECT_THROW(compile_model(s.path, o), Error);
}

TEST(BudgetSearch, MicroBatchFlagErrors) {
  CliRun r = run({"compile", tiny_cnn(), "--dim", "batch=32", "--micro-batches", "3"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("does not divide the batch 32"), std::string::npos) << r.err;
  r = run({"compile", tiny_cnn(), "--dim", "batch=32", "--early-updates", "maybe"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--early-updates maybe"), std::string::npos) << r.err;
  r = run({"compile", tiny_cnn(), "--dim", "batch=32", "--threads", "-1"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--threads -1: use 0 (one per hardware thread) to 1024"), std::string::npos) << r.err;
  r = run({"compile", tiny_cnn(), "--dim", "batch=32", "--budget", "1KiB", "--threads", "2"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("the smallest budget found that fits is "), std::string::npos) << r.err;
}

TEST(BudgetSearch, SweepBudgets) {
  CliRun r = run({"sweep", tiny_cnn(), "--dim", "batch=32", "--precision", "fp32", "--budgets",
                  "1MiB,6MiB,64MiB"});
  ASSERT_EQ(r.rc, 0) << r.err;
  // Header plus one row per budget.
  int lines = 0;
  for (char c : r.out) lines += c == '\n';
  EXPECT_EQ(lines, 4) << r.out;
  EXPECT_NE(r.out.find("smallest that fits"), std::string::npos) << "1 MiB cannot fit:\n" << r.out;
  EXPECT_NE(r.out.find("1.00x"), std::string::npos) << "64 MiB needs no lever:\n" << r.out;
}

TEST(BudgetSearch, SweepFindsTheLargestDimThatFits) {
  const std::string budget = "3MiB";
  CliRun r = run({"sweep", tiny_transformer(), "--dim", "batch=2", "--dim", "seq=8:128",
                  "--precision", "fp32", "--budget", budget});
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  const int64_t best = number_after(r.out, "that fits 3.00 MiB: ");
  ASSERT_GT(best, 8) << r.out;
  // The answer fits; one more does not (unless it is the range's top).
  CompileOptions o;
  o.dims = {{"batch", 2}, {"seq", best}};
  o.precision = "fp32";
  o.budget_bytes = 3 << 20;
  EXPECT_NO_THROW(compile_model(tiny_transformer(), o));
  if (best < 128) {
    o.dims["seq"] = best + 1;
    EXPECT_THROW(compile_model(tiny_transformer(), o), Error);
  }
}

}  // namespace
}  // namespace memplan::testing

namespace memplan::testing {
namespace {

// Every corpus model at its small binding (batch 2, seq 64), compiled and
// verified (not executed: the corpus has no weights) at 90%, 70% and 50% of
// the unconstrained training peak P and at the smallest budget the solver
// reports. A budget the levers cannot reach must fail naming a figure above
// it that then compiles; every plan's peak is within its budget.
class BudgetSearchCorpus : public ::testing::TestWithParam<CorpusModel> {};

TEST_P(BudgetSearchCorpus, SmallBindingAtEveryBudget) {
  const CorpusModel& m = GetParam();
  CompileOptions o;
  o.precision = "fp32";
  {
    ImportResult imp = import_onnx_file(m.path);
    for (TensorId id : imp.graph.inputs)
      for (const std::string& d : imp.graph.tensor(id).sym) {
        if (d == "batch") o.dims["batch"] = 2;
        if (d == "seq") o.dims["seq"] = 64;
      }
  }
  const int64_t P = compile_model(m.path, o).plan.summary.peak_bytes;
  auto fit = [&](int64_t budget, const std::string& what) {
    o.budget_bytes = budget;
    CompileResult r;
    try {
      r = compile_model(m.path, o);
    } catch (const Error& e) {
      const int64_t smallest = number_after(e.what(), "the smallest budget found that fits is ");
      ASSERT_GT(smallest, budget) << e.what();
      std::cout << m.name << " " << what << ": does not fit " << budget << "; smallest "
                << smallest << " (" << 100.0 * smallest / P << "% of P)\n";
      o.budget_bytes = budget = smallest;
      r = compile_model(m.path, o);  // the reported figure must compile
    }
    PlanVerifyResult v = verify_plan(r.plan);
    ASSERT_TRUE(v.ok()) << what << ": " << v.errors.front();
    EXPECT_LE(r.plan.summary.peak_bytes, budget) << what;
    const PlanDecisions& d = *r.plan.decisions;
    std::cout << m.name << " " << what << ": peak " << r.plan.summary.peak_bytes << " of P " << P
              << " k=" << d.micro_batches << " recomputed " << d.recomputed.size() << " x"
              << d.step_seconds / d.unconstrained_step_seconds << "\n";
  };
  fit(P * 9 / 10, "90%");
  fit(P * 7 / 10, "70%");
  fit(P / 2, "50%");
  fit(1024, "smallest");
  // The default, --precision auto, where the search also tries bf16 and
  // cost-selected mixes (opset 17: one export of each model is enough).
  if (m.opset != "opset17") return;
  o.precision = "auto";
  fit(P * 9 / 10, "auto 90%");
  fit(P * 7 / 10, "auto 70%");
  fit(P / 2, "auto 50%");
  fit(1024, "auto smallest");
}

INSTANTIATE_TEST_SUITE_P(Corpus, BudgetSearchCorpus, ::testing::ValuesIn(corpus_models()),
                         [](const ::testing::TestParamInfo<CorpusModel>& i) {
                           return i.param.opset + "_" + i.param.name;
                         });

}  // namespace
}  // namespace memplan::testing

namespace memplan::testing {
namespace {

// --conv-workspace: every convolution reserves up to the limit (at most its
// whole im2col matrix) beyond the CPU kernel's own tile; the plan accounts
// for it and the CPU results do not change (tiles split output positions,
// never the reduction).
TEST(BudgetSearchConvWorkspace, ReservesAndChangesNothing) {
  CompileOptions o;
  o.dims = {{"batch", 8}};
  o.precision = "fp32";
  const Plan base = compile_model(tiny_cnn(), o).plan;
  o.conv_workspace_bytes = 4 << 20;
  const Plan big = compile_model(tiny_cnn(), o).plan;
  ASSERT_TRUE(verify_plan(big).ok());
  ASSERT_EQ(base.ops.size(), big.ops.size());
  int grown = 0;
  for (size_t i = 0; i < base.ops.size(); ++i) {
    const bool conv = base.ops[i].op.rfind("Conv", 0) == 0;
    EXPECT_GE(big.ops[i].workspace_bytes, base.ops[i].workspace_bytes);
    if (!conv) {
      EXPECT_EQ(big.ops[i].workspace_bytes, base.ops[i].workspace_bytes);
    }
    EXPECT_LE(big.ops[i].workspace_bytes, std::max<int64_t>(4 << 20, base.ops[i].workspace_bytes));
    grown += big.ops[i].workspace_bytes > base.ops[i].workspace_bytes;
  }
  EXPECT_GT(grown, 0);
  EXPECT_GE(big.summary.peak_bytes, base.summary.peak_bytes);
  expect_identical(execute(big), execute(base), "--conv-workspace 4MiB");
  CliRun bad = run({"compile", tiny_cnn(), "--dim", "batch=8", "--conv-workspace", "lots"});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("--conv-workspace"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace memplan::testing
