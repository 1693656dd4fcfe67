// Tests for `memplan run` and what it needs: .npy files, checkpoints,
// weights loading and random init, data feeds, the command itself.
// Bad-input suites start with BadInput (the ASan job runs them).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "compiler/autodiff.h"
#include "compiler/dtype_codec.h"
#include "exec_test_util.h"
#include "runtime/checkpoint.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/run_command.h"
#include "runtime/weights.h"

namespace memplan::testing {
namespace {

void write_bytes(const std::string& path, const std::string& b) {
  std::ofstream(path, std::ios::binary) << b;
}

// ---------------------------------------------------------------- npy

TEST(NpyTest, RoundTripsAndReadsNumpyWrittenHeaders) {
  NpyArray a{DType::f32, {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})};
  std::string b = npy_bytes(a);
  EXPECT_EQ((b.size() - 24) % 64, 0u);  // magic..header is a multiple of 64, data is 24 bytes
  NpyArray r = parse_npy(b, "a.npy");
  EXPECT_EQ(r.dtype, DType::f32);
  EXPECT_EQ(r.shape, (Shape{2, 3}));
  EXPECT_EQ(r.data, a.data);
  // What numpy 1.x writes for np.arange(3, dtype=np.int64): version 1.0, a
  // 1-tuple shape "(3,)", no trailing comma inside the dict on older numpys.
  std::string dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}";
  std::string hdr = std::string("\x93NUMPY\x01\x00", 8);
  hdr += static_cast<char>(dict.size() + 1);
  hdr += '\0';
  hdr += dict + "\n";
  std::string data(24, '\0');
  data[0] = 0, data[8] = 1, data[16] = 2;
  NpyArray i = parse_npy(hdr + data, "i.npy");
  EXPECT_EQ(i.dtype, DType::i64);
  EXPECT_EQ(i.shape, (Shape{3}));
  EXPECT_EQ(decode_int(DType::i64, i.data.data(), 2), 2);
  // Version 2.0: 4-byte header length; a scalar has shape ().
  std::string d2 = "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n";
  std::string v2 = std::string("\x93NUMPY\x02\x00", 8) + std::string(1, static_cast<char>(d2.size())) +
                   std::string(3, '\0') + d2 + std::string(1, '\x01');
  NpyArray s = parse_npy(v2, "s.npy");
  EXPECT_EQ(s.dtype, DType::boolean);
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.data, std::vector<uint8_t>{1});
}

TEST(BadInputNpy, RejectsWhatItCannotRead) {
  std::string good = npy_bytes({DType::f32, {2}, f32_bytes({1, 2})});
  // Every proper prefix is truncated somewhere: header or data.
  for (size_t n = 0; n < good.size(); ++n)
    expect_error([&] { parse_npy(good.substr(0, n), "t.npy"); }, "t.npy: ");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string b = good;
    b.replace(b.find(from), from.size(), to);
    return b;
  };
  expect_error([&] { parse_npy(with("<f4", ">f4"), "be.npy"); }, "be.npy: .npy file has dtype '>f4'");
  expect_error([&] { parse_npy(with("<f4", "<c8"), "c.npy"); }, "dtype '<c8'");
  expect_error([&] { parse_npy(with("False", "True "), "f.npy"); }, "Fortran order");
  expect_error([&] { parse_npy(good + "xx", "x.npy"); }, "2 bytes after its data");
  std::string v9 = good;
  v9[6] = 9;
  expect_error([&] { parse_npy(v9, "v.npy"); }, "version 9");
  expect_error([&] { parse_npy("PK\x03\x04 not npy", "z.npy"); }, "not a .npy file");
  expect_error([&] { read_npy("/nonexistent/x.npy"); }, "/nonexistent/x.npy");
}

// ---------------------------------------------------------------- checkpoints

Checkpoint small_checkpoint() {
  Checkpoint c;
  c.step = 7;
  c.seed = 99;
  c.tensors.push_back({"w", Role::parameter, DType::f32, {3, 2}, f32_bytes({1, 2, 3, 4, 5, 6})});
  c.tensors.push_back({"s", Role::state, DType::f32, {2}, f32_bytes({-1, 0.5})});
  return c;
}

TEST(CheckpointTest, RoundTripsExactly) {
  Checkpoint c = small_checkpoint();
  std::string b = checkpoint_bytes(c);
  Checkpoint r = parse_checkpoint(b, "c.ckpt");
  EXPECT_EQ(r.step, 7u);
  EXPECT_EQ(r.seed, 99u);
  ASSERT_EQ(r.tensors.size(), 2u);
  EXPECT_EQ(r.tensors[0].name, "w");
  EXPECT_EQ(r.tensors[0].shape, (Shape{3, 2}));
  EXPECT_EQ(r.tensors[1].role, Role::state);
  EXPECT_EQ(r.tensors[1].data, c.tensors[1].data);
  EXPECT_EQ(checkpoint_bytes(r), b);
}

TEST(BadInputCheckpoint, TruncatedCorruptOrForeignFilesAreErrors) {
  std::string b = checkpoint_bytes(small_checkpoint());
  for (size_t n = 0; n < b.size(); ++n)
    expect_error([&] { parse_checkpoint(b.substr(0, n), "c.ckpt"); }, "c.ckpt: checkpoint ");
  expect_error([&] { parse_checkpoint(b + "x", "c.ckpt"); }, "unexpected bytes at its end");
  // A flipped data byte passes every structural check but the checksum.
  std::string flip = b;
  flip[b.size() - 12] ^= 0x40;
  expect_error([&] { parse_checkpoint(flip, "c.ckpt"); }, "checksum mismatch");
  std::string magic = b;
  magic[0] = 'X';
  expect_error([&] { parse_checkpoint(magic, "c.ckpt"); }, "bad magic");
  expect_error([&] { read_checkpoint("/nonexistent/c.ckpt"); }, "/nonexistent/c.ckpt");
}

/// inputs x f32[4], loss f32[] (the loss); parameter w f32[3,2]; state s f32[2].
Plan op_free_plan() {
  Graph g;
  g.name = "opfree";
  g.opset = 17;
  TensorId x = add_decl(g, "x", Role::input, {4});
  TensorId loss = add_decl(g, "loss", Role::input, {});
  add_decl(g, "w", Role::parameter, {3, 2});
  add_decl(g, "s", Role::state, {2});
  g.outputs = {x, loss};
  Plan p = plan_of(g);
  p.loss = static_cast<int32_t>(loss.v);
  return p;
}

TEST(BadInputCheckpoint, RestoreChecksNamesShapesAndCompleteness) {
  auto ex = make_cpu_executor(op_free_plan());
  restore_checkpoint(*ex, small_checkpoint(), "c.ckpt", true);
  EXPECT_EQ(as_f32(ex->read("s")), (std::vector<float>{-1, 0.5}));
  EXPECT_EQ(ex->step_count(), 7u);
  Checkpoint extra = small_checkpoint();
  extra.tensors.push_back({"momentum.w", Role::optimizer_state, DType::f32, {1}, f32_bytes({0})});
  expect_error([&] { restore_checkpoint(*ex, extra, "c.ckpt", true); },
               "c.ckpt: checkpoint tensor 'momentum.w' is not a parameter");
  Checkpoint shape = small_checkpoint();
  shape.tensors[0].shape = {2, 3};
  expect_error([&] { restore_checkpoint(*ex, shape, "c.ckpt", true); },
               "tensor 'w' is f32[2,3] but the plan has f32[3,2]");
  Checkpoint missing = small_checkpoint();
  missing.tensors.pop_back();
  expect_error([&] { restore_checkpoint(*ex, missing, "c.ckpt", true); }, "no tensor 's' (state)");
}

// ---------------------------------------------------------------- weights

TEST(WeightsTest, InitRandomIsDeterministicAndBounded) {
  auto a = make_cpu_executor(op_free_plan());
  auto b = make_cpu_executor(op_free_plan());
  a->set_step_count(5);
  init_random(*a, 1);
  init_random(*b, 1);
  EXPECT_EQ(a->step_count(), 0u);
  std::vector<float> w = as_f32(a->read("w"));
  EXPECT_EQ(w, as_f32(b->read("w")));
  // w [3,2] read by nobody: fan_in = prod(shape[1:]) = 2, bound 1/sqrt(2).
  double bound = 1 / std::sqrt(2.0), mx = 0;
  for (float v : w) mx = std::max(mx, std::abs(static_cast<double>(v)));
  EXPECT_LE(mx, bound);
  EXPECT_GT(mx, 0.0);
  EXPECT_EQ(as_f32(a->read("s")), (std::vector<float>{0, 0}));  // plain state: zero
  init_random(*b, 2);
  EXPECT_NE(as_f32(b->read("w")), w);
}

/// An initializer-only ONNX model: w f32[3,2] inline (or external: 8 junk
/// bytes, then the data, in `w.bin`), s f32[2] inline.
std::string onnx_model(bool external, Shape wshape = {3, 2}) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("weights");
  auto add = [&](const std::string& name, const Shape& s, const std::vector<float>& v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : s) t->add_dims(d);
    auto b = f32_bytes(v);
    if (external && name == "w") {
      t->set_data_location(onnx::TensorProto::EXTERNAL);
      auto* kv = t->add_external_data();
      kv->set_key("location"), kv->set_value("w.bin");
      kv = t->add_external_data();
      kv->set_key("offset"), kv->set_value("8");
      kv = t->add_external_data();
      kv->set_key("length"), kv->set_value(std::to_string(b.size()));
    } else {
      t->set_raw_data(std::string(b.begin(), b.end()));
    }
    auto* o = g->add_output();
    o->set_name(name);
    o->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  };
  add("w", wshape, {1, 2, 3, 4, 5, 6});
  add("s", {2}, {7, 8});
  return m.SerializeAsString();
}

TEST(WeightsTest, LoadsOnnxInlineExternalAndCheckpoints) {
  TempDir d("weights");
  write_bytes(d.file("inline.onnx"), onnx_model(false));
  auto ex = make_cpu_executor(op_free_plan());
  load_weights(*ex, d.file("inline.onnx"));
  EXPECT_EQ(as_f32(ex->read("w")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(as_f32(ex->read("s")), (std::vector<float>{7, 8}));

  auto w = f32_bytes({1, 2, 3, 4, 5, 6});
  write_bytes(d.file("ext.onnx"), onnx_model(true));
  write_bytes(d.file("w.bin"), std::string(8, 'j') + std::string(w.begin(), w.end()));
  auto ex2 = make_cpu_executor(op_free_plan());
  load_weights(*ex2, d.file("ext.onnx"));
  EXPECT_EQ(as_f32(ex2->read("w")), (std::vector<float>{1, 2, 3, 4, 5, 6}));

  write_checkpoint(d.file("c.ckpt"), capture_checkpoint(*ex, 3));
  auto ex3 = make_cpu_executor(op_free_plan());
  ex3->set_step_count(11);
  load_weights(*ex3, d.file("c.ckpt"));
  EXPECT_EQ(as_f32(ex3->read("w")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ex3->step_count(), 11u);  // --weights does not restore the step
}

TEST(BadInputWeights, MissingTruncatedOrMismatchedWeightsAreErrors) {
  TempDir d("badweights");
  auto ex = make_cpu_executor(op_free_plan());
  expect_error([&] { load_weights(*ex, d.file("none.onnx")); }, "none.onnx: weights file does not exist");
  write_bytes(d.file("shape.onnx"), onnx_model(false, {2, 3}));
  expect_error([&] { load_weights(*ex, d.file("shape.onnx")); },
               "initializer 'w' is f32[2,3] but the plan has f32[3,2]");
  std::string m = onnx_model(false);
  write_bytes(d.file("trunc.onnx"), m.substr(0, m.size() / 2));
  expect_error([&] { load_weights(*ex, d.file("trunc.onnx")); }, "trunc.onnx");
  write_bytes(d.file("ext.onnx"), onnx_model(true));
  expect_error([&] { load_weights(*ex, d.file("ext.onnx")); }, "external data file");
  write_bytes(d.file("w.bin"), std::string(20, 'j'));  // needs 8 + 24 bytes
  expect_error([&] { load_weights(*ex, d.file("ext.onnx")); }, "is truncated");
  // A model without w: the parameter is absent.
  onnx::ModelProto mp;
  ASSERT_TRUE(mp.ParseFromString(onnx_model(false)));
  mp.mutable_graph()->mutable_initializer()->DeleteSubrange(0, 1);
  mp.mutable_graph()->mutable_output()->DeleteSubrange(0, 1);
  write_bytes(d.file("now.onnx"), mp.SerializeAsString());
  expect_error([&] { load_weights(*ex, d.file("now.onnx")); }, "no initializer for parameter 'w'");
  std::string ck = checkpoint_bytes(small_checkpoint());
  write_bytes(d.file("t.ckpt"), ck.substr(0, ck.size() - 5));
  expect_error([&] { load_weights(*ex, d.file("t.ckpt")); }, "t.ckpt: checkpoint is truncated");
}

// ---------------------------------------------------------------- data feeds

/// ids i64[2,5] -> Gather(emb f32[10,4]); scores f32[2,3] + labels i64[2] -> loss;
/// tok_labels i64[2,5] -> a second loss over 7 classes.
Graph feed_graph() {
  Graph g;
  g.opset = 17;
  TensorId ids = add_decl(g, "ids", Role::input, {2, 5}, DType::i64);
  TensorId x = add_decl(g, "x", Role::input, {2, 8});
  TensorId labels = add_decl(g, "labels", Role::input, {2}, DType::i64);
  TensorId tok = add_decl(g, "tok_labels", Role::input, {2, 5}, DType::i64);
  TensorId emb = add_decl(g, "emb", Role::parameter, {10, 4});
  TensorId scores = add_decl(g, "scores", Role::parameter, {2, 3});
  TensorId tscores = add_decl(g, "tscores", Role::parameter, {2, 7, 5});
  add_op(g, "Gather", {emb, ids}, "e");
  TensorId lab2 = add_op(g, "Identity", {labels}, "lab_view");
  add_op(g, "SoftmaxCrossEntropyLoss", {scores, lab2}, "l1");
  add_op(g, "SoftmaxCrossEntropyLoss", {tscores, tok}, "l2");
  (void)x;
  return g;
}

std::vector<int64_t> ints_of(const std::vector<uint8_t>& b) {
  std::vector<int64_t> v;
  for (size_t i = 0; i < b.size() / 8; ++i) v.push_back(decode_int(DType::i64, b.data(), i));
  return v;
}

TEST(DataFeedTest, SyntheticRangesComeFromTheGraphAndLabelsAreLearnable) {
  Graph g = feed_graph();
  EXPECT_EQ(synthetic_int_range(g, *g.find_tensor("ids")), 10);   // Gather table rows
  EXPECT_EQ(synthetic_int_range(g, *g.find_tensor("labels")), 3);  // through the Identity
  EXPECT_EQ(synthetic_int_range(g, *g.find_tensor("tok_labels")), 7);
  auto f = make_synthetic_feed(g, 5);
  auto f2 = make_synthetic_feed(g, 5);
  for (uint64_t k = 0; k < 6; ++k) {
    const InputMap& m = f->batch(k);
    EXPECT_EQ(m, f2->batch(k));  // deterministic from the seed
    EXPECT_EQ(m, f->batch(k + kSyntheticPool));  // the pool repeats
    std::vector<int64_t> ids = ints_of(m.at("ids")), tok = ints_of(m.at("tok_labels"));
    for (int64_t v : ids) EXPECT_TRUE(v >= 0 && v < 10) << v;
    // Token labels are a fixed permutation of the token ids (same element
    // count): (m * id + 3) mod C with m the first multiplier from 7 coprime
    // with C; C = 7 classes here, so m = 8.
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(tok[i], (ids[i] * 8 + 3) % 7);
    for (int64_t v : ints_of(m.at("labels"))) EXPECT_TRUE(v >= 0 && v < 3) << v;
    EXPECT_EQ(m.at("x").size(), 64u);
  }
  EXPECT_NE(f->batch(0), f->batch(1));
  // Labels are a function of x: batches with equal x have equal labels.
  EXPECT_EQ(f->batch(0).at("labels"), f->batch(kSyntheticPool).at("labels"));
}

TEST(DataFeedTest, NpyFeedBatchesInOrderAndWraps) {
  TempDir d("feed");
  Graph g;
  add_decl(g, "in/x", Role::input, {2, 2});
  write_npy(d.file("in_x.npy"), {DType::f32, {3, 2}, f32_bytes({0, 1, 10, 11, 20, 21})});
  auto f = make_npy_feed(g, d.path.string());
  // Samples 0,1 | 2,0 | 1,2 | 0,1 ...
  EXPECT_EQ(as_f32(f->batch(0).at("in/x")), (std::vector<float>{0, 1, 10, 11}));
  EXPECT_EQ(as_f32(f->batch(1).at("in/x")), (std::vector<float>{20, 21, 0, 1}));
  EXPECT_EQ(as_f32(f->batch(2).at("in/x")), (std::vector<float>{10, 11, 20, 21}));
  EXPECT_EQ(as_f32(f->batch(3).at("in/x")), (std::vector<float>{0, 1, 10, 11}));
}

TEST(BadInputDataFeed, MissingFilesWrongDtypesAndShapes) {
  TempDir d("badfeed");
  Graph g;
  add_decl(g, "x", Role::input, {2, 2});
  expect_error([&] { make_npy_feed(g, d.path.string()); }, "x.npy: no data file for graph input 'x'");
  write_npy(d.file("x.npy"), {DType::f64, {3, 2}, std::vector<uint8_t>(48)});
  expect_error([&] { make_npy_feed(g, d.path.string()); }, "dtype f64 but input 'x' is f32");
  write_npy(d.file("x.npy"), {DType::f32, {2, 3}, std::vector<uint8_t>(24)});
  expect_error([&] { make_npy_feed(g, d.path.string()); },
               "shape [2,3] does not fit input 'x' [2,2]: expected [samples,2]");
  write_bytes(d.file("x.npy"), "garbage");
  expect_error([&] { make_npy_feed(g, d.path.string()); }, "not a .npy file");
}

// ---------------------------------------------------------------- the command

struct RunOut {
  std::string out, err;
};
RunOut run(const RunArgs& a) {
  std::ostringstream out, err;
  run_command(a, out, err);
  return {out.str(), err.str()};
}

std::vector<std::string> loss_lines(const std::string& out) {
  std::vector<std::string> r;
  std::regex re("step \\d+/\\d+ (loss \\S+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it)
    r.push_back((*it)[1]);
  return r;
}

TEST(RunCommandTest, RunsStepsSavesAndResumesBitForBit) {
  TempDir d("run");
  write_bytes(d.file("p.json"), plan_to_json(op_free_plan()));
  RunArgs a{.plan = d.file("p.json"), .steps = 6, .init = "random", .seed = 3, .synthetic = true,
            .save = d.file("all.ckpt")};
  RunOut all = run(a);
  EXPECT_NE(all.out.find("step 1/6 loss "), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("arena: "), std::string::npos) << all.out;
  std::vector<std::string> straight = loss_lines(all.out);
  ASSERT_EQ(straight.size(), 6u);
  // The loss here is the synthetic scalar input: N(0,1) per batch, batch k
  // is pool[k % 4], so steps 1 and 5 see the same value and steps 1 and 2 differ.
  EXPECT_EQ(straight[0], straight[4]);
  EXPECT_NE(straight[0], straight[1]);
  // 3 steps, save, resume 3 more: the same 6 losses and the same final state
  // (3 is not a multiple of the pool size, so a resume that lost the step
  // counter would feed batch 0 again at step 4).
  RunArgs first = a;
  first.steps = 3;
  first.save = d.file("half.ckpt");
  std::vector<std::string> resumed = loss_lines(run(first).out);
  RunArgs second{.plan = a.plan, .steps = 3, .synthetic = true, .save = d.file("end.ckpt"),
                 .resume = d.file("half.ckpt")};
  for (const std::string& l : loss_lines(run(second).out)) resumed.push_back(l);
  EXPECT_EQ(resumed, straight);
  Checkpoint x = read_checkpoint(d.file("all.ckpt")), y = read_checkpoint(d.file("end.ckpt"));
  EXPECT_EQ(x.step, 6u);
  EXPECT_EQ(y.step, 6u);
  EXPECT_EQ(checkpoint_bytes(x), checkpoint_bytes(y));
}

TEST(BadInputRunCommand, BadFlagsPlansWeightsAndData) {
  TempDir d("badrun");
  Plan p = op_free_plan();
  write_bytes(d.file("p.json"), plan_to_json(p));
  RunArgs ok{.plan = d.file("p.json"), .steps = 1, .init = "random", .synthetic = true};
  auto with = [&](auto f) {
    RunArgs a = ok;
    f(a);
    return a;
  };
  expect_error([&] { run(with([](RunArgs& a) { a.steps = 0; })); }, "--steps must be at least 1 (got 0)");
  expect_error([&] { run(with([](RunArgs& a) { a.steps = -3; })); }, "(got -3)");
  expect_error([&] { run(with([](RunArgs& a) { a.init = ""; })); }, "give the weights");
  expect_error([&] { run(with([&](RunArgs& a) { a.weights = d.file("w.onnx"); })); }, "only one of");
  expect_error([&] { run(with([](RunArgs& a) { a.init = "xavier"; })); }, "--init 'xavier'");
  expect_error([&] { run(with([](RunArgs& a) { a.synthetic = false; })); }, "--data DIR or --synthetic");
  expect_error([&] { run(with([&](RunArgs& a) { a.plan = d.file("none.json"); })); }, "none.json");
  Plan bad = p;
  bad.summary.arena_bytes = 0;  // the inputs no longer fit
  write_bytes(d.file("bad.json"), plan_to_json(bad));
  expect_error([&] { run(with([&](RunArgs& a) { a.plan = d.file("bad.json"); })); }, "the plan is invalid");
  expect_error([&] { run(with([&](RunArgs& a) { a.init = "", a.weights = d.file("nope.onnx"); })); },
               "nope.onnx: weights file does not exist");
  write_bytes(d.file("t.ckpt"), "MEMPLCK\n\x01");
  expect_error([&] { run(with([&](RunArgs& a) { a.init = "", a.resume = d.file("t.ckpt"); })); },
               "t.ckpt: checkpoint is truncated");
  expect_error([&] { run(with([&](RunArgs& a) { a.synthetic = false, a.data = d.path.string(); })); },
               "no data file for graph input 'x'");
  expect_error([&] { run(with([&](RunArgs& a) { a.save = d.file("nodir/x.ckpt"); })); },
               "does not exist; create it first");
}

// Needs the training pass and its kernels: SGD with momentum and Dropout, so
// that both optimizer state and the Dropout step counter must be restored.
TEST(RunCommandTest, TrainingSaveResumeMatchesAStraightRun) {
  Graph g;
  g.opset = 17;
  TensorId x = add_decl(g, "x", Role::input, {4, 8});
  TensorId labels = add_decl(g, "labels", Role::input, {4}, DType::i64);
  TensorId w = add_decl(g, "w", Role::parameter, {8, 3});
  TensorId b = add_decl(g, "b", Role::parameter, {3});
  TensorId ratio = add_decl(g, "ratio", Role::constant, {});
  g.tensor(ratio).data = std::make_shared<const std::vector<uint8_t>>(f32_bytes({0.25f}));
  TensorId train = add_decl(g, "train", Role::constant, {}, DType::boolean);
  g.tensor(train).data = std::make_shared<const std::vector<uint8_t>>(std::vector<uint8_t>{1});
  TensorId dx = add_op(g, "Dropout", {x, ratio, train}, "dx");
  TensorId logits = add_op(g, "Add", {add_op(g, "MatMul", {dx, w}, "xw"), b}, "logits");
  g.outputs = {logits};
  (void)labels;
  infer_shapes(g);
  try {
    build_training_graph(g, {.loss = "cross-entropy", .labels = "labels",
                             .optimizer = {.kind = OptimizerKind::sgd, .lr = 0.1, .momentum = 0.9}});
  } catch (const Error& e) {
    GTEST_SKIP() << "waits for the training pass: " << e.what();
  }
  Plan p = plan_of(g);
  p.loss = static_cast<int32_t>(g.outputs[0].v);
  for (const Node& n : g.nodes())
    if (!find_kernel(n.op)) GTEST_SKIP() << "waits for the CPU kernel of " << n.op;
  TempDir d("train");
  write_bytes(d.file("p.json"), plan_to_json(p));
  RunArgs a{.plan = d.file("p.json"), .steps = 8, .init = "random", .seed = 4, .synthetic = true,
            .save = d.file("all.ckpt")};
  std::vector<std::string> straight = loss_lines(run(a).out);
  ASSERT_EQ(straight.size(), 8u);
  EXPECT_NE(straight.front(), straight.back());  // it trains
  RunArgs first = a;
  first.steps = 3;
  first.save = d.file("half.ckpt");
  std::vector<std::string> resumed = loss_lines(run(first).out);
  RunArgs second{.plan = a.plan, .steps = 5, .synthetic = true, .save = d.file("end.ckpt"),
                 .resume = d.file("half.ckpt")};
  for (const std::string& l : loss_lines(run(second).out)) resumed.push_back(l);
  EXPECT_EQ(resumed, straight);
  EXPECT_EQ(checkpoint_bytes(read_checkpoint(d.file("all.ckpt"))),
            checkpoint_bytes(read_checkpoint(d.file("end.ckpt"))));
}

}  // namespace
}  // namespace memplan::testing
