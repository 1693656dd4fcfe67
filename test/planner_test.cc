// Planner tests. Every plan goes through the independent verifier; no test
// pins exact offsets (they change whenever a heuristic improves).
#include <gtest/gtest.h>

#include <random>

#include "compiler/autodiff.h"
#include "compiler/plan.h"
#include "compiler/plan_verify.h"
#include "passes/assign_offsets.h"
#include "passes/infer_shapes.h"
#include "passes/lifetimes.h"
#include "passes/plan_memory.h"
#include "passes/schedule.h"

namespace memplan {
namespace {

TensorId add(Graph& g, const std::string& name, Role role, Shape shape, DType dt = DType::f32) {
  Tensor t;
  t.name = name;
  t.role = role;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.shape_known = true;
  return g.add_tensor(std::move(t));
}

/// A random DAG: each node reads 1-3 earlier tensors and writes one; about
/// one node in six is a view (Reshape) so aliasing is exercised.
Graph random_graph(uint32_t seed, int nodes) {
  std::mt19937 rng(seed);
  Graph g;
  g.name = "random" + std::to_string(seed);
  std::vector<TensorId> pool;
  TensorId x = add(g, "x", Role::input, {1 + static_cast<int64_t>(rng() % 4000)});
  g.inputs.push_back(x);
  pool.push_back(x);
  pool.push_back(add(g, "w", Role::parameter, {1000}));
  pool.push_back(add(g, "c", Role::constant, {3}, DType::i64));
  for (int i = 0; i < nodes; ++i) {
    Node n;
    n.name = "n" + std::to_string(i);
    bool view = rng() % 6 == 0;
    n.op = view ? "Reshape" : "Add";
    int k = view ? 1 : 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < k; ++j) {
      // Bias towards recent tensors, as real graphs are chain-like.
      size_t back = std::min<size_t>(pool.size() - 1, rng() % 8 == 0 ? rng() % pool.size() : rng() % 4);
      n.inputs.push_back(pool[pool.size() - 1 - back]);
    }
    Shape s = view ? g.tensor(n.inputs[0]).shape : Shape{1 + static_cast<int64_t>(rng() % 100000)};
    DType dt = view ? g.tensor(n.inputs[0]).dtype : DType::f32;
    TensorId out = add(g, "t" + std::to_string(i), Role::activation, s, dt);
    n.outputs.push_back(out);
    g.add_node(std::move(n));
    pool.push_back(out);
  }
  g.outputs.push_back(pool.back());
  if (nodes > 3) g.outputs.push_back(pool[pool.size() / 2]);
  return g;
}

std::string errors(const PlanVerifyResult& r) {
  std::string s;
  for (const auto& e : r.errors) s += e + "\n";
  return s;
}

TEST(PlannerTest, ChainReusesMemory) {
  // x -> a -> b -> c, each 1 KiB: at most two are live at once (an op's
  // input and output), so LB = 2 KiB and the arena must reach it exactly.
  Graph g;
  TensorId x = add(g, "x", Role::input, {256});
  g.inputs.push_back(x);
  TensorId prev = x;
  for (const char* name : {"a", "b", "c"}) {
    TensorId t = add(g, name, Role::activation, {256});
    g.add_node({"Relu", std::string("relu_") + name, {prev}, {t}, {}});
    prev = t;
  }
  g.outputs.push_back(prev);
  Plan p = plan_memory(g);
  EXPECT_TRUE(verify_plan(p).ok()) << errors(verify_plan(p));
  EXPECT_EQ(p.summary.lower_bound_bytes, 2048);
  EXPECT_EQ(p.summary.arena_bytes, 2048);
  EXPECT_EQ(p.summary.peak_bytes, 2048);
}

TEST(PlannerTest, ViewsExtendTheirRootsLifetime) {
  // a (4 KiB) is viewed by v; v is read at the last step, so a must stay live
  // across b's lifetime: LB = a + b + c at the step that writes c (x, 64 B,
  // was last read one step earlier; that step holds x + a + b < a + b + c).
  Graph g;
  TensorId x = add(g, "x", Role::input, {16});
  g.inputs.push_back(x);
  TensorId a = add(g, "a", Role::activation, {1024});
  TensorId v = add(g, "v", Role::activation, {32, 32});
  TensorId b = add(g, "b", Role::activation, {1024});
  TensorId c = add(g, "c", Role::activation, {1024});
  g.add_node({"Expand", "mk_a", {x}, {a}, {}});
  g.add_node({"Reshape", "view", {a}, {v}, {}});
  g.add_node({"Relu", "mk_b", {x}, {b}, {}});
  g.add_node({"Add", "mk_c", {b, v}, {c}, {}});
  g.outputs.push_back(c);
  Plan p = plan_memory(g, {.schedule = ScheduleMethod::model_order});
  ASSERT_TRUE(verify_plan(p).ok()) << errors(verify_plan(p));
  EXPECT_EQ(p.tensors[v.v].placement, Placement::alias);
  EXPECT_EQ(p.tensors[v.v].alias_of, static_cast<int32_t>(a.v));
  EXPECT_EQ(p.summary.lower_bound_bytes, 3 * 4096);
}

TEST(PlannerTest, GreedyScheduleBeatsBadModelOrder) {
  // Model order computes two big branches first and reduces them last;
  // greedy finishes each branch (big -> small) before starting the next.
  Graph g;
  TensorId x = add(g, "x", Role::input, {64});
  g.inputs.push_back(x);
  TensorId big1 = add(g, "big1", Role::activation, {1 << 16});
  TensorId big2 = add(g, "big2", Role::activation, {1 << 16});
  TensorId s1 = add(g, "s1", Role::activation, {64});
  TensorId s2 = add(g, "s2", Role::activation, {64});
  TensorId y = add(g, "y", Role::activation, {64});
  g.add_node({"Expand", "e1", {x}, {big1}, {}});
  g.add_node({"Expand", "e2", {x}, {big2}, {}});
  g.add_node({"ReduceSum", "r1", {big1}, {s1}, {}});
  g.add_node({"ReduceSum", "r2", {big2}, {s2}, {}});
  g.add_node({"Add", "add", {s1, s2}, {y}, {}});
  g.outputs.push_back(y);
  ScheduleResult model = schedule(g, {.method = ScheduleMethod::model_order});
  ScheduleResult best = schedule(g, {.method = ScheduleMethod::best});
  EXPECT_EQ(model.lower_bound, 2 * (1 << 18) + 256);  // big1 + big2 + s1 at r1 (x is dead)
  EXPECT_LT(best.lower_bound, model.lower_bound);
  Plan p = plan_memory(g);
  EXPECT_TRUE(verify_plan(p).ok()) << errors(verify_plan(p));
  EXPECT_EQ(p.summary.lower_bound_bytes, best.lower_bound);
}

/// An MLP chain (MatMul with its own [64, 64] weight, then Relu) trained
/// with SGD: weight gradients are 8x the activations.
Graph mlp_training_graph(int blocks) {
  Graph g;
  TensorId x = add(g, "x", Role::input, {8, 64});
  g.inputs.push_back(x);
  for (int i = 0; i < blocks; ++i) {
    const std::string k = std::to_string(i);
    TensorId w = add(g, "w" + k, Role::parameter, {64, 64});
    Tensor& wt = g.tensor(w);
    wt.data = std::make_shared<const std::vector<uint8_t>>(size_t{4 * 64 * 64}, 0);
    TensorId mm = add(g, "mm" + k, Role::activation, {8, 64});
    TensorId r = add(g, "relu" + k, Role::activation, {8, 64});
    g.add_node({"MatMul", "n/mm" + k, {x, w}, {mm}, {}});
    g.add_node({"Relu", "n/relu" + k, {mm}, {r}, {}});
    x = r;
  }
  TensorId loss = add(g, "loss", Role::activation, {});
  g.add_node({"ReduceMean", "n/loss", {x}, {loss}, {{"keepdims", int64_t{0}}}});
  g.outputs.push_back(loss);
  infer_shapes(g, {});
  TrainingOptions to;
  to.optimizer.kind = OptimizerKind::sgd;
  build_training_graph(g, to);
  return g;
}

TEST(PlannerTest, EarlyUpdatesFollowTheirGradientInModelOrder) {
  // The greedy defers each weight gradient (it allocates 8x what the
  // activation chain does), keeping every activation live to the end of the
  // backward pass. Model order with each update right after its gradient
  // frees both block by block; best picks it (lower LB, and a profile that
  // falls after its peak, which rematerialization needs).
  const Graph g = mlp_training_graph(6);
  ScheduleResult model = schedule(g, {.method = ScheduleMethod::model_order});
  ScheduleResult greedy = schedule(g, {.method = ScheduleMethod::greedy});
  ScheduleResult best = schedule(g, {.method = ScheduleMethod::best});
  EXPECT_LT(model.lower_bound, greedy.lower_bound);
  EXPECT_EQ(best.chosen, ScheduleMethod::model_order);
  int updates = 0;
  for (size_t i = 0; i < model.order.size(); ++i) {
    const Node& n = g.node(model.order[i]);
    if (n.op != "SGDUpdate") continue;
    ++updates;
    ASSERT_GT(i, 0u);
    const Node& prev = g.node(model.order[i - 1]);
    bool feeds = false;
    for (TensorId in : n.inputs) feeds |= !prev.outputs.empty() && prev.outputs[0] == in;
    EXPECT_TRUE(feeds) << n.name << " runs after " << prev.name << ", not right after its gradient";
  }
  EXPECT_EQ(updates, 6);
  // Late updates: every update after all other nodes, in every candidate.
  ScheduleResult late = schedule(g, {.method = ScheduleMethod::best, .early_updates = false});
  for (size_t i = late.order.size() - 6; i < late.order.size(); ++i)
    EXPECT_EQ(g.node(late.order[i]).op, "SGDUpdate");
  EXPECT_GT(late.lower_bound, best.lower_bound);
  Plan p = plan_memory(g);
  EXPECT_TRUE(verify_plan(p).ok()) << errors(verify_plan(p));
}

TEST(PlannerTest, RandomGraphsAllMethodsVerify) {
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    Graph g = random_graph(seed, 5 + static_cast<int>(seed * 7 % 120));
    for (auto sm : {ScheduleMethod::model_order, ScheduleMethod::greedy,
                    ScheduleMethod::greedy_lifo, ScheduleMethod::best})
      for (auto om : {OffsetMethod::greedy_size, OffsetMethod::best_of})
        for (int64_t align : {1, 64, 256}) {
          Plan p = plan_memory(g, {.alignment = align, .schedule = sm, .offsets = om});
          PlanVerifyResult r = verify_plan(p);
          ASSERT_TRUE(r.ok()) << "seed " << seed << " " << schedule_method_name(sm) << " "
                              << offset_method_name(om) << " align " << align << "\n"
                              << errors(r);
          ASSERT_GE(p.summary.arena_bytes, p.summary.lower_bound_bytes);
        }
  }
}

TEST(PlannerTest, BestOfNeverWorseThanGreedySize) {
  for (uint32_t seed = 100; seed < 140; ++seed) {
    Graph g = random_graph(seed, 150);
    Plan a = plan_memory(g, {.offsets = OffsetMethod::greedy_size});
    Plan b = plan_memory(g, {.offsets = OffsetMethod::best_of});
    EXPECT_LE(b.summary.arena_bytes, a.summary.arena_bytes) << "seed " << seed;
  }
}

// skip_offsets_above: a plan whose resident storage plus lower bound is above
// the limit gets no offsets and reports that sum as its peak; at the limit it
// is the plan made without the option.
TEST(PlannerTest, OffsetsAreSkippedOnlyAboveTheLimit) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    const Graph g = random_graph(seed, 60);
    const Plan full = plan_memory(g);
    const int64_t bound = full.summary.resident_bytes + full.summary.lower_bound_bytes;
    ASSERT_GE(full.summary.peak_bytes, bound);
    PlanMemoryOptions o;
    o.skip_offsets_above = bound;
    const Plan at = plan_memory(g, o);
    EXPECT_EQ(at.offset_method, full.offset_method) << "seed " << seed;
    EXPECT_EQ(at.summary.peak_bytes, full.summary.peak_bytes) << "seed " << seed;
    EXPECT_TRUE(verify_plan(at).ok()) << "seed " << seed << "\n" << errors(verify_plan(at));
    o.skip_offsets_above = bound - 1;
    const Plan skipped = plan_memory(g, o);
    EXPECT_EQ(skipped.offset_method, kOffsetsSkipped) << "seed " << seed;
    EXPECT_EQ(skipped.summary.peak_bytes, bound) << "seed " << seed;
    EXPECT_EQ(skipped.summary.lower_bound_bytes, full.summary.lower_bound_bytes) << "seed " << seed;
    EXPECT_EQ(skipped.summary.resident_bytes, full.summary.resident_bytes) << "seed " << seed;
    EXPECT_TRUE(skipped.ops.empty()) << "seed " << seed;
    EXPECT_FALSE(verify_plan(skipped).ok()) << "seed " << seed;
  }
}

// refine_plan_offsets on finished plans: best-of's own, and the same plans
// with every arena buffer stacked on the last (no reuse at all; the plan
// still verifies). A refined plan must verify (so the lifetimes it rebuilds
// from the op list are no shorter than the verifier's), keep its lower
// bound and shrink; a plan within 0.5% of its lower bound is left alone.
TEST(PlannerTest, RefinedOffsetsVerifyAndShrinkTheArena) {
  int best_of_loose = 0, best_of_refined = 0, stacked_refined = 0, stacked_tight = 0, searched = 0;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    const Graph g = random_graph(seed, 20 + static_cast<int>(seed * 5 % 80));
    for (bool stack : {false, true}) {
      Plan p = plan_memory(g);
      if (stack) {
        int64_t top = 0;
        for (PlanTensor& t : p.tensors)
          if (t.placement == Placement::arena && t.bytes > 0) {
            t.offset = top;
            top += align_up(t.bytes, p.alignment);
          }
        for (PlanOp& op : p.ops)
          if (op.workspace_bytes > 0) {
            op.workspace_offset = top;
            top += align_up(op.workspace_bytes, p.alignment);
          }
        p.summary.peak_bytes += top - p.summary.arena_bytes;
        p.summary.arena_bytes = top;
      }
      ASSERT_TRUE(verify_plan(p).ok()) << "seed " << seed << "\n" << errors(verify_plan(p));
      const int64_t lb = p.summary.lower_bound_bytes, before = p.summary.arena_bytes;
      const bool tight = before * 200 <= lb * 201;
      const bool changed = refine_plan_offsets(p, 100000, /*repack_work=*/0);
      if (tight) {
        EXPECT_FALSE(changed) << "seed " << seed;
        continue;
      }
      if (!stack) ++best_of_loose;
      if (!changed) continue;
      PlanVerifyResult r = verify_plan(p);
      ASSERT_TRUE(r.ok()) << "seed " << seed << (stack ? " stacked" : "") << "\n" << errors(r);
      EXPECT_EQ(p.summary.lower_bound_bytes, lb);
      EXPECT_LT(p.summary.arena_bytes, before);
      EXPECT_TRUE(p.offset_method.ends_with("+search") || p.offset_method.ends_with("+first-fit"))
          << p.offset_method;
      if (p.offset_method.ends_with("+search")) ++searched;
      ++(stack ? stacked_refined : best_of_refined);
      if (stack && p.summary.arena_bytes * 200 <= lb * 201) ++stacked_tight;
    }
  }
  // Deterministic: best-of leaves 13 of these 30 plans more than 0.5% above
  // their lower bound and the refinement lowers all 13; it brings all 30
  // stacked arenas within 0.5%; the search (after the first-fit pass) has
  // the last word on 26 of the 43 it refines.
  EXPECT_GE(best_of_loose, 13);
  EXPECT_GE(stacked_tight, 30);
  EXPECT_GE(searched, 20);
  EXPECT_EQ(best_of_refined, best_of_loose);
  EXPECT_GE(stacked_refined, 30);
}

// The same plans refined by window repacking alone (no search): every
// refined plan verifies with the same lower bound and a smaller arena.
TEST(PlannerTest, RepackedOffsetsVerifyAndShrinkTheArena) {
  int loose = 0, refined = 0, repacked = 0, tight_after = 0;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    const Graph g = random_graph(seed, 20 + static_cast<int>(seed * 5 % 80));
    Plan p = plan_memory(g);
    const int64_t lb = p.summary.lower_bound_bytes, before = p.summary.arena_bytes;
    const bool changed = refine_plan_offsets(p, /*search_nodes=*/0, /*repack_work=*/4'000'000);
    if (before * 200 <= lb * 201) {
      EXPECT_FALSE(changed) << "seed " << seed;
      continue;
    }
    ++loose;
    if (!changed) continue;
    PlanVerifyResult r = verify_plan(p);
    ASSERT_TRUE(r.ok()) << "seed " << seed << "\n" << errors(r);
    EXPECT_EQ(p.summary.lower_bound_bytes, lb);
    EXPECT_LT(p.summary.arena_bytes, before);
    EXPECT_EQ(p.offset_method.find("+search"), std::string::npos) << p.offset_method;
    ++refined;
    repacked += p.offset_method.ends_with("+repack");
    tight_after += p.summary.arena_bytes * 200 <= lb * 201;
  }
  std::printf("best-of loose on %d of 30; refined %d (repack last on %d), %d within 0.5%%\n", loose,
              refined, repacked, tight_after);
  // Deterministic: of the 13 loose plans first fit and repacking lower 12,
  // repacking has the last word on 11, 10 end within 0.5%.
  EXPECT_GE(loose, 13);
  EXPECT_GE(refined, 12);
  EXPECT_GE(repacked, 10);
  EXPECT_GE(tight_after, 9);
}

TEST(PlannerTest, RandomSchedulesOfOneGraphVerify) {
  // Property: any topological order gives a plan the verifier accepts.
  Graph g = random_graph(7, 80);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 30; ++trial) {
    // Random topological order: Kahn's algorithm picking a random ready node.
    std::vector<int> pending(g.num_nodes(), 0);
    auto cons = g.consumers();
    for (uint32_t i = 0; i < g.num_nodes(); ++i)
      for (TensorId in : g.node(NodeId(i)).inputs)
        if (g.tensor(in).producer.valid()) ++pending[i];
    std::vector<uint32_t> ready;
    for (uint32_t i = 0; i < g.num_nodes(); ++i)
      if (!pending[i]) ready.push_back(i);
    std::vector<NodeId> order;
    while (!ready.empty()) {
      size_t k = rng() % ready.size();
      uint32_t n = ready[k];
      ready.erase(ready.begin() + static_cast<long>(k));
      order.push_back(NodeId(n));
      for (TensorId o : g.node(NodeId(n)).outputs)
        for (NodeId c : cons[o.v])
          if (--pending[c.v] == 0) ready.push_back(c.v);
    }
    Lifetimes lt = compute_lifetimes(g, order, 256);
    std::vector<Buffer> bufs;
    for (uint32_t i = 0; i < g.num_tensors(); ++i)
      if (lt.in_arena[i]) bufs.push_back({g.tensor(TensorId(i)).bytes(), lt.start[i], lt.end[i]});
    OffsetResult off = assign_offsets(bufs);
    EXPECT_GE(off.arena_bytes, lt.lower_bound);
    // Pairwise oracle, independent of the verifier's sweep.
    for (size_t a = 0; a < bufs.size(); ++a)
      for (size_t b = a + 1; b < bufs.size(); ++b) {
        bool time = bufs[a].start <= bufs[b].end && bufs[b].start <= bufs[a].end;
        bool space = off.offsets[a] < off.offsets[b] + bufs[b].size &&
                     off.offsets[b] < off.offsets[a] + bufs[a].size;
        ASSERT_FALSE(time && space) << "buffers " << a << " and " << b << " overlap";
      }
  }
}

TEST(PlanVerifyTest, CatchesOverlapMisalignmentAndBadSummary) {
  Graph g = random_graph(3, 40);
  Plan good = plan_memory(g);
  ASSERT_TRUE(verify_plan(good).ok()) << errors(verify_plan(good));

  // Move one arena tensor onto another that is live at the same time.
  Plan p = good;
  int32_t a = -1, b = -1;
  for (const PlanOp& op : p.ops) {
    if (op.inputs.empty() || op.outputs.empty()) continue;
    int32_t in = op.inputs[0], out = op.outputs[0];
    if (p.tensors[in].placement == Placement::arena && p.tensors[out].placement == Placement::arena) {
      a = in;
      b = out;
      break;
    }
  }
  ASSERT_GE(a, 0);
  p.tensors[b].offset = p.tensors[a].offset;
  PlanVerifyResult r = verify_plan(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(errors(r).find("overlap"), std::string::npos) << errors(r);

  p = good;
  p.tensors[b].offset += 8;
  EXPECT_NE(errors(verify_plan(p)).find("alignment"), std::string::npos);

  p = good;
  p.summary.lower_bound_bytes -= 256;
  EXPECT_NE(errors(verify_plan(p)).find("lower_bound_bytes"), std::string::npos);

  p = good;
  p.budget_bytes = p.summary.peak_bytes - 1;
  EXPECT_NE(errors(verify_plan(p)).find("exceeds the budget"), std::string::npos);

  p = good;
  std::swap(p.ops[0], p.ops[p.ops.size() - 1]);  // a read now precedes its write
  EXPECT_NE(errors(verify_plan(p)).find("before any op writes it"), std::string::npos);
}

TEST(PlanJsonTest, RoundTripsAndRejectsCorruption) {
  Graph g = random_graph(5, 30);
  Plan p = plan_memory(g);
  p.model = "random.onnx";
  p.dims["batch"] = 4;
  std::string text = plan_to_json(p);
  Plan q = plan_from_json(text, "p.json");
  EXPECT_EQ(plan_to_json(q), text);
  EXPECT_TRUE(verify_plan(q).ok());

  EXPECT_THROW(plan_from_json(text.substr(0, text.size() / 2), "p.json"), Error);
  EXPECT_THROW(plan_from_json("[1,2]", "p.json"), Error);
  std::string bad = text;
  bad.replace(bad.find("\"offset\": "), 10, "\"offset\": \"x\", \"o\": ");
  try {
    plan_from_json(bad, "p.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensors[0].offset' must be an integer"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace memplan
