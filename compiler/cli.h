// memplan command-line interface, callable in-process (tests) and from main().
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace memplan {

/// Runs `memplan ARGS...` (args excludes the program name). Writes normal
/// output to `out` and diagnostics to `err`. Returns the exit code:
/// 0 ok, 1 user error (bad input, bad flag, check failed), 2 internal error.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace memplan
