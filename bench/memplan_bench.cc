// Planner benchmark: compiles every corpus model at its realistic binding,
// (1) in inference mode with each offset method: nodes, tensors, LB, arena,
// arena/LB, compile time; (2) as a training step: peak by role, arena/LB,
// compile time. Writes Markdown tables.
//
//   build/bench/memplan_bench [--out docs/benchmarks.md] [--models DIR] [--repeat N]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
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

double ratio(int64_t a, int64_t b) { return static_cast<double>(a) / static_cast<double>(b); }

/// Compiles `repeat` times; returns the last result and the median time in ms.
std::pair<CompileResult, double> timed_compile(const std::string& path, const CompileOptions& o,
                                               int repeat) {
  std::vector<double> ms;
  CompileResult r;
  for (int k = 0; k < repeat; ++k) {
    auto t0 = std::chrono::steady_clock::now();
    r = compile_model(path, o);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  if (!verify_plan(r.plan).ok()) throw std::runtime_error("plan failed verification");
  return {std::move(r), ms[ms.size() / 2]};
}

/// Runs `row` for every corpus model present, appending its Markdown row (or
/// a "failed" row) to `table`. Returns the number of failures.
int for_each_model(const std::string& dir, std::string& table,
                   const std::function<std::string(const std::string& opset, const Model& m,
                                                   const std::string& path,
                                                   const std::string& binding)>& row) {
  int failures = 0;
  for (const char* opset : {"opset14", "opset17"})
    for (const Model& m : kModels) {
      std::string path = dir + "/" + opset + "/" + m.file;
      if (!std::filesystem::exists(path)) continue;
      std::string binding;
      for (const auto& [k, v] : m.dims) binding += (binding.empty() ? "" : " ") + k + "=" + std::to_string(v);
      try {
        table += row(opset, m, path, binding);
        std::cerr << opset << " " << m.file << " ok\n";
      } catch (const std::exception& e) {
        ++failures;
        table += fmt::format("| {} | {} | {} | failed: {} |\n", opset, m.file, binding, e.what());
        std::cerr << opset << " " << m.file << " FAILED: " << e.what() << "\n";
      }
    }
  return failures;
}

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

  std::string forward =
      "| opset | model | binding | nodes | tensors | LB (MiB) | arena greedy-size (MiB) | "
      "ratio | arena best-of (MiB) | ratio | resident (MiB) | peak (MiB) | compile ms |\n"
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  int failures = for_each_model(models_dir, forward, [&](const std::string& opset, const Model& m,
                                                        const std::string& path,
                                                        const std::string& binding) {
    CompileOptions o;
    o.mode = "inference";
    o.dims = m.dims;
    o.plan.offsets = OffsetMethod::greedy_size;
    auto [greedy, unused_ms] = timed_compile(path, o, 1);
    o.plan.offsets = OffsetMethod::best_of;
    auto [best, ms] = timed_compile(path, o, repeat);
    const PlanSummary& g = greedy.plan.summary;
    const PlanSummary& b = best.plan.summary;
    return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {:.4f} | {} | {:.4f} | {} | {} | {:.0f} |\n",
                       opset, m.file, binding, best.plan.ops.size(), best.plan.tensors.size(),
                       mib(b.lower_bound_bytes), mib(g.arena_bytes),
                       ratio(g.arena_bytes, g.lower_bound_bytes), mib(b.arena_bytes),
                       ratio(b.arena_bytes, b.lower_bound_bytes), mib(b.resident_bytes),
                       mib(b.peak_bytes), ms);
  });

  std::string train =
      "| opset | model | binding | ops | peak (MiB) | parameter | optimizer_state | state | "
      "constant | activation@peak | gradient@peak | input@peak | workspace@peak | arena/LB | "
      "compile ms |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  failures += for_each_model(models_dir, train, [&](const std::string& opset, const Model& m,
                                                   const std::string& path,
                                                   const std::string& binding) {
    CompileOptions o;  // training mode, the model's own loss, AdamW
    o.dims = m.dims;
    auto [r, ms] = timed_compile(path, o, repeat);
    const PlanSummary& b = r.plan.summary;
    auto role = [&](const char* k) {
      auto it = b.bytes_by_role.find(k);
      return mib(it == b.bytes_by_role.end() ? 0 : it->second);
    };
    return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.4f} | {:.0f} |\n",
                       opset, m.file, binding, r.plan.ops.size(), mib(b.peak_bytes), role("parameter"),
                       role("optimizer_state"), role("state"), role("constant"), role("activation"),
                       role("gradient"), role("input"), role("workspace"),
                       ratio(b.arena_bytes, b.lower_bound_bytes), ms);
  });

  std::cout << forward << "\n" << train;
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
        forward +
        "\n## Training-step memory plans\n\n"
        "The same models compiled as a full training step (`memplan compile` defaults: the model's\n"
        "own loss, backward pass, AdamW on every parameter), no budget. Columns in MiB: resident\n"
        "roles in total; arena roles (activation, gradient, input, workspace) live at the peak step;\n"
        "peak = arena + resident. arena/LB with the default offset method.\n\n" +
        train +
        "\nCPU step time and memory against PyTorch: docs/benchmarks-cpu.md (`make bench-cpu`).\n";
    write_file_atomic(out_path, doc);
  }
  return failures ? 1 : 0;
}
