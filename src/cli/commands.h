#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace wick::cli {

// For an unsigned option (a seed): a negative value is refused ("expected a non-negative integer, got '-5'", as
// wick train says it) instead of wrapping around to a huge number.
inline CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& v) {
        return !v.empty() && v[0] == '-' ? "expected a non-negative integer, got '" + v + "'" : std::string();
      },
      "");
}

// Each registers one subcommand whose callback does the work (errors propagate as wick::Error).
void register_info(CLI::App& app);
void register_selfcheck(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_generate(CLI::App& app);
void register_chat(CLI::App& app);
void register_train(CLI::App& app);
void register_merge(CLI::App& app);
void register_init_model(CLI::App& app);
void register_export_gguf(CLI::App& app);
void register_serve(CLI::App& app);

inline void register_all(CLI::App& app) {
  register_info(app);
  register_selfcheck(app);
  register_tokenize(app);
  register_generate(app);
  register_chat(app);
  register_train(app);
  register_merge(app);
  register_init_model(app);
  register_export_gguf(app);
  register_serve(app);
}

}  // namespace wick::cli
