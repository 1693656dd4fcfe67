// ONNX ModelProto -> memplan Graph. See onnx_importer.h for the steps.
#include "python-free-frontends/onnx_importer.h"

#include <google/protobuf/unknown_field_set.h>
#include <onnx/onnx_pb.h>

#include <bit>
#include <climits>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "python-free-frontends/onnx_tensor.h"

namespace memplan {

namespace {

using namespace onnx_detail;
namespace fs = std::filesystem;
using onnx::AttributeProto;
using onnx::FunctionProto;
using onnx::NodeProto;

// Fields newer than the system libonnx (1.12) schema land in the unknown
// field set; we read the few we need by number.
constexpr int kNodeOverloadField = 8;           // NodeProto.overload (IR 10)
constexpr int kFunctionAttrProtoField = 11;     // FunctionProto.attribute_proto (IR 9)
constexpr int kFunctionOverloadField = 13;      // FunctionProto.overload (IR 10)
constexpr size_t kMaxInlinedNodes = 2'000'000;  // guards against exponential inlining
constexpr size_t kMaxFunctionNesting = 64;      // guards the native stack

/// Length-delimited unknown fields with the given number, in order.
std::vector<std::string> unknown_bytes_fields(const google::protobuf::UnknownFieldSet& u,
                                              int number) {
  std::vector<std::string> r;
  for (int i = 0; i < u.field_count(); ++i) {
    const auto& f = u.field(i);
    if (f.number() == number && f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED)
      r.push_back(f.length_delimited());
  }
  return r;
}

std::string last_or_empty(const std::vector<std::string>& v) { return v.empty() ? "" : v.back(); }

bool is_default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

std::string function_key(const std::string& domain, const std::string& name,
                         const std::string& overload) {
  return domain + '\0' + name + '\0' + overload;
}

std::string function_desc(const FunctionProto& f) {
  return "function '" + (f.domain().empty() ? "" : f.domain() + ".") + f.name() + "'";
}

/// A node after function inlining: names are final (prefixed), attributes
/// have their `ref_attr_name` references resolved.
struct FlatNode {
  std::string op, domain, name;
  std::vector<std::string> inputs, outputs;  // "" = omitted
  std::vector<AttributeProto> attrs;
};

/// Name mapping inside one inlined function body.
struct Scope {
  std::string prefix;                                   // "" for the main graph (identity mapping)
  std::unordered_map<std::string, std::string> actual;  // formal input/output -> caller's name
  const std::vector<AttributeProto>* caller_attrs = nullptr;
  const std::vector<AttributeProto>* defaults = nullptr;  // function's attribute_proto

  std::string map(const std::string& s) const {
    if (s.empty() || prefix.empty()) return s;
    auto it = actual.find(s);
    return it != actual.end() ? it->second : prefix + s;
  }
};

const AttributeProto* find_attr(const std::vector<AttributeProto>* v, const std::string& name) {
  if (!v) return nullptr;
  for (const auto& a : *v)
    if (a.name() == name) return &a;
  return nullptr;
}

class Importer {
 public:
  Importer(const onnx::ModelProto& m, std::string file, fs::path dir)
      : m_(m), file_(std::move(file)), dir_(std::move(dir)) {}

  ImportResult run();

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw Error(file_ + ": " + msg); }
  std::string where() const { return file_ + ": "; }

  int64_t check_model_and_get_opset() const;
  void index_functions();
  void flatten(const google::protobuf::RepeatedPtrField<NodeProto>& nodes, const Scope& scope,
               std::vector<std::string>& call_stack);
  void inline_call(FlatNode&& site, const FunctionProto& fn, std::vector<std::string>& call_stack);

  void add_initializers();
  void add_inputs();
  void add_constant(const FlatNode& n);
  void add_outputs_of(const FlatNode& n);
  Attrs convert_attrs(const FlatNode& n, const std::string& node_what) const;
  void add_nodes();
  void mark_state();
  void add_graph_outputs();
  void claim_name(const std::string& name, const std::string& by);

  const onnx::ModelProto& m_;
  std::string file_;
  fs::path dir_;
  ImportResult r_;
  Graph& g_ = r_.graph;

  std::unordered_map<std::string, const FunctionProto*> functions_;
  std::unordered_map<const FunctionProto*, std::vector<AttributeProto>> fn_defaults_;
  std::unordered_set<std::string> used_prefixes_;
  std::vector<FlatNode> flat_;
  std::unordered_map<std::string, int> declared_type_;       // value_info / output elem types
  std::unordered_map<std::string, std::string> written_by_;  // tensor -> what defines it
  std::set<std::string> missing_external_;
};

int64_t Importer::check_model_and_get_opset() const {
  std::vector<std::string> missing;
  if (m_.ir_version() <= 0) missing.push_back("no ir_version");
  if (!m_.has_graph()) missing.push_back("no graph");
  std::optional<int64_t> opset;
  for (const auto& o : m_.opset_import()) {
    if (!is_default_domain(o.domain())) continue;
    if (opset && *opset != o.version())
      fail("opset_import lists the default ONNX domain twice (versions " + std::to_string(*opset) +
           " and " + std::to_string(o.version()) + "); re-export the model");
    opset = o.version();
  }
  if (!opset && missing.empty()) {
    std::string others;
    for (const auto& o : m_.opset_import())
      others += (others.empty() ? "" : ", ") + o.domain() + " v" + std::to_string(o.version());
    fail("imports no opset of the default ONNX domain (opset_import lists only: " +
         (others.empty() ? std::string("nothing") : others) +
         "); memplan needs default-domain "
         "opset " +
         std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
         ": re-export the model with a standard opset");
  }
  if (!opset) missing.push_back("no opset_import for the default ONNX domain");
  if (!missing.empty()) {
    std::string what;
    for (const auto& s : missing) what += (what.empty() ? "" : ", ") + s;
    fail("parses as protobuf but is not an ONNX model (" + what +
         "); pass an .onnx model file (a serialized ModelProto)");
  }
  if (*opset < kMinOpset || *opset > kMaxOpset)
    fail("uses ONNX opset " + std::to_string(*opset) + "; memplan supports opsets " +
         std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
         ": convert the model (e.g. onnx.version_converter.convert_version(model, 17))");
  return *opset;
}

void Importer::index_functions() {
  for (const FunctionProto& f : m_.functions()) {
    if (f.name().empty()) fail("a local function has no name; re-export the model");
    const std::string overload =
        last_or_empty(unknown_bytes_fields(f.unknown_fields(), kFunctionOverloadField));
    if (!functions_.emplace(function_key(f.domain(), f.name(), overload), &f).second)
      fail(function_desc(f) + " is defined twice; re-export the model");
    auto& defaults = fn_defaults_[&f];
    for (const std::string& bytes :
         unknown_bytes_fields(f.unknown_fields(), kFunctionAttrProtoField)) {
      AttributeProto a;
      if (!a.ParseFromString(bytes))
        fail(function_desc(f) + " has a malformed default attribute; re-export the model");
      defaults.push_back(std::move(a));
    }
  }
}

void Importer::flatten(const google::protobuf::RepeatedPtrField<NodeProto>& nodes,
                       const Scope& scope, std::vector<std::string>& call_stack) {
  for (int i = 0; i < nodes.size(); ++i) {
    const NodeProto& p = nodes[i];
    if (flat_.size() > kMaxInlinedNodes)
      fail("inlining local functions produces more than " + std::to_string(kMaxInlinedNodes) +
           " nodes; the model is too large or malformed");
    FlatNode n;
    n.op = p.op_type();
    n.domain = p.domain();
    if (n.op.empty()) fail("node #" + std::to_string(i) + " has no op_type; re-export the model");
    if (scope.prefix.empty())
      n.name = p.name();
    else
      n.name = scope.prefix + (p.name().empty() ? n.op + "_" + std::to_string(i) : p.name());
    for (const auto& s : p.input()) n.inputs.push_back(scope.map(s));
    for (const auto& s : p.output()) n.outputs.push_back(scope.map(s));
    for (const AttributeProto& a : p.attribute()) {
      if (a.ref_attr_name().empty()) {
        n.attrs.push_back(a);
        continue;
      }
      // A reference to the enclosing function's attribute: the caller's
      // value, else the function's default, else the attribute is absent.
      const AttributeProto* v = find_attr(scope.caller_attrs, a.ref_attr_name());
      if (!v) v = find_attr(scope.defaults, a.ref_attr_name());
      if (!v) continue;
      n.attrs.push_back(*v);
      n.attrs.back().set_name(a.name());
    }
    const std::string overload =
        last_or_empty(unknown_bytes_fields(p.unknown_fields(), kNodeOverloadField));
    auto fit = functions_.find(function_key(n.domain, n.op, overload));
    if (fit != functions_.end()) {
      inline_call(std::move(n), *fit->second, call_stack);
      continue;
    }
    if (!is_default_domain(n.domain))
      fail("node '" + n.name + "' (" + n.op + ") is in domain '" + n.domain +
           "', which memplan does not support and the model does not define as a local "
           "function; export the model with standard ONNX ops only");
    flat_.push_back(std::move(n));
  }
}

void Importer::inline_call(FlatNode&& site, const FunctionProto& fn,
                           std::vector<std::string>& call_stack) {
  const std::string desc = "node '" + site.name + "' calls " + function_desc(fn);
  const std::string key = function_key(fn.domain(), fn.name(), "");
  for (const auto& k : call_stack)
    if (k == key) fail(desc + ", which calls itself recursively; ONNX functions cannot recurse");
  if (call_stack.size() >= kMaxFunctionNesting)
    fail(desc + " nested more than " + std::to_string(kMaxFunctionNesting) +
         " function calls deep; memplan does not inline deeper call chains");
  if (site.inputs.size() > static_cast<size_t>(fn.input_size()) ||
      site.outputs.size() > static_cast<size_t>(fn.output_size()))
    fail(desc + " with " + std::to_string(site.inputs.size()) + " inputs and " +
         std::to_string(site.outputs.size()) + " outputs, but it declares " +
         std::to_string(fn.input_size()) + " and " + std::to_string(fn.output_size()));

  Scope s;
  std::string base = site.name.empty() ? site.op : site.name;
  s.prefix = base + "/";
  for (int k = 1; !used_prefixes_.insert(s.prefix).second; ++k)
    s.prefix = base + "_" + std::to_string(k) + "/";
  // Formal names the caller omitted map to "" (omitted); outputs the caller
  // omitted keep a private prefixed name.
  for (int k = 0; k < fn.input_size(); ++k)
    s.actual[fn.input(k)] = k < static_cast<int>(site.inputs.size()) ? site.inputs[k] : "";
  for (int k = 0; k < fn.output_size(); ++k)
    if (k < static_cast<int>(site.outputs.size()) && !site.outputs[k].empty())
      s.actual[fn.output(k)] = site.outputs[k];
  s.caller_attrs = &site.attrs;
  s.defaults = &fn_defaults_[&fn];
  call_stack.push_back(key);
  flatten(fn.node(), s, call_stack);
  call_stack.pop_back();
}

void Importer::claim_name(const std::string& name, const std::string& by) {
  auto [it, fresh] = written_by_.emplace(name, by);
  if (!fresh)
    fail("tensor '" + name + "' is produced twice (by " + it->second + " and by " + by +
         "); every ONNX value must have exactly one producer, re-export the model");
}

void Importer::add_initializers() {
  const auto& graph = m_.graph();
  if (graph.sparse_initializer_size() > 0)
    fail("sparse initializer '" + graph.sparse_initializer(0).values().name() +
         "' is not supported; store it as a dense initializer");
  for (const auto& init : graph.initializer()) {
    if (init.name().empty()) fail("an initializer has no name; re-export the model");
    claim_name(init.name(), "initializer '" + init.name() + "'");
    DecodedTensor d = decode_tensor(init, where() + "initializer '" + init.name() + "'");
    Tensor t;
    t.name = init.name();
    t.dtype = d.dtype;
    t.shape = std::move(d.shape);
    t.shape_known = true;
    t.role = is_float(t.dtype) ? Role::parameter : Role::constant;
    t.data = std::move(d.data);
    t.external = std::move(d.external);
    if (!t.external.empty() && !missing_external_.count(t.external)) {
      std::error_code ec;
      if (!fs::exists(dir_ / t.external, ec)) {
        missing_external_.insert(t.external);
        r_.notes.push_back("weights in '" + t.external +
                           "' not found: planning does not need them");
      }
    }
    g_.add_tensor(std::move(t));
  }
}

void Importer::add_inputs() {
  for (const auto& in : m_.graph().input()) {
    if (in.name().empty()) fail("a graph input has no name; re-export the model");
    if (written_by_.count(in.name())) {
      if (g_.find_tensor(in.name()) && g_.tensor(*g_.find_tensor(in.name())).role != Role::input)
        continue;  // old exporters list initializers as inputs too
      fail("graph input '" + in.name() + "' is declared twice; re-export the model");
    }
    written_by_.emplace(in.name(), "graph input '" + in.name() + "'");
    const std::string what = where() + "graph input '" + in.name() + "'";
    if (!in.type().has_tensor_type())
      throw Error(what +
                  " is not a tensor (sequence, map or optional); memplan supports tensor "
                  "inputs only");
    const auto& tt = in.type().tensor_type();
    Tensor t;
    t.name = in.name();
    t.role = Role::input;
    t.dtype = require_dtype(tt.elem_type(), what);
    if (tt.has_shape()) {
      t.shape_known = true;
      bool any_sym = false;
      std::vector<std::string> sym;
      for (int i = 0; i < tt.shape().dim_size(); ++i) {
        const auto& d = tt.shape().dim(i);
        if (d.has_dim_value()) {
          if (d.dim_value() < 0)
            throw Error(what + " has negative dimension " + std::to_string(d.dim_value()) +
                        " at axis " + std::to_string(i) + "; re-export the model");
          t.shape.push_back(d.dim_value());
          sym.emplace_back();
          continue;
        }
        t.shape.push_back(-1);
        sym.push_back(!d.dim_param().empty() ? d.dim_param()
                                             : in.name() + "_dim" + std::to_string(i));
        any_sym = true;
      }
      if (any_sym) t.sym = std::move(sym);
    }
    g_.inputs.push_back(g_.add_tensor(std::move(t)));
  }
}

/// A Constant node becomes a constant tensor named after its output.
void Importer::add_constant(const FlatNode& n) {
  const std::string what = where() + "Constant node '" + n.name + "'";
  if (n.outputs.size() != 1 || n.outputs[0].empty())
    throw Error(what + " must have exactly one named output; re-export the model");
  if (n.attrs.size() != 1)
    throw Error(what + " must have exactly one value attribute (it has " +
                std::to_string(n.attrs.size()) + "); re-export the model");
  const AttributeProto& a = n.attrs[0];
  const std::string& out = n.outputs[0];
  claim_name(out, "Constant node '" + n.name + "'");
  Tensor t;
  t.name = out;
  t.role = Role::constant;
  t.shape_known = true;
  auto bytes_of = [](const std::vector<uint8_t>& v) {
    return std::make_shared<const std::vector<uint8_t>>(v);
  };
  std::vector<uint8_t> buf;
  auto put = [&buf](uint64_t bits, size_t size) {
    for (size_t i = 0; i < size; ++i) buf.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  };
  if (a.name() == "value") {
    if (attribute_kind(a) != AttributeProto::TENSOR)
      throw Error(what + ": attribute 'value' must be a tensor; re-export the model");
    DecodedTensor d = decode_tensor(a.t(), what + " value");
    t.dtype = d.dtype;
    t.shape = std::move(d.shape);
    t.data = std::move(d.data);
    t.external = std::move(d.external);
  } else if (a.name() == "value_float") {
    t.dtype = DType::f32;
    put(std::bit_cast<uint32_t>(a.f()), 4);
    t.data = bytes_of(buf);
  } else if (a.name() == "value_floats") {
    t.dtype = DType::f32;
    t.shape = {a.floats_size()};
    for (float f : a.floats()) put(std::bit_cast<uint32_t>(f), 4);
    t.data = bytes_of(buf);
  } else if (a.name() == "value_int") {
    t.dtype = DType::i64;
    put(static_cast<uint64_t>(a.i()), 8);
    t.data = bytes_of(buf);
  } else if (a.name() == "value_ints") {
    t.dtype = DType::i64;
    t.shape = {a.ints_size()};
    for (int64_t v : a.ints()) put(static_cast<uint64_t>(v), 8);
    t.data = bytes_of(buf);
  } else {
    throw Error(what + ": attribute '" + a.name() +
                "' is not supported (memplan handles "
                "value, value_float(s), value_int(s); not sparse or string constants)");
  }
  g_.add_tensor(std::move(t));
}

/// Creates the activation tensors a node writes.
void Importer::add_outputs_of(const FlatNode& n) {
  for (const std::string& o : n.outputs) {
    if (o.empty()) continue;
    claim_name(o, "node '" + n.name + "' (" + n.op + ")");
    Tensor t;
    t.name = o;
    t.role = Role::activation;
    auto it = declared_type_.find(o);
    if (it != declared_type_.end() && it->second != onnx::TensorProto::UNDEFINED)
      t.dtype = require_dtype(it->second, where() + "value '" + o + "' (declared type)");
    g_.add_tensor(std::move(t));
  }
}

Attrs Importer::convert_attrs(const FlatNode& n, const std::string& node_what) const {
  Attrs attrs;
  for (const AttributeProto& a : n.attrs) {
    if (n.op == "ConstantOfShape" && a.name() == "value") {
      const std::string what = node_what + ", attribute 'value'";
      if (attribute_kind(a) != AttributeProto::TENSOR)
        throw Error(what + " must be a tensor; re-export the model");
      DecodedTensor d = decode_tensor(a.t(), what);
      if (!d.data || d.data->size() != dtype_size(d.dtype))
        throw Error(what + " must hold exactly one inline element; re-export the model");
      attrs["value"] = element_as_double(d, 0);
      attrs["dtype"] = std::string(dtype_name(d.dtype));
      continue;
    }
    if (n.op == "QuantizeLinear" && a.name() == "output_dtype" && a.i() == 0)
      continue;  // 0 = "infer from zero point", same as absent
    attrs[a.name()] = convert_attribute(a, n.op, node_what);
  }
  if (n.op == "ConstantOfShape" && !attrs.count("value")) {
    attrs["value"] = 0.0;  // ONNX default: a float32 zero
    attrs["dtype"] = std::string(dtype_name(DType::f32));
  }
  return attrs;
}

void Importer::add_nodes() {
  std::unordered_set<std::string> names;
  std::vector<std::string> final_names(flat_.size());
  for (size_t i = 0; i < flat_.size(); ++i) {
    const FlatNode& n = flat_[i];
    if (n.op == "Constant" && is_default_domain(n.domain)) continue;
    std::string base = n.name.empty() ? n.op + "_" + std::to_string(i) : n.name;
    std::string name = base;
    for (int k = 1; !names.insert(name).second; ++k) name = base + "_" + std::to_string(k);
    final_names[i] = name;
  }
  for (size_t i = 0; i < flat_.size(); ++i) {
    FlatNode& n = flat_[i];
    if (n.op == "Constant" && is_default_domain(n.domain)) {
      add_constant(n);
      continue;
    }
    n.name = final_names[i];
    add_outputs_of(n);
  }
  for (const FlatNode& n : flat_) {
    if (n.op == "Constant" && is_default_domain(n.domain)) continue;
    const std::string what = where() + "node '" + n.name + "' (" + n.op + ")";
    Node node;
    node.op = n.op;
    node.name = n.name;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const std::string& in = n.inputs[k];
      if (in.empty()) {
        node.inputs.emplace_back();
        continue;
      }
      auto id = g_.find_tensor(in);
      if (!id)
        throw Error(what + " input " + std::to_string(k) + " names '" + in +
                    "', which no node, graph input or initializer defines; fix the exporter or "
                    "add the missing initializer");
      node.inputs.push_back(*id);
    }
    for (const std::string& o : n.outputs)
      node.outputs.push_back(o.empty() ? TensorId() : *g_.find_tensor(o));
    node.attrs = convert_attrs(n, what);
    g_.add_node(std::move(node));
  }
}

/// BatchNormalization's running mean and variance (inputs 3 and 4) are
/// training state, not trained parameters.
void Importer::mark_state() {
  for (const Node& n : g_.nodes()) {
    if (n.op != "BatchNormalization") continue;
    for (size_t k = 3; k < 5 && k < n.inputs.size(); ++k)
      if (n.inputs[k].valid() && g_.tensor(n.inputs[k]).role == Role::parameter)
        g_.tensor(n.inputs[k]).role = Role::state;
  }
}

void Importer::add_graph_outputs() {
  for (const auto& o : m_.graph().output()) {
    auto id = g_.find_tensor(o.name());
    if (!id)
      fail("graph output '" + o.name() +
           "' is not produced by any node and is not a graph "
           "input or initializer; re-export the model");
    g_.outputs.push_back(*id);
  }
}

ImportResult Importer::run() {
  g_.opset = check_model_and_get_opset();
  const auto& graph = m_.graph();
  g_.name = graph.name();
  for (const auto& vi : graph.value_info())
    if (vi.type().has_tensor_type())
      declared_type_[vi.name()] = vi.type().tensor_type().elem_type();
  for (const auto& vi : graph.output())
    if (vi.type().has_tensor_type())
      declared_type_[vi.name()] = vi.type().tensor_type().elem_type();
  index_functions();
  std::vector<std::string> call_stack;
  flatten(graph.node(), Scope{}, call_stack);
  add_initializers();
  add_inputs();
  add_nodes();
  mark_state();
  add_graph_outputs();
  try {
    verify(g_, {.require_shapes = false});
  } catch (const Error& e) {
    fail(std::string(e.what()) + "; re-export the model");
  }
  return std::move(r_);
}

ImportResult import_impl(const std::string& bytes, const std::string& name, const fs::path& dir) {
  if (bytes.empty())
    throw Error(name +
                ": file is empty (0 bytes); the export probably failed, re-export the model");
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw Error(name +
                ": model is larger than 2 GiB, which protobuf cannot parse; save the "
                "weights as ONNX external data");
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes))
    throw Error(name +
                ": not a valid ONNX model: protobuf parsing failed (the file is truncated, "
                "corrupt or not ONNX); re-export or re-download it");
  return Importer(m, name, dir).run();
}

}  // namespace

ImportResult import_onnx_bytes(const std::string& bytes, const std::string& display_name,
                               const ImportOptions&) {
  return import_impl(bytes, display_name, fs::path(display_name).parent_path());
}

ImportResult import_onnx_file(const std::string& path, const ImportOptions&) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw Error(path + ": cannot open model: no such file; check the path");
  if (fs::is_directory(st))
    throw Error(path + ": is a directory, not an .onnx model file; pass the model file itself");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open model for reading; check the file's permissions");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path + ": read error while loading the model; check the file");
  return import_impl(bytes, path, fs::path(path).parent_path());
}

}  // namespace memplan
