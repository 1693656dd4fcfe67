// Gradient-check cases: data family (placeholder until the family lands).
#include "test/grad_check.h"

namespace memplan::gradcheck {

std::vector<GradCase> data_cases() { return {}; }

}  // namespace memplan::gradcheck
