// Helpers shared by the CLI, bad-input and corpus tests: a RAII temp dir,
// run_cli captured into strings, file helpers and the corpus file list.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/cli.h"

namespace memplan::testing {

namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed with everything in
/// it when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string tag = info ? std::string(info->test_suite_name()) + "." + info->name() : "memplan";
    std::replace(tag.begin(), tag.end(), '/', '_');
    path_ = fs::temp_directory_path() /
            ("memplan-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  /// PATH/name as a string, for command lines.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

  /// Files in the directory whose name contains ".tmp" (left-overs of an
  /// interrupted atomic write).
  std::vector<std::string> stray_temp_files() const {
    std::vector<std::string> r;
    for (const auto& e : fs::recursive_directory_iterator(path_))
      if (e.path().filename().string().find(".tmp") != std::string::npos)
        r.push_back(e.path().string());
    return r;
  }

 private:
  fs::path path_;
};

struct CliRun {
  int rc = -1;
  std::string out, err;
};

/// run_cli in-process; an exception escaping run_cli fails the test.
inline CliRun run(const std::vector<std::string>& args) {
  CliRun r;
  std::ostringstream out, err;
  try {
    r.rc = run_cli(args, out, err);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "exception escaped run_cli: " << e.what();
  } catch (...) {
    ADD_FAILURE() << "non-standard exception escaped run_cli";
  }
  r.out = out.str();
  r.err = err.str();
  return r;
}

inline std::string join_args(const std::vector<std::string>& args) {
  std::string s = "memplan";
  for (const auto& a : args) s += " " + a;
  return s;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string source_path(const std::string& rel) {
  return std::string(MEMPLAN_SOURCE_DIR) + "/" + rel;
}
inline std::string tiny_cnn() { return source_path("test/models/samples/tiny_cnn.onnx"); }
inline std::string tiny_transformer() {
  return source_path("test/models/samples/tiny_transformer.onnx");
}

/// One real model of the corpus and the dims that bind it.
struct CorpusModel {
  std::string opset;  // "opset14", "opset17", "opset18plus"
  std::string name;   // "resnet18"
  std::string path;   // absolute
};

/// For gtest's parameter printing: "opset17/resnet18".
inline void PrintTo(const CorpusModel& m, std::ostream* os) { *os << m.opset << "/" << m.name; }

/// Every .onnx under test/models/opset14, opset17 and opset18plus, sorted.
inline std::vector<CorpusModel> corpus_models() {
  std::vector<CorpusModel> r;
  for (const char* dir : {"opset14", "opset17", "opset18plus"}) {
    fs::path d = fs::path(MEMPLAN_SOURCE_DIR) / "test" / "models" / dir;
    if (!fs::is_directory(d)) continue;
    for (const auto& e : fs::directory_iterator(d))
      if (e.path().extension() == ".onnx")
        r.push_back({dir, e.path().stem().string(), e.path().string()});
  }
  std::sort(r.begin(), r.end(), [](const CorpusModel& a, const CorpusModel& b) {
    return a.opset != b.opset ? a.opset < b.opset : a.name < b.name;
  });
  return r;
}

}  // namespace memplan::testing
