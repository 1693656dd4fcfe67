// Tests for the ONNX importer: small ModelProtos built with the protobuf API,
// bad inputs (each error must name the problem), and real files from the
// ONNX backend test data.
#include "python-free-frontends/onnx_importer.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <variant>

namespace memplan {
namespace {

namespace fs = std::filesystem;
using onnx::AttributeProto;
using onnx::TensorProto;

// ---------------------------------------------------------------- builders

using Dim = std::variant<int64_t, std::string>;  // dim_value or dim_param ("" = neither)

onnx::ModelProto make_model(int64_t opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

void set_type(onnx::ValueInfoProto* v, int elem, const std::vector<Dim>& dims) {
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (const Dim& d : dims) {
    auto* pd = shape->add_dim();
    if (auto* v2 = std::get_if<int64_t>(&d))
      pd->set_dim_value(*v2);
    else if (!std::get<std::string>(d).empty())
      pd->set_dim_param(std::get<std::string>(d));
  }
}

void add_input(onnx::ModelProto& m, const std::string& name, const std::vector<Dim>& dims,
               int elem = TensorProto::FLOAT) {
  auto* v = m.mutable_graph()->add_input();
  v->set_name(name);
  set_type(v, elem, dims);
}

void add_output(onnx::ModelProto& m, const std::string& name) {
  m.mutable_graph()->add_output()->set_name(name);
}

onnx::NodeProto* fill_node(onnx::NodeProto* n, const std::string& op,
                           const std::vector<std::string>& in, const std::vector<std::string>& out,
                           const std::string& name = "") {
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}
onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op,
                          const std::vector<std::string>& in, const std::vector<std::string>& out,
                          const std::string& name = "") {
  return fill_node(m.mutable_graph()->add_node(), op, in, out, name);
}

AttributeProto* add_int_attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INT);
  a->set_i(v);
  return a;
}

TensorProto* add_float_init(onnx::ModelProto& m, const std::string& name,
                            const std::vector<int64_t>& dims, float fill = 1.0f) {
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    n *= d;
  }
  for (int64_t i = 0; i < n; ++i) t->add_float_data(fill);
  return t;
}

ImportResult import(const onnx::ModelProto& m, const std::string& name = "test.onnx") {
  return import_onnx_bytes(m.SerializeAsString(), name);
}

/// The message of the Error importing `bytes` throws ("" and a failure if none).
std::string import_error_bytes(const std::string& bytes, const std::string& name = "test.onnx") {
  try {
    import_onnx_bytes(bytes, name);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "import succeeded; expected an error";
  return "";
}
std::string import_error(const onnx::ModelProto& m) {
  return import_error_bytes(m.SerializeAsString());
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "message: " << (haystack) << "\nexpected to contain: " << (needle)

const Tensor& tensor(const Graph& g, const std::string& name) {
  auto id = g.find_tensor(name);
  if (!id) throw std::runtime_error("no tensor " + name);
  return g.tensor(*id);
}

const Node* find_node(const Graph& g, const std::string& op) {
  for (const Node& n : g.nodes())
    if (n.op == op) return &n;
  return nullptr;
}

template <class T>
T read_elem(const Tensor& t, size_t i) {
  T v;
  std::memcpy(&v, t.data->data() + i * sizeof(T), sizeof(T));  // test hosts are little-endian
  return v;
}

/// A fresh empty directory under the system temp dir.
fs::path temp_dir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() /
               ("memplan_importer_test_" + tag + "_" + std::to_string(std::random_device{}()));
  fs::create_directories(d);
  return d;
}

// ---------------------------------------------------------------- roles, shapes

/// x -> BatchNormalization(scale, bias, mean, var) -> Reshape(shape) -> y
onnx::ModelProto bn_model() {
  auto m = make_model();
  add_input(m, "x", {std::string("N"), int64_t{3}, int64_t{4}, std::string("")});
  for (const char* p : {"scale", "bias", "mean", "var"}) add_float_init(m, p, {3});
  auto* shape = m.mutable_graph()->add_initializer();
  shape->set_name("shape");
  shape->set_data_type(TensorProto::INT64);
  shape->add_dims(2);
  shape->add_int64_data(0);
  shape->add_int64_data(-1);
  add_node(m, "BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"bn"}, "bn0");
  add_node(m, "Reshape", {"bn", "shape"}, {"y"}, "r0");
  add_output(m, "y");
  return m;
}

TEST(OnnxImporterTest, RolesBatchNormRunningStatsAreState) {
  ImportResult r = import(bn_model());
  const Graph& g = r.graph;
  EXPECT_EQ(g.opset, 17);
  EXPECT_EQ(g.num_nodes(), 2u);
  EXPECT_EQ(tensor(g, "x").role, Role::input);
  EXPECT_EQ(tensor(g, "scale").role, Role::parameter);
  EXPECT_EQ(tensor(g, "bias").role, Role::parameter);
  EXPECT_EQ(tensor(g, "mean").role, Role::state);
  EXPECT_EQ(tensor(g, "var").role, Role::state);
  EXPECT_EQ(tensor(g, "shape").role, Role::constant);  // integer initializer
  EXPECT_EQ(tensor(g, "bn").role, Role::activation);
  EXPECT_FALSE(tensor(g, "bn").shape_known);
  // Initializer bytes are decoded (3 floats of 1.0; shape = [0, -1]).
  ASSERT_TRUE(tensor(g, "scale").data);
  EXPECT_EQ(tensor(g, "scale").data->size(), 12u);
  EXPECT_EQ(read_elem<float>(tensor(g, "scale"), 2), 1.0f);
  EXPECT_EQ(read_elem<int64_t>(tensor(g, "shape"), 1), -1);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.tensor(g.outputs[0]).name, "y");
  EXPECT_TRUE(r.notes.empty());
}

TEST(OnnxImporterTest, DimParamBecomesSymbolicDim) {
  const Graph g = import(bn_model()).graph;
  const Tensor& x = tensor(g, "x");
  EXPECT_TRUE(x.shape_known);
  EXPECT_EQ(x.shape, (Shape{-1, 3, 4, -1}));
  // A dim with neither value nor param gets "<input>_dim<i>".
  EXPECT_EQ(x.sym, (std::vector<std::string>{"N", "", "", "x_dim3"}));
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.tensor(g.inputs[0]).name, "x");
}

TEST(OnnxImporterTest, InitializerListedAsInputIsNotAnInput) {
  auto m = bn_model();
  add_input(m, "scale", {int64_t{3}});  // what pre-IR-4 exporters wrote
  const Graph g = import(m).graph;
  EXPECT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(tensor(g, "scale").role, Role::parameter);
}

TEST(OnnxImporterTest, Float16InitializerFromInt32Data) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}}, TensorProto::FLOAT16);
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(TensorProto::FLOAT16);
  w->add_dims(2);
  w->add_int32_data(0x3c00);  // 1.0 in f16
  w->add_int32_data(0xc000);  // -2.0 in f16
  add_node(m, "Add", {"x", "w"}, {"y"});
  add_output(m, "y");
  const Graph g = import(m).graph;
  const Tensor& t = tensor(g, "w");
  EXPECT_EQ(t.dtype, DType::f16);
  EXPECT_EQ(t.role, Role::parameter);
  EXPECT_EQ(read_elem<uint16_t>(t, 0), 0x3c00);
  EXPECT_EQ(read_elem<uint16_t>(t, 1), 0xc000);
}

TEST(OnnxImporterTest, NodeNamesFilledAndMadeUnique) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}});
  add_node(m, "Relu", {"x"}, {"a"});  // unnamed -> Relu_0
  add_node(m, "Relu", {"a"}, {"b"}, "same");
  add_node(m, "Relu", {"b"}, {"c"}, "same");  // duplicate -> same_1
  add_output(m, "c");
  const Graph g = import(m).graph;
  ASSERT_EQ(g.num_nodes(), 3u);
  EXPECT_EQ(g.nodes()[0].name, "Relu_0");
  EXPECT_EQ(g.nodes()[1].name, "same");
  EXPECT_EQ(g.nodes()[2].name, "same_1");
}

TEST(OnnxImporterTest, OmittedOptionalInputsAndOutputs) {
  auto m = make_model();
  add_input(m, "x", {int64_t{4}});
  add_input(m, "mx", {int64_t{1}});
  add_node(m, "Clip", {"x", "", "mx"}, {"c"});  // min omitted
  add_node(m, "Dropout", {"c"}, {"d", ""});     // mask omitted
  add_output(m, "d");
  const Graph g = import(m).graph;
  const Node& clip = g.nodes()[0];
  ASSERT_EQ(clip.inputs.size(), 3u);
  EXPECT_FALSE(clip.inputs[1].valid());
  EXPECT_TRUE(clip.inputs[2].valid());
  const Node& drop = g.nodes()[1];
  ASSERT_EQ(drop.outputs.size(), 2u);
  EXPECT_FALSE(drop.outputs[1].valid());
}

// ---------------------------------------------------------------- constants, attributes

TEST(OnnxImporterTest, ConstantNodesFoldIntoConstantTensors) {
  auto m = make_model();
  add_input(m, "x", {int64_t{3}});
  auto* c = add_node(m, "Constant", {}, {"k"}, "const_k");
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(TensorProto::FLOAT);
  a->mutable_t()->add_dims(3);
  for (float f : {1.5f, 2.5f, 3.5f}) a->mutable_t()->add_float_data(f);
  auto* ci = add_node(m, "Constant", {}, {"axes"});
  auto* ai = ci->add_attribute();
  ai->set_name("value_ints");
  ai->set_type(AttributeProto::INTS);
  ai->add_ints(0);
  auto* cf = add_node(m, "Constant", {}, {"s"});
  auto* af = cf->add_attribute();
  af->set_name("value_float");
  af->set_type(AttributeProto::FLOAT);
  af->set_f(0.25f);
  add_node(m, "Mul", {"x", "k"}, {"y0"});
  add_node(m, "Mul", {"y0", "s"}, {"y1"});
  add_node(m, "Unsqueeze", {"y1", "axes"}, {"y"});
  add_output(m, "y");
  const Graph g = import(m).graph;
  EXPECT_EQ(g.num_nodes(), 3u);  // 6 ONNX nodes minus 3 Constants
  EXPECT_EQ(find_node(g, "Constant"), nullptr);
  const Tensor& k = tensor(g, "k");
  EXPECT_EQ(k.role, Role::constant);
  EXPECT_FALSE(k.producer.valid());
  EXPECT_EQ(k.shape, (Shape{3}));
  EXPECT_EQ(read_elem<float>(k, 1), 2.5f);
  const Tensor& axes = tensor(g, "axes");
  EXPECT_EQ(axes.dtype, DType::i64);
  EXPECT_EQ(axes.shape, (Shape{1}));
  const Tensor& s = tensor(g, "s");
  EXPECT_EQ(s.shape, Shape{});  // scalar
  EXPECT_EQ(read_elem<float>(s, 0), 0.25f);
}

TEST(OnnxImporterTest, CastToBecomesDtypeNameAndValueInfoGivesDtype) {
  auto m = make_model();
  add_input(m, "x", {int64_t{3}});
  add_int_attr(add_node(m, "Cast", {"x"}, {"h"}), "to", TensorProto::FLOAT16);
  add_node(m, "Relu", {"h"}, {"y"});
  auto* vi = m.mutable_graph()->add_value_info();
  vi->set_name("h");
  set_type(vi, TensorProto::FLOAT16, {int64_t{999}});  // shape is not trusted
  add_output(m, "y");
  const Graph g = import(m).graph;
  const Node* cast = find_node(g, "Cast");
  ASSERT_NE(cast, nullptr);
  EXPECT_EQ(attr_str(*cast, "to", ""), "f16");
  EXPECT_EQ(tensor(g, "h").dtype, DType::f16);
  EXPECT_FALSE(tensor(g, "h").shape_known);
  EXPECT_EQ(tensor(g, "y").dtype, DType::f32);  // no declaration: placeholder
}

TEST(OnnxImporterTest, AttributeKindsConvert) {
  auto m = make_model();
  add_input(m, "x", {int64_t{1}, int64_t{1}, int64_t{4}, int64_t{4}});
  add_float_init(m, "w", {1, 1, 3, 3});
  auto* n = add_node(m, "Conv", {"x", "w"}, {"y"}, "conv");
  auto* a = n->add_attribute();
  a->set_name("pads");
  a->set_type(AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) a->add_ints(1);
  auto* s = n->add_attribute();
  s->set_name("auto_pad");
  s->set_type(AttributeProto::STRING);
  s->set_s("NOTSET");
  add_int_attr(n, "group", 1);
  auto* eps = n->add_attribute();
  eps->set_name("fake_float");
  eps->set_type(AttributeProto::FLOAT);
  eps->set_f(0.1f);
  auto* f = n->add_attribute();
  f->set_name("fake_floats");
  f->set_type(AttributeProto::FLOATS);
  f->add_floats(0.5f);
  add_output(m, "y");
  const Graph g = import(m).graph;
  const Node& conv = g.nodes()[0];
  EXPECT_EQ(attr_ints(conv, "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(attr_str(conv, "auto_pad", ""), "NOTSET");
  EXPECT_EQ(attr_int(conv, "group", 0), 1);
  EXPECT_EQ(attr_floats(conv, "fake_floats"), (std::vector<double>{0.5}));
  EXPECT_EQ(attr_float(conv, "fake_float", 0), 0.1);  // shortest decimal, not 0.10000000149
}

TEST(OnnxImporterTest, ConstantOfShapeValueBecomesValueAndDtypeAttrs) {
  auto m = make_model();
  add_input(m, "shape", {int64_t{2}}, TensorProto::INT64);
  auto* n = add_node(m, "ConstantOfShape", {"shape"}, {"y"}, "cos");
  auto* a = n->add_attribute();
  a->set_name("value");
  a->set_type(AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(TensorProto::INT64);
  a->mutable_t()->add_dims(1);
  a->mutable_t()->add_int64_data(7);
  add_node(m, "ConstantOfShape", {"shape"}, {"z"}, "cos_default");
  add_output(m, "y");
  add_output(m, "z");
  const Graph g = import(m).graph;
  EXPECT_EQ(attr_float(g.nodes()[0], "value", 0), 7.0);
  EXPECT_EQ(attr_str(g.nodes()[0], "dtype", ""), "i64");
  // Absent value: ONNX's default, a float32 zero.
  EXPECT_EQ(attr_float(g.nodes()[1], "value", 1), 0.0);
  EXPECT_EQ(attr_str(g.nodes()[1], "dtype", ""), "f32");
}

// ---------------------------------------------------------------- external data

onnx::ModelProto external_model() {
  auto m = make_model();
  add_input(m, "x", {int64_t{4}});
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(TensorProto::FLOAT);
  w->add_dims(4);
  w->set_data_location(TensorProto::EXTERNAL);
  for (auto [k, v] : {std::pair{"location", "x.bin"}, {"offset", "0"}, {"length", "16"}}) {
    auto* e = w->add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  add_node(m, "Add", {"x", "w"}, {"y"});
  add_output(m, "y");
  return m;
}

TEST(OnnxImporterTest, ExternalDataWithAbsentFileGivesNote) {
  const fs::path dir = temp_dir("ext_absent");
  ImportResult r = import(external_model(), (dir / "m.onnx").string());
  const Tensor& w = tensor(r.graph, "w");
  EXPECT_EQ(w.external, "x.bin");
  EXPECT_FALSE(w.data);
  EXPECT_EQ(w.role, Role::parameter);
  EXPECT_EQ(w.shape, (Shape{4}));
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0], "weights in 'x.bin' not found: planning does not need them");
  fs::remove_all(dir);
}

TEST(OnnxImporterTest, ExternalDataWithPresentFileGivesNoNote) {
  const fs::path dir = temp_dir("ext_present");
  std::ofstream(dir / "x.bin") << "0123456789abcdef";
  std::ofstream(dir / "m.onnx", std::ios::binary) << external_model().SerializeAsString();
  ImportResult r = import_onnx_file((dir / "m.onnx").string());
  EXPECT_TRUE(r.notes.empty());
  EXPECT_EQ(tensor(r.graph, "w").external, "x.bin");
  fs::remove_all(dir);
}

TEST(OnnxImporterTest, ExternalDataLengthMismatchIsAnError) {
  auto m = external_model();
  m.mutable_graph()->mutable_initializer(0)->mutable_external_data(2)->set_value("12");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "initializer 'w'");
  EXPECT_CONTAINS(msg, "length 12");
}

// ---------------------------------------------------------------- functions

/// local.ScaledAct(X) -> Y, attribute alpha (default 0.5 in attribute_proto):
///   T = Mul(X, X); Y = LeakyRelu(T, alpha = @alpha)
onnx::ModelProto function_model() {
  auto m = make_model();
  m.set_ir_version(9);
  auto* lo = m.add_opset_import();
  lo->set_domain("local");
  lo->set_version(1);
  auto* f = m.add_functions();
  f->set_name("ScaledAct");
  f->set_domain("local");
  f->add_input("X");
  f->add_output("Y");
  f->add_attribute("alpha");
  f->add_opset_import()->set_version(17);
  fill_node(f->add_node(), "Mul", {"X", "X"}, {"T"}, "sq");
  auto* act = fill_node(f->add_node(), "LeakyRelu", {"T"}, {"Y"});  // unnamed
  auto* ref = act->add_attribute();
  ref->set_name("alpha");
  ref->set_type(AttributeProto::FLOAT);
  ref->set_ref_attr_name("alpha");
  // FunctionProto.attribute_proto (field 11, IR 9) is newer than the system
  // libonnx, so it is written as an unknown field, as a newer exporter would.
  AttributeProto dflt;
  dflt.set_name("alpha");
  dflt.set_type(AttributeProto::FLOAT);
  dflt.set_f(0.5f);
  f->mutable_unknown_fields()->AddLengthDelimited(11, dflt.SerializeAsString());

  add_input(m, "x", {int64_t{4}});
  auto* c1 = add_node(m, "ScaledAct", {"x"}, {"h"}, "call");
  c1->set_domain("local");
  auto* a1 = c1->add_attribute();
  a1->set_name("alpha");
  a1->set_type(AttributeProto::FLOAT);
  a1->set_f(0.25f);
  auto* c2 = add_node(m, "ScaledAct", {"h"}, {"y"}, "call");  // same name: prefix made unique
  c2->set_domain("local");
  add_output(m, "y");
  return m;
}

TEST(OnnxImporterTest, LocalFunctionInlinedAtEachCallSite) {
  const Graph g = import(function_model()).graph;
  ASSERT_EQ(g.num_nodes(), 4u);  // 2 calls x 2 body nodes
  EXPECT_EQ(g.nodes()[0].op, "Mul");
  EXPECT_EQ(g.nodes()[0].name, "call/sq");
  EXPECT_EQ(g.nodes()[1].name, "call/LeakyRelu_1");
  EXPECT_EQ(g.nodes()[2].name, "call_1/sq");
  // Internal value T renamed per call site; formal X/Y map to the caller's.
  EXPECT_TRUE(g.find_tensor("call/T").has_value());
  EXPECT_TRUE(g.find_tensor("call_1/T").has_value());
  EXPECT_EQ(g.tensor(g.nodes()[0].inputs[0]).name, "x");
  EXPECT_EQ(g.tensor(g.nodes()[1].outputs[0]).name, "h");
  EXPECT_EQ(g.tensor(g.nodes()[2].inputs[0]).name, "h");
  EXPECT_EQ(g.tensor(g.nodes()[3].outputs[0]).name, "y");
  // alpha: the caller's value at call 1, the function default at call 2.
  EXPECT_EQ(attr_float(g.nodes()[1], "alpha", -1), 0.25);
  EXPECT_EQ(attr_float(g.nodes()[3], "alpha", -1), 0.5);
}

TEST(OnnxImporterTest, NestedFunctionCallsInlineRecursively) {
  auto m = function_model();
  // local.Twice(A) -> B := ScaledAct(ScaledAct(A)), then the graph calls Twice.
  auto* f = m.add_functions();
  f->set_name("Twice");
  f->set_domain("local");
  f->add_input("A");
  f->add_output("B");
  fill_node(f->add_node(), "ScaledAct", {"A"}, {"M"}, "first")->set_domain("local");
  fill_node(f->add_node(), "ScaledAct", {"M"}, {"B"}, "second")->set_domain("local");
  m.mutable_graph()->clear_node();
  auto* call = add_node(m, "Twice", {"x"}, {"y"}, "tw");
  call->set_domain("local");
  const Graph g = import(m).graph;
  ASSERT_EQ(g.num_nodes(), 4u);
  EXPECT_EQ(g.nodes()[0].name, "tw/first/sq");
  EXPECT_EQ(g.nodes()[3].name, "tw/second/LeakyRelu_1");
  EXPECT_TRUE(g.find_tensor("tw/M").has_value());
}

TEST(OnnxImporterTest, RecursiveFunctionIsAnError) {
  auto m = function_model();
  fill_node(m.mutable_functions(0)->add_node(), "ScaledAct", {"Y"}, {"Z"})->set_domain("local");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "recursively");
  EXPECT_CONTAINS(msg, "ScaledAct");
}

TEST(OnnxImporterTest, TooDeeplyNestedFunctionsAreAnError) {
  // F0 calls F1 calls ... F99: a malicious file must not exhaust the stack.
  auto m = make_model();
  for (int i = 0; i < 100; ++i) {
    auto* f = m.add_functions();
    f->set_name("F" + std::to_string(i));
    f->set_domain("local");
    f->add_input("A");
    f->add_output("B");
    fill_node(f->add_node(), i == 99 ? "Relu" : "F" + std::to_string(i + 1), {"A"}, {"B"})
        ->set_domain(i == 99 ? "" : "local");
  }
  add_input(m, "x", {int64_t{2}});
  add_node(m, "F0", {"x"}, {"y"})->set_domain("local");
  add_output(m, "y");
  EXPECT_CONTAINS(import_error(m), "nested more than 64");
}

// ---------------------------------------------------------------- opsets

TEST(OnnxImporterTest, Opset18ModelImports) {
  auto m = make_model(18);
  m.mutable_opset_import(0)->set_domain("ai.onnx");  // the default domain's long name
  add_input(m, "x", {int64_t{2}, int64_t{3}});
  auto* axes = m.mutable_graph()->add_initializer();
  axes->set_name("axes");
  axes->set_data_type(TensorProto::INT64);
  axes->add_dims(1);
  axes->set_raw_data(std::string("\x01\0\0\0\0\0\0\0", 8));
  add_int_attr(add_node(m, "ReduceMean", {"x", "axes"}, {"y"}), "keepdims", 0);
  add_output(m, "y");
  const Graph g = import(m).graph;
  EXPECT_EQ(g.opset, 18);
  EXPECT_EQ(read_elem<int64_t>(tensor(g, "axes"), 0), 1);
}

TEST(OnnxImporterTest, OpsetOutsideRangeIsAnError) {
  for (int64_t opset : {12, 22}) {
    auto m = bn_model();
    m.mutable_opset_import(0)->set_version(opset);
    const std::string msg = import_error(m);
    EXPECT_CONTAINS(msg, "opset " + std::to_string(opset));
    EXPECT_CONTAINS(msg, "13 to 21");
  }
}

// ---------------------------------------------------------------- bad input

TEST(OnnxImporterTest, MissingFileIsAnError) {
  try {
    import_onnx_file("/nonexistent/dir/model.onnx");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "/nonexistent/dir/model.onnx");
    EXPECT_CONTAINS(e.what(), "no such file");
  }
}

TEST(OnnxImporterTest, EmptyFileIsAnError) {
  const fs::path dir = temp_dir("empty");
  std::ofstream(dir / "empty.onnx").close();
  try {
    import_onnx_file((dir / "empty.onnx").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "empty.onnx");
    EXPECT_CONTAINS(e.what(), "empty (0 bytes)");
  }
  fs::remove_all(dir);
}

TEST(OnnxImporterTest, TruncatedModelIsAnError) {
  const std::string bytes = bn_model().SerializeAsString();
  const std::string msg = import_error_bytes(bytes.substr(0, bytes.size() / 2), "half.onnx");
  EXPECT_CONTAINS(msg, "half.onnx");
  EXPECT_CONTAINS(msg, "truncated");
}

TEST(OnnxImporterTest, RandomBytesAreAnErrorNeverACrash) {
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    std::string bytes(1 + rng() % 512, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    EXPECT_THROW(import_onnx_bytes(bytes, "random.onnx"), Error) << "iteration " << i;
  }
}

TEST(OnnxImporterTest, FlippedBytesOfAValidModelNeverCrash) {
  // Mutations of a valid model either import or throw Error; nothing else.
  const std::string good = function_model().SerializeAsString();
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    try {
      import_onnx_bytes(bytes, "mutated.onnx");
    } catch (const Error&) {
    }
  }
}

TEST(OnnxImporterTest, TensorProtoIsNotAModel) {
  TensorProto t;
  t.set_name("w");
  t.set_data_type(TensorProto::FLOAT);
  t.add_dims(2);
  t.add_float_data(1);
  t.add_float_data(2);
  const std::string msg = import_error_bytes(t.SerializeAsString(), "tensor.pb");
  EXPECT_CONTAINS(msg, "tensor.pb");
  EXPECT_CONTAINS(msg, "not");
  EXPECT_CONTAINS(msg, "model");
}

TEST(OnnxImporterTest, ModelWithoutGraphOrOpsetIsAnError) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("x");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "not an ONNX model");
  EXPECT_CONTAINS(msg, "no graph");
  EXPECT_CONTAINS(msg, "no opset_import");
}

TEST(OnnxImporterTest, ModelWithoutDefaultDomainOpsetIsAnError) {
  auto m = bn_model();
  m.mutable_opset_import(0)->set_domain("ai.onnx.preview.training");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "no opset of the default ONNX domain");
  EXPECT_CONTAINS(msg, "ai.onnx.preview.training v17");
}

TEST(OnnxImporterTest, ZeroIrVersionIsNotAModel) {
  auto m = bn_model();
  m.clear_ir_version();
  EXPECT_CONTAINS(import_error(m), "no ir_version");
}

TEST(OnnxImporterTest, DanglingInputNamesNodeAndInput) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}});
  add_node(m, "Add", {"x", "ghost"}, {"y"}, "adder");
  add_output(m, "y");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "node 'adder' (Add)");
  EXPECT_CONTAINS(msg, "'ghost'");
}

TEST(OnnxImporterTest, CycleIsAnError) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}});
  add_node(m, "Add", {"x", "b"}, {"a"}, "n0");
  add_node(m, "Relu", {"a"}, {"b"}, "n1");
  add_output(m, "b");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "test.onnx");
  EXPECT_CONTAINS(msg, "cycle");
}

TEST(OnnxImporterTest, OutputProducedTwiceIsAnError) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}});
  add_node(m, "Relu", {"x"}, {"y"}, "first");
  add_node(m, "Sigmoid", {"x"}, {"y"}, "second");
  add_output(m, "y");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "'y' is produced twice");
  EXPECT_CONTAINS(msg, "first");
  EXPECT_CONTAINS(msg, "second");
}

TEST(OnnxImporterTest, UnsupportedDomainIsAnError) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}});
  add_node(m, "FusedGelu", {"x"}, {"y"}, "g0")->set_domain("com.microsoft");
  add_output(m, "y");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "FusedGelu");
  EXPECT_CONTAINS(msg, "com.microsoft");
  EXPECT_CONTAINS(msg, "'g0'");
}

TEST(OnnxImporterTest, UnsupportedDtypeNamesTheTensor) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}});
  auto* s = m.mutable_graph()->add_initializer();
  s->set_name("labels");
  s->set_data_type(TensorProto::STRING);
  s->add_dims(1);
  s->add_string_data("cat");
  add_output(m, "x");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "initializer 'labels'");
  EXPECT_CONTAINS(msg, "STRING");

  auto m2 = make_model();
  add_input(m2, "x16", {int64_t{2}}, TensorProto::INT16);
  add_output(m2, "x16");
  const std::string msg2 = import_error(m2);
  EXPECT_CONTAINS(msg2, "graph input 'x16'");
  EXPECT_CONTAINS(msg2, "INT16");
}

TEST(OnnxImporterTest, ElementCountMismatchNamesTheInitializer) {
  auto m = bn_model();
  m.mutable_graph()->mutable_initializer(2)->add_float_data(9);  // "mean": 4 values for dims [3]
  std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "initializer 'mean'");
  EXPECT_CONTAINS(msg, "4 elements in float_data");

  auto m2 = bn_model();
  m2.mutable_graph()->mutable_initializer(0)->clear_float_data();
  m2.mutable_graph()->mutable_initializer(0)->set_raw_data("abc");  // 3 bytes, need 12
  msg = import_error(m2);
  EXPECT_CONTAINS(msg, "initializer 'scale'");
  EXPECT_CONTAINS(msg, "raw_data");
}

TEST(OnnxImporterTest, HugeDimsAreAnErrorNotAnAllocation) {
  auto m = make_model();
  add_input(m, "x", {int64_t{2}});
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("huge");
  w->set_data_type(TensorProto::FLOAT);
  w->add_dims(int64_t{1} << 40);
  w->add_dims(int64_t{1} << 30);
  add_output(m, "x");
  EXPECT_CONTAINS(import_error(m), "initializer 'huge'");
}

TEST(OnnxImporterTest, ControlFlowSubgraphIsAnError) {
  auto m = make_model();
  add_input(m, "c", {}, TensorProto::BOOL);
  auto* n = add_node(m, "If", {"c"}, {"y"}, "branch");
  auto* a = n->add_attribute();
  a->set_name("then_branch");
  a->set_type(AttributeProto::GRAPH);
  a->mutable_g()->set_name("then");
  add_output(m, "y");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "node 'branch' (If)");
  EXPECT_CONTAINS(msg, "then_branch");
}

TEST(OnnxImporterTest, StringConstantIsAnError) {
  auto m = make_model();
  auto* c = add_node(m, "Constant", {}, {"s"}, "str");
  auto* a = c->add_attribute();
  a->set_name("value_string");
  a->set_type(AttributeProto::STRING);
  a->set_s("hello");
  add_output(m, "s");
  const std::string msg = import_error(m);
  EXPECT_CONTAINS(msg, "Constant node 'str'");
  EXPECT_CONTAINS(msg, "value_string");
}

// ---------------------------------------------------------------- real files

TEST(OnnxImporterTest, RealLayerNormalization) {
  const std::string dir = ONNX_TESTDATA_DIR;
  ImportResult r = import_onnx_file(dir + "/test_layer_normalization_2d_axis0/model.onnx");
  const Graph& g = r.graph;
  EXPECT_EQ(g.opset, 17);
  ASSERT_EQ(g.num_nodes(), 1u);
  EXPECT_EQ(g.nodes()[0].op, "LayerNormalization");
  EXPECT_EQ(attr_int(g.nodes()[0], "axis", -1), 0);
  ASSERT_EQ(g.inputs.size(), 3u);  // X, W, B are all graph inputs in this test model
  for (TensorId id : g.inputs) EXPECT_EQ(g.tensor(id).shape, (Shape{3, 4}));
  EXPECT_EQ(g.outputs.size(), 3u);  // Y, Mean, InvStdDev
}

TEST(OnnxImporterTest, RealExpandedLayerNormalizationFoldsConstants) {
  const std::string dir = ONNX_TESTDATA_DIR;
  const Graph g =
      import_onnx_file(dir + "/test_layer_normalization_2d_axis0_expanded/model.onnx").graph;
  EXPECT_EQ(g.num_nodes(), 27u);  // 30 ONNX nodes, 3 of them Constant
  EXPECT_EQ(find_node(g, "Constant"), nullptr);
  const Node* cos = find_node(g, "ConstantOfShape");
  ASSERT_NE(cos, nullptr);
  EXPECT_TRUE(cos->has_attr("dtype"));
  EXPECT_EQ(tensor(g, "X").shape, (Shape{3, 4}));
}

TEST(OnnxImporterTest, RealBatchNormTrainingMode) {
  const std::string dir = ONNX_TESTDATA_DIR;
  const Graph g = import_onnx_file(dir + "/test_batchnorm_example_training_mode/model.onnx").graph;
  EXPECT_EQ(g.opset, 15);
  ASSERT_EQ(g.num_nodes(), 1u);
  EXPECT_EQ(g.inputs.size(), 5u);
  EXPECT_EQ(g.tensor(g.inputs[0]).shape, (Shape{2, 3, 4, 5}));
}

TEST(OnnxImporterTest, RealOpset11ModelIsRejectedWithTheRange) {
  const std::string path =
      std::string(ONNX_TESTDATA_DIR) + "/test_conv_with_strides_padding/model.onnx";
  try {
    import_onnx_file(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "test_conv_with_strides_padding");
    EXPECT_CONTAINS(e.what(), "opset 11");
  }
}

TEST(OnnxImporterTest, EveryBackendTestModelImportsOrFailsCleanly) {
  // Each of the ~900 backend-test models either imports (opsets 13..17) or
  // throws memplan::Error (old opsets, control flow, sequences, strings...).
  size_t imported = 0, rejected = 0;
  for (const auto& e : fs::directory_iterator(ONNX_TESTDATA_DIR)) {
    const fs::path p = e.path() / "model.onnx";
    if (!fs::exists(p)) continue;
    try {
      import_onnx_file(p.string());
      ++imported;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(imported, 400u);  // most of the suite is opset >= 13
  EXPECT_GT(rejected, 0u);
}

}  // namespace
}  // namespace memplan
