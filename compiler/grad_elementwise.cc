// Gradient rules: elementwise family (placeholder until the family lands).
#include "compiler/grad_internal.h"

namespace memplan::grads {

void register_elementwise(Table& t) { (void)t; }

}  // namespace memplan::grads
