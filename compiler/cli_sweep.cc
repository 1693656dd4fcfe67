// `memplan sweep`: compile one model at several budgets, or find the largest
// value of a dim that fits one budget.
//
//   memplan sweep MODEL --budgets 8GiB,16GiB,80GiB [compile flags]
//       one row per budget: fits, k, precision mix, recomputations, peak,
//       estimated step time and slowdown against the unconstrained plan;
//   memplan sweep MODEL --budget 16GiB --dim seq=128:4096 [compile flags]
//       bisection over seq in [128, 4096] (assumes a larger value never needs
//       less memory), a row per probe, then the largest value that fits.
#include <fmt/format.h>

#include <ostream>

#include "compiler/autodiff.h"
#include "compiler/cli_internal.h"
#include "compiler/size_parse.h"
#include "passes/bind_dims.h"

namespace memplan {

namespace {

struct Row {
  bool fits = false;
  Plan plan;
  std::string why;  // when it does not fit
};

/// Compiles; a budget that cannot be met is a row, not an error.
Row try_compile(const std::string& model, const CompileOptions& o) {
  Row r;
  try {
    r.plan = compile_model(model, o).plan;
    r.fits = true;
  } catch (const Error& e) {
    const std::string m = e.what();
    const size_t at = m.find("cannot fit ");
    if (at == std::string::npos) throw;
    r.why = m.substr(at);
  }
  return r;
}

std::string smallest_from(const std::string& why) {
  const std::string key = "the smallest budget found that fits is ";
  const size_t at = why.find(key);
  if (at == std::string::npos) return "-";
  return human(std::stoll(why.substr(at + key.size())));
}

void header(std::ostream& out, const std::string& first) {
  out << fmt::format("{:>12}  {:<4} {:>3} {:<9} {:>10} {:>12} {:>12} {:>9}\n", first, "fits", "k",
                     "precision", "recomputes", "peak", "est. step", "slowdown");
}

void row(std::ostream& out, const std::string& first, const Row& r) {
  if (!r.fits) {
    out << fmt::format("{:>12}  {:<4} {:>3} {:<9} {:>10} {:>12} {:>12} {:>9}  smallest that fits: {}\n",
                       first, "no", "-", "-", "-", "-", "-", "-", smallest_from(r.why));
    return;
  }
  const PlanDecisions& d = *r.plan.decisions;
  const std::string prec =
      d.precision == "fp32" ? "fp32" : fmt::format("{} ({} ops)", d.precision, d.ops_low_precision);
  out << fmt::format("{:>12}  {:<4} {:>3} {:<9} {:>10} {:>12} {:>12} {:>8.2f}x\n", first, "yes",
                     d.micro_batches, prec, d.recomputed.size(), human(r.plan.summary.peak_bytes),
                     fmt::format("{:.3f} ms", d.step_seconds * 1e3),
                     d.unconstrained_step_seconds > 0 ? d.step_seconds / d.unconstrained_step_seconds
                                                      : 1.0);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> r;
  size_t b = 0;
  for (size_t e; (e = s.find(sep, b)) != std::string::npos; b = e + 1) r.push_back(s.substr(b, e - b));
  r.push_back(s.substr(b));
  return r;
}

}  // namespace

int do_sweep(const SweepArgs& a, std::ostream& out, std::ostream& err) {
  if (a.compile.mode != "training")
    throw Error("sweep plans training steps; --mode " + a.compile.mode + " is not supported");
  // A --dim NAME=LO:HI is the range to search; the other --dim flags bind.
  CompileArgs ca = a.compile;
  std::string range_dim;
  int64_t lo = 0, hi = 0;
  ca.dims.clear();
  for (const std::string& d : a.compile.dims) {
    const size_t eq = d.find('='), colon = d.find(':');
    if (colon == std::string::npos || eq == std::string::npos || colon < eq) {
      ca.dims.push_back(d);
      continue;
    }
    if (!range_dim.empty()) throw Error("--dim: only one dim may be a range LO:HI, got two");
    range_dim = d.substr(0, eq);
    const std::string l = d.substr(eq + 1, colon - eq - 1), h = d.substr(colon + 1);
    lo = parse_dim_flag(range_dim + "=" + l).second;
    hi = parse_dim_flag(range_dim + "=" + h).second;
    if (lo > hi) throw Error("--dim " + d + ": the range's low end is above its high end");
  }
  CompileOptions o = compile_options(ca);
  const KeepZeroData keep_zeros;  // every row builds the same optimizer states

  if (range_dim.empty()) {
    if (a.budgets.empty())
      throw Error("sweep needs --budgets A,B,... or --budget B with --dim NAME=LO:HI");
    if (!a.budget.empty()) throw Error("--budget is for a dim search; with --budgets give only the list");
    header(out, "budget");
    for (const std::string& b : split(a.budgets, ',')) {
      o.budget_bytes = parse_size(b, "--budgets");
      row(out, human(*o.budget_bytes), try_compile(a.compile.model, o));
    }
    return 0;
  }
  if (a.budget.empty()) throw Error("--dim " + range_dim + "=LO:HI needs --budget (the one to fit)");
  if (!a.budgets.empty()) throw Error("a dim search takes one --budget, not --budgets");
  o.budget_bytes = parse_size(a.budget, "--budget");
  header(out, range_dim);
  auto probe = [&](int64_t v) {
    o.dims[range_dim] = v;
    Row r = try_compile(a.compile.model, o);
    row(out, std::to_string(v), r);
    return r.fits;
  };
  if (!probe(lo)) {
    out << fmt::format("no value of {} in [{}, {}] fits {}\n", range_dim, lo, hi, human(*o.budget_bytes));
    return 1;
  }
  int64_t best = lo;
  if (hi > lo && probe(hi)) {
    best = hi;
  } else {
    int64_t bad = hi;  // fits at best, not at bad
    while (bad - best > 1) {
      const int64_t mid = best + (bad - best) / 2;
      (probe(mid) ? best : bad) = mid;
    }
  }
  out << fmt::format("largest {} that fits {}: {}\n", range_dim, human(*o.budget_bytes), best);
  return 0;
}

}  // namespace memplan
