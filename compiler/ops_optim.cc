// Op definitions: optim family (placeholder until the family lands).
#include "compiler/ops_common.h"

namespace memplan::ops {

void register_optim(std::vector<OpDef>& t) { (void)t; }

}  // namespace memplan::ops
