// bind_dims: symbolic input dims -> static values. See bind_dims.h.
#include "passes/bind_dims.h"

#include <charconv>
#include <set>
#include <vector>

namespace memplan {

namespace {

/// Parses a positive decimal int64; throws Error prefixed by `flag` otherwise.
int64_t parse_positive(const std::string& s, const std::string& flag, const std::string& example) {
  if (s.empty()) throw Error(flag + ": missing value; expected e.g. " + example);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range)
    throw Error(flag + ": value '" + s + "' does not fit in 64 bits");
  if (ec != std::errc() || p != s.data() + s.size())
    throw Error(flag + ": '" + s + "' is not an integer; expected e.g. " + example);
  if (v <= 0) throw Error(flag + ": value " + s + " must be positive");
  return v;
}

std::string join(const std::vector<std::string>& v) {
  std::string r;
  for (const auto& s : v) r += (r.empty() ? "" : ", ") + s;
  return r;
}

/// A graph input's shape for messages: "[batch,3,224,224]".
std::string declared_shape(const Tensor& t) {
  if (!t.shape_known) return "<no declared shape>";
  std::string r = "[";
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i) r += ",";
    r += i < t.sym.size() && !t.sym[i].empty() ? t.sym[i] : std::to_string(t.shape[i]);
  }
  return r + "]";
}

bool is_symbolic(const Tensor& t, size_t i) { return i < t.sym.size() && !t.sym[i].empty(); }

/// Dim-name bindings with where each came from, for conflict messages.
class Bindings {
 public:
  void bind(const std::string& name, int64_t v, const std::string& from) {
    auto [it, fresh] = values_.emplace(name, std::make_pair(v, from));
    if (!fresh && it->second.first != v)
      throw Error(from + " sets dim '" + name + "' to " + std::to_string(v) + " but " +
                  it->second.second + " sets it to " + std::to_string(it->second.first) +
                  "; make the flags agree");
  }
  std::optional<int64_t> get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second.first;
  }

 private:
  std::map<std::string, std::pair<int64_t, std::string>> values_;
};

/// Checks one --input-shape against the input's declaration and records the
/// dim-name bindings it implies.
void apply_input_shape(const Tensor& t, const Shape& shape, Bindings& b) {
  const std::string flag = "--input-shape " + t.name;
  for (int64_t v : shape)
    if (v <= 0) throw Error(flag + ": dim " + std::to_string(v) + " must be positive");
  if (!t.shape_known) return;  // no declaration to check against
  if (t.shape.size() != shape.size())
    throw Error(flag + ": gives " + std::to_string(shape.size()) + " dims but input '" + t.name +
                "' has rank " + std::to_string(t.shape.size()) + " " + declared_shape(t) +
                "; pass one value per dim");
  for (size_t i = 0; i < shape.size(); ++i) {
    if (is_symbolic(t, i)) {
      b.bind(t.sym[i], shape[i], flag);
    } else if (t.shape[i] != shape[i]) {
      throw Error(flag + ": dim " + std::to_string(i) + " is " + std::to_string(shape[i]) +
                  " but input '" + t.name + "' declares it as " + std::to_string(t.shape[i]) + " " +
                  declared_shape(t) + "; the model's static dims cannot be changed");
    }
  }
}

}  // namespace

std::pair<std::string, int64_t> parse_dim_flag(const std::string& s) {
  const std::string flag = "--dim '" + s + "'";
  const size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(flag + ": expected NAME=VALUE, e.g. --dim batch=32");
  return {s.substr(0, eq), parse_positive(s.substr(eq + 1), flag, "--dim batch=32")};
}

std::pair<std::string, Shape> parse_input_shape_flag(const std::string& s) {
  const std::string flag = "--input-shape '" + s + "'";
  const char* example = "--input-shape x=32x3x224x224";
  const size_t eq = s.rfind('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(flag + ": expected INPUT=D0xD1x..., e.g. " + example);
  const std::string dims = s.substr(eq + 1);
  if (dims.empty()) throw Error(flag + ": missing dims; expected e.g. " + example);
  Shape shape;
  size_t start = 0;
  for (;;) {
    const size_t x = dims.find('x', start);
    shape.push_back(parse_positive(dims.substr(start, x - start), flag, example));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return {s.substr(0, eq), shape};
}

void bind_dims(Graph& g, const BindOptions& opts) {
  std::vector<std::string> input_names;
  std::set<std::string> model_dims;
  for (TensorId id : g.inputs) {
    const Tensor& t = g.tensor(id);
    input_names.push_back(t.name);
    for (const auto& s : t.sym)
      if (!s.empty()) model_dims.insert(s);
  }

  // 1. --input-shape: check and collect the dim names it binds.
  Bindings b;
  for (const auto& [name, shape] : opts.input_shapes) {
    auto id = g.find_tensor(name);
    if (!id || g.tensor(*id).role != Role::input)
      throw Error("--input-shape " + name + ": the model has no graph input '" + name +
                  "' (its inputs: " + (input_names.empty() ? "none" : join(input_names)) + ")");
    apply_input_shape(g.tensor(*id), shape, b);
  }

  // 2. --dim: names must exist in the model.
  for (const auto& [name, v] : opts.dims) {
    const std::string flag = "--dim " + name + "=" + std::to_string(v);
    if (v <= 0) throw Error(flag + ": value must be positive");
    if (!model_dims.count(name))
      throw Error(flag + ": the model has no symbolic dim '" + name + "' (its dims: " +
                  (model_dims.empty() ? "none, all input shapes are static"
                                      : join({model_dims.begin(), model_dims.end()})) +
                  ")");
    b.bind(name, v, flag);
  }

  // 3. Compute every input's static shape; fail before changing anything.
  std::vector<Shape> shapes;
  std::vector<std::string> unbound;
  for (TensorId id : g.inputs) {
    const Tensor& t = g.tensor(id);
    auto given = opts.input_shapes.find(t.name);
    if (given != opts.input_shapes.end()) {
      shapes.push_back(given->second);
      continue;
    }
    if (!t.shape_known)
      throw Error("graph input '" + t.name + "' has no declared shape: pass --input-shape " +
                  t.name + "=D0xD1x...");
    Shape s = t.shape;
    for (size_t i = 0; i < s.size(); ++i) {
      if (!is_symbolic(t, i)) continue;
      if (auto v = b.get(t.sym[i]))
        s[i] = *v;
      else
        unbound.push_back("input '" + t.name + "' dim " + std::to_string(i) + " ('" + t.sym[i] +
                          "'): pass --dim " + t.sym[i] + "=VALUE");
    }
    shapes.push_back(std::move(s));
  }
  if (!unbound.empty())
    throw Error("unbound symbolic dims: " + join(unbound) + " (or --input-shape INPUT=D0xD1x...)");

  // 4. Commit.
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    Tensor& t = g.tensor(g.inputs[k]);
    t.shape = std::move(shapes[k]);
    t.shape_known = true;
    t.sym.clear();
  }
}

}  // namespace memplan
