#include "passes/offset_search.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <utility>

#include "passes/lifetimes.h"

namespace memplan {
namespace {

constexpr int64_t kNone = std::numeric_limits<int64_t>::min();

/// Per section: T = total size of the unplaced buffers there, F = floor (top of
/// the highest placed buffer there, 0 if none). Keeps range maxima of T, F and
/// F + T under range updates "T -= size, F := floor", and undoes them from a
/// log of the nodes each update touched.
class SectionTree {
 public:
  explicit SectionTree(const std::vector<int64_t>& total) {
    while (size_ < static_cast<int32_t>(total.size())) size_ *= 2;
    node_.assign(2 * static_cast<size_t>(size_), Node{});
    for (size_t s = 0; s < total.size(); ++s) node_[size_ + s] = {total[s], 0, total[s], 0, kNone};
    for (int32_t x = size_ - 1; x >= 1; --x) pull(x);
  }
  /// Sections [lo, hi): T -= size, F := floor.
  void place(int32_t lo, int32_t hi, int64_t size, int64_t floor) {
    update(1, 0, size_, lo, hi, -size, floor);
  }
  struct Max {
    int64_t t = kNone, f = kNone, ft = kNone;
  };
  /// Maxima over sections [lo, hi).
  Max max_in(int32_t lo, int32_t hi) const {
    Max m;
    query(1, 0, size_, lo, hi, m);
    return m;
  }
  size_t mark() const { return log_.size(); }
  void undo(size_t mark) {
    for (; log_.size() > mark; log_.pop_back()) node_[log_.back().first] = log_.back().second;
  }

 private:
  struct Node {
    int64_t t = kNone, f = kNone, ft = kNone;  // maxima over the subtree (kNone: no section)
    int64_t add = 0;       // pending for the children: T += add, then
    int64_t floor = kNone;  // F := floor (kNone: none)
  };
  void apply(int32_t x, int64_t add, int64_t floor) {
    Node& n = node_[x];
    if (n.t == kNone) return;  // padding beyond the last section
    log_.emplace_back(x, n);
    n.t += add;
    n.ft = floor != kNone ? floor + n.t : n.ft + add;
    n.add += add;
    if (floor != kNone) n.f = n.floor = floor;
  }
  void pull(int32_t x) {
    node_[x].t = std::max(node_[2 * x].t, node_[2 * x + 1].t);
    node_[x].f = std::max(node_[2 * x].f, node_[2 * x + 1].f);
    node_[x].ft = std::max(node_[2 * x].ft, node_[2 * x + 1].ft);
  }
  void push(int32_t x) {
    Node& n = node_[x];
    if (n.add == 0 && n.floor == kNone) return;
    log_.emplace_back(x, n);
    apply(2 * x, n.add, n.floor);
    apply(2 * x + 1, n.add, n.floor);
    node_[x].add = 0;
    node_[x].floor = kNone;
  }
  void update(int32_t x, int32_t l, int32_t r, int32_t lo, int32_t hi, int64_t add,
              int64_t floor) {
    if (hi <= l || r <= lo) return;
    if (lo <= l && r <= hi) {
      apply(x, add, floor);
      return;
    }
    push(x);
    log_.emplace_back(x, node_[x]);
    const int32_t m = l + (r - l) / 2;
    update(2 * x, l, m, lo, hi, add, floor);
    update(2 * x + 1, m, r, lo, hi, add, floor);
    pull(x);
  }
  /// Read-only: the tags pending above x (adds summed; the floor of the
  /// highest ancestor that has one, the newest, since an update pushes a
  /// node's tags down before passing it) are applied on the fly.
  void query(int32_t x, int32_t l, int32_t r, int32_t lo, int32_t hi, Max& m,
             int64_t add = 0, int64_t floor = kNone) const {
    if (hi <= l || r <= lo || node_[x].t == kNone) return;
    const Node& n = node_[x];
    if (lo <= l && r <= hi) {
      const int64_t t = n.t + add;
      m.t = std::max(m.t, t);
      m.f = std::max(m.f, floor != kNone ? floor : n.f);
      m.ft = std::max(m.ft, floor != kNone ? floor + t : n.ft + add);
      return;
    }
    const int32_t mid = l + (r - l) / 2;
    const int64_t child_floor = floor != kNone ? floor : n.floor;
    query(2 * x, l, mid, lo, hi, m, add + n.add, child_floor);
    query(2 * x + 1, mid, r, lo, hi, m, add + n.add, child_floor);
  }

  int32_t size_ = 1;
  std::vector<Node> node_;
  std::vector<std::pair<int32_t, Node>> log_;
};

/// cut[s] = unplaced buffers live in both section s and s + 1, under range
/// adds (exactly undone by the opposite add); finds the zeros in a range.
class CutTree {
 public:
  explicit CutTree(const std::vector<int32_t>& cut) {
    while (size_ < static_cast<int32_t>(cut.size())) size_ *= 2;
    min_.assign(2 * static_cast<size_t>(size_), std::numeric_limits<int32_t>::max());
    add_.assign(2 * static_cast<size_t>(size_), 0);
    for (size_t s = 0; s < cut.size(); ++s) min_[size_ + s] = cut[s];
    for (int32_t x = size_ - 1; x >= 1; --x) min_[x] = std::min(min_[2 * x], min_[2 * x + 1]);
  }
  void add(int32_t lo, int32_t hi, int32_t v) { add(1, 0, size_, lo, hi, v); }
  /// Appends the positions in [lo, hi) whose value is 0.
  void zeros(int32_t lo, int32_t hi, std::vector<int32_t>& out) const {
    zeros(1, 0, size_, lo, hi, 0, out);
  }

 private:
  void add(int32_t x, int32_t l, int32_t r, int32_t lo, int32_t hi, int32_t v) {
    if (hi <= l || r <= lo) return;
    if (lo <= l && r <= hi) {
      min_[x] += v;
      add_[x] += v;
      return;
    }
    const int32_t m = l + (r - l) / 2;
    add(2 * x, l, m, lo, hi, v);
    add(2 * x + 1, m, r, lo, hi, v);
    min_[x] = std::min(min_[2 * x], min_[2 * x + 1]) + add_[x];
  }
  void zeros(int32_t x, int32_t l, int32_t r, int32_t lo, int32_t hi, int32_t above,
             std::vector<int32_t>& out) const {
    if (hi <= l || r <= lo || min_[x] + above > 0) return;
    if (r - l == 1) {
      out.push_back(l);
      return;
    }
    const int32_t m = l + (r - l) / 2;
    zeros(2 * x, l, m, lo, hi, above + add_[x], out);
    zeros(2 * x + 1, m, r, lo, hi, above + add_[x], out);
  }

  int32_t size_ = 1;
  std::vector<int32_t> min_, add_;  // min_[x] includes add_[x], not the ancestors' adds
};

/// The problem after preprocessing: buffers of non-zero size, sizes aligned,
/// lifetimes as section ranges.
struct Problem {
  std::vector<uint32_t> id;  // original buffer index
  std::vector<int64_t> size;
  std::vector<int32_t> lo, hi;  // sections [lo, hi)
  std::vector<int64_t> section_total;
};

Problem build(const std::vector<Buffer>& bufs, int64_t alignment) {
  Problem p;
  std::vector<int32_t> cut;
  for (uint32_t i = 0; i < bufs.size(); ++i) {
    if (align_up(bufs[i].size, alignment) == 0) continue;
    p.id.push_back(i);
    p.size.push_back(align_up(bufs[i].size, alignment));
    cut.push_back(bufs[i].start);
    cut.push_back(bufs[i].end + 1);
  }
  std::sort(cut.begin(), cut.end());
  cut.erase(std::unique(cut.begin(), cut.end()), cut.end());
  auto section = [&](int32_t step) {
    return static_cast<int32_t>(std::lower_bound(cut.begin(), cut.end(), step) - cut.begin());
  };
  p.section_total.assign(cut.empty() ? 0 : cut.size() - 1, 0);
  std::vector<int64_t> delta(cut.size() + 1, 0);
  for (size_t i = 0; i < p.id.size(); ++i) {
    const Buffer& b = bufs[p.id[i]];
    p.lo.push_back(section(b.start));
    p.hi.push_back(section(b.end + 1));
    delta[p.lo[i]] += p.size[i];
    delta[p.hi[i]] -= p.size[i];
  }
  int64_t run = 0;
  for (size_t s = 0; s < p.section_total.size(); ++s) p.section_total[s] = run += delta[s];
  return p;
}

enum class Outcome { found, infeasible, out_of_nodes };

/// The depth-first search under one priority order (rank[i]: smaller first
/// among equal minimum offsets).
///
/// Minimum offsets are kept lazily: a buffer's true minimum offset is the
/// highest floor over its sections; the ordered sets hold a lower bound
/// (`stored_`), refreshed when the buffer comes up as a candidate. Invariant:
/// every unplaced buffer whose stored offset is at most the current offset
/// (those passed over) has its true value stored, so placing a buffer
/// updates at once only the passed-over buffers it overlaps.
///
/// Placing a buffer may leave the unplaced buffers in separate time ranges
/// that no unplaced buffer crosses; each range is then a partition searched
/// on its own (a dead end in one does not revisit the choices made in
/// another).
class Search {
 public:
  Search(const Problem& p, const std::vector<int32_t>& rank, int64_t capacity, int64_t max_nodes)
      : p_(p), rank_(rank), capacity_(capacity), max_nodes_(max_nodes), tree_(p.section_total),
        cuts_(initial_cuts(p)) {
    const size_t n = p.id.size();
    by_rank_.resize(n);
    for (size_t i = 0; i < n; ++i) by_rank_[rank[i]] = static_cast<uint32_t>(i);
    stored_.assign(n, 0);
    solution_.assign(n, -1);
  }

  Outcome run() {
    // The initial partitions: where no buffer crosses a section boundary.
    std::vector<int32_t> cuts;
    const int32_t sections = static_cast<int32_t>(p_.section_total.size());
    if (sections > 1) cuts_.zeros(0, sections - 1, cuts);
    for (int32_t& c : cuts) ++c;  // as the first section after the cut
    Part all;
    for (size_t i = 0; i < p_.id.size(); ++i) all.order.insert({0, rank_[i]});
    return cuts.empty() ? solve(all_buffers(), 0, sections) : split(all, 0, sections, cuts);
  }
  int64_t nodes() const { return nodes_; }
  int64_t offset(size_t i) const { return solution_[i]; }

 private:
  /// The unplaced buffers of one partition, ordered for candidate choice.
  struct Part {
    std::set<std::pair<int64_t, int32_t>> order;  // (stored minimum offset, rank)
    std::set<std::pair<int64_t, int32_t>> tops;   // (stored minimum offset + size, rank)
  };
  /// One node of the depth-first search.
  struct Frame {
    std::pair<int64_t, int32_t> key;  // (offset, rank) of the last candidate tried
    int64_t min_top = 0;              // candidates lie below the lowest top any could reach
    uint32_t placed = UINT32_MAX;     // the candidate placed now, if any
    size_t tree_mark = 0, log_mark = 0;  // before its placement
  };

  static std::vector<int32_t> initial_cuts(const Problem& p) {
    std::vector<int32_t> cut(p.section_total.size() > 1 ? p.section_total.size() - 1 : 0, 0);
    std::vector<int32_t> delta(cut.size() + 1, 0);
    for (size_t i = 0; i < p.id.size(); ++i)
      if (p.hi[i] - p.lo[i] > 1) {  // crosses boundaries lo .. hi - 2
        ++delta[p.lo[i]];
        --delta[p.hi[i] - 1];
      }
    int32_t run = 0;
    for (size_t s = 0; s < cut.size(); ++s) cut[s] = run += delta[s];
    return cut;
  }
  std::vector<uint32_t> all_buffers() const {
    std::vector<uint32_t> all(p_.id.size());
    std::iota(all.begin(), all.end(), 0u);
    return all;
  }

  /// Searches the partition of `bufs` (all unplaced, inside sections
  /// [lo, hi), no unplaced buffer crossing lo or hi). Leaves every placement
  /// undone; on `found` the offsets are in solution_.
  Outcome solve(const std::vector<uint32_t>& bufs, int32_t lo, int32_t hi) {
    Part part;
    for (uint32_t i : bufs) {
      part.order.insert({stored_[i], rank_[i]});
      part.tops.insert({stored_[i] + p_.size[i], rank_[i]});
    }
    if (const SectionTree::Max m = tree_.max_in(lo, hi); m.t > capacity_ || m.ft > capacity_)
      return Outcome::infeasible;
    std::vector<Frame> stack;
    auto open = [&](int64_t last_off, int32_t last_rank) {
      // The lowest top any unplaced buffer could reach: refresh the front
      // of `tops` until it holds its true value.
      for (;;) {
        const uint32_t i = by_rank_[part.tops.begin()->second];
        if (!refresh(part, i)) break;
      }
      stack.push_back({{last_off, last_rank}, part.tops.begin()->first});
    };
    open(-1, -1);
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.placed != UINT32_MAX) {  // back from a dead end below: undo this frame's placement
        undo(part, f.placed, f.tree_mark, f.log_mark);
        f.placed = UINT32_MAX;
      }
      // The next candidate in (offset, rank) order. Placements below were
      // undone, and refreshes only raise stored offsets to true ones.
      auto it = part.order.upper_bound(f.key);
      if (it == part.order.end() || it->first >= f.min_top) {
        stack.pop_back();
        continue;
      }
      const uint32_t c = by_rank_[it->second];
      if (refresh(part, c)) continue;  // it moved up; look again
      f.key = *it;
      if (++nodes_ > max_nodes_) {
        unwind(part, stack);
        return Outcome::out_of_nodes;
      }
      f.tree_mark = tree_.mark();
      f.log_mark = log_.size();
      const int64_t at = stored_[c];
      std::vector<int32_t> cuts;
      place(part, c, at, cuts);
      f.placed = c;
      const SectionTree::Max m = tree_.max_in(lo, hi);
      if (at + std::max<int64_t>(m.t, 0) > capacity_ || m.ft > capacity_) continue;
      if (part.order.empty()) {
        unwind(part, stack);
        return Outcome::found;
      }
      if (cuts.empty()) {
        open(at, rank_[c]);
        continue;
      }
      // The unplaced buffers fall apart at the new cuts: solve each range.
      const Outcome o = split(part, lo, hi, cuts);
      if (o == Outcome::infeasible) continue;  // this placement is a dead end
      unwind(part, stack);
      return o;
    }
    return Outcome::infeasible;
  }

  Outcome split(const Part& part, int32_t lo, int32_t hi, std::vector<int32_t>& cuts) {
    std::sort(cuts.begin(), cuts.end());
    cuts.push_back(hi);
    std::vector<std::vector<uint32_t>> groups(cuts.size());
    for (const auto& [m, r] : part.order) {
      const uint32_t i = by_rank_[r];
      const size_t g = static_cast<size_t>(
          std::upper_bound(cuts.begin(), cuts.end(), p_.lo[i]) - cuts.begin());
      groups[g].push_back(i);
    }
    int32_t from = lo;
    for (size_t g = 0; g < cuts.size(); from = cuts[g++]) {
      if (groups[g].empty()) continue;
      const Outcome o = solve(groups[g], from, cuts[g]);
      if (o != Outcome::found) return o;
    }
    return Outcome::found;
  }

  void unwind(Part& part, std::vector<Frame>& stack) {
    for (; !stack.empty(); stack.pop_back())
      if (stack.back().placed != UINT32_MAX) {
        const Frame& f = stack.back();
        undo(part, f.placed, f.tree_mark, f.log_mark);
      }
  }

  void set_stored(Part& part, uint32_t d, int64_t v) {
    part.order.erase({stored_[d], rank_[d]});
    part.tops.erase({stored_[d] + p_.size[d], rank_[d]});
    stored_[d] = v;
    part.order.insert({v, rank_[d]});
    part.tops.insert({v + p_.size[d], rank_[d]});
  }
  /// Stores d's true minimum offset (logged); true when it was stale.
  bool refresh(Part& part, uint32_t d) {
    const int64_t v = std::max<int64_t>(tree_.max_in(p_.lo[d], p_.hi[d]).f, 0);
    if (v == stored_[d]) return false;
    log_.emplace_back(d, stored_[d]);
    set_stored(part, d, v);
    return true;
  }
  /// Places c at `at`; appends to `cuts` the section boundaries that no
  /// unplaced buffer crosses any more (as the first section after each).
  void place(Part& part, uint32_t c, int64_t at, std::vector<int32_t>& cuts) {
    solution_[c] = at;
    part.order.erase({at, rank_[c]});
    part.tops.erase({at + p_.size[c], rank_[c]});
    const int64_t top = at + p_.size[c];
    // Passed-over buffers (stored key below c's) that c overlaps now start
    // at its top; the others are refreshed when they come up.
    passed_.clear();
    const std::pair<int64_t, int32_t> key{at, rank_[c]};
    for (auto it = part.order.begin(); it != part.order.end() && *it < key; ++it) {
      const uint32_t d = by_rank_[it->second];
      if (p_.lo[d] < p_.hi[c] && p_.lo[c] < p_.hi[d]) passed_.push_back(d);
    }
    for (uint32_t d : passed_) {
      log_.emplace_back(d, stored_[d]);
      set_stored(part, d, top);
    }
    tree_.place(p_.lo[c], p_.hi[c], p_.size[c], top);
    if (p_.hi[c] - p_.lo[c] > 1) {
      cuts_.add(p_.lo[c], p_.hi[c] - 1, -1);
      cuts_.zeros(p_.lo[c], p_.hi[c] - 1, cuts);
      for (int32_t& s : cuts) ++s;
    }
  }
  void undo(Part& part, uint32_t c, size_t tree_mark, size_t log_mark) {
    if (p_.hi[c] - p_.lo[c] > 1) cuts_.add(p_.lo[c], p_.hi[c] - 1, +1);
    tree_.undo(tree_mark);
    for (; log_.size() > log_mark; log_.pop_back())
      set_stored(part, log_.back().first, log_.back().second);
    // A placed buffer's stored offset is where it sits: nothing refreshes it
    // while it is out of the sets.
    part.order.insert({stored_[c], rank_[c]});
    part.tops.insert({stored_[c] + p_.size[c], rank_[c]});
  }

  const Problem& p_;
  const std::vector<int32_t>& rank_;
  int64_t capacity_, max_nodes_, nodes_ = 0;
  SectionTree tree_;
  CutTree cuts_;
  std::vector<uint32_t> by_rank_, passed_;
  std::vector<int64_t> stored_, solution_;
  std::vector<std::pair<uint32_t, int64_t>> log_;  // (buffer, previous stored offset)
};

/// Priority orders: by the largest section total over the buffer's life
/// (crowded places first), its length in sections, and its area, in three
/// precedences; then size, then length alone.
std::vector<std::vector<int32_t>> priority_orders(const Problem& p) {
  const size_t n = p.id.size();
  std::vector<int64_t> crowd(n, 0), width(n), area(n);
  for (size_t i = 0; i < n; ++i) {
    for (int32_t s = p.lo[i]; s < p.hi[i]; ++s) crowd[i] = std::max(crowd[i], p.section_total[s]);
    width[i] = p.hi[i] - p.lo[i];
    area[i] = p.size[i] * width[i];
  }
  using Key = std::function<std::tuple<int64_t, int64_t, int64_t>(size_t)>;
  const std::vector<Key> keys = {
      [&](size_t i) { return std::tuple{crowd[i], width[i], area[i]}; },
      [&](size_t i) { return std::tuple{width[i], area[i], crowd[i]}; },
      [&](size_t i) { return std::tuple{crowd[i], area[i], width[i]}; },
      [&](size_t i) { return std::tuple{p.size[i], width[i], int64_t{0}}; },
      [&](size_t i) { return std::tuple{width[i], p.size[i], int64_t{0}}; },
  };
  std::vector<std::vector<int32_t>> ranks;
  for (const Key& key : keys) {
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return key(a) > key(b); });
    std::vector<int32_t> rank(n);
    for (size_t r = 0; r < n; ++r) rank[order[r]] = static_cast<int32_t>(r);
    ranks.push_back(std::move(rank));
  }
  return ranks;
}

}  // namespace

OffsetSearchResult search_offsets(const std::vector<Buffer>& bufs, int64_t capacity,
                                  const OffsetSearchOptions& opts) {
  OffsetSearchResult r;
  const Problem p = build(bufs, opts.alignment);
  if (p.id.empty()) {
    r.offsets = std::vector<int64_t>(bufs.size(), 0);
    return r;
  }
  const std::vector<std::vector<int32_t>> ranks = priority_orders(p);
  // Round robin: every order with a node limit that doubles each round.
  int64_t limit = std::max<int64_t>(static_cast<int64_t>(p.id.size()), 64);
  while (r.nodes < opts.max_nodes) {
    for (const std::vector<int32_t>& rank : ranks) {
      Search s(p, rank, capacity, std::min(limit, opts.max_nodes - r.nodes));
      const Outcome o = s.run();
      r.nodes += s.nodes();
      if (o == Outcome::infeasible) {
        r.exhausted = true;
        return r;
      }
      if (o == Outcome::found) {
        std::vector<int64_t> off(bufs.size(), 0);
        for (size_t i = 0; i < p.id.size(); ++i) off[p.id[i]] = s.offset(i);
        r.offsets = std::move(off);
        return r;
      }
      if (r.nodes >= opts.max_nodes) return r;
    }
    limit *= 2;
  }
  return r;
}

bool lower_arena_by_search(const std::vector<Buffer>& bufs, OffsetResult& best, int64_t lb,
                           const OffsetSearchOptions& opts, std::optional<int64_t> fit_bytes) {
  const int64_t al = opts.alignment;
  auto tight = [&] {
    if (fit_bytes && best.arena_bytes <= *fit_bytes) return true;
    return best.arena_bytes * 200 <= lb * 201;
  };
  bool changed = false;
  int64_t left = opts.max_nodes, out_of_reach = lb - al;
  int64_t cap = best.arena_bytes - al;
  while (left > 0 && !tight() && cap > out_of_reach) {
    OffsetSearchOptions o = opts;
    o.max_nodes = std::min(left, std::max(5 * static_cast<int64_t>(bufs.size()), left / 4));
    OffsetSearchResult r = search_offsets(bufs, cap, o);
    left -= r.nodes;
    if (!r.offsets) {
      out_of_reach = cap;
    } else {
      int64_t arena = 0;
      for (size_t i = 0; i < bufs.size(); ++i)
        if (align_up(bufs[i].size, al) > 0)
          arena = std::max(arena, (*r.offsets)[i] + align_up(bufs[i].size, al));
      if (arena < best.arena_bytes) {
        best.offsets = std::move(*r.offsets);
        best.arena_bytes = arena;
        best.order = "search";
        changed = true;
      }
    }
    cap = align_up(out_of_reach + (best.arena_bytes - out_of_reach) / 2, al);
    if (cap >= best.arena_bytes) cap = best.arena_bytes - al;
  }
  return changed;
}

}  // namespace memplan
