// Internal to the ONNX importer: ONNX element types, tensor payloads and
// attributes converted to memplan's IR types.
//
// Only forward-declares the protobuf classes, so including this header does
// not pull in the (heavy) generated ONNX headers. Not part of memplan's
// public API: only python-free-frontends/*.cc include it.
//
// Every function here validates what it reads (counts, sizes, enum values)
// and throws memplan::Error with a message naming `what` (a caller-supplied
// description such as "initializer 'w' in 'model.onnx'") on bad input.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.h"

namespace onnx {
class TensorProto;
class AttributeProto;
}  // namespace onnx

namespace memplan::onnx_detail {

/// memplan dtype of an ONNX TensorProto::DataType value, if memplan has one.
std::optional<DType> dtype_from_onnx(int64_t onnx_type);
/// "FLOAT16", "STRING", ... or "<unknown 99>": for messages.
std::string onnx_type_name(int64_t onnx_type);
/// dtype_from_onnx, or throws Error("<what> has element type X, which memplan
/// does not support ...").
DType require_dtype(int64_t onnx_type, const std::string& what);

/// Where a decoded tensor's bytes live.
struct DecodedTensor {
  DType dtype = DType::f32;
  Shape shape;
  std::shared_ptr<const std::vector<uint8_t>> data;  // null when external
  std::string external;                              // external-data location, or ""
};

/// Decodes a TensorProto: checks dims, dtype and that the inline payload
/// (raw_data or the typed field ONNX uses for that dtype) holds exactly
/// numel elements; converts it to little-endian raw bytes. External data is
/// recorded, never read.
DecodedTensor decode_tensor(const onnx::TensorProto& t, const std::string& what);

/// Element `i` of a decoded inline tensor as a double (for scalar attributes).
double element_as_double(const DecodedTensor& t, size_t i);

/// Converts one node attribute to an AttrValue. `op` selects the special
/// cases (dtype-enum attributes become dtype names). TENSOR / GRAPH / other
/// kinds throw Error naming `node_what` and the attribute; ConstantOfShape's
/// `value` is handled by the caller, not here.
AttrValue convert_attribute(const onnx::AttributeProto& a, const std::string& op,
                            const std::string& node_what);

/// The AttributeProto kind, filling in UNDEFINED from whichever field is set
/// (very old exporters left `type` unset).
int attribute_kind(const onnx::AttributeProto& a);

}  // namespace memplan::onnx_detail
