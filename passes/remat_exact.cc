// Checkmate's MILP for rematerialization, solved with CBC.
//
// Variables (n nodes, stages t = 0..n-1, M_i = bytes of i / scale):
//   R[t][i] in {0,1}, i <= t   node i is computed in stage t (R[t][t] = 1)
//   S[t][i] in {0,1}, i <  t   i's output is in memory entering stage t
//   F[t][i][k] in [0,1], k <= t, i in deps(k) + {k}
//                              i's output is freed right after k runs in t
//   U[t][k] >= 0, k <= t       memory (less fixed) while k runs in stage t
// Objective: minimize sum over t, i < t of cost_i * R[t][i].
// Constraints:
//   R[t][k] <= R[t][j] + S[t][j]          for each dep j of k (j is present)
//   S[t+1][i] <= R[t][i] + S[t][i]         (kept only what was there)
//   F[t][i][k] <= R[t][k]                  (frees happen after a run of k)
//   F[t][i][k] <= 1 - S[t+1][i]            (not if kept into the next stage)
//   F[t][i][k] <= 1 - R[t][j]              for users j of i with k < j <= t
//   U[t][0] = sum_{i<t} M_i S[t][i] + M_0 R[t][0]
//   U[t][k] = U[t][k-1] - sum_{i in deps(k-1)+{k-1}} M_i F[t][i][k-1] + M_k R[t][k]
//   U[t][k] <= (budget - fixed) / scale
// Checkmate linearizes F = R[t][k] * (1 - S[t+1][i]) * prod (1 - R[t][j]) with
// binary F and a hazard count; here F is continuous with only the upper
// bounds: when all of them are 1 the solver may free (and will if memory is
// tight), otherwise F = 0; a partial free only over-counts memory, so the
// optimum is the same with far fewer integer variables.
//   R[t][i] + S[t][i] <= 1                 (eager freeing drops it before)
//   S[t][i] <= S[t+1][i] + sum_{users j <= t} R[t][j]  (held only if read)
// Fixings: non-recomputable i: R[t][i] = 0 for t != i, and for t >
// recompute_until; keep_to_end i:
// S[t][i] = 1 for t > i, never freed, never recomputed; S[t][i] = 0 when no
// user of i can run in stage t or later (holding it is useless).
//
// The model's memory never under-counts simulate_remat's eager freeing: any
// output the simulator holds at a run is held in the model too, so a schedule
// read from R replays within the model's bound (up to solver tolerances,
// which the caller checks by simulation).
#include "passes/remat_exact.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <CbcModel.hpp>
#include <CbcSolver.hpp>
#include <CoinPackedMatrix.hpp>
#include <OsiClpSolverInterface.hpp>
#include <fmt/format.h>

namespace memplan {
namespace {

/// A MILP in triplet form.
struct Milp {
  std::vector<double> collb, colub, obj;
  std::vector<int> integers;
  std::vector<int> ri, ci;
  std::vector<double> el;
  std::vector<double> rowlb, rowub;

  int col(double lb, double ub, double c, bool integer) {
    collb.push_back(lb);
    colub.push_back(ub);
    obj.push_back(c);
    int id = static_cast<int>(collb.size()) - 1;
    if (integer) integers.push_back(id);
    return id;
  }
  int row(double lb, double ub) {
    rowlb.push_back(lb);
    rowub.push_back(ub);
    return static_cast<int>(rowlb.size()) - 1;
  }
  void coef(int r, int c, double v) {
    ri.push_back(r);
    ci.push_back(c);
    el.push_back(v);
  }
};

using Stages = std::vector<std::vector<int32_t>>;

struct Vars {
  std::vector<std::vector<int>> R, S;  // R[t][i], S[t][i]; -1 when absent
  std::vector<std::vector<int>> U;     // U[t][k], k <= t
  struct Free {
    int t, k, i, col;
  };
  std::vector<Free> F;  // in (t, k) order
  double scale = 1;     // bytes per model unit
};

std::vector<std::vector<int32_t>> unique_deps(const RematProblem& p) {
  std::vector<std::vector<int32_t>> deps(p.nodes.size());
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    deps[i] = p.nodes[i].deps;
    std::sort(deps[i].begin(), deps[i].end());
    deps[i].erase(std::unique(deps[i].begin(), deps[i].end()), deps[i].end());
  }
  return deps;
}

/// Builds the model above with memory capacity `cap` (in scaled units).
Vars build(const RematProblem& p, double scale, double cap, Milp& m) {
  const int n = static_cast<int>(p.nodes.size());
  const auto deps = unique_deps(p);
  std::vector<std::vector<int>> users(static_cast<size_t>(n));
  // last_need[i]: the last stage in which a user of i may run (a user that
  // can be recomputed may run in any later stage).
  std::vector<int> last_need(static_cast<size_t>(n), -1);
  for (int k = 0; k < n; ++k) {
    const RematNode& nk = p.nodes[static_cast<size_t>(k)];
    int last_run = nk.recomputable && !nk.keep_to_end ? n - 1 : k;
    for (int32_t j : deps[static_cast<size_t>(k)]) {
      users[static_cast<size_t>(j)].push_back(k);
      last_need[static_cast<size_t>(j)] = std::max(last_need[static_cast<size_t>(j)], last_run);
    }
  }
  auto node = [&](int i) -> const RematNode& { return p.nodes[static_cast<size_t>(i)]; };
  auto M = [&](int i) { return static_cast<double>(node(i).bytes) / scale; };

  Vars v;
  v.scale = scale;
  v.R.assign(static_cast<size_t>(n), std::vector<int>(static_cast<size_t>(n), -1));
  v.S = v.R;
  v.U = v.R;
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i <= t; ++i) {
      bool fixed_off = i != t && (!node(i).recomputable || node(i).keep_to_end || t > node(i).recompute_until);
      double lb = i == t ? 1 : 0, ub = fixed_off ? 0 : 1;
      v.R[t][i] = m.col(lb, ub, i == t ? 0 : node(i).cost, true);
    }
    for (int i = 0; i < t; ++i) {
      bool keep = node(i).keep_to_end;
      bool useless = !keep && last_need[static_cast<size_t>(i)] < t;
      v.S[t][i] = m.col(keep ? 1 : 0, useless ? 0 : 1, 0, true);
    }
  }

  for (int t = 0; t < n; ++t) {
    const auto& R = v.R[static_cast<size_t>(t)];
    const auto& S = v.S[static_cast<size_t>(t)];
    // Dependencies present: R[t][k] - R[t][j] - S[t][j] <= 0.
    for (int k = 0; k <= t; ++k) {
      for (int32_t j : deps[static_cast<size_t>(k)]) {
        int r = m.row(-COIN_DBL_MAX, 0);
        m.coef(r, R[k], 1);
        m.coef(r, R[j], -1);
        m.coef(r, S[j], -1);
      }
    }
    // Kept only what was there: S[t+1][i] - R[t][i] - S[t][i] <= 0.
    if (t + 1 < n) {
      for (int i = 0; i < t; ++i) {
        int r = m.row(-COIN_DBL_MAX, 0);
        m.coef(r, v.S[static_cast<size_t>(t + 1)][i], 1);
        m.coef(r, R[i], -1);
        m.coef(r, S[i], -1);
      }
    }
    // Reductions the simulator's eager freeing implies (and encode() meets):
    // never recompute an output that is held, and hold one entering stage t
    // only if stage t reads it or it is kept into stage t+1.
    for (int i = 0; i < t; ++i) {
      if (node(i).keep_to_end) continue;
      int r = m.row(-COIN_DBL_MAX, 1);
      m.coef(r, R[i], 1);
      m.coef(r, S[i], 1);
      int r2 = m.row(-COIN_DBL_MAX, 0);
      m.coef(r2, S[i], 1);
      if (t + 1 < n) m.coef(r2, v.S[static_cast<size_t>(t + 1)][i], -1);
      for (int j : users[static_cast<size_t>(i)]) {
        if (j <= t) m.coef(r2, R[j], -1);
      }
    }
    // Memory: U[t][k] rows, with the frees after k-1.
    int u_prev = -1;
    std::vector<std::pair<int, int>> frees_prev;  // (F column, freed node) after k-1
    for (int k = 0; k <= t; ++k) {
      int u = m.col(0, cap, 0, false);
      v.U[static_cast<size_t>(t)][static_cast<size_t>(k)] = u;
      int r = m.row(0, 0);
      m.coef(r, u, 1);
      if (k == 0) {
        for (int i = 0; i < t; ++i) m.coef(r, S[i], -M(i));
      } else {
        m.coef(r, u_prev, -1);
        for (auto [f, i] : frees_prev) m.coef(r, f, M(i));
      }
      m.coef(r, R[k], -M(k));
      u_prev = u;

      // Frees after k runs: its inputs and its own output.
      frees_prev.clear();
      std::vector<int32_t> freeable = deps[static_cast<size_t>(k)];
      freeable.push_back(k);
      for (int32_t i : freeable) {
        if (node(i).keep_to_end) continue;
        int f = m.col(0, 1, 0, false);
        frees_prev.emplace_back(f, i);
        v.F.push_back({t, k, i, f});
        int r1 = m.row(-COIN_DBL_MAX, 0);  // F <= R[t][k]
        m.coef(r1, f, 1);
        m.coef(r1, R[k], -1);
        if (t + 1 < n && i < t + 1) {  // F + S[t+1][i] <= 1
          int r2 = m.row(-COIN_DBL_MAX, 1);
          m.coef(r2, f, 1);
          m.coef(r2, v.S[static_cast<size_t>(t + 1)][i], 1);
        }
        for (int j : users[static_cast<size_t>(i)]) {  // F + R[t][j] <= 1 for later users in t
          if (j <= k || j > t) continue;
          int r3 = m.row(-COIN_DBL_MAX, 1);
          m.coef(r3, f, 1);
          m.coef(r3, R[j], 1);
        }
      }
    }
  }
  return v;
}

/// The model's values for a schedule that runs nodes in index order, each at
/// most once per stage: S from the first event of each output at or after
/// the stage (held iff a read comes before any recompute), F as large as
/// allowed, U by the recursion. Empty when the schedule is not of that form
/// or does not fit the model's bounds (a CBC start must be feasible).
std::vector<double> encode(const RematProblem& p, const Vars& v, const Milp& m, const Stages& stages) {
  const size_t n = p.nodes.size();
  const auto deps = unique_deps(p);
  std::vector<double> x(m.collb.size(), 0.0);
  std::vector<std::vector<bool>> run(n, std::vector<bool>(n, false));
  for (size_t t = 0; t < n; ++t) {
    for (size_t a = 0; a < stages[t].size(); ++a) {
      auto i = static_cast<size_t>(stages[t][a]);
      if (i > t || (a > 0 && stages[t][a - 1] >= stages[t][a])) return {};
      run[t][i] = true;
      x[static_cast<size_t>(v.R[t][i])] = 1;
    }
  }
  auto reads_in = [&](size_t s, size_t i) {
    for (size_t j = i + 1; j <= s; ++j) {
      if (run[s][j] && std::binary_search(deps[j].begin(), deps[j].end(), static_cast<int32_t>(i))) return true;
    }
    return false;
  };
  std::vector<std::vector<bool>> held(n + 1, std::vector<bool>(n, false));  // held[t][i]: S[t][i]
  for (size_t i = 0; i < n; ++i) {
    for (size_t t = i + 1; t < n; ++t) {
      bool h = p.nodes[i].keep_to_end;
      for (size_t s = t; s < n && !h; ++s) {
        if (run[s][i]) break;
        if (reads_in(s, i)) h = true;
      }
      held[t][i] = h;
      x[static_cast<size_t>(v.S[t][i])] = h ? 1 : 0;
    }
  }
  for (const auto& f : v.F) {
    auto t = static_cast<size_t>(f.t), k = static_cast<size_t>(f.k), i = static_cast<size_t>(f.i);
    bool free = run[t][k] && !held[t + 1][i];
    for (size_t j = k + 1; j <= t && free; ++j) {
      if (run[t][j] && std::binary_search(deps[j].begin(), deps[j].end(), static_cast<int32_t>(i))) free = false;
    }
    x[static_cast<size_t>(f.col)] = free ? 1 : 0;
  }
  // U by the recursion, reading F in (t, k) order.
  size_t fi = 0;
  for (size_t t = 0; t < n; ++t) {
    double u = 0;
    for (size_t i = 0; i < t; ++i) u += x[static_cast<size_t>(v.S[t][i])] * static_cast<double>(p.nodes[i].bytes);
    for (size_t k = 0; k <= t; ++k) {
      if (run[t][k]) u += static_cast<double>(p.nodes[k].bytes);
      const auto col = static_cast<size_t>(v.U[t][k]);
      x[col] = u / v.scale;
      for (; fi < v.F.size() && static_cast<size_t>(v.F[fi].t) == t && static_cast<size_t>(v.F[fi].k) == k; ++fi) {
        u -= x[static_cast<size_t>(v.F[fi].col)] * static_cast<double>(p.nodes[static_cast<size_t>(v.F[fi].i)].bytes);
      }
    }
  }
  for (size_t c = 0; c < x.size(); ++c) {
    if (x[c] < m.collb[c] - 1e-9 || x[c] > m.colub[c] + 1e-9) return {};
  }
  return x;
}

/// Recompute-all: stage t reruns every ancestor of t reachable through
/// recomputable outputs (non-recomputable and keep_to_end outputs stay held).
/// Slow but lean: a start for CBC when no recomputation is too big.
Stages recompute_all_stages(const RematProblem& p) {
  const size_t n = p.nodes.size();
  Stages stages(n);
  for (size_t t = 0; t < n; ++t) {
    std::vector<bool> need(n, false);
    need[t] = true;
    for (size_t k = t + 1; k-- > 0;) {
      if (!need[k]) continue;
      for (int32_t j : p.nodes[k].deps) {
        const RematNode& nj = p.nodes[static_cast<size_t>(j)];
        if (nj.recomputable && !nj.keep_to_end) need[static_cast<size_t>(j)] = true;
      }
    }
    for (size_t k = 0; k <= t; ++k) {
      if (need[k]) stages[t].push_back(static_cast<int32_t>(k));
    }
  }
  return stages;
}

/// Whether x satisfies every row of m (within 1e-6 per unit).
bool satisfies_rows(const Milp& m, const std::vector<double>& x) {
  std::vector<double> act(m.rowlb.size(), 0.0);
  for (size_t e = 0; e < m.el.size(); ++e) act[static_cast<size_t>(m.ri[e])] += m.el[e] * x[static_cast<size_t>(m.ci[e])];
  for (size_t r = 0; r < act.size(); ++r) {
    if (act[r] < m.rowlb[r] - 1e-6 || act[r] > m.rowub[r] + 1e-6) return false;
  }
  return true;
}

struct CbcResult {
  bool has_solution = false;
  bool proven_optimal = false;
  bool proven_infeasible = false;
  bool time_limit = false;
  std::vector<double> x;
  double seconds = 0;
};

CbcResult run_cbc(const Milp& m, const ExactOptions& opts, const std::vector<double>& start_x) {
  auto t0 = std::chrono::steady_clock::now();
  const int ncols = static_cast<int>(m.collb.size()), nrows = static_cast<int>(m.rowlb.size());
  CoinPackedMatrix matrix(true, m.ri.data(), m.ci.data(), m.el.data(), static_cast<CoinBigIndex>(m.el.size()));
  // Trailing empty rows/columns are not implied by triplets: size explicitly.
  matrix.setDimensions(nrows, ncols);
  OsiClpSolverInterface solver;
  solver.messageHandler()->setLogLevel(0);
  solver.loadProblem(matrix, m.collb.data(), m.colub.data(), m.obj.data(), m.rowlb.data(), m.rowub.data());
  solver.setInteger(m.integers.data(), static_cast<int>(m.integers.size()));
  solver.setObjSense(1.0);

  CbcModel model(solver);
  model.setLogLevel(0);
  model.messageHandler()->setLogLevel(0);
  CbcMain0(model);
  model.setLogLevel(0);
  if (!start_x.empty()) {
    double obj = 0;
    for (size_t c = 0; c < start_x.size(); ++c) obj += start_x[c] * m.obj[c];
    model.setBestSolution(start_x.data(), ncols, obj, true);
  }
  std::string sec = fmt::format("{}", std::max(0.01, opts.time_limit_s));
  std::string threads = fmt::format("{}", std::max(1, opts.threads));
  std::vector<const char*> argv = {"memplan", "-log", "0", "-slog", "0", "-timeMode", "elapsed", "-seconds", sec.c_str(), "-ratioGap", "0"};
  if (opts.threads > 1) {
    argv.push_back("-threads");
    argv.push_back(threads.c_str());
  }
  argv.push_back("-solve");
  argv.push_back("-quit");
  CbcMain1(static_cast<int>(argv.size()), argv.data(), model);

  CbcResult res;
  res.proven_optimal = model.isProvenOptimal();
  res.proven_infeasible = model.isProvenInfeasible();
  res.time_limit = model.isSecondsLimitReached();
  if (const double* best = model.bestSolution(); best != nullptr) {
    res.has_solution = true;
    res.x.assign(best, best + ncols);
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

Stages read_stages(const Vars& v, const std::vector<double>& x) {
  const size_t n = v.R.size();
  Stages stages(n);
  for (size_t t = 0; t < n; ++t) {
    for (size_t i = 0; i <= t; ++i) {
      if (x[static_cast<size_t>(v.R[t][i])] > 0.5) stages[t].push_back(static_cast<int32_t>(i));
    }
  }
  return stages;
}

}  // namespace

int64_t remat_floor(const RematProblem& p) {
  const auto deps = unique_deps(p);
  const size_t n = p.nodes.size();
  std::vector<int> last_user(n, -1);
  for (size_t k = 0; k < n; ++k) {
    for (int32_t j : deps[k]) last_user[static_cast<size_t>(j)] = std::max(last_user[static_cast<size_t>(j)], static_cast<int>(k));
  }
  int64_t floor = p.fixed_bytes;
  for (size_t v = 0; v < n; ++v) {
    int64_t need = p.nodes[v].bytes;
    for (size_t u = 0; u < v; ++u) {
      const RematNode& nu = p.nodes[u];
      bool input = std::binary_search(deps[v].begin(), deps[v].end(), static_cast<int32_t>(u));
      bool forced = nu.keep_to_end || (!nu.recomputable && last_user[u] > static_cast<int>(v));
      if (input || forced) need += nu.bytes;
    }
    floor = std::max(floor, p.fixed_bytes + need);
  }
  return floor;
}

RematSolution solve_remat_exact(const RematProblem& p, const ExactOptions& opts) {
  RematSolution sol;
  RematSimulation base = simulate_remat(p, no_remat_stages(p));
  if (!base.valid) {
    sol.note = "invalid problem: " + base.error;
    return sol;
  }
  if (base.peak <= p.budget) {
    sol.feasible = true;
    sol.proven_optimal = true;
    sol.stages = no_remat_stages(p);
    sol.peak = base.peak;
    sol.note = "no recomputation needed";
    return sol;
  }
  const int64_t floor = remat_floor(p);
  if (p.budget < floor) {
    sol.note = fmt::format("infeasible: floor is {} bytes", floor);
    return sol;
  }

  int64_t max_bytes = 1;
  for (const auto& node : p.nodes) max_bytes = std::max(max_bytes, node.bytes);
  const auto scale = static_cast<double>(max_bytes);
  // Integer byte counts: a replay is within budget iff it is within budget + 0.5.
  double cap = (static_cast<double>(p.budget - p.fixed_bytes) + 0.5) / scale;
  bool tightened = false;
  double total_s = 0;
  const Stages lean = recompute_all_stages(p);
  for (int attempt = 0; attempt < 4; ++attempt) {
    Milp m;
    Vars v = build(p, scale, cap, m);
    std::vector<double> start_x;
    for (const Stages* cand : {&opts.start, &lean}) {
      if (!start_x.empty() || cand->empty()) continue;
      RematSimulation cs = simulate_remat(p, *cand);
      if (cs.valid && cs.peak <= p.budget) start_x = encode(p, v, m, *cand);
    }
    // encode() mirrors the model; a start that breaks a row would mean they
    // disagree, so it is dropped rather than handed to CBC.
    if (!start_x.empty() && !satisfies_rows(m, start_x)) {
      start_x.clear();
    }
    ExactOptions left = opts;  // retries share the one time limit
    left.time_limit_s = std::max(0.5, opts.time_limit_s - total_s);
    CbcResult r = run_cbc(m, left, start_x);
    total_s += r.seconds;
    std::string size = fmt::format("{} rows, {} columns ({} integer)", m.rowlb.size(), m.collb.size(), m.integers.size());
    if (!r.has_solution) {
      if (r.proven_infeasible && !tightened) {
        sol.note = fmt::format("infeasible: no schedule fits (proven by CBC in {:.2f} s); floor is {} bytes", total_s, floor);
      } else {
        sol.note = fmt::format("no solution found within {:.2f} s ({}); floor is {} bytes", total_s, size, floor);
      }
      return sol;
    }
    sol.stages = read_stages(v, r.x);
    RematSimulation sim = simulate_remat(p, sol.stages);
    if (!sim.valid) {
      sol.note = "internal error: CBC's schedule does not replay: " + sim.error;
      sol.stages.clear();
      return sol;
    }
    if (sim.peak > p.budget) {  // solver tolerance: tighten by the excess and retry
      cap -= (static_cast<double>(sim.peak - p.budget) + 0.5) / scale;
      tightened = true;
      continue;
    }
    sol.feasible = true;
    sol.proven_optimal = r.proven_optimal && !tightened;
    sol.peak = sim.peak;
    sol.extra_cost = sim.extra_cost;
    sol.note = fmt::format("CBC: {} in {:.2f} s ({})", sol.proven_optimal ? "optimal" : (r.time_limit ? "time limit reached" : "not proven optimal"), total_s, size);
    return sol;
  }
  sol.stages.clear();
  sol.note = "CBC's schedules kept exceeding the budget after tightening (numerical trouble)";
  return sol;
}

}  // namespace memplan
