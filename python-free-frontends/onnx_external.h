// Where an ONNX model's externally stored initializers live: the importer
// records only the location (Tensor::external); loading weights also needs
// the offset and length of each tensor inside that file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace memplan {

struct ExternalRef {
  std::string location;  // relative to the model's directory
  int64_t offset = 0;
  int64_t length = -1;   // -1: not given (the tensor's byte size)
};

/// initializer name -> external-data reference, for every initializer of the
/// model's main graph stored as external data. Error naming the file on an
/// unreadable or unparsable model or a bad offset/length entry.
std::map<std::string, ExternalRef> onnx_external_refs(const std::string& model_path);

}  // namespace memplan
