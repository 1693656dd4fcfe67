// Internal: gradient-rule families register into the table (compiler/grad.cc).
#pragma once

#include <map>
#include <string_view>

#include "compiler/grad.h"

namespace memplan::grads {

using Table = std::map<std::string_view, GradFn>;

void register_elementwise(Table& t);  // compiler/grad_elementwise.cc
void register_data(Table& t);         // compiler/grad_data.cc (reshape, transpose, concat, split, slice, gather, expand, reductions, where, cast, ...)
void register_nn(Table& t);           // compiler/grad_nn.cc (conv, pools, gemm, matmul, softmax, norms, dropout, losses)

}  // namespace memplan::grads
