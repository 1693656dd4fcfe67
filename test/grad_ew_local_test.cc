// Interim finite-difference check of the elementwise and data gradient cases
// (test/grad_cases_{elementwise,data}.cc), written before the shared harness
// (test/grad_check_test.cc) landed. It follows test/grad_check.h: a one-node
// f64 graph, random upstream gradients R_k, L = sum_k <out_k, R_k>, central
// differences with step 1e-6 compared against the rule's gradients.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "compiler/dtype_codec.h"
#include "compiler/grad.h"
#include "compiler/op_registry.h"
#include "runtime/interpreter.h"
#include "test/grad_check.h"

namespace memplan::gradcheck {
namespace {

std::vector<uint8_t> f64_bytes(const std::vector<double>& v) {
  std::vector<uint8_t> b(v.size() * 8);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<double> f64_values(const std::vector<uint8_t>& b) {
  std::vector<double> v(b.size() / 8);
  if (!v.empty()) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

/// Returns the number of gradient elements compared.
int run_case(const GradCase& gc, GradFn rule_override = nullptr) {
  int checked = 0;
  SCOPED_TRACE(gc.name);
  std::mt19937_64 rng(12345);
  Graph g;
  g.opset = 20;
  Node n;
  n.op = gc.op;
  n.name = "fwd";
  n.attrs = gc.attrs;
  std::vector<TensorId> random_inputs;
  std::vector<std::vector<double>> values;
  for (size_t i = 0; i < gc.inputs.size(); ++i) {
    const InputSpec& s = gc.inputs[i];
    if (s.omitted) {
      n.inputs.push_back(TensorId());
      continue;
    }
    Tensor t;
    t.name = "in" + std::to_string(i);
    t.dtype = s.dtype;
    t.shape = s.shape;
    t.shape_known = true;
    if (s.kind == InputSpec::values) {
      t.role = Role::constant;
      std::vector<uint8_t> b;
      for (double v : s.data) is_float(s.dtype) ? encode_float(s.dtype, v, b) : encode_int(s.dtype, static_cast<int64_t>(v), b);
      t.data = std::make_shared<const std::vector<uint8_t>>(std::move(b));
    } else {
      t.role = Role::input;
    }
    TensorId id = g.add_tensor(std::move(t));
    n.inputs.push_back(id);
    if (s.kind == InputSpec::random) {
      g.inputs.push_back(id);
      random_inputs.push_back(id);
      std::uniform_real_distribution<double> u(s.lo, s.hi);
      std::vector<double> v(static_cast<size_t>(num_elements(s.shape)));
      for (double& x : v) x = u(rng);
      values.push_back(v);
    } else {
      values.emplace_back();
    }
  }
  for (size_t k = 0; k < gc.num_outputs; ++k) {
    Tensor t;
    t.name = "out" + std::to_string(k);
    n.outputs.push_back(g.add_tensor(std::move(t)));
  }
  std::vector<TensorType> types = infer_node(g, n);
  for (size_t k = 0; k < gc.num_outputs; ++k) {
    Tensor& t = g.tensor(n.outputs[k]);
    t.dtype = types[k].dtype;
    t.shape = types[k].shape;
    t.shape_known = true;
  }
  const std::vector<TensorId> outs = n.outputs;
  const NodeId nid = g.add_node(std::move(n));
  // Upstream gradients R_k as constants.
  std::vector<TensorId> out_grads(gc.num_outputs);
  std::vector<std::vector<double>> r(gc.num_outputs);
  for (size_t k : gc.loss_outputs) {
    std::uniform_real_distribution<double> u(-1, 1);
    r[k].resize(static_cast<size_t>(g.tensor(outs[k]).numel()));
    for (double& x : r[k]) x = u(rng);
    Tensor t;
    t.name = "R" + std::to_string(k);
    t.dtype = DType::f64;
    t.shape = g.tensor(outs[k]).shape;
    t.shape_known = true;
    t.role = Role::constant;
    t.data = std::make_shared<const std::vector<uint8_t>>(f64_bytes(r[k]));
    out_grads[k] = g.add_tensor(std::move(t));
  }
  std::vector<char> needs;
  for (const InputSpec& s : gc.inputs) needs.push_back(!s.omitted && s.kind == InputSpec::random && s.differentiable);
  GradFn rule = rule_override ? rule_override : find_grad_rule(gc.op);
  if (!rule) {
    ADD_FAILURE() << "no gradient rule for " << gc.op;
    return 0;
  }
  GradCtx ctx(g, nid, out_grads, needs, "grad");
  rule(ctx);
  const std::vector<TensorId> grads = ctx.input_grads();

  auto run = [&](std::vector<std::vector<double>>& vals, Interpreter& it) {
    size_t j = 0;
    for (size_t i = 0; i < gc.inputs.size(); ++i)
      if (!gc.inputs[i].omitted && gc.inputs[i].kind == InputSpec::random) it.set(random_inputs[j++], f64_bytes(vals[i]));
    it.run();
  };
  auto loss = [&](std::vector<std::vector<double>>& vals) {
    Interpreter it(g);
    run(vals, it);
    double l = 0;
    for (size_t k : gc.loss_outputs) {
      std::vector<double> o = f64_values(it.get(outs[k]));
      for (size_t e = 0; e < o.size(); ++e) l += o[e] * r[k][e];
    }
    return l;
  };
  Interpreter it(g);
  run(values, it);
  for (size_t i = 0; i < gc.inputs.size(); ++i) {
    if (!needs[i]) continue;
    if (!grads[i].valid()) {
      ADD_FAILURE() << "no gradient for input " << i;
      continue;
    }
    const std::vector<double> analytic = f64_values(it.get(grads[i]));
    EXPECT_EQ(analytic.size(), values[i].size());
    if (analytic.size() != values[i].size()) continue;
    for (size_t e = 0; e < values[i].size(); ++e) {
      const double h = 1e-6, x0 = values[i][e];
      values[i][e] = x0 + h;
      const double lp = loss(values);
      values[i][e] = x0 - h;
      const double lm = loss(values);
      values[i][e] = x0;
      const double numeric = (lp - lm) / (2 * h);
      EXPECT_LE(std::abs(analytic[e] - numeric), gc.tol * (1 + std::abs(numeric)))
          << "input " << i << " element " << e << ": analytic " << analytic[e] << " numeric " << numeric;
      ++checked;
    }
  }
  return checked;
}

// Every case must compare at least one element (a case whose inputs are all
// constants would pass vacuously).
TEST(GradEwLocal, ElementwiseCases) {
  for (const GradCase& gc : elementwise_cases()) EXPECT_GT(run_case(gc), 0) << gc.name;
}
TEST(GradEwLocal, DataCases) {
  for (const GradCase& gc : data_cases()) EXPECT_GT(run_case(gc), 0) << gc.name;
}

// The checker must catch a wrong gradient: Sign's "rule" is borrowed from Neg
// (dX = -dY), while d sign(x)/dx = 0 away from 0, so the check must fail.
TEST(GradEwLocal, CatchesWrongRule) {
  GradCase gc{.name = "Sign/wrong", .op = "Sign", .inputs = {InputSpec{.shape = {3}, .lo = 0.5}}};
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter rep(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    run_case(gc, find_grad_rule("Neg"));
  }
  EXPECT_GT(failures.size(), 0);
}

}  // namespace
}  // namespace memplan::gradcheck
