#include "python-free-frontends/onnx_external.h"

#include <onnx/onnx_pb.h>

#include <charconv>
#include <climits>

#include "compiler/ir.h"
#include "compiler/plan.h"

namespace memplan {

std::map<std::string, ExternalRef> onnx_external_refs(const std::string& path) {
  std::string bytes = read_file(path);
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw Error(path + ": model is larger than 2 GiB, which protobuf cannot parse");
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes)) throw Error(path + ": not a valid ONNX model (protobuf parsing failed)");
  std::map<std::string, ExternalRef> refs;
  for (const onnx::TensorProto& t : m.graph().initializer()) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) continue;
    ExternalRef r;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "location") {
        r.location = kv.value();
      } else if (kv.key() == "offset" || kv.key() == "length") {
        int64_t v = 0;
        const std::string& s = kv.value();
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size() || v < 0)
          throw Error(path + ": initializer '" + t.name() + "': external data " + kv.key() + " '" +
                      s + "' is not a non-negative integer");
        (kv.key() == "offset" ? r.offset : r.length) = v;
      }
    }
    refs.emplace(t.name(), std::move(r));
  }
  return refs;
}

}  // namespace memplan
