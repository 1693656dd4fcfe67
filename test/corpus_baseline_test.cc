// CI regression guard: every corpus model at its realistic binding (README.md:
// CNNs and ViT batch=32; gpt2 batch=8 seq=1024; bert, t5 batch=8 seq=512),
// inference mode, default options, is compiled and checked against
// ci/baseline.json with `memplan check --tolerance 1%`: the test fails if the
// plan's peak_bytes or arena_bytes grew by more than 1%.
//
// Baseline keys are "MODEL MODE DIMS" with MODEL the path relative to the
// repository root, so the compile runs from there.
//
// To refresh the baseline after an intended change (from the repository root,
// after building):
//
//   MEMPLAN_UPDATE_BASELINE=1 build/test/memplan_tests --gtest_filter='CorpusBaseline*'
//
// which runs `memplan check PLAN --baseline ci/baseline.json --update` for
// every model instead of checking. Review and commit the diff of
// ci/baseline.json with the change that caused it.
#include <gtest/gtest.h>

#include <cstdlib>

#include "test/cli_test_util.h"

namespace memplan::testing {
namespace {

/// Changes the working directory for the lifetime of the object.
class ScopedCwd {
 public:
  explicit ScopedCwd(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() {
    std::error_code ec;
    fs::current_path(old_, ec);
  }
  ScopedCwd(const ScopedCwd&) = delete;
  ScopedCwd& operator=(const ScopedCwd&) = delete;

 private:
  fs::path old_;
};

/// The realistic binding's --dim flags for a corpus model.
std::vector<std::string> realistic_dims(const std::string& name) {
  if (name == "gpt2") return {"--dim", "batch=8", "--dim", "seq=1024"};
  if (name == "bert" || name == "t5") return {"--dim", "batch=8", "--dim", "seq=512"};
  if (name == "tiny_transformer") return {"--dim", "batch=32", "--dim", "seq=64"};  // its context
  return {"--dim", "batch=32"};
}

struct BaselineCase {
  CorpusModel model;
  std::string mode;  // inference or training (default AdamW step)
};

void PrintTo(const BaselineCase& c, std::ostream* os) {
  *os << c.model.opset << "/" << c.model.name << " " << c.mode;
}

std::vector<BaselineCase> baseline_cases() {
  std::vector<BaselineCase> r;
  for (const CorpusModel& m : corpus_models())
    for (const char* mode : {"inference", "training"}) r.push_back({m, mode});
  return r;
}

class CorpusBaseline : public ::testing::TestWithParam<BaselineCase> {};

TEST_P(CorpusBaseline, PeakAndArenaWithinOnePercent) {
  const CorpusModel& m = GetParam().model;
  const bool update = std::getenv("MEMPLAN_UPDATE_BASELINE") != nullptr;
  ScopedCwd cwd(MEMPLAN_SOURCE_DIR);
  TempDir dir;
  const std::string rel = "test/models/" + m.opset + "/" + m.name + ".onnx";
  const std::string plan = dir.file("plan.json");

  std::vector<std::string> args = {"compile", rel, "--mode", GetParam().mode, "-o", plan};
  for (const std::string& d : realistic_dims(m.name)) args.push_back(d);
  CliRun c = run(args);
  ASSERT_EQ(c.rc, 0) << join_args(args) << "\n" << c.err;

  std::vector<std::string> chk = {"check",       plan, "--baseline", "ci/baseline.json",
                                  "--tolerance", "1%"};
  if (update) chk.push_back("--update");
  CliRun r = run(chk);
  EXPECT_EQ(r.rc, 0) << rel << ": " << r.out << r.err
                     << "If the growth is intended, refresh the baseline (see the top of "
                        "test/corpus_baseline_test.cc).";
}

INSTANTIATE_TEST_SUITE_P(Models, CorpusBaseline, ::testing::ValuesIn(baseline_cases()),
                         [](const ::testing::TestParamInfo<BaselineCase>& info) {
                           return info.param.model.opset + "_" + info.param.model.name + "_" +
                                  info.param.mode;
                         });

}  // namespace
}  // namespace memplan::testing
