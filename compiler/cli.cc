#include "compiler/cli.h"

#include <ostream>

namespace memplan {

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  err << "memplan: not implemented yet\n";
  return 2;
}

}  // namespace memplan
