// CPU kernels: MaxPool (with optional Indices), AveragePool, GlobalAveragePool,
// GlobalMaxPool and the backward ops MaxPoolGrad (argmax recomputed from X),
// AveragePoolGrad and GlobalAveragePoolGrad.
//
// A pool reads, for every output position o of a channel plane, the input
// offsets rows[k * OS + o] (k: flat kernel position, -1: padding or past the
// end in ceil_mode). The table is computed once per call and shared by every
// (n, c) plane. Max ties go to the first position in row-major window order.
#include <algorithm>
#include <limits>

#include "runtime/cpu/nn_util.h"

namespace memplan::kernels::nn {

namespace {

Shape spatial(const Shape& s) {
  return Shape(s.begin() + 2, s.end());
}

struct Pool {
  Window w;
  int64_t planes;            // N * C
  std::vector<int64_t> rows; // [K, OS] input offsets, -1 = none
};

Pool make_pool(const KernelArgs& a, const Shape& x, const Shape& y, Shape kernel) {
  Pool p{make_window(a, spatial(x), spatial(y), std::move(kernel)), x[0] * x[1], {}};
  const int64_t K = p.w.k_size(), OS = p.w.out_size();
  p.rows.resize(static_cast<size_t>(K * OS));
  std::vector<int64_t> row;
  for (int64_t k = 0; k < K; ++k) {
    p.w.kernel_row(k, row);
    std::copy(row.begin(), row.end(), p.rows.begin() + k * OS);
  }
  return p;
}

Shape kernel_attr(const KernelArgs& a) {
  return attr_ints(*a.node, "kernel_shape");
}

/// AveragePool divisor for each output position: window positions inside the
/// input, or (count_include_pad) inside the padded input [-pad_begin, in + pad_end).
std::vector<int64_t> avg_counts(const KernelArgs& a, const Window& w) {
  const size_t sp = w.in.size();
  const bool include_pad = attr_int(*a.node, "count_include_pad", 0) != 0;
  const std::string ap = attr_str(*a.node, "auto_pad", "NOTSET");
  std::vector<int64_t> pads = attr_ints(*a.node, "pads", std::vector<int64_t>(2 * sp, 0));
  std::vector<int64_t> cnt{1};
  for (size_t d = 0; d < sp; ++d) {
    int64_t lo = 0, hi = w.in[d];
    if (include_pad) {
      const int64_t ek = (w.kernel[d] - 1) * w.dilations[d] + 1;
      int64_t pe = 0;
      if (ap == "SAME_UPPER" || ap == "SAME_LOWER")
        pe = std::max<int64_t>(0, (w.out[d] - 1) * w.strides[d] + ek - w.in[d]) - w.pad_begin[d];
      else if (ap != "VALID" && pads.size() == 2 * sp)
        pe = pads[sp + d];
      lo = -w.pad_begin[d];
      hi = w.in[d] + pe;
    }
    std::vector<int64_t> next;
    for (int64_t c : cnt)
      for (int64_t o = 0; o < w.out[d]; ++o) {
        int64_t n = 0;
        for (int64_t k = 0; k < w.kernel[d]; ++k) {
          const int64_t i = o * w.strides[d] - w.pad_begin[d] + k * w.dilations[d];
          n += (i >= lo && i < hi);
        }
        next.push_back(c * n);
      }
    cnt.swap(next);
  }
  return cnt;
}

void max_pool(const KernelArgs& a) {
  if (attr_int(*a.node, "storage_order", 0) != 0) fail(a, "storage_order=1 is not supported");
  const TensorArg &x = a.in[0], &y = a.out[0];
  Pool p = make_pool(a, x.shape, y.shape, kernel_attr(a));
  const int64_t K = p.w.k_size(), OS = p.w.out_size(), IS = p.w.in_size();
  int64_t* idx = a.out.size() > 1 && a.out[1].present() ? a.out[1].as<int64_t>() : nullptr;
  float_dispatch(a, x.dtype, [&]<class T>() {
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x.as<T>() + pl * IS;
      T* yp = y.as<T>() + pl * OS;
      for (int64_t o = 0; o < OS; ++o) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = -1;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t r = p.rows[k * OS + o];
          if (r >= 0 && (arg < 0 || xp[r] > best)) best = xp[r], arg = r;
        }
        yp[o] = best;
        if (idx) idx[pl * OS + o] = arg < 0 ? -1 : pl * IS + arg;
      }
    }
  });
}

void max_pool_grad(const KernelArgs& a) { // (dY, X) -> dX
  const TensorArg &dy = a.in[0], &x = a.in[1], &dx = a.out[0];
  Pool p = make_pool(a, x.shape, dy.shape, kernel_attr(a));
  const int64_t K = p.w.k_size(), OS = p.w.out_size(), IS = p.w.in_size();
  float_dispatch(a, x.dtype, [&]<class T>() {
    std::fill(dx.as<T>(), dx.as<T>() + dx.numel, T(0));
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x.as<T>() + pl * IS;
      const T* gp = dy.as<T>() + pl * OS;
      T* dp = dx.as<T>() + pl * IS;
      for (int64_t o = 0; o < OS; ++o) {
        int64_t arg = -1;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t r = p.rows[k * OS + o];
          if (r >= 0 && (arg < 0 || xp[r] > xp[arg])) arg = r;
        }
        if (arg >= 0) dp[arg] += gp[o];
      }
    }
  });
}

void avg_pool(const KernelArgs& a) {
  const TensorArg &x = a.in[0], &y = a.out[0];
  Pool p = make_pool(a, x.shape, y.shape, kernel_attr(a));
  const int64_t K = p.w.k_size(), OS = p.w.out_size(), IS = p.w.in_size();
  std::vector<int64_t> cnt = avg_counts(a, p.w);
  float_dispatch(a, x.dtype, [&]<class T>() {
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x.as<T>() + pl * IS;
      T* yp = y.as<T>() + pl * OS;
      for (int64_t o = 0; o < OS; ++o) {
        T s = 0;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t r = p.rows[k * OS + o];
          if (r >= 0) s += xp[r];
        }
        yp[o] = cnt[o] > 0 ? s / static_cast<T>(cnt[o]) : T(0);
      }
    }
  });
}

void avg_pool_grad(const KernelArgs& a) { // (dY) -> dX, attr input_shape
  const TensorArg &dy = a.in[0], &dx = a.out[0];
  Pool p = make_pool(a, dx.shape, dy.shape, kernel_attr(a));
  const int64_t K = p.w.k_size(), OS = p.w.out_size(), IS = p.w.in_size();
  std::vector<int64_t> cnt = avg_counts(a, p.w);
  float_dispatch(a, dy.dtype, [&]<class T>() {
    std::fill(dx.as<T>(), dx.as<T>() + dx.numel, T(0));
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* gp = dy.as<T>() + pl * OS;
      T* dp = dx.as<T>() + pl * IS;
      for (int64_t o = 0; o < OS; ++o) {
        if (cnt[o] == 0) continue;
        const T g = gp[o] / static_cast<T>(cnt[o]);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t r = p.rows[k * OS + o];
          if (r >= 0) dp[r] += g;
        }
      }
    }
  });
}

void global_pool(const KernelArgs& a, bool is_max) {
  const TensorArg &x = a.in[0], &y = a.out[0];
  const int64_t planes = x.shape[0] * x.shape[1], S = prod(x.shape, 2, x.shape.size());
  float_dispatch(a, x.dtype, [&]<class T>() {
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* xp = x.as<T>() + pl * S;
      if (is_max) {
        y.as<T>()[pl] = S ? *std::max_element(xp, xp + S) : -std::numeric_limits<T>::infinity();
        continue;
      }
      T s = 0;
      for (int64_t i = 0; i < S; ++i)
        s += xp[i];
      y.as<T>()[pl] = S ? s / static_cast<T>(S) : T(0);
    }
  });
}

void global_avg_pool(const KernelArgs& a) {
  global_pool(a, false);
}
void global_max_pool(const KernelArgs& a) {
  global_pool(a, true);
}

void global_avg_pool_grad(const KernelArgs& a) { // (dY [N,C,1..]) -> dX
  const TensorArg &dy = a.in[0], &dx = a.out[0];
  const int64_t planes = dx.shape[0] * dx.shape[1], S = prod(dx.shape, 2, dx.shape.size());
  float_dispatch(a, dy.dtype, [&]<class T>() {
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T g = dy.as<T>()[pl] / static_cast<T>(S);
      std::fill(dx.as<T>() + pl * S, dx.as<T>() + (pl + 1) * S, g);
    }
  });
}

} // namespace

void register_pool(Table& t) {
  t["MaxPool"] = max_pool;
  t["AveragePool"] = avg_pool;
  t["GlobalAveragePool"] = global_avg_pool;
  t["GlobalMaxPool"] = global_max_pool;
  t["MaxPoolGrad"] = max_pool_grad;
  t["AveragePoolGrad"] = avg_pool_grad;
  t["GlobalAveragePoolGrad"] = global_avg_pool_grad;
}

} // namespace memplan::kernels::nn
