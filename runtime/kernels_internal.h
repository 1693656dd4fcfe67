// Internal: how kernel families register into the table (runtime/kernels.cc).
// Each family lives in its own file and adds its ops here.
#pragma once

#include <map>
#include <string_view>

#include "runtime/kernel.h"

namespace memplan::kernels {

using Table = std::map<std::string_view, KernelFn>;

void register_elementwise(Table& t);  // runtime/cpu/elementwise.cc: unary/binary math, comparisons, logic, Where, Cast, activations and their *Grad ops
void register_data(Table& t);         // runtime/cpu/data.cc: reshape/transpose/concat/split/slice/gather/expand/pad/tile/reductions/Shape/Range/... and grads
void register_nn(Table& t);           // runtime/cpu/nn.cc (+ conv.cc, norm.cc, loss.cc): conv, pools, gemm, matmul, softmax, norms, dropout, losses and grads
void register_optim(Table& t);        // runtime/cpu/optim.cc: SGDUpdate, AdamUpdate, StepIncrement, GradAccumulate, GlobalNormScale, ...

}  // namespace memplan::kernels
