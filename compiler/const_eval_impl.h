// Internal to const_eval*.cc: decoded constant values and index helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "compiler/const_eval.h"

namespace memplan::ceval {

/// A decoded constant. Float dtypes hold doubles in `f`; integer and bool
/// dtypes hold int64 in `i` (exactly one of the two is used, per `fl`).
struct Val {
  DType dtype = DType::f32;
  Shape shape;
  bool fl = true;
  std::vector<double> f;
  std::vector<int64_t> i;

  size_t size() const { return fl ? f.size() : i.size(); }
  double getf(size_t k) const { return fl ? f[k] : static_cast<double>(i[k]); }
  int64_t geti(size_t k) const;
  /// An empty value of dtype d (and its storage kind) with shape s.
  static Val make(DType d, Shape s);
  void push(double v) { f.push_back(v); }
  void push_int(int64_t v) { i.push_back(v); }
};

Val load(const Tensor& t);
/// Encodes v as dtype d (converting between float and integer storage).
std::vector<uint8_t> store(const Val& v, DType d);

/// Row-major strides of s.
std::vector<int64_t> strides_of(const Shape& s);
/// For each element of `out` (row-major), the flat index of the element of a
/// tensor of shape `in` that numpy broadcasting reads.
std::vector<int64_t> broadcast_index(const Shape& out, const Shape& in);
/// The elements of v at flat indices idx, as a value of shape s.
Val take(const Val& v, const std::vector<int64_t>& idx, Shape s);

using Result = std::optional<std::vector<std::vector<uint8_t>>>;

/// Elementwise and reduction evaluators (const_eval_math.cc); nullopt when
/// the op is not one of them.
std::optional<Val> eval_math(const Graph& g, const Node& n, const std::vector<Val>& in,
                             const TensorType& out);

}  // namespace memplan::ceval
