// CUDA ops, part 3: the library-backed ops.
//  - Gemm, MatMul, MatMulTrans on cuBLAS (cublasGemmEx): f32, f16 and bf16
//    operands, Y of the operands' dtype or f32, f32 accumulation; TF32 tensor
//    cores for f32 only with ExecOptions::allow_tf32. Row-major Y = op(A) @ op(B) is computed as
//    the column-major Y^T = op(B)^T @ op(A)^T. Batches follow the CPU kernel (runtime/cpu/gemm.cc):
//    broadcast batch dims, one GEMM when B is shared or when every batch is summed (MatMulTrans's
//    batch_shape), else one GEMM per batch, accumulating (beta 1) into summed batches; batches at
//    regular strides run as one cublasSgemmStridedBatched. cuBLAS gets the op's planned workspace
//    through cublasSetWorkspace before its GEMMs.
//  - Conv, ConvTranspose, ConvGradInput, ConvGradWeight on cuDNN
//    (forward, backward-data, backward-filter). The window is the CPU's
//    (runtime/cpu/nn_util.h make_window); cuDNN needs symmetric padding. The
//    algorithm is chosen once, with cudnnFind*AlgorithmEx on the plan's own
//    buffers: the fastest whose workspace fits the op's planned workspace.
//    Every tensor of one convolution has one dtype: f32 (TF32 only with
//    --tf32), or f16 / bf16 for a native_low_precision node (cuDNN's
//    pseudo-half configurations: f32 accumulation, tensor-op math; the bias
//    is added by our own kernel, in f32, rounded once more). Other low-
//    precision convolutions reach these functions already staged to f32
//    (prepare_op, low_precision.cc).
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>

#include "runtime/cpu/nn_util.h"
#include "runtime/cuda/ops.h"

namespace memplan::cuda {

namespace {

using kernels::nn::prod;

// ---------------------------------------------------------------- cuBLAS

using Gemm = kernels::nn::GemmCall;

/// Element types of one GEMM: A and B share a dtype (f32, f16 or bf16); Y
/// is that dtype or f32. cuBLAS accumulates in f32 (TF32 tensor cores for
/// f32 only with --tf32).
struct GemmTypes {
  cudaDataType ab = CUDA_R_32F, y = CUDA_R_32F;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  size_t ab_size = 4, y_size = 4;
};

cudaDataType cuda_type(const KernelArgs& a, DType d) {
  switch (d) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::f16:
      return CUDA_R_16F;
    case DType::bf16:
      return CUDA_R_16BF;
    default:
      fail(a, "the CUDA backend's GEMMs take f32, f16 or bf16, not " + std::string(dtype_name(d)) +
                  "; run this plan with --device cpu");
  }
}

/// The types of (A, B) -> Y for op a (inputs 0 and 1, output 0).
GemmTypes gemm_types(const KernelArgs& a, const Ctx& c) {
  const DType ad = a.in[0].dtype, bd = a.in[1].dtype, yd = a.out[0].dtype;
  if (ad != bd || (yd != ad && yd != DType::f32))
    fail(a, "GEMM dtypes " + std::string(dtype_name(ad)) + " x " + std::string(dtype_name(bd)) +
                " -> " + std::string(dtype_name(yd)) +
                " are not supported (A and B alike; Y alike or f32)");
  GemmTypes t;
  t.ab = cuda_type(a, ad);
  t.y = cuda_type(a, yd);
  t.ab_size = dtype_size(ad);
  t.y_size = dtype_size(yd);
  t.compute = ad == DType::f32 && c.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  return t;
}

/// One row-major GEMM as column-major cuBLAS: Y^T = op(B)^T op(A)^T.
void gemm_ex(cublasHandle_t h, const GemmTypes& t, const Gemm& g, float alpha, const char* A,
             const char* B, char* Y) {
  cublasGemmEx(h, g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
               static_cast<int>(g.n), static_cast<int>(g.m), static_cast<int>(g.k), &alpha,
               B + g.b_off * static_cast<int64_t>(t.ab_size), t.ab, static_cast<int>(g.ldb),
               A + g.a_off * static_cast<int64_t>(t.ab_size), t.ab, static_cast<int>(g.lda),
               &g.beta, Y + g.y_off * static_cast<int64_t>(t.y_size), t.y, static_cast<int>(g.n),
               t.compute, CUBLAS_GEMM_DEFAULT);
}


/// The GEMM list of Y = op(A) @ op(B) (batched, broadcast), as the CPU plans it.
std::vector<Gemm> plan_batched(Shape as, bool ta, Shape bs, bool tb, const Shape* ybatch,
                               std::vector<int64_t>* zero_fill, int64_t* mn) {
  return kernels::nn::plan_batched_gemm(std::move(as), ta, std::move(bs), tb, ybatch, zero_fill, mn);
}

/// Strides of a batch of GEMMs that one cublasSgemmStridedBatched can run:
/// same beta 0, offsets in arithmetic progression, distinct outputs.
struct Strided {
  bool ok = false;
  int64_t sa = 0, sb = 0, sy = 0;
};
Strided as_strided(const std::vector<Gemm>& gs) {
  Strided r;
  if (gs.size() < 2) return r;
  r.sa = gs[1].a_off - gs[0].a_off;
  r.sb = gs[1].b_off - gs[0].b_off;
  r.sy = gs[1].y_off - gs[0].y_off;
  if (r.sy <= 0) return r;
  for (size_t i = 0; i < gs.size(); ++i) {
    const Gemm& g = gs[i];
    const int64_t k = static_cast<int64_t>(i);
    if (g.beta != 0.f || g.a_off != gs[0].a_off + k * r.sa || g.b_off != gs[0].b_off + k * r.sb ||
        g.y_off != gs[0].y_off + k * r.sy)
      return r;
  }
  r.ok = true;
  return r;
}

Launch gemm_launch(const KernelArgs& a, Ctx& c, std::vector<Gemm> gs, float alpha,
                   std::vector<int64_t> zero, int64_t mn) {
  cublasHandle_t h = c.cublas;
  const GemmTypes t = gemm_types(a, c);
  const char *A = static_cast<const char*>(a.in[0].data),
             *B = static_cast<const char*>(a.in[1].data);
  char* Y = static_cast<char*>(a.out[0].data);
  void* ws = a.workspace;
  const size_t ws_bytes = static_cast<size_t>(a.workspace_bytes);
  const Strided st = as_strided(gs);
  return [=](Stream s) {
    cublasSetStream(h, s);
    cublasSetWorkspace(h, ws_bytes ? ws : nullptr, ws_bytes);
    for (int64_t y : zero)
      cudaMemsetAsync(Y + y * mn * static_cast<int64_t>(t.y_size), 0,
                      static_cast<size_t>(mn) * t.y_size, s);
    if (st.ok) { // attention-style batches: one launch instead of one per matrix
      const Gemm& g = gs[0];
      const float beta = 0.f;
      const int64_t ab = static_cast<int64_t>(t.ab_size), ys = static_cast<int64_t>(t.y_size);
      cublasGemmStridedBatchedEx(
          h, g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
          static_cast<int>(g.n), static_cast<int>(g.m), static_cast<int>(g.k), &alpha,
          B + g.b_off * ab, t.ab, static_cast<int>(g.ldb), st.sb, A + g.a_off * ab, t.ab,
          static_cast<int>(g.lda), st.sa, &beta, Y + g.y_off * ys, t.y, static_cast<int>(g.n),
          st.sy, static_cast<int>(gs.size()), t.compute, CUBLAS_GEMM_DEFAULT);
      return;
    }
    for (const Gemm& g : gs)
      gemm_ex(h, t, g, alpha, A, B, Y);
  };
}

Launch zero_output(const KernelArgs& a) {
  void* Y = a.out[0].data;
  const size_t bytes = static_cast<size_t>(a.out[0].numel) * dtype_size(a.out[0].dtype);
  return [=](Stream s) { cudaMemsetAsync(Y, 0, bytes, s); };
}

Launch matmul(const KernelArgs& a, Ctx& c) {
  Shape as = a.in[0].shape, bs = a.in[1].shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  (void)gemm_types(a, c); // dtype errors even for empty products
  if (a.out[0].numel == 0) return [](Stream) {};
  if (as.back() == 0) return zero_output(a);
  std::vector<int64_t> zero;
  int64_t mn = 0;
  std::vector<Gemm> gs = plan_batched(as, false, bs, false, nullptr, &zero, &mn);
  return gemm_launch(a, c, gs, 1.f, zero, mn);
}

Launch matmul_trans(const KernelArgs& a, Ctx& c) {
  const bool ta = attr_int(*a.node, "transA", 0) != 0, tb = attr_int(*a.node, "transB", 0) != 0;
  const Shape &as = a.in[0].shape, &bs = a.in[1].shape, &ys = a.out[0].shape;
  if (as.size() < 2 || bs.size() < 2) fail(a, "operands must have rank >= 2");
  (void)gemm_types(a, c);
  if (a.out[0].numel == 0) return [](Stream) {};
  const int64_t K = ta ? as[as.size() - 2] : as.back();
  if (K == 0) return zero_output(a);
  const Shape yb(ys.begin(), ys.end() - 2);
  std::vector<int64_t> zero;
  int64_t mn = 0;
  std::vector<Gemm> gs = plan_batched(as, ta, bs, tb, &yb, &zero, &mn);
  return gemm_launch(a, c, gs, 1.f, zero, mn);
}

Launch gemm_op(const KernelArgs& a, Ctx& c) {
  const Node& n = *a.node;
  const bool ta = attr_int(n, "transA", 0) != 0, tb = attr_int(n, "transB", 0) != 0;
  const double alpha = attr_float(n, "alpha", 1.0), beta = attr_float(n, "beta", 1.0);
  const Shape &as = a.in[0].shape, &bs = a.in[1].shape, &ys = a.out[0].shape;
  const int64_t M = ys[0], N = ys[1], K = ta ? as[0] : as[1];
  const bool has_c = has_in(a, 2) && beta != 0.0;
  if (has_c && beta != 1.0)
    fail(a, "Gemm with beta != 1 is not supported by the CUDA backend; run this plan with --device "
            "cpu");
  if (has_c && a.in[2].dtype != a.out[0].dtype) fail(a, "C must have Y's dtype");
  (void)gemm_types(a, c);
  // Y = C (broadcast) first, then the GEMM accumulates alpha * op(A) op(B).
  Walk w;
  if (has_c) w = make_walk(a, ys, {a.in[2].shape});
  const void* C = has_c ? a.in[2].data : nullptr;
  void* Y = a.out[0].data;
  const int ysize = static_cast<int>(dtype_size(a.out[0].dtype));
  Launch g = K > 0 ? gemm_launch(a, c, {{ta, tb, M, N, K, as[1], bs[1], 0, 0, 0, 1.f}},
                                 static_cast<float>(alpha), {}, 0)
                   : Launch([](Stream) {});
  const int64_t numel = a.out[0].numel;
  return [=](Stream s) {
    if (has_c)
      launch_strided_copy(C, Y, ysize, w, numel, s);
    else
      cudaMemsetAsync(Y, 0, static_cast<size_t>(numel) * static_cast<size_t>(ysize), s);
    g(s);
  };
}

// ---------------------------------------------------------------- cuDNN

void check_dnn(const KernelArgs& a, cudnnStatus_t st, const char* what) {
  if (st != CUDNN_STATUS_SUCCESS)
    fail(a, std::string(what) + " failed: " + cudnnGetErrorString(st));
}

enum class ConvKind { fwd, bwd_data, bwd_filter };

/// Descriptors of the underlying Conv: x [N, C, in...], w [M, C/g, k...], y [N, M, out...].
struct ConvDesc {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
};

std::vector<int> dims4(const Shape& s) { // cuDNN wants rank >= 4: pad 1-D convs with a 1
  std::vector<int> d(s.begin(), s.end());
  if (d.size() == 3) d.push_back(1);
  return d;
}

std::vector<int> packed_strides(const std::vector<int>& d) {
  std::vector<int> st(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;)
    st[i - 1] = st[i] * d[i];
  return st;
}

/// The one element type of a convolution's present inputs and outputs.
FloatType conv_type(const KernelArgs& a) {
  const DType d = a.in[0].dtype;
  auto same = [&](const TensorArg& t) { return !t.present() || t.dtype == d; };
  if (!std::all_of(a.in.begin(), a.in.end(), same) ||
      !std::all_of(a.out.begin(), a.out.end(), same))
    fail(a, "the CUDA backend's convolutions need one dtype for every input and output");
  if (const auto t = float_type(d)) return *t;
  fail(a, "the CUDA backend's convolutions take f32, f16 or bf16, not " +
              std::string(dtype_name(d)));
}

cudnnDataType_t dnn_type(FloatType t) {
  return t == FloatType::f16    ? CUDNN_DATA_HALF
         : t == FloatType::bf16 ? CUDNN_DATA_BFLOAT16
                                : CUDNN_DATA_FLOAT;
}

ConvDesc make_conv_desc(const KernelArgs& a, Ctx& c, const Shape& xs, const Shape& ws,
                        const Shape& ys, const kernels::nn::Window& win, int64_t group,
                        FloatType type) {
  if (xs.size() < 3 || xs.size() > 5) fail(a, "the CUDA backend supports 1 to 3 spatial dims");
  auto d = std::make_shared<ConvDesc>();
  check_dnn(a, cudnnCreateTensorDescriptor(&d->x), "cudnnCreateTensorDescriptor");
  check_dnn(a, cudnnCreateTensorDescriptor(&d->y), "cudnnCreateTensorDescriptor");
  check_dnn(a, cudnnCreateFilterDescriptor(&d->w), "cudnnCreateFilterDescriptor");
  check_dnn(a, cudnnCreateConvolutionDescriptor(&d->conv), "cudnnCreateConvolutionDescriptor");
  c.cleanup.push_back([d] {
    cudnnDestroyTensorDescriptor(d->x);
    cudnnDestroyTensorDescriptor(d->y);
    if (d->bias) cudnnDestroyTensorDescriptor(d->bias);
    cudnnDestroyFilterDescriptor(d->w);
    cudnnDestroyConvolutionDescriptor(d->conv);
  });
  const std::vector<int> xd = dims4(xs), yd = dims4(ys), wd = dims4(ws);
  check_dnn(a,
            cudnnSetTensorNdDescriptor(d->x, dnn_type(type), static_cast<int>(xd.size()),
                                       xd.data(), packed_strides(xd).data()),
            "x descriptor");
  check_dnn(a,
            cudnnSetTensorNdDescriptor(d->y, dnn_type(type), static_cast<int>(yd.size()),
                                       yd.data(), packed_strides(yd).data()),
            "y descriptor");
  check_dnn(a,
            cudnnSetFilterNdDescriptor(d->w, dnn_type(type), CUDNN_TENSOR_NCHW,
                                       static_cast<int>(wd.size()), wd.data()),
            "filter descriptor");
  std::vector<int> pad, stride, dil;
  for (size_t k = 0; k < win.in.size(); ++k) {
    pad.push_back(static_cast<int>(win.pad_begin[k]));
    stride.push_back(static_cast<int>(win.strides[k]));
    dil.push_back(static_cast<int>(win.dilations[k]));
  }
  if (pad.size() == 1) pad.push_back(0), stride.push_back(1), dil.push_back(1);
  check_dnn(a,
            cudnnSetConvolutionNdDescriptor(d->conv, static_cast<int>(pad.size()), pad.data(),
                                            stride.data(), dil.data(), CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT),
            "convolution descriptor");
  check_dnn(a, cudnnSetConvolutionGroupCount(d->conv, static_cast<int>(group)), "group count");
  const cudnnMathType_t math = type != FloatType::f32 ? CUDNN_TENSOR_OP_MATH
                               : c.tf32               ? CUDNN_DEFAULT_MATH
                                                      : CUDNN_FMA_MATH;
  check_dnn(a, cudnnSetConvolutionMathType(d->conv, math), "math type");
  // cuDNN pads symmetrically: its output size must be the planned one.
  std::vector<int> got(yd.size());
  check_dnn(a,
            cudnnGetConvolutionNdForwardOutputDim(d->conv, d->x, d->w, static_cast<int>(got.size()),
                                                  got.data()),
            "output size");
  if (got != yd)
    fail(a, "the convolution's padding is asymmetric (or its output is cropped), which cuDNN does "
            "not support; run this plan with --device cpu");
  return *d;
}

/// The fastest algorithm (cudnnFind*AlgorithmEx on the plan's buffers) whose
/// workspace fits the op's planned workspace.
template <class Perf> int pick(const KernelArgs& a, const Perf* perf, int n) {
  for (int i = 0; i < n; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS &&
        perf[i].memory <= static_cast<size_t>(a.workspace_bytes))
      return static_cast<int>(perf[i].algo);
  fail(a, "no cuDNN algorithm fits the planned workspace of " + std::to_string(a.workspace_bytes) +
              " bytes");
}

/// x, w, y: the underlying Conv's tensors (device). kind says which one is computed.
Launch conv_launch(const KernelArgs& a, Ctx& c, ConvKind kind, const Shape& xs, const Shape& ws,
                   const Shape& ys, void* x, void* w, void* y, const kernels::nn::Window& win,
                   int64_t group, const void* bias, int64_t bias_n) {
  const FloatType type = conv_type(a);
  const ConvDesc d = make_conv_desc(a, c, xs, ws, ys, win, group, type);
  cudnnHandle_t h = c.cudnn;
  void* wsp = a.workspace;
  const size_t wsb = static_cast<size_t>(a.workspace_bytes);
  check_dnn(a, cudnnSetStream(h, c.stream), "cudnnSetStream");
  constexpr int kMax = 16;
  int n = 0, algo = 0;
  if (kind == ConvKind::fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[kMax];
    check_dnn(a,
              cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x, d.w, w, d.conv, d.y, y, kMax, &n,
                                                     perf, wsp, wsb),
              "cudnnFindConvolutionForwardAlgorithmEx");
    algo = pick(a, perf, n);
  } else if (kind == ConvKind::bwd_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
    check_dnn(a,
              cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w, d.y, y, d.conv, d.x, x, kMax,
                                                          &n, perf, wsp, wsb),
              "cudnnFindConvolutionBackwardDataAlgorithmEx");
    algo = pick(a, perf, n);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
    check_dnn(a,
              cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, x, d.y, y, d.conv, d.w, w, kMax,
                                                            &n, perf, wsp, wsb),
              "cudnnFindConvolutionBackwardFilterAlgorithmEx");
    algo = pick(a, perf, n);
  }
  cudnnTensorDescriptor_t bdesc = nullptr;
  const Shape& out = kind == ConvKind::fwd ? ys : xs; // the tensor a bias is added to
  const int64_t out_n = prod(out, 0, out.size()), out_inner = prod(out, 2, out.size());
  if (bias && type == FloatType::f32) {
    std::vector<int> bd(dims4(out).size(), 1);
    bd[1] = static_cast<int>(bias_n);
    check_dnn(a, cudnnCreateTensorDescriptor(&bdesc), "cudnnCreateTensorDescriptor");
    c.cleanup.push_back([bdesc] { cudnnDestroyTensorDescriptor(bdesc); });
    check_dnn(a,
              cudnnSetTensorNdDescriptor(bdesc, CUDNN_DATA_FLOAT, static_cast<int>(bd.size()),
                                         bd.data(), packed_strides(bd).data()),
              "bias descriptor");
  }
  return [=](Stream s) {
    const float one = 1.f, zero = 0.f;
    cudnnSetStream(h, s);
    if (kind == ConvKind::fwd) {
      cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv,
                              static_cast<cudnnConvolutionFwdAlgo_t>(algo), wsp, wsb, &zero, d.y,
                              y);
      if (bdesc) cudnnAddTensor(h, &one, bdesc, bias, &one, d.y, y);
      if (bias && !bdesc) launch_channel_bias_add(y, bias, type, out_n, bias_n, out_inner, s);
    } else if (kind == ConvKind::bwd_data) {
      cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, y, d.conv,
                                   static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), wsp, wsb,
                                   &zero, d.x, x);
      if (bdesc) cudnnAddTensor(h, &one, bdesc, bias, &one, d.x, x);
      if (bias && !bdesc) launch_channel_bias_add(x, bias, type, out_n, bias_n, out_inner, s);
    } else {
      cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, y, d.conv,
                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), wsp, wsb,
                                     &zero, d.w, w);
    }
  };
}

std::vector<int64_t> spatial(const Shape& s) {
  return std::vector<int64_t>(s.begin() + 2, s.end());
}

Launch conv(const KernelArgs& a, Ctx& c) { // (X, W, B?) -> Y
  const Shape &xs = a.in[0].shape, &ws = a.in[1].shape, &ys = a.out[0].shape;
  const auto win = kernels::nn::make_window(a, spatial(xs), spatial(ys), spatial(ws));
  const int64_t group = attr_int(*a.node, "group", 1);
  return conv_launch(a, c, ConvKind::fwd, xs, ws, ys, a.in[0].data, a.in[1].data, a.out[0].data,
                     win, group, has_in(a, 2) ? a.in[2].data : nullptr,
                     has_in(a, 2) ? a.in[2].numel : 0);
}

Launch conv_grad_input(const KernelArgs& a, Ctx& c) { // (dY, W) -> dX
  const Shape &ys = a.in[0].shape, &ws = a.in[1].shape, &xs = a.out[0].shape;
  const auto win = kernels::nn::make_window(a, spatial(xs), spatial(ys), spatial(ws));
  return conv_launch(a, c, ConvKind::bwd_data, xs, ws, ys, a.out[0].data, a.in[1].data,
                     a.in[0].data, win, attr_int(*a.node, "group", 1), nullptr, 0);
}

Launch conv_grad_weight(const KernelArgs& a, Ctx& c) { // (dY, X) -> dW
  const Shape &ys = a.in[0].shape, &xs = a.in[1].shape, &ws = a.out[0].shape;
  const auto win = kernels::nn::make_window(a, spatial(xs), spatial(ys), spatial(ws));
  return conv_launch(a, c, ConvKind::bwd_filter, xs, ws, ys, a.in[1].data, a.out[0].data,
                     a.in[0].data, win, attr_int(*a.node, "group", 1), nullptr, 0);
}

/// ConvTranspose(X, W, B?) -> Y is the backward-data of the Conv from Y to X.
Launch conv_transpose(const KernelArgs& a, Ctx& c) {
  const Shape &xs = a.in[0].shape, &ws = a.in[1].shape, &ys = a.out[0].shape;
  const auto win = kernels::nn::make_transpose_window(a, spatial(xs), spatial(ys), spatial(ws));
  return conv_launch(a, c, ConvKind::bwd_data, ys, ws, xs, a.out[0].data, a.in[1].data,
                     a.in[0].data, win, attr_int(*a.node, "group", 1),
                     has_in(a, 2) ? a.in[2].data : nullptr, has_in(a, 2) ? a.in[2].numel : 0);
}

} // namespace

void register_lib(std::map<std::string_view, Prepare>& t) {
  t["Gemm"] = gemm_op;
  t["MatMul"] = matmul;
  t["MatMulTrans"] = matmul_trans;
  t["Conv"] = conv;
  t["ConvGradInput"] = conv_grad_input;
  t["ConvGradWeight"] = conv_grad_weight;
  t["ConvTranspose"] = conv_transpose;
}

} // namespace memplan::cuda
