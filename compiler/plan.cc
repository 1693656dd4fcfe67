#include "compiler/plan.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace memplan {

using ojson = nlohmann::ordered_json;

std::string_view placement_name(Placement p) {
  switch (p) {
    case Placement::arena: return "arena";
    case Placement::resident: return "resident";
    case Placement::alias: return "alias";
  }
  return "?";
}

// ---------------------------------------------------------------- writing

namespace {

ojson decisions_json(const PlanDecisions& d) {
  ojson j;
  j["device"] = d.device;
  j["budget_source"] = d.budget_source;
  j["reserve_bytes"] = d.reserve_bytes;
  j["precision"] = d.precision;
  j["ops_low_precision"] = d.ops_low_precision;
  j["casts"] = d.casts;
  j["micro_batches"] = d.micro_batches;
  j["loss_scaling"] = d.loss_scaling;
  j["early_updates"] = d.early_updates;
  j["step_seconds"] = d.step_seconds;
  j["unconstrained_step_seconds"] = d.unconstrained_step_seconds;
  j["unconstrained_peak_bytes"] = d.unconstrained_peak_bytes;
  ojson rc = ojson::array();
  for (const RecomputeDecision& r : d.recomputed)
    rc.push_back({{"node", r.node}, {"before", r.before}, {"bytes", r.bytes}, {"seconds", r.seconds}});
  j["recomputed"] = std::move(rc);
  ojson cs = ojson::array();
  for (const CandidateRecord& c : d.candidates)
    cs.push_back({{"micro_batches", c.micro_batches}, {"precision", c.precision}, {"fits", c.fits},
                  {"peak_bytes", c.peak_bytes}, {"step_seconds", c.step_seconds},
                  {"recomputed", c.recomputed}, {"note", c.note}, {"planned", c.planned}});
  j["candidates"] = std::move(cs);
  j["notes"] = d.notes;
  return j;
}

}  // namespace

std::string plan_to_json(const Plan& p) {
  ojson j;
  j["format"] = "memplan-plan";
  j["version"] = p.version;
  j["model"] = p.model;
  j["mode"] = p.mode;
  j["dims"] = ojson::object();
  for (const auto& [k, v] : p.dims) j["dims"][k] = v;
  j["alignment"] = p.alignment;
  j["schedule_method"] = p.schedule_method;
  j["offset_method"] = p.offset_method;
  j["budget_bytes"] = p.budget_bytes ? ojson(*p.budget_bytes) : ojson(nullptr);
  ojson s;
  s["arena_bytes"] = p.summary.arena_bytes;
  s["lower_bound_bytes"] = p.summary.lower_bound_bytes;
  s["resident_bytes"] = p.summary.resident_bytes;
  s["peak_bytes"] = p.summary.peak_bytes;
  s["peak_step"] = p.summary.peak_step;
  s["bytes_by_role"] = ojson::object();
  for (const auto& [k, v] : p.summary.bytes_by_role) s["bytes_by_role"][k] = v;
  s["num_ops"] = p.ops.size();
  s["num_tensors"] = p.tensors.size();
  j["summary"] = s;
  if (p.decisions) j["decisions"] = decisions_json(*p.decisions);
  j["inputs"] = p.inputs;
  j["outputs"] = p.outputs;
  j["loss"] = p.loss;
  ojson ops = ojson::array();
  for (const PlanOp& o : p.ops) {
    ojson x = {{"name", o.name}, {"op", o.op}, {"inputs", o.inputs}, {"outputs", o.outputs},
               {"dtype", dtype_name(o.dtype)}, {"est_seconds", o.est_seconds}};
    if (o.workspace_bytes > 0) {
      x["workspace_bytes"] = o.workspace_bytes;
      x["workspace_offset"] = o.workspace_offset;
    }
    ops.push_back(std::move(x));
  }
  j["ops"] = std::move(ops);
  ojson ts = ojson::array();
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const PlanTensor& t = p.tensors[i];
    ojson x;
    x["id"] = i;
    x["name"] = t.name;
    x["role"] = role_name(t.role);
    x["dtype"] = dtype_name(t.dtype);
    x["shape"] = t.shape;
    x["bytes"] = t.bytes;
    x["placement"] = placement_name(t.placement);
    if (t.placement == Placement::alias) {
      x["alias_of"] = t.alias_of;
      x["alias_kind"] = t.alias_kind == AliasKind::inplace ? "inplace" : "view";
    } else
      x["offset"] = t.offset;
    ts.push_back(std::move(x));
  }
  j["tensors"] = std::move(ts);
  j["program"] = p.program;
  // Names come from the model; ONNX does not enforce UTF-8, so invalid bytes
  // become U+FFFD here instead of making the writer throw.
  return j.dump(1, ' ', false, ojson::error_handler_t::replace) + "\n";
}

// ---------------------------------------------------------------- reading

namespace {

/// Type-checked access to a JSON document, naming the key path in errors.
struct Reader {
  std::string source;
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw Error(source + ": plan key '" + path + "' " + what +
                "; the file is not a valid memplan plan (recompile it with `memplan compile`)");
  }
  const ojson& get(const ojson& obj, const std::string& path, const char* key) const {
    if (!obj.is_object()) fail(path, "is not an object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(path.empty() ? key : path + "." + key, "is missing");
    return *it;
  }
  int64_t i64(const ojson& v, const std::string& path) const {
    if (!v.is_number_integer()) fail(path, "must be an integer");
    return v.get<int64_t>();
  }
  int32_t i32(const ojson& v, const std::string& path) const {
    int64_t x = i64(v, path);
    if (x < INT32_MIN || x > INT32_MAX) fail(path, "is out of range");
    return static_cast<int32_t>(x);
  }
  std::string str(const ojson& v, const std::string& path) const {
    if (!v.is_string()) fail(path, "must be a string");
    return v.get<std::string>();
  }
  double num(const ojson& v, const std::string& path) const {
    if (!v.is_number()) fail(path, "must be a number");
    return v.get<double>();
  }
  bool boolean(const ojson& v, const std::string& path) const {
    if (!v.is_boolean()) fail(path, "must be true or false");
    return v.get<bool>();
  }
  const ojson& arr(const ojson& v, const std::string& path) const {
    if (!v.is_array()) fail(path, "must be an array");
    return v;
  }
  std::vector<int32_t> ids(const ojson& v, const std::string& path) const {
    std::vector<int32_t> r;
    for (size_t i = 0; i < arr(v, path).size(); ++i)
      r.push_back(i32(v[i], path + "[" + std::to_string(i) + "]"));
    return r;
  }
};

PlanDecisions read_decisions(const Reader& rd, const ojson& j) {
  const std::string P = "decisions";
  auto key = [&](const char* k) -> const ojson& { return rd.get(j, P, k); };
  auto path = [&](const char* k) { return P + "." + k; };
  PlanDecisions d;
  d.device = rd.str(key("device"), path("device"));
  d.budget_source = rd.str(key("budget_source"), path("budget_source"));
  d.reserve_bytes = rd.i64(key("reserve_bytes"), path("reserve_bytes"));
  d.precision = rd.str(key("precision"), path("precision"));
  d.ops_low_precision = rd.i64(key("ops_low_precision"), path("ops_low_precision"));
  d.casts = rd.i64(key("casts"), path("casts"));
  d.micro_batches = rd.i64(key("micro_batches"), path("micro_batches"));
  d.loss_scaling = rd.boolean(key("loss_scaling"), path("loss_scaling"));
  d.early_updates = rd.boolean(key("early_updates"), path("early_updates"));
  d.step_seconds = rd.num(key("step_seconds"), path("step_seconds"));
  d.unconstrained_step_seconds =
      rd.num(key("unconstrained_step_seconds"), path("unconstrained_step_seconds"));
  d.unconstrained_peak_bytes =
      rd.i64(key("unconstrained_peak_bytes"), path("unconstrained_peak_bytes"));
  const ojson& rc = rd.arr(key("recomputed"), path("recomputed"));
  for (size_t i = 0; i < rc.size(); ++i) {
    const std::string q = path("recomputed") + "[" + std::to_string(i) + "]";
    d.recomputed.push_back({rd.str(rd.get(rc[i], q, "node"), q + ".node"),
                            rd.str(rd.get(rc[i], q, "before"), q + ".before"),
                            rd.i64(rd.get(rc[i], q, "bytes"), q + ".bytes"),
                            rd.num(rd.get(rc[i], q, "seconds"), q + ".seconds")});
  }
  const ojson& cs = rd.arr(key("candidates"), path("candidates"));
  for (size_t i = 0; i < cs.size(); ++i) {
    const std::string q = path("candidates") + "[" + std::to_string(i) + "]";
    CandidateRecord c;
    c.micro_batches = rd.i64(rd.get(cs[i], q, "micro_batches"), q + ".micro_batches");
    c.precision = rd.str(rd.get(cs[i], q, "precision"), q + ".precision");
    c.fits = rd.boolean(rd.get(cs[i], q, "fits"), q + ".fits");
    c.peak_bytes = rd.i64(rd.get(cs[i], q, "peak_bytes"), q + ".peak_bytes");
    c.step_seconds = rd.num(rd.get(cs[i], q, "step_seconds"), q + ".step_seconds");
    c.recomputed = rd.i64(rd.get(cs[i], q, "recomputed"), q + ".recomputed");
    c.note = rd.str(rd.get(cs[i], q, "note"), q + ".note");
    if (cs[i].contains("planned")) c.planned = rd.boolean(cs[i]["planned"], q + ".planned");
    d.candidates.push_back(std::move(c));
  }
  const ojson& notes = rd.arr(key("notes"), path("notes"));
  for (size_t i = 0; i < notes.size(); ++i)
    d.notes.push_back(rd.str(notes[i], path("notes") + "[" + std::to_string(i) + "]"));
  return d;
}

}  // namespace

Plan plan_from_json(std::string_view text, std::string_view source) {
  Reader rd{std::string(source)};
  ojson j;
  try {
    j = ojson::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(std::string(source) + ": not valid JSON (byte " + std::to_string(e.byte) +
                "): the plan file is truncated or corrupted; recompile it with `memplan compile`");
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != "memplan-plan")
    throw Error(std::string(source) + ": not a memplan plan (no \"format\": \"memplan-plan\")");
  Plan p;
  p.version = rd.i32(rd.get(j, "", "version"), "version");
  if (p.version != kPlanFormatVersion)
    throw Error(std::string(source) + ": plan format version " + std::to_string(p.version) +
                " is not supported (this memplan reads version " +
                std::to_string(kPlanFormatVersion) + "); recompile the model");
  p.model = rd.str(rd.get(j, "", "model"), "model");
  p.mode = rd.str(rd.get(j, "", "mode"), "mode");
  const ojson& dims = rd.get(j, "", "dims");
  if (!dims.is_object()) rd.fail("dims", "must be an object");
  for (auto it = dims.begin(); it != dims.end(); ++it)
    p.dims[it.key()] = rd.i64(it.value(), "dims." + it.key());
  p.alignment = rd.i64(rd.get(j, "", "alignment"), "alignment");
  p.schedule_method = rd.str(rd.get(j, "", "schedule_method"), "schedule_method");
  p.offset_method = rd.str(rd.get(j, "", "offset_method"), "offset_method");
  const ojson& budget = rd.get(j, "", "budget_bytes");
  if (!budget.is_null()) p.budget_bytes = rd.i64(budget, "budget_bytes");

  const ojson& s = rd.get(j, "", "summary");
  p.summary.arena_bytes = rd.i64(rd.get(s, "summary", "arena_bytes"), "summary.arena_bytes");
  p.summary.lower_bound_bytes =
      rd.i64(rd.get(s, "summary", "lower_bound_bytes"), "summary.lower_bound_bytes");
  p.summary.resident_bytes = rd.i64(rd.get(s, "summary", "resident_bytes"), "summary.resident_bytes");
  p.summary.peak_bytes = rd.i64(rd.get(s, "summary", "peak_bytes"), "summary.peak_bytes");
  p.summary.peak_step = rd.i32(rd.get(s, "summary", "peak_step"), "summary.peak_step");
  const ojson& byrole = rd.get(s, "summary", "bytes_by_role");
  if (!byrole.is_object()) rd.fail("summary.bytes_by_role", "must be an object");
  for (auto it = byrole.begin(); it != byrole.end(); ++it)
    p.summary.bytes_by_role[it.key()] = rd.i64(it.value(), "summary.bytes_by_role." + it.key());

  if (j.contains("decisions")) p.decisions = read_decisions(rd, j["decisions"]);
  p.inputs = rd.ids(rd.get(j, "", "inputs"), "inputs");
  p.outputs = rd.ids(rd.get(j, "", "outputs"), "outputs");
  p.loss = rd.i32(rd.get(j, "", "loss"), "loss");
  const ojson& ops = rd.arr(rd.get(j, "", "ops"), "ops");
  for (size_t i = 0; i < ops.size(); ++i) {
    std::string path = "ops[" + std::to_string(i) + "]";
    PlanOp o;
    o.name = rd.str(rd.get(ops[i], path, "name"), path + ".name");
    o.op = rd.str(rd.get(ops[i], path, "op"), path + ".op");
    o.inputs = rd.ids(rd.get(ops[i], path, "inputs"), path + ".inputs");
    o.outputs = rd.ids(rd.get(ops[i], path, "outputs"), path + ".outputs");
    if (ops[i].contains("dtype")) {
      const std::string dt = rd.str(ops[i]["dtype"], path + ".dtype");
      auto d = parse_dtype(dt);
      if (!d) rd.fail(path + ".dtype", "has unknown dtype '" + dt + "'");
      o.dtype = *d;
    }
    if (ops[i].contains("est_seconds")) o.est_seconds = rd.num(ops[i]["est_seconds"], path + ".est_seconds");
    if (ops[i].contains("workspace_bytes")) {
      o.workspace_bytes = rd.i64(ops[i]["workspace_bytes"], path + ".workspace_bytes");
      o.workspace_offset =
          rd.i64(rd.get(ops[i], path, "workspace_offset"), path + ".workspace_offset");
    }
    p.ops.push_back(std::move(o));
  }
  const ojson& ts = rd.arr(rd.get(j, "", "tensors"), "tensors");
  for (size_t i = 0; i < ts.size(); ++i) {
    std::string path = "tensors[" + std::to_string(i) + "]";
    const ojson& x = ts[i];
    PlanTensor t;
    if (rd.i64(rd.get(x, path, "id"), path + ".id") != static_cast<int64_t>(i))
      rd.fail(path + ".id", "must equal the tensor's position " + std::to_string(i));
    t.name = rd.str(rd.get(x, path, "name"), path + ".name");
    std::string role = rd.str(rd.get(x, path, "role"), path + ".role");
    auto r = parse_role(role);
    if (!r) rd.fail(path + ".role", "has unknown role '" + role + "'");
    t.role = *r;
    std::string dt = rd.str(rd.get(x, path, "dtype"), path + ".dtype");
    auto d = parse_dtype(dt);
    if (!d) rd.fail(path + ".dtype", "has unknown dtype '" + dt + "'");
    t.dtype = *d;
    const ojson& shape = rd.arr(rd.get(x, path, "shape"), path + ".shape");
    for (size_t k = 0; k < shape.size(); ++k)
      t.shape.push_back(rd.i64(shape[k], path + ".shape[" + std::to_string(k) + "]"));
    t.bytes = rd.i64(rd.get(x, path, "bytes"), path + ".bytes");
    std::string pl = rd.str(rd.get(x, path, "placement"), path + ".placement");
    if (pl == "arena")
      t.placement = Placement::arena;
    else if (pl == "resident")
      t.placement = Placement::resident;
    else if (pl == "alias")
      t.placement = Placement::alias;
    else
      rd.fail(path + ".placement", "has unknown placement '" + pl + "'");
    if (t.placement == Placement::alias) {
      t.alias_of = rd.i32(rd.get(x, path, "alias_of"), path + ".alias_of");
      std::string kind = rd.str(rd.get(x, path, "alias_kind"), path + ".alias_kind");
      if (kind == "view")
        t.alias_kind = AliasKind::view;
      else if (kind == "inplace")
        t.alias_kind = AliasKind::inplace;
      else
        rd.fail(path + ".alias_kind", "must be \"view\" or \"inplace\"");
    } else
      t.offset = rd.i64(rd.get(x, path, "offset"), path + ".offset");
    p.tensors.push_back(std::move(t));
  }
  p.program = rd.str(rd.get(j, "", "program"), "program");
  return p;
}

// ---------------------------------------------------------------- files

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open file (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(path + ": read error");
  return ss.str();
}

Plan read_plan_file(const std::string& path) { return plan_from_json(read_file(path), path); }

void write_file_atomic(const std::string& path, std::string_view contents) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(path + ": cannot write output (" + std::strerror(errno) +
                "); does the directory exist and is it writable?");
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t w = ::write(fd, contents.data() + done, contents.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(path + ": write failed (" + std::strerror(e) + ")");
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": write failed (" + std::strerror(e) + ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot rename temp file into place (" + std::strerror(e) + ")");
  }
}

}  // namespace memplan
