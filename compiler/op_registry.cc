// Op registry infrastructure: the lookup table, arity and attribute checks,
// InferCtx, cost helpers and constant-data decoding. The op definitions live
// in the family files ops_*.cc, each exposing a register_* function.
#include "compiler/op_registry.h"

#include <algorithm>
#include <cmath>

#include "compiler/dtype_codec.h"
#include "compiler/low_precision.h"
#include "compiler/ops_common.h"

namespace memplan {

// ---------------------------------------------------------------- table

namespace {

std::vector<OpDef> build_table() {
  std::vector<OpDef> t;
  ops::register_elementwise(t);
  ops::register_nn(t);
  ops::register_pool_conv(t);
  ops::register_shape(t);
  ops::register_data(t);
  ops::register_grad_elementwise(t);  // backward ops of the elementwise family
  ops::register_grad_data(t);         // backward ops of the data-movement family
  ops::register_grad_nn(t);           // backward ops of conv/pool/norm/loss and BatchNormTraining
  ops::register_optim(t);             // optimizer updates, StepIncrement, GradAccumulate, GlobalNormScale
  std::sort(t.begin(), t.end(), [](const OpDef& a, const OpDef& b) { return a.name < b.name; });
  for (size_t i = 1; i < t.size(); ++i)
    if (t[i].name == t[i - 1].name)
      throw InternalError("op '" + std::string(t[i].name) + "' registered twice");
  return t;
}

const std::vector<OpDef>& table() {
  static const std::vector<OpDef> t = build_table();
  return t;
}

std::string plural(int n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string arity_str(int lo, int hi) {
  if (hi < 0) return "at least " + std::to_string(lo);
  if (lo == hi) return std::to_string(lo);
  return std::to_string(lo) + " to " + std::to_string(hi);
}

}  // namespace

const OpDef* find_op(std::string_view op) {
  const auto& t = table();
  auto it = std::lower_bound(t.begin(), t.end(), op,
                             [](const OpDef& d, std::string_view k) { return d.name < k; });
  if (it == t.end() || it->name != op) return nullptr;
  return &*it;
}

std::vector<std::string_view> registered_ops() {
  std::vector<std::string_view> r;
  for (const OpDef& d : table()) r.push_back(d.name);
  return r;
}

// ---------------------------------------------------------------- InferCtx

const Tensor& InferCtx::input(size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
  const Tensor& t = g_.tensor(n_.inputs[i]);
  if (!t.shape_known) fail("input " + std::to_string(i) + " '" + t.name + "' has no known shape");
  return t;
}

std::optional<std::vector<int64_t>> InferCtx::const_ints(size_t i) const {
  if (!has_input(i)) return std::nullopt;
  const Tensor& t = g_.tensor(n_.inputs[i]);
  if (!t.data || !(is_integer(t.dtype) || t.dtype == DType::boolean)) return std::nullopt;
  return tensor_ints(t);
}

std::optional<std::vector<double>> InferCtx::const_floats(size_t i) const {
  if (!has_input(i)) return std::nullopt;
  const Tensor& t = g_.tensor(n_.inputs[i]);
  if (!t.data) return std::nullopt;
  return tensor_floats(t);
}

void InferCtx::fail(const std::string& msg) const { throw Error(node_desc(n_) + ": " + msg); }

// ---------------------------------------------------------------- inference

std::vector<TensorType> infer_node(const Graph& g, const Node& n) {
  const OpDef* def = find_op(n.op);
  if (!def) throw Error(node_desc(n) + ": unsupported op '" + n.op + "'");
  const int nin = static_cast<int>(n.inputs.size());
  const int nout = static_cast<int>(n.outputs.size());
  if (nin < def->min_inputs || (def->max_inputs >= 0 && nin > def->max_inputs))
    throw Error(node_desc(n) + ": expects " + arity_str(def->min_inputs, def->max_inputs) +
                " inputs, got " + std::to_string(nin));
  if (nout < def->min_outputs || (def->max_outputs >= 0 && nout > def->max_outputs))
    throw Error(node_desc(n) + ": expects " + arity_str(def->min_outputs, def->max_outputs) +
                " outputs, got " + std::to_string(nout));
  for (int i = 0; i < def->min_inputs; ++i)
    if (!n.inputs[static_cast<size_t>(i)].valid())
      throw Error(node_desc(n) + ": required input " + std::to_string(i) + " is omitted");
  for (const auto& [k, v] : n.attrs)
    if (std::find(def->attrs.begin(), def->attrs.end(), k) == def->attrs.end() &&
        !(k == "native_low_precision" && op_runs_low_precision_on_gpu(n.op)))
      throw Error(node_desc(n) + ": unknown attribute '" + k + "' for " + n.op);
  if (!def->infer) throw InternalError("op '" + n.op + "' has no inference function");
  InferCtx ctx(g, n);
  std::vector<TensorType> r = def->infer(ctx);
  if (r.size() < n.outputs.size())
    throw InternalError(node_desc(n) + ": inference returned " +
                        plural(static_cast<int>(r.size()), "type") + " for " +
                        plural(nout, "output"));
  r.resize(n.outputs.size());
  return r;
}

// ---------------------------------------------------------------- costs

bool op_handles_low_precision(std::string_view op) {
  // Data movement (element-size dispatch) and Cast: no arithmetic on values.
  static constexpr std::string_view kNative[] = {
      "BatchSlice", "Cast",  "CastLike", "Concat", "Expand",    "Flatten",
      "Identity",   "Reshape", "Split",  "Squeeze", "Tile",    "Transpose", "Unsqueeze"};
  return std::find(std::begin(kNative), std::end(kNative), op) != std::end(kNative);
}

bool op_runs_low_precision_on_gpu(std::string_view op) {
  // runtime/cuda: cuBLAS / cuDNN in the operands' dtype, and the kernels that
  // read and write f16/bf16 through load_float / store_float (f32 math).
  static constexpr std::string_view kGpu[] = {
      "Abs", "Add", "BatchNormTraining", "BatchNormTrainingGrad", "Conv", "ConvGradInput",
      "ConvGradWeight", "ConvTranspose", "Div", "Erf", "ErfGrad", "Exp", "Gemm", "GradAccumulate",
      "Log", "MatMul", "MatMulTrans", "MaxPool", "MaxPoolGrad", "Mul", "Neg", "Pow", "ReduceSum",
      "Relu", "ReluGrad", "Sigmoid", "SigmoidGrad", "Sqrt", "Sub", "Tanh", "TanhGrad"};
  return std::find(std::begin(kGpu), std::end(kGpu), op) != std::end(kGpu);
}

int64_t low_precision_staging_bytes(const Graph& g, const Node& n) {
  if (op_handles_low_precision(n.op)) return 0;
  int64_t total = 0;
  auto add = [&](TensorId t) {
    if (!t.valid()) return;
    const Tensor& x = g.tensor(t);
    if (x.dtype == DType::f16 || x.dtype == DType::bf16)
      total += low_precision_slot_bytes(x.numel());
  };
  for (TensorId t : n.inputs) add(t);
  for (TensorId t : n.outputs) add(t);
  return total;
}

bool staged_outside_plan(const Node& n) { return attr_int(n, "native_low_precision", 0) != 0; }

static int64_t own_workspace_bytes(const Graph& g, const Node& n) {
  const OpDef* d = find_op(n.op);
  return d && d->workspace ? d->workspace(g, n) : 0;
}

// Staging for f16/bf16 operands comes first (compiler/low_precision.h).
int64_t cpu_workspace_bytes(const Graph& g, const Node& n) {
  return own_workspace_bytes(g, n) + low_precision_staging_bytes(g, n);
}

int64_t node_workspace_bytes(const Graph& g, const Node& n) {
  return own_workspace_bytes(g, n) + (staged_outside_plan(n) ? 0 : low_precision_staging_bytes(g, n));
}

double node_flops(const Graph& g, const Node& n) {
  const OpDef* def = find_op(n.op);
  if (def && def->flops) return def->flops(g, n);
  return ops::out_elems(g, n, 0);
}

int64_t node_bytes_moved(const Graph& g, const Node& n) {
  int64_t total = 0;
  auto add = [&](TensorId id) {
    if (!id.valid()) return;
    const Tensor& t = g.tensor(id);
    if (t.shape_known) total += t.bytes();
  };
  // BatchSlice's inputs after the first only order it: their data is not read.
  const size_t read = n.op == "BatchSlice" ? std::min<size_t>(n.inputs.size(), 1) : n.inputs.size();
  for (size_t i = 0; i < read; ++i) add(n.inputs[i]);
  for (TensorId id : n.outputs) add(id);
  return total;
}

// ---------------------------------------------------------------- data

namespace {
size_t checked_count(const Tensor& t) {
  if (!t.data) throw InternalError("tensor '" + t.name + "' has no constant data");
  const size_t es = dtype_size(t.dtype);
  if (t.data->size() % es != 0)
    throw InternalError("tensor '" + t.name + "' data size is not a multiple of its element size");
  const size_t n = t.data->size() / es;
  if (t.shape_known && static_cast<int64_t>(n) != t.numel())
    throw InternalError("tensor '" + t.name + "' has " + std::to_string(n) +
                        " data elements but shape " + shape_str(t.shape));
  return n;
}
}  // namespace

std::vector<int64_t> tensor_ints(const Tensor& t) {
  const size_t n = checked_count(t);
  std::vector<int64_t> r(n);
  for (size_t i = 0; i < n; ++i) r[i] = decode_int(t.dtype, t.data->data(), i);
  return r;
}

std::vector<double> tensor_floats(const Tensor& t) {
  const size_t n = checked_count(t);
  std::vector<double> r(n);
  for (size_t i = 0; i < n; ++i) r[i] = decode_float(t.dtype, t.data->data(), i);
  return r;
}

// ---------------------------------------------------------------- helpers

namespace ops {

Shape broadcast(const InferCtx& c, const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      c.fail("shapes " + shape_str(a) + " and " + shape_str(b) + " are not broadcastable");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t norm_axis(const InferCtx& c, int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= rank)
    c.fail(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
           std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> norm_axes(const InferCtx& c, std::vector<int64_t> axes, int64_t rank,
                               const char* what) {
  for (int64_t& a : axes) a = norm_axis(c, a, rank, what);
  std::vector<int64_t> s = axes;
  std::sort(s.begin(), s.end());
  if (std::adjacent_find(s.begin(), s.end()) != s.end())
    c.fail(std::string(what) + " contain a repeated axis");
  return axes;
}

std::vector<int64_t> require_const_ints(const InferCtx& c, size_t slot, const char* what) {
  if (!c.has_input(slot)) c.fail(std::string(what) + " input is missing");
  if (auto v = c.const_ints(slot)) return *v;
  c.fail(std::string(what) + " is not a compile-time constant");
}

std::optional<std::vector<int64_t>> ints_attr_or_input(const InferCtx& c, const char* attr,
                                                       size_t slot, const char* what) {
  if (c.node().has_attr(attr)) return attr_ints(c.node(), attr);
  if (c.has_input(slot)) return require_const_ints(c, slot, what);
  return std::nullopt;
}

void require_same_dtype(const InferCtx& c, size_t first, size_t last) {
  for (size_t i = first + 1; i <= last && i < c.num_inputs(); ++i) {
    if (!c.has_input(i) || c.dtype(i) == c.dtype(first)) continue;
    c.fail("input " + std::to_string(i) + " has dtype " + std::string(dtype_name(c.dtype(i))) +
           " but input " + std::to_string(first) + " has " +
           std::string(dtype_name(c.dtype(first))));
  }
}

std::optional<DType> dtype_from_onnx_enum(int64_t e) {
  switch (e) {
    case 1: return DType::f32;
    case 2: return DType::u8;
    case 3: return DType::i8;
    case 6: return DType::i32;
    case 7: return DType::i64;
    case 9: return DType::boolean;
    case 10: return DType::f16;
    case 11: return DType::f64;
    case 16: return DType::bf16;
    default: return std::nullopt;
  }
}

DType attr_dtype(const InferCtx& c, const char* attr, DType dflt) {
  auto it = c.node().attrs.find(attr);
  if (it == c.node().attrs.end()) return dflt;
  if (auto* s = std::get_if<std::string>(&it->second)) {
    if (auto d = parse_dtype(*s)) return *d;
    c.fail(std::string("attribute '") + attr + "' names unsupported dtype '" + *s + "'");
  }
  if (auto* e = std::get_if<int64_t>(&it->second)) {
    if (auto d = dtype_from_onnx_enum(*e)) return *d;
    c.fail(std::string("attribute '") + attr + "' is unsupported ONNX dtype " + std::to_string(*e));
  }
  c.fail(std::string("attribute '") + attr + "' must be a dtype name or ONNX dtype number");
}

double elems(const Graph& g, TensorId t) {
  if (!t.valid()) return 0;
  const Tensor& x = g.tensor(t);
  return x.shape_known ? static_cast<double>(x.numel()) : 0;
}
double out_elems(const Graph& g, const Node& n, size_t slot) {
  return slot < n.outputs.size() ? elems(g, n.outputs[slot]) : 0;
}
double in_elems(const Graph& g, const Node& n, size_t slot) {
  return slot < n.inputs.size() ? elems(g, n.inputs[slot]) : 0;
}
double zero_flops(const Graph&, const Node&) { return 0; }
double five_per_out(const Graph& g, const Node& n) { return 5 * out_elems(g, n, 0); }
double one_per_in(const Graph& g, const Node& n) { return in_elems(g, n, 0); }

}  // namespace ops
}  // namespace memplan
