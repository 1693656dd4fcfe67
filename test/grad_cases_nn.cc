// Gradient-check cases: nn family (conv, pools, Gemm, MatMul, softmax, norms,
// dropout, losses). Shapes are small so central differences in f64 stay fast;
// random inputs keep max pooling away from ties.
#include "test/grad_check.h"

namespace memplan::gradcheck {

namespace {

/// A random input whose gradient is not checked (running statistics).
InputSpec fixed(Shape s, double lo, double hi) {
  return InputSpec{.shape = std::move(s), .lo = lo, .hi = hi, .differentiable = false};
}
InputSpec labels(Shape s, std::vector<double> v) {
  return InputSpec{.shape = std::move(s),
                   .dtype = DType::i64,
                   .kind = InputSpec::values,
                   .data = std::move(v),
                   .differentiable = false};
}
InputSpec scalar(DType d, double v) {
  return InputSpec{
      .shape = {}, .dtype = d, .kind = InputSpec::values, .data = {v}, .differentiable = false};
}
using Ints = std::vector<int64_t>;

void conv_cases(std::vector<GradCase>& r) {
  r.push_back({.name = "Conv/stride2_pad1_bias",
               .op = "Conv",
               .inputs = {rnd({2, 2, 5, 5}), rnd({3, 2, 3, 3}), rnd({3})},
               .attrs = {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}});
  r.push_back({.name = "Conv/dilation2",
               .op = "Conv",
               .inputs = {rnd({1, 2, 6, 6}), rnd({2, 2, 2, 2})},
               .attrs = {{"dilations", Ints{2, 2}}}});
  r.push_back({.name = "Conv/groups2_pad1",
               .op = "Conv",
               .inputs = {rnd({1, 4, 4, 4}), rnd({4, 2, 3, 3}), rnd({4})},
               .attrs = {{"group", int64_t{2}}, {"pads", Ints{1, 1, 1, 1}}}});
  r.push_back({.name = "Conv/1d_same_upper_stride2",
               .op = "Conv",
               .inputs = {rnd({2, 3, 7}), rnd({2, 3, 3})},
               .attrs = {{"auto_pad", std::string("SAME_UPPER")}, {"strides", Ints{2}}}});
  r.push_back({.name = "Conv/pointwise",
               .op = "Conv",
               .inputs = {rnd({2, 3, 2, 3}), rnd({4, 3, 1, 1}), rnd({4})}});
  r.push_back({.name = "ConvTranspose/stride2_pad1_bias",
               .op = "ConvTranspose",
               .inputs = {rnd({1, 2, 3, 3}), rnd({2, 3, 3, 3}), rnd({3})},
               .attrs = {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}});
  r.push_back(
      {.name = "ConvTranspose/stride2_outpad1_groups2",
       .op = "ConvTranspose",
       .inputs = {rnd({1, 4, 2, 3}), rnd({4, 1, 2, 2})},
       .attrs = {{"strides", Ints{2, 2}}, {"group", int64_t{2}}, {"output_padding", Ints{1, 1}}}});
}

void pool_cases(std::vector<GradCase>& r) {
  r.push_back({.name = "MaxPool/2x2",
               .op = "MaxPool",
               .inputs = {rnd({2, 3, 4, 4})},
               .attrs = {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}});
  r.push_back({.name = "MaxPool/3x3_stride2_pad1",
               .op = "MaxPool",
               .inputs = {rnd({1, 2, 5, 5})},
               .attrs = {{"kernel_shape", Ints{3, 3}},
                         {"strides", Ints{2, 2}},
                         {"pads", Ints{1, 1, 1, 1}}}});
  r.push_back({.name = "MaxPool/ceil_mode",
               .op = "MaxPool",
               .inputs = {rnd({1, 2, 5, 5})},
               .attrs = {{"kernel_shape", Ints{2, 2}},
                         {"strides", Ints{2, 2}},
                         {"ceil_mode", int64_t{1}}}});
  r.push_back(
      {.name = "GlobalMaxPool/basic", .op = "GlobalMaxPool", .inputs = {rnd({2, 3, 3, 2})}});
  r.push_back({.name = "AveragePool/3x3_stride2_pad1_exclude_pad",
               .op = "AveragePool",
               .inputs = {rnd({1, 2, 5, 5})},
               .attrs = {{"kernel_shape", Ints{3, 3}},
                         {"strides", Ints{2, 2}},
                         {"pads", Ints{1, 1, 1, 1}}}});
  r.push_back({.name = "AveragePool/3x3_stride2_pad1_include_pad",
               .op = "AveragePool",
               .inputs = {rnd({1, 2, 5, 5})},
               .attrs = {{"kernel_shape", Ints{3, 3}},
                         {"strides", Ints{2, 2}},
                         {"pads", Ints{1, 1, 1, 1}},
                         {"count_include_pad", int64_t{1}}}});
  r.push_back({.name = "GlobalAveragePool/basic",
               .op = "GlobalAveragePool",
               .inputs = {rnd({2, 3, 2, 3})}});
}

void matmul_cases(std::vector<GradCase>& r) {
  r.push_back({.name = "Gemm/transA_C_row_broadcast",
               .op = "Gemm",
               .inputs = {rnd({4, 3}), rnd({4, 5}), rnd({5})},
               .attrs = {{"transA", int64_t{1}}, {"alpha", 0.7}, {"beta", 1.3}}});
  r.push_back({.name = "Gemm/transB_C_column_broadcast",
               .op = "Gemm",
               .inputs = {rnd({3, 4}), rnd({5, 4}), rnd({3, 1})},
               .attrs = {{"transB", int64_t{1}}, {"beta", 0.5}}});
  r.push_back({.name = "Gemm/transA_transB_scalar_C",
               .op = "Gemm",
               .inputs = {rnd({4, 3}), rnd({5, 4}), rnd({})},
               .attrs = {{"transA", int64_t{1}}, {"transB", int64_t{1}}, {"alpha", 2.0}}});
  r.push_back({.name = "Gemm/no_C", .op = "Gemm", .inputs = {rnd({2, 3}), rnd({3, 4})}});
  r.push_back({.name = "MatMul/batched_2x3x4_by_4x5",
               .op = "MatMul",
               .inputs = {rnd({2, 3, 4}), rnd({4, 5})}});
  r.push_back({.name = "MatMul/broadcast_2x1x3x4_by_3x4x2",
               .op = "MatMul",
               .inputs = {rnd({2, 1, 3, 4}), rnd({3, 4, 2})}});
  r.push_back(
      {.name = "MatMul/1d_by_batched", .op = "MatMul", .inputs = {rnd({4}), rnd({2, 4, 3})}});
  r.push_back(
      {.name = "MatMul/batched_by_1d", .op = "MatMul", .inputs = {rnd({2, 3, 4}), rnd({4})}});
  r.push_back({.name = "MatMul/1d_by_1d", .op = "MatMul", .inputs = {rnd({4}), rnd({4})}});
}

void softmax_norm_cases(std::vector<GradCase>& r) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    r.push_back({.name = std::string(op) + "/axis_-1",
                 .op = op,
                 .inputs = {rnd({2, 3, 4})},
                 .attrs = {{"axis", int64_t{-1}}}});
    r.push_back({.name = std::string(op) + "/axis_1",
                 .op = op,
                 .inputs = {rnd({2, 3, 4})},
                 .attrs = {{"axis", int64_t{1}}}});
  }
  // stash_type 11 (double) keeps the saved statistics exact in the f64 check.
  r.push_back({.name = "LayerNormalization/axis_-1",
               .op = "LayerNormalization",
               .inputs = {rnd({2, 3, 4}), rnd({4}), rnd({4})},
               .attrs = {{"axis", int64_t{-1}}, {"stash_type", int64_t{11}}}});
  r.push_back({.name = "LayerNormalization/axis_1_no_bias",
               .op = "LayerNormalization",
               .inputs = {rnd({2, 3, 2}), rnd({3, 2})},
               .attrs = {{"axis", int64_t{1}}, {"stash_type", int64_t{11}}}});
  // Only dX, dscale, dB are checked; the running statistics are not differentiable.
  r.push_back(
      {.name = "BatchNormTraining/nchw",
       .op = "BatchNormTraining",
       .inputs = {rnd({3, 2, 2, 2}), rnd({2}), rnd({2}), fixed({2}, -1, 1), fixed({2}, 0.5, 1.5)},
       .attrs = {{"epsilon", 1e-5}, {"momentum", 0.9}},
       .num_outputs = 3});
  r.push_back({.name = "BatchNormTraining/nc",
               .op = "BatchNormTraining",
               .inputs = {rnd({4, 3}), rnd({3}), rnd({3}), fixed({3}, -1, 1), fixed({3}, 0.5, 1.5)},
               .num_outputs = 3});
}

void dropout_loss_cases(std::vector<GradCase>& r) {
  // The mask is a pure function of (seed, step, rng_key), so every
  // finite-difference evaluation drops the same elements.
  r.push_back({.name = "Dropout/ratio0.3_training",
               .op = "Dropout",
               .inputs = {rnd({4, 5}), scalar(DType::f64, 0.3), scalar(DType::boolean, 1)},
               .num_outputs = 2});
  r.push_back({.name = "Dropout/inference", .op = "Dropout", .inputs = {rnd({3, 4})}});
  const std::string sce = "SoftmaxCrossEntropyLoss";
  r.push_back({.name = sce + "/mean_ignore_index",
               .op = sce,
               .inputs = {rnd({4, 5}), labels({4}, {0, -100, 3, 1})},
               .attrs = {{"reduction", std::string("mean")}, {"ignore_index", int64_t{-100}}}});
  r.push_back({.name = sce + "/sum",
               .op = sce,
               .inputs = {rnd({3, 4}), labels({3}, {2, 0, 3})},
               .attrs = {{"reduction", std::string("sum")}}});
  r.push_back({.name = sce + "/none",
               .op = sce,
               .inputs = {rnd({3, 4}), labels({3}, {1, 1, 0})},
               .attrs = {{"reduction", std::string("none")}}});
  r.push_back({.name = sce + "/NCd1_mean_weights",
               .op = sce,
               .inputs = {rnd({2, 3, 2}), labels({2, 2}, {0, 2, 1, 2}), fixed({3}, 0.5, 1.5)},
               .attrs = {{"reduction", std::string("mean")}}});
  r.push_back({.name = sce + "/NCd1_none_ignore_index",
               .op = sce,
               .inputs = {rnd({2, 3, 2}), labels({2, 2}, {0, 1, 1, 2})},
               .attrs = {{"reduction", std::string("none")}, {"ignore_index", int64_t{1}}}});
  const std::string nll = "NegativeLogLikelihoodLoss";
  r.push_back({.name = nll + "/mean_ignore_index",
               .op = nll,
               .inputs = {rnd({4, 3}), labels({4}, {2, 0, 1, 0})},
               .attrs = {{"ignore_index", int64_t{1}}}});
  r.push_back({.name = nll + "/NCd1_sum_weights",
               .op = nll,
               .inputs = {rnd({2, 3, 2}), labels({2, 2}, {0, 2, 1, 1}), fixed({3}, 0.5, 1.5)},
               .attrs = {{"reduction", std::string("sum")}}});
}

} // namespace

std::vector<GradCase> nn_cases() {
  std::vector<GradCase> r;
  conv_cases(r);
  pool_cases(r);
  matmul_cases(r);
  softmax_norm_cases(r);
  dropout_loss_cases(r);
  return r;
}

} // namespace memplan::gradcheck
