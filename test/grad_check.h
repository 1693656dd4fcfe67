// Generic gradient-check harness (test/grad_check_test.cc) and its cases.
//
// For each case the harness builds a one-node graph in float64 with random
// inputs, takes random upstream gradients R_k for the float outputs, emits the
// op's gradient rule (compiler/grad.h) with d(out_k) = R_k, runs everything on
// the reference interpreter (runtime/interpreter.h), and compares each input
// gradient with central finite differences of L = sum_k <out_k, R_k>.
// Every op with a gradient rule must have at least one case, or the test fails.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir.h"

namespace memplan::gradcheck {

struct InputSpec {
  Shape shape;
  DType dtype = DType::f64;
  /// random: uniform in [lo, hi); values: a constant with exactly `values`
  /// (integer dtypes: axes, shapes, indices, labels; or float constants).
  enum Kind { random, values } kind = random;
  double lo = -1.0, hi = 1.0;
  std::vector<double> data;   // for Kind::values
  bool differentiable = true; // check this input's gradient (float random inputs only)
  bool omitted = false;       // an omitted optional input slot
};

struct GradCase {
  std::string name;  // unique, e.g. "Conv/stride2_pad1_groups2"
  std::string op;
  std::vector<InputSpec> inputs;
  Attrs attrs;
  size_t num_outputs = 1;        // output slots to create
  std::vector<size_t> loss_outputs = {0};  // outputs that carry R_k (float ones)
  double tol = 1e-6;             // |analytic - numeric| <= tol * (1 + |numeric|)
};

/// Builders shared by the case files.
/// A random float input, uniform in [lo, hi).
inline InputSpec rnd(Shape s, double lo = -1.0, double hi = 1.0) {
  InputSpec in;
  in.shape = std::move(s);
  in.lo = lo;
  in.hi = hi;
  return in;
}
/// A constant input with exactly `v` (not differentiated).
inline InputSpec constant(Shape s, std::vector<double> v, DType d) {
  InputSpec in;
  in.shape = std::move(s);
  in.dtype = d;
  in.kind = InputSpec::values;
  in.data = std::move(v);
  in.differentiable = false;
  return in;
}
/// An omitted optional input slot.
inline InputSpec omitted() {
  InputSpec in;
  in.omitted = true;
  in.differentiable = false;
  return in;
}

/// Case lists, one per family (each in its own test/grad_cases_*.cc).
std::vector<GradCase> elementwise_cases();
std::vector<GradCase> data_cases();
std::vector<GradCase> nn_cases();

}  // namespace memplan::gradcheck
