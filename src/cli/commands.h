#pragma once
#include <CLI/CLI.hpp>

namespace wick::cli {

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
