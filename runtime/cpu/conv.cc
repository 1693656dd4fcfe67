// CPU kernels: Conv, ConvTranspose, ConvGradInput, ConvGradWeight.
//
// Every kernel is im2col + GEMM per (batch, group): for a Conv from X
// [N, C, in...] to Y [N, M, out...] with weight W [M, C/g, k...], the column
// matrix of one (n, g) is col[C/g * K, OS] (K = prod(k), OS = prod(out)) and
//   Y_ng [M/g, OS]        = W_g [M/g, C/g*K] @ col              (Conv)
//   col                   = W_g^T @ dY_ng, then col2im into dX  (ConvGradInput)
//   dW_g [M/g, C/g*K]    += dY_ng @ col^T                       (ConvGradWeight)
// ConvTranspose(X, W) is ConvGradInput with the roles of the underlying Conv
// (its input is ConvTranspose's Y, its output ConvTranspose's X).
//
// col lives in the op's planned workspace (KernelArgs::workspace, sized by
// compiler conv_workspace_bytes). It holds a tile of T output positions,
// col[C/g * K, T], T = workspace_bytes / (C/g * K * sizeof(T)) (at most OS):
// the GEMMs then work on column blocks of Y / dY (leading dimension OS), so
// the arena pays for a bounded tile, not the whole column matrix. A
// pointwise window (kernel 1, stride 1, no padding) needs no col: X itself
// is the matrix.
#include <algorithm>
#include <cstring>

#include "runtime/cpu/nn_util.h"

namespace memplan::kernels::nn {

namespace {

Shape spatial(const Shape& s) {
  return Shape(s.begin() + 2, s.end());
}

/// Geometry of the underlying Conv: input channels C, output channels M.
struct ConvDims {
  int64_t N, C, M, group, Cg, Mg, K, IS, OS;
  Window w;
};

ConvDims dims(const Window& w, int64_t N, int64_t C, int64_t M, int64_t group) {
  ConvDims d{N, C, M, group, C / group, M / group, w.k_size(), w.in_size(), w.out_size(), w};
  return d;
}

/// The column buffer (nullptr for a pointwise window) and how many output
/// positions one tile of it holds: workspace_bytes / (C/g * K * sizeof(T)),
/// at most OS. The compiler sizes the workspace (conv_workspace_bytes).
template <class T> T* col_buffer(const KernelArgs& a, const ConvDims& d, int64_t* tile) {
  *tile = d.OS;
  if (d.w.pointwise()) return nullptr;
  const int64_t col_bytes = d.Cg * d.K * static_cast<int64_t>(sizeof(T));
  if (a.workspace == nullptr || col_bytes == 0 || a.workspace_bytes < col_bytes)
    throw InternalError(node_desc(*a.node) + ": im2col workspace of " +
                        std::to_string(a.workspace_bytes) + " bytes, at least " +
                        std::to_string(col_bytes) + " needed");
  *tile = std::min(d.OS, a.workspace_bytes / col_bytes);
  return static_cast<T*>(a.workspace);
}

/// col[Cg*K, T] for output positions [o0, o0 + T) from the Cg planes at x.
template <class T>
void im2col(const ConvDims& d, const T* x, int64_t o0, int64_t t, T* col,
            std::vector<int64_t>& row) {
  for (int64_t k = 0; k < d.K; ++k) {
    d.w.kernel_row(k, o0, t, row);
    for (int64_t c = 0; c < d.Cg; ++c) {
      T* dst = col + (c * d.K + k) * t;
      const T* src = x + c * d.IS;
      for (int64_t o = 0; o < t; ++o)
        dst[o] = row[o] < 0 ? T(0) : src[row[o]];
    }
  }
}

/// Accumulates col[Cg*K, T] (output positions [o0, o0 + T)) into the Cg planes at x.
template <class T>
void col2im(const ConvDims& d, const T* col, int64_t o0, int64_t t, T* x,
            std::vector<int64_t>& row) {
  for (int64_t k = 0; k < d.K; ++k) {
    d.w.kernel_row(k, o0, t, row);
    for (int64_t c = 0; c < d.Cg; ++c) {
      const T* src = col + (c * d.K + k) * t;
      T* dst = x + c * d.IS;
      for (int64_t o = 0; o < t; ++o)
        if (row[o] >= 0) dst[row[o]] += src[o];
    }
  }
}

template <class T> void add_bias(const TensorArg& b, T* y, int64_t N, int64_t M, int64_t S) {
  if (!b.present()) return;
  const T* bb = b.as<T>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      T* p = y + (n * M + m) * S;
      for (int64_t s = 0; s < S; ++s)
        p[s] += bb[m];
    }
}

/// y[N, M, OS] = Conv(x[N, C, IS], w), one GEMM per (n, g, output tile).
template <class T>
void conv_forward(const KernelArgs& a, const ConvDims& d, const T* x, const T* w, T* y) {
  int64_t tile;
  T* col = col_buffer<T>(a, d, &tile);
  std::vector<int64_t> row;
  const int64_t CK = d.Cg * d.K;
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t g = 0; g < d.group; ++g) {
      const T* xg = x + (n * d.C + g * d.Cg) * d.IS;
      T* yg = y + (n * d.M + g * d.Mg) * d.OS;
      for (int64_t o0 = 0; o0 < d.OS; o0 += tile) {
        const int64_t t = std::min(tile, d.OS - o0);
        if (col) im2col(d, xg, o0, t, col, row);
        gemm(false, false, d.Mg, t, CK, T(1), w + g * d.Mg * CK, CK, col ? col : xg + o0,
             col ? t : d.OS, T(0), yg + o0, d.OS);
      }
    }
}

/// dx[N, C, IS] = ConvGradInput(dy[N, M, OS], w).
template <class T>
void conv_backward_data(const KernelArgs& a, const ConvDims& d, const T* dy, const T* w, T* dx) {
  int64_t tile;
  T* col = col_buffer<T>(a, d, &tile);
  std::vector<int64_t> row;
  const int64_t CK = d.Cg * d.K;
  if (col) std::fill(dx, dx + d.N * d.C * d.IS, T(0));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t g = 0; g < d.group; ++g) {
      T* dxg = dx + (n * d.C + g * d.Cg) * d.IS;
      const T* dyg = dy + (n * d.M + g * d.Mg) * d.OS;
      for (int64_t o0 = 0; o0 < d.OS; o0 += tile) {
        const int64_t t = std::min(tile, d.OS - o0);
        gemm(true, false, CK, t, d.Mg, T(1), w + g * d.Mg * CK, CK, dyg + o0, d.OS, T(0),
             col ? col : dxg + o0, col ? t : d.OS);
        if (col) col2im(d, col, o0, t, dxg, row);
      }
    }
}

/// dw[M, Cg, k] = ConvGradWeight(dy[N, M, OS], x[N, C, IS]).
template <class T>
void conv_backward_weight(const KernelArgs& a, const ConvDims& d, const T* dy, const T* x, T* dw) {
  int64_t tile;
  T* col = col_buffer<T>(a, d, &tile);
  std::vector<int64_t> row;
  const int64_t CK = d.Cg * d.K;
  std::fill(dw, dw + d.M * CK, T(0));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t g = 0; g < d.group; ++g) {
      const T* xg = x + (n * d.C + g * d.Cg) * d.IS;
      const T* dyg = dy + (n * d.M + g * d.Mg) * d.OS;
      for (int64_t o0 = 0; o0 < d.OS; o0 += tile) {
        const int64_t t = std::min(tile, d.OS - o0);
        if (col) im2col(d, xg, o0, t, col, row);
        gemm(false, true, d.Mg, CK, t, T(1), dyg + o0, d.OS, col ? col : xg + o0, col ? t : d.OS,
             T(1), dw + g * d.Mg * CK, CK);
      }
    }
}

int64_t group_of(const KernelArgs& a) {
  return attr_int(*a.node, "group", 1);
}

void conv(const KernelArgs& a) {
  const TensorArg &x = a.in[0], &w = a.in[1], &y = a.out[0];
  Shape ksz = spatial(w.shape);
  ConvDims d = dims(make_window(a, spatial(x.shape), spatial(y.shape), ksz), x.shape[0], x.shape[1],
                    w.shape[0], group_of(a));
  float_dispatch(a, x.dtype, [&]<class T>() {
    conv_forward(a, d, x.as<T>(), w.as<T>(), y.as<T>());
    if (a.in.size() > 2) add_bias(a.in[2], y.as<T>(), d.N, d.M, d.OS);
  });
}

void conv_transpose(const KernelArgs& a) {
  const TensorArg &x = a.in[0], &w = a.in[1], &y = a.out[0];
  const int64_t group = group_of(a);
  // Underlying Conv: input Y [N, Cy, ys], output X [N, Cx, xs], weight W [Cx, Cy/g, k].
  ConvDims d = dims(make_transpose_window(a, spatial(x.shape), spatial(y.shape), spatial(w.shape)),
                    x.shape[0], y.shape[1], x.shape[1], group);
  float_dispatch(a, x.dtype, [&]<class T>() {
    conv_backward_data(a, d, x.as<T>(), w.as<T>(), y.as<T>());
    if (a.in.size() > 2) add_bias(a.in[2], y.as<T>(), d.N, d.C, d.IS);
  });
}

void conv_grad_input(const KernelArgs& a) { // (dY, W) -> dX
  const TensorArg &dy = a.in[0], &w = a.in[1], &dx = a.out[0];
  ConvDims d = dims(make_window(a, spatial(dx.shape), spatial(dy.shape), spatial(w.shape)),
                    dx.shape[0], dx.shape[1], w.shape[0], group_of(a));
  float_dispatch(a, dy.dtype,
                 [&]<class T>() { conv_backward_data(a, d, dy.as<T>(), w.as<T>(), dx.as<T>()); });
}

void conv_grad_weight(const KernelArgs& a) { // (dY, X) -> dW
  const TensorArg &dy = a.in[0], &x = a.in[1], &dw = a.out[0];
  ConvDims d = dims(make_window(a, spatial(x.shape), spatial(dy.shape), spatial(dw.shape)),
                    x.shape[0], x.shape[1], dw.shape[0], group_of(a));
  float_dispatch(a, dy.dtype,
                 [&]<class T>() { conv_backward_weight(a, d, dy.as<T>(), x.as<T>(), dw.as<T>()); });
}

} // namespace

void register_conv(Table& t) {
  t["Conv"] = conv;
  t["ConvTranspose"] = conv_transpose;
  t["ConvGradInput"] = conv_grad_input;
  t["ConvGradWeight"] = conv_grad_weight;
}

} // namespace memplan::kernels::nn
