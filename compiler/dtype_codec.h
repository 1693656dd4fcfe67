// Element codecs for raw little-endian tensor data.
//
// Constant tensors carry their elements as raw little-endian bytes in their
// dtype (Tensor::data). These helpers decode such bytes to int64 / double and
// encode values back, with IEEE round-to-nearest-even for f32, f16 and bf16.
// Float-to-integer conversion truncates toward zero (C semantics, as ONNX
// Cast does for in-range values); bool encodes as 0 / 1.
#pragma once

#include <cstdint>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

/// Decodes element i of `bytes` (dtype d) as a double (exact for every dtype
/// except i64 values beyond 2^53).
double decode_float(DType d, const uint8_t* bytes, size_t i);
/// Decodes element i of `bytes` (dtype d) as an int64; floats truncate toward
/// zero, NaN decodes as 0.
int64_t decode_int(DType d, const uint8_t* bytes, size_t i);

/// Appends v encoded as dtype d (rounded to nearest even for f32/f16/bf16).
void encode_float(DType d, double v, std::vector<uint8_t>& out);
/// Appends v encoded as dtype d (wraps to narrower integer types like a C cast).
void encode_int(DType d, int64_t v, std::vector<uint8_t>& out);

/// IEEE binary16 / bfloat16 conversions (exposed for tests).
uint16_t f64_to_f16(double v);
uint16_t f64_to_bf16(double v);
double f16_to_f64(uint16_t h);
double bf16_to_f64(uint16_t h);

}  // namespace memplan
