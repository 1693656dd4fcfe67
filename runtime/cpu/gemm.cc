// CPU kernels: Gemm, MatMul (batched, broadcast, 1-D operands) and the
// backward op MatMulTrans (MatMul with the last two dims of A and/or B
// transposed: attrs transA, transB; optional batch_shape: Y's batch dims,
// the other broadcast batches are summed, so a weight gradient is one
// [K, N] matrix and never a [batch, K, N] intermediate), all on cblas GEMM,
// one call per batch, or one call in total when B is shared (dY @ W^T) or
// when every batch is summed (X^T @ dY).
#include <algorithm>

#include "runtime/cpu/nn_util.h"

namespace memplan::kernels::nn {

/// Offsets (in matrices) of an operand with batch dims `in` for each flat
/// index of the broadcast batch shape `out` (numpy rules, right-aligned).
static std::vector<int64_t> batch_offsets(const Shape& in, const Shape& out) {
  const int64_t total = prod(out, 0, out.size());
  std::vector<int64_t> off(static_cast<size_t>(total), 0);
  const size_t lead = out.size() - in.size();
  for (int64_t b = 0; b < total; ++b) {
    int64_t rem = b, o = 0, stride = 1;
    for (size_t d = out.size(); d-- > 0;) {
      const int64_t i = rem % out[d];
      rem /= out[d];
      if (d < lead) continue;
      const int64_t dim = in[d - lead];
      if (dim != 1) o += i * stride;
      stride *= dim;
    }
    off[static_cast<size_t>(b)] = o;
  }
  return off;
}


std::vector<GemmCall> plan_batched_gemm(Shape as, bool ta, Shape bs, bool tb, const Shape* ybatch,
                                        std::vector<int64_t>* zero_fill, int64_t* mn) {
  const int64_t ar = static_cast<int64_t>(as.size()), br = static_cast<int64_t>(bs.size());
  const int64_t M = ta ? as[ar - 1] : as[ar - 2], K = ta ? as[ar - 2] : as[ar - 1];
  const int64_t N = tb ? bs[br - 2] : bs[br - 1];
  const int64_t lda = as[ar - 1], ldb = bs[br - 1];
  *mn = M * N;
  Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  Shape out = abatch.size() >= bbatch.size() ? abatch : bbatch;
  const Shape& other = abatch.size() >= bbatch.size() ? bbatch : abatch;
  for (size_t i = 0; i < other.size(); ++i) {
    int64_t& o = out[out.size() - other.size() + i];
    o = std::max(o, other[i]);
  }
  const Shape yb = ybatch ? *ybatch : out;
  const int64_t nb = prod(out, 0, out.size()), nyb = prod(yb, 0, yb.size());
  const int64_t na = prod(abatch, 0, abatch.size()), nbb = prod(bbatch, 0, bbatch.size());
  if (nbb == 1 && !ta && na == nb && nyb == nb)  // one GEMM: [nb*M, K] @ op(B)
    return {{false, tb, nb * M, N, K, lda, ldb, 0, 0, 0, 0.f}};
  if (nyb == 1 && ta && !tb && na == nb && nbb == nb)  // sum_b A_b^T B_b in one GEMM
    return {{true, false, M, N, nb * K, lda, ldb, 0, 0, 0, 0.f}};
  const std::vector<int64_t> ao = batch_offsets(abatch, out), bo = batch_offsets(bbatch, out),
                             yo = batch_offsets(yb, out);
  std::vector<char> written(static_cast<size_t>(nyb), 0);
  std::vector<GemmCall> gs;
  for (int64_t b = 0; b < nb; ++b) {
    const size_t i = static_cast<size_t>(b), y = static_cast<size_t>(yo[i]);
    gs.push_back({ta, tb, M, N, K, lda, ldb, ao[i] * M * K, bo[i] * K * N, yo[i] * M * N,
                  written[y] ? 1.f : 0.f});
    written[y] = 1;
  }
  for (size_t y = 0; y < written.size(); ++y)
    if (!written[y]) zero_fill->push_back(static_cast<int64_t>(y));
  return gs;
}

namespace {


/// Y[batch, M, N] = op(A) @ op(B) with A, B at least 2-D (batch dims
/// broadcast). With `ybatch` (MatMulTrans's batch_shape) the products of
/// broadcast batches that Y does not have (missing or 1 in ybatch) are summed.
template <class T>
void batched(const T* A, Shape as, bool ta, const T* B, Shape bs, bool tb, T* Y,
             const Shape* ybatch = nullptr) {
  std::vector<int64_t> zero;
  int64_t mn = 0;
  for (const GemmCall& g : plan_batched_gemm(std::move(as), ta, std::move(bs), tb, ybatch, &zero, &mn))
    gemm(g.ta, g.tb, g.m, g.n, g.k, T(1), A + g.a_off, g.lda, B + g.b_off, g.ldb, T(g.beta),
         Y + g.y_off, g.n);
  for (int64_t y : zero) std::fill(Y + y * mn, Y + (y + 1) * mn, T(0));
}

void matmul(const KernelArgs& a) {
  const TensorArg &A = a.in[0], &B = a.in[1], &Y = a.out[0];
  Shape as = A.shape, bs = B.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  float_dispatch(a, A.dtype, [&]<class T>() {
    if (Y.numel == 0) return;
    if (as.back() == 0) {
      std::fill(Y.as<T>(), Y.as<T>() + Y.numel, T(0));
      return;
    }
    batched(A.as<T>(), as, false, B.as<T>(), bs, false, Y.as<T>());
  });
}

void matmul_trans(const KernelArgs& a) {
  const TensorArg &A = a.in[0], &B = a.in[1], &Y = a.out[0];
  const bool ta = attr_int(*a.node, "transA", 0) != 0, tb = attr_int(*a.node, "transB", 0) != 0;
  if (A.shape.size() < 2 || B.shape.size() < 2) fail(a, "operands must have rank >= 2");
  float_dispatch(a, A.dtype, [&]<class T>() {
    if (Y.numel == 0) return;
    const int64_t K = ta ? A.shape[A.shape.size() - 2] : A.shape.back();
    if (K == 0) {
      std::fill(Y.as<T>(), Y.as<T>() + Y.numel, T(0));
      return;
    }
    const Shape yb(Y.shape.begin(), Y.shape.end() - 2);
    batched(A.as<T>(), A.shape, ta, B.as<T>(), B.shape, tb, Y.as<T>(), &yb);
  });
}

void gemm_op(const KernelArgs& a) {
  const Node& n = *a.node;
  const TensorArg &A = a.in[0], &B = a.in[1], &Y = a.out[0];
  const bool ta = attr_int(n, "transA", 0) != 0, tb = attr_int(n, "transB", 0) != 0;
  const double alpha = attr_float(n, "alpha", 1.0), beta = attr_float(n, "beta", 1.0);
  const int64_t M = Y.shape[0], N = Y.shape[1], K = ta ? A.shape[0] : A.shape[1];
  const bool has_c = a.in.size() > 2 && a.in[2].present() && beta != 0.0;
  float_dispatch(a, A.dtype, [&]<class T>() {
    T* y = Y.as<T>();
    if (has_c) {
      const TensorArg& C = a.in[2];
      const size_t r = C.shape.size();
      const int64_t c0 = r == 2 ? C.shape[0] : 1, c1 = r >= 1 ? C.shape[r - 1] : 1;
      const T* c = C.as<T>();
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j)
          y[i * N + j] = static_cast<T>(beta) * c[(c0 == 1 ? 0 : i) * c1 + (c1 == 1 ? 0 : j)];
    } else {
      std::fill(y, y + M * N, T(0));
    }
    if (K > 0)
      gemm(ta, tb, M, N, K, static_cast<T>(alpha), A.as<T>(), A.shape[1], B.as<T>(), B.shape[1],
           T(1), y, N);
  });
}

} // namespace

void register_gemm(Table& t) {
  t["Gemm"] = gemm_op;
  t["MatMul"] = matmul;
  t["MatMulTrans"] = matmul_trans;
}

} // namespace memplan::kernels::nn
