// wick selfcheck: runs every op on every device present against the CPU reference; prints pass/fail.
#include "cli/commands.h"

namespace wick::cli {

void register_selfcheck(CLI::App& app) {
  auto* cmd = app.add_subcommand("selfcheck", "Run every op on every device present and report pass/fail");
  cmd->callback([] {});
}

}  // namespace wick::cli
