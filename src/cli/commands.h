#pragma once
#include <CLI/CLI.hpp>

#include <string>

#include "core/error.h"

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

// 1 if the option was given (once, or repeated with one value: take_repeats_of_one_value), else 0.
inline int given(const CLI::Option* o) { return o->count() > 0 ? 1 : 0; }

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

// One option given twice with two values (every command's wording; wick train's option table throws it too).
inline Error option_given_twice(const std::string& flag, const std::string& a, const std::string& b) {
  return Error("given twice with different values, " + a + " and " + b, flag, "give it once");
}

// wick train's rule for an option given more than once, for every command: the same value again is taken (a
// script that repeats a default, a wrapper that adds one), different values are an error naming both. Applies to
// the single-value options CLI11 would refuse outright (policy Throw); repeatable options (--stop, serve's
// --adapter) and flags keep their own rules, and train's option table applies the rule itself.
inline void take_repeats_of_one_value(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    for (CLI::Option* o : sub->get_options())
      if (o->get_items_expected_max() == 1 && o->get_multi_option_policy() == CLI::MultiOptionPolicy::Throw)
        o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // Runs once the command line is parsed, before the command's own callback.
  app.parse_complete_callback([&app] {
    for (const CLI::App* sub : app.get_subcommands())
      for (const CLI::Option* o : sub->get_options()) {
        if (o->get_multi_option_policy() != CLI::MultiOptionPolicy::TakeLast || o->count() < 2) continue;
        for (const std::string& v : o->results())
          if (v != o->results().front()) throw option_given_twice(o->get_name(), o->results().front(), v);
      }
  });
}

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
  take_repeats_of_one_value(app);
}

}  // namespace wick::cli
