// Shape inference checked against ONNX's own node tests (Debian's
// libonnx-testdata, ONNX_TESTDATA_DIR/test_*/).
//
// For every node test case whose ops memplan supports (selection, opset
// rewriting and input binding as in onnx_testdata_util.h):
//  1. import model.onnx with memplan's importer (cases whose op changed since
//     the model's older opset are excluded: "op changed");
//  2. bind every graph input to test_data_set_0/input_N.pb (bind_inputs);
//  3. run infer_shapes (folding on) and compare every graph output's dtype
//     and shape with test_data_set_0/output_N.pb.
// Expected: zero mismatches. Cases memplan cannot express are listed in
// import_exclusions() (onnx_testdata_util.h) with the reason and the error
// they fail with; a listed case that passes (or fails differently) fails the
// test, so the list cannot go stale.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "onnx_testdata_util.h"
#include "passes/infer_shapes.h"

namespace memplan {
namespace {

using namespace testdata; // NOLINT(google-build-using-namespace): test-local helpers

/// Imports, binds, infers and compares one case; returns "" or the problem.
std::string check_case(const std::string& model_bytes, const fs::path& dir) {
  try {
    Graph g = import_onnx_bytes(model_bytes, (dir / "model.onnx").string()).graph;
    const fs::path data = dir / "test_data_set_0";
    if (std::string p = bind_inputs(g, data); !p.empty()) return p;
    infer_shapes(g);
    std::string problems;
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const fs::path p = data / ("output_" + std::to_string(i) + ".pb");
      if (!fs::exists(p)) return "no " + p.filename().string();
      const auto pb = read_proto<onnx::TensorProto>(p);
      const Tensor& t = g.tensor(g.outputs[i]);
      const std::string want = type_str(dtype_of(pb.data_type()), dims_of(pb));
      const std::string got = type_str(t.dtype, t.shape);
      if (want != got)
        problems += " output " + std::to_string(i) + " '" + t.name + "': expected " + want +
                    ", inferred " + got + ";";
    }
    return problems;
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST(OnnxTestdata, ShapeInferenceMatchesOnnxNodeTests) {
  ASSERT_TRUE(fs::is_directory(ONNX_TESTDATA_DIR))
      << ONNX_TESTDATA_DIR << " is missing: install libonnx-testdata";
  int checked = 0, listed = 0;
  std::map<int64_t, std::vector<std::string>> op_changed; // by declared opset
  std::map<std::string, int> listed_by_reason;
  for (const TestdataCase& c : testdata_cases()) {
    const std::string& name = c.name;
    if (c.changed_from) {
      op_changed[c.changed_from].push_back(name);
      continue;
    }
    const std::string problem = check_case(c.model_bytes, c.dir);
    auto ex = import_exclusions().find(name);
    if (ex != import_exclusions().end()) {
      EXPECT_NE(problem.find(ex->second.error), std::string::npos)
          << name << " is excluded (" << ex->second.reason << ") but now gives: '" << problem
          << "'";
      ++listed;
      ++listed_by_reason[ex->second.reason];
      continue;
    }
    EXPECT_EQ(problem, "") << name;
    ++checked;
  }
  int changed = 0;
  for (const auto& [v, names] : op_changed)
    changed += static_cast<int>(names.size());
  const int total = checked + listed + changed;
  std::cout << "[ onnx testdata ] " << checked << " cases checked, " << listed + changed
            << " excluded (" << changed << " op changed since an older opset, " << listed
            << " listed), " << total << " total for supported ops\n";
  for (const auto& [v, names] : op_changed) {
    std::cout << "    " << names.size() << " op changed since opset " << v << ":";
    for (const std::string& n : names)
      std::cout << " " << n;
    std::cout << "\n";
  }
  for (const auto& [r, k] : listed_by_reason)
    std::cout << "    " << k << " " << r << "\n";
  ::testing::Test::RecordProperty("cases_checked", checked);
  ::testing::Test::RecordProperty("cases_excluded", listed + changed);
  ::testing::Test::RecordProperty("cases_total", total);
  EXPECT_GE(checked, 400) << "too few cases checked: the test would pass vacuously";
}

} // namespace
} // namespace memplan
