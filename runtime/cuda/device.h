// Host-callable launchers of memplan's own CUDA kernels (runtime/cuda/*.cu).
// Plain C++17, no project headers, so that nvcc compiles the .cu files
// without the compiler's headers and the host side (runtime/cuda/*.cc) calls
// them without CUDA's. Every launcher enqueues on `stream` and returns; shapes
// and strides are computed on the host (runtime/cuda/ops_*.cc) once, when the
// executor is created, and passed by value, so launches are graph-capturable.
//
// Element types: f32 data, u8 for bool (masks, Where's condition), i64
// indices and labels. The semantics of every kernel are the CPU kernel's
// (runtime/cpu/*.cc, named beside each launcher), which the GPU tests use as
// the oracle.
#pragma once

#include <cstdint>

struct CUstream_st;

namespace memplan::cuda {

using Stream = CUstream_st*;

constexpr int kMaxDims = 8;

/// A walk over an output of `rank` dims: for each operand k, the stride of
/// each output dim in that operand (0 where broadcast).
struct Walk {
  int rank = 0;
  int64_t shape[kMaxDims] = {};
  int64_t st[3][kMaxDims] = {};
};

/// Control block of one executor in device memory (a slot of a __device__
/// array in control.cu, not an allocation): the Dropout step, advanced by the
/// last node of every replayed step, and the first op that wrote a NaN.
struct Control {
  unsigned long long step;
  int bad_op; // INT32_MAX: none
  int bad_out;
  long long bad_elem;
};
constexpr int kControlSlots = 32;
/// Device address of control slot `slot` (cudaGetSymbolAddress).
Control* control_slot(int slot);
void launch_advance_step(Control* c, Stream s);
/// The element types of float tensors a kernel may read and write; f16 and
/// bf16 are loaded to float and stored with round to nearest even
/// (common.cuh load_float / store_float).
enum class FloatType : int { f32, f16, bf16 };
/// Records op `op` (output slot `out`) in c->bad_op if x[0, n) of type t holds a NaN.
void launch_nan_check(const void* x, FloatType t, int64_t n, int op, int out, Control* c,
                      Stream s);

// ---------------------------------------------------- elementwise.cu (cpu/elementwise.cc)
enum class Unary : int { relu, tanh, erf, neg, exp, log, sqrt, sigmoid, abs };
enum class Binary : int { add, sub, mul, div, pow, max, min };
enum class ActGrad : int { relu_y, tanh_y, erf_x, sigmoid_y }; // (dY, Y or X) -> dX

/// Operands of float type t (f16 / bf16 elements computed in f32 and rounded
/// to nearest even, what the staging computes).
void launch_unary(Unary op, const void* x, void* y, FloatType t, int64_t n, Stream s);
/// y[i] = a[walk 0] op b[walk 1] over the output walk.
void launch_binary(Binary op, const void* a, const void* b, void* y, FloatType t, const Walk& w,
                   int64_t n, Stream s);
/// y[i] = c[walk 0] ? a[walk 1] : b[walk 2].
void launch_where(const uint8_t* c, const float* a, const float* b, float* y, const Walk& w,
                  int64_t n, Stream s);
void launch_act_grad(ActGrad op, const void* dy, const void* v, void* dx, FloatType t, int64_t n,
                     Stream s);
/// out[i] = in[walk 0 offset] for elements of `elem` bytes (1, 2, 4 or 8): Transpose, Expand.
void launch_strided_copy(const void* in, void* out, int elem, const Walk& w, int64_t n, Stream s);

/// Cast between float types (cpu/cast.cc): round to nearest even, like the
/// CPU's codecs (f32 -> f16 / bf16 directly equals the CPU's route via double).
void launch_cast_float(const void* x, FloatType from, void* y, FloatType to, int64_t n, Stream s);
/// y[i] += bias[(i / inner) % channels] for y and bias of float type t, added
/// in f32 and rounded to t (the bias of a native f16/bf16 convolution).
void launch_channel_bias_add(void* y, const void* bias, FloatType t, int64_t n, int64_t channels,
                             int64_t inner, Stream s);

// ---------------------------------------------------- dropout (cpu/dropout.cc, runtime/rng.h)
/// Keeps element i iff rng_uniform(rng_stream(seed, c->step, key), i) >= ratio.
void launch_dropout(const float* x, float* y, uint8_t* mask, int64_t n, double ratio,
                    unsigned long long seed, unsigned long long key, const Control* c, Stream s);
void launch_dropout_grad(const float* dy, const uint8_t* mask, float* dx, int64_t n, double ratio,
                         Stream s);

// ---------------------------------------------------- reduce.cu (cpu/reduce.cc, pool.cc, index.cc)
/// y[o] = scale * sum over the reduced index space of x: output o has kept
/// coordinates (walk `kept`, stride st[0] into x), the reduced coordinates
/// walk `red` (stride st[0] into x). Sums in double, one block per output;
/// x and y of float type t.
void launch_reduce_sum(const void* x, void* y, FloatType t, const Walk& kept, int64_t n_out,
                       const Walk& red, int64_t n_red, double scale, Stream s);
/// GlobalAveragePoolGrad: dx[p * S + j] = dy[p] / S.
void launch_broadcast_rows(const float* dy, float* dx, int64_t planes, int64_t S, Stream s);
/// Gather along an axis: data [outer, N, inner], idx [K] (negative: from the end).
void launch_gather(const void* x, const int64_t* idx, void* y, int elem, int64_t outer, int64_t N,
                   int64_t K, int64_t inner, Stream s);
/// GatherGrad: dx = 0; dx[o, idx[j], :] += dy[o, j, :] (atomics).
void launch_gather_grad(const float* dy, const int64_t* idx, float* dx, int64_t outer, int64_t N,
                        int64_t K, int64_t inner, Stream s);
/// clip_grad_norm_: acc += sum x^2 (acc is the f32 output, zeroed first).
void launch_sumsq_accumulate(const float* x, int64_t n, float* acc, Stream s);
/// acc = min(1, max_norm / (sqrt(acc) + 1e-6)).
void launch_norm_scale_finish(float* acc, double max_norm, Stream s);

// ---------------------------------------------------- nn.cu (cpu/softmax.cc, norm.cc, loss.cc,
// pool.cc)
void launch_softmax(const float* x, float* y, int64_t outer, int64_t L, int64_t inner, bool log,
                    Stream s);
void launch_softmax_grad(const float* dy, const float* y, float* dx, int64_t outer, int64_t L,
                         int64_t inner, bool log, Stream s);
/// mean / invstd may be null; scale / bias have D or 1 elements (bias may be null).
void launch_layer_norm(const float* x, const float* scale, int64_t scale_n, const float* bias,
                       int64_t bias_n, float* y, float* mean, float* invstd, int64_t rows,
                       int64_t D, double eps, Stream s);
/// dx may be null; dscale / dbias (scale_n elements) may be null.
void launch_layer_norm_grad(const float* dy, const float* x, const float* scale, int64_t scale_n,
                            const float* mean, const float* invstd, float* dx, float* dscale,
                            float* dbias, int64_t rows, int64_t D, Stream s);
/// BatchNormTraining: running stats updated in place (PyTorch: unbiased var).
/// x, y (and dy, x, dx of the grad) are of type xt, f32 accumulation; scale,
/// bias and the statistics are f32.
void launch_batch_norm_train(const void* x, void* y, FloatType xt, const float* scale,
                             const float* bias, const float* rmean_in, const float* rvar_in,
                             float* rmean, float* rvar, float* saved_mean, float* saved_invstd,
                             int64_t N, int64_t C, int64_t S, double eps, double momentum,
                             Stream s);
void launch_batch_norm_train_grad(const void* dy, const void* x, void* dx, FloatType xt,
                                  const float* scale, const float* mean, const float* invstd,
                                  float* dscale, float* dbias, int64_t N, int64_t C, int64_t S,
                                  Stream s);
/// SoftmaxCrossEntropyLoss, reduction 0 none / 1 sum / 2 mean; labels i64;
/// weights optional; ignore_index used when has_ignore. log_prob may be null.
void launch_sce_loss(const float* x, const int64_t* labels, const float* weights, float* loss,
                     float* log_prob, int64_t N, int64_t C, int64_t D, int reduction,
                     bool has_ignore, int64_t ignore, Stream s);
void launch_sce_loss_grad(const float* dl, const float* log_prob, const int64_t* labels,
                          const float* weights, float* dx, int64_t N, int64_t C, int64_t D,
                          int reduction, bool has_ignore, int64_t ignore, Stream s);

/// Pool geometry, up to 3 spatial dims (unused dims have size 1, kernel 1).
struct PoolGeom {
  int nd = 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1}, pad[3] = {0, 0, 0};
};
/// x, y, dy, dx of float type t; indices (i64, may be null) as the CPU's.
void launch_max_pool(const void* x, void* y, FloatType t, int64_t* indices, int64_t planes,
                     const PoolGeom& g, Stream s);
void launch_max_pool_grad(const void* dy, const void* x, void* dx, FloatType t, int64_t planes,
                          const PoolGeom& g, Stream s);

// ---------------------------------------------------- optim.cu (cpu/optim.cc)
/// Scalars (step counter, clip scale) are device pointers read by the kernel,
/// so a captured graph reads each replay's values. scale may be null (1).
void launch_step_increment(const float* in, float* out, Stream s);
void launch_sgd(const float* p, const float* g, const float* buf, float* po, float* bo, int64_t n,
                double lr, double momentum, double dampening, double wd, bool nesterov,
                const float* scale, const float* step, Stream s);
void launch_adam(const float* p, const float* g, const float* m, const float* v, float* po,
                 float* mo, float* vo, int64_t n, double lr, double b1, double b2, double eps,
                 double wd, bool decoupled, const float* step, const float* scale, Stream s);

} // namespace memplan::cuda
