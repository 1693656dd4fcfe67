// CPU kernels, nn family: registration and the helpers of nn_util.h. The
// kernels live in conv.cc, pool.cc, gemm.cc, norm.cc, softmax.cc, loss.cc and
// dropout.cc.
#include <cblas.h>

#include <algorithm>

#include "runtime/cpu/nn_util.h"

namespace memplan::kernels {

void register_nn(Table& t) {
  nn::register_conv(t);
  nn::register_pool(t);
  nn::register_gemm(t);
  nn::register_norm(t);
  nn::register_softmax(t);
  nn::register_loss(t);
  nn::register_dropout(t);
}

namespace nn {

void fail(const KernelArgs& a, const std::string& msg) {
  throw Error(node_desc(*a.node) + ": " + msg);
}

namespace {
CBLAS_TRANSPOSE tr(bool t) {
  return t ? CblasTrans : CblasNoTrans;
}
blasint bi(int64_t v) {
  return static_cast<blasint>(v);
}
} // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), bi(m), bi(n), bi(k), alpha, A, bi(lda), B, bi(ldb),
              beta, C, bi(ldc));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), bi(m), bi(n), bi(k), alpha, A, bi(lda), B, bi(ldb),
              beta, C, bi(ldc));
}

double load(const TensorArg& t, int64_t i) {
  if (t.dtype == DType::f32) return t.as<float>()[i];
  if (t.dtype == DType::f64) return t.as<double>()[i];
  throw Error("nn kernel: float tensor of dtype " + std::string(dtype_name(t.dtype)) +
              " is not supported");
}

void store(const TensorArg& t, int64_t i, double v) {
  if (t.dtype == DType::f32) {
    t.as<float>()[i] = static_cast<float>(v);
    return;
  }
  if (t.dtype == DType::f64) {
    t.as<double>()[i] = v;
    return;
  }
  throw Error("nn kernel: float tensor of dtype " + std::string(dtype_name(t.dtype)) +
              " is not supported");
}

int64_t load_int(const TensorArg& t, int64_t i) {
  switch (t.dtype) {
    case DType::i64:
      return t.as<int64_t>()[i];
    case DType::i32:
      return t.as<int32_t>()[i];
    case DType::i8:
      return t.as<int8_t>()[i];
    case DType::u8:
    case DType::boolean:
      return t.as<uint8_t>()[i];
    default:
      break;
  }
  throw Error("nn kernel: integer tensor of dtype " + std::string(dtype_name(t.dtype)) +
              " is not supported");
}

int64_t prod(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to && i < s.size(); ++i)
    p *= s[i];
  return p;
}

int64_t Window::in_size() const {
  return prod(in, 0, in.size());
}
int64_t Window::out_size() const {
  return prod(out, 0, out.size());
}
int64_t Window::k_size() const {
  return prod(kernel, 0, kernel.size());
}

bool Window::pointwise() const {
  for (size_t d = 0; d < kernel.size(); ++d)
    if (kernel[d] != 1 || strides[d] != 1 || pad_begin[d] != 0 || in[d] != out[d]) return false;
  return true;
}

void Window::kernel_row(int64_t k, std::vector<int64_t>& row) const {
  const size_t r = kernel.size();
  std::vector<int64_t> kk(r);
  for (size_t d = r; d-- > 0;) {
    kk[d] = k % kernel[d];
    k /= kernel[d];
  }
  row.assign(1, 0);
  std::vector<int64_t> next;
  for (size_t d = 0; d < r; ++d) {
    next.resize(row.size() * static_cast<size_t>(out[d]));
    size_t j = 0;
    for (int64_t p : row)
      for (int64_t o = 0; o < out[d]; ++o, ++j) {
        const int64_t i = o * strides[d] - pad_begin[d] + kk[d] * dilations[d];
        next[j] = (p < 0 || i < 0 || i >= in[d]) ? -1 : p * in[d] + i;
      }
    row.swap(next);
  }
}

void Window::kernel_row(int64_t k, int64_t o0, int64_t count, std::vector<int64_t>& row) const {
  const size_t r = kernel.size();
  std::vector<int64_t> kk(r), oo(r);
  for (size_t d = r; d-- > 0;) {
    kk[d] = k % kernel[d];
    k /= kernel[d];
    oo[d] = o0 % out[d];
    o0 /= out[d];
  }
  row.resize(static_cast<size_t>(count));
  for (int64_t j = 0; j < count; ++j) {
    int64_t off = 0;
    for (size_t d = 0; d < r && off >= 0; ++d) {
      const int64_t i = oo[d] * strides[d] - pad_begin[d] + kk[d] * dilations[d];
      off = (i < 0 || i >= in[d]) ? -1 : off * in[d] + i;
    }
    row[static_cast<size_t>(j)] = off;
    for (size_t d = r; d-- > 0;) { // next output position
      if (++oo[d] < out[d]) break;
      oo[d] = 0;
    }
  }
}

namespace {
Window base_window(const KernelArgs& a, const std::vector<int64_t>& in,
                   const std::vector<int64_t>& out, const std::vector<int64_t>& kernel) {
  const Node& n = *a.node;
  const size_t sp = in.size();
  Window w;
  w.in = in;
  w.out = out;
  w.kernel = kernel;
  w.strides = attr_ints(n, "strides", std::vector<int64_t>(sp, 1));
  w.dilations = attr_ints(n, "dilations", std::vector<int64_t>(sp, 1));
  if (w.kernel.size() != sp || w.strides.size() != sp || w.dilations.size() != sp ||
      out.size() != sp)
    fail(a, "window attributes do not match the spatial rank " + std::to_string(sp));
  w.pad_begin.assign(sp, 0);
  return w;
}
} // namespace

Window make_window(const KernelArgs& a, const std::vector<int64_t>& in,
                   const std::vector<int64_t>& out, const std::vector<int64_t>& kernel) {
  Window w = base_window(a, in, out, kernel);
  const size_t sp = in.size();
  const std::string ap = attr_str(*a.node, "auto_pad", "NOTSET");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    for (size_t d = 0; d < sp; ++d) {
      const int64_t ek = (w.kernel[d] - 1) * w.dilations[d] + 1;
      const int64_t total = std::max<int64_t>(0, (out[d] - 1) * w.strides[d] + ek - in[d]);
      w.pad_begin[d] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
    }
  } else if (ap != "VALID") {
    std::vector<int64_t> pads = attr_ints(*a.node, "pads", std::vector<int64_t>(2 * sp, 0));
    if (pads.size() != 2 * sp) fail(a, "pads must have " + std::to_string(2 * sp) + " values");
    std::copy(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(sp), w.pad_begin.begin());
  }
  return w;
}

Window make_transpose_window(const KernelArgs& a, const std::vector<int64_t>& x_sp,
                             const std::vector<int64_t>& y_sp, const std::vector<int64_t>& kernel) {
  Window w = base_window(a, y_sp, x_sp, kernel);
  const Node& n = *a.node;
  const size_t sp = x_sp.size();
  const std::string ap = attr_str(n, "auto_pad", "NOTSET");
  if (ap == "VALID") return w;
  if (ap == "NOTSET" && !n.has_attr("output_shape")) {
    std::vector<int64_t> pads = attr_ints(n, "pads", std::vector<int64_t>(2 * sp, 0));
    if (pads.size() != 2 * sp) fail(a, "pads must have " + std::to_string(2 * sp) + " values");
    std::copy(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(sp), w.pad_begin.begin());
    return w;
  }
  // ONNX: total_padding = stride * (in - 1) + output_padding + effective
  // kernel - out; SAME_UPPER puts the smaller half first, otherwise the larger.
  std::vector<int64_t> opad = attr_ints(n, "output_padding", std::vector<int64_t>(sp, 0));
  for (size_t d = 0; d < sp; ++d) {
    const int64_t ek = (w.kernel[d] - 1) * w.dilations[d] + 1;
    const int64_t total = std::max<int64_t>(0, w.strides[d] * (x_sp[d] - 1) +
                                                   (d < opad.size() ? opad[d] : 0) + ek - y_sp[d]);
    w.pad_begin[d] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
  }
  return w;
}

} // namespace nn
} // namespace memplan::kernels
