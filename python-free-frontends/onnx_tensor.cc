// ONNX element types, tensor payloads and attributes -> memplan IR values.
// See onnx_tensor.h for the contract.
#include "python-free-frontends/onnx_tensor.h"

#include <onnx/onnx_pb.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace memplan::onnx_detail {

namespace {

using onnx::AttributeProto;
using onnx::TensorProto;

constexpr std::string_view kOnnxTypeNames[] = {
    "UNDEFINED",      "FLOAT",      "UINT8",          "INT8",       "UINT16",   "INT16",
    "INT32",          "INT64",      "STRING",         "BOOL",       "FLOAT16",  "DOUBLE",
    "UINT32",         "UINT64",     "COMPLEX64",      "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
    "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4",      "INT4",     "FLOAT4E2M1"};

/// Appends the low `size` bytes of `bits`, least significant first.
void put_le(std::vector<uint8_t>& out, uint64_t bits, size_t size) {
  for (size_t i = 0; i < size; ++i) out.push_back(static_cast<uint8_t>(bits >> (8 * i)));
}

uint64_t get_le(const uint8_t* p, size_t size) {
  uint64_t v = 0;
  for (size_t i = 0; i < size; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

double half_to_double(uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exp = (h >> 10) & 0x1f;
  const int frac = h & 0x3ff;
  double v;
  if (exp == 0)
    v = std::ldexp(frac, -24);  // subnormal
  else if (exp == 31)
    v = frac ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else
    v = std::ldexp(frac + 1024, exp - 25);
  return sign ? -v : v;
}

/// The double with the shortest decimal form that rounds to `f` (0.1f ->
/// 0.1, not 0.10000000149011612), so attributes print as they were written.
double float_to_double(float f) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f);
  double d = f;
  if (ec == std::errc()) std::from_chars(buf, end, d);
  return d;
}

[[noreturn]] void count_mismatch(const std::string& what, const char* field, int64_t have,
                                 int64_t want) {
  throw Error(what + " holds " + std::to_string(have) + " elements in " + field + " but its dims " +
              "need " + std::to_string(want) +
              ": the model is corrupt or was written by a buggy exporter; re-export it");
}

/// Checks that a typed repeated field holds exactly `numel` values.
template <class Field>
void check_count(const Field& f, const char* field, int64_t numel, const std::string& what) {
  if (static_cast<int64_t>(f.size()) != numel) count_mismatch(what, field, f.size(), numel);
}

/// Decodes the int32_data field, where ONNX stores i32, i8, u8, bool and the
/// 16-bit float bit patterns; each value must fit the element type.
std::vector<uint8_t> from_int32_data(const TensorProto& t, DType d, int64_t numel,
                                     const std::string& what) {
  check_count(t.int32_data(), "int32_data", numel, what);
  const size_t es = dtype_size(d);
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(numel) * es);
  int64_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  if (d == DType::i8) lo = -128, hi = 127;
  if (d == DType::u8) lo = 0, hi = 255;
  if (d == DType::boolean) lo = 0, hi = 1;
  if (d == DType::f16 || d == DType::bf16) lo = 0, hi = 0xffff;
  for (int i = 0; i < t.int32_data_size(); ++i) {
    const int64_t v = t.int32_data(i);
    if (v < lo || v > hi)
      throw Error(what + ": int32_data[" + std::to_string(i) + "] = " + std::to_string(v) +
                  " does not fit element type " + std::string(dtype_name(d)) +
                  "; the model is corrupt, re-export it");
    put_le(out, static_cast<uint64_t>(v), es);
  }
  return out;
}

std::vector<uint8_t> from_typed_fields(const TensorProto& t, DType d, int64_t numel,
                                       const std::string& what) {
  std::vector<uint8_t> out;
  switch (d) {
    case DType::f32:
      check_count(t.float_data(), "float_data", numel, what);
      out.reserve(static_cast<size_t>(numel) * 4);
      for (float f : t.float_data()) put_le(out, std::bit_cast<uint32_t>(f), 4);
      return out;
    case DType::f64:
      check_count(t.double_data(), "double_data", numel, what);
      out.reserve(static_cast<size_t>(numel) * 8);
      for (double f : t.double_data()) put_le(out, std::bit_cast<uint64_t>(f), 8);
      return out;
    case DType::i64:
      check_count(t.int64_data(), "int64_data", numel, what);
      out.reserve(static_cast<size_t>(numel) * 8);
      for (int64_t v : t.int64_data()) put_le(out, static_cast<uint64_t>(v), 8);
      return out;
    case DType::i32:
    case DType::i8:
    case DType::u8:
    case DType::boolean:
    case DType::f16:
    case DType::bf16:
      return from_int32_data(t, d, numel, what);
  }
  throw InternalError("unhandled dtype in from_typed_fields");
}

/// Parses a non-negative decimal int64 (external-data offset / length).
std::optional<int64_t> parse_nonneg(const std::string& s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

void decode_external(const TensorProto& t, int64_t bytes, const std::string& what,
                     DecodedTensor& out) {
  std::optional<int64_t> length;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") {
      out.external = kv.value();
    } else if (kv.key() == "offset" || kv.key() == "length") {
      auto v = parse_nonneg(kv.value());
      if (!v)
        throw Error(what + ": external data " + kv.key() + " '" + kv.value() +
                    "' is not a non-negative integer; re-export the model");
      if (kv.key() == "length") length = v;
    }
  }
  if (out.external.empty())
    throw Error(what +
                " is marked as external data but has no 'location' entry; re-export the "
                "model with its weights file");
  if (length && *length != bytes)
    throw Error(what + ": external data length " + std::to_string(*length) + " bytes does not " +
                "match its dims and type (" + std::to_string(bytes) +
                " bytes); re-export the model");
}

}  // namespace

std::optional<DType> dtype_from_onnx(int64_t onnx_type) {
  switch (onnx_type) {
    case TensorProto::FLOAT:
      return DType::f32;
    case TensorProto::FLOAT16:
      return DType::f16;
    case TensorProto::BFLOAT16:
      return DType::bf16;
    case TensorProto::DOUBLE:
      return DType::f64;
    case TensorProto::INT64:
      return DType::i64;
    case TensorProto::INT32:
      return DType::i32;
    case TensorProto::INT8:
      return DType::i8;
    case TensorProto::UINT8:
      return DType::u8;
    case TensorProto::BOOL:
      return DType::boolean;
    default:
      return std::nullopt;
  }
}

std::string onnx_type_name(int64_t onnx_type) {
  if (onnx_type >= 0 && onnx_type < static_cast<int64_t>(std::size(kOnnxTypeNames)))
    return std::string(kOnnxTypeNames[onnx_type]);
  return "<unknown " + std::to_string(onnx_type) + ">";
}

DType require_dtype(int64_t onnx_type, const std::string& what) {
  if (auto d = dtype_from_onnx(onnx_type)) return *d;
  if (onnx_type == TensorProto::UNDEFINED)
    throw Error(what + " has no element type (UNDEFINED); the model is incomplete, re-export it");
  throw Error(what + " has element type " + onnx_type_name(onnx_type) +
              ", which memplan does not support (supported: FLOAT, FLOAT16, BFLOAT16, DOUBLE, "
              "INT64, INT32, INT8, UINT8, BOOL); convert the model to a supported type");
}

DecodedTensor decode_tensor(const TensorProto& t, const std::string& what) {
  DecodedTensor out;
  out.dtype = require_dtype(t.data_type(), what);
  for (int64_t d : t.dims()) {
    if (d < 0)
      throw Error(what + " has negative dimension " + std::to_string(d) + "; re-export the model");
    out.shape.push_back(d);
  }
  if (t.has_segment())
    throw Error(what +
                " is a segmented tensor, which memplan does not support; re-export the "
                "model without segments");
  int64_t numel = 0, bytes = 0;
  try {
    numel = num_elements(out.shape);
    bytes = byte_size(out.dtype, out.shape);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  if (t.data_location() == TensorProto::EXTERNAL) {
    decode_external(t, bytes, what, out);
    return out;
  }
  std::vector<uint8_t> data;
  if (t.has_raw_data()) {
    if (static_cast<int64_t>(t.raw_data().size()) != bytes)
      throw Error(what + " has " + std::to_string(t.raw_data().size()) + " bytes of raw_data but " +
                  "its dims and type need " + std::to_string(bytes) +
                  "; the model is truncated or corrupt, re-export it");
    data.assign(t.raw_data().begin(), t.raw_data().end());
  } else {
    data = from_typed_fields(t, out.dtype, numel, what);
  }
  out.data = std::make_shared<const std::vector<uint8_t>>(std::move(data));
  return out;
}

double element_as_double(const DecodedTensor& t, size_t i) {
  const size_t es = dtype_size(t.dtype);
  if (!t.data || (i + 1) * es > t.data->size())
    throw InternalError("element_as_double: element out of range");
  const uint64_t bits = get_le(t.data->data() + i * es, es);
  switch (t.dtype) {
    case DType::f32:
      return std::bit_cast<float>(static_cast<uint32_t>(bits));
    case DType::f64:
      return std::bit_cast<double>(bits);
    case DType::f16:
      return half_to_double(static_cast<uint16_t>(bits));
    case DType::bf16:
      return std::bit_cast<float>(static_cast<uint32_t>(bits << 16));
    case DType::i64:
      return static_cast<double>(static_cast<int64_t>(bits));
    case DType::i32:
      return static_cast<int32_t>(static_cast<uint32_t>(bits));
    case DType::i8:
      return static_cast<int8_t>(static_cast<uint8_t>(bits));
    case DType::u8:
      return static_cast<double>(bits);
    case DType::boolean:
      return bits != 0 ? 1.0 : 0.0;
  }
  throw InternalError("unhandled dtype in element_as_double");
}

int attribute_kind(const AttributeProto& a) {
  if (a.type() != AttributeProto::UNDEFINED) return a.type();
  if (a.has_f()) return AttributeProto::FLOAT;
  if (a.has_i()) return AttributeProto::INT;
  if (a.has_s()) return AttributeProto::STRING;
  if (a.has_t()) return AttributeProto::TENSOR;
  if (a.has_g()) return AttributeProto::GRAPH;
  if (a.floats_size()) return AttributeProto::FLOATS;
  if (a.ints_size()) return AttributeProto::INTS;
  if (a.strings_size()) return AttributeProto::STRINGS;
  if (a.graphs_size()) return AttributeProto::GRAPHS;
  if (a.tensors_size()) return AttributeProto::TENSORS;
  return AttributeProto::UNDEFINED;
}

namespace {
/// Attributes holding an ONNX TensorProto::DataType enum value.
bool is_dtype_attr(const std::string& op, const std::string& attr) {
  if (op == "Cast") return attr == "to";
  if (op == "QuantizeLinear") return attr == "output_dtype";
  if (op == "EyeLike" || op == "RandomNormal" || op == "RandomUniform" ||
      op == "RandomNormalLike" || op == "RandomUniformLike" || op == "Multinomial" ||
      op == "Bernoulli")
    return attr == "dtype";
  return false;
}
}  // namespace

AttrValue convert_attribute(const AttributeProto& a, const std::string& op,
                            const std::string& node_what) {
  const std::string what = node_what + ", attribute '" + a.name() + "'";
  switch (attribute_kind(a)) {
    case AttributeProto::INT:
      if (is_dtype_attr(op, a.name())) return std::string(dtype_name(require_dtype(a.i(), what)));
      return a.i();
    case AttributeProto::FLOAT:
      return float_to_double(a.f());
    case AttributeProto::STRING:
      return a.s();
    case AttributeProto::INTS:
      return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case AttributeProto::FLOATS: {
      std::vector<double> v;
      for (float f : a.floats()) v.push_back(float_to_double(f));
      return v;
    }
    case AttributeProto::STRINGS:
      return std::vector<std::string>(a.strings().begin(), a.strings().end());
    case AttributeProto::GRAPH:
    case AttributeProto::GRAPHS:
      throw Error(what +
                  " is a subgraph: control flow (If, Loop, Scan) is not supported by "
                  "memplan; export the model with control flow unrolled");
    case AttributeProto::UNDEFINED:
      throw Error(what + " has no value; the model is corrupt, re-export it");
    default:
      throw Error(what +
                  " is a tensor/type-valued attribute, which memplan does not support for "
                  "this op");
  }
}

}  // namespace memplan::onnx_detail
