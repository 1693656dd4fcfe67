// Op definitions: grad_elementwise family (placeholder until the family lands).
#include "compiler/ops_common.h"

namespace memplan::ops {

void register_grad_elementwise(std::vector<OpDef>& t) { (void)t; }

}  // namespace memplan::ops
