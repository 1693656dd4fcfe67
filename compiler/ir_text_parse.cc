// Parser for the textual graph IR; the syntax is in ir_text.h.
//
// A hand-written recursive-descent reader over the whole text that tracks
// line and column:
//  1. read the header, then items line by line;
//  2. a tensor gets a local slot at its first mention (a use may precede the
//     definition: stored node order need not be topological); defining a slot
//     twice is an error at the second definition;
//  3. at the closing `}`, every used slot must be defined; tensors are added
//     to the Graph in definition order, then nodes in text order;
//  4. verify(g, {.require_shapes = false}).
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "compiler/ir_text.h"
#include "compiler/ir_text_syntax.h"

namespace memplan {

namespace {

using ir_text_detail::hex_value;
using ir_text_detail::is_digit;
using ir_text_detail::is_ident_start;
using ir_text_detail::is_name_char;
using ir_text_detail::kQuietNaN;
using ir_text_detail::kSignBit;
using ir_text_detail::kUnboundSymbol;

struct Loc {
  int line = 0;
  int col = 0;
};

/// A tensor mentioned in the text, before it is added to the Graph.
struct Slot {
  Tensor t;
  bool defined = false;
  Loc first;  // first mention (use or definition)
  Loc def;    // definition
};

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : s_(text), src_(source) {}
  Graph parse();

 private:
  // --- positions and diagnostics
  Loc here() const { return {line_, static_cast<int>(p_ - line_start_) + 1}; }
  [[noreturn]] void fail(Loc at, const std::string& msg) const {
    throw Error(src_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.col) + ": " + msg);
  }
  [[noreturn]] void fail(const std::string& msg) const { fail(here(), msg); }
  /// The location of the next token on this line.
  Loc at_token() {
    skip_ws();
    return here();
  }
  /// A short quote of the text at the cursor, for "found ..." messages.
  std::string found() const;

  // --- lexing
  bool eof() const { return p_ >= s_.size(); }
  void skip_ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\r')) ++p_;
  }
  bool at_eol() {
    skip_ws();
    return eof() || s_[p_] == '\n' || s_.substr(p_, 2) == "//";
  }
  char peek() {
    skip_ws();
    return eof() ? '\0' : s_[p_];
  }
  bool eat(char c) {
    if (peek() != c) return false;
    ++p_;
    return true;
  }
  void expect(char c, std::string_view context);
  void expect_eol();
  void skip_blank_lines();
  std::string_view word();  // [A-Za-z0-9_.]*, possibly empty
  std::string quoted();
  std::string name(char sigil);
  std::string ident(std::string_view what);  // bare identifier or quoted string
  int64_t integer(std::string_view what);

  // --- grammar
  void header(Graph& g);
  bool item();  // false at the closing '}'
  void declaration(Role role);
  void node_line();
  void type(Tensor& t);
  void dims(Tensor& t);
  void dense(Tensor& t);
  AttrValue attr_value();
  AttrValue number();
  TensorId tensor_ref(std::string n, Loc at, bool define);
  void build(Graph& g);

  std::string_view s_;
  std::string src_;
  size_t p_ = 0;
  size_t line_start_ = 0;
  int line_ = 1;
  Loc open_;

  std::vector<Slot> slots_;
  std::unordered_map<std::string, uint32_t> by_name_;
  std::vector<uint32_t> def_order_;
  std::vector<Node> nodes_;  // tensor ids are slot indices
  std::vector<TensorId> inputs_, outputs_;
};

std::string Parser::found() const {
  if (eof()) return "end of input";
  if (s_[p_] == '\n') return "end of line";
  size_t e = p_;
  while (e < s_.size() && e - p_ < 20 && s_[e] != '\n' && s_[e] != ' ') ++e;
  return "'" + std::string(s_.substr(p_, e - p_)) + "'";
}

void Parser::expect(char c, std::string_view context) {
  if (eat(c)) return;
  fail(std::string("expected '") + c + "' " + std::string(context) + ", found " + found());
}

void Parser::expect_eol() {
  if (!at_eol()) fail("unexpected " + found() + " at end of line");
}

void Parser::skip_blank_lines() {
  for (;;) {
    skip_ws();
    if (s_.substr(p_, 2) == "//")
      while (p_ < s_.size() && s_[p_] != '\n') ++p_;
    if (eof() || s_[p_] != '\n') return;
    ++p_;
    ++line_;
    line_start_ = p_;
  }
}

std::string_view Parser::word() {
  skip_ws();
  size_t b = p_;
  while (p_ < s_.size() && is_name_char(s_[p_])) ++p_;
  return s_.substr(b, p_ - b);
}

std::string Parser::quoted() {
  Loc open = at_token();
  if (peek() != '"') fail("expected a quoted string, found " + found());
  ++p_;
  std::string r;
  for (;;) {
    if (eof() || s_[p_] == '\n') fail(open, "unterminated string");
    char c = s_[p_++];
    if (c == '"') return r;
    if (c != '\\') {
      r += c;
      continue;
    }
    Loc esc = {line_, static_cast<int>(p_ - line_start_)};
    char e = p_ < s_.size() ? s_[p_++] : '\0';
    if (e == '"' || e == '\\') {
      r += e;
    } else if (e == 'n') {
      r += '\n';
    } else if (e == 't') {
      r += '\t';
    } else if (e == 'r') {
      r += '\r';
    } else if (e == 'x') {
      unsigned v = 0;
      auto res = std::from_chars(s_.data() + p_, s_.data() + std::min(p_ + 2, s_.size()), v, 16);
      if (res.ptr != s_.data() + p_ + 2) fail(esc, "bad escape: \\x needs two hex digits");
      p_ += 2;
      r += static_cast<char>(v);
    } else {
      fail(esc, "unknown escape in string");
    }
  }
}

std::string Parser::name(char sigil) {
  if (!eat(sigil))
    fail(std::string("expected a name starting with '") + sigil + "', found " + found());
  if (!eof() && s_[p_] == '"') return quoted();
  std::string_view w;
  size_t b = p_;
  while (p_ < s_.size() && is_name_char(s_[p_])) ++p_;
  w = s_.substr(b, p_ - b);
  if (w.empty()) fail(std::string("expected a name after '") + sigil + "', found " + found());
  return std::string(w);
}

std::string Parser::ident(std::string_view what) {
  if (peek() == '"') return quoted();
  Loc at = at_token();
  std::string_view w = word();
  if (w.empty() || !is_ident_start(w[0])) {
    p_ = line_start_ + static_cast<size_t>(at.col - 1);
    fail(at, "expected " + std::string(what) + ", found " + found());
  }
  return std::string(w);
}

int64_t Parser::integer(std::string_view what) {
  skip_ws();
  Loc at = at_token();
  size_t b = p_;
  if (p_ < s_.size() && s_[p_] == '-') ++p_;
  while (p_ < s_.size() && is_digit(s_[p_])) ++p_;
  int64_t v = 0;
  auto r = std::from_chars(s_.data() + b, s_.data() + p_, v);
  if (r.ec == std::errc::result_out_of_range) fail(at, "integer out of range");
  if (r.ec != std::errc() || r.ptr != s_.data() + p_) {
    p_ = b;
    fail(at, "expected " + std::string(what) + ", found " + found());
  }
  return v;
}

TensorId Parser::tensor_ref(std::string n, Loc at, bool define) {
  auto [it, fresh] = by_name_.try_emplace(std::move(n), static_cast<uint32_t>(slots_.size()));
  if (fresh) {
    slots_.emplace_back();
    slots_.back().t.name = it->first;
    slots_.back().first = at;
  }
  Slot& s = slots_[it->second];
  if (define) {
    if (s.defined)
      fail(at, "tensor '" + s.t.name + "' defined twice (first at " + std::to_string(s.def.line) +
                   ":" + std::to_string(s.def.col) + ")");
    s.defined = true;
    s.def = at;
    def_order_.push_back(it->second);
  }
  return TensorId(it->second);
}

void Parser::header(Graph& g) {
  skip_blank_lines();
  open_ = at_token();
  if (word() != "graph") {
    p_ = line_start_ + static_cast<size_t>(open_.col - 1);
    fail(open_, "expected 'graph', found " + found());
  }
  g.name = name('@');
  Loc at = at_token();
  if (word() != "opset") fail(at, "expected 'opset' after the graph name");
  g.opset = integer("an opset number");
  expect('{', "after the opset");
  expect_eol();
}

bool Parser::item() {
  skip_blank_lines();
  if (eof())
    fail("missing '}' closing the graph opened at " + std::to_string(open_.line) + ":" +
         std::to_string(open_.col));
  char c = peek();
  if (c == '}') {
    ++p_;
    expect_eol();
    return false;
  }
  if (c == '%' || c == '(' || c == '_') {
    node_line();
    return true;
  }
  Loc at = at_token();
  std::string_view w = word();
  if (w == "output") {
    skip_ws();
    Loc n = at_token();
    outputs_.push_back(tensor_ref(name('%'), n, false));
    expect_eol();
    return true;
  }
  if (w.empty()) fail(at, "expected a declaration, a node, 'output' or '}', found " + found());
  std::optional<Role> role = parse_role(w);
  if (!role)
    fail(at, "unknown role '" + std::string(w) +
                 "' (expected input, parameter, state, constant, activation or output)");
  declaration(*role);
  return true;
}

void Parser::declaration(Role role) {
  skip_ws();
  Loc at = at_token();
  TensorId id = tensor_ref(name('%'), at, true);
  Tensor& t = slots_[id.v].t;
  t.role = role;
  if (role == Role::input) inputs_.push_back(id);
  expect(':', "after the tensor name");
  Loc type_at = at_token();
  type(t);
  Loc kw = at_token();
  std::string_view w = word();
  if (w == "external") {
    t.external = quoted();
    kw = at_token();
    w = word();
  }
  if (!w.empty()) fail(kw, "unexpected '" + std::string(w) + "' in declaration");
  if (eat('=')) {
    kw = at_token();
    w = word();
    if (w == "elided") {
      t.data_elided = true;
    } else if (w == "dense") {
      dense(t);
    } else {
      fail(kw, "expected 'dense<\"...\">' or 'elided' after '='");
    }
    if (t.data && t.shape_known && !t.has_symbolic_dims()) {
      int64_t want = 0;
      try {
        want = t.bytes();
      } catch (const Error& e) {
        fail(type_at, e.what());
      }
      if (want != static_cast<int64_t>(t.data->size()))
        fail(kw, "data has " + std::to_string(t.data->size()) + " bytes but " +
                     std::string(dtype_name(t.dtype)) + shape_str(t.shape) + " needs " +
                     std::to_string(want));
    }
  }
  expect_eol();
}

void Parser::dense(Tensor& t) {
  expect('<', "after 'dense'");
  skip_ws();
  Loc open = at_token();
  expect('"', "to start hex data");
  size_t b = p_;
  while (p_ < s_.size() && s_[p_] != '"' && s_[p_] != '\n') ++p_;
  if (p_ >= s_.size() || s_[p_] != '"') fail(open, "unterminated string");
  std::string_view hex = s_.substr(b, p_ - b);
  auto bytes = std::make_shared<std::vector<uint8_t>>(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); ++i) {
    char c = hex[i];
    int v = hex_value(c);
    if (v < 0) {
      p_ = b + i;
      fail("bad hex digit '" + std::string(1, c) + "' in dense data");
    }
    if (i / 2 < bytes->size()) (*bytes)[i / 2] = static_cast<uint8_t>((*bytes)[i / 2] << 4 | v);
  }
  if (hex.size() % 2) fail("odd number of hex digits in dense data");
  ++p_;
  expect('>', "to close dense data");
  t.data = std::move(bytes);
}

void Parser::type(Tensor& t) {
  Loc at = at_token();
  std::string_view w = word();
  std::optional<DType> d = parse_dtype(w);
  if (!d) {
    if (w.empty()) fail(at, "expected a type, found " + found());
    fail(at, "unknown dtype '" + std::string(w) + "'");
  }
  t.dtype = *d;
  expect('[', "after the dtype");
  if (eat('?')) {
    expect(']', "after '?'");
    t.shape_known = false;
    if (peek() == '[') {
      ++p_;
      dims(t);
    }
    return;
  }
  t.shape_known = true;
  dims(t);
}

/// Dims after an opening '[' up to and including the ']'.
void Parser::dims(Tensor& t) {
  std::vector<std::string> sym;
  bool any_sym = false;
  if (eat(']')) return;
  do {
    char c = peek();
    if (c == '-' || is_digit(c)) {
      t.shape.push_back(integer("a dimension"));
      sym.emplace_back();
      continue;
    }
    sym.push_back(ident("a dimension"));
    any_sym = true;
    t.shape.push_back(eat('=') ? integer("a dimension value") : kUnboundSymbol);
  } while (eat(','));
  expect(']', "to close the shape");
  if (any_sym) t.sym = std::move(sym);
}

AttrValue Parser::number() {
  skip_ws();
  Loc at = at_token();
  size_t b = p_;
  if (p_ < s_.size() && s_[p_] == '-') ++p_;
  while (p_ < s_.size() && (is_name_char(s_[p_]) || ((s_[p_] == '+' || s_[p_] == '-') &&
                                                     (s_[p_ - 1] == 'e' || s_[p_ - 1] == 'E'))))
    ++p_;
  if (s_.substr(b, p_ - b) == "nan" && p_ < s_.size() && s_[p_] == '(') {
    while (p_ < s_.size() && s_[p_] != ')' && s_[p_] != '\n') ++p_;
    if (p_ < s_.size() && s_[p_] == ')') ++p_;
  }
  std::string_view tok = s_.substr(b, p_ - b);
  bool neg = !tok.empty() && tok[0] == '-';
  std::string_view body = tok.substr(neg ? 1 : 0);
  auto bad = [&](const std::string& why) {
    p_ = b;
    fail(at, why);
  };
  auto bad_value = [&] {
    p_ = b;
    fail(at, "expected an attribute value, found " + found());
  };
  if (body == "inf")
    return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  if (body == "nan") return std::bit_cast<double>(neg ? kQuietNaN | kSignBit : kQuietNaN);
  if (!neg && body.starts_with("nan(0x") && body.ends_with(")")) {
    uint64_t bits = 0;
    std::string_view hex = body.substr(6, body.size() - 7);
    auto r = std::from_chars(hex.data(), hex.data() + hex.size(), bits, 16);
    if (r.ec != std::errc() || r.ptr != hex.data() + hex.size() ||
        !std::isnan(std::bit_cast<double>(bits)))
      bad("bad NaN bit pattern '" + std::string(tok) + "'");
    return std::bit_cast<double>(bits);
  }
  if (body.empty() || !is_digit(body[0])) bad_value();
  const char* e = tok.data() + tok.size();
  if (tok.find_first_of(".eE") != std::string_view::npos) {
    double v = 0;
    auto r = std::from_chars(tok.data(), e, v);
    if (r.ec == std::errc::result_out_of_range)
      bad("float '" + std::string(tok) + "' out of range");
    if (r.ec != std::errc() || r.ptr != e) bad("bad number '" + std::string(tok) + "'");
    return v;
  }
  int64_t v = 0;
  auto r = std::from_chars(tok.data(), e, v);
  if (r.ec == std::errc::result_out_of_range)
    bad("integer '" + std::string(tok) + "' out of range");
  if (r.ec != std::errc() || r.ptr != e) bad("bad number '" + std::string(tok) + "'");
  return v;
}

AttrValue Parser::attr_value() {
  char c = peek();
  if (c == '"') return quoted();
  Loc at = at_token();
  if (is_ident_start(c)) {
    size_t b = p_;
    std::string_view w = word();
    if ((w == "ints" || w == "floats" || w == "strings") && s_.substr(p_, 2) == "[]") {
      p_ += 2;
      if (w == "ints") return std::vector<int64_t>{};
      if (w == "floats") return std::vector<double>{};
      return std::vector<std::string>{};
    }
    p_ = b;  // inf / nan, or an error reported by number()
    return number();
  }
  if (c != '[') return number();
  ++p_;
  if (peek() == ']') fail(at, "an empty list needs its kind: ints[], floats[] or strings[]");
  AttrValue first = peek() == '"' ? AttrValue(quoted()) : number();
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  const size_t kind = first.index();
  auto add = [&](AttrValue v, Loc where) {
    if (v.index() != kind)
      fail(where, "list mixes " +
                      std::string(kind == 0   ? "integers"
                                  : kind == 1 ? "floats"
                                              : "strings") +
                      " with other values");
    if (kind == 0) ints.push_back(std::get<int64_t>(v));
    if (kind == 1) floats.push_back(std::get<double>(v));
    if (kind == 2) strings.push_back(std::move(std::get<std::string>(v)));
  };
  add(std::move(first), at);
  while (eat(',')) {
    skip_ws();
    Loc where = at_token();
    add(peek() == '"' ? AttrValue(quoted()) : number(), where);
  }
  expect(']', "to close the list");
  if (kind == 0) return ints;
  if (kind == 1) return floats;
  return strings;
}

void Parser::node_line() {
  Node n;
  std::vector<Loc> out_at;
  if (eat('(')) {
    expect(')', "for a node without outputs");
  } else {
    do {
      skip_ws();
      Loc at = at_token();
      if (peek() == '_' && (p_ + 1 >= s_.size() || !is_name_char(s_[p_ + 1]))) {
        ++p_;
        n.outputs.emplace_back();
      } else {
        n.outputs.push_back(tensor_ref(name('%'), at, true));
      }
      out_at.push_back(at);
    } while (eat(','));
  }
  expect('=', "after the node outputs");
  n.op = ident("an op type");
  skip_ws();
  n.name = quoted();
  expect('(', "before the node inputs");
  if (!eat(')')) {
    do {
      skip_ws();
      Loc at = at_token();
      if (peek() == '_' && (p_ + 1 >= s_.size() || !is_name_char(s_[p_ + 1]))) {
        ++p_;
        n.inputs.emplace_back();
      } else {
        n.inputs.push_back(tensor_ref(name('%'), at, false));
      }
    } while (eat(','));
    expect(')', "after the node inputs");
  }
  if (eat('{') && !eat('}')) {
    do {
      skip_ws();
      Loc at = at_token();
      bool is_quoted = peek() == '"';
      std::string key = is_quoted ? quoted() : std::string(word());
      if (key.empty() && !is_quoted) fail(at, "expected an attribute name, found " + found());
      expect('=', "after the attribute name");
      AttrValue v = attr_value();
      if (!n.attrs.emplace(std::move(key), std::move(v)).second) fail(at, "attribute given twice");
    } while (eat(','));
    expect('}', "to close the attributes");
  }
  if (!n.outputs.empty()) {
    expect(':', "before the output types");
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (i) expect(',', "between output types");
      skip_ws();
      Loc at = at_token();
      if (!n.outputs[i].valid()) {
        if (!eat('_')) fail(at, "expected '_' as the type of omitted output #" + std::to_string(i));
        continue;
      }
      if (peek() == '_' && !is_name_char(p_ + 1 < s_.size() ? s_[p_ + 1] : ' '))
        fail(at, "output '" + slots_[n.outputs[i].v].t.name + "' needs a type, not '_'");
      Tensor& t = slots_[n.outputs[i].v].t;
      t.role = Role::activation;
      type(t);
    }
  }
  expect_eol();
  nodes_.push_back(std::move(n));
}

void Parser::build(Graph& g) {
  for (const Slot& s : slots_)
    if (!s.defined) fail(s.first, "undefined tensor '" + s.t.name + "'");
  std::vector<TensorId> ids(slots_.size());
  for (uint32_t i : def_order_) ids[i] = g.add_tensor(std::move(slots_[i].t));
  auto remap = [&](TensorId t) { return t.valid() ? ids[t.v] : t; };
  for (Node& n : nodes_) {
    for (TensorId& t : n.inputs) t = remap(t);
    for (TensorId& t : n.outputs) t = remap(t);
    g.add_node(std::move(n));
  }
  for (TensorId t : inputs_) g.inputs.push_back(remap(t));
  for (TensorId t : outputs_) g.outputs.push_back(remap(t));
}

Graph Parser::parse() {
  Graph g;
  header(g);
  while (item()) {
  }
  skip_blank_lines();
  if (!eof()) fail("unexpected " + found() + " after the end of the graph");
  build(g);
  try {
    verify(g, {.require_shapes = false});
  } catch (const Error& e) {
    throw Error(src_ + ": " + e.what());
  }
  return g;
}

}  // namespace

Graph parse_graph(std::string_view text, std::string_view source_name) {
  return Parser(text, source_name).parse();
}

}  // namespace memplan
