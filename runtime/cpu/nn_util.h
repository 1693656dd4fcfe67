// Internal helpers shared by the nn kernel files (runtime/cpu/{conv,pool,
// gemm,norm,softmax,loss,dropout}.cc): dtype dispatch, BLAS GEMM wrappers,
// mixed-dtype element access, and the window geometry of conv / pool ops.
// Include only from runtime/cpu/*.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/kernels_internal.h"

namespace memplan::kernels::nn {

/// Throws Error naming the node: "<node>: <msg>".
[[noreturn]] void fail(const KernelArgs& a, const std::string& msg);

/// Calls f.template operator()<T>() with T = float or double for dtype d;
/// any other dtype is an Error naming the node.
template <class F> void float_dispatch(const KernelArgs& a, DType d, F&& f) {
  if (d == DType::f32) return f.template operator()<float>();
  if (d == DType::f64) return f.template operator()<double>();
  fail(a, "dtype " + std::string(dtype_name(d)) + " is not supported (f32, f64)");
}

/// Row-major C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C (cblas).
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

/// Element i of a float tensor of any float dtype, as double / stored from double.
double load(const TensorArg& t, int64_t i);
void store(const TensorArg& t, int64_t i, double v);
/// Element i of an integer / bool tensor as int64.
int64_t load_int(const TensorArg& t, int64_t i);

/// Product of dims [from, to) of s.
int64_t prod(const Shape& s, size_t from, size_t to);

/// One GEMM of a batched product: Y[y_off] = op(A[a_off]) @ op(B[b_off]) +
/// beta * Y[y_off] (offsets in elements; ldy = n).
struct GemmCall {
  bool ta, tb;
  int64_t m, n, k, lda, ldb;
  int64_t a_off, b_off, y_off;
  float beta;
};
/// The GEMMs of Y = op(A) @ op(B) over broadcast batch dims (numpy rules;
/// with `ybatch`, MatMulTrans's batch_shape, batches Y lacks are summed):
/// one GEMM where the batch folds into M or K, else one per batch. Output
/// batches no GEMM writes go to *zero_fill (fill them with 0); *mn = M * N.
/// Shared by the CPU GEMM kernels and the CUDA backend.
std::vector<GemmCall> plan_batched_gemm(Shape as, bool ta, Shape bs, bool tb, const Shape* ybatch,
                                        std::vector<int64_t>* zero_fill, int64_t* mn);

/// Spatial geometry of a window op seen as a map from a "big" input X
/// [N, C, in...] to a "small" output Y [N, M, out...] (Conv, pools). For
/// ConvTranspose and the conv gradients the same geometry is used with the
/// roles of input and output of the underlying Conv.
struct Window {
  std::vector<int64_t> in, out, kernel, strides, dilations, pad_begin;
  int64_t in_size() const;  // prod(in)
  int64_t out_size() const; // prod(out)
  int64_t k_size() const;   // prod(kernel)
  /// Input offset (within one channel plane) of kernel position `k` (flat,
  /// row-major over kernel) for each output position; -1 where it falls in
  /// the padding. Fills row[0 .. out_size()).
  void kernel_row(int64_t k, std::vector<int64_t>& row) const;
  /// The same for output positions [o0, o0 + count) only (row[0 .. count)).
  void kernel_row(int64_t k, int64_t o0, int64_t count, std::vector<int64_t>& row) const;
  /// Pointwise window: kernel 1, stride 1, no padding (im2col is the identity).
  bool pointwise() const;
};

/// Resolves the window of a Conv / pool node: `in` and `out` are the spatial
/// sizes of the conv input and output, kernel from `kernel` (weight dims or
/// the kernel_shape attribute); pads from attributes or auto_pad.
Window make_window(const KernelArgs& a, const std::vector<int64_t>& in,
                   const std::vector<int64_t>& out, const std::vector<int64_t>& kernel);
/// The window of ConvTranspose: conv input = Y spatial, conv output = X
/// spatial, pads from attributes, output_shape or auto_pad (ONNX formulas).
Window make_transpose_window(const KernelArgs& a, const std::vector<int64_t>& x_sp,
                             const std::vector<int64_t>& y_sp, const std::vector<int64_t>& kernel);

/// Family registration, one per file.
void register_conv(Table& t);
void register_pool(Table& t);
void register_gemm(Table& t);
void register_norm(Table& t);
void register_softmax(Table& t);
void register_loss(Table& t);
void register_dropout(Table& t);

} // namespace memplan::kernels::nn
