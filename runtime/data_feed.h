// Input data for `memplan run`: one map of graph-input bytes per step.
//
// Synthetic (--synthetic): deterministic from the seed, LEARNABLE so that the
// loss of a training run can fall:
//  1. a pool of kSyntheticPool batches is generated once; batch k is pool[k % kSyntheticPool];
//  2. float inputs are N(0, 1);
//  3. integer inputs get a valid range from how the graph reads them (through
//     views and Cast): labels of SoftmaxCrossEntropyLoss (input 1) -> [0, C)
//     with C = scores.shape[1]; indices of Gather -> [0, data.shape[axis]);
//     anything else -> [0, 2);
//  4. labels are a function of the other inputs: a labels input with as
//     many elements as an integer (token) input is a fixed permutation of it,
//     (m * token + 3) mod C with m the first integer from 7 up coprime with C (a token model learns the map; the identity would
//     be trivial for tied embeddings); otherwise, if there is a float
//     input with the same first dim, label[b] = argmax over C of a fixed random
//     projection of sample b (a linear classifier can fit it); otherwise the
//     labels stay random.
// Files (--data DIR): DIR/NAME.npy per graph input (NAME with '/' and '\'
// replaced by '_'): dtype equal to the input's, shape [samples, *input.shape[1:]]
// (a scalar input: [samples]); batch k takes samples k*B .. k*B+B-1 modulo the
// sample count (B = input.shape[0]), wrapping around; all files must hold the same number of
// samples. Errors name the file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/ir.h"

namespace memplan {

inline constexpr int kSyntheticPool = 4;

using InputMap = std::map<std::string, std::vector<uint8_t>>;

class DataFeed {
 public:
  virtual ~DataFeed() = default;
  /// Batch number k (every graph input of the graph the feed was made for).
  /// A pure function of k, so that a resumed run at step k sees what an
  /// uninterrupted run would have seen.
  virtual const InputMap& batch(uint64_t k) = 0;
};

std::unique_ptr<DataFeed> make_synthetic_feed(const Graph& g, uint64_t seed);
std::unique_ptr<DataFeed> make_npy_feed(const Graph& g, const std::string& dir);

/// The range [0, hi) synthetic data uses for integer input t (see above).
int64_t synthetic_int_range(const Graph& g, TensorId t);

}  // namespace memplan
