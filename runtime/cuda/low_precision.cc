// Low-precision storage on the CUDA backend: the CPU's staging model
// (compiler/low_precision.h, runtime/low_precision_run.h run_kernel) on the
// device, with the same layout (stage_low_precision). An op that reads or
// writes f16/bf16 tensors and is neither data movement or Cast
// (op_handles_low_precision) nor native_low_precision (the ops of
// op_runs_low_precision_on_gpu, whose kernels run in the operands' own dtype) gets
// f32 copies of those operands at the start of its planned workspace, where
// the plan reserved them; its f32 Prepare sees the copies and the rest of the
// workspace. The Launch widens the inputs, runs the f32 launch and rounds the
// outputs to nearest even (launch_cast_float, equal to the CPU's codecs). So
// every low-precision plan runs with no memory outside the plan, and these
// ops compute what the CPU's do.
#include <algorithm>

#include "compiler/low_precision.h"
#include "runtime/low_precision_run.h"
#include "runtime/cuda/ops.h"

namespace memplan::cuda {

Launch prepare_op(const KernelArgs& a, Ctx& c) {
  const auto it = op_table().find(a.node->op);
  if (it == op_table().end()) fail(a, "the CUDA backend has no kernel for this op");
  const Prepare prep = it->second;
  const bool staged = !op_handles_low_precision(a.node->op) && !staged_outside_plan(*a.node) &&
                      (std::any_of(a.in.begin(), a.in.end(), is_low_precision) ||
                       std::any_of(a.out.begin(), a.out.end(), is_low_precision));
  if (!staged) return prep(a, c);
  const std::optional<KernelArgs> b = stage_low_precision(a);
  if (!b)
    fail(a, "the planned workspace (" + std::to_string(a.workspace_bytes) +
                " bytes) does not hold the f32 copies of its f16/bf16 operands; recompile the "
                "plan with this version of memplan");
  struct Copy {
    const void* from;
    FloatType from_type;
    void* to;
    FloatType to_type;
    int64_t n;
  };
  std::vector<Copy> widen, narrow;
  for (size_t i = 0; i < a.in.size(); ++i)
    if (is_low_precision(a.in[i]))
      widen.push_back({a.in[i].data, *float_type(a.in[i].dtype), b->in[i].data, FloatType::f32,
                       a.in[i].numel});
  for (size_t o = 0; o < a.out.size(); ++o)
    if (is_low_precision(a.out[o]))
      narrow.push_back({b->out[o].data, FloatType::f32, a.out[o].data,
                        *float_type(a.out[o].dtype), a.out[o].numel});
  const Launch inner = prep(*b, c);
  return [=](Stream s) {
    for (const Copy& k : widen)
      launch_cast_float(k.from, k.from_type, k.to, k.to_type, k.n, s);
    inner(s);
    for (const Copy& k : narrow)
      launch_cast_float(k.from, k.from_type, k.to, k.to_type, k.n, s);
  };
}

} // namespace memplan::cuda
