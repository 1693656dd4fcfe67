// Shape inference checked against ONNX's own node tests (Debian's
// libonnx-testdata, ONNX_TESTDATA_DIR/test_*/).
//
// For every node test case whose ops memplan supports (registered with
// find_op, or Constant, which the importer turns into a constant tensor):
//  1. import model.onnx with memplan's importer; a model that declares a
//     default-domain opset below 13 is rewritten to opset 13 first, but only
//     when libonnx's schema registry says every op in it has the same schema
//     at both versions (otherwise the case is excluded: "op changed");
//  2. give every graph input the static shape of test_data_set_0/input_N.pb;
//     integer inputs become constants carrying that data, since they are the
//     shapes, axes, pads, repeats... the op needs at compile time;
//  3. run infer_shapes (folding on) and compare every graph output's dtype
//     and shape with test_data_set_0/output_N.pb.
// Expected: zero mismatches. Cases memplan cannot express are listed in
// excluded() with the reason and the error they fail with; a listed case that
// passes (or fails differently) fails the test, so the list cannot go stale.
#include <gtest/gtest.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/dtype_codec.h"
#include "compiler/op_registry.h"
#include "passes/infer_shapes.h"
#include "python-free-frontends/onnx_importer.h"

namespace memplan {
namespace {

namespace fs = std::filesystem;

/// Why a case is excluded, and a fragment of the error it must still fail
/// with (so an entry goes stale loudly: the test fails once the case passes or
/// fails for another reason).
struct Exclusion {
  const char* reason;
  const char* error;
};

/// Cases with supported ops that memplan cannot express.
const std::map<std::string, Exclusion>& excluded() {
  static const Exclusion kString = {"importer rejects STRING tensors (no string dtype)",
                                    "element type STRING"};
  static const Exclusion kNarrowInt = {
      "importer rejects INT16/UINT16/UINT32/UINT64 (no such dtype)", "which memplan does not"};
  static const Exclusion kNotTensor = {"importer rejects sequence/optional inputs (tensors only)",
                                       "is not a tensor"};
  // Float inputs stay runtime inputs here, but Range's output length is their
  // value, which memplan needs at compile time (the integer variant passes).
  static const Exclusion kRangeFloat = {"Range over runtime float inputs",
                                        "not compile-time constants"};
  static const std::map<std::string, Exclusion> m = {
      {"test_cast_FLOAT_to_STRING", kString},
      {"test_cast_STRING_to_FLOAT", kString},
      {"test_castlike_FLOAT_to_STRING", kString},
      {"test_castlike_FLOAT_to_STRING_expanded", kString},
      {"test_castlike_STRING_to_FLOAT", kString},
      {"test_castlike_STRING_to_FLOAT_expanded", kString},
      {"test_max_int16", kNarrowInt},
      {"test_max_uint16", kNarrowInt},
      {"test_max_uint32", kNarrowInt},
      {"test_max_uint64", kNarrowInt},
      {"test_min_int16", kNarrowInt},
      {"test_min_uint16", kNarrowInt},
      {"test_min_uint32", kNarrowInt},
      {"test_min_uint64", kNarrowInt},
      {"test_mod_mixed_sign_int16", kNarrowInt},
      {"test_mod_uint16", kNarrowInt},
      {"test_mod_uint32", kNarrowInt},
      {"test_mod_uint64", kNarrowInt},
      {"test_pow_types_float32_uint32", kNarrowInt},
      {"test_pow_types_float32_uint64", kNarrowInt},
      {"test_identity_opt", kNotTensor},
      {"test_identity_sequence", kNotTensor},
      {"test_range_float_type_positive_delta", kRangeFloat},
  };
  return m;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

template <class Proto>
Proto read_proto(const fs::path& p) {
  Proto m;
  if (!m.ParseFromString(read_file(p))) throw Error("cannot parse " + p.string());
  return m;
}

bool default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

/// True if memplan handles every node: a registered op, or Constant (which
/// the importer turns into a constant tensor).
bool ops_supported(const onnx::GraphProto& g) {
  return std::all_of(g.node().begin(), g.node().end(), [](const onnx::NodeProto& n) {
    return default_domain(n.domain()) && (n.op_type() == "Constant" || find_op(n.op_type()));
  });
}

onnx::OperatorSetIdProto* default_opset(onnx::ModelProto& m) {
  for (auto& o : *m.mutable_opset_import())
    if (default_domain(o.domain())) return &o;
  return nullptr;
}

/// True if every node's op has the same schema at `opset` and at kMinOpset.
bool same_schemas_as_min(const onnx::GraphProto& g, int opset) {
  return std::all_of(g.node().begin(), g.node().end(), [&](const onnx::NodeProto& n) {
    const auto* old_s = onnx::OpSchemaRegistry::Schema(n.op_type(), opset, "");
    const auto* new_s =
        onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(kMinOpset), "");
    return old_s && new_s && old_s->since_version() == new_s->since_version();
  });
}

/// memplan dtype of a TensorProto data_type. ONNX's test generator stores
/// bfloat16 data as UINT16 (numpy has no bfloat16), and memplan has no uint16,
/// so UINT16 reads as bf16.
std::optional<DType> dtype_of(int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::UINT16: return DType::bf16;
    case onnx::TensorProto::FLOAT: return DType::f32;
    case onnx::TensorProto::FLOAT16: return DType::f16;
    case onnx::TensorProto::BFLOAT16: return DType::bf16;
    case onnx::TensorProto::DOUBLE: return DType::f64;
    case onnx::TensorProto::INT64: return DType::i64;
    case onnx::TensorProto::INT32: return DType::i32;
    case onnx::TensorProto::INT8: return DType::i8;
    case onnx::TensorProto::UINT8: return DType::u8;
    case onnx::TensorProto::BOOL: return DType::boolean;
    default: return std::nullopt;
  }
}

/// Element bytes of an integer TensorProto, little-endian in dtype d.
std::shared_ptr<const std::vector<uint8_t>> int_data(const onnx::TensorProto& t, DType d) {
  if (t.has_raw_data())
    return std::make_shared<std::vector<uint8_t>>(t.raw_data().begin(), t.raw_data().end());
  std::vector<uint8_t> out;
  if (d == DType::i64)
    for (int64_t v : t.int64_data()) encode_int(d, v, out);
  else
    for (int32_t v : t.int32_data()) encode_int(d, v, out);
  return std::make_shared<std::vector<uint8_t>>(std::move(out));
}

/// "f32[2,3]" for a TensorProto, "?" parts for what memplan cannot name.
std::string type_str(std::optional<DType> d, const Shape& s) {
  return (d ? std::string(dtype_name(*d)) : std::string("?")) + shape_str(s);
}

Shape dims_of(const onnx::TensorProto& t) { return Shape(t.dims().begin(), t.dims().end()); }

/// Binds the graph inputs to test_data_set_0's inputs (integer ones become
/// constants with data); returns a problem description or "".
std::string bind_inputs(Graph& g, const fs::path& data_dir) {
  std::vector<TensorId> still_inputs;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const fs::path p = data_dir / ("input_" + std::to_string(i) + ".pb");
    if (!fs::exists(p)) return "no " + p.filename().string();
    const auto pb = read_proto<onnx::TensorProto>(p);
    Tensor& t = g.tensor(g.inputs[i]);
    if (!pb.name().empty() && pb.name() != t.name)
      return p.filename().string() + " is '" + pb.name() + "', graph input is '" + t.name + "'";
    const auto d = dtype_of(pb.data_type());
    if (d != t.dtype) return "input '" + t.name + "' dtype differs from " + p.filename().string();
    t.shape = dims_of(pb);
    t.sym.clear();
    t.shape_known = true;
    if (!is_integer(t.dtype)) {
      still_inputs.push_back(g.inputs[i]);
      continue;
    }
    t.role = Role::constant;
    t.data = int_data(pb, t.dtype);
  }
  g.inputs = still_inputs;
  return "";
}

/// Imports, binds, infers and compares one case; returns "" or the problem.
std::string check_case(const std::string& model_bytes, const fs::path& dir) {
  try {
    Graph g = import_onnx_bytes(model_bytes, (dir / "model.onnx").string()).graph;
    const fs::path data = dir / "test_data_set_0";
    if (std::string p = bind_inputs(g, data); !p.empty()) return p;
    infer_shapes(g);
    std::string problems;
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const fs::path p = data / ("output_" + std::to_string(i) + ".pb");
      if (!fs::exists(p)) return "no " + p.filename().string();
      const auto pb = read_proto<onnx::TensorProto>(p);
      const Tensor& t = g.tensor(g.outputs[i]);
      const std::string want = type_str(dtype_of(pb.data_type()), dims_of(pb));
      const std::string got = type_str(t.dtype, t.shape);
      if (want != got)
        problems += " output " + std::to_string(i) + " '" + t.name + "': expected " + want +
                    ", inferred " + got + ";";
    }
    return problems;
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST(OnnxTestdata, ShapeInferenceMatchesOnnxNodeTests) {
  const fs::path root = ONNX_TESTDATA_DIR;
  ASSERT_TRUE(fs::is_directory(root)) << root << " is missing: install libonnx-testdata";
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());

  int checked = 0, listed = 0;
  std::map<int64_t, std::vector<std::string>> op_changed;  // by declared opset
  std::map<std::string, int> listed_by_reason;
  for (const fs::path& dir : dirs) {
    const std::string name = dir.filename().string();
    auto model = read_proto<onnx::ModelProto>(dir / "model.onnx");
    if (!ops_supported(model.graph())) continue;
    onnx::OperatorSetIdProto* opset = default_opset(model);
    ASSERT_NE(opset, nullptr) << name;
    if (opset->version() < kMinOpset) {
      if (!same_schemas_as_min(model.graph(), static_cast<int>(opset->version()))) {
        op_changed[opset->version()].push_back(name);
        continue;
      }
      opset->set_version(kMinOpset);
    }
    const std::string problem = check_case(model.SerializeAsString(), dir);
    auto ex = excluded().find(name);
    if (ex != excluded().end()) {
      EXPECT_NE(problem.find(ex->second.error), std::string::npos)
          << name << " is excluded (" << ex->second.reason << ") but now gives: '" << problem
          << "'";
      ++listed;
      ++listed_by_reason[ex->second.reason];
      continue;
    }
    EXPECT_EQ(problem, "") << name;
    ++checked;
  }
  int changed = 0;
  for (const auto& [v, names] : op_changed) changed += static_cast<int>(names.size());
  const int total = checked + listed + changed;
  std::cout << "[ onnx testdata ] " << checked << " cases checked, " << listed + changed
            << " excluded (" << changed << " op changed since an older opset, " << listed
            << " listed), " << total << " total for supported ops\n";
  for (const auto& [v, names] : op_changed) {
    std::cout << "    " << names.size() << " op changed since opset " << v << ":";
    for (const std::string& n : names) std::cout << " " << n;
    std::cout << "\n";
  }
  for (const auto& [r, k] : listed_by_reason) std::cout << "    " << k << " " << r << "\n";
  ::testing::Test::RecordProperty("cases_checked", checked);
  ::testing::Test::RecordProperty("cases_excluded", listed + changed);
  ::testing::Test::RecordProperty("cases_total", total);
  EXPECT_GE(checked, 400) << "too few cases checked: the test would pass vacuously";
}

}  // namespace
}  // namespace memplan
