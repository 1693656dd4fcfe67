// Placeholder until the autodiff pass lands.
#include "compiler/autodiff.h"

namespace memplan {

std::string_view optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::none: return "none";
    case OptimizerKind::sgd: return "sgd";
    case OptimizerKind::adam: return "adam";
    case OptimizerKind::adamw: return "adamw";
  }
  return "?";
}

TrainingStats build_training_graph(Graph& g, const TrainingOptions& opts) {
  (void)g;
  (void)opts;
  throw Error("training mode is not implemented yet");
}

}  // namespace memplan
