// Gradient checks: every gradient rule against central finite differences in
// float64, through one generic harness (see test/grad_check.h).
//
// For a case with float outputs out_k and fixed random R_k, the harness
// checks dL/dx for L = sum_k <out_k, R_k>: analytically by emitting the op's
// gradient rule with d(out_k) = R_k and running it on the reference
// interpreter; numerically as (L(x + h e_i) - L(x - h e_i)) / 2h, h = 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "compiler/dtype_codec.h"
#include "compiler/grad.h"
#include "compiler/op_registry.h"
#include "runtime/interpreter.h"
#include "test/grad_check.h"

namespace memplan::gradcheck {
namespace {

std::vector<GradCase> all_cases() {
  std::vector<GradCase> all;
  for (auto* f : {&elementwise_cases, &data_cases, &nn_cases}) {
    auto v = f();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

std::vector<uint8_t> encode(DType d, const std::vector<double>& v) {
  std::vector<uint8_t> out;
  for (double x : v) {
    if (is_float(d))
      encode_float(d, x, out);
    else
      encode_int(d, static_cast<int64_t>(x), out);
  }
  return out;
}

std::vector<double> decode(DType d, const std::vector<uint8_t>& b) {
  size_t n = b.size() / dtype_size(d);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = decode_float(d, b.data(), i);
  return v;
}

/// The case's forward graph: inputs as parameters (random) or constants.
struct Built {
  Graph g;
  NodeId node;
  std::vector<TensorId> in;  // invalid for omitted slots
  std::vector<std::vector<double>> values;
};

Built build(const GradCase& c, uint32_t seed) {
  Built b;
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const InputSpec& s = c.inputs[i];
    if (s.omitted) {
      b.in.emplace_back();
      b.values.emplace_back();
      continue;
    }
    Tensor t;
    t.name = "in" + std::to_string(i);
    t.dtype = s.dtype;
    t.shape = s.shape;
    t.shape_known = true;
    std::vector<double> v;
    if (s.kind == InputSpec::values) {
      v = s.data;
      t.role = Role::constant;
    } else {
      std::uniform_real_distribution<double> u(s.lo, s.hi);
      v.resize(static_cast<size_t>(num_elements(s.shape)));
      for (double& x : v) x = u(rng);
      t.role = is_float(s.dtype) ? Role::parameter : Role::constant;
    }
    if (static_cast<int64_t>(v.size()) != num_elements(s.shape))
      throw std::runtime_error(c.name + ": input " + std::to_string(i) + " has " +
                               std::to_string(v.size()) + " values for shape " + shape_str(s.shape));
    t.data = std::make_shared<const std::vector<uint8_t>>(encode(s.dtype, v));
    b.in.push_back(b.g.add_tensor(std::move(t)));
    b.values.push_back(v);
  }
  Node n;
  n.op = c.op;
  n.name = "op";
  n.inputs = b.in;
  n.attrs = c.attrs;
  for (size_t k = 0; k < c.num_outputs; ++k) {
    Tensor t;
    t.name = "out" + std::to_string(k);
    n.outputs.push_back(b.g.add_tensor(std::move(t)));
  }
  std::vector<TensorType> types = infer_node(b.g, n);
  for (size_t k = 0; k < c.num_outputs; ++k) {
    Tensor& t = b.g.tensor(n.outputs[k]);
    t.dtype = types[k].dtype;
    t.shape = types[k].shape;
    t.shape_known = true;
  }
  b.node = b.g.add_node(std::move(n));
  for (TensorId o : b.g.node(b.node).outputs) b.g.outputs.push_back(o);
  return b;
}

/// L = sum_k <out_k, R_k> with input `which` replaced by `x`.
double loss_at(const Built& b, const GradCase& c, const std::vector<std::vector<double>>& r,
               size_t which, const std::vector<double>& x) {
  Interpreter it(b.g, /*seed=*/7, /*step=*/3);
  it.set(b.in[which], encode(b.g.tensor(b.in[which]).dtype, x));
  it.run();
  double l = 0;
  for (size_t j = 0; j < c.loss_outputs.size(); ++j) {
    TensorId o = b.g.node(b.node).outputs[c.loss_outputs[j]];
    std::vector<double> v = decode(b.g.tensor(o).dtype, it.get(o));
    for (size_t i = 0; i < v.size(); ++i) l += v[i] * r[j][i];
  }
  return l;
}

void check_case(const GradCase& c) {
  SCOPED_TRACE(c.name);
  GradFn rule = find_grad_rule(c.op);
  ASSERT_NE(rule, nullptr) << "no gradient rule for " << c.op;
  Built b = build(c, 0x5eed ^ std::hash<std::string>{}(c.name));
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(-1, 1);

  // Upstream gradients R_k as constants.
  const Node fwd = b.g.node(b.node);
  std::vector<TensorId> out_grads(fwd.outputs.size());
  std::vector<std::vector<double>> r;
  for (size_t k : c.loss_outputs) {
    const Tensor& o = b.g.tensor(fwd.outputs[k]);
    ASSERT_TRUE(is_float(o.dtype)) << "loss output " << k << " is not float";
    std::vector<double> v(static_cast<size_t>(o.numel()));
    for (double& x : v) x = u(rng);
    Tensor t;
    t.name = "R" + std::to_string(k);
    t.role = Role::constant;
    t.dtype = o.dtype;
    t.shape = o.shape;
    t.shape_known = true;
    t.data = std::make_shared<const std::vector<uint8_t>>(encode(o.dtype, v));
    out_grads[k] = b.g.add_tensor(std::move(t));
    r.push_back(v);
  }
  std::vector<char> needs(fwd.inputs.size(), 0);
  for (size_t i = 0; i < c.inputs.size(); ++i)
    needs[i] = !c.inputs[i].omitted && c.inputs[i].kind == InputSpec::random &&
               c.inputs[i].differentiable && is_float(c.inputs[i].dtype);

  Graph analytic = b.g;  // keep the forward-only graph for finite differences
  GradCtx ctx(analytic, b.node, out_grads, needs, "grad");
  rule(ctx);
  std::vector<TensorId> grads = ctx.input_grads();
  for (size_t i = 0; i < needs.size(); ++i) {
    if (!needs[i]) continue;
    ASSERT_TRUE(grads[i].valid()) << "rule gave no gradient for input " << i;
    analytic.outputs.push_back(grads[i]);
  }
  verify(analytic, {.require_shapes = true});
  Interpreter it(analytic, 7, 3);
  it.run();

  const double h = 1e-6;
  for (size_t i = 0; i < needs.size(); ++i) {
    if (!needs[i]) continue;
    std::vector<double> g = decode(analytic.tensor(grads[i]).dtype, it.get(grads[i]));
    std::vector<double> x = b.values[i];
    ASSERT_EQ(g.size(), x.size());
    for (size_t e = 0; e < x.size(); ++e) {
      double keep = x[e];
      x[e] = keep + h;
      double lp = loss_at(b, c, r, i, x);
      x[e] = keep - h;
      double lm = loss_at(b, c, r, i, x);
      x[e] = keep;
      double num = (lp - lm) / (2 * h);
      ASSERT_NEAR(g[e], num, c.tol * (1 + std::abs(num)))
          << "input " << i << " element " << e << " of " << x.size();
    }
  }
}

class GradCheck : public ::testing::TestWithParam<GradCase> {};

TEST_P(GradCheck, MatchesFiniteDifferences) { check_case(GetParam()); }

INSTANTIATE_TEST_SUITE_P(AllRules, GradCheck, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<GradCase>& info) {
                           std::string s;
                           for (char ch : info.param.name)
                             s += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return s;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GradCheck);

TEST(GradCheckCoverage, EveryRuleHasACase) {
  std::set<std::string> covered;
  for (const GradCase& c : all_cases()) covered.insert(c.op);
  for (std::string_view op : grad_rule_ops())
    EXPECT_TRUE(covered.count(std::string(op)))
        << "op " << op << " has a gradient rule but no gradient-check case";
}

TEST(GradCheckCoverage, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const GradCase& c : all_cases()) EXPECT_TRUE(names.insert(c.name).second) << c.name;
}

}  // namespace
}  // namespace memplan::gradcheck
