// CPU kernels: elementwise family (placeholder until the family lands).
#include "runtime/kernels_internal.h"

namespace memplan::kernels {

void register_elementwise(Table& t) { (void)t; }

}  // namespace memplan::kernels
