// The planned CPU executor (runtime/executor.h).
//
//  1. bind_plan (runtime/plan_binding.h): parse plan.program, check it
//     against the plan, resolve aliases, check bounds; find every kernel;
//  2. allocate ONE arena and ONE resident region (256-byte aligned) and bind
//     every tensor to base + offset (aliases resolve to their root's address);
//     copy constant data into the resident region;
//  3. build one KernelArgs per op, once: a step only fills the step counter
//     in and calls the kernels, so it allocates nothing;
//  4. step(): optional NaN poison, inputs copied into the arena, ops in plan
//     order, optional finite check per op (f32/f64/f16/bf16 outputs; with
//     loss scaling not on gradient-role outputs), loss read back.
// Guard mode re-plans the arena with assign_offsets over the lifetimes the
// verifier recomputes from the op list, every buffer enlarged by 2 x 64 canary
// bytes and the tensor placed at offset + 64. A buffer's canaries are written
// just before the op that starts its lifetime (a dead buffer's bytes may be
// reused by others, so earlier writes would be legitimate) and checked after
// every op that writes the buffer; tensors are then only 64-byte aligned.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "compiler/low_precision.h"
#include "compiler/op_registry.h"
#include "passes/assign_offsets.h"
#include "runtime/executor.h"
#include "runtime/kernel.h"
#include "runtime/low_precision_run.h"
#include "runtime/plan_binding.h"

namespace memplan {

namespace {

constexpr int64_t kCanary = 64;
constexpr uint8_t kCanaryByte = 0xA5;
constexpr int64_t kBaseAlign = 256;

int64_t round_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using Block = std::unique_ptr<uint8_t, FreeDeleter>;

/// 256-byte aligned, zero-filled; never null (even for 0 bytes).
Block alloc_block(int64_t bytes, const char* what) {
  int64_t n = round_up(std::max<int64_t>(bytes, 1), kBaseAlign);
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kBaseAlign, static_cast<size_t>(n)));
  if (!p)
    throw Error(std::string("cannot allocate the ") + what + " (" + std::to_string(bytes) +
                " bytes)");
  std::memset(p, 0, static_cast<size_t>(n));
  return Block(p);
}

std::string op_desc(size_t s, const PlanOp& op) { return plan_op_desc(s, op); }

/// A guarded buffer: [offset, offset + 64) and [offset + 64 + bytes, +64) hold canaries.
struct Guarded {
  int64_t offset = 0;  // start of the leading canary
  int64_t bytes = 0;   // payload bytes
  std::string label;
};

class CpuExecutor final : public Executor {
 public:
  CpuExecutor(const Plan& plan, const ExecOptions& opts) : plan_(plan), opts_(opts) {
    bind_plan(plan_, b_);
    for (const PlanOp& op : plan_.ops) loss_scaling_ |= op.op == "UnscaleGradients";
    find_kernels();
    if (opts_.guard) plan_guarded_arena();
    arena_size_ = opts_.guard ? arena_size_ : plan_.summary.arena_bytes;
    resident_size_ = plan_.summary.resident_bytes;
    arena_ = alloc_block(arena_size_, "arena");
    resident_ = alloc_block(resident_size_, "resident region");
    for (size_t s = 0; s < plan_.ops.size(); ++s)
      if (staged_outside_plan(*node_[s]))
        scratch_size_ = std::max(scratch_size_, cpu_workspace_bytes(g_, *node_[s]));
    if (scratch_size_ > 0) scratch_ = alloc_block(scratch_size_, "staging scratch");
    bind_pointers();
    load_constants();
    build_args();
  }

  StepResult step(const std::map<std::string, std::vector<uint8_t>>& inputs) override {
    auto t0 = std::chrono::steady_clock::now();
    StepResult r;
    if (opts_.poison) std::memset(arena_.get(), 0xFF, static_cast<size_t>(arena_size_));
    copy_inputs(inputs);
    for (size_t s = 0; s < plan_.ops.size(); ++s) {
      if (opts_.guard) fill_canaries(s);
      KernelArgs& a = args_[s];
      a.step = step_;
      run_kernel(kernels_[s], a);
      if (opts_.guard) check_canaries(s);
      if (opts_.check_finite && !outputs_finite(s, r)) {
        r.seconds = seconds_since(t0);
        return r;
      }
    }
    if (plan_.loss >= 0) r.loss = read_scalar(plan_.loss);
    if (opts_.check_finite && plan_.loss >= 0 && !std::isfinite(r.loss)) {
      // No op wrote a NaN (checked above), so the loss overflowed to inf.
      r.finite = false;
      r.first_nonfinite_op = "the loss '" + plan_.tensors[plan_.loss].name + "' is " +
                             std::to_string(r.loss) + " (it overflowed; no op produced a NaN)";
      r.seconds = seconds_since(t0);
      return r;
    }
    ++step_;
    r.seconds = seconds_since(t0);
    return r;
  }

  std::vector<uint8_t> read(std::string_view name) const override {
    int32_t i = plan_index(name);
    const PlanTensor& t = plan_.tensors[i];
    if (!readable_[i])
      throw Error("cannot read tensor '" + t.name + "' (role " + std::string(role_name(t.role)) +
                  "): only resident tensors and graph outputs can be read");
    const uint8_t* p = ptr_[i];
    return std::vector<uint8_t>(p, p + t.bytes);
  }

  void write(std::string_view name, const std::vector<uint8_t>& bytes) override {
    int32_t i = plan_index(name);
    const PlanTensor& t = plan_.tensors[i];
    check_write(t, bytes.size());
    if (!bytes.empty()) std::memcpy(ptr_[i], bytes.data(), bytes.size());
  }

  uint64_t step_count() const override { return step_; }
  void set_step_count(uint64_t s) override { step_ = s; }
  int64_t arena_bytes() const override { return arena_size_; }
  int64_t resident_bytes() const override { return resident_size_; }
  int64_t scratch_bytes() const override { return scratch_size_; }
  const Graph& graph() const override { return g_; }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  int32_t plan_index(std::string_view name) const { return b_.index(name); }

  /// Step 1 (the rest is bind_plan's): every op needs a CPU kernel.
  void find_kernels() {
    for (size_t s = 0; s < plan_.ops.size(); ++s) {
      KernelFn k = find_kernel(plan_.ops[s].op);
      if (!k)
        throw Error(op_desc(s, plan_.ops[s]) + ": the CPU backend has no kernel for op " + plan_.ops[s].op);
      kernels_.push_back(k);
    }
  }

  bool in_arena(int32_t i) const {
    return plan_.tensors[i].placement == Placement::arena && plan_.tensors[i].bytes > 0;
  }

  /// Guard mode: lifetimes as the verifier computes them (from the op list),
  /// every buffer enlarged by two canaries, offsets assigned afresh.
  void plan_guarded_arena() {
    const int32_t n = static_cast<int32_t>(plan_.tensors.size());
    const int32_t steps = static_cast<int32_t>(plan_.ops.size());
    std::vector<int32_t> start(n, -1), end(n, -1);
    for (int32_t t : plan_.inputs) start[root_[t]] = 0;
    for (int32_t s = 0; s < steps; ++s) {
      for (int32_t t : plan_.ops[s].inputs)
        if (t >= 0) end[root_[t]] = std::max(end[root_[t]], s);
      for (int32_t t : plan_.ops[s].outputs) {
        if (t < 0) continue;
        if (root_[t] == t) start[t] = s;
        end[root_[t]] = std::max(end[root_[t]], s);
      }
    }
    for (int32_t t : plan_.outputs) end[root_[t]] = std::max(0, steps - 1);
    std::vector<Buffer> bufs;
    std::vector<int32_t> owner;  // tensor index, or -(step + 1) for a workspace
    for (int32_t i = 0; i < n; ++i) {
      if (!in_arena(i)) continue;
      int32_t s0 = std::max(start[i], 0);
      bufs.push_back({plan_.tensors[i].bytes + 2 * kCanary, s0, std::max(end[i], s0)});
      owner.push_back(i);
    }
    for (int32_t s = 0; s < steps; ++s) {
      if (plan_.ops[s].workspace_bytes <= 0) continue;
      bufs.push_back({plan_.ops[s].workspace_bytes + 2 * kCanary, s, s});
      owner.push_back(-(s + 1));
    }
    OffsetResult r = assign_offsets(bufs, {.method = OffsetMethod::best_of, .alignment = plan_.alignment});
    arena_size_ = r.arena_bytes;
    guard_off_.assign(n, -1);
    ws_guard_off_.assign(steps, -1);
    starting_.assign(steps + 1, {});
    writes_.assign(steps, {});
    for (size_t b = 0; b < bufs.size(); ++b) {
      int32_t o = owner[b];
      Guarded gd;
      gd.offset = r.offsets[b];
      if (o >= 0) {
        gd.bytes = plan_.tensors[o].bytes;
        gd.label = "tensor '" + plan_.tensors[o].name + "'";
        guard_off_[o] = gd.offset + kCanary;
      } else {
        int32_t s = -o - 1;
        gd.bytes = plan_.ops[s].workspace_bytes;
        gd.label = "the workspace";
        ws_guard_off_[s] = gd.offset + kCanary;
        writes_[s].push_back(guards_.size());
      }
      // Inputs' canaries go in before step 0 (with the inputs themselves).
      starting_[bufs[b].start].push_back(guards_.size());
      if (o >= 0) guard_index_[o] = guards_.size();
      guards_.push_back(std::move(gd));
    }
    for (int32_t s = 0; s < steps; ++s)
      for (int32_t t : plan_.ops[s].outputs)
        if (t >= 0 && guard_index_.count(root_[t])) writes_[s].push_back(guard_index_[root_[t]]);
  }

  void bind_pointers() {
    const int32_t n = static_cast<int32_t>(plan_.tensors.size());
    ptr_.assign(n, nullptr);
    for (int32_t i = 0; i < n; ++i) {
      const PlanTensor& r = plan_.tensors[root_[i]];
      if (r.placement == Placement::resident) {
        ptr_[i] = resident_.get() + r.offset;
      } else if (opts_.guard) {
        int64_t off = guard_off_[root_[i]];
        ptr_[i] = arena_.get() + (off >= 0 ? off : 0);
      } else {
        ptr_[i] = arena_.get() + (r.bytes > 0 ? r.offset : 0);
      }
    }
  }

  void load_constants() {
    for (size_t i = 0; i < plan_.tensors.size(); ++i) {
      const PlanTensor& pt = plan_.tensors[i];
      if (pt.placement != Placement::resident) continue;
      const Tensor& t = g_.tensor(gid_[i]);
      if (t.data && static_cast<int64_t>(t.data->size()) == pt.bytes) {
        if (pt.bytes > 0) std::memcpy(ptr_[i], t.data->data(), t.data->size());
      } else if (pt.role == Role::constant && pt.bytes > 0) {
        throw Error("constant '" + pt.name + "' has no data in the plan's program; recompile the plan");
      }
    }
  }

  TensorArg arg(int32_t i) const {
    TensorArg a;
    if (i < 0) return a;
    const PlanTensor& t = plan_.tensors[i];
    a.data = ptr_[i];
    a.dtype = t.dtype;
    a.shape = t.shape;
    a.numel = num_elements(t.shape);
    return a;
  }

  void build_args() {
    args_.resize(plan_.ops.size());
    for (size_t s = 0; s < plan_.ops.size(); ++s) {
      const PlanOp& op = plan_.ops[s];
      KernelArgs& a = args_[s];
      a.node = node_[s];
      for (int32_t t : op.inputs) a.in.push_back(arg(t));
      for (int32_t t : op.outputs) a.out.push_back(arg(t));
      if (staged_outside_plan(*node_[s])) {
        // Staging and the op's own workspace in the scratch; the planned
        // workspace (the own part alone) stays unused.
        a.workspace = scratch_.get();
        a.workspace_bytes = cpu_workspace_bytes(g_, *node_[s]);
      } else if (op.workspace_bytes > 0) {
        int64_t off = opts_.guard ? ws_guard_off_[s] : op.workspace_offset;
        a.workspace = arena_.get() + off;
        a.workspace_bytes = op.workspace_bytes;
      }
      a.seed = opts_.seed;
      a.rng_key = node_rng_key(*node_[s]);
    }
  }

  void copy_inputs(const std::map<std::string, std::vector<uint8_t>>& inputs) {
    if (inputs.size() != plan_.inputs.size()) {
      for (const auto& [name, bytes] : inputs) {
        auto it = b_.by_name.find(name);
        bool is_input = false;
        if (it != b_.by_name.end())
          for (int32_t t : plan_.inputs) is_input |= t == it->second;
        if (!is_input) throw Error("'" + name + "' is not an input of the plan");
      }
    }
    if (opts_.guard)
      for (size_t k : starting_[0]) fill_one(guards_[k]);
    for (int32_t t : plan_.inputs) {
      const PlanTensor& pt = plan_.tensors[t];
      auto it = inputs.find(pt.name);
      if (it == inputs.end()) throw Error("no data for input '" + pt.name + "'");
      if (static_cast<int64_t>(it->second.size()) != pt.bytes)
        throw Error("input '" + pt.name + "': " + std::to_string(it->second.size()) +
                    " bytes given, " + std::string(dtype_name(pt.dtype)) + shape_str(pt.shape) +
                    " needs " + std::to_string(pt.bytes));
      if (pt.bytes > 0) std::memcpy(ptr_[t], it->second.data(), it->second.size());
    }
  }

  void fill_one(const Guarded& gd) {
    uint8_t* b = arena_.get() + gd.offset;
    std::memset(b, kCanaryByte, kCanary);
    std::memset(b + kCanary + gd.bytes, kCanaryByte, kCanary);
  }

  void fill_canaries(size_t s) {
    if (s == 0) return;  // step 0's buffers were filled with the inputs
    for (size_t k : starting_[s]) fill_one(guards_[k]);
  }

  void check_canaries(size_t s) const {
    for (size_t k : writes_[s]) {
      const Guarded& gd = guards_[k];
      const uint8_t* b = arena_.get() + gd.offset;
      for (int64_t j = 0; j < kCanary; ++j) {
        bool before = b[j] != kCanaryByte;
        bool after = b[kCanary + gd.bytes + j] != kCanaryByte;
        if (!before && !after) continue;
        throw Error("guard: " + op_desc(s, plan_.ops[s]) + " wrote outside " + gd.label +
                    (before ? " (canary before its start, byte -" + std::to_string(kCanary - j)
                            : " (canary after its end, byte +" + std::to_string(j)) +
                    ")");
      }
    }
  }

  /// Per op, only NaN counts: -inf is a legitimate intermediate (attention
  /// masks fill with -inf before Softmax). The loss itself must be finite.
  template <class T>
  static int64_t first_nonfinite(const void* p, int64_t n) {
    const T* x = static_cast<const T*>(p);
    for (int64_t i = 0; i < n; ++i)
      if (std::isnan(x[i])) return i;
    return -1;
  }

  /// f16 / bf16: NaN is an all-ones exponent with a nonzero mantissa, i.e.
  /// the magnitude bits exceed infinity's (0x7c00 / 0x7f80).
  static int64_t first_nan_low(const void* p, int64_t n, uint16_t inf_bits) {
    const auto* x = static_cast<const uint16_t*>(p);
    for (int64_t i = 0; i < n; ++i)
      if ((x[i] & 0x7fffu) > inf_bits) return i;
    return -1;
  }

  bool outputs_finite(size_t s, StepResult& r) const {
    const KernelArgs& a = args_[s];
    for (size_t k = 0; k < a.out.size(); ++k) {
      const TensorArg& o = a.out[k];
      if (!o.present()) continue;
      // With loss scaling an overflowing backward is a skipped step, not an
      // error: UnscaleGradients detects it and the optimizer skips.
      if (loss_scaling_ && plan_.tensors[plan_.ops[s].outputs[k]].role == Role::gradient) continue;
      int64_t bad = o.dtype == DType::f32   ? first_nonfinite<float>(o.data, o.numel)
                    : o.dtype == DType::f64 ? first_nonfinite<double>(o.data, o.numel)
                    : o.dtype == DType::f16  ? first_nan_low(o.data, o.numel, 0x7c00)
                    : o.dtype == DType::bf16 ? first_nan_low(o.data, o.numel, 0x7f80)
                                             : -1;
      if (bad < 0) continue;
      r.finite = false;
      r.first_nonfinite_op = op_desc(s, plan_.ops[s]) + " wrote NaN to '" +
                             plan_.tensors[plan_.ops[s].outputs[k]].name + "' (element " +
                             std::to_string(bad) + ")";
      return false;
    }
    return true;
  }

  double read_scalar(int32_t i) const {
    const PlanTensor& t = plan_.tensors[i];
    if (t.bytes == 0) return 0;
    switch (t.dtype) {
      case DType::f32: {
        float v;
        std::memcpy(&v, ptr_[i], sizeof v);
        return v;
      }
      case DType::f64: {
        double v;
        std::memcpy(&v, ptr_[i], sizeof v);
        return v;
      }
      default:
        return 0;  // f16/bf16 losses are not produced by memplan's training step
    }
  }

  Plan plan_;
  ExecOptions opts_;
  PlanBinding b_;
  const Graph& g_ = b_.g;
  const std::vector<TensorId>& gid_ = b_.gid;
  const std::vector<const Node*>& node_ = b_.node;
  const std::vector<int32_t>& root_ = b_.root;
  const std::vector<char>& readable_ = b_.readable;
  std::vector<KernelFn> kernels_;
  int64_t arena_size_ = 0, resident_size_ = 0, scratch_size_ = 0;
  Block arena_, resident_, scratch_;
  std::vector<uint8_t*> ptr_;
  std::vector<KernelArgs> args_;
  uint64_t step_ = 0;
  bool loss_scaling_ = false;  // the plan has UnscaleGradients: gradients are not NaN-checked
  // guard mode
  std::vector<int64_t> guard_off_, ws_guard_off_;
  std::vector<Guarded> guards_;
  std::map<int32_t, size_t> guard_index_;
  std::vector<std::vector<size_t>> starting_;  // per step: guards whose buffer starts there
  std::vector<std::vector<size_t>> writes_;    // per step: guards of the op's outputs and workspace
};

}  // namespace

std::unique_ptr<Executor> make_cpu_executor(const Plan& plan, const ExecOptions& opts) {
  return std::make_unique<CpuExecutor>(plan, opts);
}

}  // namespace memplan
