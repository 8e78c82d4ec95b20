#pragma once
#include <CLI/CLI.hpp>

namespace wick::cli {

// Each registers one subcommand whose callback does the work (errors propagate as wick::Error).
void register_info(CLI::App& app);
void register_selfcheck(CLI::App& app);
void register_tokenize(CLI::App& app);

inline void register_all(CLI::App& app) {
  register_info(app);
  register_selfcheck(app);
  register_tokenize(app);
}

}  // namespace wick::cli
