// Internal helpers for the CPU kernel files (runtime/cpu/*.cc): errors,
// reading index/shape inputs at run time, strides, a numpy-broadcasting index
// walker and dtype dispatch. Include only from runtime/cpu/*.cc.
//
// Element types: f32 -> float, f64 -> double, i64 -> int64_t, i32 -> int32_t,
// i8 -> int8_t, u8 -> uint8_t, bool -> uint8_t holding 0 or 1. f16 / bf16 are
// handled only by Cast and by byte-moving kernels (element size dispatch).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/kernels_internal.h"

namespace memplan::kernels {

/// Throws Error("node 'n' (Op): " + msg).
[[noreturn]] void fail(const KernelArgs& a, const std::string& msg);
/// Elements of an integer (or bool) tensor as int64; Error for float dtypes.
std::vector<int64_t> read_ints(const KernelArgs& a, const TensorArg& t);
/// Element 0 of any numeric tensor as double.
double read_scalar(const KernelArgs& a, const TensorArg& t);
/// Row-major strides (in elements).
std::vector<int64_t> strides_of(const Shape& s);
/// Strides of `in` broadcast to `out` (numpy rules, right-aligned): one per
/// dim of `out`, 0 where `in` has no such dim or size 1.
std::vector<int64_t> bcast_strides(const Shape& in, const Shape& out);
/// Normalizes an axis from [-rank, rank) to [0, rank) or fails.
int64_t norm_axis(const KernelArgs& a, int64_t axis, int64_t rank);

/// Calls f(i, off) for every element i of `shape` in row-major order, where
/// off[k] = sum_d idx_d * strides[k][d]. Strides may be zero (broadcast) or
/// negative (reversed slices).
template <size_t K, class F>
void for_each_index(const Shape& shape, const std::array<const std::vector<int64_t>*, K>& st,
                    F&& f) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n == 0) return;
  std::array<int64_t, K> off{};
  const size_t r = shape.size();
  if (r == 0) {
    f(int64_t{0}, off);
    return;
  }
  std::vector<int64_t> idx(r, 0);
  const int64_t inner = shape[r - 1];
  std::array<int64_t, K> inner_st{};
  for (size_t k = 0; k < K; ++k) inner_st[k] = (*st[k])[r - 1];
  for (int64_t i = 0; i < n; i += inner) {
    std::array<int64_t, K> o = off;
    for (int64_t j = 0; j < inner; ++j) {
      f(i + j, o);
      for (size_t k = 0; k < K; ++k) o[k] += inner_st[k];
    }
    for (size_t d = r - 1; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < K; ++k) off[k] += (*st[k])[d];
      if (idx[d] < shape[d]) break;
      for (size_t k = 0; k < K; ++k) off[k] -= (*st[k])[d] * shape[d];
      idx[d] = 0;
    }
  }
}

struct Bool8 {};  // tag: bool elements stored as uint8_t

/// Calls f(T{}) with T the element type of a float dtype (f32, f64).
template <class F>
void dispatch_float(const KernelArgs& a, DType d, F&& f) {
  switch (d) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default: fail(a, "unsupported dtype " + std::string(dtype_name(d)) + " (expected f32/f64)");
  }
}

/// Calls f(T{}) for f32, f64, i64, i32, i8, u8.
template <class F>
void dispatch_numeric(const KernelArgs& a, DType d, F&& f) {
  switch (d) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i64: return f(int64_t{});
    case DType::i32: return f(int32_t{});
    case DType::i8: return f(int8_t{});
    case DType::u8: return f(uint8_t{});
    default: fail(a, "unsupported dtype " + std::string(dtype_name(d)));
  }
}

/// Calls f(U{}) with U an unsigned integer type of the dtype's element size,
/// for kernels that only move elements.
template <class F>
void dispatch_bytes(const KernelArgs& a, DType d, F&& f) {
  switch (dtype_size(d)) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
    default: fail(a, "unsupported element size");
  }
}

void register_cast(Table& t);    // runtime/cpu/cast.cc
void register_reduce(Table& t);  // runtime/cpu/reduce.cc
void register_index(Table& t);   // runtime/cpu/index.cc (gather, slice, pad, trilu and grads)

}  // namespace memplan::kernels
