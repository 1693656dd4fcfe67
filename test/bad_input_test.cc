// Bad input through the whole command line, in-process. Every case must end
// with exit code 1, one message on stderr that names the problem (the file,
// node, tensor, flag or dim), and no output file: neither the -o path nor a
// stray temp file of an atomic write. `make test-asan` reruns this suite
// (every test whose name matches BadInput) under ASan and UBSan.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <nlohmann/json.hpp>
#include <random>

#include "test/cli_test_util.h"

namespace memplan::testing {
namespace {

using json = nlohmann::ordered_json;

std::string model_path(const std::string& rel) { return source_path("test/models/" + rel); }

/// Runs `args`, which must fail as a user error: rc 1, stderr holds one
/// "memplan: error:" line (or the verifier's report) containing every key
/// word, and `must_not_exist` (if given) was not created. Returns stderr.
std::string expect_user_error(const TempDir& dir, const std::vector<std::string>& args,
                              const std::vector<std::string>& keywords,
                              const std::string& must_not_exist = "") {
  CliRun r = run(args);
  EXPECT_EQ(r.rc, 1) << join_args(args) << "\nstderr: " << r.err;
  EXPECT_FALSE(r.err.empty()) << join_args(args);
  for (const std::string& k : keywords)
    EXPECT_NE(r.err.find(k), std::string::npos)
        << join_args(args) << "\nexpected '" << k << "' in stderr:\n"
        << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  // One message: a single "error:" (the verifier lists its problems under one header).
  const size_t first = r.err.find("error:");
  if (first != std::string::npos) {
    EXPECT_EQ(r.err.find("error:", first + 1), std::string::npos) << "more than one message:\n"
                                                                  << r.err;
  }
  if (!must_not_exist.empty()) {
    EXPECT_FALSE(fs::exists(must_not_exist)) << must_not_exist << " was left behind";
  }
  EXPECT_TRUE(dir.stray_temp_files().empty()) << "stray temp file " << dir.stray_temp_files()[0];
  return r.err;
}

/// `memplan compile MODEL ARGS... -o DIR/out.json` must fail naming `keywords`.
std::string expect_compile_error(const std::string& model, std::vector<std::string> args,
                                 const std::vector<std::string>& keywords) {
  TempDir dir;
  const std::string out = dir.file("out.json");
  args.insert(args.begin(), {"compile", model});
  args.insert(args.end(), {"-o", out});
  return expect_user_error(dir, args, keywords, out);
}

// ---------------------------------------------------------------- tiny models

onnx::ModelProto make_model(int64_t opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

void add_input(onnx::ModelProto& m, const std::string& name, std::vector<int64_t> dims) {
  auto* v = m.mutable_graph()->add_input();
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
}

void add_node(onnx::ModelProto& m, const std::string& op, const std::vector<std::string>& in,
              const std::vector<std::string>& out, const std::string& name) {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
}

void add_output(onnx::ModelProto& m, const std::string& name) {
  m.mutable_graph()->add_output()->set_name(name);
}

std::string write_model(const TempDir& dir, const std::string& name, const onnx::ModelProto& m) {
  std::string path = dir.file(name);
  write_bytes(path, m.SerializeAsString());
  return path;
}

// ---------------------------------------------------------------- model files

TEST(BadInputModel, MissingModelFile) {
  TempDir dir;
  const std::string model = dir.file("no_such_model.onnx");
  expect_compile_error(model, {}, {model, "no such file"});
}

TEST(BadInputModel, ModelPathIsADirectory) {
  TempDir dir;
  expect_compile_error(dir.path().string(), {}, {dir.path().string(), "directory"});
}

TEST(BadInputModel, EmptyFile) {
  TempDir dir;
  const std::string model = dir.file("empty.onnx");
  write_bytes(model, "");
  expect_compile_error(model, {}, {model, "empty (0 bytes)"});
}

TEST(BadInputModel, TruncatedCorpusModel) {
  TempDir dir;
  const std::string bytes = slurp(model_path("opset17/resnet18.onnx"));
  ASSERT_GT(bytes.size(), 1000u);
  const std::string model = dir.file("half.onnx");
  write_bytes(model, bytes.substr(0, bytes.size() / 2));
  expect_compile_error(model, {"--dim", "batch=2"}, {model, "truncated"});
}

TEST(BadInputModel, RandomBytes) {
  TempDir dir;
  std::mt19937 rng(1234);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  const std::string model = dir.file("random.onnx");
  write_bytes(model, bytes);
  expect_compile_error(model, {}, {model, "not a valid ONNX model"});
}

TEST(BadInputModel, TensorProtoIsNotAModel) {
  TempDir dir;
  onnx::TensorProto t;
  t.set_name("w");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(2);
  t.add_float_data(1);
  t.add_float_data(2);
  const std::string model = dir.file("tensor.pb");
  write_bytes(model, t.SerializeAsString());
  std::string err = expect_compile_error(model, {}, {model, "model"});
  EXPECT_NE(err.find("not"), std::string::npos) << err;
}

TEST(BadInputModel, UnsupportedOpNamesOpNodeAndOpset) {
  TempDir dir;
  auto m = make_model(17);
  add_input(m, "boxes", {1, 8, 4});
  add_input(m, "scores", {1, 1, 8});
  add_node(m, "NonMaxSuppression", {"boxes", "scores"}, {"selected"}, "nms0");
  add_output(m, "selected");
  const std::string model = write_model(dir, "nms.onnx", m);
  expect_compile_error(model, {},
                       {model, "NonMaxSuppression", "'nms0'", "opset 17", "unsupported"});
}

TEST(BadInputModel, CycleNamesANode) {
  TempDir dir;
  auto m = make_model();
  add_input(m, "x", {2});
  add_node(m, "Add", {"x", "b"}, {"a"}, "n0");
  add_node(m, "Relu", {"a"}, {"b"}, "n1");
  add_output(m, "b");
  const std::string model = write_model(dir, "cycle.onnx", m);
  std::string err = expect_compile_error(model, {}, {model, "cycle"});
  EXPECT_TRUE(err.find("'n0'") != std::string::npos || err.find("'n1'") != std::string::npos)
      << err;
}

TEST(BadInputModel, DanglingInputNamesNodeAndTensor) {
  TempDir dir;
  auto m = make_model();
  add_input(m, "x", {2});
  add_node(m, "Add", {"x", "ghost"}, {"y"}, "adder");
  add_output(m, "y");
  const std::string model = write_model(dir, "dangling.onnx", m);
  expect_compile_error(model, {}, {model, "'adder'", "'ghost'"});
}

TEST(BadInputModel, InvalidUtf8NamesStillGiveAValidPlan) {
  // ONNX does not enforce UTF-8 in names; the JSON writer used to throw on
  // them (exit 2). The plan now carries U+FFFD and still verifies.
  TempDir dir;
  auto m = make_model();
  add_input(m, "x\xf8", {2});
  add_node(m, "Relu", {"x\xf8"}, {"y"}, "relu\xff");
  add_output(m, "y");
  const std::string model = write_model(dir, "utf8.onnx", m);
  const std::string plan = dir.file("plan.json");
  CliRun c = run({"compile", model, "--mode", "inference", "-o", plan});  // no loss in this model
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_EQ(run({"verify", plan}).rc, 0);
  EXPECT_NE(slurp(plan).find("relu\xef\xbf\xbd"), std::string::npos);
}

// ---------------------------------------------------------------- dims

TEST(BadInputDims, UnboundDynamicDimNamesInputAndDimAndSuggestsFlag) {
  const std::string model = model_path("opset17/resnet18.onnx");
  expect_compile_error(model, {}, {model, "input 'input'", "'batch'", "--dim batch="});
}

TEST(BadInputDims, UnboundSeqOnTransformer) {
  const std::string model = model_path("opset17/gpt2.onnx");
  expect_compile_error(model, {"--dim", "batch=2"},
                       {model, "input 'input_ids'", "'seq'", "--dim seq="});
}

TEST(BadInputDims, DimTheModelLacks) {
  const std::string model = model_path("opset17/resnet18.onnx");
  expect_compile_error(model, {"--dim", "batch=2", "--dim", "seq=64"},
                       {"--dim seq=64", "no symbolic dim 'seq'", "batch"});
}

TEST(BadInputDims, NegativeDim) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=-3"}, {"--dim", "batch=-3", "positive"});
}

TEST(BadInputDims, ZeroDim) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=0"}, {"--dim", "batch=0", "positive"});
}

TEST(BadInputDims, DimDoesNotFitIn64Bits) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=99999999999999999999"},
                       {"--dim", "batch", "64 bits"});
}

TEST(BadInputDims, ByteCountOverflowOnCnn) {
  // 2^62 x 3 x 32 x 32 elements do not fit in 64 bits: the input tensor
  // itself overflows, before any op runs.
  expect_compile_error(tiny_cnn(), {"--dim", "batch=4611686018427387904"},
                       {"'input'", "overflows 64 bits", "batch"});
}

TEST(BadInputDims, ByteCountOverflowInsideTheGraph) {
  // batch = 2^46: the input is 2^46 x 3 x 32 x 32 x 4 B = 3 x 2^58 B and the
  // first conv's output 2^46 x 16 x 32 x 32 x 4 B = 2^62 B: each tensor fits
  // in 64 bits, but the conv output and the BatchNorm output reading it are
  // live together, 2^63 B. This used to wrap around inside the planner and
  // end as an internal error (exit 2); the pipeline now refuses graphs whose
  // tensors add up to more than 2^63 B before planning.
  expect_compile_error(tiny_cnn(), {"--dim", "batch=70368744177664"},
                       {tiny_cnn(), "2^63 bytes", "64-bit", "batch=70368744177664"});
}

TEST(BadInputDims, ByteCountOverflowInsideAnOp) {
  // batch = 2^47: the input (3 x 2^59 B) fits, the first conv's output
  // (2^63 B) does not; the message names the node and its output.
  expect_compile_error(tiny_cnn(), {"--dim", "batch=140737488355328"},
                       {tiny_cnn(), "Conv", "Conv_output_0", "overflows 64 bits"});
}

TEST(BadInputDims, InputShapeWithHugeDims) {
  expect_compile_error(tiny_cnn(), {"--input-shape", "labels=4611686018427387904"},
                       {"'input'", "overflows 64 bits"});
}

TEST(BadInputDims, InputShapeForAMissingInput) {
  expect_compile_error(tiny_cnn(), {"--input-shape", "pixels=2x3x32x32"},
                       {"--input-shape pixels", "no graph input 'pixels'", "input"});
}

TEST(BadInputDims, InputShapeWithWrongRank) {
  expect_compile_error(tiny_cnn(), {"--input-shape", "input=2x3x32"},
                       {"--input-shape input", "rank 4"});
}

TEST(BadInputDims, UnparsableDimWithoutValue) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch"}, {"--dim 'batch'", "NAME=VALUE"});
}

TEST(BadInputDims, UnparsableDimValue) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=x"}, {"--dim 'batch=x'", "not an integer"});
}

TEST(BadInputDims, ConflictingDims) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--dim", "batch=3"},
                       {"--dim batch", "twice"});
}

// ---------------------------------------------------------------- compile flags

TEST(BadInputFlags, OutputInMissingDirectory) {
  TempDir dir;
  const std::string out = dir.file("no/such/dir/plan.json");
  std::string err = expect_user_error(dir, {"compile", tiny_cnn(), "--dim", "batch=2", "-o", out},
                                      {out, "does not exist"}, out);
  EXPECT_FALSE(fs::exists(dir.file("no"))) << "compile created the missing directory";
}

TEST(BadInputFlags, LossWithoutLabels) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--mode", "training", "--loss", "mse"},
                       {"--loss mse", "--labels"});
}

TEST(BadInputFlags, UnknownOptimizer) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--mode", "training", "--optimizer", "lamb"},
                       {"--optimizer lamb"});
}

TEST(BadInputFlags, UnknownMode) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--mode", "fast"}, {"--mode fast"});
}

TEST(BadInputFlags, AlignmentNotAPowerOfTwo) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--alignment", "100"},
                       {"--alignment 100", "power of two"});
}

TEST(BadInputFlags, UnknownSchedule) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--schedule", "magic"},
                       {"--schedule magic", "greedy"});
}

TEST(BadInputFlags, UnknownDumpAfterPass) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--dump-after", "fold"},
                       {"--dump-after fold", "no such pass"});
}

TEST(BadInputFlags, UnknownFlag) {
  expect_compile_error(tiny_cnn(), {"--dim", "batch=2", "--frobnicate"}, {"--frobnicate"});
}

TEST(BadInputFlags, NoSubcommand) {
  TempDir dir;
  expect_user_error(dir, {}, {"memplan --help"});
}

// ---------------------------------------------------------------- plans

/// A valid plan of tiny_cnn at batch 2, as JSON.
json tiny_cnn_plan() {
  CliRun r = run({"compile", tiny_cnn(), "--dim", "batch=2"});
  EXPECT_EQ(r.rc, 0) << r.err;
  return json::parse(r.out);
}

/// Two arena tensors live at the same step, for an overlap edit.
std::pair<size_t, size_t> two_live_arena_tensors(const json& plan) {
  // The output of op k and op k+1 of a chain are live together at step k+1
  // (op k+1 reads one and writes the other).
  for (const json& op : plan["ops"]) {
    for (const json& in : op["inputs"])
      for (const json& out : op["outputs"]) {
        if (in.get<int>() < 0 || out.get<int>() < 0) continue;
        const json& a = plan["tensors"][in.get<size_t>()];
        const json& b = plan["tensors"][out.get<size_t>()];
        // b moved onto a must still fit inside the arena: b no larger than a.
        if (a["placement"] == "arena" && b["placement"] == "arena" && a["bytes"] > 0 &&
            b["bytes"] > 0 && b["bytes"] <= a["bytes"])
          return {in.get<size_t>(), out.get<size_t>()};
      }
  }
  ADD_FAILURE() << "no op reads and writes arena tensors";
  return {0, 0};
}

struct BadPlan {
  std::string name;
  std::string text;
  std::vector<std::string> keywords;  // for verify (the verifier report) and the others
};

std::vector<BadPlan> bad_plans() {
  const json good = tiny_cnn_plan();
  const std::string good_text = good.dump(1);
  std::vector<BadPlan> r;
  r.push_back(
      {"truncated", good_text.substr(0, good_text.size() / 2), {"not valid JSON", "truncated"}});
  std::mt19937 rng(99);
  std::string noise(2048, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  r.push_back({"random", noise, {"not valid JSON"}});
  r.push_back(
      {"not_a_plan", R"({"format": "memplan-baseline", "plans": {}})", {"not a memplan plan"}});
  r.push_back({"array", "[1, 2, 3]", {"not a memplan plan"}});

  json overlap = good;
  auto [a, b] = two_live_arena_tensors(good);
  overlap["tensors"][b]["offset"] = overlap["tensors"][a]["offset"];
  r.push_back({"overlap", overlap.dump(1), {"overlap", "tensor " + std::to_string(a)}});

  json out_of_range = good;
  out_of_range["ops"][0]["inputs"][0] = 99999;
  r.push_back({"id_out_of_range", out_of_range.dump(1), {"99999", "out of range"}});

  json bad_alias = good;
  bad_alias["tensors"][a]["placement"] = "alias";
  bad_alias["tensors"][a]["alias_of"] = -7;
  bad_alias["tensors"][a]["alias_kind"] = "view";
  r.push_back({"alias_out_of_range", bad_alias.dump(1), {"alias", "-7"}});

  json wrong_type = good;
  wrong_type["alignment"] = "256";
  r.push_back({"wrong_type", wrong_type.dump(1), {"'alignment'", "must be an integer"}});

  json wrong_shape = good;
  wrong_shape["tensors"][0]["shape"] = "2x3";
  r.push_back({"shape_not_array", wrong_shape.dump(1), {"tensors[0].shape", "must be an array"}});

  json missing = good;
  missing.erase("summary");
  r.push_back({"missing_key", missing.dump(1), {"'summary'", "is missing"}});

  json huge_offset = good;
  huge_offset["tensors"][b]["offset"] = INT64_MAX - 255;
  r.push_back({"huge_offset", huge_offset.dump(1), {"does not fit in the arena"}});

  json huge_shapes = good;
  // Two f32[2^60] tensors: each 2^62 bytes (fits), together 2^63 (does not).
  for (size_t t : {a, b}) {
    huge_shapes["tensors"][t]["shape"] = json::array({int64_t{1} << 60});
    huge_shapes["tensors"][t]["bytes"] = int64_t{1} << 62;
  }
  r.push_back({"huge_tensors", huge_shapes.dump(1), {"more than 2^63 bytes"}});

  json huge_summary = good;
  huge_summary["summary"]["arena_bytes"] = INT64_MAX;
  huge_summary["summary"]["resident_bytes"] = INT64_MAX;
  r.push_back({"huge_summary", huge_summary.dump(1), {"summary."}});

  json bad_step = good;
  bad_step["summary"]["peak_step"] = 100000;
  r.push_back({"peak_step_out_of_range", bad_step.dump(1), {"summary.peak_step 100000"}});

  json bad_version = good;
  bad_version["version"] = 99;
  r.push_back({"future_version", bad_version.dump(1), {"version 99", "not supported"}});
  return r;
}

class BadInputPlan : public ::testing::TestWithParam<std::string> {};

TEST_P(BadInputPlan, VerifyInspectAndCheckRejectIt) {
  std::vector<BadPlan> plans = bad_plans();
  auto it = std::find_if(plans.begin(), plans.end(),
                         [&](const BadPlan& p) { return p.name == GetParam(); });
  ASSERT_NE(it, plans.end());
  TempDir dir;
  const std::string plan = dir.file("plan.json");  // keywords must come from the message
  write_bytes(plan, it->text);
  const std::string baseline = dir.file("baseline.json");
  std::vector<std::string> keywords = it->keywords;
  keywords.push_back(plan);

  // verify reports every problem under one header; the others refuse with one line.
  expect_user_error(dir, {"verify", plan}, keywords);
  expect_user_error(dir, {"inspect", plan}, keywords);
  expect_user_error(dir, {"check", plan, "--baseline", baseline}, keywords, baseline);
  // --update must not record a broken plan.
  expect_user_error(dir, {"check", plan, "--baseline", baseline, "--update"}, keywords, baseline);
}

INSTANTIATE_TEST_SUITE_P(Plans, BadInputPlan,
                         ::testing::Values("truncated", "random", "not_a_plan", "array", "overlap",
                                           "id_out_of_range", "alias_out_of_range", "wrong_type",
                                           "shape_not_array", "missing_key", "huge_offset",
                                           "huge_tensors", "huge_summary", "peak_step_out_of_range",
                                           "future_version"),
                         [](const auto& info) { return info.param; });

TEST(BadInputPlanFile, MissingPlanFile) {
  TempDir dir;
  const std::string plan = dir.file("nope.plan.json");
  for (const char* cmd : {"verify", "inspect"}) expect_user_error(dir, {cmd, plan}, {plan});
  expect_user_error(dir, {"check", plan, "--baseline", dir.file("b.json")}, {plan},
                    dir.file("b.json"));
}

// ---------------------------------------------------------------- check

/// A valid plan file of tiny_cnn in `dir`.
std::string write_good_plan(const TempDir& dir) {
  const std::string plan = dir.file("good.plan.json");
  CliRun r = run({"compile", tiny_cnn(), "--dim", "batch=2", "-o", plan});
  EXPECT_EQ(r.rc, 0) << r.err;
  return plan;
}

TEST(BadInputCheck, MissingBaseline) {
  TempDir dir;
  const std::string plan = write_good_plan(dir);
  const std::string baseline = dir.file("baseline.json");
  expect_user_error(dir, {"check", plan, "--baseline", baseline},
                    {baseline, "does not exist", "--update"}, baseline);
}

TEST(BadInputCheck, CorruptedBaseline) {
  TempDir dir;
  const std::string plan = write_good_plan(dir);
  const std::string baseline = dir.file("baseline.json");
  write_bytes(baseline, "{\"format\": \"memplan-baseline\", \"plans\": {");
  expect_user_error(dir, {"check", plan, "--baseline", baseline}, {baseline, "not valid JSON"});
  // --update must not overwrite a file it cannot read.
  expect_user_error(dir, {"check", plan, "--baseline", baseline, "--update"},
                    {baseline, "not valid JSON"});
  EXPECT_EQ(slurp(baseline), "{\"format\": \"memplan-baseline\", \"plans\": {");
}

TEST(BadInputCheck, BaselineThatIsNotABaseline) {
  TempDir dir;
  const std::string plan = write_good_plan(dir);
  expect_user_error(dir, {"check", plan, "--baseline", plan}, {plan, "not a memplan baseline"});
}

TEST(BadInputCheck, BaselineEntryWithWrongType) {
  TempDir dir;
  const std::string plan = write_good_plan(dir);
  const std::string baseline = dir.file("baseline.json");
  ASSERT_EQ(run({"check", plan, "--baseline", baseline, "--update"}).rc, 0);
  json b = json::parse(slurp(baseline));
  for (auto& [key, entry] : b["plans"].items()) entry["peak_bytes"] = "big";
  write_bytes(baseline, b.dump(1));
  expect_user_error(dir, {"check", plan, "--baseline", baseline}, {baseline, "'peak_bytes'"});
}

TEST(BadInputCheck, BaselineWithoutThisPlan) {
  TempDir dir;
  const std::string plan = write_good_plan(dir);
  const std::string baseline = dir.file("baseline.json");
  write_bytes(baseline, R"({"format": "memplan-baseline", "version": 1, "plans": {}})");
  expect_user_error(dir, {"check", plan, "--baseline", baseline},
                    {baseline, "no baseline entry", "batch=2", "--update"});
}

TEST(BadInputCheck, ToleranceNotANumber) {
  TempDir dir;
  const std::string plan = write_good_plan(dir);
  const std::string baseline = dir.file("baseline.json");
  expect_user_error(dir, {"check", plan, "--baseline", baseline, "--tolerance", "abc"},
                    {"--tolerance abc", "percentage"}, baseline);
  expect_user_error(dir, {"check", plan, "--baseline", baseline, "--tolerance", "-1%"},
                    {"--tolerance -1%", "percentage"}, baseline);
}

// ---------------------------------------------------------------- fuzz

TEST(BadInputFuzz, ByteFlipsOfASmallModelNeverCrash) {
  // 200 mutants of tiny_cnn, 1-4 random bytes each: compile must exit 0 (the
  // flip hit weight data) or 1 (a clear error), never 2, never throw.
  TempDir dir;
  const std::string good = slurp(tiny_cnn());
  ASSERT_FALSE(good.empty());
  std::mt19937 rng(2024);
  const std::string model = dir.file("mutant.onnx");
  int ok = 0, rejected = 0;
  for (int i = 0; i < 200; ++i) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    write_bytes(model, bytes);
    CliRun r = run({"compile", model, "--dim", "batch=2"});
    ASSERT_TRUE(r.rc == 0 || r.rc == 1) << "mutant " << i << " exit " << r.rc << ": " << r.err;
    if (r.rc == 1) {
      EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
      ++rejected;
    } else {
      ++ok;
    }
  }
  // Most flips land in weight bytes; some must hit the structure.
  EXPECT_GT(ok, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace memplan::testing
