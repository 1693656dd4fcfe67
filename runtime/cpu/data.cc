// CPU kernels: data family (placeholder until the family lands).
#include "runtime/kernels_internal.h"

namespace memplan::kernels {

void register_data(Table& t) { (void)t; }

}  // namespace memplan::kernels
