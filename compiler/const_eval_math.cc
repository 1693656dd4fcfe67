// Constant folding of elementwise math, comparisons, logic and reductions.
//
// Float dtypes compute in double, integer dtypes in int64 (wrapping, like the
// fixed-width runtime types after store() narrows them). Integer Div
// truncates toward zero, as the ONNX reference implementation does
// (np.divide then astype) and as ONNX Runtime does; division by zero is an
// Error. Integer Mod follows the sign of the divisor (Python %) unless
// fmod=1, which follows the dividend (C fmod).
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/const_eval_impl.h"
#include "compiler/ops_common.h"

namespace memplan::ceval {

namespace {

[[noreturn]] void fail(const Node& n, const std::string& msg) {
  throw Error(node_desc(n) + ": " + msg);
}

int64_t wrap_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t wrap_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t wrap_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

double py_fmod(double a, double b) {
  const double m = std::fmod(a, b);
  return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m;
}

double unary_f(const Node& n, double x) {
  const std::string& op = n.op;
  if (op == "Neg") return -x;
  if (op == "Abs") return std::fabs(x);
  if (op == "Sqrt") return std::sqrt(x);
  if (op == "Reciprocal") return 1.0 / x;
  if (op == "Exp") return std::exp(x);
  if (op == "Log") return std::log(x);
  if (op == "Floor") return std::floor(x);
  if (op == "Ceil") return std::ceil(x);
  if (op == "Round") return std::nearbyint(x);  // half to even
  if (op == "Sigmoid") return 1.0 / (1.0 + std::exp(-x));
  if (op == "Tanh") return std::tanh(x);
  if (op == "Erf") return std::erf(x);
  if (op == "Relu") return x > 0 ? x : 0.0;
  if (op == "Sign") return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0);
  if (op == "Sin") return std::sin(x);
  if (op == "Cos") return std::cos(x);
  throw InternalError("unary_f: " + op);
}

std::optional<int64_t> unary_i(const std::string& op, int64_t x) {
  if (op == "Neg") return wrap_sub(0, x);
  if (op == "Abs") return x < 0 ? wrap_sub(0, x) : x;
  if (op == "Relu") return x > 0 ? x : 0;
  if (op == "Sign") return (x > 0) - (x < 0);
  if (op == "Floor" || op == "Ceil" || op == "Round") return x;
  return std::nullopt;
}

bool is_unary(const std::string& op) {
  static const char* const k[] = {"Neg",  "Abs",  "Sqrt", "Reciprocal", "Exp", "Log",
                                  "Floor", "Ceil", "Round", "Sigmoid", "Tanh", "Erf",
                                  "Relu", "Sign", "Sin", "Cos"};
  return std::find(std::begin(k), std::end(k), op) != std::end(k);
}

std::optional<Val> unary(const Node& n, const Val& x, const TensorType& out) {
  Val r = Val::make(x.dtype, out.shape);
  if (x.fl) {
    for (double v : x.f) r.f.push_back(unary_f(n, v));
    return r;
  }
  for (int64_t v : x.i) {
    auto y = unary_i(n.op, v);
    if (!y) return std::nullopt;  // e.g. Sqrt of an integer tensor: not valid ONNX
    r.i.push_back(*y);
  }
  return r;
}

double binary_f(const Node& n, double a, double b) {
  const std::string& op = n.op;
  if (op == "Add" || op == "Sum" || op == "Mean") return a + b;
  if (op == "Sub") return a - b;
  if (op == "Mul") return a * b;
  if (op == "Div") return a / b;
  if (op == "Pow") return std::pow(a, b);
  if (op == "Min") return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b);
  if (op == "Max") return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b);
  if (op == "Mod") return attr_int(n, "fmod", 0) ? std::fmod(a, b) : py_fmod(a, b);
  throw InternalError("binary_f: " + op);
}

int64_t binary_i(const Node& n, int64_t a, int64_t b) {
  const std::string& op = n.op;
  if (op == "Add" || op == "Sum" || op == "Mean") return wrap_add(a, b);
  if (op == "Sub") return wrap_sub(a, b);
  if (op == "Mul") return wrap_mul(a, b);
  if (op == "Min") return std::min(a, b);
  if (op == "Max") return std::max(a, b);
  if (op == "Div" || op == "Mod") {
    if (b == 0) fail(n, "integer division by zero");
    if (b == -1) return op == "Div" ? wrap_sub(0, a) : 0;  // avoids INT64_MIN / -1
    if (op == "Div") return a / b;                           // truncates toward zero
    const int64_t m = a % b;
    if (attr_int(n, "fmod", 0)) return m;
    return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m;
  }
  if (op == "Pow") {
    if (b < 0) return a == 1 ? 1 : (a == -1 ? (b % 2 ? -1 : 1) : 0);
    int64_t r = 1;
    for (int64_t e = 0; e < b && e < 64; ++e) r = wrap_mul(r, a);
    return r;
  }
  throw InternalError("binary_i: " + op);
}

bool is_arith(const std::string& op) {
  return op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" ||
         op == "Mod" || op == "Min" || op == "Max" || op == "Sum" || op == "Mean";
}

/// Left fold over the (broadcast) inputs; Mean divides at the end.
Val arith(const Node& n, const std::vector<Val>& in, const TensorType& out) {
  Val r = Val::make(in[0].dtype, out.shape);
  const bool fl = in[0].fl;
  std::vector<int64_t> idx = broadcast_index(out.shape, in[0].shape);
  for (int64_t k : idx) {
    if (fl)
      r.f.push_back(in[0].getf(static_cast<size_t>(k)));
    else
      r.i.push_back(in[0].geti(static_cast<size_t>(k)));
  }
  for (size_t j = 1; j < in.size(); ++j) {
    idx = broadcast_index(out.shape, in[j].shape);
    for (size_t k = 0; k < idx.size(); ++k) {
      const size_t s = static_cast<size_t>(idx[k]);
      if (fl)
        r.f[k] = binary_f(n, r.f[k], in[j].getf(s));
      else if (n.op == "Pow" && in[j].fl)  // integer base, float exponent
        r.i[k] = static_cast<int64_t>(std::pow(static_cast<double>(r.i[k]), in[j].getf(s)));
      else
        r.i[k] = binary_i(n, r.i[k], in[j].geti(s));
    }
  }
  if (n.op == "Mean") {
    const double cnt = static_cast<double>(in.size());
    for (double& v : r.f) v /= cnt;
    for (int64_t& v : r.i) v /= static_cast<int64_t>(in.size());
  }
  return r;
}

bool compare_op(const std::string& op, int cmp) {  // cmp: -1, 0, 1
  if (op == "Equal") return cmp == 0;
  if (op == "Less") return cmp < 0;
  if (op == "Greater") return cmp > 0;
  if (op == "LessOrEqual") return cmp <= 0;
  return cmp >= 0;  // GreaterOrEqual
}

std::optional<Val> compare_or_logic(const Node& n, const std::vector<Val>& in,
                                    const TensorType& out) {
  const std::string& op = n.op;
  const bool cmp = op == "Equal" || op == "Less" || op == "Greater" || op == "LessOrEqual" ||
                   op == "GreaterOrEqual";
  const bool logic = op == "And" || op == "Or" || op == "Xor";
  if (!cmp && !logic) return std::nullopt;
  Val r = Val::make(DType::boolean, out.shape);
  const std::vector<int64_t> ia = broadcast_index(out.shape, in[0].shape);
  const std::vector<int64_t> ib = broadcast_index(out.shape, in[1].shape);
  const bool fl = in[0].fl || in[1].fl;
  for (size_t k = 0; k < ia.size(); ++k) {
    const size_t a = static_cast<size_t>(ia[k]), b = static_cast<size_t>(ib[k]);
    bool v;
    if (logic) {
      const bool x = in[0].geti(a) != 0, y = in[1].geti(b) != 0;
      v = op == "And" ? (x && y) : op == "Or" ? (x || y) : (x != y);
    } else if (fl) {
      const double x = in[0].getf(a), y = in[1].getf(b);
      v = !(std::isnan(x) || std::isnan(y)) && compare_op(op, (x > y) - (x < y));
    } else {
      const int64_t x = in[0].geti(a), y = in[1].geti(b);
      v = compare_op(op, (x > y) - (x < y));
    }
    r.i.push_back(v ? 1 : 0);
  }
  return r;
}

std::optional<Val> reduce(const Graph& g, const Node& n, const Val& x, const TensorType& out) {
  const std::string& op = n.op;
  if (op.rfind("Reduce", 0) != 0) return std::nullopt;
  const std::string kind = op.substr(6);
  if (kind != "Sum" && kind != "Max" && kind != "Min" && kind != "Prod" && kind != "Mean" &&
      kind != "SumSquare" && kind != "L1" && kind != "L2")
    return std::nullopt;
  const std::vector<int64_t> axes = ops::reduce_axes(InferCtx(g, n));
  // Output flat index of each input element: the input index with reduced
  // axes zeroed, in the keepdims shape (same flat layout either way).
  Shape kept = x.shape;
  for (int64_t a : axes) kept[static_cast<size_t>(a)] = 1;
  const std::vector<int64_t> ost = strides_of(kept);
  const size_t nout = static_cast<size_t>(num_elements(kept));
  const bool fl = x.fl || kind == "L2";
  std::vector<double> accf(nout);
  std::vector<int64_t> acci(nout);
  std::vector<bool> seen(nout, false);
  const std::vector<int64_t> ist = strides_of(x.shape);
  const size_t total = x.size();
  for (size_t k = 0; k < total; ++k) {
    size_t o = 0;
    for (size_t d = 0; d < x.shape.size(); ++d) {
      const int64_t i = (static_cast<int64_t>(k) / ist[d]) % x.shape[d];
      if (kept[d] != 1) o += static_cast<size_t>(i * ost[d]);
    }
    const double vf = x.getf(k);
    const int64_t vi = x.geti(k);
    const bool first = !seen[o];
    seen[o] = true;
    if (kind == "Sum" || kind == "Mean") {
      accf[o] += vf;
      acci[o] = wrap_add(acci[o], vi);
    } else if (kind == "SumSquare" || kind == "L2") {
      accf[o] += vf * vf;
      acci[o] = wrap_add(acci[o], wrap_mul(vi, vi));
    } else if (kind == "L1") {
      accf[o] += std::fabs(vf);
      acci[o] = wrap_add(acci[o], vi < 0 ? -vi : vi);
    } else if (kind == "Prod") {
      accf[o] = first ? vf : accf[o] * vf;
      acci[o] = first ? vi : wrap_mul(acci[o], vi);
    } else if (kind == "Max") {
      accf[o] = first ? vf : std::max(accf[o], vf);
      acci[o] = first ? vi : std::max(acci[o], vi);
    } else {  // Min
      accf[o] = first ? vf : std::min(accf[o], vf);
      acci[o] = first ? vi : std::min(acci[o], vi);
    }
  }
  const double per = nout ? static_cast<double>(total) / static_cast<double>(nout) : 0;
  Val r = Val::make(x.dtype, out.shape);
  for (size_t o = 0; o < nout; ++o) {
    double f = accf[o];
    int64_t i = acci[o];
    if (kind == "Mean") {
      f /= per;
      i = per > 0 ? i / static_cast<int64_t>(per) : 0;
    }
    if (kind == "L2") {
      f = std::sqrt(f);
      i = static_cast<int64_t>(f);
    }
    if (!seen[o] && (kind == "Max" || kind == "Min")) fail(n, "reduction over an empty axis");
    if (r.fl)
      r.f.push_back(fl ? f : static_cast<double>(i));
    else
      r.i.push_back(i);
  }
  return r;
}

Val softmax(const Node& n, const Val& x, const TensorType& out) {
  const int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = attr_int(n, "axis", -1);
  if (axis < 0) axis += r;
  const int64_t dim = x.shape[static_cast<size_t>(axis)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  const int64_t outer = dim * inner != 0 ? static_cast<int64_t>(x.size()) / (dim * inner) : 0;
  Val y = Val::make(x.dtype, out.shape);
  y.f = x.f;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t q = 0; q < inner; ++q) {
      auto at = [&](int64_t j) -> double& {
        return y.f[static_cast<size_t>((o * dim + j) * inner + q)];
      };
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t j = 0; j < dim; ++j) mx = std::max(mx, at(j));
      for (int64_t j = 0; j < dim; ++j) sum += std::exp(at(j) - mx);
      for (int64_t j = 0; j < dim; ++j)
        at(j) = n.op == "Softmax" ? std::exp(at(j) - mx) / sum : at(j) - mx - std::log(sum);
    }
  return y;
}

}  // namespace

std::optional<Val> eval_math(const Graph& g, const Node& n, const std::vector<Val>& in,
                             const TensorType& out) {
  const std::string& op = n.op;
  if (is_unary(op)) return unary(n, in[0], out);
  if (op == "Not") {
    Val r = Val::make(DType::boolean, out.shape);
    for (size_t k = 0; k < in[0].size(); ++k) r.i.push_back(in[0].geti(k) ? 0 : 1);
    return r;
  }
  if (is_arith(op)) return arith(n, in, out);
  if (auto r = compare_or_logic(n, in, out)) return r;
  if ((op == "Softmax" || op == "LogSoftmax") && in[0].fl) return softmax(n, in[0], out);
  return reduce(g, n, in[0], out);
}

}  // namespace memplan::ceval
