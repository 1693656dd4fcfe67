// Gradient-check cases: nn family (placeholder until the family lands).
#include "test/grad_check.h"

namespace memplan::gradcheck {

std::vector<GradCase> nn_cases() { return {}; }

}  // namespace memplan::gradcheck
