// Tests for the textual IR (compiler/ir_text.h): text -> graph -> same text,
// graph -> text -> same graph, and one test per parse error with its location.
#include "compiler/ir_text.h"

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <limits>

namespace memplan {
namespace {

std::string round_trip(const std::string& text) { return print_graph(parse_graph(text)); }

/// The message parse_graph throws, or "" when it accepts the text.
std::string parse_error(const std::string& text) {
  try {
    parse_graph(text, "t.mir");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------- text round trips

TEST(IrTextTest, HandWrittenResnetStemRoundTrips) {
  const std::string text = R"(graph @resnet18 opset 14 {
  input %input : f32[batch,3,224,224]
  input %labels : i64[batch]
  parameter %conv1.weight : f32[64,3,7,7] external "resnet18.weights.bin"
  state %bn1.running_mean : f32[2] = dense<"0000803f00000040">
  constant %"onnx::Reshape_12" : i64[2] = dense<"0100000000000000ffffffffffffffff">
  constant %mask : bool[1024,1024] = elided
  constant %ratio : f32[] = dense<"0000003f">
  %"/conv1/Conv_output_0" = Conv "/conv1/Conv" (%input, %conv1.weight, _) {dilations = [1, 1], group = 1, kernel_shape = [7, 7], pads = [3, 3, 3, 3], strides = [2, 2]} : f32[batch,64,112,112]
  %flat = Reshape "/Reshape" (%"/conv1/Conv_output_0", %"onnx::Reshape_12") : f32[?]
  %y, _ = Dropout "d0" (%flat, %ratio) {seed = 0} : f32[?], _
  %loss = SoftmaxCrossEntropyLoss "loss" (%y, %labels) {reduction = "mean"} : f32[]
  () = "com.example::Print" "print \"loss\"" (%loss)
  output %loss
  output %bn1.running_mean
}
)";
  EXPECT_EQ(round_trip(text), text);
}

TEST(IrTextTest, EveryAttributeKindRoundTrips) {
  const std::string text = R"(graph @attrs opset 18 {
  input %x : f32[2]
  %y = Custom "n" (%x) {a = -9223372036854775808, b = 0.1, c = -0.0, d = 1e-300, e = inf, f = -inf, g = nan, h = -nan, i = nan(0x7ff4000000000001), j = "tab\tnl\nq\"bs\\\x01", k = [1, -2], "key with space" = 1, l = [0.5, 1.0, 5e-324], m = ["a", ""], n = ints[], o = floats[], p = strings[], q = 1e+300, r = 100.0} : f32[2]
  output %y
}
)";
  EXPECT_EQ(round_trip(text), text);
}

TEST(IrTextTest, ShapesUnknownSymbolicAndBoundRoundTrip) {
  const std::string text = R"(graph @"my graph" opset 1 {
  input %a : f32[?]
  input %b : f16[?][2,batch]
  input %c : bf16[batch=8,"seq len",3]
  input %d : u8[]
  input %e : i8[0]
  %"out put" = Concat "c" (%a, %b, %c) : f64[?]
  output %"out put"
}
)";
  EXPECT_EQ(round_trip(text), text);
}

TEST(IrTextTest, NodesMayUseTensorsDefinedLater) {
  // Stored order is not topological: n1 reads %t before n0 (printed after) writes it.
  const std::string text = R"(graph @g opset 13 {
  input %x : f32[4]
  %y = Relu "n1" (%t) : f32[4]
  %t = Neg "n0" (%x) : f32[4]
  output %y
}
)";
  Graph g = parse_graph(text);
  EXPECT_EQ(g.node(NodeId(0)).name, "n1");
  EXPECT_EQ(print_graph(g), text);
}

TEST(IrTextTest, CommentsAndBlankLinesAreIgnored) {
  const std::string in =
      "// leading comment\n\ngraph @g opset 7 {  // header\n\n  input %x : f32[1]\n"
      "  %y = Relu \"r\" (%x) : f32[1]   // trailing\n  output %y\n}\n\n";
  EXPECT_EQ(round_trip(in),
            "graph @g opset 7 {\n  input %x : f32[1]\n  %y = Relu \"r\" (%x) : f32[1]\n"
            "  output %y\n}\n");
}

// ---------------------------------------------------------------- graph round trips

bool same_double(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

/// Variant kind and exact bits, so 1 vs 1.0, -0.0 vs 0.0 and NaN payloads count.
bool same_attr(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (auto* d = std::get_if<double>(&a)) return same_double(*d, std::get<double>(b));
  if (auto* ds = std::get_if<std::vector<double>>(&a)) {
    const auto& es = std::get<std::vector<double>>(b);
    if (ds->size() != es.size()) return false;
    for (size_t i = 0; i < ds->size(); ++i)
      if (!same_double((*ds)[i], es[i])) return false;
    return true;
  }
  return a == b;
}

std::string tensor_name(const Graph& g, TensorId t) { return t.valid() ? g.tensor(t).name : "_"; }

/// Compares two graphs by names (tensor ids may be renumbered by the printer).
void expect_same_graph(const Graph& a, const Graph& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.opset, b.opset);
  ASSERT_EQ(a.num_tensors(), b.num_tensors());
  for (const Tensor& x : a.tensors()) {
    SCOPED_TRACE("tensor " + x.name);
    auto id = b.find_tensor(x.name);
    ASSERT_TRUE(id.has_value());
    const Tensor& y = b.tensor(*id);
    EXPECT_EQ(x.dtype, y.dtype);
    EXPECT_EQ(x.shape, y.shape);
    EXPECT_EQ(x.sym, y.sym);
    EXPECT_EQ(x.shape_known, y.shape_known);
    EXPECT_EQ(x.role, y.role);
    EXPECT_EQ(x.external, y.external);
    EXPECT_EQ(x.data_elided, y.data_elided);
    ASSERT_EQ(x.data != nullptr, y.data != nullptr);
    if (x.data) {
      EXPECT_EQ(*x.data, *y.data);
    }
    EXPECT_EQ(x.producer.valid(), y.producer.valid());
  }
  ASSERT_EQ(a.num_nodes(), b.num_nodes());
  for (uint32_t i = 0; i < a.num_nodes(); ++i) {
    const Node& m = a.node(NodeId(i));
    const Node& n = b.node(NodeId(i));
    SCOPED_TRACE(node_desc(m));
    EXPECT_EQ(m.op, n.op);
    EXPECT_EQ(m.name, n.name);
    ASSERT_EQ(m.inputs.size(), n.inputs.size());
    for (size_t k = 0; k < m.inputs.size(); ++k)
      EXPECT_EQ(tensor_name(a, m.inputs[k]), tensor_name(b, n.inputs[k]));
    ASSERT_EQ(m.outputs.size(), n.outputs.size());
    for (size_t k = 0; k < m.outputs.size(); ++k)
      EXPECT_EQ(tensor_name(a, m.outputs[k]), tensor_name(b, n.outputs[k]));
    ASSERT_EQ(m.attrs.size(), n.attrs.size());
    for (const auto& [k, v] : m.attrs) {
      ASSERT_TRUE(n.has_attr(k)) << k;
      EXPECT_TRUE(same_attr(v, n.attrs.at(k))) << "attribute " << k;
    }
  }
  ASSERT_EQ(a.inputs.size(), b.inputs.size());
  for (size_t k = 0; k < a.inputs.size(); ++k)
    EXPECT_EQ(tensor_name(a, a.inputs[k]), tensor_name(b, b.inputs[k]));
  ASSERT_EQ(a.outputs.size(), b.outputs.size());
  for (size_t k = 0; k < a.outputs.size(); ++k)
    EXPECT_EQ(tensor_name(a, a.outputs[k]), tensor_name(b, b.outputs[k]));
}

Tensor make(std::string name, Role role, DType d, Shape s) {
  Tensor t;
  t.name = std::move(name);
  t.role = role;
  t.dtype = d;
  t.shape = std::move(s);
  t.shape_known = true;
  return t;
}

std::shared_ptr<const std::vector<uint8_t>> bytes(size_t n) {
  auto v = std::make_shared<std::vector<uint8_t>>(n);
  for (size_t i = 0; i < n; ++i) (*v)[i] = static_cast<uint8_t>(i * 37 + 11);
  return v;
}

/// A graph exercising every feature of the text form.
Graph feature_graph() {
  Graph g;
  g.name = "feature \"graph\"";
  g.opset = 17;
  // An activation first, so the printer must reorder declarations.
  Tensor act = make("act with space", Role::activation, DType::f32, {3});
  TensorId a = g.add_tensor(act);
  Tensor x = make("x", Role::input, DType::f32, {-1, 3});
  x.sym = {"batch", ""};
  TensorId xi = g.add_tensor(x);
  Tensor u = make("unknown", Role::input, DType::i64, {});
  u.shape_known = false;
  TensorId ui = g.add_tensor(u);
  g.inputs = {ui, xi};  // not tensor-id order
  Tensor w = make("w\"eight\\", Role::parameter, DType::f32, {3, 3});
  w.external = "weights.bin";
  TensorId wi = g.add_tensor(w);
  Tensor c = make("small", Role::constant, DType::i64, {2});
  c.data = bytes(16);
  TensorId ci = g.add_tensor(c);
  Tensor big = make("big", Role::constant, DType::u8, {5000});
  big.data = bytes(5000);
  TensorId bi = g.add_tensor(big);
  Tensor st = make("state.0", Role::state, DType::bf16, {0});
  st.data = bytes(0);
  g.add_tensor(st);
  Tensor el = make("elided", Role::constant, DType::boolean, {8});
  el.data_elided = true;
  g.add_tensor(el);
  Tensor ext_inline = make("both", Role::parameter, DType::u8, {2});
  ext_inline.external = "w2.bin";
  ext_inline.data = bytes(2);
  g.add_tensor(ext_inline);

  Tensor y = make("y", Role::activation, DType::f32, {4, 3});
  y.sym = {"batch", ""};
  TensorId yi = g.add_tensor(y);
  Tensor mask = make("mask", Role::activation, DType::boolean, {});
  mask.shape_known = false;
  TensorId mi = g.add_tensor(mask);

  Node n0{"Custom", "n0 \"quoted\"", {xi, TensorId(), wi, ci, bi}, {a, TensorId(), mi}, {}};
  n0.attrs["i"] = int64_t{-7};
  n0.attrs["one"] = 1.0;
  n0.attrs["negzero"] = -0.0;
  n0.attrs["tiny"] = 1e-300;
  n0.attrs["denorm"] = std::numeric_limits<double>::denorm_min();
  n0.attrs["inf"] = std::numeric_limits<double>::infinity();
  n0.attrs["ninf"] = -std::numeric_limits<double>::infinity();
  n0.attrs["nan"] = std::numeric_limits<double>::quiet_NaN();
  n0.attrs["nnan"] = -std::numeric_limits<double>::quiet_NaN();
  n0.attrs["payload"] = std::bit_cast<double>(uint64_t{0xfff0000000000abcULL});
  n0.attrs["third"] = 1.0 / 3.0;
  n0.attrs["s"] = std::string("line\nbreak \"q\" \x7f \xc3\xa9");
  n0.attrs["ints"] = std::vector<int64_t>{1, INT64_MIN, INT64_MAX};
  n0.attrs["floats"] = std::vector<double>{0.0, -0.0, 2.5, 1e300, -1e-300};
  n0.attrs["strings"] = std::vector<std::string>{"a", "", "b c"};
  n0.attrs["no ints"] = std::vector<int64_t>{};
  n0.attrs["no floats"] = std::vector<double>{};
  n0.attrs["no strings"] = std::vector<std::string>{};
  g.add_node(n0);
  g.add_node({"Gemm", "n1", {a, xi}, {yi}, {{"alpha", 1.0}, {"transB", int64_t{1}}}});
  g.add_node({"Sink", "n2", {yi}, {}, {}});
  g.outputs = {yi, a, yi};
  verify(g, {.require_shapes = false});
  return g;
}

TEST(IrTextTest, ProgrammaticGraphRoundTrips) {
  Graph g = feature_graph();
  PrintOptions all_inline{.max_inline_bytes = 1 << 20};
  std::string text = print_graph(g, all_inline);
  Graph back = parse_graph(text);
  expect_same_graph(g, back);
  EXPECT_EQ(print_graph(back, all_inline), text);
}

TEST(IrTextTest, LargeDataIsElided) {
  Graph g = feature_graph();
  std::string text = print_graph(g);  // 4096-byte default limit
  EXPECT_NE(text.find("  constant %big : u8[5000] = elided\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  constant %elided : bool[8] = elided\n"), std::string::npos) << text;
  Graph back = parse_graph(text);
  const Tensor& big = back.tensor(*back.find_tensor("big"));
  EXPECT_EQ(big.data, nullptr);
  EXPECT_TRUE(big.data_elided);
  EXPECT_EQ(print_graph(back), text);
}

TEST(IrTextTest, PrinterOrdersDeclarationsAndQuotesNames) {
  std::string text = print_graph(feature_graph(), {.max_inline_bytes = 4});
  EXPECT_EQ(text.substr(0, text.find("  constant %small")),
            "graph @\"feature \\\"graph\\\"\" opset 17 {\n"
            "  input %unknown : i64[?]\n"
            "  input %x : f32[batch,3]\n"
            "  parameter %\"w\\\"eight\\\\\" : f32[3,3] external \"weights.bin\"\n");
  EXPECT_NE(text.find("  %\"act with space\", _, %mask = Custom \"n0 \\\"quoted\\\"\" "
                      "(%x, _, %\"w\\\"eight\\\\\", %small, %big) {denorm = 5e-324, "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(" : f32[3], _, bool[?]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  () = Sink \"n2\" (%y)\n"), std::string::npos) << text;
}

TEST(IrTextTest, InputRoleTensorOutsideGraphInputsKeepsTextStable) {
  // verify() allows a role-input tensor that is not in Graph::inputs; the text
  // has no way to say so, so it parses back as a graph input, but the printed
  // text must still be a fixed point.
  Graph g;
  g.name = "g";
  TensorId a = g.add_tensor(make("a", Role::input, DType::f32, {1}));
  g.add_tensor(make("p", Role::parameter, DType::f32, {1}));
  g.add_tensor(make("b", Role::input, DType::f32, {1}));
  g.inputs = {a};
  verify(g, {.require_shapes = false});
  std::string text = print_graph(g);
  EXPECT_EQ(text,
            "graph @g opset 0 {\n  input %a : f32[1]\n  input %b : f32[1]\n"
            "  parameter %p : f32[1]\n}\n");
  Graph back = parse_graph(text);
  EXPECT_EQ(back.inputs.size(), 2u);
  EXPECT_EQ(print_graph(back), text);
}

TEST(IrTextTest, ExactDoublesSurviveText) {
  Graph g;
  g.name = "d";
  TensorId x = g.add_tensor(make("x", Role::input, DType::f32, {1}));
  g.inputs = {x};
  TensorId y = g.add_tensor(make("y", Role::activation, DType::f32, {1}));
  std::vector<double> vals;
  uint64_t bits = 0x0123456789abcdefULL;
  for (int i = 0; i < 2000; ++i) {  // pseudo-random finite bit patterns
    bits = bits * 6364136223846793005ULL + 1442695040888963407ULL;
    double d = std::bit_cast<double>(bits);
    if (std::isfinite(d)) vals.push_back(d);
  }
  g.add_node({"Const", "c", {x}, {y}, {{"v", vals}}});
  Graph back = parse_graph(print_graph(g));
  const auto& got = std::get<std::vector<double>>(back.node(NodeId(0)).attrs.at("v"));
  ASSERT_EQ(got.size(), vals.size());
  for (size_t i = 0; i < vals.size(); ++i) EXPECT_TRUE(same_double(got[i], vals[i])) << vals[i];
}

TEST(IrTextTest, ThousandsOfNodesRoundTripInLinearTime) {
  // 50k nodes, 100k tensors: a quadratic printer or parser would take minutes.
  Graph g;
  g.name = "chain";
  g.opset = 17;
  TensorId prev = g.add_tensor(make("x", Role::input, DType::f32, {8, 8}));
  g.inputs = {prev};
  for (int i = 0; i < 50000; ++i) {
    Tensor w = make("w" + std::to_string(i), Role::parameter, DType::f32, {8, 8});
    w.external = "w.bin";
    TensorId wi = g.add_tensor(w);
    TensorId y =
        g.add_tensor(make("/l" + std::to_string(i) + "/out", Role::activation, DType::f32, {8, 8}));
    g.add_node({"MatMul", "/l" + std::to_string(i), {prev, wi}, {y}, {{"alpha", 0.5}}});
    prev = y;
  }
  g.outputs = {prev};
  auto t0 = std::chrono::steady_clock::now();
  std::string text = print_graph(g);
  Graph back = parse_graph(text);
  std::string again = print_graph(back);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(again, text);
  EXPECT_EQ(back.num_nodes(), 50000u);
  RecordProperty("seconds", std::to_string(s));
}

TEST(IrTextTest, MutatedTextIsRejectedCleanlyOrReachesAFixedPoint) {
  // Random single-byte edits of a printed graph: parsing must either throw
  // Error or give a graph whose printed form is a fixed point of parse+print.
  const std::string base = print_graph(feature_graph(), {.max_inline_bytes = 64});
  const std::string alphabet = "%_()[]{}<>=,:?\"\\\n -.0129aefnx@";
  uint64_t r = 42;
  auto next = [&](uint64_t n) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    return (r >> 33) % n;
  };
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string m = base;
    for (int edits = 1 + static_cast<int>(next(3)); edits > 0; --edits) {
      size_t at = next(m.size());
      char c = alphabet[next(alphabet.size())];
      switch (next(3)) {
        case 0:
          m[at] = c;
          break;
        case 1:
          m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          m.erase(at, 1);
      }
    }
    std::string once;
    try {
      once = print_graph(parse_graph(m));
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("<input>:", 0), 0u) << e.what();
      continue;
    }
    ++accepted;
    EXPECT_EQ(print_graph(parse_graph(once)), once) << m;
  }
  EXPECT_GT(accepted, 0);
}

// ---------------------------------------------------------------- parse errors

TEST(IrTextErrorTest, UnknownDtype) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f33[2]\n}\n"),
            "t.mir:2:14: unknown dtype 'f33'");
}

TEST(IrTextErrorTest, UnknownRole) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  weight %x : f32[2]\n}\n"),
            "t.mir:2:3: unknown role 'weight' (expected input, parameter, state, constant, "
            "activation or output)");
}

TEST(IrTextErrorTest, UndefinedTensorReportsFirstUse) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Add \"a\" (%x, %nope) : f32[2]\n  output %nope\n}\n"),
            "t.mir:3:21: undefined tensor 'nope'");
}

TEST(IrTextErrorTest, TensorDefinedTwice) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %x = Relu \"r\" (%x) : f32[2]\n}\n"),
            "t.mir:3:3: tensor 'x' defined twice (first at 2:9)");
}

TEST(IrTextErrorTest, BadHexDigit) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  constant %c : u8[2] = dense<\"0g01\">\n}\n"),
            "t.mir:2:33: bad hex digit 'g' in dense data");
}

TEST(IrTextErrorTest, OddHexDigits) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  constant %c : u8[2] = dense<\"010\">\n}\n"),
            "t.mir:2:35: odd number of hex digits in dense data");
}

TEST(IrTextErrorTest, DataLengthMustMatchShape) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  constant %c : f32[2] = dense<\"00000000\">\n}\n"),
            "t.mir:2:26: data has 4 bytes but f32[2] needs 8");
}

TEST(IrTextErrorTest, UnterminatedString) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %\"x : f32[2]\n}\n"),
            "t.mir:2:10: unterminated string");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  parameter %w : f32[2] external \"w.bin\n}\n"),
            "t.mir:2:34: unterminated string");
}

TEST(IrTextErrorTest, GarbageAfterLine) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2] ;\n}\n"),
            "t.mir:2:21: unexpected ';' at end of line");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n  output %x %x\n}\n"),
            "t.mir:3:13: unexpected '%x' at end of line");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n}\ngraph\n"),
            "t.mir:3:1: unexpected 'graph' after the end of the graph");
}

TEST(IrTextErrorTest, MissingClosingBrace) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"),
            "t.mir:3:1: missing '}' closing the graph opened at 1:1");
}

TEST(IrTextErrorTest, SyntaxErrorsAreLocated) {
  EXPECT_EQ(parse_error(""), "t.mir:1:1: expected 'graph', found end of input");
  EXPECT_EQ(parse_error("graph @g opset x {\n}\n"),
            "t.mir:1:16: expected an opset number, found 'x'");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2\n}\n"),
            "t.mir:2:19: expected ']' to close the shape, found end of line");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Relu \"r\" (%x) {a = [1, 2.0]} : f32[2]\n}\n"),
            "t.mir:3:31: list mixes integers with other values");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Relu \"r\" (%x) {a = []} : f32[2]\n}\n"),
            "t.mir:3:27: an empty list needs its kind: ints[], floats[] or strings[]");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Relu \"r\" (%x) {a = 99999999999999999999} : f32[2]\n}\n"),
            "t.mir:3:27: integer '99999999999999999999' out of range");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Relu \"r\" (%x) {a = 1, a = 2} : f32[2]\n}\n"),
            "t.mir:3:30: attribute given twice");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Relu \"r\\q\" (%x) : f32[2]\n}\n"),
            "t.mir:3:15: unknown escape in string");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y, %z = Split \"s\" (%x) : f32[1]\n}\n"),
            "t.mir:3:35: expected ',' between output types, found end of line");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Relu \"r\" (%x) : _\n}\n"),
            "t.mir:3:24: output 'y' needs a type, not '_'");
}

TEST(IrTextErrorTest, VerifyRejectsStructurallyBadGraphs) {
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  input %x : f32[2]\n"
                        "  %y = Relu \"r\" (%x) : f32[2]\n  %z = Relu \"r\" (%y) : f32[2]\n}\n"),
            "t.mir: duplicate node name 'r'");
  EXPECT_EQ(parse_error("graph @g opset 1 {\n  activation %x : f32[2]\n}\n"),
            "t.mir: tensor 'x' is read but never written: no node produces it and it is not a "
            "graph input or initializer");
}

}  // namespace
}  // namespace memplan
