// NumPy .npy files (format versions 1.0, 2.0 and 3.0): read and write.
//
// Supported: little-endian (or byte-order-free) dtypes f4 f8 f2 i8 i4 b1 u1
// ('<f4', '|b1', ...), C order (fortran_order False), any shape. Everything
// else (big-endian, Fortran order, object or structured dtypes, other
// versions) and every truncated or malformed file throws Error naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

struct NpyArray {
  DType dtype = DType::f32;
  Shape shape;
  std::vector<uint8_t> data;  // little-endian, C order, dtype_size x numel bytes
};

/// Parses the bytes of a .npy file; `source` names it in messages.
NpyArray parse_npy(const std::string& bytes, const std::string& source);
/// Reads a .npy file (Error if missing, unreadable or malformed).
NpyArray read_npy(const std::string& path);
/// Serializes to a version 1.0 file (2.0 if the header needs it).
std::string npy_bytes(const NpyArray& a);
/// Writes atomically (compiler/plan.h write_file_atomic).
void write_npy(const std::string& path, const NpyArray& a);

}  // namespace memplan
