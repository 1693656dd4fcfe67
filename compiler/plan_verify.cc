#include "compiler/plan_verify.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <set>

namespace memplan {

namespace {

int64_t round_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

/// offset + bytes without overflow: both come from the file and may be huge.
__int128 end_of(int64_t offset, int64_t bytes) {
  return static_cast<__int128>(offset) + static_cast<__int128>(bytes);
}

class Verifier {
 public:
  explicit Verifier(const Plan& p) : p_(p), n_(static_cast<int32_t>(p.tensors.size())) {}

  PlanVerifyResult run() {
    if (!check_header()) return std::move(r_);
    if (!check_tensors()) return std::move(r_);
    if (!check_total()) return std::move(r_);
    if (!check_ops()) return std::move(r_);
    check_arena();
    check_inplace();
    check_resident();
    check_summary();
    return std::move(r_);
  }

 private:
  const Plan& p_;
  int32_t n_;
  PlanVerifyResult r_;
  std::vector<int32_t> root_, start_, end_;

  void err(std::string m) {
    if (r_.errors.size() < 50) r_.errors.push_back(std::move(m));
  }
  std::string tname(int32_t t) const {
    return "tensor " + std::to_string(t) + " '" + p_.tensors[t].name + "'";
  }
  bool in_range(int32_t t) const { return t >= 0 && t < n_; }

  bool check_header() {
    if (p_.alignment <= 0 || (p_.alignment & (p_.alignment - 1)) != 0)
      err("alignment " + std::to_string(p_.alignment) + " is not a positive power of two");
    for (int32_t t : p_.inputs)
      if (!in_range(t)) err("graph input id " + std::to_string(t) + " out of range");
    for (int32_t t : p_.outputs)
      if (!in_range(t)) err("graph output id " + std::to_string(t) + " out of range");
    return r_.ok();
  }

  bool check_tensors() {
    root_.assign(n_, -1);
    for (int32_t i = 0; i < n_; ++i) {
      const PlanTensor& t = p_.tensors[i];
      int64_t expect = -1;
      try {
        expect = byte_size(t.dtype, t.shape);
      } catch (const Error& e) {
        err(tname(i) + ": " + e.what());
        continue;
      }
      if (t.bytes != expect)
        err(tname(i) + " claims " + std::to_string(t.bytes) + " bytes but " +
            std::string(dtype_name(t.dtype)) + shape_str(t.shape) + " needs " +
            std::to_string(expect));
      if (t.placement == Placement::resident &&
          !(t.role == Role::parameter || t.role == Role::state || t.role == Role::constant ||
            t.role == Role::optimizer_state))
        err(tname(i) + " has role " + std::string(role_name(t.role)) + " but is resident");
    }
    // Resolve alias chains to their roots (bounded: a chain longer than n is a loop).
    for (int32_t i = 0; i < n_; ++i) {
      int32_t cur = i;
      for (int32_t hops = 0; p_.tensors[cur].placement == Placement::alias; ++hops) {
        int32_t next = p_.tensors[cur].alias_of;
        if (!in_range(next) || hops > n_) {
          err(tname(i) + " is an alias of an invalid or cyclic tensor id " + std::to_string(next));
          cur = -1;
          break;
        }
        cur = next;
      }
      root_[i] = cur;
      if (cur >= 0 && p_.tensors[i].bytes > p_.tensors[cur].bytes)
        err(tname(i) + " (" + std::to_string(p_.tensors[i].bytes) + " bytes) views " +
            tname(cur) + " which has only " + std::to_string(p_.tensors[cur].bytes));
    }
    return r_.ok();
  }

  /// The aligned sizes of all tensors add up to at most 2^63 - 1, so the sums
  /// below (lower bound, resident bytes, per-role totals) cannot overflow.
  bool check_total() {
    constexpr int64_t kMax = INT64_MAX;
    int64_t total = 0;
    for (int32_t i = 0; i < n_; ++i) {
      const int64_t b = p_.tensors[i].bytes;
      if (b > kMax - (p_.alignment - 1) || round_up(b, p_.alignment) > kMax - total) {
        err("the tensors add up to more than 2^63 bytes (at " + tname(i) + ", " +
            std::to_string(b) + " bytes): no 64-bit plan can hold them");
        return false;
      }
      total += round_up(b, p_.alignment);
    }
    for (size_t s = 0; s < p_.ops.size(); ++s) {
      const int64_t b = p_.ops[s].workspace_bytes;
      if (b < 0 || b > kMax - (p_.alignment - 1) || round_up(b, p_.alignment) > kMax - total) {
        err("op " + std::to_string(s) + " '" + p_.ops[s].name + "' has an invalid workspace of " +
            std::to_string(b) + " bytes");
        return false;
      }
      total += round_up(b, p_.alignment);
    }
    if (!p_.ops.empty() && (p_.summary.peak_step < 0 ||
                            p_.summary.peak_step >= static_cast<int32_t>(p_.ops.size())))
      err("summary.peak_step " + std::to_string(p_.summary.peak_step) +
          " is not a step of the plan (0.." + std::to_string(p_.ops.size() - 1) + ")");
    return r_.ok();
  }

  bool check_ops() {
    const int32_t steps = static_cast<int32_t>(p_.ops.size());
    const int32_t last = std::max(0, steps - 1);
    std::vector<int32_t> written(n_, -2);  // step that writes the tensor; -1: before step 0
    for (int32_t t : p_.inputs) written[t] = -1;
    for (int32_t i = 0; i < n_; ++i)
      if (p_.tensors[i].placement == Placement::resident) written[i] = -1;
    start_.assign(n_, -1);
    end_.assign(n_, -1);
    for (int32_t t : p_.inputs) start_[root_[t]] = 0;
    for (int32_t s = 0; s < steps; ++s) {
      const PlanOp& op = p_.ops[s];
      std::string where = "op " + std::to_string(s) + " '" + op.name + "' (" + op.op + ")";
      for (int32_t t : op.inputs) {
        if (t == -1) continue;
        if (!in_range(t)) {
          err(where + " reads tensor id " + std::to_string(t) + " out of range");
          continue;
        }
        if (written[t] == -2 || written[t] >= s)
          err(where + " reads " + tname(t) + " before any op writes it");
        end_[root_[t]] = std::max(end_[root_[t]], s);
      }
      for (int32_t t : op.outputs) {
        if (t == -1) continue;
        if (!in_range(t)) {
          err(where + " writes tensor id " + std::to_string(t) + " out of range");
          continue;
        }
        if (written[t] != -2)
          err(where + " writes " + tname(t) + " which is already written (inputs and resident "
                      "tensors count as written before step 0)");
        written[t] = s;
        int32_t r = root_[t];
        if (r == t) start_[r] = s;
        end_[r] = std::max(end_[r], s);
      }
    }
    for (int32_t t : p_.outputs) {
      if (written[t] == -2) err("graph output " + tname(t) + " is never written");
      end_[root_[t]] = last;
    }
    for (int32_t i = 0; i < n_; ++i) {
      if (start_[i] < 0) start_[i] = 0;
      if (end_[i] < start_[i]) end_[i] = start_[i];
    }
    return r_.ok();
  }

  bool is_arena(int32_t i) const {
    return p_.tensors[i].placement == Placement::arena && p_.tensors[i].bytes > 0;
  }

  /// An arena occupant: a tensor or an op's workspace.
  struct Item {
    int64_t offset, bytes;
    int32_t start, end;
    std::string label;
  };

  std::vector<Item> arena_items() const {
    std::vector<Item> items;
    for (int32_t i = 0; i < n_; ++i)
      if (is_arena(i))
        items.push_back({p_.tensors[i].offset, p_.tensors[i].bytes, start_[i], end_[i], tname(i)});
    for (size_t s = 0; s < p_.ops.size(); ++s)
      if (p_.ops[s].workspace_bytes > 0)
        items.push_back({p_.ops[s].workspace_offset, p_.ops[s].workspace_bytes,
                         static_cast<int32_t>(s), static_cast<int32_t>(s),
                         "workspace of op " + std::to_string(s) + " '" + p_.ops[s].name + "'"});
    return items;
  }

  void check_arena() {
    std::vector<Item> items = arena_items();
    std::vector<std::vector<size_t>> starting(p_.ops.size() + 1), ending(p_.ops.size() + 1);
    for (size_t k = 0; k < items.size(); ++k) {
      const Item& it = items[k];
      if (it.offset < 0 || it.offset % p_.alignment != 0)
        err(it.label + " offset " + std::to_string(it.offset) +
            " is not a non-negative multiple of the alignment " + std::to_string(p_.alignment));
      if (it.offset < 0 || it.bytes < 0 || end_of(it.offset, it.bytes) > p_.summary.arena_bytes) {
        err(it.label + " [" + std::to_string(it.offset) + ", +" + std::to_string(it.bytes) +
            ") does not fit in the arena of " + std::to_string(p_.summary.arena_bytes) + " bytes");
        continue;  // reported; keeps offset + bytes in range for the sweep
      }
      starting[it.start].push_back(k);
      ending[it.end].push_back(k);
    }
    // Sweep over steps with the occupied ranges ordered by offset.
    std::map<int64_t, size_t> live;  // offset -> item
    for (size_t s = 0; s < starting.size(); ++s) {
      for (size_t k : starting[s]) {
        const Item& it = items[k];
        auto next = live.lower_bound(it.offset);
        if (next != live.end() && next->first < it.offset + it.bytes)
          overlap(it, items[next->second], static_cast<int32_t>(s));
        if (next != live.begin()) {
          auto prev = std::prev(next);
          if (prev->first + items[prev->second].bytes > it.offset)
            overlap(it, items[prev->second], static_cast<int32_t>(s));
        }
        live.emplace(it.offset, k);  // on a duplicate offset, overlap was reported
      }
      for (size_t k : ending[s]) {
        auto it = live.find(items[k].offset);
        if (it != live.end() && it->second == k) live.erase(it);
      }
    }
  }

  void overlap(const Item& a, const Item& b, int32_t step) {
    err(a.label + " and " + b.label + " overlap in the arena while both are live at step " +
        std::to_string(step));
  }

  /// The storage version a tensor reads: itself if it owns storage or was
  /// written in place, else (a view) the version it views.
  int32_t version_of(int32_t t) const {
    for (int32_t hops = 0; hops <= n_; ++hops) {
      const PlanTensor& x = p_.tensors[t];
      if (x.placement != Placement::alias || x.alias_kind == AliasKind::inplace) return t;
      t = x.alias_of;
    }
    return t;
  }

  /// In-place writes: once an op overwrites a storage version, no later op
  /// may read that version (or a view of it).
  void check_inplace() {
    std::vector<int32_t> write_step(n_, -1), next_write(n_, INT32_MAX);
    for (size_t s = 0; s < p_.ops.size(); ++s)
      for (int32_t t : p_.ops[s].outputs)
        if (t >= 0) write_step[t] = static_cast<int32_t>(s);
    for (int32_t u = 0; u < n_; ++u) {
      const PlanTensor& x = p_.tensors[u];
      if (x.placement != Placement::alias || x.alias_kind != AliasKind::inplace) continue;
      int32_t v = version_of(x.alias_of);
      if (next_write[v] != INT32_MAX)
        err(tname(v) + " is overwritten in place twice (by " + tname(u) + " and another tensor)");
      next_write[v] = std::min(next_write[v], write_step[u]);
    }
    for (size_t s = 0; s < p_.ops.size(); ++s)
      for (int32_t t : p_.ops[s].inputs) {
        if (t < 0) continue;
        int32_t v = version_of(t);
        if (next_write[v] < static_cast<int32_t>(s))
          err("op " + std::to_string(s) + " '" + p_.ops[s].name + "' reads " + tname(t) +
              " after op " + std::to_string(next_write[v]) + " overwrote its storage in place");
      }
  }

  void check_resident() {
    std::vector<std::pair<int64_t, int32_t>> res;
    for (int32_t i = 0; i < n_; ++i)
      if (p_.tensors[i].placement == Placement::resident && p_.tensors[i].bytes > 0)
        res.emplace_back(p_.tensors[i].offset, i);
    std::sort(res.begin(), res.end());
    for (size_t k = 0; k < res.size(); ++k) {
      const PlanTensor& t = p_.tensors[res[k].second];
      if (t.offset < 0 || end_of(t.offset, t.bytes) > p_.summary.resident_bytes)
        err(tname(res[k].second) + " does not fit in the resident region of " +
            std::to_string(p_.summary.resident_bytes) + " bytes");
      if (k > 0 && end_of(res[k - 1].first, p_.tensors[res[k - 1].second].bytes) > t.offset)
        err(tname(res[k].second) + " overlaps resident " + tname(res[k - 1].second));
    }
  }

  void check_summary() {
    const PlanSummary& s = p_.summary;
    std::vector<int64_t> delta(p_.ops.size() + 2, 0);
    for (const Item& it : arena_items()) {
      int64_t sz = round_up(it.bytes, p_.alignment);
      delta[it.start] += sz;
      delta[it.end + 1] -= sz;
    }
    int64_t lb = 0, live = 0;
    for (size_t k = 0; k < delta.size(); ++k) {
      live += delta[k];
      lb = std::max(lb, live);
    }
    if (lb != s.lower_bound_bytes)
      err("summary.lower_bound_bytes is " + std::to_string(s.lower_bound_bytes) +
          " but the op list gives " + std::to_string(lb));
    if (s.arena_bytes < lb)
      err("summary.arena_bytes " + std::to_string(s.arena_bytes) + " is below the lower bound " +
          std::to_string(lb) + ": impossible");
    int64_t resident = 0;
    std::map<std::string, int64_t> by_role;
    for (int32_t i = 0; i < n_; ++i) {
      const PlanTensor& t = p_.tensors[i];
      if (t.placement == Placement::resident) {
        resident += round_up(t.bytes, p_.alignment);
        by_role[std::string(role_name(t.role))] += round_up(t.bytes, p_.alignment);
      } else if (is_arena(i) && start_[i] <= s.peak_step && s.peak_step <= end_[i]) {
        by_role[std::string(role_name(t.role))] += round_up(t.bytes, p_.alignment);
      }
    }
    if (s.peak_step >= 0 && static_cast<size_t>(s.peak_step) < p_.ops.size() &&
        p_.ops[s.peak_step].workspace_bytes > 0)
      by_role["workspace"] += p_.ops[s.peak_step].workspace_bytes;
    if (resident > s.resident_bytes)
      err("summary.resident_bytes " + std::to_string(s.resident_bytes) +
          " is smaller than the resident tensors need (" + std::to_string(resident) + ")");
    if (s.peak_bytes != end_of(s.arena_bytes, s.resident_bytes))
      err("summary.peak_bytes " + std::to_string(s.peak_bytes) +
          " is not arena_bytes + resident_bytes (" + std::to_string(s.arena_bytes) + " + " +
          std::to_string(s.resident_bytes) + ")");
    if (by_role != s.bytes_by_role) err("summary.bytes_by_role does not match the tensors");
    if (p_.budget_bytes && s.peak_bytes > *p_.budget_bytes)
      err("peak_bytes " + std::to_string(s.peak_bytes) + " exceeds the budget of " +
          std::to_string(*p_.budget_bytes) + " bytes");
  }
};

}  // namespace

PlanVerifyResult verify_plan(const Plan& p) { return Verifier(p).run(); }

}  // namespace memplan
