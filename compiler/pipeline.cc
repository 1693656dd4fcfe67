#include "compiler/pipeline.h"

#include <cstdint>

#include "compiler/ir_text.h"
#include "passes/bind_dims.h"
#include "passes/infer_shapes.h"
#include "python-free-frontends/onnx_importer.h"

namespace memplan {

const std::vector<std::string>& pipeline_pass_names() {
  static const std::vector<std::string> names = {"import", "bind-dims", "infer-shapes",
                                                 "plan-memory"};
  return names;
}

CompileResult compile_model(const std::string& onnx_path, const CompileOptions& opts) {
  if (opts.mode != "inference")
    throw Error("--mode " + opts.mode + " is not available yet: this memplan plans forward "
                "graphs only; use --mode inference (training mode comes with autodiff)");
  for (const std::string& d : opts.dump_after) {
    const auto& names = pipeline_pass_names();
    if (std::find(names.begin(), names.end(), d) == names.end())
      throw Error("--dump-after " + d + ": no such pass (passes: import, bind-dims, "
                  "infer-shapes, plan-memory)");
  }
  CompileResult r;
  auto after = [&](const std::string& pass, const VerifyOptions& vo) {
    verify(r.graph, vo);
    if (opts.dump_after.count(pass) && opts.dump) opts.dump(pass, print_graph(r.graph));
  };

  ImportResult imp = import_onnx_file(onnx_path);
  r.graph = std::move(imp.graph);
  r.notes = std::move(imp.notes);
  r.nodes_imported = static_cast<int64_t>(r.graph.num_nodes());
  after("import", {.require_shapes = false});

  bind_dims(r.graph, {.dims = opts.dims, .input_shapes = opts.input_shapes});
  after("bind-dims", {.require_shapes = false});

  InferShapesStats st = infer_shapes(r.graph, {.fold_constants = !opts.disabled.count("fold")});
  r.nodes_folded = st.nodes_folded;
  after("infer-shapes", {.require_shapes = true});

  r.plan = plan_memory(r.graph, opts.plan);
  r.plan.model = onnx_path;
  r.plan.mode = opts.mode;
  r.plan.dims = opts.dims;
  r.plan.program = print_graph(r.graph, {.max_inline_bytes = INT64_MAX, .max_inline_weight_bytes = 0});
  if (opts.dump_after.count("plan-memory") && opts.dump)
    opts.dump("plan-memory", plan_to_json(r.plan));
  return r;
}

}  // namespace memplan
