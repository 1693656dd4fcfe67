// Executing a training plan for tests: two CPU steps from random weights and
// synthetic data, then every resident parameter / state / optimizer state;
// and bit-for-bit comparison of two such traces. Shared by the budget tests
// (remat_pass_test.cc, budget_search_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "compiler/plan.h"
#include "runtime/data_feed.h"
#include "runtime/executor.h"
#include "runtime/weights.h"

namespace memplan::testing {

struct Trace {
  std::vector<double> losses;
  std::map<std::string, std::vector<uint8_t>> resident;
};

inline Trace execute_steps(const Plan& p, uint64_t exec_seed, uint64_t init_seed,
                           uint64_t feed_seed, int steps = 2) {
  auto ex = make_cpu_executor(p, {.seed = exec_seed});
  init_random(*ex, init_seed);
  auto feed = make_synthetic_feed(ex->graph(), feed_seed);
  Trace t;
  for (int k = 0; k < steps; ++k) {
    StepResult r = ex->step(feed->batch(static_cast<uint64_t>(k)));
    EXPECT_TRUE(r.finite) << r.first_nonfinite_op;
    t.losses.push_back(r.loss);
  }
  for (const PlanTensor& pt : p.tensors)
    if (pt.placement == Placement::resident &&
        (pt.role == Role::parameter || pt.role == Role::optimizer_state || pt.role == Role::state))
      t.resident[pt.name] = ex->read(pt.name);
  return t;
}

inline void expect_identical(const Trace& a, const Trace& b, const std::string& what) {
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (size_t i = 0; i < a.losses.size(); ++i)
    EXPECT_EQ(std::memcmp(&a.losses[i], &b.losses[i], sizeof(double)), 0)
        << what << " step " << i << ": " << a.losses[i] << " vs " << b.losses[i];
  ASSERT_EQ(a.resident.size(), b.resident.size()) << what;
  for (const auto& [name, bytes] : a.resident) {
    auto it = b.resident.find(name);
    ASSERT_NE(it, b.resident.end()) << what << ": " << name;
    EXPECT_TRUE(bytes == it->second) << what << ": '" << name << "' differs";
  }
}

}  // namespace memplan::testing
