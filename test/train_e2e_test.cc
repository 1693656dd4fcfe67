// End to end: the bundled samples train on synthetic learnable data through
// the CLI (compile in training mode, `memplan run`), and --save / --resume
// reproduce an uninterrupted run bit for bit.
//
// Thresholds (measured when the test was written, with margin):
//  - tiny_cnn, batch 16, AdamW lr 1e-3: loss 2.30 at step 1 (ln 10, 10
//    classes), about 0.05 by step 200; the test asks for < 0.5 and for the
//    last loss to be below a fifth of the first.
//  - tiny_transformer, batch 8 x 32 tokens, AdamW lr 5e-3: loss about 42 at
//    step 1 (N(0,1) embeddings with a tied head give huge logits), about 0.1
//    by step 200; the test asks for < 1.0.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "runtime/npy.h"
#include "test/cli_test_util.h"

#include <cstring>
#include <filesystem>

namespace memplan::testing {
namespace {

std::vector<double> losses(const std::string& out) {
  std::vector<double> r;
  std::regex re(R"(step \d+/\d+ loss ([-+0-9.eE]+|nan|inf))");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it)
    r.push_back(std::stod((*it)[1].str()));
  return r;
}

std::string compile(TempDir& dir, const std::string& model, std::vector<std::string> flags) {
  const std::string plan = dir.file("plan.json");
  std::vector<std::string> args = {"compile", model, "-o", plan};
  args.insert(args.end(), flags.begin(), flags.end());
  CliRun c = run(args);
  EXPECT_EQ(c.rc, 0) << c.err;
  return plan;
}

TEST(TrainE2E, TinyCnnLearns) {
  TempDir dir;
  std::string plan = compile(dir, tiny_cnn(), {"--dim", "batch=16"});
  CliRun r = run({"run", plan, "--init", "random", "--synthetic", "--steps", "200", "--no-progress"});
  ASSERT_EQ(r.rc, 0) << r.err;
  std::vector<double> l = losses(r.out);
  ASSERT_EQ(l.size(), 200u) << r.out;
  EXPECT_NEAR(l.front(), std::log(10.0), 0.3);
  EXPECT_LT(l.back(), 0.5);
  EXPECT_LT(l.back(), l.front() / 5);
}

TEST(TrainE2E, TinyTransformerLearns) {
  TempDir dir;
  std::string plan = compile(dir, tiny_transformer(), {"--dim", "batch=8", "--dim", "seq=32", "--lr", "0.005"});
  CliRun r = run({"run", plan, "--init", "random", "--synthetic", "--steps", "200", "--no-progress"});
  ASSERT_EQ(r.rc, 0) << r.err;
  std::vector<double> l = losses(r.out);
  ASSERT_EQ(l.size(), 200u) << r.out;
  EXPECT_LT(l.back(), 1.0);
  EXPECT_LT(l.back(), l.front() / 10);
}

TEST(TrainE2E, SaveAndResumeGiveTheUninterruptedLosses) {
  // SGD with momentum and the transformer's Dropout: both the optimizer state
  // and the step counter (which drives the masks) must survive the checkpoint.
  TempDir dir;
  std::string plan = compile(dir, tiny_transformer(),
                             {"--dim", "batch=4", "--dim", "seq=16", "--optimizer", "sgd", "--lr",
                              "0.05", "--momentum", "0.9"});
  CliRun straight = run({"run", plan, "--init", "random", "--seed", "3", "--synthetic", "--steps", "10", "--no-progress"});
  ASSERT_EQ(straight.rc, 0) << straight.err;
  const std::string ckpt = dir.file("ckpt.bin");
  CliRun first = run({"run", plan, "--init", "random", "--seed", "3", "--synthetic", "--steps", "4",
                      "--save", ckpt, "--no-progress"});
  ASSERT_EQ(first.rc, 0) << first.err;
  CliRun rest = run({"run", plan, "--resume", ckpt, "--synthetic", "--steps", "6", "--no-progress"});
  ASSERT_EQ(rest.rc, 0) << rest.err;
  std::vector<double> a = losses(straight.out), b = losses(first.out), c = losses(rest.out);
  b.insert(b.end(), c.begin(), c.end());
  ASSERT_EQ(a.size(), 10u);
  // Printed with 6 decimals; the runs are bit-identical, so the text is too.
  EXPECT_EQ(a, b);
}

TEST(TrainE2E, PoisonAndGuardModesChangeNothing) {
  TempDir dir;
  std::string plan = compile(dir, tiny_cnn(), {"--dim", "batch=4"});
  std::vector<std::vector<double>> runs;
  for (std::vector<std::string> extra : {std::vector<std::string>{}, {"--poison"}, {"--guard"}, {"--poison", "--guard"}}) {
    std::vector<std::string> args = {"run", plan, "--init", "random", "--synthetic", "--steps", "5", "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliRun r = run(args);
    ASSERT_EQ(r.rc, 0) << r.err;
    runs.push_back(losses(r.out));
  }
  for (size_t k = 1; k < runs.size(); ++k) EXPECT_EQ(runs[k], runs[0]) << "mode " << k;
}

}  // namespace
}  // namespace memplan::testing

namespace memplan::testing {
namespace {

TEST(BadInputTraining, NanInTheDataStopsTheRunNamingStepAndOpWithoutCheckpoint) {
  // A NaN pixel in the second batch: step 1 trains, step 2 stops at the first
  // op that produces NaN (the first Conv) and no checkpoint is written.
  TempDir dir;
  const std::string plan = dir.file("plan.json");
  ASSERT_EQ(run({"compile", tiny_cnn(), "--dim", "batch=2", "-o", plan}).rc, 0);
  const std::string data = dir.file("data");
  std::filesystem::create_directory(data);
  NpyArray x{DType::f32, {4, 3, 32, 32}, std::vector<uint8_t>(4 * 3 * 32 * 32 * 4, 0)};
  float nan = std::nanf("");
  std::memcpy(x.data.data() + (2 * 3 * 32 * 32 + 5) * 4, &nan, 4);  // sample 2 = batch 2
  write_npy(data + "/input.npy", x);
  NpyArray y{DType::i64, {4}, std::vector<uint8_t>(4 * 8, 0)};
  write_npy(data + "/labels.npy", y);
  const std::string ckpt = dir.file("ckpt.bin");
  CliRun r = run({"run", plan, "--init", "random", "--data", data, "--steps", "3", "--save", ckpt,
                  "--no-progress"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("step 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(Conv)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("NaN"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(ckpt));
  EXPECT_NE(r.out.find("step 1/3"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace memplan::testing
