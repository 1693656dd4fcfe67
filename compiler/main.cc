#include <iostream>

#include "compiler/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return memplan::run_cli(args, std::cout, std::cerr);
}
