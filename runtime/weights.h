// Filling an executor's resident tensors: trained weights from a file, or a
// deterministic random initialization.
//
// load_weights(ex, path): the file is a memplan checkpoint (recognized by its
// magic) or an ONNX model (anything else):
//  - ONNX: every parameter of the plan must be an initializer of the model
//    with the same name, dtype and shape; its bytes come from the model
//    (inline) or from its external-data file (location relative to the
//    model's directory, offset and length honoured). A parameter the
//    precision pass stores in f16/bf16 (a frozen weight) is converted from
//    the model's f32. State tensors are loaded
//    when the model has them (BatchNorm running statistics) and otherwise get
//    their init_random value (the training step's counter is not in ONNX);
//    optimizer state stays zero.
//  - checkpoint: parameters required; state and optimizer state loaded when
//    present; the step counter is not restored (that is --resume's job).
// Errors name the file and the tensor: missing file, truncated data, wrong
// dtype or shape, parameter absent.
//
// init_random(ex, seed) follows PyTorch's defaults, deterministically from
// (seed, tensor name), independent of tensor order:
//  1. a parameter read as a weight (rank >= 2) is U(-b, b), b = 1/sqrt(fan_in)
//     (what kaiming_uniform_(a=sqrt(5)) gives for nn.Linear / nn.Conv);
//     fan_in is how the consumer reads it: Conv weight [out, in/g, k...] ->
//     in/g * prod(k); MatMul B [.., K, N] -> K; Gemm B -> K (transB aware);
//     otherwise prod(shape[1:]);
//  2. a parameter used as the table of a Gather (an embedding) is N(0, 1);
//  3. a rank <= 1 parameter is zero (biases; PyTorch draws Linear biases from
//     U(-b, b), zero keeps a fresh model's output centred), except the scale
//     input of BatchNormalization / LayerNormalization / InstanceNormalization /
//     GroupNormalization, which is one;
//  4. state is zero, except BatchNorm running variances, which are one, and
//     the loss scale (loss scaling), which gets its init_scale from the
//     plan; optimizer state is zero; the step counter is set to 0.
#pragma once

#include <cstdint>
#include <string>

namespace memplan {

class Executor;

void load_weights(Executor& ex, const std::string& path);
void init_random(Executor& ex, uint64_t seed);

}  // namespace memplan
