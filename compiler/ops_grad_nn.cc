// Op definitions: grad_nn family (placeholder until the family lands).
#include "compiler/ops_common.h"

namespace memplan::ops {

void register_grad_nn(std::vector<OpDef>& t) { (void)t; }

}  // namespace memplan::ops
