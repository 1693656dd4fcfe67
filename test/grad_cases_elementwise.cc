// Gradient-check cases: elementwise family (placeholder until the family lands).
#include "test/grad_check.h"

namespace memplan::gradcheck {

std::vector<GradCase> elementwise_cases() { return {}; }

}  // namespace memplan::gradcheck
