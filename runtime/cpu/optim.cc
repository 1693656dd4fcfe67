// CPU kernels: optim family (placeholder until the family lands).
#include "runtime/kernels_internal.h"

namespace memplan::kernels {

void register_optim(Table& t) { (void)t; }

}  // namespace memplan::kernels
