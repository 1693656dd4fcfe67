// Printer for the textual graph IR; the syntax is in ir_text.h.
//
// Appends to one std::string (linear in the graph). Declarations come first:
// graph inputs, then role-input tensors outside Graph::inputs, then every
// other tensor no node writes; then nodes in stored order; then outputs.
#include <bit>
#include <charconv>
#include <cmath>

#include "compiler/ir_text.h"
#include "compiler/ir_text_syntax.h"

namespace memplan {

namespace {

using ir_text_detail::is_bare_ident;
using ir_text_detail::is_bare_name;
using ir_text_detail::kQuietNaN;
using ir_text_detail::kSignBit;
using ir_text_detail::kUnboundSymbol;

class Printer {
 public:
  explicit Printer(const PrintOptions& opts) : opts_(opts) {}
  std::string print(const Graph& g);

 private:
  void put(std::string_view s) { out_ += s; }
  void put(char c) { out_ += c; }
  void put_int(int64_t v);
  void put_double(double v);
  void put_quoted(std::string_view s);
  void put_name(char sigil, std::string_view s);
  void put_word(std::string_view s);  // bare identifier or quoted
  void put_type(const Tensor& t);
  void put_dims(const Tensor& t);
  void put_attr(const AttrValue& v);
  void put_decl(const Tensor& t);
  void put_node(const Graph& g, const Node& n);

  const PrintOptions& opts_;
  std::string out_;
};

void Printer::put_int(int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
}

void Printer::put_double(double v) {
  if (std::isnan(v)) {
    uint64_t bits = std::bit_cast<uint64_t>(v);
    if (bits == kQuietNaN) return put("nan");
    if (bits == (kQuietNaN | kSignBit)) return put("-nan");
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, bits, 16);
    put("nan(0x");
    out_.append(buf, r.ptr);
    return put(')');
  }
  if (std::isinf(v)) return put(v < 0 ? "-inf" : "inf");
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
  out_ += s;
  if (s.find_first_of(".e") == std::string_view::npos) put(".0");
}

void Printer::put_quoted(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  put('"');
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      put('\\');
      put(c);
    } else if (c == '\n') {
      put("\\n");
    } else if (c == '\t') {
      put("\\t");
    } else if (c == '\r') {
      put("\\r");
    } else if (u < 0x20 || u == 0x7f) {
      put("\\x");
      put(kHex[u >> 4]);
      put(kHex[u & 15]);
    } else {
      put(c);
    }
  }
  put('"');
}

void Printer::put_name(char sigil, std::string_view s) {
  put(sigil);
  if (is_bare_name(s)) return put(s);
  put_quoted(s);
}

void Printer::put_word(std::string_view s) {
  if (is_bare_ident(s)) return put(s);
  put_quoted(s);
}

void Printer::put_dims(const Tensor& t) {
  put('[');
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i) put(',');
    std::string_view sym = i < t.sym.size() ? std::string_view(t.sym[i]) : std::string_view();
    if (sym.empty()) {
      put_int(t.shape[i]);
      continue;
    }
    put_word(sym);
    if (t.shape[i] != kUnboundSymbol) {
      put('=');
      put_int(t.shape[i]);
    }
  }
  put(']');
}

void Printer::put_type(const Tensor& t) {
  put(dtype_name(t.dtype));
  if (t.shape_known) return put_dims(t);
  put("[?]");
  if (!t.shape.empty()) put_dims(t);
}

void Printer::put_attr(const AttrValue& v) {
  auto list = [&](const auto& xs, std::string_view empty, auto each) {
    if (xs.empty()) return put(empty);
    put('[');
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i) put(", ");
      each(xs[i]);
    }
    put(']');
  };
  if (auto* i = std::get_if<int64_t>(&v)) return put_int(*i);
  if (auto* d = std::get_if<double>(&v)) return put_double(*d);
  if (auto* s = std::get_if<std::string>(&v)) return put_quoted(*s);
  if (auto* is = std::get_if<std::vector<int64_t>>(&v))
    return list(*is, "ints[]", [&](int64_t x) { put_int(x); });
  if (auto* ds = std::get_if<std::vector<double>>(&v))
    return list(*ds, "floats[]", [&](double x) { put_double(x); });
  list(std::get<std::vector<std::string>>(v), "strings[]",
       [&](const std::string& x) { put_quoted(x); });
}

void Printer::put_decl(const Tensor& t) {
  static constexpr char kHex[] = "0123456789abcdef";
  put("  ");
  put(role_name(t.role));
  put(' ');
  put_name('%', t.name);
  put(" : ");
  put_type(t);
  if (!t.external.empty()) {
    put(" external ");
    put_quoted(t.external);
  }
  const int64_t limit =
      t.role == Role::constant ? opts_.max_inline_bytes : opts_.max_inline_weight_bytes;
  if (t.data && static_cast<int64_t>(t.data->size()) <= limit) {
    put(" = dense<\"");
    out_.reserve(out_.size() + 2 * t.data->size() + 4);
    for (uint8_t b : *t.data) {
      put(kHex[b >> 4]);
      put(kHex[b & 15]);
    }
    put("\">");
  } else if (t.data || t.data_elided) {
    put(" = elided");
  }
  put('\n');
}

void Printer::put_node(const Graph& g, const Node& n) {
  auto values = [&](const std::vector<TensorId>& ids) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) put(", ");
      if (ids[i].valid())
        put_name('%', g.tensor(ids[i]).name);
      else
        put('_');
    }
  };
  put("  ");
  if (n.outputs.empty())
    put("()");
  else
    values(n.outputs);
  put(" = ");
  put_word(n.op);
  put(' ');
  put_quoted(n.name);
  put(" (");
  values(n.inputs);
  put(')');
  if (!n.attrs.empty()) {
    put(" {");
    bool first = true;
    for (const auto& [k, v] : n.attrs) {
      if (!first) put(", ");
      first = false;
      if (is_bare_name(k))
        put(k);
      else
        put_quoted(k);
      put(" = ");
      put_attr(v);
    }
    put('}');
  }
  if (!n.outputs.empty()) {
    put(" : ");
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (i) put(", ");
      if (n.outputs[i].valid())
        put_type(g.tensor(n.outputs[i]));
      else
        put('_');
    }
  }
  put('\n');
}

std::string Printer::print(const Graph& g) {
  put("graph ");
  put_name('@', g.name);
  put(" opset ");
  put_int(g.opset);
  put(" {\n");
  // A tensor is declared unless a node line defines it.
  std::vector<char> declared(g.num_tensors(), 0);
  for (const Node& n : g.nodes())
    for (TensorId o : n.outputs)
      if (o.valid()) declared[o.v] = 1;
  for (TensorId t : g.inputs) {
    if (declared.at(t.v)) continue;
    declared[t.v] = 1;
    put_decl(g.tensor(t));
  }
  // Role-input tensors missing from Graph::inputs become graph inputs when
  // parsed; printing them here keeps the text a fixed point.
  for (uint32_t i = 0; i < g.num_tensors(); ++i) {
    if (declared[i] || g.tensor(TensorId(i)).role != Role::input) continue;
    declared[i] = 1;
    put_decl(g.tensor(TensorId(i)));
  }
  for (uint32_t i = 0; i < g.num_tensors(); ++i)
    if (!declared[i]) put_decl(g.tensor(TensorId(i)));
  for (const Node& n : g.nodes()) put_node(g, n);
  for (TensorId t : g.outputs) {
    put("  output ");
    put_name('%', g.tensor(t).name);
    put('\n');
  }
  put("}\n");
  return std::move(out_);
}

}  // namespace

std::string print_graph(const Graph& g, const PrintOptions& opts) { return Printer(opts).print(g); }

}  // namespace memplan
