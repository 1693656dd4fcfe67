// Planner benchmark: compiles every corpus model at its realistic binding
// with each offset method and reports nodes, tensors, LB, arena, arena/LB and
// compile time as a Markdown table.
//
//   build/bench/memplan_bench [--out docs/benchmarks.md] [--models DIR] [--repeat N]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "compiler/pipeline.h"
#include "compiler/plan.h"
#include "compiler/plan_verify.h"

namespace {

using namespace memplan;

struct Model {
  const char* file;
  std::map<std::string, int64_t> dims;
};

// Realistic bindings (test/models/README.md).
const Model kModels[] = {
    {"resnet18.onnx", {{"batch", 32}}},     {"resnet50.onnx", {{"batch", 32}}},
    {"mobilenet_v2.onnx", {{"batch", 32}}}, {"vgg16.onnx", {{"batch", 32}}},
    {"unet.onnx", {{"batch", 32}}},         {"vit_b_16.onnx", {{"batch", 32}}},
    {"gpt2.onnx", {{"batch", 8}, {"seq", 1024}}}, {"bert.onnx", {{"batch", 8}, {"seq", 512}}},
    {"t5.onnx", {{"batch", 8}, {"seq", 512}}},
};

std::string mib(int64_t b) { return fmt::format("{:.1f}", static_cast<double>(b) / (1 << 20)); }

}  // namespace

int main(int argc, char** argv) {
  std::string out_path, models_dir = "test/models";
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
    else if (!std::strcmp(argv[i], "--models") && i + 1 < argc) models_dir = argv[++i];
    else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else {
      std::cerr << "usage: memplan_bench [--out FILE.md] [--models DIR] [--repeat N]\n";
      return 1;
    }
  }
  std::string table =
      "| opset | model | binding | nodes | tensors | LB (MiB) | arena greedy-size (MiB) | "
      "ratio | arena best-of (MiB) | ratio | resident (MiB) | peak (MiB) | compile ms |\n"
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  int failures = 0;
  for (const char* opset : {"opset14", "opset17"}) {
    for (const Model& m : kModels) {
      std::string path = models_dir + "/" + opset + "/" + m.file;
      if (!std::filesystem::exists(path)) continue;
      std::string binding;
      for (const auto& [k, v] : m.dims) binding += (binding.empty() ? "" : " ") + k + "=" + std::to_string(v);
      try {
        CompileOptions o;
        o.mode = "inference";
        o.dims = m.dims;
        o.plan.offsets = OffsetMethod::greedy_size;
        CompileResult greedy = compile_model(path, o);
        o.plan.offsets = OffsetMethod::best_of;
        std::vector<double> ms;
        CompileResult best;
        for (int r = 0; r < repeat; ++r) {
          auto t0 = std::chrono::steady_clock::now();
          best = compile_model(path, o);
          ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(ms.begin(), ms.end());
        for (const Plan* p : {&greedy.plan, &best.plan})
          if (!verify_plan(*p).ok()) throw std::runtime_error("plan failed verification");
        const PlanSummary& g = greedy.plan.summary;
        const PlanSummary& b = best.plan.summary;
        table += fmt::format(
            "| {} | {} | {} | {} | {} | {} | {} | {:.4f} | {} | {:.4f} | {} | {} | {:.0f} |\n", opset,
            m.file, binding, best.plan.ops.size(), best.plan.tensors.size(), mib(b.lower_bound_bytes),
            mib(g.arena_bytes), static_cast<double>(g.arena_bytes) / static_cast<double>(g.lower_bound_bytes),
            mib(b.arena_bytes), static_cast<double>(b.arena_bytes) / static_cast<double>(b.lower_bound_bytes),
            mib(b.resident_bytes), mib(b.peak_bytes), ms[ms.size() / 2]);
        std::cerr << opset << " " << m.file << " ok\n";
      } catch (const std::exception& e) {
        ++failures;
        table += fmt::format("| {} | {} | {} | failed: {} |\n", opset, m.file, binding, e.what());
        std::cerr << opset << " " << m.file << " FAILED: " << e.what() << "\n";
      }
    }
  }
  // Training step (default: the model's loss, AdamW) at the realistic binding.
  std::string train =
      "| opset | model | binding | ops | peak (MiB) | parameter | optimizer_state | state | "
      "constant | activation@peak | gradient@peak | input@peak | workspace@peak | arena/LB | "
      "compile ms |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const char* opset : {"opset14", "opset17"}) {
    for (const Model& m : kModels) {
      std::string path = models_dir + "/" + opset + "/" + m.file;
      if (!std::filesystem::exists(path)) continue;
      std::string binding;
      for (const auto& [k, v] : m.dims) binding += (binding.empty() ? "" : " ") + k + "=" + std::to_string(v);
      try {
        CompileOptions o;
        o.mode = "training";
        o.dims = m.dims;
        std::vector<double> ms;
        CompileResult r;
        for (int k = 0; k < repeat; ++k) {
          auto t0 = std::chrono::steady_clock::now();
          r = compile_model(path, o);
          ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(ms.begin(), ms.end());
        if (!verify_plan(r.plan).ok()) throw std::runtime_error("plan failed verification");
        const PlanSummary& b = r.plan.summary;
        auto role = [&](const char* k) {
          auto it = b.bytes_by_role.find(k);
          return mib(it == b.bytes_by_role.end() ? 0 : it->second);
        };
        train += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.4f} | {:.0f} |\n",
                             opset, m.file, binding, r.plan.ops.size(), mib(b.peak_bytes),
                             role("parameter"), role("optimizer_state"), role("state"), role("constant"),
                             role("activation"), role("gradient"), role("input"), role("workspace"),
                             static_cast<double>(b.arena_bytes) / static_cast<double>(b.lower_bound_bytes),
                             ms[ms.size() / 2]);
        std::cerr << opset << " " << m.file << " training ok\n";
      } catch (const std::exception& e) {
        ++failures;
        train += fmt::format("| {} | {} | {} | failed: {} |\n", opset, m.file, binding, e.what());
      }
    }
  }
  std::cout << table << "\n" << train;
  if (!out_path.empty()) {
    std::string doc =
        "# Benchmarks\n\n"
        "## Forward-graph memory plans (foundation)\n\n"
        "Every corpus model (`test/models/`) at its realistic binding, planned in inference mode.\n"
        "LB is the lower bound for the chosen schedule (the most bytes live at one step, sizes\n"
        "rounded to the 256-byte alignment); arena/LB = 1 means no fragmentation. Compile time is\n"
        "the median of the runs of the whole pipeline (import, bind, shape inference and folding,\n"
        "scheduling, offsets) with the default method, on one core of the 2-core development machine.\n\n"
        "Produced by `make bench` (that is, `build/bench/memplan_bench --out docs/benchmarks.md`).\n\n" +
        table +
        "\n## Training-step memory plans\n\n"
        "The same models compiled as a full training step (`memplan compile` defaults: the model's\n"
        "own loss, backward pass, AdamW on every parameter), no budget. Columns in MiB: resident\n"
        "roles in total; arena roles (activation, gradient, input, workspace) live at the peak step;\n"
        "peak = arena + resident. arena/LB with the default offset method.\n\n" +
        train;
    write_file_atomic(out_path, doc);
  }
  return failures ? 1 : 0;
}
