// Helpers shared by the tests over ONNX's own node tests (Debian's
// libonnx-testdata, ONNX_TESTDATA_DIR/test_*/): onnx_testdata_test.cc checks
// shape inference against them, onnx_testdata_run_test.cc runs them.
//
// Case selection (the same for both tests), in testdata_cases():
//  - every node of model.onnx is a registered op (find_op) or Constant (which
//    the importer turns into a constant tensor);
//  - a model that declares a default-domain opset below 13 (kMinOpset) is
//    rewritten to opset 13, but only when libonnx's schema registry says every
//    op in it has the same schema at both versions; otherwise the case is
//    returned with changed_from set (the tests report it as excluded, "op
//    changed").
// Binding (bind_inputs): every graph input gets the static shape of
// test_data_set_0/input_N.pb; integer inputs become constants carrying that
// data, since they are the shapes, axes, pads, repeats... the op needs at
// compile time. Float and bool inputs stay runtime inputs.
#pragma once

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/dtype_codec.h"
#include "compiler/op_registry.h"
#include "python-free-frontends/onnx_importer.h"

namespace memplan::testdata {

namespace fs = std::filesystem;

/// Why a case is excluded, and a fragment of the error it must still fail
/// with (so an entry goes stale loudly: the test fails once the case passes or
/// fails for another reason).
struct Exclusion {
  const char* reason;
  const char* error;
};

/// Cases with supported ops that memplan cannot express: they fail at import
/// or shape inference, so both tests exclude them.
inline const std::map<std::string, Exclusion>& import_exclusions() {
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

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

template <class Proto> Proto read_proto(const fs::path& p) {
  Proto m;
  if (!m.ParseFromString(read_file(p))) throw Error("cannot parse " + p.string());
  return m;
}

inline bool default_domain(const std::string& d) {
  return d.empty() || d == "ai.onnx";
}

/// True if memplan handles every node: a registered op, or Constant (which
/// the importer turns into a constant tensor).
inline bool ops_supported(const onnx::GraphProto& g) {
  return std::all_of(g.node().begin(), g.node().end(), [](const onnx::NodeProto& n) {
    return default_domain(n.domain()) && (n.op_type() == "Constant" || find_op(n.op_type()));
  });
}

inline onnx::OperatorSetIdProto* default_opset(onnx::ModelProto& m) {
  for (auto& o : *m.mutable_opset_import())
    if (default_domain(o.domain())) return &o;
  return nullptr;
}

/// True if every node's op has the same schema at `opset` and at kMinOpset.
inline bool same_schemas_as_min(const onnx::GraphProto& g, int opset) {
  return std::all_of(g.node().begin(), g.node().end(), [&](const onnx::NodeProto& n) {
    const auto* old_s = onnx::OpSchemaRegistry::Schema(n.op_type(), opset, "");
    const auto* new_s =
        onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(kMinOpset), "");
    return old_s && new_s && old_s->since_version() == new_s->since_version();
  });
}

/// One selected case: its directory and model bytes (opset rewritten to
/// kMinOpset where allowed). changed_from > 0: the model's opset, whose
/// schema for some op differs from kMinOpset's (not runnable here).
struct TestdataCase {
  std::string name;
  fs::path dir;
  std::string model_bytes;
  int64_t changed_from = 0;
};

/// Every case whose ops memplan supports, sorted by name. Throws if a model
/// has no default-domain opset.
inline std::vector<TestdataCase> testdata_cases() {
  const fs::path root = ONNX_TESTDATA_DIR;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<TestdataCase> cases;
  for (const fs::path& dir : dirs) {
    TestdataCase c{dir.filename().string(), dir, "", 0};
    auto model = read_proto<onnx::ModelProto>(dir / "model.onnx");
    if (!ops_supported(model.graph())) continue;
    onnx::OperatorSetIdProto* opset = default_opset(model);
    if (!opset) throw Error(c.name + ": no default-domain opset");
    if (opset->version() < kMinOpset) {
      if (!same_schemas_as_min(model.graph(), static_cast<int>(opset->version())))
        c.changed_from = opset->version();
      else
        opset->set_version(kMinOpset);
    }
    if (!c.changed_from) c.model_bytes = model.SerializeAsString();
    cases.push_back(std::move(c));
  }
  return cases;
}

/// memplan dtype of a TensorProto data_type. ONNX's test generator stores
/// bfloat16 data as UINT16 (numpy has no bfloat16), and memplan has no uint16,
/// so UINT16 reads as bf16.
inline std::optional<DType> dtype_of(int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::UINT16:
      return DType::bf16;
    case onnx::TensorProto::FLOAT:
      return DType::f32;
    case onnx::TensorProto::FLOAT16:
      return DType::f16;
    case onnx::TensorProto::BFLOAT16:
      return DType::bf16;
    case onnx::TensorProto::DOUBLE:
      return DType::f64;
    case onnx::TensorProto::INT64:
      return DType::i64;
    case onnx::TensorProto::INT32:
      return DType::i32;
    case onnx::TensorProto::INT8:
      return DType::i8;
    case onnx::TensorProto::UINT8:
      return DType::u8;
    case onnx::TensorProto::BOOL:
      return DType::boolean;
    default:
      return std::nullopt;
  }
}

/// Little-endian element bytes of a TensorProto in dtype d (= dtype_of its
/// data_type): raw_data as is, else the typed field (float_data, double_data,
/// int64_data, or int32_data, which ONNX uses for every type of 32 bits or
/// less, f16/bf16 as their bit patterns).
inline std::vector<uint8_t> tensor_bytes(const onnx::TensorProto& t, DType d) {
  if (t.has_raw_data()) return {t.raw_data().begin(), t.raw_data().end()};
  std::vector<uint8_t> out;
  auto append = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  if (d == DType::f32)
    for (float v : t.float_data())
      append(&v, 4);
  else if (d == DType::f64)
    for (double v : t.double_data())
      append(&v, 8);
  else if (d == DType::i64)
    for (int64_t v : t.int64_data())
      append(&v, 8);
  else
    for (int32_t v : t.int32_data())
      append(&v, dtype_size(d)); // low bytes (little-endian)
  return out;
}

/// "f32[2,3]" for a TensorProto, "?" parts for what memplan cannot name.
inline std::string type_str(std::optional<DType> d, const Shape& s) {
  return (d ? std::string(dtype_name(*d)) : std::string("?")) + shape_str(s);
}

inline Shape dims_of(const onnx::TensorProto& t) {
  return Shape(t.dims().begin(), t.dims().end());
}

/// Binds the graph inputs to the inputs in data_dir (integer ones become
/// constants with data; the others stay graph inputs, and their bytes go to
/// *runtime_inputs by tensor name when given); returns a problem or "".
inline std::string
bind_inputs(Graph& g, const fs::path& data_dir,
            std::map<std::string, std::vector<uint8_t>>* runtime_inputs = nullptr) {
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
    std::vector<uint8_t> bytes = tensor_bytes(pb, t.dtype);
    if (!is_integer(t.dtype)) {
      still_inputs.push_back(g.inputs[i]);
      if (runtime_inputs) (*runtime_inputs)[t.name] = std::move(bytes);
      continue;
    }
    t.role = Role::constant;
    t.data = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  }
  g.inputs = still_inputs;
  return "";
}

} // namespace memplan::testdata
