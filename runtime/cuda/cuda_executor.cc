// The planned CUDA executor (runtime/executor.h, make_cuda_executor).
//
//  1. bind_plan (runtime/plan_binding.h), as the CPU executor does; every op
//     must be in the CUDA op table (Error naming op and node otherwise);
//  2. device memory: ONE cudaMalloc for the arena and ONE for the resident
//     region, before anything else of the step; nothing is allocated later.
//     A small control block (Dropout step, NaN flag) is a slot of a
//     __device__ array (runtime/cuda/elementwise.cu), not an allocation;
//  3. cuBLAS and cuDNN handles on one stream; each op's Prepare (ops.h)
//     builds descriptors, picks cuDNN algorithms on the plan's buffers within
//     the op's planned workspace, and returns its launch;
//  4. the step (every launch, NaN checks when check_finite, and the step
//     advance) is captured once as a CUDA graph;
//  5. step(): inputs are copied into one of two pinned host staging buffers
//     (alternating, so the host fills one while the previous copy may still
//     be in flight), copied asynchronously into their planned arena offsets,
//     then the graph is replayed and the loss and the NaN flag read back.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <mutex>

#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/ops.h"
#include "runtime/data_feed.h"
#include "runtime/plan_binding.h"
#include "runtime/weights.h"

namespace memplan {

namespace {

void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw Error("CUDA: " + what + " failed: " + cudaGetErrorString(e));
}

/// Control slots in use in this process (one per live executor).
std::mutex g_slots_mu;
bool g_slots[cuda::kControlSlots] = {};

int claim_slot() {
  std::lock_guard<std::mutex> l(g_slots_mu);
  for (int i = 0; i < cuda::kControlSlots; ++i)
    if (!g_slots[i]) return g_slots[i] = true, i;
  throw Error("too many CUDA executors alive in one process (at most " +
              std::to_string(cuda::kControlSlots) + ")");
}
void release_slot(int i) {
  std::lock_guard<std::mutex> l(g_slots_mu);
  g_slots[i] = false;
}

class CudaExecutor final : public Executor, public CudaExecutorInfo {
 public:
  CudaExecutor(const Plan& plan, const ExecOptions& opts) : plan_(plan), opts_(opts) {
    if (opts_.guard)
      throw Error("--guard is supported by the CPU backend only; use --device cpu --guard to check "
                  "canaries");
    bind_plan(plan_, b_);
    for (size_t s = 0; s < plan_.ops.size(); ++s)
      if (!cuda::op_table().count(plan_.ops[s].op))
        throw Error(plan_op_desc(s, plan_.ops[s]) + " (node '" + b_.node[s]->name +
                    "'): the CUDA backend has no kernel for op " + plan_.ops[s].op +
                    "; run this plan with --device cpu");
    (void)cuda_device_info(); // Error when no device is visible
    free_before_ = free_bytes();
    slot_ = claim_slot();
    try {
      setup();
    } catch (...) {
      teardown();
      throw;
    }
  }

  ~CudaExecutor() override { teardown(); }

  StepResult step(const std::map<std::string, std::vector<uint8_t>>& inputs) override {
    auto t0 = std::chrono::steady_clock::now();
    StepResult r;
    if (opts_.poison)
      check(cudaMemsetAsync(arena_, 0xFF, static_cast<size_t>(arena_size_), stream_), "poison");
    stage_inputs(inputs);
    check(cudaGraphLaunch(exec_, stream_), "cudaGraphLaunch");
    cuda::Control ctl{};
    check(cudaMemcpyAsync(&ctl, control_, sizeof ctl, cudaMemcpyDeviceToHost, stream_),
          "read control");
    float loss = 0;
    if (plan_.loss >= 0 && plan_.tensors[plan_.loss].bytes == 4)
      check(cudaMemcpyAsync(&loss, ptr_[plan_.loss], 4, cudaMemcpyDeviceToHost, stream_),
            "read loss");
    check(cudaStreamSynchronize(stream_), "the step");
    r.loss = loss;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (opts_.check_finite && ctl.bad_op != INT32_MAX) {
      const size_t s = static_cast<size_t>(ctl.bad_op);
      r.finite = false;
      r.first_nonfinite_op =
          plan_op_desc(s, plan_.ops[s]) + " wrote NaN to '" +
          plan_.tensors[plan_.ops[s].outputs[static_cast<size_t>(ctl.bad_out)]].name +
          "' (element " + std::to_string(ctl.bad_elem) + ")";
      reset_control(step_); // the graph advanced the device step; keep host and device equal
      return r;
    }
    if (opts_.check_finite && plan_.loss >= 0 && !std::isfinite(r.loss)) {
      r.finite = false;
      r.first_nonfinite_op = "the loss '" + plan_.tensors[plan_.loss].name + "' is " +
                             std::to_string(r.loss) + " (it overflowed; no op produced a NaN)";
      reset_control(step_);
      return r;
    }
    ++step_;
    return r;
  }

  std::vector<uint8_t> read(std::string_view name) const override {
    const int32_t i = b_.index(name);
    const PlanTensor& t = plan_.tensors[i];
    if (!b_.readable[i])
      throw Error("cannot read tensor '" + t.name + "' (role " + std::string(role_name(t.role)) +
                  "): only resident tensors and graph outputs can be read");
    std::vector<uint8_t> v(static_cast<size_t>(t.bytes));
    if (t.bytes > 0)
      check(cudaMemcpy(v.data(), ptr_[i], v.size(), cudaMemcpyDeviceToHost),
            "read '" + t.name + "'");
    return v;
  }

  void write(std::string_view name, const std::vector<uint8_t>& bytes) override {
    const int32_t i = b_.index(name);
    const PlanTensor& t = plan_.tensors[i];
    check_write(t, bytes.size());
    if (!bytes.empty())
      check(cudaMemcpy(ptr_[i], bytes.data(), bytes.size(), cudaMemcpyHostToDevice),
            "write '" + t.name + "'");
  }

  uint64_t step_count() const override { return step_; }
  void set_step_count(uint64_t s) override {
    step_ = s;
    reset_control(s);
  }
  int64_t arena_bytes() const override { return arena_size_; }
  int64_t resident_bytes() const override { return resident_size_; }
  const Graph& graph() const override { return b_.g; }

  // CudaExecutorInfo
  int64_t device_allocated_bytes() const override { return allocated_; }
  int64_t free_bytes_before() const override { return free_before_; }
  void time_ops(std::vector<double>& seconds, int repeats) override;

 private:
  static int64_t free_bytes() {
    size_t fr = 0, total = 0;
    check(cudaMemGetInfo(&fr, &total), "cudaMemGetInfo");
    return static_cast<int64_t>(fr);
  }

  void setup() {
    arena_size_ = plan_.summary.arena_bytes;
    resident_size_ = plan_.summary.resident_bytes;
    // Step 2: the only two allocations, before handles and graphs exist.
    check(cudaMalloc(&arena_, static_cast<size_t>(std::max<int64_t>(arena_size_, 1))),
          "cudaMalloc of the arena (" + std::to_string(arena_size_) + " bytes)");
    check(cudaMalloc(&resident_, static_cast<size_t>(std::max<int64_t>(resident_size_, 1))),
          "cudaMalloc of the resident region (" + std::to_string(resident_size_) + " bytes)");
    allocated_ = arena_size_ + resident_size_;
    check(cudaMemset(resident_, 0, static_cast<size_t>(std::max<int64_t>(resident_size_, 1))),
          "zeroing the resident region");
    control_ = cuda::control_slot(slot_);
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    if (cublasCreate(&ctx_.cublas) != CUBLAS_STATUS_SUCCESS)
      throw Error("CUDA: cublasCreate failed");
    cublasSetMathMode(ctx_.cublas,
                      opts_.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    if (cudnnCreate(&ctx_.cudnn) != CUDNN_STATUS_SUCCESS) throw Error("CUDA: cudnnCreate failed");
    ctx_.stream = stream_;
    ctx_.control = control_;
    ctx_.graph = &b_.g;
    ctx_.tf32 = opts_.allow_tf32;
    bind_pointers();
    load_constants();
    reset_control(0);
    prepare_ops();
    stage_ = {nullptr, nullptr};
    for (int32_t t : plan_.inputs)
      stage_bytes_ += plan_.tensors[t].bytes;
    for (auto& p : stage_)
      check(cudaHostAlloc(&p, static_cast<size_t>(std::max<int64_t>(stage_bytes_, 1)),
                          cudaHostAllocDefault),
            "cudaHostAlloc of an input staging buffer");
    capture();
  }

  void teardown() {
    if (stream_) cudaStreamSynchronize(stream_);
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    for (auto& f : ctx_.cleanup)
      f();
    if (ctx_.cudnn) cudnnDestroy(ctx_.cudnn);
    if (ctx_.cublas) cublasDestroy(ctx_.cublas);
    for (void* p : stage_)
      if (p) cudaFreeHost(p);
    if (stream_) cudaStreamDestroy(stream_);
    if (arena_) cudaFree(arena_);
    if (resident_) cudaFree(resident_);
    if (slot_ >= 0) release_slot(slot_);
    exec_ = nullptr, graph_ = nullptr, stream_ = nullptr, arena_ = resident_ = nullptr, slot_ = -1;
  }

  void bind_pointers() {
    const size_t n = plan_.tensors.size();
    ptr_.assign(n, nullptr);
    for (size_t i = 0; i < n; ++i) {
      const PlanTensor& r = plan_.tensors[static_cast<size_t>(b_.root[i])];
      uint8_t* base =
          static_cast<uint8_t*>(r.placement == Placement::resident ? resident_ : arena_);
      ptr_[i] = base + (r.bytes > 0 ? r.offset : 0);
    }
  }

  void load_constants() {
    for (size_t i = 0; i < plan_.tensors.size(); ++i) {
      const PlanTensor& pt = plan_.tensors[i];
      if (pt.placement != Placement::resident) continue;
      const Tensor& t = b_.g.tensor(b_.gid[i]);
      if (t.data && static_cast<int64_t>(t.data->size()) == pt.bytes) {
        if (pt.bytes > 0)
          check(cudaMemcpy(ptr_[i], t.data->data(), t.data->size(), cudaMemcpyHostToDevice),
                "constant '" + pt.name + "'");
      } else if (pt.role == Role::constant && pt.bytes > 0) {
        throw Error("constant '" + pt.name +
                    "' has no data in the plan's program; recompile the plan");
      }
    }
  }

  void reset_control(uint64_t step) {
    cuda::Control c{static_cast<unsigned long long>(step), INT32_MAX, 0, 0};
    check(cudaMemcpy(control_, &c, sizeof c, cudaMemcpyHostToDevice), "writing the control block");
  }

  TensorArg arg(int32_t i) const {
    TensorArg a;
    if (i < 0) return a;
    const PlanTensor& t = plan_.tensors[static_cast<size_t>(i)];
    a.data = ptr_[static_cast<size_t>(i)];
    a.dtype = t.dtype;
    a.shape = t.shape;
    a.numel = num_elements(t.shape);
    return a;
  }

  void prepare_ops() {
    for (size_t s = 0; s < plan_.ops.size(); ++s) {
      const PlanOp& op = plan_.ops[s];
      KernelArgs a;
      a.node = b_.node[s];
      for (int32_t t : op.inputs)
        a.in.push_back(arg(t));
      for (int32_t t : op.outputs)
        a.out.push_back(arg(t));
      if (op.workspace_bytes > 0) {
        a.workspace = static_cast<uint8_t*>(arena_) + op.workspace_offset;
        a.workspace_bytes = op.workspace_bytes;
      }
      a.seed = opts_.seed;
      a.rng_key = node_rng_key(*a.node);
      launches_.push_back(cuda::prepare_op(a, ctx_));
      std::vector<Checked> outs;
      for (const TensorArg& o : a.out) {
        const auto t = cuda::float_type(o.dtype);
        outs.push_back({o.present() && t ? o.data : nullptr, t.value_or(cuda::FloatType::f32),
                        o.numel});
      }
      outputs_.push_back(std::move(outs));
    }
    check(cudaStreamSynchronize(stream_), "choosing cuDNN algorithms");
  }

  /// Enqueues op s and, with check_finite, its NaN checks.
  void enqueue(size_t s) {
    launches_[s](stream_);
    if (!opts_.check_finite) return;
    for (size_t k = 0; k < outputs_[s].size(); ++k)
      if (const Checked& o = outputs_[s][k]; o.data)
        cuda::launch_nan_check(o.data, o.type, o.numel, static_cast<int>(s), static_cast<int>(k),
                               control_, stream_);
  }

  void capture() {
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
          "cudaStreamBeginCapture");
    for (size_t s = 0; s < launches_.size(); ++s)
      enqueue(s);
    cuda::launch_advance_step(control_, stream_);
    check(cudaStreamEndCapture(stream_, &graph_), "capturing the step as a CUDA graph");
    check(cudaGraphInstantiate(&exec_, graph_, 0), "cudaGraphInstantiate");
  }

  void stage_inputs(const std::map<std::string, std::vector<uint8_t>>& inputs) {
    for (const auto& [name, bytes] : inputs) {
      auto it = b_.by_name.find(name);
      bool is_input = false;
      if (it != b_.by_name.end())
        for (int32_t t : plan_.inputs)
          is_input |= t == it->second;
      if (!is_input) throw Error("'" + name + "' is not an input of the plan");
    }
    // The buffer used two steps ago: its copies finished with that step's sync.
    auto* host = static_cast<uint8_t*>(stage_[step_ & 1]);
    int64_t off = 0;
    for (int32_t t : plan_.inputs) {
      const PlanTensor& pt = plan_.tensors[static_cast<size_t>(t)];
      auto it = inputs.find(pt.name);
      if (it == inputs.end()) throw Error("no data for input '" + pt.name + "'");
      if (static_cast<int64_t>(it->second.size()) != pt.bytes)
        throw Error("input '" + pt.name + "': " + std::to_string(it->second.size()) +
                    " bytes given, " + std::string(dtype_name(pt.dtype)) + shape_str(pt.shape) +
                    " needs " + std::to_string(pt.bytes));
      if (pt.bytes == 0) continue;
      std::memcpy(host + off, it->second.data(), it->second.size());
      check(cudaMemcpyAsync(ptr_[static_cast<size_t>(t)], host + off, it->second.size(),
                            cudaMemcpyHostToDevice, stream_),
            "copying input '" + pt.name + "'");
      off += pt.bytes;
    }
  }

  Plan plan_;
  ExecOptions opts_;
  PlanBinding b_;
  int slot_ = -1;
  cuda::Ctx ctx_;
  cuda::Control* control_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* arena_ = nullptr;
  void* resident_ = nullptr;
  int64_t arena_size_ = 0, resident_size_ = 0, allocated_ = 0, free_before_ = -1;
  std::vector<uint8_t*> ptr_;
  std::vector<cuda::Launch> launches_;
  struct Checked {  // one float output the NaN check reads (data null: not checked)
    const void* data;
    cuda::FloatType type;
    int64_t numel;
  };
  std::vector<std::vector<Checked>> outputs_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::array<void*, 2> stage_{};
  int64_t stage_bytes_ = 0;
  uint64_t step_ = 0;
};

void CudaExecutor::time_ops(std::vector<double>& seconds, int repeats) {
  seconds.assign(launches_.size(), 0.0);
  std::vector<cudaEvent_t> ev(launches_.size() + 1);
  for (auto& e : ev)
    check(cudaEventCreate(&e), "cudaEventCreate");
  std::vector<std::vector<float>> runs(launches_.size());
  for (int r = 0; r < repeats + 1; ++r) {
    check(cudaEventRecord(ev[0], stream_), "cudaEventRecord");
    for (size_t s = 0; s < launches_.size(); ++s) {
      launches_[s](stream_);
      check(cudaEventRecord(ev[s + 1], stream_), "cudaEventRecord");
    }
    check(cudaStreamSynchronize(stream_), "a profiled step");
    if (r == 0) continue; // warm-up
    for (size_t s = 0; s < launches_.size(); ++s) {
      float ms = 0;
      cudaEventElapsedTime(&ms, ev[s], ev[s + 1]);
      runs[s].push_back(ms);
    }
  }
  for (size_t s = 0; s < runs.size(); ++s) {
    std::sort(runs[s].begin(), runs[s].end());
    seconds[s] = runs[s].empty() ? 0.0 : runs[s][runs[s].size() / 2] * 1e-3;
  }
  for (auto& e : ev)
    cudaEventDestroy(e);
  reset_control(step_);
}

} // namespace

bool cuda_backend_built() {
  return true;
}

std::vector<std::string> cuda_supported_ops() {
  std::vector<std::string> v;
  for (const auto& [op, prep] : cuda::op_table())
    v.emplace_back(op);
  return v;
}

std::unique_ptr<Executor> make_cuda_executor(const Plan& plan, const ExecOptions& opts) {
  return std::make_unique<CudaExecutor>(plan, opts);
}

CudaDeviceInfo cuda_device_info() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    throw Error(std::string("no CUDA device is visible (cudaGetDeviceCount: ") +
                cudaGetErrorString(e) + ")");
  if (n == 0) throw Error("no CUDA device is visible (cudaGetDeviceCount: 0 devices)");
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  return {p.name, p.major, p.minor, static_cast<int64_t>(p.totalGlobalMem)};
}

CudaMemoryReport cuda_memory_report(const Executor& ex) {
  const auto* info = dynamic_cast<const CudaExecutorInfo*>(&ex);
  if (!info) throw Error("cuda_memory_report: not a CUDA executor");
  CudaMemoryReport r;
  r.allocated_bytes = info->device_allocated_bytes();
  int64_t nvml = nvml_process_bytes();
  if (nvml >= 0) {
    r.process_bytes = nvml;
    r.process_source = "NVML per-process";
  } else {
    size_t fr = 0, total = 0;
    if (cudaMemGetInfo(&fr, &total) == cudaSuccess && info->free_bytes_before() >= 0) {
      r.process_bytes = info->free_bytes_before() - static_cast<int64_t>(fr);
      r.process_source = "drop in free device memory since the executor was created (CUDA context "
                         "excluded; assumes an idle device)";
    }
  }
  return r;
}

CudaProfile cuda_profile_ops(const Plan& plan, const ExecOptions& opts, int repeats) {
  CudaProfile p;
  p.device = cuda_device_info().name;
  auto ex = make_cuda_executor(plan, opts);
  init_random(*ex, opts.seed);
  // One real step stages synthetic inputs; the timed eager runs then reuse
  // whatever the arena holds (timings do not depend on the values).
  ex->step(make_synthetic_feed(ex->graph(), opts.seed)->batch(0));
  auto& info = dynamic_cast<CudaExecutorInfo&>(*ex);
  info.time_ops(p.seconds, std::max(1, repeats));
  for (const PlanOp& op : plan.ops) {
    p.op_names.push_back(op.name);
    p.op_types.push_back(op.op);
  }
  // The graph replay as `memplan run` does it (staging and read-back included).
  auto feed = make_synthetic_feed(ex->graph(), opts.seed);
  std::vector<double> steps;
  for (int r = 0; r < std::max(1, repeats); ++r)
    steps.push_back(ex->step(feed->batch(ex->step_count())).seconds);
  std::sort(steps.begin(), steps.end());
  p.step_seconds = steps[steps.size() / 2];
  return p;
}

} // namespace memplan
